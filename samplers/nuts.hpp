// The No-U-Turn Sampler (Hoffman & Gelman 2014) with multinomial sampling along the trajectory
// (Betancourt 2017, as in Stan), a diagonal metric and the dual-averaging warm-up of
// samplers/adaptation.hpp (target acceptance statistic 0.8 by default, as in Stan).
//
// With U = E/T, inverse metric C = M⁻¹ (diagonal) and momentum p ~ N(0, M), H(x, p) = U(x) +
// ½ pᵀCp. An iteration draws p and grows a trajectory of leapfrog steps (ε, in a direction ±1
// chosen at random) by doublings: at depth j a new subtree of 2^j steps is built from the end
// it extends. A state z of the trajectory has weight exp(−H(z)); the next draw is
//   - within a subtree, one of its two halves' draws in proportion to their total weights
//     (uniform progressive sampling), and
//   - at the top, the new subtree's draw with probability min(1, w_new / w_old) (biased
//     progressive sampling, which favours the far end and mixes faster),
// which leaves the target invariant. The doubling stops when
//   - a U-turn: for the whole trajectory or any subtree, with ρ the sum of its momenta and
//     p♯ = Cp at its two ends, p♯₋·ρ ≤ 0 or p♯₊·ρ ≤ 0 (Betancourt's generalised criterion);
//     and, wherever two trees A (earlier) and B (later, in the order they were built) merge,
//     the same criterion across the seam (Stan's fix of stan-dev/stan#2799, also in PyMC and
//     AdvancedHMC): on ρ_A + p_B,first with p♯ at A's first and B's first state, and on
//     ρ_B + p_A,last with p♯ at A's last and B's last state. Without these a U-turn that falls
//     between the two halves goes unseen: on N(0, I₂₀) with step 0.78 the trajectories grew to
//     ~190 leapfrog steps instead of ~6.5. A subtree that U-turns is discarded whole;
//   - a divergence, H − H₀ > 1000 (or non-finite), the leapfrog integrator blowing up;
//   - the maximum tree depth (2^depth steps).
// The acceptance statistic that the step size adapts on is the mean of min(1, exp(H₀ − H)) over
// the trajectory's new states.
//
// NOTE: chains advance in lockstep so that every leapfrog step is one batched evaluation of E and
// ∇E over all chains (rows); a chain whose trajectory has stopped idles (its row is evaluated and
// ignored) until the deepest chain of the iteration has finished. ChainStats::gradient_evals
// counts those batched evaluations; `mean_leapfrog_steps()` is what one chain alone would need.
#pragma once

#include <cmath>
#include <vector>

#include "samplers/adaptation.hpp"
#include "samplers/common.hpp"

namespace ebl {

/// NUTS's options.
struct NutsOptions {
  int steps = 1000;          ///< draws after warm-up
  double step_size = 0.1;    ///< ε₀ (the warm-up's first; with warm-up 0, the step size)
  double temperature = 1.0;  ///< T
  int max_depth = 10;        ///< at most 2^max_depth leapfrog steps per iteration
  AdaptOptions adapt{};      ///< warm-up; its target acceptance 0 (the default) means 0.8
};

/// The No-U-Turn Sampler (see the top of this file), with Stan's warm-up.
template <class T>
class Nuts {
 public:
  static constexpr double kDefaultTargetAccept = 0.8;  ///< Stan's δ

  /// A sampler for the energy function `energy`; throws on invalid options.
  Nuts(EnergyFn<T> energy, NutsOptions opt) : eval_(std::move(energy)), opt_(opt) {
    opt_.adapt = with_target(opt_.adapt, kDefaultTargetAccept, "NUTS");
    if (!(opt_.step_size > 0) || !(opt_.temperature > 0) || opt_.steps < 0 || opt_.adapt.warmup < 0)
      throw std::invalid_argument(
          "NUTS: step size and temperature must be > 0, steps and warm-up >= 0");
    if (opt_.max_depth < 1 || opt_.max_depth > 20)
      throw std::invalid_argument("NUTS: the maximum tree depth must be in [1, 20]");
  }

  /// Warm-up (adapting ε and C; not observed), then opt.steps draws of the chains x [n, d], in
  /// place. ChainStats::acceptance is the mean acceptance statistic of the draws.
  ChainStats run(Array<T>& x, Rng& rng, const Observer<T>& observe = {}) {
    n_ = x.shape()[0];
    d_ = x.size() / std::max<std::size_t>(n_, 1);
    inv_metric_.assign(d_, 1.0);
    allocate();
    eval_(x, e_, g_);
    evals_ = 1;
    double eps = opt_.step_size;
    DualAveraging da(eps, opt_.adapt);
    WarmupSchedule schedule(opt_.adapt.warmup, opt_.adapt.adapt_metric);
    VarianceEstimator var(d_);
    for (int i = 0; i < opt_.adapt.warmup; ++i) {
      poll_interrupt();
      const double a = iteration(x, eps, rng);
      if (opt_.adapt.adapt_step_size) eps = da.update(a);
      if (schedule.in_slow_window(i))
        for (std::size_t r = 0; r < n_; ++r) var.add(x.data() + r * d_);
      if (schedule.ends_window(i)) {
        inv_metric_ = var.regularised_variance();
        var.reset();
        if (opt_.adapt.adapt_step_size) da.restart(eps);
      }
    }
    if (opt_.adapt.warmup > 0 && opt_.adapt.adapt_step_size) eps = da.averaged_step_size();
    adaptation_.step_size = eps;
    adaptation_.target_accept = opt_.adapt.target_accept;
    adaptation_.inverse_metric = inv_metric_;
    ChainStats stats;
    double accept = 0;
    depth_hist_.assign(std::size_t(opt_.max_depth) + 1, 0);
    leapfrog_total_ = 0;
    divergences_ = 0;
    for (int t = 0; t < opt_.steps; ++t) {
      poll_interrupt();
      stats.record(e_, g_);
      accept += iteration(x, eps, rng, true);
      if (observe) observe(x, e_);
    }
    stats.proposals = std::size_t(opt_.steps) * n_;
    stats.acceptance = opt_.steps ? accept / double(opt_.steps) : 1.0;
    stats.gradient_evals = evals_;
    return stats;
  }

  /// What the last run's warm-up chose (step size, metric).
  const Adaptation& adaptation() const { return adaptation_; }
  /// Of the draws after warm-up: how many iterations stopped at each tree depth (index = depth),
  /// the mean number of leapfrog steps per chain and iteration, and the divergent iterations.
  const std::vector<std::size_t>& depth_histogram() const { return depth_hist_; }
  /// Leapfrog steps per chain and draw in the last run.
  double mean_leapfrog_steps() const {
    const double iters = double(opt_.steps) * double(n_);
    return iters > 0 ? double(leapfrog_total_) / iters : 0.0;
  }
  /// Divergent iterations among the last run's draws.
  std::size_t divergences() const { return divergences_; }

 private:
  // A subtree's summary per chain: its draw (x, ∇E, E), log Σ exp(H₀ − H) over its states, the
  // sum of its momenta ρ, the momenta at its first and last states, and whether it is valid (no
  // U-turn inside, no divergence).
  struct Subtree {
    Array<T> x, g, p_first, p_last;
    std::vector<double> e, log_w, rho;
    std::vector<char> valid;
  };

  void allocate() {
    const Shape s{n_, d_};
    for (auto* a : {&lx_, &lp_, &lg_, &rx_, &rp_, &rg_, &ex_, &ep_, &eg_, &p0_, &sx_, &sg_}) {
      a->resize(s);
    }
    le_.assign(n_, 0), re_.assign(n_, 0), se_.assign(n_, 0), ee_.assign(n_, 0);
    subs_.resize(std::size_t(opt_.max_depth) + 1);
    for (auto& sub : subs_) {
      for (auto* a : {&sub.x, &sub.g, &sub.p_first, &sub.p_last}) a->resize(s);
      sub.e.assign(n_, 0);
      sub.log_w.assign(n_, 0);
      sub.rho.assign(n_ * d_, 0);
      sub.valid.assign(n_, 1);
    }
  }

  double kinetic(const T* p) const {
    double k = 0;
    for (std::size_t j = 0; j < d_; ++j) k += inv_metric_[j] * double(p[j]) * double(p[j]);
    return 0.5 * k;
  }
  // p♯·ρ for the momentum p (p♯ = Cp)
  double sharp_dot(const T* p, const double* rho) const {
    double s = 0;
    for (std::size_t j = 0; j < d_; ++j) s += inv_metric_[j] * double(p[j]) * rho[j];
    return s;
  }
  // The criterion across the seam of two merged trees, A built first and B after it (the
  // momenta at each one's first and last states, in build order, and their momentum sums):
  // true if a U-turn lies between them (Stan's extra checks, stan-dev/stan#2799).
  bool u_turn_across(const T* a_first, const T* a_last, const double* rho_a, const T* b_first,
                     const T* b_last, const double* rho_b) {
    seam_.resize(d_);
    for (std::size_t j = 0; j < d_; ++j) seam_[j] = rho_a[j] + double(b_first[j]);
    if (sharp_dot(a_first, seam_.data()) <= 0 || sharp_dot(b_first, seam_.data()) <= 0) return true;
    for (std::size_t j = 0; j < d_; ++j) seam_[j] = rho_b[j] + double(a_last[j]);
    return sharp_dot(a_last, seam_.data()) <= 0 || sharp_dot(b_last, seam_.data()) <= 0;
  }

  // One NUTS iteration of every chain; returns the mean acceptance statistic over chains.
  double iteration(Array<T>& x, double eps, Rng& rng, bool record = false) {
    const double inv_t = 1 / opt_.temperature;
    eps_ = eps;
    recording_ = record;
    h0_.resize(n_);
    for (std::size_t i = 0; i < n_; ++i)
      for (std::size_t j = 0; j < d_; ++j)
        p0_.data()[i * d_ + j] = T(rng.normal() / std::sqrt(inv_metric_[j]));
    for (std::size_t i = 0; i < n_; ++i)
      h0_[i] = double(e_(i)) * inv_t + kinetic(p0_.data() + i * d_);
    // the trajectory so far: one state, which is also the draw
    lx_ = x, lp_ = p0_, lg_ = g_, rx_ = x, rp_ = p0_, rg_ = g_;
    for (std::size_t i = 0; i < n_; ++i) le_[i] = re_[i] = double(e_(i));
    sx_ = x, sg_ = g_;
    for (std::size_t i = 0; i < n_; ++i) se_[i] = double(e_(i));
    log_w_.assign(n_, 0.0);  // log exp(H₀ − H₀)
    rho_.assign(p0_.begin(), p0_.end());
    running_.assign(n_, 1);
    accept_sum_.assign(n_, 0.0);
    steps_.assign(n_, 0);
    depth_.assign(n_, 0);
    dir_.assign(n_, 1);
    for (int depth = 0; depth < opt_.max_depth; ++depth) {
      bool any = false;
      for (std::size_t i = 0; i < n_; ++i) any = any || running_[i];
      if (!any) break;
      // each running chain extends its left or right end
      for (std::size_t i = 0; i < n_; ++i) {
        dir_[i] = rng.uniform() < 0.5 ? -1 : 1;
        const bool right = dir_[i] > 0;
        // a stopped chain idles at its draw (a finite state, whatever its ends reached)
        const Array<T>& ax = !running_[i] ? sx_ : right ? rx_ : lx_;
        const Array<T>& ap = right ? rp_ : lp_;
        const Array<T>& ag = !running_[i] ? sg_ : right ? rg_ : lg_;
        std::copy_n(ax.data() + i * d_, d_, ex_.data() + i * d_);
        std::copy_n(ap.data() + i * d_, d_, ep_.data() + i * d_);
        std::copy_n(ag.data() + i * d_, d_, eg_.data() + i * d_);
        ee_[i] = !running_[i] ? se_[i] : right ? re_[i] : le_[i];
      }
      active_ = running_;
      build(std::size_t(depth), rng);
      Subtree& s = subs_[std::size_t(depth)];
      for (std::size_t i = 0; i < n_; ++i) {
        if (!running_[i]) continue;
        // the seam between the trajectory so far (A: from its far end to the end extended, whose
        // momentum is still in lp_/rp_) and the new subtree (B), before the ends move
        const bool right = dir_[i] > 0;
        const bool seam_turn =
            s.valid[i] &&
            u_turn_across((right ? lp_ : rp_).data() + i * d_, (right ? rp_ : lp_).data() + i * d_,
                          rho_.data() + i * d_, s.p_first.data() + i * d_, s.p_last.data() + i * d_,
                          s.rho.data() + i * d_);
        // the extended end moves even if the subtree is discarded (it is not used again then)
        Array<T>& ax = dir_[i] > 0 ? rx_ : lx_;
        Array<T>& ap = dir_[i] > 0 ? rp_ : lp_;
        Array<T>& ag = dir_[i] > 0 ? rg_ : lg_;
        std::copy_n(ex_.data() + i * d_, d_, ax.data() + i * d_);
        std::copy_n(ep_.data() + i * d_, d_, ap.data() + i * d_);
        std::copy_n(eg_.data() + i * d_, d_, ag.data() + i * d_);
        (dir_[i] > 0 ? re_ : le_)[i] = ee_[i];
        depth_[i] = depth + 1;
        if (!s.valid[i]) {
          running_[i] = 0;
          continue;
        }
        // biased progressive sampling: the new subtree's draw with probability min(1, w_new/w_old)
        if (std::log(rng.uniform()) < s.log_w[i] - log_w_[i]) {
          std::copy_n(s.x.data() + i * d_, d_, sx_.data() + i * d_);
          std::copy_n(s.g.data() + i * d_, d_, sg_.data() + i * d_);
          se_[i] = s.e[i];
        }
        log_w_[i] = log_add_exp(log_w_[i], s.log_w[i]);
        for (std::size_t j = 0; j < d_; ++j) rho_[i * d_ + j] += s.rho[i * d_ + j];
        // U-turn of the whole trajectory, between its two ends, or across the seam
        if (seam_turn || sharp_dot(lp_.data() + i * d_, rho_.data() + i * d_) <= 0 ||
            sharp_dot(rp_.data() + i * d_, rho_.data() + i * d_) <= 0)
          running_[i] = 0;
      }
    }
    double accept = 0;
    for (std::size_t i = 0; i < n_; ++i) {
      std::copy_n(sx_.data() + i * d_, d_, x.data() + i * d_);
      std::copy_n(sg_.data() + i * d_, d_, g_.data() + i * d_);
      e_(i) = T(se_[i]);
      accept += steps_[i] ? accept_sum_[i] / double(steps_[i]) : 0.0;
      if (record) {
        ++depth_hist_[std::size_t(depth_[i])];
        leapfrog_total_ += steps_[i];
      }
    }
    return n_ ? accept / double(n_) : 0.0;
  }

  // Builds a subtree of 2^depth leapfrog steps from the end state (ex_, ep_, eg_, ee_) of every
  // active chain in its direction dir_, into subs_[depth]; the end state moves along.
  void build(std::size_t depth, Rng& rng) {
    Subtree& out = subs_[depth];
    if (depth == 0) {
      leapfrog();
      for (std::size_t i = 0; i < n_; ++i) {
        if (!active_[i]) continue;
        const double h = ee_[i] / opt_.temperature + kinetic(ep_.data() + i * d_);
        const double delta = h - h0_[i];  // NaN compares false: divergent below
        ++steps_[i];
        accept_sum_[i] += std::isfinite(delta) ? std::min(1.0, std::exp(-delta)) : 0.0;
        out.valid[i] = delta <= 1000 ? 1 : 0;
        if (!out.valid[i]) {
          if (recording_) ++divergences_;
          continue;
        }
        std::copy_n(ex_.data() + i * d_, d_, out.x.data() + i * d_);
        std::copy_n(eg_.data() + i * d_, d_, out.g.data() + i * d_);
        std::copy_n(ep_.data() + i * d_, d_, out.p_first.data() + i * d_);
        std::copy_n(ep_.data() + i * d_, d_, out.p_last.data() + i * d_);
        out.e[i] = ee_[i];
        out.log_w[i] = -delta;
        for (std::size_t j = 0; j < d_; ++j) out.rho[i * d_ + j] = double(ep_.data()[i * d_ + j]);
      }
      return;
    }
    Subtree& half = subs_[depth - 1];
    build(depth - 1, rng);  // the first half, copied out before the second overwrites it
    const std::vector<char> outer = active_;
    for (std::size_t i = 0; i < n_; ++i) {
      if (!active_[i]) continue;
      out.valid[i] = half.valid[i];
      if (!half.valid[i]) {
        active_[i] = 0;
        continue;
      }
      std::copy_n(half.x.data() + i * d_, d_, out.x.data() + i * d_);
      std::copy_n(half.g.data() + i * d_, d_, out.g.data() + i * d_);
      std::copy_n(half.p_first.data() + i * d_, d_, out.p_first.data() + i * d_);
      out.e[i] = half.e[i];
      out.log_w[i] = half.log_w[i];
      std::copy_n(half.rho.data() + i * d_, d_, out.rho.data() + i * d_);
      // the first half's last momentum, kept in out.p_last until the seam is checked
      std::copy_n(half.p_last.data() + i * d_, d_, out.p_last.data() + i * d_);
    }
    build(depth - 1, rng);  // the second half, from where the first ended
    for (std::size_t i = 0; i < n_; ++i) {
      if (!active_[i]) continue;
      if (!half.valid[i]) {
        out.valid[i] = 0;
        continue;
      }
      const bool seam_turn = u_turn_across(out.p_first.data() + i * d_, out.p_last.data() + i * d_,
                                           out.rho.data() + i * d_, half.p_first.data() + i * d_,
                                           half.p_last.data() + i * d_, half.rho.data() + i * d_);
      // uniform progressive sampling: the second half's draw in proportion to its weight
      const double w = log_add_exp(out.log_w[i], half.log_w[i]);
      if (rng.uniform() < std::exp(half.log_w[i] - w)) {
        std::copy_n(half.x.data() + i * d_, d_, out.x.data() + i * d_);
        std::copy_n(half.g.data() + i * d_, d_, out.g.data() + i * d_);
        out.e[i] = half.e[i];
      }
      out.log_w[i] = w;
      std::copy_n(half.p_last.data() + i * d_, d_, out.p_last.data() + i * d_);
      double* rho = out.rho.data() + i * d_;
      for (std::size_t j = 0; j < d_; ++j) rho[j] += half.rho[i * d_ + j];
      if (seam_turn || sharp_dot(out.p_first.data() + i * d_, rho) <= 0 ||
          sharp_dot(out.p_last.data() + i * d_, rho) <= 0)
        out.valid[i] = 0;  // a U-turn inside: the subtree is discarded
    }
    active_ = outer;  // the caller sees this subtree's validity in out.valid
  }

  // One leapfrog step of every active chain's end state, in its direction: one batched E, ∇E.
  void leapfrog() {
    // (polled per leapfrog step, not only per iteration: a trajectory may be 2^max_depth steps,
    // seconds on a loaded machine; an interrupted iteration leaves the chains where it began)
    poll_interrupt();
    const double inv_t = 1 / opt_.temperature;
    for (std::size_t i = 0; i < n_; ++i) {
      if (!active_[i]) continue;
      const double h = dir_[i] * eps_;
      T *x = ex_.data() + i * d_, *p = ep_.data() + i * d_;
      const T* g = eg_.data() + i * d_;
      for (std::size_t j = 0; j < d_; ++j) {
        p[j] = T(double(p[j]) - 0.5 * h * inv_t * double(g[j]));
        x[j] = T(double(x[j]) + h * inv_metric_[j] * double(p[j]));
      }
    }
    eval_(ex_, ee_arr_, eg_);  // every row: idle chains' rows are unchanged and finite
    ++evals_;
    for (std::size_t i = 0; i < n_; ++i) {
      ee_[i] = double(ee_arr_(i));
      if (!active_[i]) continue;
      const double h = dir_[i] * eps_;
      T* p = ep_.data() + i * d_;
      const T* g = eg_.data() + i * d_;
      for (std::size_t j = 0; j < d_; ++j) p[j] = T(double(p[j]) - 0.5 * h * inv_t * double(g[j]));
    }
  }

  static double log_add_exp(double a, double b) {
    const double m = std::max(a, b);
    if (m == -INFINITY) return m;
    return m + std::log(std::exp(a - m) + std::exp(b - m));
  }

  EnergyGrad<T> eval_;
  NutsOptions opt_;
  std::size_t n_ = 0, d_ = 0, evals_ = 0;
  double eps_ = 0;
  std::vector<double> inv_metric_;
  Adaptation adaptation_;
  Array<T> e_, g_;                        // the chains' current E, ∇E
  Array<T> lx_, lp_, lg_, rx_, rp_, rg_;  // the trajectory's left and right ends
  Array<T> ex_, ep_, eg_, ee_arr_;        // the end being extended
  Array<T> p0_, sx_, sg_;                 // initial momenta; the current draw
  std::vector<double> le_, re_, ee_ = {}, se_, h0_, log_w_, rho_, accept_sum_, seam_;
  std::vector<Subtree> subs_;
  std::vector<char> running_, active_;
  std::vector<int> dir_, depth_;
  std::vector<std::size_t> steps_, depth_hist_;
  std::size_t leapfrog_total_ = 0, divergences_ = 0;
  bool recording_ = false;
};

}  // namespace ebl
