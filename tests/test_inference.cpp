// Inference by minimising energy: closed-form minimisers, restarts against a wrong basin,
// conditional inference against the Gaussian's conditional mean, and ∇_y without parameter
// gradients.
#include "ebm/energy.hpp"
#include "ebm/inference.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;

TEST_CASE("on a quadratic E(x, y) gradient descent finds y* = x A", "[inference]") {
  // E(x, y) = ½ (y - x A)ᵀ P (y - x A) row by row, P symmetric positive definite: y* = x A
  const Array<double> A = {{1.0, -0.5, 0.2}, {0.3, 0.8, -1.0}};
  const Array<double> P = {{2.0, 0.3, 0.0}, {0.3, 1.0, 0.2}, {0.0, 0.2, 1.5}};
  PairEnergyFn<double> e = [&](TD& t, V x, V y) {
    V r = y - matmul(x, t.constant(A));
    return 0.5 * sum(matmul(r, t.constant(P)) * r, 1);
  };
  Array<double> x = randn({6, 2}, 1), y0 = randn({6, 3}, 2);
  Rng rng(3);
  auto res =
      minimize_energy<double>(e, x, y0, {.steps = 5000, .step_size = 0.2, .tol = 1e-12}, rng);
  for (std::size_t i = 0; i < 6; ++i)
    for (std::size_t j = 0; j < 3; ++j) {
      const double want = x(i, 0) * A(0, j) + x(i, 1) * A(1, j);
      CHECK(res.y(i, j) == Approx(want).margin(1e-9));
    }
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(res.energy[i] < 1e-16);
    CHECK(res.evaluations[i] > 10);    // it took steps
    CHECK(res.evaluations[i] < 5001);  // and stopped by the rule, before the step limit
  }
}

TEST_CASE(
    "restarts find a two-well energy's global minimum where one start from the wrong basin "
    "does not",
    "[inference]") {
  // E(y) = (y² - 1)² + 0.3 y: a global minimum near y = -1.04, a local one near y = +0.96
  PairEnergyFn<double> e = [](TD&, V, V y) {
    V y2 = square(y);
    return sum(square(y2 - 1.0) + 0.3 * y, 1);
  };
  Array<double> x(Shape{4, 1}, 0.0), y0(Shape{4, 1}, 1.5);  // every start in the right-hand basin
  InferenceOptions o{.steps = 4000, .step_size = 0.01, .tol = 1e-10, .lo = -2, .hi = 2};
  Rng rng(4);
  auto one = minimize_energy<double>(e, x, y0, o, rng);
  // a uniform start on [-2, 2] falls in the global basin (y below the barrier at 0.075) with
  // probability 0.52: with 15 random starts all miss it with probability 0.48^15 ≈ 2e-5
  o.restarts = 16;
  auto many = minimize_energy<double>(e, x, y0, o, rng);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(one.y(i, 0) > 0.9);    // stuck in the local minimum
    CHECK(many.y(i, 0) < -1.0);  // the global one
    CHECK(many.energy[i] < one.energy[i] - 0.5);
    CHECK(many.evaluations[i] > one.evaluations[i]);  // and it cost more evaluations
  }
  // box constraints: the answer stays in [lo, hi] even when the minimum is outside
  PairEnergyFn<double> slope = [](TD&, V, V y) { return sum(y, 1); };  // minimum at -∞
  auto boxed = minimize_energy<double>(
      slope, x, y0, {.steps = 1000, .step_size = 0.1, .box = true, .lo = -2, .hi = 2}, rng);
  for (std::size_t i = 0; i < 4; ++i) CHECK(boxed.y(i, 0) == -2.0);
}

TEST_CASE("annealed noise lets a single start leave the wrong basin", "[inference]") {
  PairEnergyFn<double> e = [](TD&, V, V y) { return sum(square(square(y) - 1.0) + 0.3 * y, 1); };
  Array<double> x(Shape{200, 1}, 0.0), y0(Shape{200, 1}, 1.0);  // all at the local minimum
  Rng rng(5);
  auto plain = minimize_energy<double>(e, x, y0, {.steps = 3000, .step_size = 0.01}, rng);
  auto noisy =
      minimize_energy<double>(e, x, y0, {.steps = 3000, .step_size = 0.01, .noise = 0.5}, rng);
  std::size_t plain_global = 0, noisy_global = 0;
  for (std::size_t i = 0; i < 200; ++i) {
    plain_global += plain.y(i, 0) < 0;
    noisy_global += noisy.y(i, 0) < 0;
  }
  CHECK(plain_global == 0);
  // the annealed chains end in the deeper well more often than not (its Boltzmann weight at the
  // temperatures that matter is larger); 200 chains: a majority is far outside chance here
  CHECK(noisy_global > 100);
}

TEST_CASE("conditional inference keeps the fixed coordinates and finds the conditional mean",
          "[inference]") {
  // E(x) = ½ (x - μ)ᵀ Λ (x - μ): the minimiser over x_b with x_a fixed is the conditional mean
  // μ_b - Λ_bb⁻¹ Λ_ba (x_a - μ_a). Here a = {0, 2}, b = {1, 3}.
  const Array<double> L = {
      {2.0, 0.5, 0.1, 0.0}, {0.5, 1.5, 0.3, 0.2}, {0.1, 0.3, 1.0, 0.4}, {0.0, 0.2, 0.4, 1.2}};
  const Array<double> mu = {0.5, -1.0, 0.3, 2.0};
  BatchEnergyFn<double> e = [&](TD& t, V x) {
    V r = x - t.constant(mu);
    return 0.5 * sum(matmul(r, t.constant(L)) * r, 1);
  };
  Array<double> x0 = randn({5, 4}, 6);
  const std::vector<bool> free = {false, true, false, true};
  Rng rng(7);
  auto res = minimize_energy_given<double>(
      e, x0, free, {.steps = 20000, .step_size = 0.3, .tol = 1e-13, .restarts = 3}, rng);
  // Λ_bb = [[1.5, 0.2], [0.2, 1.2]], Λ_ba = [[0.5, 0.3], [0.0, 0.4]]
  const double det = 1.5 * 1.2 - 0.2 * 0.2;
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(res.y(i, 0) == x0(i, 0));  // bit for bit
    CHECK(res.y(i, 2) == x0(i, 2));
    const double da = x0(i, 0) - mu(0), dc = x0(i, 2) - mu(2);
    const double r1 = 0.5 * da + 0.3 * dc, r3 = 0.0 * da + 0.4 * dc;  // Λ_ba (x_a - μ_a)
    const double b1 = mu(1) - (1.2 * r1 - 0.2 * r3) / det,
                 b3 = mu(3) - (-0.2 * r1 + 1.5 * r3) / det;
    CHECK(res.y(i, 1) == Approx(b1).margin(1e-9));
    CHECK(res.y(i, 3) == Approx(b3).margin(1e-9));
  }
}

TEST_CASE("inference takes gradients in y only: no parameter gradient is computed", "[inference]") {
  Rng rng(8);
  TwoBranchEnergy<double> two({1, 10, 10}, {1, 10, 10}, Activation::Tanh, rng);
  OneBranchEnergy<double> one({1, 20, 1}, Activation::Tanh, rng);
  Array<double> x = randn({7, 1}, 9), y0 = randn({7}, 10);
  for (int which = 0; which < 2; ++which) {
    ScalarAnswerEnergy<double>& model = which == 0 ? static_cast<ScalarAnswerEnergy<double>&>(one)
                                                   : static_cast<ScalarAnswerEnergy<double>&>(two);
    std::size_t passes = 0;
    PairEnergyFn<double> e = [&](TD& t, V xv, V yv) {
      ++passes;
      return model.pairs(t, xv, yv);
    };
    auto res = minimize_energy<double>(e, x, y0, {.steps = 50, .step_size = 0.01}, rng);
    CHECK(passes > 1);
    for (auto* p : model.parameters()) {
      const bool untouched =
          std::all_of(p->grad.begin(), p->grad.end(), [](double g) { return g == 0; });
      CHECK(untouched);
    }
    // the backward pass inference runs (∇ in y, x constant), its products counted
    TD t;
    V yv = t.input(res.y, true);
    t.backward(sum(model.pairs(t, t.constant(x), yv)), {yv});
    const std::size_t backward_products = t.stats.gemm_backward;
    // one branch: y enters after the network, ∇y needs no product; two branches: y goes through
    // G_W2's two layers, one input-gradient product each, and none for any weight
    CHECK(backward_products == (which == 0 ? 0u : 2u));
  }
}

TEST_CASE("annealed noise ends at T = 0, polished to the minimiser and stopped by the rule",
          "[inference]") {
  // E(x, y) = ½ |y − x|²: y* = x. With noise the search runs its annealing (half the steps by
  // default), then plain descent from wherever the noise left it: the answer within tol of x
  // and the batch stopped before the step limit. Before, T_k = T0 (1 − k/steps) never reached 0:
  // the rule never fired and answers ended 3e-4 to 4.5e-2 from the minimiser.
  PairEnergyFn<double> e = [](TD&, V x, V y) { return 0.5 * sum(square(y - x), 1); };
  Array<double> x = randn({50, 2}, 11), y0 = randn({50, 2}, 12);
  Rng rng(13);
  for (const std::size_t anneal : {std::size_t(0), std::size_t(300)}) {
    const InferenceOptions o{
        .steps = 2000, .step_size = 0.1, .tol = 1e-11, .noise = 0.3, .anneal_steps = anneal};
    auto res = minimize_energy<double>(e, x, y0, o, rng);
    const std::size_t k = anneal ? anneal : o.steps / 2;
    for (std::size_t i = 0; i < 50; ++i) {
      for (std::size_t j = 0; j < 2; ++j) CHECK(res.y(i, j) == Approx(x(i, j)).margin(1e-9));
      CHECK(res.evaluations[i] > k);                    // the annealing ran in full
      CHECK(res.evaluations[i] < o.steps);              // then the rule stopped the batch
      CHECK(res.evaluations[i] == res.evaluations[0]);  // every row paid every step of the batch
    }
  }
  // anneal_steps beyond steps is refused
  CHECK_THROWS_AS(
      minimize_energy<double>(e, x, y0, {.steps = 10, .noise = 0.1, .anneal_steps = 20}, rng),
      std::invalid_argument);
}

TEST_CASE("inference refuses to answer when no start reaches a finite energy", "[inference]") {
  // E = +inf everywhere: before, the result was +inf at y = 0
  // (the zero-filled result, which was not even a start) with no error
  PairEnergyFn<double> e = [](TD& t, V, V y) {
    return sum(y * 0.0, 1) + t.constant(Array<double>(Shape{3}, INFINITY));
  };
  Array<double> x(Shape{3, 1}, 0.0), y0(Shape{3, 1}, 1.0);
  Rng rng(14);
  CHECK_THROWS_AS(minimize_energy<double>(e, x, y0, {.steps = 5}, rng), std::domain_error);
}
