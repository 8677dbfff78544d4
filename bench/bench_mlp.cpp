// MLP energy microbenchmarks: E(x) = Linear-SiLU-Linear-SiLU-Linear(->1), forward, forward + ∇θ,
// forward + ∇x, at the three (in, hidden, batch) configurations of the issues, next to the
// "GEMM floor": the time OpenBLAS alone needs for exactly the matrix products of each workload.
// bench/report.py turns the JSON output into the table of bench/README.md.
#include <benchmark/benchmark.h>

#include "autodiff/blas.hpp"
#include "autodiff/layers.hpp"

using namespace ebl;

namespace {

struct Config {
  std::size_t in, hidden, batch;
};
constexpr Config kConfigs[] = {{2, 128, 256}, {64, 256, 128}, {784, 512, 128}};

enum class Mode { Forward, GradTheta, GradX };

// One matrix product C[m,n] = op(A) op(B) with inner dimension k.
struct Product {
  bool ta, tb;
  std::size_t m, n, k;
};

// The products a workload runs, in the order the tape runs them.
std::vector<Product> products(const Config& c, Mode mode) {
  const std::size_t sizes[] = {c.in, c.hidden, c.hidden, 1};
  std::vector<Product> ps;
  for (int l = 0; l < 3; ++l) ps.push_back({false, false, c.batch, sizes[l + 1], sizes[l]});
  if (mode == Mode::Forward) return ps;
  for (int l = 2; l >= 0; --l) {
    if (mode == Mode::GradTheta)
      ps.push_back({true, false, sizes[l], sizes[l + 1], c.batch});  // gW = x^T gy
    if (mode == Mode::GradX || l > 0)
      ps.push_back({false, true, c.batch, sizes[l], sizes[l + 1]});  // gx = gy W^T
  }
  return ps;
}

double flops(const std::vector<Product>& ps) {
  double f = 0;
  for (const auto& p : ps) f += 2.0 * double(p.m) * double(p.n) * double(p.k);
  return f;
}

template <class T>
void BM_mlp(benchmark::State& state, Mode mode) {
  const Config c = kConfigs[state.range(0)];
  Rng rng(0);
  MLP<T> f({c.in, c.hidden, c.hidden, 1}, Activation::Silu, rng);
  Array<T> x0 = rng.normal_array<T>({c.batch, c.in});
  auto params = f.parameters();
  Tape<T> t;
  for (auto _ : state) {
    t.clear();
    Var<T> x = t.input(x0, mode == Mode::GradX);
    Var<T> e = sum(f(t, x));
    if (mode == Mode::GradTheta) t.backward(e, {}, params);
    if (mode == Mode::GradX) t.backward(e, {x});
    benchmark::DoNotOptimize(e.value().data());
  }
  state.counters["gemm_flops"] =
      benchmark::Counter(flops(products(c, mode)), benchmark::Counter::kIsIterationInvariantRate);
}

template <class T>
void BM_floor(benchmark::State& state, Mode mode) {
  const Config c = kConfigs[state.range(0)];
  std::vector<Product> ps = products(c, mode);
  std::vector<Array<T>> a, b, out;
  Rng rng(0);
  for (const auto& p : ps) {
    a.push_back(rng.normal_array<T>(p.ta ? Shape{p.k, p.m} : Shape{p.m, p.k}));
    b.push_back(rng.normal_array<T>(p.tb ? Shape{p.n, p.k} : Shape{p.k, p.n}));
    out.push_back(Array<T>(Shape{p.m, p.n}, T(0)));
  }
  for (auto _ : state) {
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const Product& p = ps[i];
      gemm<T>(p.ta, p.tb, p.m, p.n, p.k, T(1), a[i].data(), a[i].shape()[1], b[i].data(),
              b[i].shape()[1], T(0), out[i].data(), p.n);
    }
    benchmark::DoNotOptimize(out.back().data());
  }
  state.counters["gemm_flops"] =
      benchmark::Counter(flops(ps), benchmark::Counter::kIsIterationInvariantRate);
}

// The BLAS peak on this machine: a large square product, n = 1024.
template <class T>
void BM_peak(benchmark::State& state) {
  const std::size_t n = 1024;
  Rng rng(0);
  Array<T> a = rng.normal_array<T>({n, n}), b = rng.normal_array<T>({n, n}), c(Shape{n, n}, T(0));
  for (auto _ : state) {
    gemm<T>(false, false, n, n, n, T(1), a.data(), n, b.data(), n, T(0), c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["gemm_flops"] =
      benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
}

template <class T>
void register_all(const char* dtype) {
  const std::pair<Mode, const char*> modes[] = {
      {Mode::Forward, "forward"}, {Mode::GradTheta, "grad_theta"}, {Mode::GradX, "grad_x"}};
  benchmark::RegisterBenchmark(fmt::format("peak/{}/gemm1024/config:0", dtype).c_str(), BM_peak<T>)
      ->Unit(benchmark::kMicrosecond);
  for (auto [mode, name] : modes) {
    benchmark::RegisterBenchmark(fmt::format("ebl/{}/{}", dtype, name).c_str(), BM_mlp<T>, mode)
        ->ArgName("config")
        ->DenseRange(0, 2)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(fmt::format("floor/{}/{}", dtype, name).c_str(), BM_floor<T>, mode)
        ->ArgName("config")
        ->DenseRange(0, 2)
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all<float>("f32");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
