// The Potts model (ebm/potts.hpp): the tape's energy against the direct sum and its gradients
// against finite differences; q = 2 against the Ising model with halved couplings; single-site
// Gibbs against the exact law of every configuration by χ².
#include <cmath>

#include "ebm/potts.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {

Potts random_potts(std::size_t q, std::uint64_t seed) {
  IsingGraph g{4, {{0, 1}, {1, 2}, {2, 3}, {0, 3}, {0, 2}}};
  Potts m(g, q);
  Rng rng(seed);
  for (auto& x : m.J.value) x = rng.normal(0, 0.8);
  for (auto& x : m.h.value) x = rng.normal(0, 0.5);
  return m;
}

}  // namespace

TEST_CASE("the tape's Potts energy is the direct sum, with checked gradients", "[potts]") {
  Potts m = random_potts(3, 1);
  Rng rng(2);
  Array<double> sigma(Shape{6, 4});
  for (auto& s : sigma) s = double(rng.below(3));
  const Array<double> x = potts_one_hot(sigma, 3);
  Tape<double> t;
  const Array<double> e = m(t, t.input(x)).value();
  for (std::size_t r = 0; r < 6; ++r) {
    std::size_t s[4];
    for (std::size_t i = 0; i < 4; ++i) s[i] = std::size_t(sigma(r, i));
    CHECK(e(r) == Approx(m.energy(s)).epsilon(1e-14));
  }
  expect_gradients([&](TD& tt, In in) { return m(tt, in[0]); }, {uniform({3, 12}, 3, 0, 1)},
                   m.parameters());
  CHECK_THROWS_AS(m(t, t.input(Array<double>(Shape{2, 11}, 0.0))), std::invalid_argument);
  CHECK_THROWS_AS(potts_one_hot(Array<double>(Shape{1, 4}, 3.0), 3), std::invalid_argument);
  CHECK_THROWS_AS(Potts(IsingGraph{2, {{0, 1}}}, 1), std::invalid_argument);
}

TEST_CASE("a two-state Potts model is an Ising model with halved couplings", "[potts]") {
  Potts p = random_potts(2, 4);
  for (auto& x : p.h.value) x = 0;  // fields: h_{i,1} − h_{i,0} = 2 h_i of the Ising model
  p.h.value(1, 1) = 0.6;
  Ising ising(p.graph());
  for (std::size_t e = 0; e < ising.J.value.size(); ++e) ising.J.value(e) = p.J.value(e) / 2;
  ising.h.value(1) = 0.3;
  // [σ_i = σ_j] = (1 + s_i s_j)/2 and h_{i,σ} = h_i (1 + s_i) for h_{i,0} = 0: log Z differs by
  // the constants Σ_e J_e/2 + Σ_i h_i
  double shift = 0.3;
  for (double j : p.J.value) shift += j / 2;
  CHECK(potts_exact(p).log_z == Approx(ising_exact(ising).log_z + shift).epsilon(1e-12));
}

TEST_CASE("single-site Gibbs draws the exact law of a Potts model", "[potts]") {
  Potts m = random_potts(3, 5);
  const PottsExact ex = potts_exact(m);
  double total = 0;
  for (double v : ex.marginals) total += v;
  CHECK(total == Approx(4.0).epsilon(1e-12));  // each node's marginal sums to 1
  const std::size_t chains = 8000, S = 81;
  Rng rng(6);
  Array<double> sigma(Shape{chains, 4});
  for (auto& s : sigma) s = double(rng.below(3));
  potts_gibbs(m, sigma, 40, rng);
  std::vector<double> count(S, 0.0), p(S);
  std::size_t cfg[4];
  for (std::size_t x = 0; x < S; ++x) {
    std::size_t y = x;
    for (std::size_t i = 0; i < 4; ++i) cfg[i] = y % 3, y /= 3;
    p[x] = std::exp(-m.energy(cfg) - ex.log_z);
  }
  for (std::size_t r = 0; r < chains; ++r) {
    std::size_t x = 0;
    for (std::size_t i = 4; i-- > 0;) x = x * 3 + std::size_t(sigma(r, i));
    count[x] += 1;
  }
  // χ² with bins of expected count < 5 merged
  double chi2 = 0, so = 0, se = 0;
  std::size_t bins = 0;
  for (std::size_t x = 0; x < S; ++x) {
    const double e = double(chains) * p[x];
    if (e < 5) {
      so += count[x], se += e;
      continue;
    }
    chi2 += (count[x] - e) * (count[x] - e) / e;
    ++bins;
  }
  if (se > 0) chi2 += (so - se) * (so - se) / se, ++bins;
  const double k = double(bins - 1), a = 2 / (9 * k);
  const double q999 = k * std::pow(1 - a + 3.0902 * std::sqrt(a), 3);  // Wilson–Hilferty
  INFO("chi2 " << chi2 << " on " << k << " degrees of freedom (0.999 quantile " << q999 << ")");
  CHECK(bins > 40);
  CHECK(chi2 < q999);
}
