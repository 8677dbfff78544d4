// The Gaussian–Bernoulli RBM (ebm/gbrbm.hpp) against exact answers: its free energy equals the
// brute-force sum over hidden states, its exact log Z equals quadrature of exp(−F) on a grid, its
// gradients pass the checker, block Gibbs draws the exact hidden marginal and visible mean, and
// CD and PCD raise the exact log-likelihood of data from a mixture of Gaussians (CD-1 from −3.41
// to −1.74 per point here, against −1.70 for the data's own law).
#include <cmath>

#include "ebm/boltzmann.hpp"
#include "ebm/gbrbm.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {

// A small model with every parameter away from its initial value.
GaussianRbm<double> small_model(std::size_t nv, std::size_t nh, std::uint64_t seed) {
  Rng rng(seed);
  GaussianRbm<double> m(nv, nh, rng, 0.8);
  for (auto& x : m.b.value) x = rng.normal(0, 0.7);
  for (auto& x : m.c.value) x = rng.normal(0, 0.7);
  for (auto& x : m.z.value) x = rng.normal(0, 0.3);
  return m;
}

// Exact p(h) over the 2^H hidden states, state s has h_j = bit j of s.
std::vector<double> exact_hidden_law(const GaussianRbm<double>& m) {
  const std::size_t nh = m.hidden();
  std::vector<double> lw(std::size_t(1) << nh);
  std::vector<int> h(nh);
  double mx = -INFINITY;
  for (std::size_t s = 0; s < lw.size(); ++s) {
    for (std::size_t j = 0; j < nh; ++j) h[j] = int((s >> j) & 1u);
    lw[s] = gbrbm_log_hidden_weight(m, h);
    mx = std::max(mx, lw[s]);
  }
  double z = 0;
  for (double& l : lw) z += (l = std::exp(l - mx));
  for (double& l : lw) l /= z;
  return lw;
}

}  // namespace

TEST_CASE("the free energy sums the hidden units out exactly, on the tape and in double",
          "[gbrbm]") {
  GaussianRbm<double> m = small_model(3, 4, 1);
  const Array<double> v = randn({5, 3}, 2);
  TD t;
  const Array<double> f = m(t, t.constant(v)).value();
  const std::vector<double> fd = gbrbm_free_energies(m, v);
  for (std::size_t r = 0; r < 5; ++r) {
    double sum = 0;  // Σ_h exp(−E(v, h)), brute force over the 16 hidden states
    for (std::size_t s = 0; s < 16; ++s) {
      double h[4];
      for (std::size_t j = 0; j < 4; ++j) h[j] = double((s >> j) & 1u);
      sum += std::exp(-m.energy(v.data() + 3 * r, h));
    }
    CHECK(f(r) == Approx(-std::log(sum)).epsilon(1e-12));
    CHECK(fd[r] == Approx(f(r)).epsilon(1e-12));
  }
}

TEST_CASE("exact log Z equals quadrature of exp(-F) on a grid", "[gbrbm]") {
  for (std::uint64_t seed : {3, 4}) {
    GaussianRbm<double> m = small_model(2, 3, seed);
    // the mixture's means lie within |b| + Σ|W| of 0; 9 standard deviations beyond that
    double reach = 0;
    for (double x : m.b.value) reach = std::max(reach, std::abs(x));
    for (double x : m.W.value) reach += std::abs(x);
    double sd = 0;
    for (double x : m.z.value) sd = std::max(sd, std::exp(0.5 * x));
    const double box = reach + 9 * sd;
    const Domain<double> grid = grid_2d<double>(-box, box, 600, -box, box, 600);
    CHECK(log_partition(m, grid) == Approx(gbrbm_exact_log_z(m)).epsilon(1e-6));
  }
}

TEST_CASE("the free energy's gradients in v and in every parameter pass the check", "[gbrbm]") {
  GaussianRbm<double> m = small_model(3, 2, 5);
  expect_gradients([&](TD& t, In x) { return m(t, x[0]); }, {randn({4, 3}, 6)}, m.parameters());
  Rng rng(7);
  GaussianRbm<double> fixed(3, 2, rng, 0.5, 0.2, /*learn_variance=*/false);
  CHECK(fixed.parameters().size() == 3);
  expect_gradients([&](TD& t, In x) { return fixed(t, x[0]); }, {randn({4, 3}, 8)},
                   fixed.parameters());
}

TEST_CASE("block Gibbs draws the exact hidden marginal and the exact visible mean", "[gbrbm]") {
  GaussianRbm<double> m = small_model(2, 3, 9);
  const std::vector<double> ph = exact_hidden_law(m);
  // exact E[v] = Σ_h p(h) (b + Wh)
  double mean_v[2] = {0, 0};
  for (std::size_t s = 0; s < 8; ++s)
    for (std::size_t i = 0; i < 2; ++i) {
      double mu = m.b.value(i);
      for (std::size_t j = 0; j < 3; ++j) mu += m.W.value(i, j) * double((s >> j) & 1u);
      mean_v[i] += ph[s] * mu;
    }
  const std::size_t n = 8000;
  Rng rng(10);
  Array<double> v = rng.normal_array<double>({n, 2}), h;
  gbrbm_gibbs(m, v, h, 60, rng);  // independent chains, long past their burn-in
  std::vector<double> count(8, 0.0);
  for (std::size_t r = 0; r < n; ++r) {
    std::size_t s = 0;
    for (std::size_t j = 0; j < 3; ++j) s |= std::size_t(h(r, j) > 0.5) << j;
    count[s] += 1;
  }
  // χ² over the 8 states, 7 degrees of freedom: 24.3 is its 0.999 quantile
  double chi2 = 0;
  for (std::size_t s = 0; s < 8; ++s) chi2 += std::pow(count[s] - n * ph[s], 2) / (n * ph[s]);
  INFO("chi2 " << chi2);
  CHECK(chi2 < 24.3);
  for (std::size_t i = 0; i < 2; ++i) {
    double mv = 0, m2 = 0;
    for (std::size_t r = 0; r < n; ++r) mv += v(r, i) / n, m2 += v(r, i) * v(r, i) / n;
    const double se = std::sqrt((m2 - mv * mv) / n);
    CHECK(std::abs(mv - mean_v[i]) < 5 * se);
  }
}

TEST_CASE("persistent tempering keeps the exact law at beta = 1 and swaps between levels",
          "[gbrbm]") {
  // a model with two far-apart modes (a large weight), a ladder down to the base of
  // independent Gaussians: the β = 1 level's hidden states must follow the exact p(h) (χ²)
  GaussianRbm<double> m = small_model(2, 3, 21);
  m.W.value(0, 0) = 4.0;
  const std::vector<double> ph = exact_hidden_law(m);
  const GbrbmTempering t{{1.0, 0.7, 0.4, 0.1, 0.0}, {0.0, 0.0}, {4.0, 4.0}};
  const std::size_t n = 4000;
  Rng rng(22);
  GbrbmChains<double> chains;
  chains.v = rng.normal_array<double>({n, 2});
  for (int round = 0; round < 40; ++round) gbrbm_tempered_gibbs(m, chains, t, 2, rng);
  std::vector<double> count(8, 0.0);
  for (std::size_t r = 0; r < n; ++r) {
    std::size_t s = 0;
    for (std::size_t j = 0; j < 3; ++j) s |= std::size_t(chains.h(r, j) > 0.5) << j;
    count[s] += 1;
  }
  double chi2 = 0;  // 7 degrees of freedom: 24.3 is the 0.999 quantile
  for (std::size_t s = 0; s < 8; ++s) chi2 += std::pow(count[s] - n * ph[s], 2) / (n * ph[s]);
  INFO("chi2 " << chi2);
  CHECK(chi2 < 24.3);
  REQUIRE(chains.swaps_proposed.size() == 4);
  for (std::size_t l = 0; l < 4; ++l) {
    const double rate = double(chains.swaps_accepted[l]) / double(chains.swaps_proposed[l]);
    INFO("level " << l << " swap rate " << rate);
    CHECK(rate > 0.05);
    CHECK(rate < 1.0);
  }
  CHECK_THROWS_AS(
      gbrbm_tempered_gibbs(m, chains, GbrbmTempering{{0.9, 0.0}, {0, 0}, {1, 1}}, 1, rng),
      std::invalid_argument);
  CHECK_THROWS_AS(gbrbm_tempered_gibbs(m, chains, GbrbmTempering{{1.0, 0.0}, {0}, {1}}, 1, rng),
                  std::invalid_argument);
}

TEST_CASE("CD-1, PCD-1 and tempered PCD raise the exact log-likelihood of a mixture's samples",
          "[gbrbm]") {
  // data: two clusters in 2-D, at (-1.5, 0) and (1.5, 1), standard deviation 0.4
  Rng data_rng(11);
  Array<double> data = Array<double>::from_shape({2000, 2});
  for (std::size_t r = 0; r < 2000; ++r) {
    const bool right = data_rng.uniform() < 0.5;
    data(r, 0) = (right ? 1.5 : -1.5) + 0.4 * data_rng.normal();
    data(r, 1) = (right ? 1.0 : 0.0) + 0.4 * data_rng.normal();
  }
  const auto [mean, var] = base_moments(data);
  const GbrbmTempering ladder{{1.0, 0.75, 0.5, 0.25, 0.0}, mean, var};
  // four seeds of each method: CD-1, PCD-1, PCD-1 with persistent tempering
  double pcd_mean = 0, tempered_mean = 0;
  for (std::uint64_t seed : {12, 13, 14, 15})
    for (int mode : {0, 1, 2}) {
      const bool persistent = mode > 0;
      Rng rng(seed);
      GaussianRbm<double> m(2, 4, rng, 0.1);
      const double before = gbrbm_average_loglik(m, data, gbrbm_exact_log_z(m));
      Adam<double> opt(m.parameters(), {.lr = 0.01});
      GbrbmChains<double> chains;
      if (persistent) chains.v = rng.normal_array<double>({64, 2});
      Tape<double> tape;
      Array<double> batch = Array<double>::from_shape({64, 2});
      for (int step = 0; step < 3000; ++step) {
        for (std::size_t r = 0; r < 64; ++r) {
          const std::size_t k = rng.below(2000);
          batch(r, 0) = data(k, 0), batch(r, 1) = data(k, 1);
        }
        gbrbm_train_step(m, opt, batch, chains, 1, persistent, rng, tape,
                         mode == 2 ? &ladder : nullptr);
      }
      const double after = gbrbm_average_loglik(m, data, gbrbm_exact_log_z(m));
      INFO("seed " << seed << ", "
                   << (mode == 2    ? "tempered PCD"
                       : persistent ? "PCD"
                                    : "CD")
                   << ": exact average log-likelihood " << before << " -> " << after);
      if (mode == 1) pcd_mean += after / 4;
      if (mode == 2) tempered_mean += after / 4;
      // the data's own law scores about −1.70 per point (two well-separated clusters of sd 0.4:
      // log ½ − log(2π·0.16) − 1); the best single Gaussian −2.41 (−log 2π − ½ log det Σ − 1 with
      // Σ = [[2.41, 0.75], [0.75, 0.41]]): CD-1 and tempered PCD find the two clusters on every
      // seed. Plain PCD-1 does not (measured: −1.78 to −2.69): its chains stick in one cluster
      // once the learned variances shrink, which is what the hot levels' swaps undo.
      if (mode == 1) continue;
      CHECK(after > before + 1.0);
      CHECK(after > -2.2);
      CHECK(std::exp(m.z.value(0)) < 0.8);  // the variances moved from 1 towards the clusters'
    }
  INFO("mean over four seeds: PCD " << pcd_mean << ", tempered PCD " << tempered_mean);
  CHECK(tempered_mean > pcd_mean + 0.2);
  Rng rng(2);
  GaussianRbm<double> m(2, 4, rng);
  Adam<double> opt(m.parameters(), {.lr = 0.01});
  GbrbmChains<double> chains;
  Tape<double> tape;
  CHECK_THROWS_AS(gbrbm_train_step(m, opt, data, chains, 1, false, rng, tape, &ladder),
                  std::invalid_argument);  // tempering without persistent chains
}

TEST_CASE("bad input is refused", "[gbrbm]") {
  Rng rng(13);
  CHECK_THROWS_AS(GaussianRbm<double>(0, 2, rng), std::invalid_argument);
  GaussianRbm<double> m(3, 2, rng);
  TD t;
  CHECK_THROWS_WITH(m(t, t.constant(randn({2, 4}, 14))), Catch::Contains("[2,4] is not [n, 3]"));
  GaussianRbm<double> big(2, 25, rng);
  CHECK_THROWS_AS(gbrbm_exact_log_z(big), std::invalid_argument);
  Adam<double> opt(m.parameters(), {});
  GbrbmChains<double> chains;
  Tape<double> tape;
  CHECK_THROWS_AS(gbrbm_train_step(m, opt, randn({2, 3}, 15), chains, 0, false, rng, tape),
                  std::invalid_argument);
  CHECK_THROWS_AS(gbrbm_train_step(m, opt, randn({2, 3}, 15), chains, 1, true, rng, tape),
                  std::invalid_argument);
}

TEST_CASE("AIS from a base fitted to the data's moments agrees with the exact log Z", "[gbrbm]") {
  for (std::uint64_t seed : {16, 17}) {
    GaussianRbm<double> m = small_model(3, 5, seed);
    const double exact = gbrbm_exact_log_z(m);
    // a base from samples of the model itself (as one would fit it to training data)
    Rng rng(seed + 100);
    Array<double> v = rng.normal_array<double>({2000, 3}), h;
    gbrbm_gibbs(m, v, h, 50, rng);
    const auto [mean, var] = base_moments(v);
    const GbrbmAis a = gbrbm_ais(m, mean, var, 500, 1000, rng);
    INFO("exact " << exact << ", AIS " << a.log_z << " +- " << a.std_err);
    CHECK(a.runs == 500);
    CHECK(a.std_err < 0.05);
    CHECK(std::abs(a.log_z - exact) < 4 * a.std_err);
    // one temperature is plain importance sampling from the base: unbiased in Z, noisier
    const GbrbmAis one = gbrbm_ais(m, mean, var, 4000, 1, rng);
    CHECK(std::abs(one.log_z - exact) < 4 * one.std_err);
  }
  GaussianRbm<double> m = small_model(3, 2, 18);
  Rng rng(19);
  CHECK_THROWS_AS(gbrbm_ais(m, {0, 0}, {1, 1}, 10, 10, rng), std::invalid_argument);
  CHECK_THROWS_AS(gbrbm_ais(m, {0, 0, 0}, {1, 0, 1}, 10, 10, rng), std::invalid_argument);
  CHECK_THROWS_AS(gbrbm_ais(m, {0, 0, 0}, {1, 1, 1}, 0, 10, rng), std::invalid_argument);
}
