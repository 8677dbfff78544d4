// Training without MCMC, and CD with the gradient through its last step: losses on a data batch
// that any Energy can be trained with, built on the recorded backward pass
// (autodiff/higher_order.hpp). With s(x) = −∇ₓE(x), the model's score:
//
//   exact score matching (Hyvärinen 2005)   L = mean_i ½‖∇ₓE(x_i)‖² − ΔE(x_i)
//   denoising score matching (Vincent 2011) x̃ = x + σε:  L = mean_i ½‖ε_i − σ_i ∇ₓE(x̃_i)‖²
//       (= σ² ½‖s(x̃) − ∇ log q_σ(x̃ | x)‖², the σ²-weighted loss of Song & Ermon 2019, so that a
//       list of levels, one drawn per row, weighs them alike); its minimiser is the data density
//       convolved with N(0, σ²I), not the data density
//   sliced score matching (Song et al. 2019) L = mean_{i,v} ½(vᵀ∇ₓE)² − vᵀ∇²ₓE v, v Rademacher or
//       Gaussian (E[vvᵀ] = I: in expectation exact score matching); the variance-reduced form
//       replaces ½(vᵀ∇E)² by its expectation ½‖∇E‖²
//   energy discrepancy (Schröder et al., NeurIPS 2023)  y = x + √t ξ, x'_j = y + √t ξ_j (j ≤ M):
//       L = mean_i log( w + Σ_j exp(E(x_i) − E(x'_ij)) ) (up to the constant log M), with the
//       stabiliser w (the reference code's defaults: t = 1, M = 4, w = 1); no score, no chain
//   noise-contrastive estimation (Gutmann & Hyvärinen 2010)  log p_m(x) = −E(x) − c, c learned;
//       ν noise rows y per data row from a law q:  L = −mean_data log σ(G) − ν mean_noise
//       log σ(−G), G(u) = log p_m(u) − log ν q(u); at its optimum c = log Z. Here q is a Gaussian
//       with the data's means and standard deviations (ObjectiveOptions::nce_*), c starts at the
//       importance-sampling estimate log mean_y e^{−E(y) − log q(y)} and has its own Adam
//   improved CD's KL term (Du et al. 2021)  x_K = x_{K−1} − ε∇ₓE_θ(x_{K−1}) + √(2εT) ξ, the last
//       Langevin step kept on the tape; L_KL = mean E_θ̄(x_K), with θ̄ = θ held fixed (the tape's
//       frozen parameters), so its gradient is the one that flows through the sampler
//       (ebm/cd.hpp adds it to the CD loss with CdOptions::kl_weight). Du et al.'s entropy term
//       (nearest neighbours in a buffer) is not included.
#pragma once

#include <cmath>
#include <numbers>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autodiff/higher_order.hpp"
#include "autodiff/optim.hpp"
#include "ebm/energy.hpp"
#include "io/checkpoint.hpp"
#include "samplers/common.hpp"

namespace ebl {

enum class Projection { Rademacher, Gaussian };

/// ½‖∇ₓE‖² − ΔE per row, averaged; ΔE exactly (d second backward passes).
template <class T>
Var<T> score_matching_loss(Energy<T>& energy, Tape<T>& t, const Array<T>& x) {
  Var<T> xv = t.input(x, true);
  Var<T> e = energy(t, xv);
  return mean(sub(affine(grad_norm_sq(e, xv), T(0.5), T(0)), laplacian(e, xv)));
}

/// Denoising score matching at the given noise levels (one drawn per row when there are several).
template <class T>
Var<T> denoising_score_matching_loss(Energy<T>& energy, Tape<T>& t, const Array<T>& x,
                                     const std::vector<double>& sigmas, Rng& rng) {
  if (sigmas.empty()) throw std::invalid_argument("denoising score matching: no noise level");
  const std::size_t n = x.shape()[0], d = x.shape()[1];
  Array<T> eps = rng.normal_array<T>({n, d}), xt(x.shape()), sig(Shape{n, 1});
  for (std::size_t i = 0; i < n; ++i) {
    const double s = sigmas.size() == 1 ? sigmas[0] : sigmas[rng.below(sigmas.size())];
    sig(i, 0) = T(s);
    for (std::size_t j = 0; j < d; ++j) xt(i, j) = T(double(x(i, j)) + s * double(eps(i, j)));
  }
  Var<T> xv = t.input(xt, true);
  Var<T> g = grad_x(energy(t, xv), xv);
  Var<T> r = sub(t.constant(eps), mul(t.constant(sig), g));  // ε − σ ∇ₓE(x̃)
  return affine(mean(sum(square(r), 1, false)), T(0.5), T(0));
}

/// Sliced score matching with `projections` random directions per row.
template <class T>
Var<T> sliced_score_matching_loss(Energy<T>& energy, Tape<T>& t, const Array<T>& x,
                                  std::size_t projections, Projection kind, Rng& rng,
                                  bool variance_reduced = false) {
  if (projections == 0) throw std::invalid_argument("sliced score matching: no projection");
  Var<T> xv = t.input(x, true);
  Var<T> g = grad_x(energy(t, xv), xv);
  Var<T> total;
  for (std::size_t p = 0; p < projections; ++p) {
    Array<T> v(x.shape());
    for (auto& e : v)
      e = kind == Projection::Rademacher ? (rng.bernoulli(0.5) ? T(1) : T(-1)) : T(rng.normal());
    Var<T> vc = t.constant(v);
    Var<T> gv = sum(mul(g, vc), 1, false);                // vᵀ∇E per row
    Var<T> vhv = sum(mul(grad_x(gv, xv), vc), 1, false);  // vᵀ H v per row
    Var<T> first = variance_reduced ? affine(sum(square(g), 1, false), T(0.5), T(0))
                                    : affine(square(gv), T(0.5), T(0));
    Var<T> term = sub(first, vhv);
    total = total.tape ? add(total, term) : term;
  }
  return affine(mean(total), T(1) / T(projections), T(0));
}

/// Energy discrepancy's settings (Schröder et al. 2023's defaults).
struct EnergyDiscrepancyOptions {
  double t = 1.0;     ///< noise variance of each perturbation (√t ξ)
  std::size_t m = 4;  ///< contrastive samples per data point
  double w = 1.0;     ///< stabiliser (0: none)
};

/// Energy discrepancy with Gaussian perturbations (see the top of the file).
template <class T>
Var<T> energy_discrepancy_loss(Energy<T>& energy, Tape<T>& t, const Array<T>& x,
                               const EnergyDiscrepancyOptions& o, Rng& rng) {
  if (o.m == 0 || !(o.t > 0) || o.w < 0)
    throw std::invalid_argument(
        fmt::format("energy discrepancy: needs m >= 1, t > 0 and w >= 0 (got m {}, t {}, w {})",
                    o.m, o.t, o.w));
  const std::size_t n = x.shape()[0], d = x.shape()[1], m = o.m;
  const double st = std::sqrt(o.t);
  Array<T> xc(Shape{n * m, d});
  std::vector<double> y(d);  // y_i = x_i + √t ξ, shared by x_i's m contrastive samples
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < d; ++k) y[k] = double(x(i, k)) + st * rng.normal();
    for (std::size_t j = 0; j < m; ++j)
      for (std::size_t k = 0; k < d; ++k) xc(i * m + j, k) = T(y[k] + st * rng.normal());
  }
  Var<T> e_pos = reshape(energy(t, t.input(x)), {std::ptrdiff_t(n), 1});
  Var<T> e_neg = reshape(energy(t, t.input(xc)), {std::ptrdiff_t(n), std::ptrdiff_t(m)});
  Var<T> val = sub(e_pos, e_neg);  // [n, m]: E(x_i) − E(x'_ij)
  if (o.w > 0) {
    const Var<T> parts[2] = {val, t.input(xt::broadcast(T(std::log(o.w)), Shape{n, 1}))};
    val = concat(std::span<const Var<T>>(parts, 2), 1);
  }
  return mean(logsumexp(val, 1, false));
}

/// The last Langevin step on the tape and improved CD's KL term: returns mean E_θ̄(x_K) and
/// writes x_K (the chain's new state) into x_last. x_prev is the state before the last step;
/// noise is the step's √(2εT) ξ, drawn by the caller.
template <class T>
Var<T> cd_kl_term(Energy<T>& energy, Tape<T>& t, const Array<T>& x_prev, const Array<T>& noise,
                  double step_size, Array<T>& x_last) {
  Var<T> xv = t.input(x_prev, true);
  Var<T> g = grad_x(energy(t, xv), xv);  // depends on θ: the recorded backward
  Var<T> xk = add(sub(xv, affine(g, T(step_size), T(0))), t.constant(noise));
  x_last = xk.value();
  const bool was = t.params_frozen();
  t.set_params_frozen(true);  // E_θ̄: the parameters as constants
  Var<T> e = energy(t, xk);
  t.set_params_frozen(was);
  return mean(e);
}

// ---- a trainer for the MCMC-free losses ---------------------------------------------------------

enum class ObjectiveKind { ScoreMatching, Denoising, Sliced, EnergyDiscrepancy, Nce };

/// NCE loss of rows x (data) against rows y (noise, ν = |y| / |x| of them), given log q of each
/// row under the noise law and c = the learned log Z (a one-element parameter on the tape):
///   (Σ_x softplus(−G(x)) + Σ_y softplus(G(y))) / |x|,   G = −E − c − log ν q.
template <class T>
Var<T> nce_loss(Tape<T>& t, Energy<T>& energy, Var<T> log_z, const Array<T>& x,
                const std::vector<double>& log_q_x, const Array<T>& y,
                const std::vector<double>& log_q_y) {
  const std::size_t n = x.shape()[0], m = y.shape()[0];
  if (n == 0 || m == 0 || log_q_x.size() != n || log_q_y.size() != m)
    throw std::invalid_argument(
        fmt::format("nce_loss: {} data rows with {} log q, {} noise rows with {} log q", n,
                    log_q_x.size(), m, log_q_y.size()));
  const double log_nu = std::log(double(m) / double(n));
  Array<T> qx(Shape{n}), qy(Shape{m});
  for (std::size_t r = 0; r < n; ++r) qx(r) = T(log_q_x[r] + log_nu);
  for (std::size_t r = 0; r < m; ++r) qy(r) = T(log_q_y[r] + log_nu);
  Var<T> c = reshape(log_z, {1});
  Var<T> gx = neg(energy(t, t.input(x))) - c - t.input(qx);
  Var<T> gy = neg(energy(t, t.input(y))) - c - t.input(qy);
  return (sum(softplus(neg(gx))) + sum(softplus(gy))) * T(1.0 / double(n));
}

/// ObjectiveTrainer's options: which loss, and its settings.
struct ObjectiveOptions {
  ObjectiveKind kind = ObjectiveKind::ScoreMatching;  ///< the loss descended
  std::vector<double> dsm_sigmas{0.1};  ///< denoising: the noise levels (σ²-weighted)
  std::size_t ssm_projections = 1;      ///< sliced: projections per sample
  Projection ssm_projection = Projection::Rademacher;  ///< sliced: the projections' law
  bool ssm_variance_reduced = false;  ///< sliced: the variance-reduced form (Gaussian only)
  EnergyDiscrepancyOptions ed{};      ///< energy discrepancy's t, M and w
  double nce_ratio = 1.0;             ///< NCE: noise rows per data row (ν)
  std::vector<double> nce_mean{};     ///< NCE: the Gaussian noise's means (the data's)
  std::vector<double> nce_std{};      ///< NCE: the Gaussian noise's standard deviations (> 0)
  double nce_lr = 1e-3;               ///< NCE: Adam's learning rate for c = log Z
  double loss_bound = 1e6;  ///< divergence guard: |L| beyond this (or non-finite) stops the run
};

/// What one ObjectiveTrainer step reports.
struct ObjectiveStepStats {
  double loss = 0;       ///< the loss
  double grad_norm = 0;  ///< ‖∇θ loss‖
};

/// Descends one of the losses above with an optimizer; owns its generator (seeded), so that a
/// checkpoint captures the run. A non-finite or too large loss, or a non-finite gradient, throws
/// DivergenceError (ebm/cd.hpp) before the parameters or the optimizer change.
template <class T>
class ObjectiveTrainer {
 public:
  /// Trains `energy` with `opt` (both referenced); the generator is seeded with `seed`.
  ObjectiveTrainer(Energy<T>& energy, Optimizer<T>& opt, const ObjectiveOptions& o,
                   std::uint64_t seed)
      : energy_(energy),
        opt_(opt),
        o_(o),
        params_(energy.parameters()),
        rng_(seed),
        log_z_("nce_log_z", Array<T>(Shape{1}, T(0))),
        log_z_opt_(std::vector<Parameter<T>*>{&log_z_}, {.lr = o.nce_lr}) {
    if (o.kind == ObjectiveKind::Nce) {
      if (o.nce_mean.empty() || o.nce_mean.size() != o.nce_std.size() || !(o.nce_ratio > 0))
        throw std::invalid_argument(
            "ObjectiveTrainer: NCE needs the noise's means and standard deviations (one per "
            "dimension) and a ratio > 0");
      for (double s : o.nce_std)
        if (!(s > 0)) throw std::invalid_argument("ObjectiveTrainer: NCE noise std must be > 0");
      params_.push_back(&log_z_);  // c is trained with the energy, by its own Adam
    }
  }

  /// The configured loss of a batch x on tape t (its noise drawn from the trainer's generator).
  Var<T> loss(Tape<T>& t, const Array<T>& x) {
    switch (o_.kind) {
      case ObjectiveKind::ScoreMatching:
        return score_matching_loss(energy_, t, x);
      case ObjectiveKind::Denoising:
        return denoising_score_matching_loss(energy_, t, x, o_.dsm_sigmas, rng_);
      case ObjectiveKind::Sliced:
        return sliced_score_matching_loss(energy_, t, x, o_.ssm_projections, o_.ssm_projection,
                                          rng_, o_.ssm_variance_reduced);
      case ObjectiveKind::EnergyDiscrepancy:
        return energy_discrepancy_loss(energy_, t, x, o_.ed, rng_);
      case ObjectiveKind::Nce:
        return nce(t, x);
    }
    throw std::logic_error("ObjectiveTrainer: unknown objective");
  }

  /// One step on the batch x: the loss, its gradient, the optimizer's update.
  ObjectiveStepStats step(const Array<T>& x) {
    tape_.clear();
    Var<T> l = loss(tape_, x);
    ObjectiveStepStats s;
    s.loss = double(l.item());
    if (!std::isfinite(s.loss) || std::abs(s.loss) > o_.loss_bound)
      throw DivergenceError(
          fmt::format("training diverged at step {}: loss {:.6g} (non-finite or "
                      "|loss| > {:g})",
                      step_ + 1, s.loss, o_.loss_bound));
    opt_.zero_grad();
    log_z_opt_.zero_grad();
    tape_.backward(l, {}, params_);
    s.grad_norm = checked_gradient_norm(params_, step_);
    opt_.step();
    if (o_.kind == ObjectiveKind::Nce) log_z_opt_.step();
    ++step_;
    return s;
  }

  /// Parameters, optimizer state, generator and step count.
  Checkpoint checkpoint() const {
    Checkpoint c;
    put_training_state(c, params_, opt_);
    if (o_.kind == ObjectiveKind::Nce)
      put_training_state<T>(c, {&log_z_}, log_z_opt_, "nce/");
    put_rng(c, rng_);
    c.integers["step"] = std::uint64_t(step_);
    return c;
  }
  /// Continues the run a checkpoint() saved.
  void restore(const Checkpoint& c) {
    get_training_state(c, params_, opt_);
    if (o_.kind == ObjectiveKind::Nce) get_training_state(c, {&log_z_}, log_z_opt_, "nce/");
    get_rng(c, rng_);
    step_ = long(c.integer("step"));
  }
  /// Only the energy's parameters from a checkpoint (a new run from them).
  void restore_parameters(const Checkpoint& c) {
    for (auto* p : energy_.parameters()) c.get("param/" + p->name, p->value);
  }
  /// The trainer's generator.
  Rng& rng() { return rng_; }
  /// Steps taken.
  long steps_done() const { return step_; }
  /// NCE's c, its estimate of log Z.
  double nce_log_z() const { return double(log_z_.value(0)); }

 private:
  // NCE: ν·B noise rows from N(mean, diag std²); c starts at the noise's importance-sampling
  // estimate of log Z on the first step
  Var<T> nce(Tape<T>& t, const Array<T>& x) {
    const std::size_t n = x.shape()[0], d = x.shape()[1];
    if (d != o_.nce_mean.size())
      throw std::invalid_argument(
          fmt::format("ObjectiveTrainer: NCE noise of {} dimensions for "
                      "data of {}",
                      o_.nce_mean.size(), d));
    const std::size_t m = std::max<std::size_t>(1, std::size_t(std::lround(o_.nce_ratio * n)));
    Array<T> y(Shape{m, d});
    for (std::size_t r = 0; r < m; ++r)
      for (std::size_t i = 0; i < d; ++i)
        y(r, i) = T(o_.nce_mean[i] + o_.nce_std[i] * rng_.normal());
    auto log_q = [&](const Array<T>& a) {
      std::vector<double> lq(a.shape()[0], 0.0);
      for (std::size_t r = 0; r < a.shape()[0]; ++r)
        for (std::size_t i = 0; i < d; ++i) {
          const double z = (double(a(r, i)) - o_.nce_mean[i]) / o_.nce_std[i];
          lq[r] -= 0.5 * z * z + std::log(o_.nce_std[i]) + 0.5 * std::log(2 * std::numbers::pi);
        }
      return lq;
    };
    const std::vector<double> lqy = log_q(y);
    if (step_ == 0 && !c_started_) {
      Tape<T> t0;
      const Array<T> ey = energy_(t0, t0.input(y)).value();
      double mx = -INFINITY, acc = 0;
      for (std::size_t r = 0; r < m; ++r) mx = std::max(mx, -double(ey(r)) - lqy[r]);
      for (std::size_t r = 0; r < m; ++r) acc += std::exp(-double(ey(r)) - lqy[r] - mx);
      log_z_.value(0) = T(mx + std::log(acc / double(m)));
      c_started_ = true;
    }
    return nce_loss(t, energy_, t.param(log_z_), x, log_q(x), y, lqy);
  }

  Energy<T>& energy_;
  Optimizer<T>& opt_;
  ObjectiveOptions o_;
  std::vector<Parameter<T>*> params_;
  Rng rng_;
  mutable Parameter<T> log_z_;  // (mutable: checkpoint() hands out its address)
  mutable Adam<T> log_z_opt_;  // (checkpoint() reads its state through the Optimizer API)
  bool c_started_ = false;
  Tape<T> tape_;
  long step_ = 0;
};

}  // namespace ebl
