// Samplers against Gaussians whose answers are known. Many independent chains (one per row) run
// past burn-in; their final states are independent draws, so sample moments have standard errors
// from the target's own moments, and every tolerance here is five of them (fixed seeds).
//
// Unadjusted Langevin on E = ½ xᵀPx (target N(0, T P⁻¹)) is itself a linear Gaussian recursion
//     x' = (I - εP) x + √(2εT) ξ,
// whose stationary covariance is exactly Σ_ULA = T (P - εP²/2)⁻¹: that is what ULA is tested
// against, and it shows the discretisation bias that MALA and HMC remove.
#include <cmath>

#include "ebm/energy.hpp"
#include "samplers/hmc.hpp"
#include "samplers/langevin.hpp"
#include "samplers/mala.hpp"
#include "samplers/replay_buffer.hpp"
#include "tests/helpers.hpp"
#include "tests/sampler_checks.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {

EnergyFn<double> energy_of(GaussianEnergy<double>& g) {
  return [&g](TD& t, V x) { return g(t, x); };
}

// 1-D: N(1, σ² = 4), E = ½ (0.5 (x - 1))²
GaussianEnergy<double> gauss_1d() {
  return GaussianEnergy<double>(Array<double>(Shape{1}, 1.0), Array<double>(Shape{1, 1}, 0.5));
}
// 2-D correlated: A = [[1, 0.8], [0, 0.6]], P = AᵀA = [[1, 0.8], [0.8, 1]], Σ = P⁻¹
GaussianEnergy<double> gauss_2d() {
  Array<double> mu = {0.5, -1.0};
  Array<double> a = {{1.0, 0.8}, {0.0, 0.6}};
  return GaussianEnergy<double>(mu, a);
}
constexpr double kP[2][2] = {{1.0, 0.8}, {0.8, 1.0}};
void inverse_2x2(const double (*m)[2], double (*out)[2], double scale) {
  double det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
  out[0][0] = scale * m[1][1] / det;
  out[1][1] = scale * m[0][0] / det;
  out[0][1] = out[1][0] = -scale * m[0][1] / det;
}

Array<double> start(std::size_t n, std::size_t d, std::uint64_t seed) {
  return randn({n, d}, seed);
}

}  // namespace

TEST_CASE("Langevin at T = 1 and small step: 1-D Gaussian", "[samplers]") {
  auto g = gauss_1d();
  const double eps = 0.05, var = 4.0 / (1 - eps / (2 * 4.0));  // Tσ²/(1 - ε/2σ²), 0.6% above σ²
  Langevin<double> ula(energy_of(g), {.steps = 1500, .step_size = eps, .temperature = 1.0});
  Array<double> x = start(10000, 1, 1);
  Rng rng(2);
  ChainStats s = ula.run(x, rng);
  const double mu[2] = {1.0, 0}, sigma[2][2] = {{var, 0}, {0, 0}};
  expect_moments(x, mu, sigma);
  CHECK(s.mean_energy.size() == 1500);
  CHECK(s.acceptance == 1.0);
  // at stationarity E[E(x)] = 0.125 E[(x - 1)²] = 0.125 var
  CHECK(s.mean_energy.back() == Approx(0.125 * var).epsilon(0.05));
}

TEST_CASE("the seed's update (T = 1/2) samples variance sigma^2 / 2", "[samplers]") {
  auto g = gauss_1d();
  const double eps = 0.02;
  Langevin<double> ula(energy_of(g), {.steps = 3000, .step_size = eps, .temperature = 0.5});
  Array<double> x = start(10000, 1, 3);
  Rng rng(4);
  ula.run(x, rng);
  const double var = 0.5 * 4.0 / (1 - eps / 8.0);  // σ²/2, up to a 0.25% discretisation term
  const double mu[2] = {1.0, 0}, sigma[2][2] = {{var, 0}, {0, 0}};
  expect_moments(x, mu, sigma);
  CHECK(std::abs(moments(x).cov[0][0] - 2.0) < 5 * 2.0 * std::sqrt(2.0 / 10000) + (var - 2.0));
}

TEST_CASE("at a large step Langevin is visibly biased and MALA is not", "[samplers]") {
  auto g = gauss_1d();
  const double eps = 3.2;  // ε/σ² = 0.8: ULA's stationary variance is σ²/(1 - 0.4) = 6.67
  Rng rng(5);
  Array<double> xu = start(10000, 1, 6), xm = start(10000, 1, 7);
  Langevin<double>(energy_of(g), {.steps = 200, .step_size = eps}).run(xu, rng);
  ChainStats sm = Mala<double>(energy_of(g), {.steps = 400, .step_size = eps}).run(xm, rng);
  const double mu[2] = {1.0, 0};
  const double ula_sigma[2][2] = {{4.0 / (1 - eps / 8.0), 0}, {0, 0}},
               true_sigma[2][2] = {{4.0, 0}, {0, 0}};
  expect_moments(xu, mu, ula_sigma);
  expect_moments(xm, mu, true_sigma);
  CHECK(moments(xu).cov[0][0] > 4.0 * (1 + 5 * std::sqrt(2.0 / 10000)));  // the bias is detectable
  CHECK(sm.acceptance < 0.95);  // MALA rejects to stay exact
  CHECK(sm.acceptance > 0.2);
}

TEST_CASE("Langevin on a correlated 2-D Gaussian matches T (P - eps P^2 / 2)^-1", "[samplers]") {
  auto g = gauss_2d();
  const double eps = 0.05, temp = 1.0;
  double m[2][2];
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) {
      double p2 = kP[a][0] * kP[0][b] + kP[a][1] * kP[1][b];
      m[a][b] = kP[a][b] - 0.5 * eps * p2;
    }
  double sigma[2][2];
  inverse_2x2(m, sigma, temp);
  Array<double> x = start(8000, 2, 8);
  Rng rng(9);
  Langevin<double>(energy_of(g), {.steps = 2000, .step_size = eps, .temperature = temp})
      .run(x, rng);
  const double mu[2] = {0.5, -1.0};
  expect_moments(x, mu, sigma);
}

TEST_CASE("Langevin on 2 and 3 threads samples the same correlated 2-D Gaussian", "[samplers]") {
  // the rows split into blocks (8001 rows: uneven blocks), each on its own thread and generator
  auto g = gauss_2d();
  const double eps = 0.05;
  double m[2][2], sigma[2][2];
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b)
      m[a][b] = kP[a][b] - 0.5 * eps * (kP[a][0] * kP[0][b] + kP[a][1] * kP[1][b]);
  inverse_2x2(m, sigma, 1.0);
  const double mu[2] = {0.5, -1.0};
  for (int threads : {2, 3}) {
    INFO(threads << " threads");
    Array<double> x = start(8001, 2, 8);
    Rng rng(19);
    ChainStats s =
        Langevin<double>(energy_of(g), {.steps = 2000, .step_size = eps, .threads = threads})
            .run(x, rng);
    expect_moments(x, mu, sigma);
    CHECK(s.mean_energy.size() == 2000);
    CHECK(s.mean_grad_norm.size() == 2000);
  }
}

TEST_CASE("threaded chains at zero temperature follow the serial chains and repeat exactly",
          "[samplers]") {
  // T = 0 makes the chain gradient descent: the blocks must reproduce the serial run row for row
  // (up to BLAS rounding), their merged statistics the serial ones; same seed, same result.
  Rng init(21);
  MlpEnergy<double> energy(3, {16, 16}, Activation::Silu, init);
  EnergyFn<double> f = [&energy](TD& t, V x) { return energy(t, x); };
  const Array<double> x0 = start(37, 3, 22);
  Array<double> serial = x0;
  Rng r0(23);
  ChainStats ss =
      Langevin<double>(f, {.steps = 15, .step_size = 0.05, .temperature = 0}).run(serial, r0);
  for (int threads : {2, 3, 5}) {
    INFO(threads << " threads");
    Langevin<double> par(f, {.steps = 15, .step_size = 0.05, .temperature = 0, .threads = threads});
    Array<double> x = x0;
    Rng r1(23);
    ChainStats ps = par.run(x, r1);
    for (std::size_t e = 0; e < x.size(); ++e)
      CHECK(x.data()[e] == Approx(serial.data()[e]).margin(1e-12));
    for (std::size_t t = 0; t < 15; ++t) {
      CHECK(ps.mean_energy[t] == Approx(ss.mean_energy[t]).epsilon(1e-12));
      CHECK(ps.mean_grad_norm[t] == Approx(ss.mean_grad_norm[t]).epsilon(1e-12));
    }
  }
  // with noise: two runs from the same seed are bit-identical, whatever the scheduling
  Langevin<double> a(f, {.steps = 10, .step_size = 0.05, .threads = 2}),
      b = Langevin<double>(f, {.steps = 10, .step_size = 0.05, .threads = 2});
  Array<double> xa = x0, xb = x0;
  Rng ra(24), rb(24);
  a.run(xa, ra);
  b.run(xb, rb);
  CHECK(same(xa, xb));
}

TEST_CASE("an energy that throws on a worker thread fails the run, and the sampler recovers",
          "[samplers]") {
  auto g = gauss_1d();
  bool fail = true;
  EnergyFn<double> f = [&](TD& t, V x) {
    if (fail && x.shape()[0] < 50) throw std::runtime_error("energy failed on a small block");
    return g(t, x);
  };
  Langevin<double> ula(f, {.steps = 3, .step_size = 0.1, .threads = 3});
  Array<double> x = start(120, 1, 25);
  Rng rng(26);
  CHECK_THROWS_WITH(ula.run(x, rng), "energy failed on a small block");
  fail = false;
  ChainStats s = ula.run(x, rng);
  CHECK(s.mean_energy.size() == 3);
  CHECK_THROWS_AS(Langevin<double>(f, {.threads = 0}), std::invalid_argument);
}

TEST_CASE("MALA and HMC sample a correlated 2-D Gaussian exactly", "[samplers]") {
  auto g = gauss_2d();
  for (double temp : {1.0, 0.3}) {
    INFO("T = " << temp);
    double sigma[2][2];
    inverse_2x2(kP, sigma, temp);
    const double mu[2] = {0.5, -1.0};
    Rng rng(10);
    Array<double> xm = start(8000, 2, 11), xh = start(8000, 2, 12);
    ChainStats sm =
        Mala<double>(energy_of(g), {.steps = 600, .step_size = 0.3 * temp, .temperature = temp})
            .run(xm, rng);
    ChainStats sh =
        Hmc<double>(energy_of(g),
                    {.steps = 60, .leapfrog_steps = 8, .step_size = 0.35, .temperature = temp})
            .run(xh, rng);
    {
      INFO("MALA, acceptance " << sm.acceptance);
      expect_moments(xm, mu, sigma);
    }
    {
      INFO("HMC, acceptance " << sh.acceptance);
      expect_moments(xh, mu, sigma);
    }
    CHECK(sm.acceptance > 0.3);
    CHECK(sh.acceptance > 0.3);
    CHECK(sh.proposals == 60 * 8000);
  }
}

TEST_CASE("Langevin options: clamping, gradient clipping, step schedules", "[samplers]") {
  auto g = gauss_1d();
  Rng rng(13);
  Array<double> x = start(500, 1, 14) * 3.0;
  Langevin<double>(energy_of(g),
                   {.steps = 50, .step_size = 0.5, .clamp = true, .lo = -0.5, .hi = 0.25})
      .run(x, rng);
  CHECK(xt::amin(x)() >= -0.5);
  CHECK(xt::amax(x)() <= 0.25);
  // with T = 0 a clipped step moves each coordinate by at most ε c
  Array<double> far(Shape{4, 1}, 100.0), before = far;
  Langevin<double>(energy_of(g),
                   {.steps = 1, .step_size = 0.1, .temperature = 0, .grad_clip = 0.01})
      .run(far, rng);
  for (std::size_t i = 0; i < 4; ++i) CHECK(before(i, 0) - far(i, 0) == Approx(0.1 * 0.01));
  LangevinOptions lin{
      .steps = 5, .step_size = 1.0, .schedule = StepSchedule::Linear, .final_step_size = 0.2};
  CHECK(lin.step_at(0) == 1.0);
  CHECK(lin.step_at(4) == Approx(0.2));
  CHECK(lin.step_at(2) == Approx(0.6));
  LangevinOptions geo{
      .steps = 3, .step_size = 1.0, .schedule = StepSchedule::Geometric, .final_step_size = 0.01};
  CHECK(geo.step_at(1) == Approx(0.1));
}

TEST_CASE("the replay buffer restarts chains at the configured rate and keeps the rest",
          "[samplers]") {
  Rng rng(15);
  const double rho = 0.05;
  ReplayBuffer<double> buf(100, 2, -1, 1, rho, rng);
  CHECK(xt::amin(buf.chains())() >= -1.0);
  CHECK(xt::amax(buf.chains())() < 1.0);
  Array<double> x;
  for (int k = 0; k < 400; ++k) {
    buf.sample(64, rng, x);
    x += 10.0;  // move the chains far outside the noise box
    buf.update(x);
  }
  const double n = double(buf.draws());
  CHECK(n == 400 * 64);
  CHECK(std::abs(double(buf.restarts()) / n - rho) < 5 * std::sqrt(rho * (1 - rho) / n));
  // every slot was drawn at least once, so every chain has been advanced and written back
  CHECK(xt::amin(buf.chains())() > 5.0);
  ReplayBuffer<double> never(10, 1, 0, 1, 0.0, rng), always(10, 1, 0, 1, 1.0, rng);
  for (int k = 0; k < 20; ++k) {
    never.sample(5, rng, x);
    always.sample(5, rng, x);
  }
  CHECK(never.restarts() == 0);
  CHECK(always.restarts() == 100);
}

TEST_CASE("Langevin keeps every chain's energy trace, on one thread or several", "[samplers]") {
  auto g = gauss_2d();
  for (int threads : {1, 2}) {
    Array<double> x = start(7, 2, 31);
    Array<double> e0 = Array<double>::from_shape({7});
    {
      Tape<double> t;
      e0 = g(t, t.input(x)).value();
    }
    Rng rng(32);
    ChainStats st =
        Langevin<double>(
            energy_of(g),
            {.steps = 12, .step_size = 0.05, .threads = threads, .trace_energies = true})
            .run(x, rng);
    INFO("threads " << threads);
    REQUIRE(st.energy_traces.size() == 7);
    for (std::size_t i = 0; i < 7; ++i) {
      CHECK(st.energy_traces[i].size() == 12);
      CHECK(st.energy_traces[i][0] == e0(i));  // the state each step starts from
    }
    CHECK(st.gradient_evals == 12);
  }
}
