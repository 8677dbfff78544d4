// One RBM training epoch on the binarised 8×8 digits (the 1297-image training split), in
// scikit-learn's BernoulliRBM setting: persistent CD-1, batch 10, learning rate 0.1, 256 hidden
// units, no momentum or weight decay, float32 (BernoulliRBM keeps float32 input in float32).
// bench/rbm_vs_sklearn.py runs it next to scikit-learn on the same data.
#include <benchmark/benchmark.h>

#include "datasets/images.hpp"
#include "ebm/rbm.hpp"

using namespace ebl;

static void BM_rbm_epoch(benchmark::State& state) {
  auto [train_set, test_set] = split(load_digits_csv(default_digits_path()), 500, 0);
  Array<float> train = binarize_threshold(train_set.x);
  const std::size_t n = train.shape()[0], nv = train.shape()[1], batch = 10,
                    hidden = std::size_t(state.range(0));
  Rng rng(0);
  Rbm<float> m(nv, hidden, rng);
  SGD<float> opt(m.parameters(), {.lr = 0.1});
  GibbsChains<float> chains{.v = rng.uniform_array<float>({batch, nv}), .h = {}};
  Array<float> v(Shape{batch, nv});
  sample_bernoulli(chains.v, rng);
  RbmWorkspace<float> ws;
  for (auto _ : state) {
    for (std::size_t start = 0; start + batch <= n; start += batch) {
      std::copy_n(&train(start, 0), batch * nv, v.data());
      rbm_train_step(m, opt, v, chains, {.k = 1, .persistent = true}, rng, ws);
    }
    benchmark::DoNotOptimize(m.W.value.data());
  }
}
BENCHMARK(BM_rbm_epoch)
    ->Name("ebl/rbm_epoch")
    ->Arg(256)
    ->ArgName("hidden")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
