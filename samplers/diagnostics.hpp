// Mixing diagnostics for any scalar trace over several chains (energies, coordinates), as
// Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization, folding, and
// localization: an improved R̂", define them and as Stan, ArviZ and the posterior R package
// compute them (this file's tests compare with posterior's values on fixed chains):
//   - ess_basic: with W the mean within-chain variance (n−1 denominators), var⁺ = (n−1)/n W + B/n
//     and acov_c(t) the (1/n) autocovariance of chain c, ρ₀ = 1 and ρ_t = 1 − (W − mean_c
//     acov_c(t)) / var⁺. Geyer's initial positive sequence: pairs P_k = ρ_2k + ρ_2k+1 summed while
//     positive; made monotone (a pair larger than the one before is replaced by it); then
//     τ = −1 + 2 Σ_{t ≤ t_max} ρ_t + ρ_{t_max+1} (the paper's improved estimate: the first
//     even-lag term after the sequence is added if positive, which matters for antithetic
//     chains) and ESS = m n / max(τ, 1 / log₁₀(m n));
//   - bulk-ESS: ess_basic of the split chains (each cut in halves, an odd middle draw dropped),
//     every draw replaced by the normal score of its rank, Φ⁻¹((r − 3/8) / (S + 1/4));
//   - tail-ESS: the smaller ess_basic of the split chains of the indicators I(x ≤ q₀.₀₅) and
//     I(x ≤ q₀.₉₅) (quantiles by linear interpolation, type 7);
//   - split-R̂: R̂ = sqrt(var⁺ / W) of the rank-normalised split chains (bulk) and of the same
//     for |x − median| (folded at the median of all draws, the mean of the two middle ones for
//     an even count, before splitting: the tails); the reported R̂ is the larger.
// effective_sample_size() is bulk-ESS, what ArviZ's ess() and Stan's summary report first.
// NOTE: conventions where the formulas give 0/0: draws that are all equal have ESS = m n (as
// ArviZ: nothing is unknown) and R̂ = 1 (nothing to mix); chains each constant but at different
// values have R̂ = +inf (they never mix). A non-finite draw gives NaN.
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
inline bool all_finite(const Traces& x) {
  for (const auto& c : x)
    for (double v : c)
      if (!std::isfinite(v)) return false;
  return true;
}
inline bool all_equal(const Traces& x) {
  for (const auto& c : x)
    for (double v : c)
      if (v != x[0][0]) return false;
  return true;
}
// sqrt(var⁺ / W), with the conventions of the file's NOTE where W = 0
inline double rhat_of(const Traces& x) {
  const auto [w, var_plus] = within_and_var_plus(x);
  if (w > 0) return std::sqrt(var_plus / w);
  return var_plus > 0 ? INFINITY : 1.0;
}
// The median of every draw (the mean of the two middle ones for an even count).
inline double median(const Traces& x) {
  std::vector<double> all;
  for (const auto& c : x) all.insert(all.end(), c.begin(), c.end());
  const std::size_t n = all.size(), h = n / 2;
  std::nth_element(all.begin(), all.begin() + std::ptrdiff_t(h), all.end());
  const double upper = all[h];
  if (n % 2 == 1) return upper;
  return (*std::max_element(all.begin(), all.begin() + std::ptrdiff_t(h)) + upper) / 2;
}
// The q-quantile of every draw by linear interpolation between order statistics (R's type 7,
// numpy's default).
inline double quantile(const Traces& x, double q) {
  std::vector<double> all;
  for (const auto& c : x) all.insert(all.end(), c.begin(), c.end());
  std::sort(all.begin(), all.end());
  const double h = q * double(all.size() - 1);
  const auto lo = std::size_t(std::floor(h));
  const std::size_t hi = std::min(lo + 1, all.size() - 1);
  return all[lo] + (h - double(lo)) * (all[hi] - all[lo]);
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

/// The fewest draws per chain bulk_ess and tail_ess take: split halves of 3 (posterior's minimum
/// for an ESS; with fewer, it returns NA and this library throws).
inline constexpr std::size_t kMinDrawsForEss = 6;

/// ESS of the pooled draws as they are (no splitting, no ranks): Geyer's initial positive and
/// monotone sequences with the paper's improved final term (see the file's comment). The
/// building block of bulk_ess and tail_ess; ArviZ's ess(method="identity").
inline double ess_basic(const Traces& x) {
  diag_detail::check(x, 3);
  if (!diag_detail::all_finite(x)) return NAN;
  const std::size_t m = x.size(), n = x[0].size();
  if (diag_detail::all_equal(x)) return double(m * n);
  const auto [w, var_plus] = diag_detail::within_and_var_plus(x);
  // mean over chains of the (1/n) autocovariance at lag t
  std::vector<double> means(m);
  for (std::size_t c = 0; c < m; ++c) means[c] = diag_detail::mean(x[c]);
  auto acov = [&](std::size_t t) {
    double a = 0;
    for (std::size_t c = 0; c < m; ++c) {
      double s = 0;
      for (std::size_t i = 0; i + t < n; ++i) s += (x[c][i] - means[c]) * (x[c][i + t] - means[c]);
      a += s / double(n) / double(m);
    }
    return a;
  };
  auto rho_at = [&](long t) { return 1 - (w - acov(std::size_t(t))) / var_plus; };
  // (signed lags: with few draws the sequence is empty and t_max is −1)
  const long nl = long(n);
  std::vector<double> rho(n, 0.0);
  rho[0] = 1;
  if (n > 1) rho[1] = rho_at(1);
  double even = 1, odd = n > 1 ? rho[1] : 0;
  long t = 1;
  while (t < nl - 3 && even + odd > 0) {  // Geyer's initial positive sequence
    even = rho_at(t + 1);
    odd = rho_at(t + 2);
    if (even + odd >= 0) rho[std::size_t(t + 1)] = even, rho[std::size_t(t + 2)] = odd;
    t += 2;
  }
  const long max_t = t - 2;
  if (even > 0) rho[std::size_t(max_t + 1)] = even;  // the improved estimate's last term
  for (long k = 1; k <= max_t - 2; k += 2) {         // Geyer's initial monotone sequence
    const auto a = std::size_t(k);
    if (rho[a + 1] + rho[a + 2] > rho[a - 1] + rho[a])
      rho[a + 1] = rho[a + 2] = (rho[a - 1] + rho[a]) / 2;
  }
  double sum = 0;
  for (long k = 0; k <= max_t; ++k) sum += rho[std::size_t(k)];
  const double last = max_t + 1 < nl ? rho[std::size_t(max_t + 1)] : 0.0;
  for (double r : rho)
    if (std::isnan(r)) return NAN;
  const double tau = std::max(-1 + 2 * sum + last, 1 / std::log10(double(m * n)));
  return double(m * n) / tau;
}

/// Bulk-ESS: ess_basic of the rank-normalised split chains (Vehtari et al. 2021). What the
/// sampling experiments report as ESS.
inline double bulk_ess(const Traces& x) {
  diag_detail::check(x, kMinDrawsForEss);
  if (!diag_detail::all_finite(x)) return NAN;
  if (diag_detail::all_equal(x)) return double(x.size() * x[0].size());
  return ess_basic(diag_detail::rank_normalise(diag_detail::split_chains(x)));
}

/// Tail-ESS: the smaller ess_basic of the split indicator chains I(x ≤ q₀.₀₅) and I(x ≤ q₀.₉₅):
/// how well the 5% and 95% quantiles are estimated (Vehtari et al. 2021).
inline double tail_ess(const Traces& x) {
  diag_detail::check(x, kMinDrawsForEss);
  if (!diag_detail::all_finite(x)) return NAN;
  double out = INFINITY;
  for (const double q : {0.05, 0.95}) {
    const double v = diag_detail::quantile(x, q);
    Traces ind = x;
    for (auto& c : ind)
      for (auto& d : c) d = d <= v ? 1.0 : 0.0;
    out = std::min(out, ess_basic(diag_detail::split_chains(ind)));
  }
  return out;
}

/// The effective sample size the library reports: bulk-ESS (ArviZ's ess(), Stan's ESS_bulk).
inline double effective_sample_size(const Traces& x) {
  return bulk_ess(x);
}

/// The second half of every chain (the first half discarded as warm-up): what chains started
/// away from the target are diagnosed on.
inline Traces second_halves(const Traces& x) {
  Traces out;
  out.reserve(x.size());
  for (const auto& c : x) out.emplace_back(c.begin() + std::ptrdiff_t(c.size() / 2), c.end());
  return out;
}

/// Split-R̂ with rank normalisation: max(bulk, folded at the median); near 1 for mixed chains.
inline double split_rhat(const Traces& x) {
  diag_detail::check(x, 4);
  if (!diag_detail::all_finite(x)) return NAN;
  const double bulk =
      diag_detail::rhat_of(diag_detail::rank_normalise(diag_detail::split_chains(x)));
  // folded at the median of every draw, then split (posterior's order: with an odd number of
  // draws the chains' middle draws count towards the median)
  const double median = diag_detail::median(x);
  Traces folded = x;
  for (auto& c : folded)
    for (auto& v : c) v = std::abs(v - median);
  const double tail =
      diag_detail::rhat_of(diag_detail::rank_normalise(diag_detail::split_chains(folded)));
  return std::max(bulk, tail);
}

}  // namespace ebl
