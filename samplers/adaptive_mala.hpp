// MALA that tunes itself: the step size by dual averaging towards a target acceptance rate (0.574,
// optimal for MALA in high dimension; Roberts & Rosenthal 1998) and a diagonal preconditioner C
// learned from the warm-up draws (samplers/adaptation.hpp), then frozen. With U = E/T and C the
// inverse metric, the proposal is the preconditioned Langevin step
//     y = x − ε C ∇E(x) + √(2εT C) ξ,      q(y|x) = N(y; x − εC∇E(x), 2εT C),
// accepted with probability min(1, π(y) q(x|y) / (π(x) q(y|x))), chain by chain, so that after
// warm-up (ε and C fixed) the chain is exact MALA in the coordinates x/√C. At C = 1 the step is
// Mala's (samplers/mala.hpp). All chains (rows of x) share ε and C, adapted from the mean
// acceptance probability over the chains and the pooled variance of their draws.
#pragma once

#include <cmath>
#include <vector>

#include "samplers/adaptation.hpp"
#include "samplers/common.hpp"

namespace ebl {

/// Adaptive MALA's options.
struct AdaptiveMalaOptions {
  int steps = 1000;          ///< draws after warm-up
  double step_size = 0.1;    ///< ε₀, the warm-up's first step size
  double temperature = 1.0;  ///< T
  AdaptOptions adapt{};      ///< warm-up length, target acceptance (0: 0.574), metric on/off
};

/// MALA with Stan's warm-up: dual averaging of ε towards a target acceptance and a diagonal
/// metric learnt in windows (samplers/adaptation.hpp), then exact draws at the frozen values.
template <class T>
class AdaptiveMala {
 public:
  static constexpr double kDefaultTargetAccept = 0.574;  ///< Roberts & Rosenthal (1998)

  /// A sampler for the energy function `energy`; throws on invalid options.
  AdaptiveMala(EnergyFn<T> energy, AdaptiveMalaOptions opt) : eval_(std::move(energy)), opt_(opt) {
    opt_.adapt = with_target(opt_.adapt, kDefaultTargetAccept, "adaptive MALA");
    if (!(opt_.step_size > 0) || !(opt_.temperature > 0) || opt_.steps < 0 || opt_.adapt.warmup < 0)
      throw std::invalid_argument(
          "adaptive MALA: step size and temperature must be > 0, steps and warm-up >= 0");
  }

  /// Warm-up (adapting ε and C; its draws are not observed) and then opt.steps exact draws, in
  /// place on the chains x [n, d]. The returned stats cover the draws after warm-up.
  ChainStats run(Array<T>& x, Rng& rng, const Observer<T>& observe = {}) {
    const std::size_t n = x.shape()[0], d = x.size() / std::max<std::size_t>(n, 1);
    inv_metric_.assign(d, 1.0);
    double eps = opt_.step_size;
    eval_(x, e_, g_);
    std::size_t evals = 1;
    // warm-up
    DualAveraging da(eps, opt_.adapt);
    WarmupSchedule schedule(opt_.adapt.warmup, opt_.adapt.adapt_metric);
    VarianceEstimator var(d);
    double window_accept = 0;
    int window_count = 0;
    for (int i = 0; i < opt_.adapt.warmup; ++i) {
      poll_interrupt();
      const double a = step(x, eps, rng, nullptr);
      ++evals;
      window_accept += a;
      ++window_count;
      if (opt_.adapt.adapt_step_size) eps = da.update(a);
      if (schedule.in_slow_window(i))
        for (std::size_t r = 0; r < n; ++r) var.add(x.data() + r * d);
      if (schedule.ends_window(i)) {
        inv_metric_ = var.regularised_variance();
        var.reset();
        // the metric changed: the proposal did, so the step size starts adapting afresh
        if (opt_.adapt.adapt_step_size) da.restart(eps);
        window_accept = 0;
        window_count = 0;
      }
    }
    if (opt_.adapt.warmup > 0 && opt_.adapt.adapt_step_size) eps = da.averaged_step_size();
    adaptation_.step_size = eps;
    adaptation_.target_accept = opt_.adapt.target_accept;
    adaptation_.inverse_metric = inv_metric_;
    adaptation_.warmup_acceptance = window_count ? window_accept / window_count : NAN;
    // draws: a fixed kernel from here on
    ChainStats stats;
    for (int t = 0; t < opt_.steps; ++t) {
      poll_interrupt();
      stats.record(e_, g_);
      step(x, eps, rng, &stats);
      ++evals;
      if (observe) observe(x, e_);
    }
    stats.gradient_evals = evals;
    stats.finish();
    return stats;
  }

  /// The step size and inverse metric chosen by the last run's warm-up.
  const Adaptation& adaptation() const { return adaptation_; }

 private:
  // One preconditioned MALA iteration at step size eps; returns the mean over chains of the
  // acceptance probability min(1, α) (0 for a non-finite proposal).
  double step(Array<T>& x, double eps, Rng& rng, ChainStats* stats) {
    const std::size_t n = x.shape()[0], d = x.size() / std::max<std::size_t>(n, 1);
    const double temp = opt_.temperature;
    y_.resize(x.shape());
    sd_.resize(d);
    for (std::size_t k = 0; k < d; ++k) sd_[k] = std::sqrt(2 * eps * temp * inv_metric_[k]);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t k = 0; k < d; ++k) {
        const std::size_t j = i * d + k;
        y_.data()[j] = T(double(x.data()[j]) - eps * inv_metric_[k] * double(g_.data()[j]) +
                         sd_[k] * rng.normal());
      }
    eval_(y_, ey_, gy_);
    double accept_sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      // log q(x|y) − log q(y|x), each −Σ_k (to − from + εC∇E(from))² / (4εT C_k)
      double fwd = 0, bwd = 0;
      for (std::size_t k = 0; k < d; ++k) {
        const std::size_t j = i * d + k;
        const double xk = x.data()[j], yk = y_.data()[j], c = inv_metric_[k];
        const double a = yk - xk + eps * c * double(g_.data()[j]),
                     b = xk - yk + eps * c * double(gy_.data()[j]);
        fwd += a * a / c;
        bwd += b * b / c;
      }
      const double log_alpha =
          -(double(ey_(i)) - double(e_(i))) / temp - (bwd - fwd) / (4 * eps * temp);
      const double alpha = std::isnan(log_alpha) ? 0.0 : std::min(1.0, std::exp(log_alpha));
      accept_sum += alpha;
      if (stats) ++stats->proposals;
      if (std::log(rng.uniform()) < log_alpha) {
        if (stats) ++stats->accepted;
        accept_chain(i, d, y_, gy_, ey_, x, g_, e_);
      }
    }
    return n ? accept_sum / double(n) : 0.0;
  }

  EnergyGrad<T> eval_;
  AdaptiveMalaOptions opt_;
  std::vector<double> inv_metric_, sd_;
  Adaptation adaptation_;
  Array<T> e_, g_, y_, ey_, gy_;
};

}  // namespace ebl
