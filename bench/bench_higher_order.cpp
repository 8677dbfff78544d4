// Gradients of gradients: the cost of Hutchinson's Laplacian estimate per probe, at 250, 1000 and
// 4000 probes on one tape. Each probe records a Hessian-vector product (a backward pass over the
// recorded gradient); its cost should be the same whatever the number of probes before it. Before
// the recorded backward visited only the output's ancestors, every probe scanned the whole tape
// (all earlier probes' nodes included): 285 µs a probe at 250 probes, 3.6 ms at 4000.
//
// Workload: an MLP energy 2 -> 32 -> 32 -> 1 (SiLU) on a batch of 32 points, float64 (small, so
// that memory, which grows with the probes kept on the tape, is not what is measured):
// E, ∇x E recorded once, then the probes.
#include <benchmark/benchmark.h>

#include "autodiff/higher_order.hpp"
#include "autodiff/layers.hpp"

using namespace ebl;

namespace {

void BM_hutchinson(benchmark::State& state) {
  const auto probes = std::size_t(state.range(0));
  Rng rng(0);
  MLP<double> f({2, 32, 32, 1}, Activation::Silu, rng);
  const Array<double> x0 = rng.normal_array<double>({32, 2});
  Tape<double> t;
  for (auto _ : state) {
    t.clear();
    Var<double> x = t.input(x0, true);
    Var<double> e = reshape(f(t, x), {-1});
    Var<double> lap = laplacian_hutchinson(e, x, probes, rng);
    benchmark::DoNotOptimize(lap.value().data());
  }
  // seconds per probe (printed with an SI prefix: 30u is 30 µs)
  state.counters["per_probe"] = benchmark::Counter(
      double(probes), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["tape_nodes"] = double(t.size());
}

}  // namespace

// (at least 2 s each: the first iteration allocates the tape, later ones reuse it)
BENCHMARK(BM_hutchinson)
    ->ArgName("probes")
    ->Arg(250)
    ->Arg(1000)
    ->Arg(4000)
    ->MinTime(2)
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
