// Mixing diagnostics against known answers: the ESS of AR(1) chains against (1 − φ)/(1 + φ) of the
// draws, the autocorrelation of AR(1) against φ^t, split-R̂ near 1 for chains from the stationary
// law and above 1.1 for chains started apart; the normal quantile against erfc.
#include <cmath>
#include <cstdint>
#include <numbers>

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

namespace {
// The fixed chains of tests/oracles/diagnostics_posterior.R: chain c of n draws driven by the
// uniforms of Park and Miller's generator from seed 1000 + c, y_i = f(u_i, y_{i−1}), y_0 = 0.
// a p, rounded before it is added to anything: the compiler may not fuse it into an FMA, so the
// chains are R's to the last bit (a folded tie at the median depends on it)
double times(double a, double p) {
  volatile double r = a * p;
  return r;
}
template <class F>
Traces chains(F f, std::size_t m, std::size_t n) {
  Traces x(m, std::vector<double>(n));
  for (std::size_t c = 0; c < m; ++c) {
    std::uint64_t state = 1000 + c;
    double prev = 0;
    for (std::size_t i = 0; i < n; ++i) {
      state = 16807 * state % 2147483647;
      prev = f(double(state) / 2147483647.0, prev);
      x[c][i] = prev;
    }
  }
  return x;
}
}  // namespace

TEST_CASE("ESS and R-hat equal the posterior R package's on fixed chains", "[diagnostics]") {
  // Reference values printed by tests/oracles/diagnostics_posterior.R with posterior 1.4.0
  // (Vehtari et al.'s own implementation of their 2021 definitions). The library before this
  // test reported Geyer's sequence without the paper's final term, no split or rank
  // normalisation in its ESS, and folded R-hat at the upper middle draw.
  struct Case {
    const char* name;
    Traces x;
    double basic, bulk, tail, rhat;
  };
  const double pi = std::numbers::pi;
  const std::vector<Case> cases = {
      {"ar", chains([](double u, double p) { return times(0.8, p) + (u - 0.5); }, 4, 500),
       247.9908324, 255.182803, 447.8238222, 1.010837792},
      {"heavy",  // Cauchy draws: the rank-normalised bulk-ESS is not thrown by the tails
       chains([pi](double u, double) { return std::tan(pi * (u - 0.5)); }, 3, 400), 1162.031145,
       1092.139813, 1284.600743, 0.9992543843},
      {"antithetic",  // ESS above the number of draws: the final term of the improved estimate
       chains([](double u, double p) { return times(-0.4, p) + (u - 0.5); }, 4, 300), 2406.982119,
       2769.00428, 1190.628765, 0.9994479172},
      {"odd",  // an odd number of draws: the split drops each chain's middle draw
       chains([](double u, double p) { return times(0.3, p) + (u - 0.5); }, 3, 101), 135.7419224,
       139.8502636, 217.1451979, 1.012204903},
  };
  for (const Case& k : cases) {
    INFO(k.name);
    CHECK(ess_basic(k.x) == Approx(k.basic).epsilon(1e-7));
    CHECK(bulk_ess(k.x) == Approx(k.bulk).epsilon(1e-7));
    CHECK(tail_ess(k.x) == Approx(k.tail).epsilon(1e-7));
    CHECK(split_rhat(k.x) == Approx(k.rhat).epsilon(1e-7));
    CHECK(effective_sample_size(k.x) == bulk_ess(k.x));
  }
  // folded R-hat at the median (the mean of the two middle draws), the example of issue 31:
  // 3.711 when folded at the upper middle draw
  CHECK(split_rhat(Traces{{-1.4, -1.4, -0.3, -0.2}, {-1.2, 0.7, 0.6, -0.1}}) ==
        Approx(8.249971573).epsilon(1e-8));
}

TEST_CASE("diagnostics of constant and non-finite chains", "[diagnostics]") {
  const Traces same(4, std::vector<double>(10, 2.5));
  CHECK(bulk_ess(same) == 40);  // nothing unknown: every draw counts (ArviZ's convention)
  CHECK(tail_ess(same) == 40);
  CHECK(split_rhat(same) == 1);  // nothing to mix
  Traces stuck = same;
  for (std::size_t c = 0; c < 4; ++c) std::fill(stuck[c].begin(), stuck[c].end(), double(c));
  CHECK(split_rhat(stuck) == INFINITY);  // chains that never meet
  Traces bad = same;
  bad[1][3] = NAN;
  CHECK(std::isnan(bulk_ess(bad)));
  CHECK(std::isnan(split_rhat(bad)));
}
