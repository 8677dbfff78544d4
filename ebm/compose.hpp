// Composing energies (Du, Li & Mordatch, NeurIPS 2020; the seed's "Composing energy
// functions"): operators that make an Energy from energies, so that they nest into trees such as
// (a AND b) OR NOT c. With p_i(x) = exp(−E_i(x)) / Z_i the parts' densities:
//
// clang-format off
//  operator                    energy E(x)                                 density p(x)
//  --------------------------  ------------------------------------------  -------------------------------------------
//  And({E_i}, {w_i})           Σ_i w_i E_i                                 ∝ Π_i p_i^{w_i}     (product of experts)
//  Or({E_i}, s)                −(1/s) log Σ_i exp(−s E_i)                  ∝ (Σ_i exp(−s E_i))^{1/s};  at s = 1:
//                                                                           Σ_i Z_i p_i / Σ_i Z_i  (a mixture weighted
//                                                                           by the parts' partition functions)
//  Mixture({E_i}, {π_i}, {ln Z_i})  −log Σ_i π_i exp(−E_i − ln Z_i)       Σ_i π_i p_i         (chosen weights; needs Z_i)
//  Not(E_a, E_b, w)            E_a − w E_b                                 ∝ p_a / p_b^w       (only with a base concept a)
//  Temper(E, β)                β E                                         ∝ p^β
// clang-format on
//
// So OR at s = 1 is a mixture only in the proportions Z_i, which training by contrastive
// divergence leaves arbitrary (CD fixes each E_i up to an additive constant): two concepts
// trained apart mix in proportions nobody chose. Mixture() takes the weights and log Z_i (e.g. by
// quadrature, ebm/boltzmann.hpp) to mix as asked. As s → ∞, OR tends to min_i E_i.
// NOT is a density only if p_a / p_b^w is integrable: on its own (no base) exp(+w E_b) grows
// wherever p_b is small, so a bare negation is refused; with a base, it needs E_a to grow faster
// than w E_b where p_b vanishes (w ≤ 1 and parts of similar tails are the safe case).
//
// Parts are shared: composites own their sub-trees, and an energy owned elsewhere enters through
// `borrow(e)` (a non-owning handle that must outlive the composite). A composite's parameters are
// the union of its parts', each parameter once, in order of first appearance.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "autodiff/conv_layers.hpp"
#include "ebm/energy.hpp"

namespace ebl {

template <class T>
using EnergyPtr = std::shared_ptr<Energy<T>>;

/// A non-owning handle on an energy owned elsewhere (which must outlive its use).
template <class T>
EnergyPtr<T> borrow(Energy<T>& e) {
  return EnergyPtr<T>(&e, [](Energy<T>*) {});
}

/// A closed-form energy as an Energy (no parameters): E(x) = f(x) on the tape.
template <class T>
class FunctionEnergy : public Energy<T> {
 public:
  /// E(x) = f(x) for a function built from the tape's ops.
  explicit FunctionEnergy(std::function<Var<T>(Tape<T>&, Var<T>)> f) : f_(std::move(f)) {}
  Var<T> operator()(Tape<T>& t, Var<T> x) override { return f_(t, x); }
  std::vector<Parameter<T>*> parameters() override { return {}; }

 private:
  std::function<Var<T>(Tape<T>&, Var<T>)> f_;
};

/// An energy given as a black box: a function that fills E(x) [n] and ∇x E(x) [n, d] for a batch
/// x [n, d] (a model written in another framework, a simulator, a Python callable). On the tape it
/// is one op, "external_energy", whose VJP is gx[i] += gy[i] ∇x E(x_i) from the gradient the
/// function returned, so every sampler and every ∇x computation can use it. It has no parameters
/// (∇θ belongs to whoever owns them) and no differentiable VJP: gradients of gradients through it
/// (score matching, higher_order.hpp) fail with an error that names the op.
template <class T>
class ExternalEnergy : public Energy<T> {
 public:
  /// Fills E(x) [n] and ∇x E(x) [n, d] for a batch x [n, d].
  using Fn = std::function<void(const Array<T>& x, Array<T>& energy, Array<T>& grad)>;
  /// The energy given by f (called once per evaluation, with the batch).
  explicit ExternalEnergy(Fn f) : f_(std::move(f)) {}
  Var<T> operator()(Tape<T>& t, Var<T> x) override {
    if (x.tape != &t || x.shape().size() != 2)
      throw ShapeError(fmt::format("external_energy: x must be a [n, d] batch on this tape, got {}",
                                   shape_str(x.shape())));
    const Shape xs = x.shape();
    std::size_t i = t.push("external_energy", {x.id}, [](Tape<T>& tp, std::size_t self) {
      const std::size_t a = tp.in(self, 0);
      if (!tp.needs(a)) return;
      const Array<T>& g = tp.node_(self).aux;  // ∇x E, [n, d]
      const Array<T>& gy = tp.gy(self);        // [n]
      const std::size_t n = g.shape()[0], d = n ? g.size() / n : 0;
      T beta;
      T* ga = tp.grad_for_gemm(a, beta).data();
      const bool add = beta != T(0);  // (the buffer is uninitialised on the first contribution)
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < d; ++c) {
          const T v = gy.data()[r] * g.data()[r * d + c];
          ga[r * d + c] = add ? ga[r * d + c] + v : v;
        }
    });
    auto& nd = t.node_(i);
    f_(x.value(), t.out(i), nd.aux);
    if (t.out(i).shape() != Shape{xs[0]} || nd.aux.shape() != xs)
      throw ShapeError(fmt::format(
          "external_energy: for x {} the function must return energies [{}] and gradients {}, "
          "got {} and {}",
          shape_str(xs), xs[0], shape_str(xs), shape_str(t.out(i).shape()),
          shape_str(nd.aux.shape())));
    return {&t, i};
  }
  std::vector<Parameter<T>*> parameters() override { return {}; }

 private:
  Fn f_;
};

namespace compose_detail {
template <class T>
std::vector<Parameter<T>*> union_of(const std::vector<EnergyPtr<T>>& parts) {
  std::vector<Parameter<T>*> ps;
  for (const auto& p : parts)
    for (auto* q : p->parameters())
      if (std::find(ps.begin(), ps.end(), q) == ps.end()) ps.push_back(q);
  return ps;
}
template <class T>
void check_parts(const char* op, const std::vector<EnergyPtr<T>>& parts, std::size_t min) {
  if (parts.size() < min)
    throw std::invalid_argument(
        fmt::format("{}: needs at least {} part(s), got {}", op, min, parts.size()));
  for (const auto& p : parts)
    if (!p) throw std::invalid_argument(fmt::format("{}: a part is null", op));
}
// [n] energies of every part as the columns of [n, k]
template <class T>
Var<T> columns(Tape<T>& t, Var<T> x, const std::vector<EnergyPtr<T>>& parts,
               const std::vector<T>& scale, const std::vector<T>& shift) {
  std::vector<Var<T>> cols;
  for (std::size_t i = 0; i < parts.size(); ++i)
    cols.push_back(reshape((*parts[i])(t, x) * scale[i] + shift[i], {-1, 1}));
  return concat(std::span<const Var<T>>(cols), 1);
}
}  // namespace compose_detail

/// AND: E = Σ w_i E_i, p ∝ Π p_i^{w_i}.
template <class T>
class AndEnergy : public Energy<T> {
 public:
  /// Σ_i w_i E_i over the parts (weights default to 1); needs at least one part.
  AndEnergy(std::vector<EnergyPtr<T>> parts, std::vector<T> weights = {})
      : parts_(std::move(parts)), w_(std::move(weights)) {
    compose_detail::check_parts("AND", parts_, 1);
    if (w_.empty()) w_.assign(parts_.size(), T(1));
    if (w_.size() != parts_.size())
      throw std::invalid_argument(
          fmt::format("AND: {} weights for {} parts", w_.size(), parts_.size()));
  }
  Var<T> operator()(Tape<T>& t, Var<T> x) override {
    Var<T> e = (*parts_[0])(t, x) * w_[0];
    for (std::size_t i = 1; i < parts_.size(); ++i) e = e + (*parts_[i])(t, x) * w_[i];
    return e;
  }
  std::vector<Parameter<T>*> parameters() override { return compose_detail::union_of(parts_); }

 private:
  std::vector<EnergyPtr<T>> parts_;
  std::vector<T> w_;
};

/// OR: E = −(1/s) log Σ exp(−s E_i); at s = 1 the Z-weighted mixture (see the file's comment).
template <class T>
class OrEnergy : public Energy<T> {
 public:
  /// −(1/s) log Σ_i exp(−s E_i); s > 0.
  OrEnergy(std::vector<EnergyPtr<T>> parts, double s = 1.0) : parts_(std::move(parts)), s_(s) {
    compose_detail::check_parts("OR", parts_, 1);
    if (!(s_ > 0)) throw std::invalid_argument("OR: the temperature s must be > 0");
  }
  Var<T> operator()(Tape<T>& t, Var<T> x) override {
    const std::vector<T> scale(parts_.size(), T(-s_)), shift(parts_.size(), T(0));
    return logsumexp(compose_detail::columns(t, x, parts_, scale, shift), 1) * T(-1 / s_);
  }
  std::vector<Parameter<T>*> parameters() override { return compose_detail::union_of(parts_); }

 private:
  std::vector<EnergyPtr<T>> parts_;
  double s_;
};

/// The mixture with chosen weights: E = −log Σ π_i exp(−E_i − log Z_i), p = Σ π_i p_i exactly
/// (given the parts' log Z_i, e.g. by quadrature). The weights are normalised here.
template <class T>
class MixtureEnergy : public Energy<T> {
 public:
  /// Weights π_i > 0 (normalised here) and each part's log Z_i.
  MixtureEnergy(std::vector<EnergyPtr<T>> parts, std::vector<double> weights,
                std::vector<double> log_z)
      : parts_(std::move(parts)) {
    compose_detail::check_parts("MIXTURE", parts_, 1);
    if (weights.size() != parts_.size() || log_z.size() != parts_.size())
      throw std::invalid_argument(fmt::format("MIXTURE: {} parts, {} weights, {} log Z",
                                              parts_.size(), weights.size(), log_z.size()));
    double total = 0;
    for (double w : weights) {
      if (!(w > 0)) throw std::invalid_argument("MIXTURE: weights must be > 0");
      total += w;
    }
    for (std::size_t i = 0; i < parts_.size(); ++i)
      shift_.push_back(T(std::log(weights[i] / total) - log_z[i]));  // log π_i − log Z_i
  }
  Var<T> operator()(Tape<T>& t, Var<T> x) override {
    const std::vector<T> scale(parts_.size(), T(-1));
    return logsumexp(compose_detail::columns(t, x, parts_, scale, shift_), 1) * T(-1);
  }
  std::vector<Parameter<T>*> parameters() override { return compose_detail::union_of(parts_); }

 private:
  std::vector<EnergyPtr<T>> parts_;
  std::vector<T> shift_;
};

/// NOT with a base concept: E = E_a − w E_b, p ∝ p_a / p_b^w. A null base is refused.
template <class T>
class NotEnergy : public Energy<T> {
 public:
  /// E_a − w E_b: `base` is E_a, `negated` E_b.
  NotEnergy(EnergyPtr<T> base, EnergyPtr<T> negated, T w = T(1))
      : base_(std::move(base)), neg_(std::move(negated)), w_(w) {
    if (!base_)
      throw std::invalid_argument(
          "NOT: a negation needs a base concept (p ∝ p_a / p_b^w); on its own exp(+w E_b) is "
          "not a density");
    if (!neg_) throw std::invalid_argument("NOT: the negated concept is null");
    if (!(w_ >= T(0))) throw std::invalid_argument("NOT: the weight w must be >= 0");
  }
  Var<T> operator()(Tape<T>& t, Var<T> x) override { return (*base_)(t, x) - (*neg_)(t, x) * w_; }
  std::vector<Parameter<T>*> parameters() override {
    return compose_detail::union_of(std::vector<EnergyPtr<T>>{base_, neg_});
  }

 private:
  EnergyPtr<T> base_, neg_;
  T w_;
};

/// β E: the density p^β (β < 1 flattens, β > 1 sharpens).
template <class T>
class TemperedEnergy : public Energy<T> {
 public:
  /// β E for β > 0.
  TemperedEnergy(EnergyPtr<T> e, T beta) : e_(std::move(e)), beta_(beta) {
    if (!e_) throw std::invalid_argument("TEMPER: the energy is null");
    if (!(beta_ > T(0))) throw std::invalid_argument("TEMPER: beta must be > 0");
  }
  Var<T> operator()(Tape<T>& t, Var<T> x) override { return (*e_)(t, x) * beta_; }
  std::vector<Parameter<T>*> parameters() override { return e_->parameters(); }

 private:
  EnergyPtr<T> e_;
  T beta_;
};

// Builders, so that trees read like the formulas: Or<T>({And<T>({a, b}), Not<T>(c, d)}).
template <class T>
EnergyPtr<T> And(std::vector<EnergyPtr<T>> parts, std::vector<T> w = {}) {
  return std::make_shared<AndEnergy<T>>(std::move(parts), std::move(w));
}
template <class T>
EnergyPtr<T> Or(std::vector<EnergyPtr<T>> parts, double s = 1.0) {
  return std::make_shared<OrEnergy<T>>(std::move(parts), s);
}
template <class T>
EnergyPtr<T> Mixture(std::vector<EnergyPtr<T>> parts, std::vector<double> weights,
                     std::vector<double> log_z) {
  return std::make_shared<MixtureEnergy<T>>(std::move(parts), std::move(weights), std::move(log_z));
}
template <class T>
EnergyPtr<T> Not(EnergyPtr<T> base, EnergyPtr<T> negated, T w = T(1)) {
  return std::make_shared<NotEnergy<T>>(std::move(base), std::move(negated), w);
}
template <class T>
EnergyPtr<T> Temper(EnergyPtr<T> e, T beta) {
  return std::make_shared<TemperedEnergy<T>>(std::move(e), beta);
}

/// E(x | c) for a discrete concept c ∈ {0 … K−1}: one network on x with one output energy per
/// concept value, E(x | c) = f_θ(x)[c]; the concepts share the network's features.
template <class T>
class ConditionalEnergy {
 public:
  virtual ~ConditionalEnergy() = default;
  /// All concepts' energies, x [n, d] -> [n, K].
  virtual Var<T> all(Tape<T>& t, Var<T> x) = 0;
  /// The number of concepts (output columns).
  virtual std::size_t concepts() const = 0;
  /// The network's parameters.
  virtual std::vector<Parameter<T>*> parameters() = 0;
};

/// The network an MLP.
template <class T>
class ConditionalMlpEnergy : public ConditionalEnergy<T> {
 public:
  /// An MLP dim -> hidden... -> concepts.
  ConditionalMlpEnergy(std::size_t dim, const std::vector<std::size_t>& hidden,
                       std::size_t concepts, Activation act, Rng& rng)
      : mlp_(sizes(dim, hidden, concepts), act, rng), k_(concepts) {}
  Var<T> all(Tape<T>& t, Var<T> x) override { return mlp_(t, x); }
  /// The number of concepts.
  std::size_t concepts() const override { return k_; }
  /// The MLP's parameters.
  std::vector<Parameter<T>*> parameters() override { return mlp_.parameters(); }
  /// The network itself.
  MLP<T>& mlp() { return mlp_; }

 private:
  static std::vector<std::size_t> sizes(std::size_t dim, const std::vector<std::size_t>& hidden,
                                        std::size_t k) {
    std::vector<std::size_t> s{dim};
    s.insert(s.end(), hidden.begin(), hidden.end());
    s.push_back(k);
    return s;
  }
  MLP<T> mlp_;
  std::size_t k_;
};

/// The network a CNN on images given as flat rows (spec.outputs is the number of concepts); with
/// spec.global_pool its energies do not depend on where in the image a pattern sits.
template <class T>
class ConditionalCnnEnergy : public ConditionalEnergy<T> {
 public:
  /// A CNN of `spec` with spec.outputs concepts.
  ConditionalCnnEnergy(const CnnSpec& spec, Activation act, Rng& rng)
      : cnn_(spec, act, rng), k_(spec.outputs) {}
  Var<T> all(Tape<T>& t, Var<T> x) override { return cnn_(t, x); }
  /// The number of concepts.
  std::size_t concepts() const override { return k_; }
  /// The CNN's parameters.
  std::vector<Parameter<T>*> parameters() override { return cnn_.parameters(); }

 private:
  Cnn<T> cnn_;
  std::size_t k_;
};

/// Several discrete concepts at once, c = (c₁, …, c_m) with c_j ∈ {0 … K_j − 1}, as one concept
/// of a conditional energy with Π K_j outputs: the flat index Σ_j c_j Π_{l>j} K_l (row-major, the
/// last concept fastest), and back.
class ConceptGrid {
 public:
  /// A grid of concepts with sizes[j] values for attribute j.
  explicit ConceptGrid(std::vector<std::size_t> sizes) : k_(std::move(sizes)) {
    if (k_.empty()) throw std::invalid_argument("ConceptGrid: no concepts");
    for (std::size_t k : k_)
      if (k == 0) throw std::invalid_argument("ConceptGrid: a concept with no values");
  }
  /// The number of combinations (the product of the sizes).
  std::size_t size() const {
    std::size_t n = 1;
    for (std::size_t k : k_) n *= k;
    return n;
  }
  /// The flat index of the combination c (one value per attribute).
  std::size_t index(const std::vector<std::size_t>& c) const {
    if (c.size() != k_.size())
      throw std::invalid_argument(
          fmt::format("ConceptGrid: {} values for {} concepts", c.size(), k_.size()));
    std::size_t i = 0;
    for (std::size_t j = 0; j < k_.size(); ++j) {
      if (c[j] >= k_[j])
        throw std::invalid_argument(
            fmt::format("ConceptGrid: value {} of concept {} has only {}", c[j], j, k_[j]));
      i = i * k_[j] + c[j];
    }
    return i;
  }
  /// The combination at flat index i.
  std::vector<std::size_t> values(std::size_t i) const {
    std::vector<std::size_t> c(k_.size());
    for (std::size_t j = k_.size(); j-- > 0;) {
      c[j] = i % k_[j];
      i /= k_[j];
    }
    return c;
  }

 private:
  std::vector<std::size_t> k_;
};

/// One concept value of a conditional energy as an Energy: x ↦ E(x | c). Its parameters are the
/// whole network's (every concept shares them); the model must outlive it.
template <class T>
class ConceptEnergy : public Energy<T> {
 public:
  /// E(x | c): the model's column c.
  ConceptEnergy(ConditionalEnergy<T>& model, std::size_t c) : m_(model), c_{c} {
    if (c >= model.concepts())
      throw std::invalid_argument(
          fmt::format("ConceptEnergy: concept {} of a model with {}", c, model.concepts()));
  }
  Var<T> operator()(Tape<T>& t, Var<T> x) override {
    return reshape(cols(m_.all(t, x), std::span<const std::size_t>(c_, 1)), {-1});
  }
  std::vector<Parameter<T>*> parameters() override { return m_.parameters(); }

 private:
  ConditionalEnergy<T>& m_;
  std::size_t c_[1];
};

}  // namespace ebl
