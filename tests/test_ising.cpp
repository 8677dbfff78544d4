// The Ising model (ebm/ising.hpp) against exact answers: the tape's energy against the direct
// sum and its gradients against finite differences; enumeration against the closed form of the
// ring; the transfer matrix against enumeration (open and periodic lattices, random couplings and
// fields: log Z, magnetisations, correlations); and the transfer matrix on wide tori against
// Onsager's infinite-lattice free energy.
#include <cmath>

#include "ebm/ising.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {

Ising random_model(IsingGraph g, std::uint64_t seed, double j_sd = 0.5, double h_sd = 0.3) {
  Ising m(std::move(g));
  Rng rng(seed);
  for (auto& x : m.J.value) x = rng.normal(0, j_sd);
  for (auto& x : m.h.value) x = rng.normal(0, h_sd);
  return m;
}

Array<double> random_spins(std::size_t rows, std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  Array<double> s(Shape{rows, n});
  for (auto& x : s) x = rng.uniform() < 0.5 ? -1.0 : 1.0;
  return s;
}

}  // namespace

TEST_CASE("the tape's Ising energy is the direct sum, with checked gradients", "[ising]") {
  for (bool periodic : {false, true}) {
    Ising m = random_model(ising_lattice(3, 4, periodic), 1);
    CHECK(m.graph().edges.size() == (periodic ? 24u : 17u));
    const Array<double> s = random_spins(5, 12, 2);
    Tape<double> t;
    const Array<double> e = m(t, t.input(s)).value();
    for (std::size_t r = 0; r < 5; ++r) CHECK(e(r) == Approx(m.energy(&s(r, 0))).epsilon(1e-14));
    // in J, h and s (∇s E = −(J s + h): the local fields Gibbs-with-gradients reads)
    expect_gradients([&](TD& tt, In x) { return m(tt, x[0]); }, {randn({4, 12}, 3)},
                     m.parameters());
    Tape<double> t2;
    V x = t2.input(s, true);
    t2.backward(sum(m(t2, x)));
    for (std::size_t i = 0; i < 12; ++i)
      CHECK(t2.grad(x)(0, i) == Approx(-m.local_field(&s(0, 0), i)).epsilon(1e-12));
  }
  Ising m(ising_lattice(2, 2, false));
  Tape<double> t;
  CHECK_THROWS_AS(m(t, t.input(Array<double>(Shape{3, 5}, 1.0))), std::invalid_argument);
  CHECK_THROWS_AS(ising_lattice(2, 5, true), std::invalid_argument);
  CHECK_THROWS_AS(Ising(IsingGraph{3, {{2, 1}}}), std::invalid_argument);
}

TEST_CASE("enumeration gives the ring's closed form", "[ising]") {
  // a ring of n spins, coupling K, no field: Z = (2 cosh K)^n + (2 sinh K)^n and
  // E[s_i s_i+1] = (t + t^(n−1)) / (1 + t^n), t = tanh K
  const std::size_t n = 10;
  IsingGraph ring{n, {}};
  for (std::size_t i = 0; i + 1 < n; ++i) ring.edges.push_back({i, i + 1});
  ring.edges.push_back({0, n - 1});
  for (double K : {0.3, -0.8, 1.5}) {
    const IsingExact x = ising_exact(Ising(ring, K));
    const double t = std::tanh(K);
    CHECK(x.log_z == Approx(std::log(std::pow(2 * std::cosh(K), n) + std::pow(2 * std::sinh(K), n)))
                         .epsilon(1e-12));
    for (double c : x.correlation)
      CHECK(c == Approx((t + std::pow(t, n - 1)) / (1 + std::pow(t, n))).epsilon(1e-10));
    for (double mg : x.magnetisation) CHECK(std::abs(mg) < 1e-12);
  }
}

TEST_CASE("the transfer matrix equals enumeration on open and periodic lattices", "[ising]") {
  for (const auto& [rows, cols, periodic] : {std::tuple{3u, 4u, false}, std::tuple{4u, 3u, true},
                                             std::tuple{1u, 7u, false}, std::tuple{3u, 5u, true}}) {
    const Ising m = random_model(ising_lattice(rows, cols, periodic), 10 + rows * cols);
    const IsingExact a = ising_exact(m), b = ising_transfer_matrix(m);
    INFO(rows << " x " << cols << (periodic ? " periodic" : " open"));
    CHECK(b.log_z == Approx(a.log_z).epsilon(1e-12));
    for (std::size_t i = 0; i < m.nodes(); ++i)
      CHECK(b.magnetisation[i] == Approx(a.magnetisation[i]).margin(1e-11));
    for (std::size_t e = 0; e < a.correlation.size(); ++e)
      CHECK(b.correlation[e] == Approx(a.correlation[e]).margin(1e-11));
  }
  CHECK_THROWS_AS(ising_transfer_matrix(Ising(IsingGraph{3, {{0, 1}}})), std::invalid_argument);
  CHECK_THROWS_AS(ising_exact(Ising(ising_lattice(5, 5, false))), std::invalid_argument);
}

TEST_CASE("the transfer matrix on wide tori approaches Onsager's free energy", "[ising]") {
  // K = 0.3 (disordered) and 0.6 (ordered), both away from K_c = 0.4407, on R × 4R tori. In the
  // ordered phase a torus has two ground states, which adds ln 2 to log Z: the rest of the
  // finite-size error falls exponentially in R (measured: 1.4e-3, 2.3e-4 at K = 0.3 for R = 5, 7;
  // 1.3e-4, 8.7e-6 at K = 0.6 once ln 2 is taken off)
  for (double K : {0.3, 0.6}) {
    const double exact = onsager_log_z_per_site(K), degeneracy = K > 0.4407 ? std::log(2.0) : 0.0;
    std::vector<double> err;
    for (std::size_t R : {3u, 5u, 7u}) {
      const Ising m(ising_lattice(R, 4 * R, true), K);
      const double per_site = (ising_transfer_matrix(m).log_z - degeneracy) / double(m.nodes());
      err.push_back(std::abs(per_site - exact));
      INFO("K " << K << " R " << R << ": " << per_site << " vs Onsager " << exact);
    }
    INFO("K " << K << ": errors " << err[0] << " " << err[1] << " " << err[2]);
    CHECK(err[1] < 0.5 * err[0]);
    CHECK(err[2] < 0.2 * err[1]);  // exponential, not a power of R
    CHECK(err[2] < (K < 0.4407 ? 3e-4 : 2e-5));
  }
  // at K = 0 every configuration counts once: ln 2 per site
  CHECK(onsager_log_z_per_site(0.0) == Approx(std::log(2.0)).epsilon(1e-15));
}
