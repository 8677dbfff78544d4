// Checks of sampler output against known moments, shared by the sampler tests. Many independent
// chains (one per row) run past burn-in; their final states are independent draws, so sample
// moments have standard errors from the target's own moments (or, for non-Gaussian targets, from
// the draws' own fourth moments), and every tolerance is five of them.
#pragma once

#include <cmath>
#include <vector>

#include "tests/helpers.hpp"

namespace ebl::test {

struct Moments {
  double mean[2] = {0, 0};
  double cov[2][2] = {{0, 0}, {0, 0}};
};

inline Moments moments(const Array<double>& x) {
  Moments m;
  const std::size_t n = x.shape()[0], d = x.shape()[1];
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t a = 0; a < d; ++a) m.mean[a] += x(i, a) / double(n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t a = 0; a < d; ++a)
      for (std::size_t b = 0; b < d; ++b)
        m.cov[a][b] += (x(i, a) - m.mean[a]) * (x(i, b) - m.mean[b]) / double(n - 1);
  return m;
}

// Sample mean within 5 SE (SE² = Σ_aa / n); sample covariance within 5 SE
// (Var of the product of two centred Gaussians: Σ_aa Σ_bb + Σ_ab²).
inline void expect_moments(const Array<double>& x, const double* mu, const double (*sigma)[2]) {
  const std::size_t n = x.shape()[0], d = x.shape()[1];
  Moments m = moments(x);
  for (std::size_t a = 0; a < d; ++a) {
    INFO("mean[" << a << "] = " << m.mean[a] << ", target " << mu[a]);
    CHECK(std::abs(m.mean[a] - mu[a]) < 5 * std::sqrt(sigma[a][a] / double(n)));
    for (std::size_t b = 0; b < d; ++b) {
      INFO("cov[" << a << "][" << b << "] = " << m.cov[a][b] << ", target " << sigma[a][b]);
      double se = std::sqrt((sigma[a][a] * sigma[b][b] + sigma[a][b] * sigma[a][b]) / double(n));
      CHECK(std::abs(m.cov[a][b] - sigma[a][b]) < 5 * se);
    }
  }
}

/// Mean and variance of every coordinate against exact values, with standard errors from the
/// draws themselves: SE(mean) = sd/√n, SE(var) = sqrt((m₄ − s⁴)/n), m₄ the fourth central moment.
inline void expect_mean_var(const Array<double>& x, const std::vector<double>& mu,
                            const std::vector<double>& var, double k = 5) {
  const std::size_t n = x.shape()[0], d = x.shape()[1];
  for (std::size_t a = 0; a < d; ++a) {
    double m = 0, s2 = 0, m4 = 0;
    for (std::size_t i = 0; i < n; ++i) m += x(i, a) / double(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double c = x(i, a) - m;
      s2 += c * c / double(n - 1);
      m4 += c * c * c * c / double(n);
    }
    INFO("coordinate " << a << ": mean " << m << " (exact " << mu[a] << "), variance " << s2
                       << " (exact " << var[a] << ")");
    CHECK(std::abs(m - mu[a]) < k * std::sqrt(s2 / double(n)));
    CHECK(std::abs(s2 - var[a]) < k * std::sqrt(std::max(m4 - s2 * s2, 0.0) / double(n)));
  }
}

}  // namespace ebl::test
