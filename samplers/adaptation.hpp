// Warm-up adaptation shared by the adaptive samplers (adaptive MALA, NUTS), as Stan does it:
//
//   - the step size by dual averaging (Nesterov 2009; Hoffman & Gelman 2014, Algorithm 5) towards
//     a target mean acceptance statistic δ: with ā_m the statistic of warm-up iteration m,
//         H̄_m = (1 − 1/(m + t₀)) H̄_{m−1} + (δ − ā_m) / (m + t₀)
//         log ε_m = μ − √m / γ · H̄_m,        μ = log(10 ε₀)
//         log ε̄_m = m^{−κ} log ε_m + (1 − m^{−κ}) log ε̄_{m−1}
//     the chain uses ε_m during warm-up and the averaged ε̄ after it;
//   - a diagonal inverse metric C (the preconditioner: C = M⁻¹, so that the sampler moves in
//     coordinates scaled by √C) estimated as the variance of the draws in windows of doubling
//     length, regularised towards 10⁻³ as Stan does, (N/(N+5)) var + 10⁻³ · 5/(N+5); after each
//     window the step size's dual averaging restarts at μ = log(10 ε);
//   - windows: an initial fast buffer (step size only), slow windows of 25, 50, 100, … iterations
//     (the last one stretched to the terminal buffer), a terminal fast buffer; Stan's 75 / 25 / 50
//     when the warm-up has at least 150 iterations, else 15% / 75% / 10%.
// After warm-up both are frozen: the chain from then on is a fixed Markov kernel that leaves the
// target invariant, so its draws are exact (the adaptation only chose the kernel).
#pragma once

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace ebl {

/// Warm-up options of the adaptive samplers (Stan's defaults).
struct AdaptOptions {
  int warmup = 500;  ///< adaptation iterations (their draws are discarded)
  /// δ, the acceptance statistic the step size adapts to; 0 means the sampler's own default:
  /// 0.574 for adaptive MALA (optimal for MALA, Roberts & Rosenthal 1998), 0.8 for NUTS (Stan).
  /// NOTE: a sentinel, not a number, so that `.adapt = {.warmup = 300}` — which replaces the whole
  /// member and so any default written on it — still gets the sampler's own target.
  double target_accept = 0;
  bool adapt_step_size = true;  ///< adapt ε by dual averaging
  bool adapt_metric = true;     ///< learn a diagonal inverse metric in the slow windows
  double gamma = 0.05;          ///< γ: shrinkage towards μ
  double t0 = 10;               ///< t₀: damps the first iterations
  double kappa = 0.75;          ///< κ: decay of the averaging weights
};

/// `o` with its target acceptance resolved: the sampler's default where it says 0. Throws if the
/// result is not in (0, 1).
inline AdaptOptions with_target(AdaptOptions o, double sampler_default, const char* sampler) {
  if (o.target_accept == 0) o.target_accept = sampler_default;
  if (!(o.target_accept > 0 && o.target_accept < 1))
    throw std::invalid_argument(std::string(sampler) + ": the target acceptance must be in (0, 1)");
  return o;
}

/// Dual averaging of log ε towards a target acceptance statistic (o.target_accept, which must be
/// resolved: see with_target; 0.574 if left at 0).
class DualAveraging {
 public:
  /// Starts from step size eps0 (μ = log 10 ε₀).
  DualAveraging(double eps0, const AdaptOptions& o) : o_(with_target(o, 0.574, "dual averaging")) {
    restart(eps0);
  }
  /// Restarts the averaging from eps0 (at the end of each metric window).
  void restart(double eps0) {
    mu_ = std::log(10 * eps0);
    m_ = 0;
    h_bar_ = 0;
    log_eps_ = std::log(eps0);
    log_eps_bar_ = 0;
  }
  /// Learns from one iteration's mean acceptance statistic; returns the next ε.
  double update(double accept_stat) {
    ++m_;
    const double m = double(m_), w = 1 / (m + o_.t0);
    h_bar_ = (1 - w) * h_bar_ + w * (o_.target_accept - accept_stat);
    log_eps_ = mu_ - std::sqrt(m) / o_.gamma * h_bar_;
    const double k = std::pow(m, -o_.kappa);
    log_eps_bar_ = k * log_eps_ + (1 - k) * log_eps_bar_;
    return std::exp(log_eps_);
  }
  /// The current step size ε.
  double step_size() const { return std::exp(log_eps_); }
  /// ε̄: the step size to freeze after warm-up.
  double averaged_step_size() const { return m_ ? std::exp(log_eps_bar_) : std::exp(log_eps_); }

 private:
  AdaptOptions o_;
  double mu_ = 0, h_bar_ = 0, log_eps_ = 0, log_eps_bar_ = 0;
  long m_ = 0;
};

/// Running per-coordinate variance (Welford) over every chain's draws in a window.
class VarianceEstimator {
 public:
  /// An estimator over d coordinates.
  explicit VarianceEstimator(std::size_t d = 0) : mean_(d, 0.0), m2_(d, 0.0) {}
  /// Forgets every draw (a new window).
  void reset() {
    n_ = 0;
    std::fill(mean_.begin(), mean_.end(), 0.0);
    std::fill(m2_.begin(), m2_.end(), 0.0);
  }
  /// Adds one draw of d coordinates.
  template <class T>
  void add(const T* x) {
    ++n_;
    for (std::size_t k = 0; k < mean_.size(); ++k) {
      const double delta = double(x[k]) - mean_[k];
      mean_[k] += delta / double(n_);
      m2_[k] += delta * (double(x[k]) - mean_[k]);
    }
  }
  /// Draws added since the last reset.
  std::size_t count() const { return n_; }
  /// Stan's regularised estimate: (N/(N+5)) var + 10⁻³ · 5/(N+5).
  std::vector<double> regularised_variance() const {
    std::vector<double> v(mean_.size(), 1.0);
    if (n_ < 2) return v;
    const double nn = double(n_);
    for (std::size_t k = 0; k < v.size(); ++k)
      v[k] = nn / (nn + 5) * (m2_[k] / (nn - 1)) + 1e-3 * 5 / (nn + 5);
    return v;
  }

 private:
  std::size_t n_ = 0;
  std::vector<double> mean_, m2_;
};

/// Stan's windowed warm-up schedule: which iterations feed the metric, and where windows end.
class WarmupSchedule {
 public:
  /// The schedule of `warmup` iterations (windows only if `metric` and warmup >= 20).
  explicit WarmupSchedule(int warmup, bool metric) : warmup_(warmup) {
    if (!metric || warmup < 20) {  // too short to learn a metric: the step size only
      init_ = warmup;
      term_ = 0;
      base_ = 0;
      return;
    }
    if (warmup >= 150) {
      init_ = 75, term_ = 50, base_ = 25;
    } else {
      init_ = int(0.15 * warmup), term_ = int(0.1 * warmup);
      base_ = warmup - init_ - term_;
    }
    int start = init_, size = base_;
    const int slow_end = warmup_ - term_;
    while (start < slow_end) {
      int end = start + size;
      if (end + 2 * size > slow_end) end = slow_end;  // the next window would not fit: stretch
      window_ends_.push_back(end);
      start = end;
      size *= 2;
    }
  }
  /// Iteration i (0-based) of warm-up adds its draws to the variance estimate.
  bool in_slow_window(int i) const { return i >= init_ && i < warmup_ - term_ && base_ > 0; }
  /// Iteration i is the last of a slow window: the metric is updated after it.
  bool ends_window(int i) const {
    return std::find(window_ends_.begin(), window_ends_.end(), i + 1) != window_ends_.end();
  }
  /// The iterations (1-based counts) at which the metric windows end.
  const std::vector<int>& window_ends() const { return window_ends_; }

 private:
  int warmup_, init_ = 0, term_ = 0, base_ = 0;
  std::vector<int> window_ends_;
};

/// What an adaptive sampler chose in warm-up.
struct Adaptation {
  double step_size = 0;                ///< ε frozen after warm-up
  std::vector<double> inverse_metric;  ///< C = diag(M⁻¹), frozen after warm-up
  double warmup_acceptance = 0;        ///< mean acceptance statistic over the last warm-up window
  double target_accept = 0;            ///< δ, the acceptance statistic ε was adapted to
};

}  // namespace ebl
