// Mixing diagnostics against known answers: the ESS of AR(1) chains against (1 − φ)/(1 + φ) of the
// draws, the autocorrelation of AR(1) against φ^t, split-R̂ near 1 for chains from the stationary
// law and above 1.1 for chains started apart; the normal quantile against erfc.
#include "samplers/diagnostics.hpp"
#include "tests/helpers.hpp"

using namespace ebl;

namespace {
// m AR(1) chains x_t = φ x_{t−1} + √(1 − φ²) ε_t, started from the stationary N(0, 1)
Traces ar1(std::size_t m, std::size_t n, double phi, Rng& rng, double offset_per_chain = 0) {
  Traces x(m, std::vector<double>(n));
  for (std::size_t c = 0; c < m; ++c) {
    double v = rng.normal();
    for (std::size_t i = 0; i < n; ++i) {
      v = phi * v + std::sqrt(1 - phi * phi) * rng.normal();
      x[c][i] = v + offset_per_chain * double(c);
    }
  }
  return x;
}
}  // namespace

TEST_CASE("the normal quantile inverts Φ to 1e-14", "[diagnostics]") {
  for (double p : {1e-10, 1e-4, 0.01, 0.02425, 0.2, 0.5, 0.77, 0.975, 0.9999}) {
    const double x = diag_detail::normal_quantile(p);
    INFO("p " << p);
    CHECK(0.5 * std::erfc(-x / std::sqrt(2.0)) == Approx(p).epsilon(1e-13));
  }
}

TEST_CASE("AR(1): autocorrelation φ^t and ESS = N (1 − φ)/(1 + φ)", "[diagnostics]") {
  Rng rng(1);
  const double phi = 0.6;
  Traces x = ar1(4, 20000, phi, rng);
  const std::vector<double> rho = autocorrelation(x, 5);
  CHECK(rho[0] == Approx(1.0));
  // sampling sd of ρ̂_t for N = 80000 draws of AR(1): about sqrt((1 + φ²)/(1 − φ²)/N) < 0.006
  for (std::size_t t = 1; t <= 5; ++t) CHECK(std::abs(rho[t] - std::pow(phi, double(t))) < 0.02);

  // ESS over 20 independent replicates: their mean against the analytic value, within 4 standard
  // errors of that mean (the spread of the replicates gives the standard error)
  const std::size_t m = 4, n = 2000, reps = 20;
  const double exact = double(m * n) * (1 - phi) / (1 + phi);
  std::vector<double> ess;
  for (std::size_t r = 0; r < reps; ++r) ess.push_back(effective_sample_size(ar1(m, n, phi, rng)));
  double mean = 0, var = 0;
  for (double e : ess) mean += e / double(reps);
  for (double e : ess) var += (e - mean) * (e - mean) / double(reps - 1);
  const double se = std::sqrt(var / double(reps));
  INFO("mean ESS " << mean << " exact " << exact << " se " << se);
  CHECK(std::abs(mean - exact) < 4 * se);
  // independent draws: ESS near N; strongly correlated ones: far below
  CHECK(effective_sample_size(ar1(m, n, 0.0, rng)) > 0.8 * double(m * n));
  CHECK(effective_sample_size(ar1(m, n, 0.95, rng)) < 0.05 * double(m * n));
}

TEST_CASE("split-R̂ is near 1 for mixed chains and above 1.1 for chains started apart",
          "[diagnostics]") {
  Rng rng(2);
  const double mixed = split_rhat(ar1(4, 1000, 0.3, rng));
  CHECK(mixed < 1.01);
  CHECK(mixed > 0.99);
  // chains stuck around different values (offsets of one standard deviation per chain)
  CHECK(split_rhat(ar1(4, 1000, 0.3, rng, 1.0)) > 1.1);
  // a chain that drifts within itself: the split halves disagree
  Traces drift = ar1(4, 1000, 0.3, rng);
  for (auto& c : drift)
    for (std::size_t i = 0; i < c.size(); ++i) c[i] += 3.0 * double(i) / double(c.size());
  CHECK(split_rhat(drift) > 1.1);
  // chains with the same location and different spreads: the folded (tail) R̂ sees them
  Traces spread = ar1(4, 1000, 0.0, rng);
  for (auto& v : spread[0]) v *= 4;
  CHECK(split_rhat(spread) > 1.1);
  CHECK_THROWS(split_rhat(Traces{{1.0, 2.0}}));
}
