// The tuned and mixing samplers against laws whose answers are known: adaptive MALA and NUTS
// reach their target acceptance and are exact after warm-up (a correlated Gaussian, the banana,
// Neal's funnel); NUTS trees stop at the U-turn the harmonic oscillator predicts; parallel
// tempering recovers the weights of well-separated modes that single-temperature MALA, started in
// one mode, does not. Many independent chains, final states as independent draws: tolerances are
// five standard errors (tests/sampler_checks.hpp), fixed seeds.
#include <cmath>

#include <xtensor/xview.hpp>

#include "ebm/energy.hpp"
#include "samplers/adaptive_mala.hpp"
#include "samplers/diagnostics.hpp"
#include "samplers/mala.hpp"
#include "samplers/nuts.hpp"
#include "samplers/targets.hpp"
#include "samplers/tempering.hpp"
#include "tests/helpers.hpp"
#include "tests/sampler_checks.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {

// N(μ, Σ) with P = AᵀA, A = [[1, 0.3], [0, 0.2]]: Σ = P⁻¹ = [[3.25, −7.5], [−7.5, 25]], scales
// 1.8 and 5 and correlation −0.83, so a unit metric is poor and the learned one is not.
struct Correlated {
  GaussianEnergy<double> g{Array<double>{1.0, -2.0}, Array<double>{{1.0, 0.3}, {0.0, 0.2}}};
  const double mu[2] = {1.0, -2.0};
  const double sigma[2][2] = {{3.25, -7.5}, {-7.5, 25.0}};
  EnergyFn<double> fn() {
    return [this](TD& t, V x) { return g(t, x); };
  }
};

}  // namespace

TEST_CASE("dual averaging drives a monotone acceptance curve to its target", "[adapt]") {
  // acceptance(ε) = exp(−ε): the target 0.574 is reached at ε* = −log 0.574 = 0.555
  DualAveraging da(1.0, AdaptOptions{});
  double eps = 1.0;
  for (int i = 0; i < 2000; ++i) eps = da.update(std::exp(-eps));
  CHECK(da.averaged_step_size() == Approx(-std::log(0.574)).epsilon(0.01));
}

TEST_CASE("Stan's warm-up windows: buffers of 75 and 50, slow windows doubling from 25",
          "[adapt]") {
  WarmupSchedule s(1000, true);
  CHECK(s.window_ends() == std::vector<int>{100, 150, 250, 450, 950});
  CHECK_FALSE(s.in_slow_window(74));
  CHECK(s.in_slow_window(75));
  CHECK(s.in_slow_window(949));
  CHECK_FALSE(s.in_slow_window(950));
  CHECK(s.ends_window(99));
  WarmupSchedule short_one(100, true);  // 15% / 75% / 10%
  CHECK(short_one.window_ends() == std::vector<int>{90});
  CHECK(WarmupSchedule(500, false).window_ends().empty());
}

TEST_CASE("adaptive MALA reaches 0.574, learns the scales, and is exact after warm-up",
          "[adaptive_mala]") {
  Correlated c;
  Rng rng(1);
  Array<double> x = randn({2000, 2}, 2);
  AdaptiveMala<double> s(c.fn(), {.steps = 300, .step_size = 0.01, .adapt = {.warmup = 600}});
  ChainStats st = s.run(x, rng);
  INFO("acceptance " << st.acceptance << ", step size " << s.adaptation().step_size);
  CHECK(std::abs(st.acceptance - 0.574) < 0.05);
  // the metric is the marginal variances (the diagonal of Σ), from 2000 chains × ~450 draws
  CHECK(s.adaptation().inverse_metric[0] == Approx(3.25).epsilon(0.1));
  CHECK(s.adaptation().inverse_metric[1] == Approx(25.0).epsilon(0.1));
  expect_moments(x, c.mu, c.sigma);
  CHECK(st.gradient_evals == 1 + 600 + 300);
}

TEST_CASE("adaptive MALA with the step size alone still reaches its target", "[adaptive_mala]") {
  Correlated c;
  Rng rng(3);
  Array<double> x = randn({1000, 2}, 4);
  AdaptiveMala<double> s(c.fn(),
                         {.steps = 200,
                          .step_size = 1.0,
                          .adapt = {.warmup = 300, .target_accept = 0.7, .adapt_metric = false}});
  ChainStats st = s.run(x, rng);
  CHECK(std::abs(st.acceptance - 0.7) < 0.05);
  CHECK(s.adaptation().inverse_metric == std::vector<double>{1.0, 1.0});
}

TEST_CASE("NUTS reaches 0.8 and samples a correlated Gaussian exactly", "[nuts]") {
  Correlated c;
  Rng rng(5);
  Array<double> x = randn({1000, 2}, 6);
  Nuts<double> s(c.fn(), {.steps = 100, .step_size = 0.5, .adapt = {.warmup = 300}});
  ChainStats st = s.run(x, rng);
  INFO("acceptance " << st.acceptance << ", step size " << s.adaptation().step_size
                     << ", mean leapfrog steps " << s.mean_leapfrog_steps());
  CHECK(std::abs(st.acceptance - 0.8) < 0.05);
  CHECK(s.divergences() == 0);
  expect_moments(x, c.mu, c.sigma);
}

TEST_CASE("NUTS trees stop at the U-turn of the harmonic oscillator", "[nuts]") {
  // E = ‖x‖²/2 in d = 1000 dimensions: the exact flow is x(t) = a cos t + b sin t (a the start, b
  // the momentum), leapfrog follows it with step ε, and the momenta of a trajectory sum to
  // ρ ≈ (x₊ − x₋)/ε = 2 sin(L/2) p(t̄)/ε for a trajectory of time span L. In high dimension
  // ‖a‖ ≈ ‖b‖ and a ⊥ b up to O(1/√d) (here ~0.05), so p(t±)·p(t̄) ≈ ‖a‖² cos(L/2): both ends'
  // criteria hold while L < π and fail beyond. With ε = 2π/(3·63) a trajectory of 64 states spans
  // L = 2π/3 (cos(L/2) = 0.5: continue) and one of 128 spans 4.2 (cos = −0.5: stop): every tree
  // stops at depth 7, 127 leapfrog steps. Halving ε moves the stop to depth 8; the maximum depth
  // (10) is never reached.
  const std::size_t d = 1000;
  const EnergyFn<double> e = [](TD&, V x) { return sum(square(x), 1) * 0.5; };
  for (auto [eps, depth] : {std::pair{2 * M_PI / (3 * 63), 7}, std::pair{M_PI / (3 * 63), 8}}) {
    Rng rng(7);
    Array<double> x = randn({20, d}, 8);
    Nuts<double> s(e, {.steps = 20, .step_size = eps, .adapt = {.warmup = 0}});
    s.run(x, rng);
    INFO("eps " << eps);
    CHECK(s.depth_histogram()[std::size_t(depth)] == 20 * 20);
    CHECK(s.mean_leapfrog_steps() == Approx(std::pow(2.0, depth) - 1));
  }
}

TEST_CASE("adaptive MALA and NUTS sample the banana exactly", "[adaptive_mala][nuts]") {
  // a = 1, b = 1: mean 0, Var x₁ = 1, Var x₂ = 1 + 2 = 3
  const EnergyFn<double> banana = banana_energy<double>(1.0, 1.0);
  const std::vector<double> mu = {0.0, 0.0}, var = {1.0, 3.0};
  {
    Rng rng(9);
    Array<double> x = randn({2000, 2}, 10);
    ChainStats st =
        AdaptiveMala<double>(banana, {.steps = 600, .adapt = {.warmup = 600}}).run(x, rng);
    INFO("adaptive MALA, acceptance " << st.acceptance);
    expect_mean_var(x, mu, var);
  }
  {
    Rng rng(11);
    Array<double> x = randn({1000, 2}, 12);
    Nuts<double> s(banana, {.steps = 100, .adapt = {.warmup = 300}});
    ChainStats st = s.run(x, rng);
    INFO("NUTS, acceptance " << st.acceptance << ", divergences " << s.divergences());
    expect_mean_var(x, mu, var);
  }
}

TEST_CASE("NUTS samples Neal's funnel in 2-D: v's mean, sd and lower tail", "[nuts]") {
  // v ~ N(0, 3²): mean 0, variance 9, P(v < −3) = Φ(−1) = 0.1587 (the neck, where e^{v/2} is
  // 0.22 and smaller: a step size adapted to the mouth diverges there, which NUTS reports)
  // (1000 chains, trees of at most 2^8 steps: the lockstep batch waits for its deepest tree,
  // which in the neck is the longest, so depth is what this test's time is made of)
  Rng rng(13);
  Array<double> x = randn({1000, 2}, 14);
  Nuts<double> s(funnel_energy<double>(2),
                 {.steps = 200, .max_depth = 8, .adapt = {.warmup = 300, .target_accept = 0.95}});
  s.run(x, rng);
  Array<double> v = xt::view(x, xt::all(), xt::range(0, 1));
  expect_mean_var(v, {0.0}, {9.0});
  double below = 0;
  for (std::size_t i = 0; i < 1000; ++i) below += x(i, 0) < -3 ? 1.0 / 1000 : 0.0;
  const double p = 0.5 * std::erfc(1 / std::sqrt(2.0));
  INFO("P(v < -3) = " << below << ", exact " << p << "; divergences " << s.divergences());
  CHECK(std::abs(below - p) < 5 * std::sqrt(p * (1 - p) / 1000));
}

TEST_CASE("parallel tempering recovers separated mode weights; MALA from one mode does not",
          "[tempering]") {
  // modes at (±3, 0), sd 0.5, weights 0.3 and 0.7: between them the density falls by e^−18, so a
  // chain at T = 1 never crosses in this run; at T = 25 the barrier is under one unit of T.
  GaussianMixture mix({{-3.0, 0.0}, {3.0, 0.0}}, {0.5, 0.5}, {0.3, 0.7});
  const EnergyFn<double> e = mix.energy<double>();
  const std::size_t n = 2000;
  auto weight_of_left = [&](const Array<double>& x) {
    double w = 0;
    for (std::size_t i = 0; i < n; ++i) w += mix.nearest(&x(i, 0)) == 0 ? 1.0 / double(n) : 0.0;
    return w;
  };
  auto start_right = [&] {  // every chain in the right mode
    Array<double> x = randn({n, 2}, 15) * 0.5;
    for (std::size_t i = 0; i < n; ++i) x(i, 0) += 3;
    return x;
  };
  const double se = std::sqrt(0.3 * 0.7 / double(n));  // binomial, independent chains

  Array<double> xm = start_right();
  Rng rm(16);
  Mala<double>(e, {.steps = 1500, .step_size = 0.05}).run(xm, rm);
  const double w_mala = weight_of_left(xm);

  Array<double> xp = start_right();
  Rng rp(17);
  ParallelTempering<double> pt(
      e, {.steps = 1500, .temperatures = geometric_ladder(8, 25.0), .step_size = 0.05});
  pt.run(xp, rp);
  const double w_pt = weight_of_left(xp);
  INFO("left-mode weight: exact 0.3, MALA " << w_mala << ", PT " << w_pt << " (SE " << se << ")");
  CHECK(std::abs(w_pt - 0.3) < 5 * se);
  CHECK(std::abs(w_mala - 0.3) > 20 * se);  // stuck: no chain has crossed
  // within each mode the draws are the mode's Gaussian: the right mode's x-coordinate has sd 0.5
  double m = 0, s2 = 0, k = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (mix.nearest(&xp(i, 0)) == 1) m += xp(i, 0), ++k;
  m /= k;
  for (std::size_t i = 0; i < n; ++i)
    if (mix.nearest(&xp(i, 0)) == 1) s2 += (xp(i, 0) - m) * (xp(i, 0) - m) / (k - 1);
  CHECK(std::abs(m - 3.0) < 5 * 0.5 / std::sqrt(k));
  CHECK(std::abs(s2 - 0.25) < 5 * 0.25 * std::sqrt(2 / k));
  for (double r : pt.swap_rates()) {
    INFO("swap rates must be reported, between 0 and 1");
    CHECK(r > 0.05);
    CHECK(r < 1.0);
  }
}

TEST_CASE("parallel tempering checks its ladder", "[tempering]") {
  const EnergyFn<double> e = banana_energy<double>();
  CHECK_THROWS_WITH((ParallelTempering<double>(e, {.temperatures = {1.0, 3.0, 2.0}})),
                    Catch::Contains("increase"));
  CHECK_THROWS_WITH(
      (ParallelTempering<double>(e, {.temperatures = {1.0, 2.0}, .step_sizes = {0.1}})),
      Catch::Contains("1 step sizes for 2 temperatures"));
  const auto t = geometric_ladder(5, 16.0);
  CHECK(t.front() == 1.0);
  CHECK(t.back() == Approx(16.0));
  CHECK(t[2] == Approx(4.0));
}

TEST_CASE("an observer records traces whose split-R-hat tells mixed from stuck chains",
          "[diagnostics][tempering]") {
  // the mixture again, 8 chains: the left-mode indicator's R̂ flags MALA chains started in
  // different modes (each stays where it started) and not PT's
  GaussianMixture mix({{-3.0, 0.0}, {3.0, 0.0}}, {0.5, 0.5}, {0.3, 0.7});
  const EnergyFn<double> e = mix.energy<double>();
  auto start = [] {
    Array<double> x = randn({8, 2}, 18) * 0.5;
    for (std::size_t i = 0; i < 8; ++i) x(i, 0) += i % 2 ? 3.0 : -3.0;
    return x;
  };
  TraceRecorder<double> rec_mala, rec_pt;
  rec_mala.scalar = rec_pt.scalar = [](const double* x, std::size_t, double) { return x[0]; };
  Array<double> xm = start(), xp = start();
  Rng rng(19);
  Mala<double>(e, {.steps = 2000, .step_size = 0.05}).run(xm, rng, rec_mala.observer());
  ParallelTempering<double>(
      e, {.steps = 2000, .temperatures = geometric_ladder(8, 25.0), .step_size = 0.05})
      .run(xp, rng, rec_pt.observer());
  REQUIRE(rec_mala.traces.size() == 8);
  REQUIRE(rec_mala.traces[0].size() == 2000);
  const double r_mala = split_rhat(rec_mala.traces), r_pt = split_rhat(rec_pt.traces);
  INFO("R-hat: MALA " << r_mala << ", PT " << r_pt);
  CHECK(r_mala > 1.5);
  CHECK(r_pt < 1.05);
}

namespace {
// ½|x|² in d dimensions: the standard Gaussian, whose NUTS trajectories are half-circles.
EnergyFn<double> standard_gaussian() {
  return [](TD&, V x) { return sum(square(x), 1) * 0.5; };
}
}  // namespace

TEST_CASE("NUTS sees U-turns across the seam of merged subtrees (stan-dev/stan#2799)", "[nuts]") {
  // N(0, I_20), unit metric, a fixed step of 0.78 (no warm-up). With only the checks at a merged
  // tree's two ends, trajectories grew to ~190 leapfrog steps per iteration here (88 at step
  // 0.80); with the seam checks of Stan, PyMC and AdvancedHMC, ~6.5. A half-circle of the
  // Gaussian's dynamics takes π / 0.78 ≈ 4 steps, so anything near 2^k steps for large k is a
  // U-turn missed.
  for (const double eps : {0.78, 0.80}) {
    Rng rng(21);
    Array<double> x = randn({200, 20}, 22);
    Nuts<double> s(standard_gaussian(), {.steps = 100, .step_size = eps, .adapt = {.warmup = 0}});
    s.run(x, rng);
    INFO("step " << eps << ": mean leapfrog steps " << s.mean_leapfrog_steps());
    CHECK(s.mean_leapfrog_steps() < 12);
    CHECK(s.mean_leapfrog_steps() > 3);
    // and the draws stay exact: mean 0, variance 1 in every coordinate
    std::vector<double> mu(20, 0.0), var(20, 1.0);
    expect_mean_var(x, mu, var);
  }
}

TEST_CASE("each sampler adapts to its own target acceptance however the options are written",
          "[nuts][adaptive_mala]") {
  // `.adapt = {.warmup = 300}` replaces the whole AdaptOptions member: a default written on the
  // member (as NUTS's 0.8 once was) is lost, and NUTS silently targeted MALA's 0.574. The target
  // is now resolved by the sampler, so all three spellings reach 0.8 (NUTS) and 0.574 (MALA).
  NutsOptions assigned;
  assigned.steps = 100;
  assigned.adapt.warmup = 300;
  const std::vector<NutsOptions> nuts_ways = {
      {.steps = 100, .adapt = {.warmup = 300}},
      assigned,
      {.steps = 100, .adapt = {.warmup = 300, .target_accept = 0}}};
  for (const NutsOptions& o : nuts_ways) {
    Rng rng(31);
    Array<double> x = randn({400, 20}, 32);
    Nuts<double> s(standard_gaussian(), o);
    const ChainStats st = s.run(x, rng);
    INFO("NUTS acceptance " << st.acceptance << ", step size " << s.adaptation().step_size);
    CHECK(s.adaptation().target_accept == 0.8);
    CHECK(std::abs(st.acceptance - 0.8) < 0.05);
  }
  Rng rng(33);
  Array<double> x = randn({400, 20}, 34);
  AdaptiveMala<double> m(standard_gaussian(), {.steps = 200, .adapt = {.warmup = 300}});
  const ChainStats st = m.run(x, rng);
  CHECK(m.adaptation().target_accept == 0.574);
  CHECK(std::abs(st.acceptance - 0.574) < 0.05);
  CHECK_THROWS_AS(Nuts<double>(standard_gaussian(), {.adapt = {.target_accept = 1.2}}),
                  std::invalid_argument);
}
