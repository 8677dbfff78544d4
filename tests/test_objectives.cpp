// The MCMC-free training losses and improved CD's KL term (ebm/objectives.hpp) against closed
// forms: score matching's minimiser for Gaussian data is the inverse sample covariance, denoising
// score matching's the inverse of (covariance + σ²I) in expectation, sliced score matching's
// expectation is exact score matching, energy discrepancy's gradient is its population gradient
// (computable for a Gaussian model), and the KL term's gradient is the derivative through the
// last Langevin step with the evaluating parameters held fixed.
#include <cmath>

#include <xtensor-blas/xlinalg.hpp>

#include "ebm/cd.hpp"
#include "ebm/objectives.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {

// Correlated 2-D Gaussian data, its mean and covariance (1/n).
struct GaussianData {
  Array<double> x, mean, cov;
};
GaussianData gaussian_data(std::size_t n, std::uint64_t seed) {
  const Array<double> L = {{1.0, 0.0}, {0.6, 0.5}};
  Array<double> z = randn({n, 2}, seed);
  GaussianData g;
  g.x = xt::linalg::dot(z, xt::transpose(L));
  for (std::size_t i = 0; i < n; ++i) g.x(i, 0) += 0.3, g.x(i, 1) -= 0.2;
  g.mean = xt::mean(g.x, {0});
  Array<double> c = g.x - g.mean;
  g.cov = xt::linalg::dot(xt::transpose(c), c) / double(n);
  return g;
}
// A with AᵀA = P (the symmetric square root)
Array<double> sqrt_sym(const Array<double>& p) {
  auto [w, v] = xt::linalg::eigh(p);
  Array<double> d = xt::diag(xt::sqrt(w));
  return xt::linalg::dot(xt::linalg::dot(v, d), xt::transpose(v));
}
double max_abs(const std::vector<Array<double>>& gs) {
  double m = 0;
  for (const auto& g : gs)
    for (double v : g) m = std::max(m, std::abs(v));
  return m;
}

// E(x) = ½ p x², one parameter: the model of the energy discrepancy test
struct Quadratic1d : Energy<double> {
  Parameter<double> p{"p", Array<double>{2.0}};
  Var<double> operator()(Tape<double>& t, Var<double> x) override {
    return affine(sum(mul(square(x), t.param(p)), 1, false), 0.5, 0.0);
  }
  std::vector<Parameter<double>*> parameters() override { return {&p}; }
};

}  // namespace

TEST_CASE("score matching's minimiser for Gaussian data is the inverse sample covariance",
          "[objectives]") {
  const GaussianData g = gaussian_data(400, 1);
  const Array<double> prec = xt::linalg::inv(g.cov);
  GaussianEnergy<double> at_min(g.mean, sqrt_sym(prec));
  auto grads = [&](GaussianEnergy<double>& e) {
    Tape<double> t;
    auto params = e.parameters();
    return param_gradients<double>(score_matching_loss<double>(e, t, g.x), params);
  };
  CHECK(max_abs(grads(at_min)) < 1e-10);
  GaussianEnergy<double> elsewhere(g.mean, Array<double>{{1.0, 0.0}, {0.0, 1.0}});
  CHECK(max_abs(grads(elsewhere)) > 0.1);  // (the check has power)
}

TEST_CASE("denoising score matching's minimiser is the inverse of covariance + σ²I",
          "[objectives][statistical]") {
  const double sigma = 0.5;
  const GaussianData g = gaussian_data(400, 2);
  const Array<double> smoothed = xt::linalg::inv(g.cov + sigma * sigma * xt::eye<double>(2));
  const Array<double> unsmoothed = xt::linalg::inv(g.cov);
  // the gradient's mean over noise draws, with its standard error, at a given precision
  auto mean_gradient = [&](const Array<double>& p, std::vector<double>& se) {
    GaussianEnergy<double> e(g.mean, sqrt_sym(p));
    auto params = e.parameters();
    Rng rng(3);
    const int reps = 300;
    std::vector<double> s1(6, 0), s2(6, 0);
    for (int r = 0; r < reps; ++r) {
      Tape<double> t;
      auto gr = param_gradients<double>(
          denoising_score_matching_loss<double>(e, t, g.x, {sigma}, rng), params);
      std::size_t k = 0;
      for (const auto& a : gr)
        for (double v : a) s1[k] += v / reps, s2[k] += v * v / reps, ++k;
    }
    se.assign(6, 0);
    for (std::size_t k = 0; k < 6; ++k) se[k] = std::sqrt((s2[k] - s1[k] * s1[k]) / (reps - 1));
    return s1;
  };
  std::vector<double> se;
  const auto at_min = mean_gradient(smoothed, se);
  for (std::size_t k = 0; k < 6; ++k) {
    INFO("element " << k << " mean " << at_min[k] << " se " << se[k]);
    CHECK(std::abs(at_min[k]) < 5 * se[k]);
  }
  // at the unsmoothed precision (score matching's answer) the mean gradient is far from zero
  const auto off = mean_gradient(unsmoothed, se);
  double worst = 0;
  for (std::size_t k = 0; k < 6; ++k) worst = std::max(worst, std::abs(off[k]) / se[k]);
  CHECK(worst > 10);
}

TEST_CASE("sliced score matching's expectation is exact score matching",
          "[objectives][statistical]") {
  Rng init(4);
  MlpEnergy<double> e(2, {16}, Activation::Tanh, init);
  const Array<double> x = randn({6, 2}, 5);
  Tape<double> t0;
  const double exact = score_matching_loss<double>(e, t0, x).item();
  for (Projection kind : {Projection::Rademacher, Projection::Gaussian})
    for (bool vr : {false, true}) {
      Rng rng(6);
      const int reps = 3000;
      double s1 = 0, s2 = 0;
      for (int r = 0; r < reps; ++r) {
        Tape<double> t;
        const double v = sliced_score_matching_loss<double>(e, t, x, 1, kind, rng, vr).item();
        s1 += v / reps;
        s2 += v * v / reps;
      }
      const double se = std::sqrt((s2 - s1 * s1) / (reps - 1));
      INFO("kind " << int(kind) << " vr " << vr << ": " << s1 << " ± " << se << ", exact "
                   << exact);
      CHECK(std::abs(s1 - exact) < 5 * se);
      CHECK(se > 0);
    }
}

TEST_CASE("energy discrepancy's gradient is its population gradient (Gaussian model)",
          "[objectives][statistical]") {
  // data x ~ N(0, s²), E = ½ p x², perturbations of variance t, no stabiliser: as M → ∞ the loss
  // tends to L(p) = ½ p s² − ½ log(1 + p t) − ½ p (s² + t) / (1 + p t), so
  // dL/dp = ½ s² − ½ t / (1 + p t) − ½ (s² + t) / (1 + p t)², zero at p = 1/s².
  const double s2 = 1.0, tv = 0.5, p = 2.0;
  const double exact =
      0.5 * s2 - 0.5 * tv / (1 + p * tv) - 0.5 * (s2 + tv) / std::pow(1 + p * tv, 2);
  Quadratic1d e;
  e.p.value(0) = p;
  auto params = e.parameters();
  Rng rng(7);
  const int reps = 40;
  double m1 = 0, m2 = 0;
  for (int r = 0; r < reps; ++r) {
    const Array<double> x = rng.normal_array<double>({500, 1}, 0, std::sqrt(s2));
    Tape<double> t;
    const double gp = param_gradients<double>(
        energy_discrepancy_loss<double>(e, t, x, {.t = tv, .m = 400, .w = 0}, rng), params)[0](0);
    m1 += gp / reps;
    m2 += gp * gp / reps;
  }
  const double se = std::sqrt((m2 - m1 * m1) / (reps - 1));
  INFO("ED gradient " << m1 << " ± " << se << ", population gradient " << exact);
  CHECK(std::abs(m1 - exact) < 5 * se);
  CHECK(std::abs(exact) > 10 * se);  // (p = 2 is far enough from the minimiser to tell)
}

TEST_CASE("improved CD's KL term: the gradient through the last Langevin step",
          "[objectives][cd]") {
  // f(θ) = mean E_θ̄(x_K(θ)) with θ̄ = θ₀ fixed: the analytic gradient at θ₀ against central
  // differences that move θ in the step only (a second copy of the model evaluates E_θ̄)
  auto model = [] {
    Rng r(8);
    return MlpEnergy<double>(2, {8}, Activation::Tanh, r);
  };
  MlpEnergy<double> stepper = model(), judge = model();
  const Array<double> x_prev = randn({5, 2}, 9), noise = 0.1 * randn({5, 2}, 10);
  const double eps = 0.05;
  auto params = stepper.parameters();
  Tape<double> t;
  Array<double> x_last;
  Var<double> kl = cd_kl_term<double>(stepper, t, x_prev, noise, eps, x_last);
  const auto analytic = param_gradients<double>(kl, params);
  auto f = [&]() {  // x_K by a first-order ∇x pass with the stepper, E by the judge
    Tape<double> s;
    Var<double> x = s.input(x_prev, true);
    s.backward(sum(stepper(s, x)), {x});
    const Array<double> xk = x_prev - eps * s.grad(x) + noise;
    Tape<double> u;
    return mean(judge(u, u.constant(xk))).item();
  };
  double worst = 0;
  for (std::size_t k = 0; k < params.size(); ++k)
    for (std::size_t e = 0; e < params[k]->value.size(); ++e) {
      double& v = params[k]->value.data()[e];
      const double v0 = v, h = 1e-6;
      v = v0 + h;
      const double fp = f();
      v = v0 - h;
      const double fm = f();
      v = v0;
      const double num = (fp - fm) / (2 * h), ana = analytic[k].data()[e];
      worst = std::max(worst, std::abs(ana - num) / (1e-7 + 1e-5 * std::abs(num)));
    }
  CHECK(worst < 1);
  CHECK(max_abs(analytic) > 1e-4);
  // the frozen evaluation gives no gradient of its own: with ε = 0 the step ignores θ
  Tape<double> t2;
  const auto none =
      param_gradients<double>(cd_kl_term<double>(stepper, t2, x_prev, noise, 0.0, x_last), params);
  CHECK(max_abs(none) == 0.0);
}

TEST_CASE("CD with the KL term trains, guards and resumes bit for bit", "[objectives][cd]") {
  auto run = [](int steps, const Checkpoint* from) {
    Rng r(11);
    MlpEnergy<double> e(2, {16}, Activation::Silu, r);
    Adam<double> opt(e.parameters(), {.lr = 1e-3});
    CdOptions o;
    o.langevin = {.steps = 5, .step_size = 0.01};
    o.buffer_size = 64;
    o.kl_weight = 1.0;
    ContrastiveDivergence<double> cd(e, opt, o, 12, 2);
    if (from) cd.restore(*from);
    const Array<double> x = randn({16, 2}, 13);
    for (int s = 0; s < steps; ++s) cd.step(x);
    return cd.checkpoint();
  };
  const Checkpoint straight = run(10, nullptr), half = run(5, nullptr);
  const Checkpoint resumed = run(5, &half);
  for (const auto& [name, a] : straight.arrays) {
    INFO(name);
    CHECK(same(a, resumed.arrays.at(name)));
  }
  // the KL term changes the step: its parameters differ from plain CD's after one step
  Rng r(11);
  MlpEnergy<double> e(2, {16}, Activation::Silu, r);
  Adam<double> opt(e.parameters(), {.lr = 1e-3});
  CdOptions o;
  o.langevin = {.steps = 5, .step_size = 0.01};
  o.kl_weight = 1.0;
  o.sampler = DreamSampler::Mala;
  CHECK_THROWS_AS(ContrastiveDivergence<double>(e, opt, o, 12, 2), std::invalid_argument);
}

TEST_CASE("the objective trainer descends each loss and guards", "[objectives]") {
  for (ObjectiveKind kind : {ObjectiveKind::ScoreMatching, ObjectiveKind::Denoising,
                             ObjectiveKind::Sliced, ObjectiveKind::EnergyDiscrepancy}) {
    INFO("objective " << int(kind));
    const GaussianData g = gaussian_data(256, 14);
    GaussianEnergy<double> e(Array<double>{0.0, 0.0}, Array<double>{{0.5, 0.0}, {0.0, 0.5}});
    Adam<double> opt(e.parameters(), {.lr = 0.02});
    ObjectiveTrainer<double> tr(e, opt, {.kind = kind, .dsm_sigmas = {0.05}}, 15);
    for (int s = 0; s < 400; ++s) tr.step(g.x);
    // the learned mean is the data's, within a few hundredths
    CHECK(std::abs(e.parameters()[0]->value(0) - g.mean(0)) < 0.05);
    CHECK(std::abs(e.parameters()[0]->value(1) - g.mean(1)) < 0.05);
    CHECK(tr.steps_done() == 400);
  }
  GaussianEnergy<double> e(Array<double>{0.0, 0.0}, Array<double>{{1.0, 0.0}, {0.0, 1.0}});
  Adam<double> opt(e.parameters(), {.lr = 0.02});
  ObjectiveTrainer<double> tr(e, opt, {.loss_bound = 1e-9}, 16);
  const Array<double> before = e.parameters()[1]->value;
  CHECK_THROWS_AS(tr.step(randn({8, 2}, 17)), DivergenceError);
  CHECK(same(before, e.parameters()[1]->value));
}

TEST_CASE("the objective trainer resumes bit for bit", "[objectives]") {
  auto run = [](int steps, const Checkpoint* from) {
    Rng r(18);
    MlpEnergy<double> e(2, {8}, Activation::Silu, r);
    Adam<double> opt(e.parameters(), {.lr = 1e-3});
    ObjectiveTrainer<double> tr(e, opt, {.kind = ObjectiveKind::Sliced}, 19);
    if (from) tr.restore(*from);
    const Array<double> x = randn({16, 2}, 20);
    for (int s = 0; s < steps; ++s) tr.step(x);
    return tr.checkpoint();
  };
  const Checkpoint straight = run(8, nullptr), half = run(4, nullptr), resumed = run(4, &half);
  for (const auto& [name, a] : straight.arrays) {
    INFO(name);
    CHECK(same(a, resumed.arrays.at(name)));
  }
  CHECK(straight.integers == resumed.integers);
}

TEST_CASE("NCE learns a Gaussian's mean and precision, and its c learns log Z", "[objectives]") {
  // Gaussian model on 2-D Gaussian data, noise N(data mean, (1.5 data sd)²), ν = 4; full batch
  const GaussianData g = gaussian_data(4000, 21);
  ObjectiveOptions o{.kind = ObjectiveKind::Nce};
  o.nce_ratio = 4;
  o.nce_mean = {g.mean(0), g.mean(1)};
  o.nce_std = {1.5 * std::sqrt(g.cov(0, 0)), 1.5 * std::sqrt(g.cov(1, 1))};
  o.nce_lr = 0.02;
  GaussianEnergy<double> e(Array<double>{0.0, 0.0}, Array<double>{{0.5, 0.0}, {0.0, 0.5}});
  Adam<double> opt(e.parameters(), {.lr = 0.02});
  ObjectiveTrainer<double> tr(e, opt, o, 22);
  for (int s = 0; s < 1500; ++s) tr.step(g.x);
  const Array<double> a = e.a().value;
  const Array<double> prec = xt::linalg::dot(xt::transpose(a), a), want = xt::linalg::inv(g.cov);
  INFO("precision " << prec(0, 0) << " " << prec(0, 1) << " " << prec(1, 1) << " against "
                    << want(0, 0) << " " << want(0, 1) << " " << want(1, 1) << "; c "
                    << tr.nce_log_z() << " against log Z " << e.log_z());
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(std::abs(e.mu().value(i) - g.mean(i)) < 0.05);
    for (std::size_t j = 0; j < 2; ++j)
      CHECK(std::abs(prec(i, j) - want(i, j)) < 0.1);  // (measured: 0.02)
  }
  CHECK(std::abs(tr.nce_log_z() - e.log_z()) <
        0.02);  // c is the model's own log Z (measured: 0.002)
  // a checkpoint carries c and its optimizer: a resumed run continues bit for bit
  auto run = [&](int steps, const Checkpoint* from) {
    GaussianEnergy<double> e2(Array<double>{0.0, 0.0}, Array<double>{{0.5, 0.0}, {0.0, 0.5}});
    Adam<double> opt2(e2.parameters(), {.lr = 0.02});
    ObjectiveTrainer<double> t2(e2, opt2, o, 23);
    if (from) t2.restore(*from);
    for (int s = 0; s < steps; ++s) t2.step(g.x);
    return t2.checkpoint();
  };
  const Checkpoint straight = run(8, nullptr), half = run(4, nullptr), resumed = run(4, &half);
  for (const auto& [name, arr] : straight.arrays) {
    INFO(name);
    CHECK(same(arr, resumed.arrays.at(name)));
  }
  CHECK(straight.arrays.count("param/nce_log_z") == 1);
  ObjectiveOptions bad{.kind = ObjectiveKind::Nce};
  CHECK_THROWS_AS(ObjectiveTrainer<double>(e, opt, bad, 1), std::invalid_argument);
}
