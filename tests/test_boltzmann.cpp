// Boltzmann–Gibbs utilities against exact answers: log Z of a Gaussian energy by quadrature
// against its closed form, the exact MLE gradient against its closed form and against autodiff
// of the NLL, and the discrete-answer distribution.
#include <numbers>
#include <set>

#include "ebm/boltzmann.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;
using Catch::Matchers::Contains;

namespace {
// A correlated 2-D Gaussian energy: E(x) = ½||A(x - μ)||²
GaussianEnergy<double> gaussian_2d() {
  Array<double> mu = {0.5, -0.3};
  Array<double> a = {{1.2, 0.4}, {-0.3, 0.9}};
  return GaussianEnergy<double>(mu, a);
}
}  // namespace

TEST_CASE("log Z of a 2-D Gaussian energy by quadrature equals the analytic value", "[boltzmann]") {
  GaussianEnergy<double> e = gaussian_2d();
  // det A = 1.2*0.9 + 0.4*0.3 = 1.2
  CHECK(GaussianEnergy<double>::log_abs_det(e.a().value) == Approx(std::log(1.2)).epsilon(1e-14));
  // Box of ±9 around μ in each coordinate: the largest standard deviation is below 1.5, so the
  // mass outside is < 1e-8; the midpoint rule on a smooth, decaying integrand is far more accurate.
  Domain<double> d = grid_2d<double>(0.5 - 9, 0.5 + 9, 300, -0.3 - 9, -0.3 + 9, 300);
  for (double beta : {1.0, 2.5, 0.4}) {
    INFO("beta " << beta);
    // at β = 0.4 the standard deviations grow by 1/√0.4 ≈ 1.6, still well inside the box
    CHECK(log_partition(e, d, beta) == Approx(e.log_z(beta)).margin(1e-7));
  }
  Array<double> p = density(e, d, 1.0);
  CHECK(xt::sum(p)() * std::exp(d.log_cell) == Approx(1.0).margin(1e-9));
}

TEST_CASE("log Z of a 1-D Gaussian energy by quadrature", "[boltzmann]") {
  Array<double> mu(Shape{1}, 1.0), a(Shape{1, 1}, 0.5);
  GaussianEnergy<double> e(mu, a);  // N(1, 4)
  Domain<double> d = grid_1d<double>(1 - 20, 1 + 20, 2000);
  CHECK(log_partition(e, d) == Approx(0.5 * std::log(2 * std::numbers::pi * 4)).margin(1e-8));
  CHECK(e.log_z() == Approx(0.5 * std::log(2 * std::numbers::pi * 4)).epsilon(1e-14));
}

TEST_CASE("exact NLL of data is beta mean E plus log Z", "[boltzmann]") {
  GaussianEnergy<double> e = gaussian_2d();
  Domain<double> d = grid_2d<double>(-8.5, 9.5, 250, -9.3, 8.7, 250);
  Array<double> data = randn({7, 2}, 3);
  double mean_e = 0;
  {
    TD t;
    mean_e = mean(e(t, t.constant(data))).item();
  }
  CHECK(nll(e, d, data, 2.0) == Approx(2.0 * mean_e + e.log_z(2.0)).margin(1e-6));
}

TEST_CASE("exact MLE gradient of a Gaussian energy equals its closed form", "[boltzmann]") {
  // ∇μ NLL = -mean_i P (x_i - μ)           (E_p[∇μ E] = 0)
  // ∇A NLL = mean_i A (x_i-μ)(x_i-μ)ᵀ - A⁻ᵀ  (E_p[A (x-μ)(x-μ)ᵀ] = A Σ = A (AᵀA)⁻¹ = A⁻ᵀ)
  GaussianEnergy<double> e = gaussian_2d();
  Domain<double> d = grid_2d<double>(0.5 - 9, 0.5 + 9, 300, -0.3 - 9, -0.3 + 9, 300);
  Array<double> data = randn({9, 2}, 4);
  MleGradient<double> g = exact_mle_gradient(e, d, data);
  auto grad = g.nll_gradient();
  REQUIRE(grad.size() == 2);

  const Array<double>& mu = e.mu().value;
  const Array<double>& a = e.a().value;
  Array<double> p = {
      {a(0, 0) * a(0, 0) + a(1, 0) * a(1, 0), a(0, 0) * a(0, 1) + a(1, 0) * a(1, 1)},
      {a(0, 1) * a(0, 0) + a(1, 1) * a(1, 0), a(0, 1) * a(0, 1) + a(1, 1) * a(1, 1)}};  // AᵀA
  Array<double> s(Shape{2, 2}, 0.0);  // mean (x-μ)(x-μ)ᵀ
  Array<double> gmu(Shape{2}, 0.0);
  for (std::size_t i = 0; i < 9; ++i) {
    double z0 = data(i, 0) - mu(0), z1 = data(i, 1) - mu(1);
    s(0, 0) += z0 * z0 / 9;
    s(0, 1) += z0 * z1 / 9;
    s(1, 0) += z1 * z0 / 9;
    s(1, 1) += z1 * z1 / 9;
    gmu(0) -= (p(0, 0) * z0 + p(0, 1) * z1) / 9;
    gmu(1) -= (p(1, 0) * z0 + p(1, 1) * z1) / 9;
  }
  double det = a(0, 0) * a(1, 1) - a(0, 1) * a(1, 0);
  Array<double> a_inv_t = {{a(1, 1) / det, -a(1, 0) / det}, {-a(0, 1) / det, a(0, 0) / det}};
  for (std::size_t k = 0; k < 2; ++k) CHECK(grad[0](k) == Approx(gmu(k)).margin(1e-7));
  for (std::size_t r = 0; r < 2; ++r)
    for (std::size_t c = 0; c < 2; ++c) {
      double want = a(r, 0) * s(0, c) + a(r, 1) * s(1, c) - a_inv_t(r, c);
      CHECK(grad[1](r, c) == Approx(want).margin(1e-7));
    }
  // the dream term of μ is E_p[∇μE] = 0
  CHECK(g.dream[0](0) == Approx(0.0).margin(1e-7));
}

TEST_CASE("wake minus dream equals autodiff of the quadrature NLL for an MLP energy",
          "[boltzmann]") {
  Rng rng(8);
  MlpEnergy<double> e(2, {16, 16}, Activation::Silu, rng);
  Domain<double> d = grid_2d<double>(-3, 3, 40, -3, 3, 40);
  Array<double> data = randn({6, 2}, 9);
  const double beta = 1.3;
  auto g = exact_mle_gradient(e, d, data, beta).nll_gradient();
  // NLL(θ) = β mean E(data) + logsumexp(-βE(grid)) + log vol, differentiated by the tape
  TD t;
  V grid_e = e(t, t.constant(d.points));
  V nll_v = beta * mean(e(t, t.constant(data))) + logsumexp(reshape(grid_e * -beta, {1, -1}), 1);
  auto ref = param_gradients<double>(sum(nll_v), e.parameters());
  REQUIRE(ref.size() == g.size());
  for (std::size_t k = 0; k < g.size(); ++k)
    for (std::size_t j = 0; j < g[k].size(); ++j)
      CHECK(g[k].data()[j] == Approx(ref[k].data()[j]).margin(1e-10));
  CHECK(nll(e, d, data, beta) == Approx(nll_v.item() + d.log_cell).epsilon(1e-12));
}

TEST_CASE("discrete answers: p(y|x) is the softmax of -beta E and inference is the argmin",
          "[boltzmann]") {
  Array<double> e = randn({4, 5}, 5);
  TD t;
  V ev = t.constant(e);
  const double beta = 0.7;
  V lz = log_partition(ev, beta), lp = log_prob(ev, beta);
  std::vector<std::size_t> y = infer(e);
  for (std::size_t r = 0; r < 4; ++r) {
    double z = 0, psum = 0;
    std::size_t best = 0;
    for (std::size_t j = 0; j < 5; ++j) {
      z += std::exp(-beta * e(r, j));
      psum += std::exp(lp.value()(r, j));
      if (e(r, j) < e(r, best)) best = j;
    }
    CHECK(lz.value()(r) == Approx(std::log(z)));
    CHECK(psum == Approx(1.0));
    CHECK(lp.value()(r, 1) == Approx(-beta * e(r, 1) - std::log(z)));
    CHECK(y[r] == best);
  }
}

TEST_CASE("domains: grids cover their box and the binary cube enumerates every vector once",
          "[boltzmann]") {
  Domain<double> g = grid_2d<double>(-1, 1, 4, 0, 3, 3);
  CHECK(g.size() == 12);
  CHECK(g.points(0, 0) == -0.75);
  CHECK(g.points(11, 1) == 2.5);
  CHECK(std::exp(g.log_cell) == Approx(0.5));
  Domain<float> c = binary_cube<float>(4);
  CHECK(c.size() == 16);
  std::set<std::vector<float>> seen;
  for (std::size_t i = 0; i < 16; ++i)
    seen.insert({c.points(i, 0), c.points(i, 1), c.points(i, 2), c.points(i, 3)});
  CHECK(seen.size() == 16);
  CHECK_THROWS_WITH(grid_1d<double>(1, 1, 10), Contains("grid_1d"));
  CHECK_THROWS_WITH(binary_cube<double>(40), Contains("too many"));
}
