// Cooperative interruption (autodiff/interrupt.hpp): a request made while a sampler runs — here
// from inside the energy, after a chosen number of evaluations, as a signal handler would make it
// — stops every sampler within one iteration with Interrupted, its warm-up included, on one
// thread or several; the chains hold finite states; with the flag cleared the same sampler runs to
// the end and gives the draws of a run that was never interrupted.
#include "samplers/adaptive_mala.hpp"
#include "samplers/hmc.hpp"
#include "samplers/langevin.hpp"
#include "samplers/mala.hpp"
#include "samplers/nuts.hpp"
#include "samplers/tempering.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {

// E(x) = ½‖x‖², counting its evaluations; requests an interruption at evaluation `at` (0: never).
struct CountingGaussian {
  std::size_t evals = 0, at = 0;
  EnergyFn<double> fn() {
    return [this](TD&, V x) {
      if (++evals == at) request_interrupt();
      return 0.5 * sum(square(x), 1);
    };
  }
};

// Runs `make(fn).run(x, rng)` interrupted at evaluation `at`, then again to the end, and checks
// that the interruption stopped it within `slack` further evaluations.
template <class Make>
void check_sampler(Make make, std::size_t at, std::size_t slack) {
  clear_interrupt();
  CountingGaussian g;
  g.at = at;
  auto s = make(g.fn());
  Array<double> x = randn({8, 3}, 5);
  Rng rng(6);
  CHECK_THROWS_AS(s.run(x, rng), Interrupted);
  INFO("evaluations after the request: " << g.evals - at);
  CHECK(g.evals >= at);
  CHECK(g.evals <= at + slack);
  CHECK(std::all_of(x.begin(), x.end(), [](double v) { return std::isfinite(v); }));
  CHECK(interrupt_requested());  // the flag stays set until cleared
  clear_interrupt();

  // cleared: runs to the end, with the draws of a run that was never interrupted
  CountingGaussian h, k;
  auto s1 = make(h.fn());
  auto s2 = make(k.fn());
  Array<double> x1 = randn({8, 3}, 5), x2 = x1;
  Rng r1(6), r2(6);
  s1.run(x1, r1);
  s2.run(x2, r2);
  CHECK(same(x1, x2));
  CHECK(h.evals > at + slack);  // the interruption came well before the end
}

}  // namespace

TEST_CASE("every sampler stops within one iteration of an interruption request", "[interrupt]") {
  // slack: the evaluations a sampler may still make after the request (PT evaluates its K levels
  // between polls; NUTS and HMC poll at every leapfrog step, so a long trajectory stops at once)
  check_sampler([](EnergyFn<double> f) { return Langevin<double>(f, {.steps = 200}); }, 50, 1);
  check_sampler([](EnergyFn<double> f) { return Mala<double>(f, {.steps = 200}); }, 50, 1);
  check_sampler(
      [](EnergyFn<double> f) {
        return Hmc<double>(f, {.steps = 100, .leapfrog_steps = 5, .step_size = 0.2});
      },
      50, 1);
  for (std::size_t at : {30, 900})  // in warm-up, then in the draws
    check_sampler(
        [](EnergyFn<double> f) {
          return Nuts<double>(f, {.steps = 200, .max_depth = 8, .adapt = {.warmup = 100}});
        },
        at, 1);
  for (std::size_t at : {30, 250})
    check_sampler(
        [](EnergyFn<double> f) {
          return AdaptiveMala<double>(f, {.steps = 200, .adapt = {.warmup = 100}});
        },
        at, 1);
  check_sampler(
      [](EnergyFn<double> f) {
        return ParallelTempering<double>(f, {.steps = 100, .temperatures = {1, 2, 4}});
      },
      50, 3);
}

TEST_CASE("threaded Langevin chains stop on every thread", "[interrupt]") {
  clear_interrupt();
  std::atomic<std::size_t> evals{0};
  EnergyFn<double> f = [&](TD&, V x) {
    if (++evals == 40) request_interrupt();
    return 0.5 * sum(square(x), 1);
  };
  Langevin<double> ula(f, {.steps = 1000, .threads = 2});
  Array<double> x = randn({16, 2}, 7);
  Rng rng(8);
  CHECK_THROWS_AS(ula.run(x, rng), Interrupted);
  CHECK(evals.load() <= 42);  // each thread finishes at most its current step
  clear_interrupt();
  CHECK(ula.run(x, rng).mean_energy.size() == 1000);
}

TEST_CASE("a request made before a call stops it at once; clear_interrupt undoes it",
          "[interrupt]") {
  CountingGaussian g;
  Mala<double> m(g.fn(), {.steps = 10});
  Array<double> x = randn({4, 2}, 9);
  Rng rng(10);
  request_interrupt();
  CHECK_THROWS_AS(m.run(x, rng), Interrupted);
  CHECK(g.evals <= 1);  // the initial evaluation at most
  clear_interrupt();
  CHECK_FALSE(interrupt_requested());
  CHECK_NOTHROW(m.run(x, rng));
}
