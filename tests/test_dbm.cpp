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

// Two 6-pixel patterns (the halves on and off) and their one-pixel corruptions: 400 rows, each
// pixel flipped with probability 0.05; their own law scores about −1.88 nats per row.
Array<double> two_patterns() {
  Rng data_rng(6);
  Array<double> data(Shape{400, 6});
  for (std::size_t r = 0; r < 400; ++r)
    for (std::size_t i = 0; i < 6; ++i) {
      const double bit = (r % 2 == 0) == (i < 3) ? 1.0 : 0.0;
      data(r, i) = data_rng.uniform() < 0.05 ? 1 - bit : bit;
    }
  return data;
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
  const Array<double> data = two_patterns();
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

TEST_CASE("every way of enumerating gives the same log Z and log p(v)", "[dbm]") {
  for (std::uint64_t seed : {8, 9}) {
    Rng rng(seed);
    Dbm m(4, 3, 5, rng, 0.8);  // H₁ < V + H₂ and H₁ < H₂: the default sums over h¹
    for (auto* p : {&m.b, &m.c1, &m.c2})
      for (auto& x : p->value) x = rng.normal(0, 0.7);
    const double brute = brute_log_z(m);
    CHECK(dbm_exact_log_z(m, DbmEnumerate::FirstHidden) == Approx(brute).epsilon(1e-12));
    CHECK(dbm_exact_log_z(m, DbmEnumerate::Outer) == Approx(brute).epsilon(1e-12));
    CHECK(dbm_exact_log_z(m) == Approx(brute).epsilon(1e-12));
    for (std::size_t s = 0; s < 16; ++s) {
      double v[4];
      for (std::size_t i = 0; i < 4; ++i) v[i] = double((s >> i) & 1u);
      CHECK(dbm_exact_log_prob(m, v, brute, DbmEnumerate::FirstHidden) ==
            Approx(dbm_exact_log_prob(m, v, brute, DbmEnumerate::Outer)).epsilon(1e-12));
    }
  }
  Rng rng(10);
  CHECK_THROWS_AS(dbm_exact_log_z(Dbm(30, 25, 2, rng)), std::invalid_argument);  // 2^25 > 2^24
}

TEST_CASE("AIS estimates the exact log Z within its standard error", "[dbm]") {
  // a small model and one with 2^14 (v, h²) states, its weights large enough that the layers
  // interact; the base: visible biases of the model's own visible units
  struct Case {
    std::size_t v, h1, h2;
    double scale;
  };
  for (const Case& k : {Case{3, 3, 2, 1.0}, Case{10, 6, 4, 0.6}}) {
    Rng rng(11 + k.v);
    Dbm m(k.v, k.h1, k.h2, rng, k.scale);
    for (auto* p : {&m.b, &m.c1, &m.c2})
      for (auto& x : p->value) x = rng.normal(0, 0.5);
    const double exact = dbm_exact_log_z(m);
    const Array<double> base = m.b.value;
    Rng arng(12);
    const AisResult a = dbm_ais(m, base, 400, 1000, arng);
    INFO(k.v << " visible: exact " << exact << " AIS " << a.log_z << " ± " << a.std_err);
    CHECK(std::abs(a.log_z - exact) < 4 * a.std_err + 1e-3);
    CHECK(a.std_err < 0.05);
    CHECK(a.log_z_bound <= exact + 4 * a.bound_std_err);  // a lower bound in expectation
  }
  Rng rng(13);
  Dbm m(3, 2, 2, rng);
  CHECK_THROWS_AS(dbm_ais(m, Array<double>(Shape{2}, 0.0), 10, 10, rng), std::invalid_argument);
  CHECK_THROWS_AS(dbm_ais(m, Array<double>(Shape{3}, 0.0), 0, 10, rng), std::invalid_argument);
}

TEST_CASE("greedy pre-training gives a DBM close to the data before any joint learning", "[dbm]") {
  // the data of the learning test: two 6-pixel patterns and their one-pixel corruptions
  const Array<double> data = two_patterns();
  Rng rng(14);
  Dbm m(6, 4, 3, rng, 0.1);
  const double before = dbm_average_loglik(m, data, dbm_exact_log_z(m));
  dbm_pretrain(m, data, {.epochs = 30, .batch = 20, .lr = 0.1}, rng);
  const double lz = dbm_exact_log_z(m), after = dbm_average_loglik(m, data, lz);
  INFO(before << " -> " << after);
  // uniform: −4.16; the data's own law: −1.88
  CHECK(after > before + 1.0);
  CHECK(after > -2.2);  // (it reaches −1.94)
  // the mean-field bound of every row lies below its exact log-likelihood
  const double bound = dbm_average_lower_bound(m, data, lz);
  CHECK(bound <= after);
  CHECK(bound > after - 1.0);
  CHECK_THROWS_AS(dbm_pretrain(m, Array<double>(Shape{5, 4}), {}, rng), std::invalid_argument);
  CHECK_THROWS_AS(dbm_average_loglik(m, Array<double>(Shape{5, 4}), lz), std::invalid_argument);
}

TEST_CASE("the learning step's two halves are finite-difference gradients", "[dbm]") {
  // data half: at the mean-field fixed point the bound's gradient in θ is its partial derivative
  // (the envelope theorem), so the statistics v μ¹ᵀ, μ¹ μ²ᵀ, v, μ¹, μ² are the finite differences
  // of log p*(v)'s bound, −E(v, μ) + H(q), with μ solved again at every perturbation. Model half:
  // the finite differences of the exact log Z are the exact expectations of the same statistics,
  // which the persistent chains estimate.
  Dbm m = tiny(15, 0.8);
  const double v[3] = {1, 0, 1};
  auto bound = [&] { return dbm_lower_bound(m, v, dbm_mean_field(m, v), 0.0); };
  const MeanField q = dbm_mean_field(m, v);
  const double h = 1e-5;
  auto fd = [&](double& p, auto&& f) {
    const double keep = p;
    p = keep + h;
    const double up = f();
    p = keep - h;
    const double down = f();
    p = keep;
    return (up - down) / (2 * h);
  };
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      CHECK(fd(m.W1.value(i, j), bound) == Approx(v[i] * q.mu1[j]).margin(1e-7));
  for (std::size_t j = 0; j < 3; ++j)
    for (std::size_t k = 0; k < 2; ++k)
      CHECK(fd(m.W2.value(j, k), bound) == Approx(q.mu1[j] * q.mu2[k]).margin(1e-7));
  for (std::size_t k = 0; k < 2; ++k)
    CHECK(fd(m.c2.value(k), bound) == Approx(q.mu2[k]).margin(1e-7));

  // exact E[v_i h¹_j] by enumerating every joint state, against ∂ log Z / ∂W¹_ij
  const double lz = dbm_exact_log_z(m);
  Array<double> model_w1(Shape{3, 3}, 0.0);
  std::vector<double> x(3), h1(3), h2(2);
  for (std::size_t s = 0; s < 256; ++s) {
    for (std::size_t i = 0; i < 3; ++i) x[i] = double((s >> i) & 1u);
    for (std::size_t j = 0; j < 3; ++j) h1[j] = double((s >> (3 + j)) & 1u);
    for (std::size_t k = 0; k < 2; ++k) h2[k] = double((s >> (6 + k)) & 1u);
    const double p = std::exp(-m.energy(x.data(), h1.data(), h2.data()) - lz);
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 3; ++j) model_w1(i, j) += p * x[i] * h1[j];
  }
  auto log_z = [&] { return dbm_exact_log_z(m); };
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      CHECK(fd(m.W1.value(i, j), log_z) == Approx(model_w1(i, j)).margin(1e-7));

  // the step itself: −(v μ¹ᵀ) + the chains' mean of v h¹ᵀ, the latter within 4 standard errors
  // of the exact expectation (20,000 chains after 50 sweeps; sd of a product of bits ≤ ½)
  Rng rng(16);
  DbmChains chains = dbm_chains(m, 20000, rng);
  Array<double> batch(Shape{1, 3});
  std::copy_n(v, 3, batch.data());
  SGD<double> opt(m.parameters(), {.lr = 0.0});
  dbm_train_step(m, opt, batch, chains, 50, rng);
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      CHECK(m.W1.grad(i, j) + v[i] * q.mu1[j] ==
            Approx(model_w1(i, j)).margin(4 * 0.5 / std::sqrt(20000.0)));
}
