// The seeded generator: reproducibility and the moments of its draws, with tolerances of five
// standard errors (fixed seeds, so a pass is deterministic; a real bias of that size would fail).
#include <algorithm>
#include <cmath>
#include <vector>

#include "autodiff/random.hpp"
#include "tests/helpers.hpp"

using namespace ebl;

TEST_CASE("same seed gives the same stream and a different seed another", "[random]") {
  Rng a(123), b(123), c(124);
  bool differs = false;
  for (int k = 0; k < 100; ++k) {
    std::uint64_t x = a.next_u64();
    CHECK(x == b.next_u64());
    differs |= x != c.next_u64();
  }
  CHECK(differs);
  Rng d(9), e(9);
  for (int k = 0; k < 100; ++k) CHECK(d.normal() == e.normal());
}

TEST_CASE("uniform draws: range and mean and variance", "[random]") {
  Rng rng(1);
  const int n = 200000;
  double s = 0, s2 = 0, lo = 1, hi = 0;
  for (int k = 0; k < n; ++k) {
    double u = rng.uniform();
    s += u;
    s2 += u * u;
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  }
  double mean = s / n, var = s2 / n - mean * mean;
  CHECK(lo >= 0.0);
  CHECK(hi < 1.0);
  CHECK(std::abs(mean - 0.5) < 5 * std::sqrt(1.0 / 12 / n));
  // Var of (u - 1/2)² is 1/80 - 1/144
  CHECK(std::abs(var - 1.0 / 12) < 5 * std::sqrt((1.0 / 80 - 1.0 / 144) / n));
}

TEST_CASE("normal draws: mean and variance and kurtosis and the one-sigma mass", "[random]") {
  Rng rng(2);
  const int n = 200000;
  double s = 0, s2 = 0, s4 = 0, within = 0;
  for (int k = 0; k < n; ++k) {
    double z = rng.normal();
    s += z;
    s2 += z * z;
    s4 += z * z * z * z;
    within += std::abs(z) < 1;
  }
  CHECK(std::abs(s / n) < 5 / std::sqrt(double(n)));
  CHECK(std::abs(s2 / n - 1) < 5 * std::sqrt(2.0 / n));   // Var z² = 2
  CHECK(std::abs(s4 / n - 3) < 5 * std::sqrt(96.0 / n));  // Var z⁴ = 105 - 9
  const double p1 = std::erf(1 / std::sqrt(2.0));
  CHECK(std::abs(within / n - p1) < 5 * std::sqrt(p1 * (1 - p1) / n));
}

TEST_CASE("normal draws pass a chi-square test on 82 bins", "[random]") {
  // 80 bins of width 0.1 over [-4, 4] and the two tails: the ziggurat's rectangles, wedges and
  // tail all show here (a wrong wedge test distorts the bins near the strips' edges, which the
  // moments above barely see). The bound is the 0.999 quantile of chi-square with 81 degrees of
  // freedom (Wilson-Hilferty).
  auto cdf = [](double t) { return 0.5 * std::erfc(-t / std::sqrt(2.0)); };
  const double df = 81, zq = 3.090232;  // the standard normal's 0.999 quantile
  const double bound = df * std::pow(1 - 2 / (9 * df) + zq * std::sqrt(2 / (9 * df)), 3);
  Rng rng(6);
  const int n = 1000000;
  std::vector<double> count(82, 0);
  for (int k = 0; k < n; ++k) {
    const double b = std::floor((rng.normal() + 4) / 0.1);  // bin 0 .. 79 inside [-4, 4)
    count[std::size_t(std::clamp(b, -1.0, 80.0) + 1)] += 1;
  }
  double chi2 = 0;
  for (std::size_t b = 0; b < 82; ++b) {
    const double lo = b == 0 ? -HUGE_VAL : -4 + 0.1 * double(b - 1);
    const double hi = b == 81 ? HUGE_VAL : -4 + 0.1 * double(b);
    const double expect = n * (cdf(hi) - cdf(lo));
    chi2 += (count[b] - expect) * (count[b] - expect) / expect;
  }
  INFO("chi2 " << chi2 << " bound " << bound);
  CHECK(chi2 < bound);
}

TEST_CASE("below(n) is uniform over 0..n-1 by a chi-square test", "[random]") {
  Rng rng(3);
  const int n = 7, draws = 70000;
  std::vector<int> count(n, 0);
  for (int k = 0; k < draws; ++k) {
    std::uint64_t v = rng.below(n);
    REQUIRE(v < std::uint64_t(n));
    ++count[v];
  }
  double chi2 = 0, expect = double(draws) / n;
  for (int c : count) chi2 += (c - expect) * (c - expect) / expect;
  CHECK(chi2 < 22.46);  // the 0.999 quantile of chi-square with 6 degrees of freedom
}

TEST_CASE("normal draws have Gaussian tails, including beyond the ziggurat's base strip",
          "[random]") {
  // P(|z| > 2), P(|z| > 3) and P(z > 3.5): the last lies beyond R = 3.4426, where draws come from
  // the tail algorithm; each fraction within 5 binomial standard errors.
  Rng rng(4);
  const int n = 2000000;
  double beyond2 = 0, beyond3 = 0, right35 = 0, left35 = 0;
  for (int k = 0; k < n; ++k) {
    double z = rng.normal();
    beyond2 += std::abs(z) > 2;
    beyond3 += std::abs(z) > 3;
    right35 += z > 3.5;
    left35 += z < -3.5;
  }
  auto tail = [](double t) { return 0.5 * std::erfc(t / std::sqrt(2.0)); };
  auto check = [n](double count, double p) {
    INFO("observed " << count / n << " expected " << p);
    CHECK(std::abs(count / n - p) < 5 * std::sqrt(p * (1 - p) / n));
  };
  check(beyond2, 2 * tail(2));
  check(beyond3, 2 * tail(3));
  check(right35, tail(3.5));
  check(left35, tail(3.5));
}

TEST_CASE("fill_normal gives the numbers of repeated normal calls, slow paths included",
          "[random]") {
  // 20000 draws take the ziggurat's slow paths (1.2% of draws) a few hundred times: the wedges,
  // and the tail beyond R = 3.44 about 12 times (P(|z| > R) = 5.8e-4).
  const std::size_t n = 20000;
  Rng a(5), b(5);
  std::vector<double> d(n);
  a.fill_normal(d.data(), n, 0.25, 1.5);
  std::vector<float> f(n);
  a.fill_normal(f.data(), n);
  std::size_t tail_draws = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const double z = b.normal(0.25, 1.5);
    CHECK(d[k] == z);
    tail_draws += std::abs(z - 0.25) > 1.5 * detail::ZigguratTables::r;
  }
  for (std::size_t k = 0; k < n; ++k) CHECK(f[k] == static_cast<float>(b.normal()));
  CHECK(a.next_u64() == b.next_u64());  // and leaves the generator in the same state
  CHECK(tail_draws > 0);
}
