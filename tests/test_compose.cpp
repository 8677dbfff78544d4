// Composition operators against closed forms on Gaussians: AND is the product Gaussian (moments of
// MALA samples, log Z by quadrature), OR at s = 1 is the Z-weighted mixture and Mixture the
// chosen-weight one (pointwise on the grid), NOT with w < 1 is the Gaussian of precision
// P_a − w P_b; every operator's gradient in x and θ passes the gradient check, trees nest, a
// composite's parameters are its parts' union, and a bare negation is refused.
#include <cmath>

#include "autodiff/higher_order.hpp"
#include "ebm/boltzmann.hpp"
#include "ebm/compose.hpp"
#include "samplers/mala.hpp"
#include "tests/helpers.hpp"
#include "tests/sampler_checks.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {

// Two 2-D Gaussians: a = N(μ_a, P_a⁻¹), b = N(μ_b, P_b⁻¹), with P = AᵀA.
struct TwoGaussians {
  std::shared_ptr<GaussianEnergy<double>> a = std::make_shared<GaussianEnergy<double>>(
      Array<double>{1.0, 0.0}, Array<double>{{1.0, 0.5}, {0.0, 1.2}});
  std::shared_ptr<GaussianEnergy<double>> b = std::make_shared<GaussianEnergy<double>>(
      Array<double>{-0.5, 1.0}, Array<double>{{0.8, 0.0}, {0.3, 0.6}});
  static void precision(const Array<double>& A, double (*p)[2]) {
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) p[i][j] = A(0, i) * A(0, j) + A(1, i) * A(1, j);
  }
};

// P = Σ c_k P_k, μ = P⁻¹ Σ c_k P_k μ_k for E = Σ c_k ½(x − μ_k)ᵀP_k(x − μ_k); and its log Z:
// (d/2) log 2π − ½ log det P − ½ (Σ c_k μ_kᵀP_kμ_k − μᵀPμ).
struct Combined {
  double p[2][2] = {}, sigma[2][2] = {}, mu[2] = {}, log_z = 0;
};
Combined combine(const std::vector<std::pair<GaussianEnergy<double>*, double>>& parts) {
  Combined c;
  double h[2] = {0, 0}, quad = 0;
  for (auto [g, w] : parts) {
    double pk[2][2];
    TwoGaussians::precision(g->a().value, pk);
    const double m[2] = {g->mu().value(0), g->mu().value(1)};
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 2; ++j) c.p[i][j] += w * pk[i][j];
      h[i] += w * (pk[i][0] * m[0] + pk[i][1] * m[1]);
    }
    quad += w * (m[0] * (pk[0][0] * m[0] + pk[0][1] * m[1]) +
                 m[1] * (pk[1][0] * m[0] + pk[1][1] * m[1]));
  }
  const double det = c.p[0][0] * c.p[1][1] - c.p[0][1] * c.p[1][0];
  c.sigma[0][0] = c.p[1][1] / det;
  c.sigma[1][1] = c.p[0][0] / det;
  c.sigma[0][1] = c.sigma[1][0] = -c.p[0][1] / det;
  c.mu[0] = c.sigma[0][0] * h[0] + c.sigma[0][1] * h[1];
  c.mu[1] = c.sigma[1][0] * h[0] + c.sigma[1][1] * h[1];
  const double mpm = c.mu[0] * h[0] + c.mu[1] * h[1];
  c.log_z = std::log(2 * std::numbers::pi) - 0.5 * std::log(det) - 0.5 * (quad - mpm);
  return c;
}

EnergyFn<double> fn(const EnergyPtr<double>& e) {
  return [e](TD& t, V x) { return (*e)(t, x); };
}

// wide enough that the Gaussians' mass outside is below 1e-9
const Domain<double> kGrid = grid_2d<double>(-13, 13, 500, -13, 13, 500);

}  // namespace

TEST_CASE("AND of two Gaussians is their product Gaussian", "[compose]") {
  TwoGaussians g;
  for (double wb : {1.0, 0.5}) {
    INFO("w_b = " << wb);
    EnergyPtr<double> e = And<double>({g.a, g.b}, {1.0, wb});
    const Combined c = combine({{g.a.get(), 1.0}, {g.b.get(), wb}});
    CHECK(log_partition(*e, kGrid) == Approx(c.log_z).epsilon(1e-6));
    Rng rng(1);
    Array<double> x = randn({6000, 2}, 2);
    Mala<double>(fn(e), {.steps = 400, .step_size = 0.2}).run(x, rng);
    expect_moments(x, c.mu, c.sigma);
  }
}

TEST_CASE("OR at s = 1 is the Z-weighted mixture; Mixture takes chosen weights", "[compose]") {
  TwoGaussians g;
  const double za = g.a->log_z(), zb = g.b->log_z();
  EnergyPtr<double> e_or = Or<double>({g.a, g.b});
  // −E_OR = log(e^{−E_a} + e^{−E_b}) = log(Z_a p_a + Z_b p_b), so Z_OR = Z_a + Z_b exactly
  const double log_z_or = std::log(std::exp(za) + std::exp(zb));
  CHECK(log_partition(*e_or, kGrid) == Approx(log_z_or).epsilon(1e-6));
  EnergyPtr<double> e_mix = Mixture<double>({g.a, g.b}, {0.2, 0.8}, {za, zb});
  CHECK(log_partition(*e_mix, kGrid) == Approx(0.0).margin(1e-6));  // normalised
  // pointwise: p_OR = (Z_a p_a + Z_b p_b) / (Z_a + Z_b), p_mix = 0.2 p_a + 0.8 p_b
  const Array<double> ea = energies_on(*g.a, kGrid), eb = energies_on(*g.b, kGrid),
                      eo = energies_on(*e_or, kGrid), em = energies_on(*e_mix, kGrid);
  double worst_or = 0, worst_mix = 0;
  for (std::size_t i = 0; i < kGrid.size(); i += 97) {
    const double pa = std::exp(-ea(i) - za), pb = std::exp(-eb(i) - zb);
    const double p_or = (std::exp(za) * pa + std::exp(zb) * pb) / std::exp(log_z_or);
    worst_or = std::max(worst_or, std::abs(std::exp(-eo(i) - log_z_or) - p_or) / (p_or + 1e-300));
    const double p_mix = 0.2 * pa + 0.8 * pb;
    worst_mix = std::max(worst_mix, std::abs(std::exp(-em(i)) - p_mix) / (p_mix + 1e-300));
  }
  CHECK(worst_or < 1e-10);
  CHECK(worst_mix < 1e-10);
  // as s grows, OR tends to the minimum of the energies
  EnergyPtr<double> hard = Or<double>({g.a, g.b}, 200.0);
  const Array<double> eh = energies_on(*hard, kGrid);
  double gap = 0;
  for (std::size_t i = 0; i < kGrid.size(); i += 97)
    gap = std::max(gap, std::abs(eh(i) - std::min(ea(i), eb(i))));
  CHECK(gap < std::log(2.0) / 200 + 1e-12);
}

TEST_CASE("NOT with w < 1 of two Gaussians is the Gaussian of precision P_a − w P_b", "[compose]") {
  TwoGaussians g;
  const double w = 0.4;
  EnergyPtr<double> e = Not<double>(g.a, g.b, w);
  const Combined c = combine({{g.a.get(), 1.0}, {g.b.get(), -w}});
  REQUIRE(c.p[0][0] * c.p[1][1] - c.p[0][1] * c.p[1][0] > 0);  // a density
  CHECK(log_partition(*e, kGrid) == Approx(c.log_z).epsilon(1e-6));
  Rng rng(3);
  Array<double> x = randn({6000, 2}, 4);
  Mala<double>(fn(e), {.steps = 400, .step_size = 0.2}).run(x, rng);
  expect_moments(x, c.mu, c.sigma);
}

TEST_CASE("a bare negation is refused; operators check their parts", "[compose]") {
  TwoGaussians g;
  CHECK_THROWS_WITH(Not<double>(nullptr, g.b), Catch::Contains("needs a base concept"));
  CHECK_THROWS_WITH(And<double>({}), Catch::Contains("AND: needs at least 1 part"));
  CHECK_THROWS_WITH(And<double>({g.a, g.b}, {1.0}), Catch::Contains("AND: 1 weights for 2 parts"));
  CHECK_THROWS_WITH(Or<double>({g.a}, 0.0), Catch::Contains("s must be > 0"));
  CHECK_THROWS_WITH(Mixture<double>({g.a, g.b}, {0.5}, {0.0, 0.0}),
                    Catch::Contains("2 parts, 1 weights, 2 log Z"));
  CHECK_THROWS_WITH(Temper<double>(g.a, -1.0), Catch::Contains("beta must be > 0"));
}

TEST_CASE("every operator's gradient in x and in theta passes the check; trees nest", "[compose]") {
  Rng rng(5);
  auto a =
      std::make_shared<MlpEnergy<double>>(2, std::vector<std::size_t>{6}, Activation::Tanh, rng);
  auto b = std::make_shared<MlpEnergy<double>>(2, std::vector<std::size_t>{5}, Activation::Softplus,
                                               rng);
  ConditionalMlpEnergy<double> cond(2, {7}, 3, Activation::Tanh, rng);
  auto c = std::make_shared<ConceptEnergy<double>>(cond, 2);
  const std::vector<std::pair<std::string, EnergyPtr<double>>> cases = {
      {"and", And<double>({a, b}, {0.7, 1.3})},
      {"or s=1", Or<double>({a, b})},
      {"or s=3", Or<double>({a, b, c}, 3.0)},
      {"mixture", Mixture<double>({a, c}, {0.3, 0.7}, {0.2, -0.1})},
      {"not", Not<double>(a, b, 0.5)},
      {"temper", Temper<double>(b, 0.3)},
      {"(a AND b) OR NOT(c, a)", Or<double>({And<double>({a, b}), Not<double>(c, a, 0.5)}, 2.0)},
  };
  const Array<double> x = randn({5, 2}, 6);
  for (const auto& [name, e] : cases) {
    INFO(name);
    expect_gradients([e](TD& t, In v) { return sum((*e)(t, v[0])); }, {x}, e->parameters());
  }
  // parameters: the union, each once (a appears twice in the tree; c brings the whole network)
  const auto ps = cases.back().second->parameters();
  CHECK(ps.size() == a->parameters().size() + b->parameters().size() + cond.parameters().size());
  std::vector<Parameter<double>*> sorted = ps;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
}

TEST_CASE("a concept's energy is its column of the conditional network", "[compose]") {
  Rng rng(7);
  ConditionalMlpEnergy<double> cond(2, {8}, 3, Activation::Relu, rng);
  const Array<double> x = randn({4, 2}, 8);
  Tape<double> t;
  const Array<double> all = cond.all(t, t.input(x)).value();
  for (std::size_t k = 0; k < 3; ++k) {
    ConceptEnergy<double> e(cond, k);
    const Array<double> ek = e(t, t.input(x)).value();
    for (std::size_t i = 0; i < 4; ++i) CHECK(ek(i) == all(i, k));
  }
  CHECK_THROWS_WITH(ConceptEnergy<double>(cond, 3), Catch::Contains("concept 3 of a model with 3"));
}

TEST_CASE("a conditional CNN with global pooling gives a pattern the same energies wherever it is",
          "[compose]") {
  Rng rng(9);
  CnnSpec spec{.channels = 1,
               .height = 16,
               .width = 16,
               .blocks = {{.channels = 3, .kernel = 3, .stride = 1, .padding = 1, .pool = 2},
                          {.channels = 4, .kernel = 3, .stride = 1, .padding = 1, .pool = 1}},
               .hidden = {5},
               .outputs = 3,
               .global_pool = true};
  ConditionalCnnEnergy<double> cond(spec, Activation::Tanh, rng);
  // a 2×2 pattern at (6, 6) and the same at (8, 8): moved by a multiple of the pooling window,
  // and far enough from the edges that no convolution sees it together with zero padding (the
  // background's maps are not zero after the first layer, the padding is)
  Array<double> x(Shape{2, 256}, 0.0);
  const Array<double> pattern = randn({4}, 10);
  for (std::size_t r = 0; r < 2; ++r)
    for (std::size_t c = 0; c < 2; ++c) {
      x(0, (6 + r) * 16 + 6 + c) = pattern(r * 2 + c);
      x(1, (8 + r) * 16 + 8 + c) = pattern(r * 2 + c);
    }
  Tape<double> t;
  const Array<double> e = cond.all(t, t.input(x)).value();
  for (std::size_t k = 0; k < 3; ++k) CHECK(e(0, k) == Approx(e(1, k)).epsilon(1e-12));
  auto concept_energy = std::make_shared<ConceptEnergy<double>>(cond, 1);
  expect_gradients([concept_energy](TD& tp, In v) { return sum((*concept_energy)(tp, v[0])); },
                   {randn({2, 256}, 11)}, concept_energy->parameters());
}

TEST_CASE("a grid of several concepts indexes one conditional output per combination",
          "[compose]") {
  const ConceptGrid g({10, 4});
  CHECK(g.size() == 40);
  CHECK(g.index({0, 0}) == 0);
  CHECK(g.index({3, 2}) == 14);
  for (std::size_t i = 0; i < g.size(); ++i) CHECK(g.index(g.values(i)) == i);
  CHECK_THROWS_WITH(g.index({3}), Catch::Contains("1 values for 2 concepts"));
  CHECK_THROWS_WITH(g.index({3, 4}), Catch::Contains("value 4 of concept 1 has only 4"));
}

TEST_CASE("an external (black-box) energy samples and differentiates like the energy it wraps",
          "[compose]") {
  TwoGaussians g;
  // the black box: E and ∇x E of Gaussian a, computed on a tape of its own
  ExternalEnergy<double> ext([&](const Array<double>& x, Array<double>& e, Array<double>& grad) {
    TD t;
    V xv = t.input(x, true);
    V ev = (*g.a)(t, xv);
    t.backward(sum(ev), {xv});
    e = ev.value();
    grad = t.grad(xv);
  });
  CHECK(ext.parameters().empty());
  // ∇x through the op: weighted rows, against the closed form
  expect_gradients([&](TD& t, In in) { return sum(ext(t, in[0]) * in[1]); },
                   {randn({5, 2}, 31), randn({5}, 32)});
  // MALA on the wrapper draws exactly the chains it draws on the energy itself
  Mala<double> m1(fn(borrow<double>(ext)), {.steps = 50, .step_size = 0.2});
  Mala<double> m2(fn(g.a), {.steps = 50, .step_size = 0.2});
  Array<double> x1 = randn({6, 2}, 33), x2 = x1;
  Rng r1(34), r2(34);
  m1.run(x1, r1);
  m2.run(x2, r2);
  CHECK(same(x1, x2));

  // a function that returns the wrong shapes is named in the error; so is the op in a
  // gradient of a gradient, which it does not have
  ExternalEnergy<double> bad([](const Array<double>& x, Array<double>& e, Array<double>& grad) {
    e = Array<double>::from_shape({x.shape()[0] + 1});
    grad = x;
  });
  TD t;
  CHECK_THROWS_WITH(bad(t, t.input(randn({3, 2}, 35))),
                    Catch::Contains("external_energy") && Catch::Contains("[3]"));
  t.clear();
  V x = t.input(randn({3, 2}, 36), true);
  CHECK_THROWS_WITH(gradients(sum(ext(t, x)), {x}), Catch::Contains("external_energy"));
}
