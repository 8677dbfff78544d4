// The discrete samplers against exact laws, by χ² with fixed seeds: single-site Gibbs (random and
// systematic scan), Gibbs for any energy on the tape and Gibbs-with-gradients on a 5-node Ising
// model with couplings of both signs (all 32 states); Gibbs-with-gradients on an MLP energy over
// {0,1}^5; checkerboard Gibbs and Swendsen–Wang on a 4 × 4 torus near the critical coupling (the
// law of the magnetisation, enumerated over 65,536 states). Independent chains, long past their
// burn-in, so the counts are multinomial and χ² applies.
#include <cmath>

#include "ebm/energy.hpp"
#include "ebm/ising_samplers.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {

// Exact law of the 2^n states of an Ising model (state index: bit i set ⇔ s_i = +1).
std::vector<double> exact_states(const Ising& m) {
  const std::size_t n = m.nodes();
  const double lz = ising_exact(m).log_z;
  std::vector<double> p(std::size_t(1) << n), s(n);
  for (std::size_t x = 0; x < p.size(); ++x) {
    for (std::size_t i = 0; i < n; ++i) s[i] = ((x >> i) & 1u) ? 1.0 : -1.0;
    p[x] = std::exp(-m.energy(s.data()) - lz);
  }
  return p;
}

std::size_t state_of(const double* row, std::size_t n) {
  std::size_t x = 0;
  for (std::size_t i = 0; i < n; ++i) x |= std::size_t(row[i] > 0.5 ? 1 : 0) << i;  // ±1 or 0/1
  return x;
}

// χ² of counts against expected probabilities, bins with expected count < 5 merged into one.
double chi2(const std::vector<double>& count, const std::vector<double>& p, double n,
            std::size_t& dof) {
  double c = 0, small_o = 0, small_e = 0;
  std::size_t bins = 0;
  for (std::size_t k = 0; k < p.size(); ++k) {
    const double e = n * p[k];
    if (e < 5) {
      small_o += count[k], small_e += e;
      continue;
    }
    c += (count[k] - e) * (count[k] - e) / e;
    ++bins;
  }
  if (small_e > 0) c += (small_o - small_e) * (small_o - small_e) / small_e, ++bins;
  dof = bins - 1;
  return c;
}

// The 0.999 quantile of χ² with k degrees of freedom (Wilson–Hilferty; within 1% for k ≥ 5).
double chi2_999(std::size_t k) {
  const double z = 3.0902, a = 2.0 / (9.0 * double(k));
  return double(k) * std::pow(1 - a + z * std::sqrt(a), 3);
}

Ising five_nodes() {
  IsingGraph g{5, {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {0, 4}, {1, 3}}};
  Ising m(g);
  const double J[6] = {0.8, -0.6, 0.5, 0.9, -0.4, 0.3}, h[5] = {0.2, -0.3, 0.1, 0.0, 0.4};
  for (std::size_t e = 0; e < 6; ++e) m.J.value(e) = J[e];
  for (std::size_t i = 0; i < 5; ++i) m.h.value(i) = h[i];
  return m;
}

Array<double> random_spins(std::size_t chains, std::size_t n, Rng& rng) {
  Array<double> s(Shape{chains, n});
  for (auto& x : s) x = rng.uniform() < 0.5 ? -1.0 : 1.0;
  return s;
}

}  // namespace

TEST_CASE("every sampler draws the exact law of a small Ising model", "[discrete]") {
  Ising m = five_nodes();
  const std::vector<double> p = exact_states(m);
  const std::size_t chains = 6000;
  EnergyFn<double> energy = [&m](Tape<double>& t, Var<double> s) { return m(t, s); };
  for (int which = 0; which < 4; ++which) {
    Rng rng(100 + which);
    Array<double> s = random_spins(chains, 5, rng);
    const char* name = "";
    switch (which) {
      case 0:
        name = "Gibbs, random scan";
        ising_gibbs(m, s, 30, Scan::Random, rng);
        break;
      case 1:
        name = "Gibbs, systematic scan";
        ising_gibbs(m, s, 30, Scan::Systematic, rng);
        break;
      case 2:
        name = "Gibbs on the tape";
        binary_gibbs(energy, s, 30, Scan::Random, BinaryDomain::Spins, rng);
        break;
      case 3: {
        name = "Gibbs with gradients";
        const GwgStats st = gibbs_with_gradients(energy, s, 150, BinaryDomain::Spins, rng);
        CHECK(st.proposed == 150 * chains);
        CHECK(st.evaluations == 151 * chains);  // the accepted state's evaluation is kept
        CHECK(st.acceptance() > 0.3);
        break;
      }
    }
    std::vector<double> count(32, 0.0);
    for (std::size_t r = 0; r < chains; ++r) count[state_of(&s(r, 0), 5)] += 1;
    std::size_t dof = 0;
    const double c = chi2(count, p, double(chains), dof);
    INFO(name << ": chi2 " << c << " on " << dof << " degrees of freedom");
    CHECK(dof >= 20);
    CHECK(c < chi2_999(dof));
  }
}

TEST_CASE("Gibbs with gradients draws the exact law of an MLP energy on bits", "[discrete]") {
  Rng init(7);
  MlpEnergy<double> mlp(5, {16}, Activation::Tanh, init);
  for (auto* p : mlp.parameters()) p->value *= 3.0;  // a rugged law, far from uniform
  EnergyFn<double> energy = [&mlp](Tape<double>& t, Var<double> x) { return mlp(t, x); };
  Array<double> all(Shape{32, 5});
  for (std::size_t x = 0; x < 32; ++x)
    for (std::size_t i = 0; i < 5; ++i) all(x, i) = double((x >> i) & 1u);
  Tape<double> t;
  const Array<double> e = mlp(t, t.input(all)).value();
  std::vector<double> p(32);
  double z = 0;
  for (std::size_t x = 0; x < 32; ++x) z += (p[x] = std::exp(-e(x)));
  for (double& q : p) q /= z;
  const std::size_t chains = 6000;
  for (bool gwg : {true, false}) {
    Rng rng(8);
    Array<double> x(Shape{chains, 5});
    for (auto& b : x) b = rng.uniform() < 0.5 ? 0.0 : 1.0;
    if (gwg)
      gibbs_with_gradients(energy, x, 200, BinaryDomain::Bits, rng);
    else
      binary_gibbs(energy, x, 40, Scan::Systematic, BinaryDomain::Bits, rng);
    std::vector<double> count(32, 0.0);
    for (std::size_t r = 0; r < chains; ++r) count[state_of(&x(r, 0), 5)] += 1;
    std::size_t dof = 0;
    const double c = chi2(count, p, double(chains), dof);
    INFO((gwg ? "GWG" : "Gibbs") << ": chi2 " << c << " on " << dof << " degrees of freedom");
    CHECK(dof >= 10);
    CHECK(c < chi2_999(dof));
  }
}

TEST_CASE("checkerboard Gibbs and Swendsen-Wang draw the magnetisation's exact law on a torus",
          "[discrete]") {
  // 4 × 4 periodic, K = 0.42 (near K_c = 0.44) and a small field: the law of M = Σ s_i
  Ising m(ising_lattice(4, 4, true), 0.42, 0.03);
  const std::vector<double> p = exact_states(m);
  std::vector<double> pm(17, 0.0);  // M = −16, −14, …, 16 at index (M + 16) / 2
  for (std::size_t x = 0; x < p.size(); ++x) pm[std::size_t(__builtin_popcountll(x))] += p[x];
  const std::size_t chains = 5000;
  for (bool sw : {true, false}) {
    Rng rng(9);
    Array<double> s = random_spins(chains, 16, rng);
    if (sw)
      swendsen_wang(m, s, 40, rng);
    else
      ising_checkerboard(m, s, 150, rng);
    std::vector<double> count(17, 0.0);
    for (std::size_t r = 0; r < chains; ++r) {
      std::size_t up = 0;
      for (std::size_t i = 0; i < 16; ++i) up += s(r, i) > 0;
      count[up] += 1;
    }
    std::size_t dof = 0;
    const double c = chi2(count, pm, double(chains), dof);
    INFO((sw ? "Swendsen-Wang" : "checkerboard") << ": chi2 " << c << " on " << dof);
    CHECK(dof >= 10);
    CHECK(c < chi2_999(dof));
  }
  Rng rng(10);
  Array<double> s = random_spins(4, 9, rng);
  CHECK_THROWS_AS(ising_checkerboard(Ising(ising_lattice(3, 3, true), 0.3), s, 1, rng),
                  std::invalid_argument);  // odd cycles: not two-colourable
  Ising anti(ising_lattice(3, 3, false), -0.3);
  CHECK_THROWS_AS(swendsen_wang(anti, s, 1, rng), std::invalid_argument);
  CHECK_THROWS_AS(ising_gibbs(anti, s = Array<double>(Shape{2, 8}), 1, Scan::Random, rng),
                  std::invalid_argument);
}
