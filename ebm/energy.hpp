// Energies.
//
//   E_θ(x)          an energy over inputs: a batch x [n, d] -> one energy per sample [n].
//                   MlpEnergy (a network), GaussianEnergy (quadratic, with analytic log Z).
//   E(W, Y, X)      an energy over answers Y given X (LeCun et al. 2006, section 1):
//                   * discrete answers: DiscreteAnswerEnergy maps X [n, d] to [n, |Y|];
//                   * a continuous scalar answer evaluated on a grid of candidates:
//                     OneBranchEnergy  E = |G_W(X) - Y|            (tutorial section 2.2, fig. 6a)
//                     TwoBranchEnergy  E = ||G_W1(X) - G_W2(Y)||_1 (tutorial fig. 6b)
//
// At inverse temperature β an energy defines the Boltzmann–Gibbs density
// p(x) = exp(-βE(x)) / Z, Z = ∫ exp(-βE(x)) dx; see ebm/boltzmann.hpp.
#pragma once

#include <cmath>
#include <numbers>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "autodiff/conv_layers.hpp"
#include "autodiff/layers.hpp"
#include "samplers/common.hpp"

namespace ebl {

/// A training run whose loss or energies stopped being finite numbers (or left the guard's bound):
/// raised before any state changes, so the last checkpoint is a good state to resume from.
class DivergenceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// ‖∇θ‖ over the parameters' gradients, as the trainers report it; a non-finite norm throws
/// DivergenceError naming the step (0-based `step`, reported 1-based), before any update.
template <class T>
double checked_gradient_norm(const std::vector<Parameter<T>*>& params, long step) {
  double g2 = 0;
  for (auto* p : params) g2 += sum_of_squares(p->grad.data(), p->grad.size());
  const double norm = std::sqrt(g2);
  if (!std::isfinite(norm))
    throw DivergenceError(
        fmt::format("training diverged at step {}: non-finite gradient", step + 1));
  return norm;
}

/// E_θ(x): one energy per row of x. Implement operator() with the tape's ops and list the
/// parameters it puts on the tape; samplers, trainers and ebm/boltzmann.hpp take any Energy.
template <class T>
class Energy {
 public:
  virtual ~Energy() = default;
  /// x: [n, d] -> energies [n].
  virtual Var<T> operator()(Tape<T>& t, Var<T> x) = 0;
  /// The parameters the energy puts on the tape (trainers update these).
  virtual std::vector<Parameter<T>*> parameters() = 0;
};

/// E_θ(x) = MLP(x), the network ending in one output unit.
template <class T>
class MlpEnergy : public Energy<T> {
 public:
  /// An MLP dim -> hidden... -> 1 with activation `act`, initialised from rng.
  MlpEnergy(std::size_t dim, const std::vector<std::size_t>& hidden, Activation act, Rng& rng)
      : mlp_(sizes(dim, hidden), act, rng) {}
  Var<T> operator()(Tape<T>& t, Var<T> x) override { return reshape(mlp_(t, x), {-1}); }
  /// The MLP's weights and biases.
  std::vector<Parameter<T>*> parameters() override { return mlp_.parameters(); }
  /// The network itself.
  MLP<T>& mlp() { return mlp_; }

 private:
  static std::vector<std::size_t> sizes(std::size_t dim, const std::vector<std::size_t>& hidden) {
    std::vector<std::size_t> s{dim};
    s.insert(s.end(), hidden.begin(), hidden.end());
    s.push_back(1);
    return s;
  }
  MLP<T> mlp_;
};

/// E_θ(x) = CNN(x): images as flat rows x [n, c·h·w] (the samplers move them as [n, d]) through
/// the convolution blocks and the linear layers of a Cnn ending in one output unit.
template <class T>
class CnnEnergy : public Energy<T> {
 public:
  /// A CNN of `spec`'s blocks and hidden layers ending in one output (spec.outputs is ignored).
  CnnEnergy(CnnSpec spec, Activation act, Rng& rng)
      : cnn_(with_one_output(std::move(spec)), act, rng) {}
  Var<T> operator()(Tape<T>& t, Var<T> x) override { return reshape(cnn_(t, x), {-1}); }
  /// The CNN's convolution and linear parameters.
  std::vector<Parameter<T>*> parameters() override { return cnn_.parameters(); }
  /// The network itself.
  Cnn<T>& cnn() { return cnn_; }

 private:
  static CnnSpec with_one_output(CnnSpec s) {
    s.outputs = 1;
    return s;
  }
  Cnn<T> cnn_;
};

/// E(x) = ½ ||A (x - μ)||²: at β = 1 the Gaussian N(μ, (AᵀA)⁻¹), so
/// log Z(β) = (d/2) log(2π/β) - log |det A|. Parameters μ [d] and A [d, d].
template <class T>
class GaussianEnergy : public Energy<T> {
 public:
  /// The Gaussian of mean `mu` [d] and precision AᵀA (A [d, d]); throws ShapeError if they do not match.
  GaussianEnergy(Array<T> mu, Array<T> a) : mu_("mu", std::move(mu)), a_("A", std::move(a)) {
    const Shape &sm = mu_.value.shape(), &sa = a_.value.shape();
    if (sm.size() != 1 || sa.size() != 2 || sa[0] != sm[0] || sa[1] != sm[0])
      throw ShapeError(
          fmt::format("GaussianEnergy: mu {} and A {} do not match (want [d] and [d,d])",
                      shape_str(sm), shape_str(sa)));
  }
  Var<T> operator()(Tape<T>& t, Var<T> x) override {
    Var<T> u = matmul(x - t.param(mu_), t.param(a_), false, true);  // rows (x - μ)ᵀ Aᵀ
    return T(0.5) * sum(square(u), 1);
  }
  /// μ and A.
  std::vector<Parameter<T>*> parameters() override { return {&mu_, &a_}; }

  /// d, the dimension of x.
  std::size_t dim() const { return mu_.value.size(); }
  /// log Z(β) = (d/2) log(2π/β) - log |det A|
  double log_z(double beta = 1) const {
    return 0.5 * double(dim()) * std::log(2 * std::numbers::pi / beta) - log_abs_det(a_.value);
  }
  /// The mean μ.
  Parameter<T>& mu() { return mu_; }
  /// The matrix A (precision AᵀA).
  Parameter<T>& a() { return a_; }

  /// log |det M| by Gaussian elimination with partial pivoting, in double.
  static double log_abs_det(const Array<T>& m) {
    const std::size_t d = m.shape()[0];
    std::vector<double> lu(m.begin(), m.end());
    double s = 0;
    for (std::size_t c = 0; c < d; ++c) {
      std::size_t piv = c;
      for (std::size_t r = c + 1; r < d; ++r)
        if (std::abs(lu[r * d + c]) > std::abs(lu[piv * d + c])) piv = r;
      if (lu[piv * d + c] == 0) return -std::numeric_limits<double>::infinity();
      if (piv != c)
        for (std::size_t k = 0; k < d; ++k) std::swap(lu[c * d + k], lu[piv * d + k]);
      s += std::log(std::abs(lu[c * d + c]));
      for (std::size_t r = c + 1; r < d; ++r) {
        double f = lu[r * d + c] / lu[c * d + c];
        for (std::size_t k = c; k < d; ++k) lu[r * d + k] -= f * lu[c * d + k];
      }
    }
    return s;
  }

 private:
  Parameter<T> mu_, a_;
};

/// Composition: E(x) = Σ_k w_k E_k(x), a product of experts p ∝ Π_k p_k^{w_k}. The parts are
/// referenced, not owned; parameters are the union of theirs. (ebm/compose.hpp has the full set
/// of operators — AND, OR, mixtures, NOT, temperature — that own their parts and nest.)
template <class T>
class SumEnergy : public Energy<T> {
 public:
  /// Σ_k w_k E_k over the parts (referenced, not owned); weights default to 1.
  SumEnergy(std::vector<Energy<T>*> parts, std::vector<T> weights = {})
      : parts_(std::move(parts)), w_(std::move(weights)) {
    if (w_.empty()) w_.assign(parts_.size(), T(1));
    if (parts_.empty() || w_.size() != parts_.size())
      throw std::invalid_argument("SumEnergy: needs at least one part and one weight per part");
  }
  Var<T> operator()(Tape<T>& t, Var<T> x) override {
    Var<T> e = w_[0] * (*parts_[0])(t, x);
    for (std::size_t k = 1; k < parts_.size(); ++k) e = e + w_[k] * (*parts_[k])(t, x);
    return e;
  }
  /// The union of the parts' parameters (a shared parameter once per part that lists it).
  std::vector<Parameter<T>*> parameters() override {
    std::vector<Parameter<T>*> ps;
    for (auto* p : parts_)
      for (auto* q : p->parameters()) ps.push_back(q);
    return ps;
  }

 private:
  std::vector<Energy<T>*> parts_;
  std::vector<T> w_;
};

/// E(W, Y, X) over a discrete answer set: an MLP with one output energy per answer,
/// X [n, d] -> energy matrix [n, |Y|].
template <class T>
class DiscreteAnswerEnergy {
 public:
  /// An MLP dim -> hidden... -> answers with activation `act`, initialised from rng.
  DiscreteAnswerEnergy(std::size_t dim, const std::vector<std::size_t>& hidden, std::size_t answers,
                       Activation act, Rng& rng)
      : mlp_(sizes(dim, hidden, answers), act, rng), answers_(answers) {}
  /// The energy of every answer for each row of x [n, d]: [n, |Y|].
  Var<T> operator()(Tape<T>& t, Var<T> x) { return mlp_(t, x); }
  /// The MLP's weights and biases.
  std::vector<Parameter<T>*> parameters() { return mlp_.parameters(); }
  /// |Y|, the number of answers.
  std::size_t answers() const { return answers_; }

 private:
  static std::vector<std::size_t> sizes(std::size_t d, const std::vector<std::size_t>& h,
                                        std::size_t k) {
    std::vector<std::size_t> s{d};
    s.insert(s.end(), h.begin(), h.end());
    s.push_back(k);
    return s;
  }
  MLP<T> mlp_;
  std::size_t answers_;
};

/// E(W, Y, X) for a continuous scalar answer Y.
template <class T>
class ScalarAnswerEnergy {
 public:
  virtual ~ScalarAnswerEnergy() = default;
  /// Energy of each pair (X_i, Y_i): x [n, d], y [n] -> [n].
  virtual Var<T> pairs(Tape<T>& t, Var<T> x, Var<T> y) = 0;
  /// Energy of every X_i against every candidate answer: x [n, d], grid [m] -> [n, m].
  virtual Var<T> on_grid(Tape<T>& t, Var<T> x, Var<T> grid) = 0;
  /// The parameters of G_W (and of the second branch, if any).
  virtual std::vector<Parameter<T>*> parameters() = 0;
};

/// E = |G_W(X) - Y|: a regressor G_W read as an energy (tutorial fig. 6a; G_W is 1-20-1 there).
template <class T>
class OneBranchEnergy : public ScalarAnswerEnergy<T> {
 public:
  /// G_W an MLP of the given layer sizes (ending in 1) and activation, initialised from rng.
  OneBranchEnergy(const std::vector<std::size_t>& sizes, Activation act, Rng& rng)
      : g_(sizes, act, rng) {
    if (sizes.back() != 1)
      throw std::invalid_argument("OneBranchEnergy: G_W must end in one output");
  }
  Var<T> pairs(Tape<T>& t, Var<T> x, Var<T> y) override { return abs(reshape(g_(t, x), {-1}) - y); }
  Var<T> on_grid(Tape<T>& t, Var<T> x, Var<T> grid) override {
    return abs(g_(t, x) - reshape(grid, {1, -1}));  // [n,1] - [1,m]
  }
  /// G_W's parameters.
  std::vector<Parameter<T>*> parameters() override { return g_.parameters(); }

 private:
  MLP<T> g_;
};

/// E = ||G_W1(X) - G_W2(Y)||_1: two branches embed X and Y into a common space (tutorial fig. 6b;
/// each branch 1-10-10 there). With nothing to push up the energy of wrong answers, both branches
/// may learn the same constant and the energy collapses to zero everywhere.
template <class T>
class TwoBranchEnergy : public ScalarAnswerEnergy<T> {
 public:
  /// The X branch G_W1 and the Y branch G_W2 (both MLPs ending in the same width).
  TwoBranchEnergy(const std::vector<std::size_t>& x_sizes, const std::vector<std::size_t>& y_sizes,
                  Activation act, Rng& rng)
      : gx_(x_sizes, act, rng, "G1.layer"), gy_(y_sizes, act, rng, "G2.layer") {
    if (x_sizes.back() != y_sizes.back() || y_sizes.front() != 1)
      throw std::invalid_argument(
          "TwoBranchEnergy: branches must share their output size, G_W2 take 1 input");
  }
  Var<T> pairs(Tape<T>& t, Var<T> x, Var<T> y) override {
    return sum(abs(gx_(t, x) - gy_(t, reshape(y, {-1, 1}))), 1);
  }
  Var<T> on_grid(Tape<T>& t, Var<T> x, Var<T> grid) override {
    const auto h = static_cast<std::ptrdiff_t>(gy_.layers().back().out_features());
    Var<T> a = reshape(gx_(t, x), {-1, 1, h});                       // [n, 1, h]
    Var<T> b = reshape(gy_(t, reshape(grid, {-1, 1})), {1, -1, h});  // [1, m, h]
    return sum(abs(a - b), 2);                                       // [n, m]
  }
  /// Both branches' parameters.
  std::vector<Parameter<T>*> parameters() override {
    auto p = gx_.parameters();
    for (auto* q : gy_.parameters()) p.push_back(q);
    return p;
  }

 private:
  MLP<T> gx_, gy_;
};

}  // namespace ebl
