// Mixing diagnostics for any scalar trace over several chains (energies, coordinates), as Stan
// computes them (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021, "Rank-normalization,
// folding, and localization: an improved R̂"):
//   - autocorrelation ρ_t across chains: ρ_t = 1 − (W̃ − mean_c acov_c(t)) / var⁺, with acov the
//     (1/n) autocovariance, W the mean within-chain variance, W̃ = (n−1)/n W and
//     var⁺ = W̃ + B/n (NOTE: Stan subtracts W itself, which makes ρ_0 = 1 − W/(n var⁺); with W̃,
//     ρ_0 = 1 and one chain gives exactly acov(t)/acov(0));
//   - effective sample size by Geyer's initial monotone sequence: the sums P_k = ρ_2k + ρ_2k+1
//     are taken while positive and made non-increasing, τ = −1 + 2 Σ_k P_k, ESS = m n / τ;
//   - split-R̂ with rank normalisation: each chain split in halves, all draws replaced by the
//     normal scores of their ranks, Φ⁻¹((r − 3/8) / (S + 1/4)), R̂ = sqrt(var⁺ / W); the
//     reported R̂ is the larger of that (bulk) and the same on |x − median| (tails, "folded").
// A trace is chains × draws: traces[c][i] is draw i of chain c; all chains have equal length.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

namespace ebl {

using Traces = std::vector<std::vector<double>>;

namespace diag_detail {
inline void check(const Traces& x, std::size_t min_draws) {
  if (x.empty() || x[0].size() < min_draws)
    throw std::invalid_argument(
        fmt::format("diagnostics: need at least one chain of {} draws", min_draws));
  for (const auto& c : x)
    if (c.size() != x[0].size())
      throw std::invalid_argument("diagnostics: chains of different lengths");
}
inline double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}
// W (mean within-chain variance, n−1 denominators) and var⁺ = (n−1)/n W + B/n.
inline std::pair<double, double> within_and_var_plus(const Traces& x) {
  const std::size_t m = x.size(), n = x[0].size();
  std::vector<double> means(m);
  double w = 0;
  for (std::size_t c = 0; c < m; ++c) {
    means[c] = mean(x[c]);
    double s = 0;
    for (double v : x[c]) s += (v - means[c]) * (v - means[c]);
    w += s / double(n - 1) / double(m);
  }
  double b_over_n = 0;  // B/n = variance of the chain means (m−1 denominator)
  if (m > 1) {
    const double grand = mean(means);
    for (double mu : means) b_over_n += (mu - grand) * (mu - grand) / double(m - 1);
  }
  return {w, double(n - 1) / double(n) * w + b_over_n};
}
// The standard normal quantile: Acklam's rational approximation, refined by one Halley step on
// erfc (relative error below 1e-15 away from the extreme tails).
inline double normal_quantile(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  if (!(p > 0 && p < 1)) return p == 0 ? -INFINITY : p == 1 ? INFINITY : NAN;
  double x;
  if (p < 0.02425) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p > 1 - 0.02425) {
    const double q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;  // Φ(x) − p
  const double u = e * std::sqrt(2 * std::numbers::pi) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}
// Every draw replaced by the normal score of its rank among all draws (ties: average rank).
inline Traces rank_normalise(const Traces& x) {
  const std::size_t m = x.size(), n = x[0].size(), s = m * n;
  std::vector<std::pair<double, std::size_t>> all(s);
  for (std::size_t c = 0; c < m; ++c)
    for (std::size_t i = 0; i < n; ++i) all[c * n + i] = {x[c][i], c * n + i};
  std::sort(all.begin(), all.end());
  Traces z(m, std::vector<double>(n));
  for (std::size_t k = 0; k < s;) {
    std::size_t e = k;
    while (e + 1 < s && all[e + 1].first == all[k].first) ++e;
    const double rank = (double(k) + double(e)) / 2 + 1;  // 1-based average rank of the tie
    const double score = normal_quantile((rank - 0.375) / (double(s) + 0.25));
    for (std::size_t j = k; j <= e; ++j) z[all[j].second / n][all[j].second % n] = score;
    k = e + 1;
  }
  return z;
}
inline Traces split_chains(const Traces& x) {
  const std::size_t half = x[0].size() / 2;
  Traces out;
  for (const auto& c : x) {
    out.emplace_back(c.begin(), c.begin() + std::ptrdiff_t(half));
    out.emplace_back(c.end() - std::ptrdiff_t(half), c.end());  // odd n: the middle draw dropped
  }
  return out;
}
inline double rhat_of(const Traces& x) {
  const auto [w, var_plus] = within_and_var_plus(x);
  return w > 0 ? std::sqrt(var_plus / w) : NAN;
}
}  // namespace diag_detail

/// ρ_t for t = 0 .. max_lag (combined over the chains, see the file's comment).
inline std::vector<double> autocorrelation(const Traces& x, std::size_t max_lag) {
  diag_detail::check(x, 2);
  const std::size_t m = x.size(), n = x[0].size();
  max_lag = std::min(max_lag, n - 1);
  const auto [w, var_plus] = diag_detail::within_and_var_plus(x);
  std::vector<double> rho(max_lag + 1, 0.0);
  for (std::size_t c = 0; c < m; ++c) {
    const double mu = diag_detail::mean(x[c]);
    for (std::size_t t = 0; t <= max_lag; ++t) {
      double s = 0;
      for (std::size_t i = 0; i + t < n; ++i) s += (x[c][i] - mu) * (x[c][i + t] - mu);
      rho[t] += s / double(n) / double(m);  // mean over chains of the biased autocovariance
    }
  }
  // with one chain var⁺ = W (n−1)/n and this is acov(t)/acov(0); with several, Stan's combination
  const double w_biased = w * double(n - 1) / double(n);
  for (auto& r : rho) r = 1 - (w_biased - r) / var_plus;
  return rho;
}

/// Effective sample size of the pooled draws (Geyer's initial monotone sequence).
inline double effective_sample_size(const Traces& x) {
  diag_detail::check(x, 4);
  const std::size_t m = x.size(), n = x[0].size();
  const std::vector<double> rho = autocorrelation(x, n - 1);
  double sum = 0, prev = std::numeric_limits<double>::infinity();
  for (std::size_t k = 0; 2 * k + 1 < rho.size(); ++k) {
    double p = rho[2 * k] + rho[2 * k + 1];
    if (p < 0) break;
    p = std::min(p, prev);  // monotone
    sum += p;
    prev = p;
  }
  const double tau = std::max(-1 + 2 * sum, 1.0 / std::log10(double(m * n)));  // Stan's floor
  return double(m * n) / tau;
}

/// The second half of every chain (the first half discarded as warm-up): what chains started
/// away from the target are diagnosed on.
inline Traces second_halves(const Traces& x) {
  Traces out;
  out.reserve(x.size());
  for (const auto& c : x) out.emplace_back(c.begin() + std::ptrdiff_t(c.size() / 2), c.end());
  return out;
}

/// Split-R̂ with rank normalisation: max(bulk, folded); near 1 for mixed chains.
inline double split_rhat(const Traces& x) {
  diag_detail::check(x, 4);
  const Traces s = diag_detail::split_chains(x);
  const double bulk = diag_detail::rhat_of(diag_detail::rank_normalise(s));
  std::vector<double> all;
  for (const auto& c : s) all.insert(all.end(), c.begin(), c.end());
  std::nth_element(all.begin(), all.begin() + std::ptrdiff_t(all.size() / 2), all.end());
  const double median = all[all.size() / 2];
  Traces folded = s;
  for (auto& c : folded)
    for (auto& v : c) v = std::abs(v - median);
  const double tail = diag_detail::rhat_of(diag_detail::rank_normalise(folded));
  return std::max(bulk, tail);
}

}  // namespace ebl
