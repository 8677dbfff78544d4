// "Your classifier is secretly an energy-based model" (JEM; Grathwohl, Wang, Jacobsen, Duvenaud,
// Norouzi & Swersky, ICLR 2020). The K logits f_θ(x) of any classifier define
//
//     E(x, y) = −f_θ(x)[y]                 p(x, y) = exp(f_θ(x)[y]) / Z
//     E(x)    = −logsumexp_y f_θ(x)[y]     p(x)    = Σ_y p(x, y) = exp(−E(x)) / Z
//     p(y | x) = p(x, y) / p(x) = softmax(f_θ(x))_y      (Z cancels: the usual classifier)
//
// so one network is a classifier and an unnormalised density. JEM trains it on the hybrid
// objective log p(y | x) + log p(x):
//
//     L = CE(f(x⁺), y) + (mean E(x⁺) − mean E(x⁻)) [+ α (mean E(x⁺)² + mean E(x⁻)²)]
//
// whose second term is contrastive divergence's (ebm/cd.hpp) with x⁻ from SGLD — JEM's update
// x ← x − s ∇ₓE(x) + σ ξ (step s = 1 and noise σ = 0.01 set apart: Langevin at T = σ²/2s, a
// nearly deterministic descent) for 20 steps from a replay buffer of 10 000 chains restarted from
// U(−1, 1) with probability 0.05 — optionally one buffer per class, sampled by E(x | y). The data
// get Gaussian noise of σ = 0.03, Adam's learning rate a linear warm-up. With `generative =
// false` the same trainer is the baseline: cross-entropy alone, same optimiser and schedule.
//
// Also here: PGD attacks on the tape (robustness), and the out-of-distribution scores JEM
// reports — log p(x) up to log Z, max_y p(y | x), and −‖∇ₓ log p(x)‖.
#pragma once

#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autodiff/optim.hpp"
#include "distributed/data_parallel.hpp"
#include "ebm/cd.hpp"
#include "ebm/energy.hpp"
#include "io/checkpoint.hpp"
#include "samplers/langevin.hpp"
#include "samplers/replay_buffer.hpp"

namespace ebl {

/// A classifier read as an EBM: any network x [n, d] -> logits [n, K], owned through a shared
/// pointer (an MLP, a Cnn, …).
template <class T>
class ClassifierEbm {
 public:
  /// Reads any network x -> [n, classes] (owned through the pointer); classes >= 2.
  template <class Net>
  ClassifierEbm(std::shared_ptr<Net> net, std::size_t classes)
      : keep_(net),
        net_([n = net.get()](Tape<T>& t, Var<T> x) { return (*n)(t, x); }),
        params_(net->parameters()),
        k_(classes) {
    if (classes < 2) throw std::invalid_argument("ClassifierEbm: needs at least two classes");
  }
  /// f(x) [n, K], checked against the number of classes.
  Var<T> logits(Tape<T>& t, Var<T> x) {
    Var<T> f = net_(t, x);
    if (f.shape().size() != 2 || f.shape()[1] != k_)
      throw ShapeError(fmt::format("ClassifierEbm: the network gives {} for {} classes",
                                   shape_str(f.shape()), k_));
    return f;
  }
  /// E(x) = −logsumexp_y f(x)[y], [n].
  Var<T> energy(Tape<T>& t, Var<T> x) { return neg(logsumexp(logits(t, x), 1)); }
  /// E(x | y) = E(x, y) = −f(x)[y] for one class y, [n] (its density is p(x, y) ∝ p(x | y)).
  Var<T> energy_given(Tape<T>& t, Var<T> x, std::size_t y) {
    const std::size_t idx[] = {y};
    return neg(reshape(cols(logits(t, x), std::span<const std::size_t>(idx)), {-1}));
  }
  /// E(x, y_i) for each row's own label, [n].
  Var<T> energy_xy(Tape<T>& t, Var<T> x, std::span<const std::size_t> y) {
    return neg(gather(logits(t, x), y));
  }
  /// The network's parameters.
  std::vector<Parameter<T>*> parameters() const { return params_; }
  /// K, the number of classes.
  std::size_t classes() const { return k_; }

 private:
  std::shared_ptr<void> keep_;
  std::function<Var<T>(Tape<T>&, Var<T>)> net_;
  std::vector<Parameter<T>*> params_;
  std::size_t k_;
};

/// The marginal E(x) as an Energy (for the samplers and ebm/boltzmann.hpp).
template <class T>
class MarginalEnergy : public Energy<T> {
 public:
  /// The marginal energy of m (referenced: it must outlive this).
  explicit MarginalEnergy(ClassifierEbm<T>& m) : m_(m) {}
  Var<T> operator()(Tape<T>& t, Var<T> x) override { return m_.energy(t, x); }
  std::vector<Parameter<T>*> parameters() override { return m_.parameters(); }

 private:
  ClassifierEbm<T>& m_;
};

/// The class-conditional E(x | y) = −f(x)[y] of one class as an Energy (its density p(x, y) ∝
/// p(x | y)): the samplers draw images of that class from it.
template <class T>
class ClassEnergy : public Energy<T> {
 public:
  /// E(x | y) of m (referenced) for class y < m.classes().
  ClassEnergy(ClassifierEbm<T>& m, std::size_t y) : m_(m), y_(y) {
    if (y >= m.classes())
      throw std::invalid_argument(fmt::format("ClassEnergy: class {} of {}", y, m.classes()));
  }
  Var<T> operator()(Tape<T>& t, Var<T> x) override { return m_.energy_given(t, x, y_); }
  std::vector<Parameter<T>*> parameters() override { return m_.parameters(); }

 private:
  ClassifierEbm<T>& m_;
  std::size_t y_;
};

/// JEM's options (the defaults are JEM's reference settings).
struct JemOptions {
  bool generative = true;           ///< false: the cross-entropy-only baseline
  double lr = 1e-4;                 ///< Adam's learning rate after warm-up (JEM: 1e-4)
  long warmup_steps = 1000;         ///< linear warm-up of the learning rate
  int sgld_steps = 20;              ///< JEM: 20
  double sgld_step = 1.0;           ///< s (JEM: 1)
  double sgld_noise = 0.01;         ///< σ (JEM: 0.01)
  std::size_t buffer_size = 10000;  ///< persistent SGLD chains kept (split per class if asked)
  double reinit = 0.05;             ///< chance a buffer chain restarts from U(lo, hi)
  double lo = -1;                   ///< the data's range (and the restarts'): low end
  double hi = 1;                    ///< high end
  bool per_class_buffer = false;    ///< one buffer per class, chains moved by E(x | y)
  double data_noise = 0.03;         ///< Gaussian noise on the data
  double alpha = 0;                 ///< weight of α (E⁺² + E⁻²)
  double loss_bound = 1e8;          ///< divergence guard (JEM's own code aborts at |L| > 1e8)
  int threads = 1;                  ///< for the SGLD chains
};

/// What one JEM step reports.
struct JemStepStats {
  double loss = 0;      ///< cross-entropy plus, if generative, E(x⁺) − E(x⁻) (and α's term)
  double ce = 0;        ///< the cross-entropy of p(y | x)
  double e_pos = 0;     ///< mean E(x⁺)
  double e_neg = 0;     ///< mean E(x⁻) of the SGLD samples
  double accuracy = 0;  ///< on the batch, before the update
};

/// JEM's trainer (Grathwohl et al. 2020): cross-entropy plus SGLD maximum likelihood of p(x),
/// with Adam, a learning-rate warm-up, replay buffers and the divergence guard.
template <class T>
class JemTrainer {
 public:
  /// Trains `model` (referenced) on inputs of dimension `dim`; the generator seeded with `seed`.
  JemTrainer(ClassifierEbm<T>& model, const JemOptions& o, std::uint64_t seed, std::size_t dim)
      : JemTrainer(model, o, Rng(seed), dim) {}
  /// The same, with the generator given (a rank's stream in a data-parallel run: rank_stream).
  JemTrainer(ClassifierEbm<T>& model, const JemOptions& o, Rng rng, std::size_t dim)
      : m_(model),
        o_(o),
        params_(model.parameters()),
        opt_(params_, {.lr = o.lr}),
        rng_(rng),
        dim_(dim),
        sgld_([this](Tape<T>& t,
                     Var<T> x) { return cls_ ? m_.energy_given(t, x, *cls_) : m_.energy(t, x); },
              {.steps = o.sgld_steps,
               .step_size = o.sgld_step,
               .temperature = o.sgld_noise * o.sgld_noise / (2 * o.sgld_step),
               .threads = o.threads}) {
    if (o.generative) {
      const std::size_t nb = o.per_class_buffer ? model.classes() : 1;
      for (std::size_t b = 0; b < nb; ++b)
        buffers_.emplace_back(std::max<std::size_t>(1, o.buffer_size / nb), dim, o.lo, o.hi,
                              o.reinit, rng_);
    }
  }

  /// One step on a labelled batch x [n, d], y (n labels).
  JemStepStats step(const Array<T>& x, std::span<const std::size_t> y) {
    if (x.dimension() != 2 || x.shape()[0] != y.size() || x.shape()[1] != dim_)
      throw ShapeError(fmt::format("JemTrainer::step: inputs {} with {} labels, dimension {}",
                                   shape_str(x.shape()), y.size(), dim_));
    for (std::size_t label : y)
      if (label >= m_.classes())
        throw std::invalid_argument(
            fmt::format("JemTrainer::step: label {} of {} classes", label, m_.classes()));
    const std::size_t n = y.size();
    xp_.resize(x.shape());
    for (std::size_t k = 0; k < x.size(); ++k)
      xp_.data()[k] = T(double(x.data()[k]) + o_.data_noise * rng_.normal());
    std::size_t b = 0;
    if (o_.generative) {  // the dream: SGLD from the (class's) buffer
      cls_.reset();
      if (o_.per_class_buffer) {
        b = rng_.below(m_.classes());
        cls_ = b;
      }
      buffers_[b].sample(n, rng_, xn_);
      sgld_.run(xn_, rng_);
    }
    JemStepStats s;
    tape_.clear();
    Var<T> f = m_.logits(tape_, tape_.input(xp_));
    Var<T> ce = neg(mean(gather(log_softmax(f, 1), y)));
    Var<T> l = ce;
    const std::vector<std::size_t> pred = argmax_rows(f.value());
    for (std::size_t i = 0; i < n; ++i) s.accuracy += (pred[i] == y[i]) / double(n);
    if (o_.generative) {
      Var<T> e_pos = neg(logsumexp(f, 1)), e_neg = m_.energy(tape_, tape_.input(xn_));
      Var<T> wake = mean(e_pos), dream = mean(e_neg);
      l = l + (wake - dream);
      if (o_.alpha != 0) l = l + T(o_.alpha) * (mean(square(e_pos)) + mean(square(e_neg)));
      s.e_pos = double(wake.item());
      s.e_neg = double(dream.item());
    }
    s.ce = double(ce.item());
    s.loss = double(l.item());
    if (!distributed()) {
      check(s);  // before any state changes
      opt_.zero_grad();
      tape_.backward(l, {}, params_);
    } else {  // every rank's means averaged: the serial step on the union of the batches
      opt_.zero_grad();
      tape_.backward(l, {}, params_);
      const double R = double(comm_->size());
      std::array<double, 5> extras{s.loss, s.ce, s.e_pos, s.e_neg, s.accuracy};
      for (double& e : extras)  // a NaN on one rank makes the sums NaN on every rank
        if (!std::isfinite(e)) e = std::numeric_limits<double>::quiet_NaN();
      allreduce_gradients(*comm_, params_, extras, 1 / R);
      s = {extras[0] / R, extras[1] / R, extras[2] / R, extras[3] / R, extras[4] / R};
      check(s);  // the same numbers, hence the same decision, on every rank
    }
    opt_.options().lr =
        o_.lr * std::min(1.0, double(steps_ + 1) / double(std::max(1L, o_.warmup_steps)));
    opt_.step();
    if (o_.generative) buffers_[b].update(xn_);
    ++steps_;
    if (distributed() && check_every_ > 0 && steps_ % check_every_ == 0)
      check_replicas(*comm_, params_, steps_);
    return s;
  }

  /// Data-parallel training over `comm` (nullptr or one rank: serial): every rank steps on its
  /// own batch of the same size, with its own buffers and generator; the gradients are averaged
  /// by one allreduce; every `check_every` steps the ranks compare parameter checksums.
  void set_comm(Comm* comm, long check_every = 100) {
    comm_ = comm;
    check_every_ = check_every;
  }
  /// Whether steps are data-parallel.
  bool distributed() const { return comm_ && comm_->size() > 1; }

  /// n fresh samples from U(lo, hi) noise, by `steps` SGLD steps on E(x) (or E(x | y)).
  Array<T> sample(std::size_t n, int steps, std::optional<std::size_t> y, Rng& rng) {
    Array<T> x = rng.uniform_array<T>({n, dim_}, o_.lo, o_.hi);
    Langevin<T> s(
        [this, y](Tape<T>& t, Var<T> v) { return y ? m_.energy_given(t, v, *y) : m_.energy(t, v); },
        {.steps = steps,
         .step_size = o_.sgld_step,
         .temperature = o_.sgld_noise * o_.sgld_noise / (2 * o_.sgld_step),
         .threads = o_.threads});
    s.run(x, rng);
    return x;
  }

  /// Everything needed to continue exactly: parameters, Adam's state, buffers, generator, steps.
  Checkpoint checkpoint() const {
    Checkpoint c;
    put_training_state<T>(c, params_, opt_);
    for (std::size_t b = 0; b < buffers_.size(); ++b)
      c.put(fmt::format("buffer/{}", b), buffers_[b].chains());
    put_rng(c, rng_);
    c.integers["step"] = std::uint64_t(steps_);
    return c;
  }
  /// Continues the run a checkpoint() saved.
  void restore(const Checkpoint& c) {
    get_training_state<T>(c, params_, opt_);
    for (std::size_t b = 0; b < buffers_.size(); ++b)
      c.get(fmt::format("buffer/{}", b), buffers_[b].chains());
    get_rng(c, rng_);
    steps_ = long(c.integer("step"));
  }

  /// Steps taken.
  long steps_done() const { return steps_; }
  /// The trainer's generator.
  Rng& rng() { return rng_; }
  /// The replay buffer (of class b with per-class buffers); none for the baseline.
  const ReplayBuffer<T>& buffer(std::size_t b = 0) const { return buffers_.at(b); }
  /// The number of replay buffers (0 for the baseline, K with per-class buffers, else 1).
  std::size_t buffers() const { return buffers_.size(); }

 private:
  void check(const JemStepStats& s) const {
    if (!std::isfinite(s.loss) || std::abs(s.loss) > o_.loss_bound)
      throw DivergenceError(fmt::format(
          "JEM diverged at step {}: loss {:.6g}, CE {:.6g}, mean E(x+) {:.6g}, mean E(x-) {:.6g} "
          "(non-finite or |loss| > {:g})",
          steps_ + 1, s.loss, s.ce, s.e_pos, s.e_neg, o_.loss_bound));
  }

  static std::vector<std::size_t> argmax_rows(const Array<T>& f) {
    const std::size_t n = f.shape()[0], k = f.shape()[1];
    std::vector<std::size_t> out(n);
    for (std::size_t i = 0; i < n; ++i)
      out[i] = std::size_t(std::max_element(f.data() + i * k, f.data() + (i + 1) * k) -
                           (f.data() + i * k));
    return out;
  }

  ClassifierEbm<T>& m_;
  JemOptions o_;
  std::vector<Parameter<T>*> params_;  // the model's, fetched once
  mutable Adam<T> opt_;                // (its state() is read by checkpoint())
  Rng rng_;
  std::size_t dim_;
  std::optional<std::size_t> cls_;  // the class SGLD samples this step (per-class buffers)
  Langevin<T> sgld_;
  std::vector<ReplayBuffer<T>> buffers_;
  Tape<T> tape_;
  Array<T> xp_, xn_;
  long steps_ = 0;
  Comm* comm_ = nullptr;  // data-parallel when it has more than one rank
  long check_every_ = 100;
};

// ---- evaluation -------------------------------------------------------------------------------

/// Class probabilities p(y | x) [n, K] of inputs x [n, d], in double.
template <class T>
Array<double> class_probabilities(ClassifierEbm<T>& m, const Array<T>& x) {
  Tape<T> t;
  const Array<T>& ls = log_softmax(m.logits(t, t.constant(x)), 1).value();
  Array<double> p = Array<double>::from_shape({ls.shape()[0], ls.shape()[1]});
  for (std::size_t k = 0; k < ls.size(); ++k) p.data()[k] = std::exp(double(ls.data()[k]));
  return p;
}

/// JEM's out-of-distribution scores of inputs x, each higher for "in distribution":
/// log p(x) + log Z = −E(x), max_y p(y | x), and −‖∇ₓ log p(x)‖ = −‖∇ₓ E(x)‖.
struct OodScores {
  std::vector<double> log_px;         ///< −E(x) = log p(x) + log Z
  std::vector<double> max_prob;       ///< max_y p(y | x)
  std::vector<double> neg_grad_norm;  ///< −‖∇ₓ E(x)‖
};
template <class T>
OodScores ood_scores(ClassifierEbm<T>& m, const Array<T>& x) {
  OodScores s;
  Tape<T> t;
  Var<T> xv = t.input(x, true);
  Var<T> f = m.logits(t, xv);
  Var<T> e = neg(logsumexp(f, 1));
  const std::size_t n = x.shape()[0], d = x.shape()[1], k = f.shape()[1];
  for (std::size_t i = 0; i < n; ++i) {
    s.log_px.push_back(-double(e.value()(i)));
    // max_y softmax = 1 / Σ_y exp(f_y − max f)
    const T* fi = f.value().data() + i * k;
    const double fmax = double(*std::max_element(fi, fi + k));
    double z = 0;
    for (std::size_t j = 0; j < k; ++j) z += std::exp(double(fi[j]) - fmax);
    s.max_prob.push_back(1 / z);
  }
  t.backward(sum(e), {xv});
  const Array<T>& g = t.grad(xv);
  for (std::size_t i = 0; i < n; ++i)
    s.neg_grad_norm.push_back(-std::sqrt(sum_of_squares(g.data() + i * d, d)));
  return s;
}

enum class PgdNorm { Linf, L2 };

/// PGD's options.
struct PgdOptions {
  PgdNorm norm = PgdNorm::Linf;  ///< the ball: L∞ or L2
  double eps = 0.03;             ///< radius of the ball, in the input's units
  int steps = 20;                ///< ascent steps
  double step_size = 0;          ///< 0: 2.5 ε / steps (Madry et al.)
  bool random_start = true;  ///< start uniformly in the ball (L∞) or on a random direction (L2)
  double lo = -1;            ///< the inputs' valid range: low end
  double hi = 1;             ///< high end
};

/// Projected gradient ascent on the cross-entropy (Madry et al. 2018), on the tape: x_adv stays
/// within ε of x (L∞: each coordinate; L2: each row) and inside [lo, hi].
template <class T>
Array<T> pgd_attack(ClassifierEbm<T>& m, const Array<T>& x, std::span<const std::size_t> y,
                    const PgdOptions& o, Rng& rng) {
  if (!(o.eps >= 0) || o.steps < 0)
    throw std::invalid_argument("pgd_attack: eps must be >= 0 and steps >= 0");
  const std::size_t n = x.shape()[0], d = x.shape()[1];
  const double alpha = o.step_size > 0 ? o.step_size : 2.5 * o.eps / std::max(1, o.steps);
  Array<T> adv = x;
  auto project = [&](Array<T>& a) {
    for (std::size_t i = 0; i < n; ++i) {
      T* ai = a.data() + i * d;
      const T* xi = x.data() + i * d;
      if (o.norm == PgdNorm::Linf) {
        for (std::size_t k = 0; k < d; ++k)
          ai[k] = std::clamp(ai[k], T(double(xi[k]) - o.eps), T(double(xi[k]) + o.eps));
      } else {
        double r2 = 0;
        for (std::size_t k = 0; k < d; ++k) r2 += (double(ai[k]) - xi[k]) * (double(ai[k]) - xi[k]);
        const double r = std::sqrt(r2);
        if (r > o.eps)
          for (std::size_t k = 0; k < d; ++k)
            ai[k] = T(xi[k] + (double(ai[k]) - xi[k]) * o.eps / r);
      }
      for (std::size_t k = 0; k < d; ++k) ai[k] = std::clamp(ai[k], T(o.lo), T(o.hi));
    }
  };
  if (o.random_start && o.eps > 0) {
    for (std::size_t i = 0; i < n; ++i) {
      if (o.norm == PgdNorm::Linf) {
        for (std::size_t k = 0; k < d; ++k)
          adv(i, k) = T(double(x(i, k)) + rng.uniform(-o.eps, o.eps));
      } else {
        std::vector<double> u(d);
        double r2 = 0;
        for (auto& v : u) {
          v = rng.normal();
          r2 += v * v;
        }
        const double scale = o.eps * rng.uniform() / std::sqrt(r2);
        for (std::size_t k = 0; k < d; ++k) adv(i, k) = T(double(x(i, k)) + scale * u[k]);
      }
    }
    project(adv);
  }
  Tape<T> t;
  for (int s = 0; s < o.steps; ++s) {
    t.clear();
    Var<T> av = t.input(adv, true);
    Var<T> ce = neg(sum(gather(log_softmax(m.logits(t, av), 1), y)));
    t.backward(ce, {av});
    const Array<T>& g = t.grad(av);
    for (std::size_t i = 0; i < n; ++i) {
      T* ai = adv.data() + i * d;
      const T* gi = g.data() + i * d;
      if (o.norm == PgdNorm::Linf) {
        for (std::size_t k = 0; k < d; ++k)
          ai[k] += T(alpha * (gi[k] > 0 ? 1 : gi[k] < 0 ? -1 : 0));
      } else {
        const double gn = std::sqrt(sum_of_squares(gi, d));
        if (gn > 0)
          for (std::size_t k = 0; k < d; ++k) ai[k] += T(alpha * double(gi[k]) / gn);
      }
    }
    project(adv);
  }
  return adv;
}

}  // namespace ebl
