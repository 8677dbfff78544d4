// The two-layer deep Boltzmann machine (ebm/dbm.hpp) against exact answers on models small
// enough to enumerate: log Z and log p(v) against the brute-force sum over every joint state, the
// mean-field fixed point and its lower bound (exact when the layers decouple), block Gibbs against
// the exact p(v) (χ²), and learning (mean-field data term, persistent chains) raising the exact
// log-likelihood.
#include <cmath>

#include "ebm/dbm.hpp"
#include "tests/helpers.hpp"

using namespace ebl;

namespace {

Dbm tiny(std::uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  Dbm m(3, 3, 2, rng, scale);
  for (auto* p : {&m.b, &m.c1, &m.c2})
    for (auto& x : p->value) x = rng.normal(0, 0.7);
  return m;
}

// log Σ over every (v, h¹, h²) of e^{−E}, and the exact p(v) over the 2^V visible states.
double brute_log_z(const Dbm& m) {
  const std::size_t nv = m.visible(), n1 = m.hidden1(), n2 = m.hidden2();
  std::vector<double> v(nv), h1(n1), h2(n2);
  double z = 0;
  for (std::size_t s = 0; s < (1u << (nv + n1 + n2)); ++s) {
    for (std::size_t i = 0; i < nv; ++i) v[i] = double((s >> i) & 1u);
    for (std::size_t j = 0; j < n1; ++j) h1[j] = double((s >> (nv + j)) & 1u);
    for (std::size_t k = 0; k < n2; ++k) h2[k] = double((s >> (nv + n1 + k)) & 1u);
    z += std::exp(-m.energy(v.data(), h1.data(), h2.data()));
  }
  return std::log(z);
}

}  // namespace

TEST_CASE("exact log Z and log p(v) equal the brute-force sums", "[dbm]") {
  for (std::uint64_t seed : {1, 2}) {
    Dbm m = tiny(seed);
    const double lz = dbm_exact_log_z(m);
    CHECK(lz == Approx(brute_log_z(m)).epsilon(1e-12));
    double total = 0;
    for (std::size_t s = 0; s < 8; ++s) {
      const double v[3] = {double(s & 1u), double((s >> 1) & 1u), double((s >> 2) & 1u)};
      total += std::exp(dbm_exact_log_prob(m, v, lz));
    }
    CHECK(total == Approx(1.0).epsilon(1e-12));
  }
}

TEST_CASE("mean field reaches its fixed point and bounds log p(v) from below", "[dbm]") {
  Dbm m = tiny(3);
  const double lz = dbm_exact_log_z(m);
  for (std::size_t s = 0; s < 8; ++s) {
    const double v[3] = {double(s & 1u), double((s >> 1) & 1u), double((s >> 2) & 1u)};
    const MeanField q = dbm_mean_field(m, v);
    CHECK(q.iterations < 500);
    for (std::size_t j = 0; j < 3; ++j) {  // the fixed-point equations hold
      double a = m.c1.value(j);
      for (std::size_t i = 0; i < 3; ++i) a += v[i] * m.W1.value(i, j);
      for (std::size_t k = 0; k < 2; ++k) a += m.W2.value(j, k) * q.mu2[k];
      CHECK(q.mu1[j] == Approx(1 / (1 + std::exp(-a))).margin(1e-9));
    }
    CHECK(dbm_lower_bound(m, v, q, lz) <= dbm_exact_log_prob(m, v, lz) + 1e-12);
  }
  // with W² = 0 the layers decouple, the posterior factorises and the bound is exact
  for (auto& w : m.W2.value) w = 0;
  const double lz0 = dbm_exact_log_z(m);
  const double v[3] = {1, 0, 1};
  CHECK(dbm_lower_bound(m, v, dbm_mean_field(m, v), lz0) ==
        Approx(dbm_exact_log_prob(m, v, lz0)).epsilon(1e-10));
}

TEST_CASE("block Gibbs draws the exact p(v)", "[dbm]") {
  Dbm m = tiny(4);
  const double lz = dbm_exact_log_z(m);
  Rng rng(5);
  const std::size_t n = 8000;
  DbmChains c = dbm_chains(m, n, rng);
  dbm_gibbs(m, c, 60, rng);
  std::vector<double> count(8, 0.0);
  for (std::size_t r = 0; r < n; ++r)
    count[std::size_t(c.v(r, 0) + 2 * c.v(r, 1) + 4 * c.v(r, 2))] += 1;
  double chi2 = 0;  // 7 degrees of freedom: 24.3 is the 0.999 quantile
  for (std::size_t s = 0; s < 8; ++s) {
    const double v[3] = {double(s & 1u), double((s >> 1) & 1u), double((s >> 2) & 1u)};
    const double expect = n * std::exp(dbm_exact_log_prob(m, v, lz));
    chi2 += (count[s] - expect) * (count[s] - expect) / expect;
  }
  INFO("chi2 " << chi2);
  CHECK(chi2 < 24.3);
}

TEST_CASE("learning raises the exact log-likelihood of data", "[dbm]") {
  // data: two 6-pixel patterns and their one-pixel corruptions
  Rng data_rng(6);
  Array<double> data(Shape{400, 6});
  for (std::size_t r = 0; r < 400; ++r)
    for (std::size_t i = 0; i < 6; ++i) {
      const double bit = (r % 2 == 0) == (i < 3) ? 1.0 : 0.0;
      data(r, i) = data_rng.uniform() < 0.05 ? 1 - bit : bit;
    }
  Rng rng(7);
  Dbm m(6, 4, 3, rng, 0.1);
  auto loglik = [&] {
    const double lz = dbm_exact_log_z(m);
    double s = 0;
    for (std::size_t r = 0; r < 400; ++r) s += dbm_exact_log_prob(m, data.data() + 6 * r, lz);
    return s / 400;
  };
  const double before = loglik();
  Adam<double> opt(m.parameters(), {.lr = 0.02});
  DbmChains chains = dbm_chains(m, 50, rng);
  Array<double> batch(Shape{20, 6});
  for (int step = 0; step < 600; ++step) {
    for (std::size_t r = 0; r < 20; ++r) {
      const std::size_t k = rng.below(400);
      for (std::size_t i = 0; i < 6; ++i) batch(r, i) = data(k, i);
    }
    dbm_train_step(m, opt, batch, chains, 1, rng);
  }
  const double after = loglik();
  INFO(before << " -> " << after);
  // the uniform model scores 6 ln ½ = −4.16; the data's own law about −1.88 (two patterns, each
  // pixel flipped with probability 0.05: ln ½ + 6 (0.95 ln 0.95 + 0.05 ln 0.05))
  CHECK(after > before + 1.0);
  CHECK(after > -2.6);
  CHECK_THROWS_AS(dbm_train_step(m, opt, Array<double>(Shape{2, 5}), chains, 1, rng),
                  std::invalid_argument);
}
