// JEM: the classifier's energies against their definitions (log p(x, y) − log p(x) = log p(y | x),
// E(x) = −logsumexp f) and the gradient check; SGLD's settings (zero noise, one step = a gradient
// step); PGD inside its ball and not lowering the loss it attacks; the trainer's divergence guard
// and bitwise resume; a short run on the digits that classifies well and whose buffer holds
// samples of lower energy than noise.
#include <cmath>

#include "datasets/images.hpp"
#include "datasets/labeled.hpp"
#include "ebm/boltzmann.hpp"
#include "ebm/jem.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {
ClassifierEbm<double> small_model(std::uint64_t seed, std::size_t d = 5, std::size_t k = 4) {
  Rng rng(seed);
  return ClassifierEbm<double>(
      std::make_shared<MLP<double>>(std::vector<std::size_t>{d, 8, k}, Activation::Tanh, rng), k);
}
}  // namespace

TEST_CASE("the classifier's energies: log p(x,y) - log p(x) = log p(y|x), E(x) = -logsumexp f",
          "[jem]") {
  ClassifierEbm<double> m = small_model(1);
  const Array<double> x = randn({6, 5}, 2);
  const std::vector<std::size_t> y = {0, 1, 2, 3, 0, 2};
  Tape<double> t;
  const Array<double> f = m.logits(t, t.input(x)).value();
  const Array<double> e = m.energy(t, t.input(x)).value();
  const Array<double> exy = m.energy_xy(t, t.input(x), y).value();
  const Array<double> p = class_probabilities(m, x);
  for (std::size_t i = 0; i < 6; ++i) {
    double lse = 0;
    for (std::size_t k = 0; k < 4; ++k) lse += std::exp(f(i, k));
    lse = std::log(lse);
    CHECK(e(i) == Approx(-lse).epsilon(1e-14));
    // log p(x, y) − log p(x) = (−E(x, y) − log Z) − (−E(x) − log Z) = log p(y | x)
    CHECK(-exy(i) + e(i) == Approx(std::log(p(i, y[i]))).epsilon(1e-12));
    double row = 0;
    for (std::size_t k = 0; k < 4; ++k) row += p(i, k);
    CHECK(row == Approx(1.0).epsilon(1e-14));
    const Array<double> ey = m.energy_given(t, t.input(x), y[i]).value();
    CHECK(ey(i) == exy(i));
    ClassEnergy<double> ce(m, y[i]);
    MarginalEnergy<double> me(m);
    CHECK(ce(t, t.input(x)).value()(i) == exy(i));
    CHECK(me(t, t.input(x)).value()(i) == e(i));
  }
  expect_gradients([&m](TD& tp, In v) { return sum(m.energy(tp, v[0])); }, {x}, m.parameters());
  expect_gradients([&m](TD& tp, In v) { return sum(m.energy_given(tp, v[0], 2)); }, {x},
                   m.parameters());
  CHECK_THROWS_WITH(ClassifierEbm<double>(
                        std::make_shared<MLP<double>>(std::vector<std::size_t>{5, 3},
                                                      Activation::Tanh, *std::make_unique<Rng>(1)),
                        4)
                        .logits(t, t.input(x)),
                    Catch::Contains("gives [6,3] for 4 classes"));
}

TEST_CASE("SGLD with zero noise and one step is a gradient step", "[jem]") {
  ClassifierEbm<double> m = small_model(3);
  const Array<double> x0 = randn({4, 5}, 4);
  Array<double> x = x0;
  Rng rng(5);
  Langevin<double>([&m](TD& t, V v) { return m.energy(t, v); },
                   {.steps = 1, .step_size = 0.7, .temperature = 0.0})
      .run(x, rng);
  Tape<double> t;
  V xv = t.input(x0, true);
  t.backward(sum(m.energy(t, xv)), {xv});
  for (std::size_t k = 0; k < x.size(); ++k)
    CHECK(x.data()[k] == Approx(x0.data()[k] - 0.7 * t.grad(xv).data()[k]).epsilon(1e-14));
}

TEST_CASE("PGD stays in its ball and in range, and does not lower the loss it attacks", "[jem]") {
  ClassifierEbm<double> m = small_model(6);
  const Array<double> x = uniform({30, 5}, 7, -0.9, 0.9);
  std::vector<std::size_t> y(30);
  for (std::size_t i = 0; i < 30; ++i) y[i] = i % 4;
  auto ce = [&](const Array<double>& a) {
    Tape<double> t;
    return -double(sum(gather(log_softmax(m.logits(t, t.constant(a)), 1), std::span(y))).item());
  };
  for (PgdNorm norm : {PgdNorm::Linf, PgdNorm::L2})
    for (bool start : {false, true}) {
      INFO("norm " << int(norm) << ", random start " << start);
      Rng rng(8);
      const double eps = norm == PgdNorm::Linf ? 0.1 : 0.5;
      const Array<double> adv =
          pgd_attack(m, x, y, {.norm = norm, .eps = eps, .steps = 20, .random_start = start}, rng);
      for (std::size_t i = 0; i < 30; ++i) {
        double linf = 0, l2 = 0;
        for (std::size_t k = 0; k < 5; ++k) {
          const double dlt = adv(i, k) - x(i, k);
          linf = std::max(linf, std::abs(dlt));
          l2 += dlt * dlt;
          CHECK(adv(i, k) >= -1.0);
          CHECK(adv(i, k) <= 1.0);
        }
        CHECK((norm == PgdNorm::Linf ? linf : std::sqrt(l2)) <= eps + 1e-12);
      }
      CHECK(ce(adv) > ce(x));
    }
}

TEST_CASE("the JEM trainer's guard changes nothing, and a resumed run continues bit for bit",
          "[jem]") {
  auto run = [](int steps, const Checkpoint* from, double bound) {
    ClassifierEbm<double> m = small_model(9);
    JemTrainer<double> tr(m,
                          {.warmup_steps = 5,
                           .sgld_steps = 3,
                           .buffer_size = 64,
                           .per_class_buffer = true,
                           .loss_bound = bound},
                          10, 5);
    if (from) tr.restore(*from);
    const Array<double> x = uniform({8, 5}, 11, -1, 1);
    const std::vector<std::size_t> y = {0, 1, 2, 3, 0, 1, 2, 3};
    for (int s = 0; s < steps; ++s) tr.step(x, y);
    return tr.checkpoint();
  };
  const Checkpoint straight = run(10, nullptr, 1e8), half = run(5, nullptr, 1e8);
  const Checkpoint resumed = run(5, &half, 1e8);
  for (const auto& [name, a] : straight.arrays) {
    INFO(name);
    CHECK(same(a, resumed.arrays.at(name)));
  }
  CHECK(straight.integers == resumed.integers);
  // the guard: a bound every loss exceeds stops the step before anything changes
  ClassifierEbm<double> m = small_model(9);
  JemTrainer<double> tr(m, {.sgld_steps = 2, .buffer_size = 16, .loss_bound = 1e-12}, 12, 5);
  const Checkpoint before = tr.checkpoint();
  const Array<double> x = uniform({4, 5}, 13, -1, 1);
  CHECK_THROWS_WITH(tr.step(x, std::vector<std::size_t>{0, 1, 2, 3}),
                    Catch::Contains("JEM diverged at step 1"));
  const Checkpoint after = tr.checkpoint();
  for (const auto& [name, a] : before.arrays) {
    INFO(name);
    CHECK(same(a, after.arrays.at(name)));
  }
  CHECK_THROWS_WITH(tr.step(x, std::vector<std::size_t>{0, 1, 2, 9}),
                    Catch::Contains("label 9 of 4 classes"));
}

TEST_CASE("a short JEM run on the digits classifies well and its buffer has low energy", "[jem]") {
  LabeledData all = load_digits_csv(default_digits_path());
  auto [train, test] = split(all, 400, 0);
  // JEM's range: pixels to [−1, 1]
  Array<float> xtr = train.x * 2.0f - 1.0f, xte = test.x * 2.0f - 1.0f;
  Rng rng(14);
  ClassifierEbm<float> m(
      std::make_shared<MLP<float>>(std::vector<std::size_t>{64, 128, 10}, Activation::Relu, rng),
      10);
  JemTrainer<float> tr(m, {.lr = 1e-3, .warmup_steps = 50, .buffer_size = 1000}, 15, 64);
  Array<float> batch(Shape{64, 64});
  std::vector<std::size_t> y(64);
  for (int s = 0; s < 400; ++s) {
    for (std::size_t i = 0; i < 64; ++i) {
      const std::size_t r = tr.rng().below(train.size());
      std::copy_n(&xtr(r, 0), 64, &batch(i, 0));
      y[i] = train.y[r];
    }
    tr.step(batch, y);
  }
  const Array<double> p = class_probabilities(m, xte);
  double acc = 0;
  for (std::size_t i = 0; i < test.size(); ++i) {
    const double* row = &p(i, 0);
    acc += std::size_t(std::max_element(row, row + 10) - row) == test.y[i]
               ? 1.0 / double(test.size())
               : 0.0;
  }
  INFO("test accuracy " << acc);
  CHECK(acc > 0.85);  // chance is 0.1
  MarginalEnergy<float> e(m);
  Rng nrng(16);
  const Array<float> noise = nrng.uniform_array<float>({1000, 64}, -1, 1);
  const double e_buffer = mean_energy(e, tr.buffer().chains()), e_noise = mean_energy(e, noise);
  INFO("mean E: buffer " << e_buffer << ", noise " << e_noise);
  CHECK(e_buffer < e_noise);
}
