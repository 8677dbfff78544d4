// Benchmarks of the image and graph layers, each CNN workload next to its GEMM floor (the same
// matrix products on OpenBLAS with preallocated buffers, measured in alternating blocks).
//
// CNN energy on 28×28×1 at batch 64: conv 3×3 (32) -> SiLU -> avg-pool 2 -> conv 3×3 (64) ->
// SiLU -> avg-pool 2 -> linear (->128) -> SiLU -> linear (->10 logits), E(x) = -logsumexp:
//   forward      Σ E(x)
//   grad_x       forward + ∇x (no weight gradient)
//   langevin20   a 20-step Langevin chain (forward + ∇x per step), on --chain_threads threads
//   train_step   CE(f(x+), y) + mean E(x+) - mean E(x-) on given chain samples x-, ∇θ, Adam
// R-GCN energy on QM9-sized graphs at batch 128: 9 nodes, 4 edge channels, 5 node channels, 3
// relational graph convolutions of 64 with spectral norm and SiLU, a sum readout, a linear head:
// (on a tape with --chain_threads threads: the batched products split by graphs, the others by rows)
//   rgcn_langevin_step   one Langevin step in (X, A) (forward + ∇X, ∇A; spectral norm frozen)
//   rgcn_train_step      E of data and of samples (one power iteration per weight),
//                        mean E+ - mean E- + α(E+² + E-²), ∇θ, Adam
// bench/compare_layers.py runs this next to bench/torch_layers.py (PyTorch) and prints the table.
#include <algorithm>
#include <chrono>
#include <optional>
#include <vector>

#include <benchmark/benchmark.h>

#include "autodiff/blas.hpp"
#include "autodiff/conv_layers.hpp"
#include "autodiff/graph_layers.hpp"
#include "autodiff/optim.hpp"
#include "autodiff/parallel.hpp"
#include "bench/bench_common.hpp"
#include "samplers/langevin.hpp"

using namespace ebl;
using ebl::bench::minor_faults;
using ebl::bench::warm_up;
using T = float;

namespace {

int g_chain_threads = 2;
constexpr std::size_t kBatch = 64, kClasses = 10;
constexpr int kChainSteps = 20;

enum class Mode { Forward, GradX, Langevin20, TrainStep };

CnnSpec cnn_spec() {
  CnnSpec s;
  s.channels = 1;
  s.height = s.width = 28;
  s.blocks = {{.channels = 32, .pool = 2}, {.channels = 64, .pool = 2}};
  s.hidden = {128};
  s.outputs = kClasses;
  return s;
}

// ---- the CNN workloads ----------------------------------------------------------------------

class CnnWork {
 public:
  explicit CnnWork(Mode mode)
      : mode_(mode),
        net_(cnn_spec(), Activation::Silu, rng_),
        params_(net_.parameters()),
        opt_(params_, {.lr = 1e-4}),
        x_pos_(rng_.uniform_array<T>({kBatch, 784}, -1, 1)),
        x_neg_(rng_.uniform_array<T>({kBatch, 784}, -1, 1)),
        chain_([this](Tape<T>& t, Var<T> x) { return energy(t, x); },
               {.steps = kChainSteps, .step_size = 1e-3, .threads = g_chain_threads}) {
    for (std::size_t i = 0; i < kBatch; ++i) labels_.push_back(i % kClasses);
    // one tape's convolutions split their images over the threads (the chains' own tapes do
    // not: their rows are already split)
    t_.set_threads(std::size_t(g_chain_threads));
  }
  Var<T> energy(Tape<T>& t, Var<T> x) { return neg(logsumexp(net_(t, x), 1)); }

  void run() {
    switch (mode_) {
      case Mode::Forward:
      case Mode::GradX: {
        t_.clear();
        Var<T> x = t_.input(x_pos_, mode_ == Mode::GradX);
        Var<T> e = sum(energy(t_, x));
        if (mode_ == Mode::GradX) t_.backward(e, {x});
        benchmark::DoNotOptimize(e.value().data());
        break;
      }
      case Mode::Langevin20:
        xs_ = x_neg_;
        chain_.run(xs_, rng_);
        benchmark::DoNotOptimize(xs_.data());
        break;
      case Mode::TrainStep: {
        t_.clear();
        opt_.zero_grad();
        Var<T> logits = net_(t_, t_.input(x_pos_));
        Var<T> ce = neg(mean(gather(log_softmax(logits, 1), std::span(labels_))));
        Var<T> e_pos = neg(logsumexp(logits, 1));
        Var<T> e_neg = energy(t_, t_.input(x_neg_));
        t_.backward(ce + mean(e_pos) - mean(e_neg), {}, params_);
        opt_.step();
        benchmark::DoNotOptimize(params_[0]->value.data());
        break;
      }
    }
  }

 private:
  Mode mode_;
  Rng rng_{1};
  Cnn<T> net_;
  std::vector<Parameter<T>*> params_;
  Adam<T> opt_;
  Array<T> x_pos_, x_neg_, xs_;
  std::vector<std::size_t> labels_;
  Tape<T> t_;
  Langevin<T> chain_;
};

// The products of a workload: C[m,n] = op(A) op(B), inner dimension k, `times` times.
struct Product {
  bool ta, tb;
  std::size_t m, n, k, times;
};

std::vector<Product> cnn_products(Mode mode) {
  const std::size_t n = kBatch;
  // per image: conv1 [32 x 784 x 9], conv2 [64 x 196 x 288]; then linear 3136 -> 128 -> 10
  const std::vector<Product> fwd = {{false, false, 32, 784, 9, n},
                                    {false, false, 64, 196, 288, n},
                                    {false, false, n, 128, 3136, 1},
                                    {false, false, n, 10, 128, 1}};
  const std::vector<Product> gx_lin = {{false, true, n, 128, 10, 1},
                                       {false, true, n, 3136, 128, 1}};
  const Product gx_conv2{true, false, 288, 196, 64, n}, gx_conv1{true, false, 9, 784, 32, n};
  const std::vector<Product> gw = {{true, false, 128, 10, n, 1},
                                   {true, false, 3136, 128, n, 1},
                                   {false, true, 64, 288, 196, n},
                                   {false, true, 32, 9, 784, n}};
  std::vector<Product> ps;
  auto add = [&ps](const std::vector<Product>& v, std::size_t times = 1) {
    for (const auto& p : v) ps.push_back({p.ta, p.tb, p.m, p.n, p.k, p.times * times});
  };
  switch (mode) {
    case Mode::Forward:
      add(fwd);
      break;
    case Mode::GradX:
      add(fwd), add(gx_lin), add({gx_conv2, gx_conv1});
      break;
    case Mode::Langevin20:
      add(fwd, kChainSteps), add(gx_lin, kChainSteps), add({gx_conv2, gx_conv1}, kChainSteps);
      break;
    case Mode::TrainStep:  // x+ and x-: forward, weight gradients, input gradients down to conv2
      add(fwd, 2), add(gw, 2), add(gx_lin, 2), add({gx_conv2}, 2);
      break;
  }
  return ps;
}

double flops(const std::vector<Product>& ps) {
  double f = 0;
  for (const auto& p : ps) f += 2.0 * double(p.m * p.n * p.k) * double(p.times);
  return f;
}

// The GEMM floor: the workload's products on preallocated buffers, OpenBLAS with its own threads.
class Floor {
 public:
  explicit Floor(Mode mode) : ps_(cnn_products(mode)) {
    Rng rng(2);
    for (const auto& p : ps_) {
      a_.push_back(rng.uniform_array<T>({p.ta ? p.k : p.m, p.ta ? p.m : p.k}));
      b_.push_back(rng.uniform_array<T>({p.tb ? p.n : p.k, p.tb ? p.k : p.n}));
      c_.push_back(Array<T>(Shape{p.m, p.n}, T(0)));
    }
  }
  void run() {
    for (std::size_t s = 0; s < ps_.size(); ++s) {
      const Product& p = ps_[s];
      for (std::size_t r = 0; r < p.times; ++r)
        gemm<T>(p.ta, p.tb, p.m, p.n, p.k, T(1), a_[s].data(), a_[s].shape()[1], b_[s].data(),
                b_[s].shape()[1], T(0), c_[s].data(), p.n);
    }
    benchmark::DoNotOptimize(c_[0].data());
  }

 private:
  std::vector<Product> ps_;
  std::vector<Array<T>> a_, b_, c_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Ours and its floor in alternating blocks (0.2 s untimed, then >= 50 ms timed), five pairs;
// floor_over_ours is the median of the paired ratios. Page faults are counted in ours' timed runs.
struct Block {
  double seconds = 0, faults_per_run = 0;
};
template <class F>
Block timed_block(F& f) {
  warm_up([&] { f.run(); });
  const double f0 = minor_faults();
  const auto start = std::chrono::steady_clock::now();
  long n = 0;
  double elapsed = 0;
  do {
    f.run();
    ++n;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < 0.05);
  return {elapsed / double(n), (minor_faults() - f0) / double(n)};
}

void BM_cnn_pair(benchmark::State& state, Mode mode) {
  // state.range(0): OpenBLAS threads for ours and the floor alike (1: single-threaded BLAS, no
  // thread hand-offs; the chains still run on --chain_threads row blocks)
  std::optional<BlasSingleThreaded> one;
  if (state.range(0) == 1) one.emplace();
  CnnWork ours(mode);
  Floor floor(mode);
  std::vector<double> o, f, ratio, faults;
  for (auto _ : state) {
    for (int k = 0; k < 5; ++k) {
      const Block b = timed_block(ours);
      o.push_back(b.seconds);
      faults.push_back(b.faults_per_run);
      f.push_back(timed_block(floor).seconds);
      ratio.push_back(f.back() / o.back());
    }
  }
  state.counters["ours_s"] = median(o);
  state.counters["floor_s"] = median(f);
  state.counters["floor_over_ours"] = median(ratio);
  state.counters["gemm_flops_per_run"] = flops(cnn_products(mode));
  state.counters["page_faults_per_step"] = *std::max_element(faults.begin(), faults.end());
}

// ---- the R-GCN workloads ----------------------------------------------------------------------

class RgcnWork {
 public:
  static constexpr std::size_t B = 128, N = 9, R = 4, F = 5, H = 64;
  explicit RgcnWork(bool train)
      : train_(train),
        l1_(F, H, R, rng_, true, "g1"),
        l2_(H, H, R, rng_, true, "g2"),
        l3_(H, H, R, rng_, true, "g3"),
        head_(H, 1, rng_, "head"),
        a_pos_(rng_.uniform_array<T>({B, R, N, N})),
        x_pos_(rng_.uniform_array<T>({B, N, F})),
        a_neg_(rng_.uniform_array<T>({B, R, N, N})),
        x_neg_(rng_.uniform_array<T>({B, N, F})) {
    for (auto* l : {&l1_, &l2_, &l3_})
      for (auto* p : l->parameters()) params_.push_back(p);
    for (auto* p : head_.parameters()) params_.push_back(p);
    opt_ = std::make_unique<Adam<T>>(params_, Adam<T>::Options{.lr = 1e-4});
    noise_a_ = Array<T>::from_shape(a_neg_.shape());
    noise_x_ = Array<T>::from_shape(x_neg_.shape());
    // the tape's products (the batched A H and the stacked-weight GEMM), SiLU and linear layers
    // split over --chain_threads threads, as the CNN's convolutions
    t_.set_threads(std::size_t(g_chain_threads));
  }
  // E(A, X) per graph [B]
  Var<T> energy(Tape<T>& t, Var<T> a, Var<T> x, bool update_sn) {
    Var<T> h = silu(l1_(t, a, x, update_sn));
    h = silu(l2_(t, a, h, update_sn));
    h = silu(l3_(t, a, h, update_sn));
    return reshape(head_(t, sum_readout(h)), {-1});
  }
  void run() {
    t_.clear();
    if (!train_) {  // one Langevin step in (X, A): x <- x - ε ∇E + √(2ε) ξ
      Var<T> a = t_.input_ref(a_neg_, true), x = t_.input_ref(x_neg_, true);
      t_.backward(sum(energy(t_, a, x, false)), {a, x});
      const T eps = T(1e-3), s = std::sqrt(T(2) * eps);
      rng_.fill_normal(noise_a_.data(), noise_a_.size());
      rng_.fill_normal(noise_x_.data(), noise_x_.size());
      const T *ga = t_.grad(a).data(), *gx = t_.grad(x).data();
      for (std::size_t e = 0; e < a_neg_.size(); ++e)
        a_neg_.data()[e] += -eps * ga[e] + s * noise_a_.data()[e];
      for (std::size_t e = 0; e < x_neg_.size(); ++e)
        x_neg_.data()[e] += -eps * gx[e] + s * noise_x_.data()[e];
      benchmark::DoNotOptimize(x_neg_.data());
      return;
    }
    opt_->zero_grad();
    Var<T> e_pos = energy(t_, t_.input_ref(a_pos_), t_.input_ref(x_pos_), true);
    Var<T> e_neg = energy(t_, t_.input_ref(a_neg_), t_.input_ref(x_neg_), true);
    Var<T> loss = mean(e_pos) - mean(e_neg) + T(1) * (mean(square(e_pos)) + mean(square(e_neg)));
    t_.backward(loss, {}, params_);
    opt_->step();
    benchmark::DoNotOptimize(params_[0]->value.data());
  }

 private:
  bool train_;
  Rng rng_{3};
  RelationalGraphConv<T> l1_, l2_, l3_;
  Linear<T> head_;
  Array<T> a_pos_, x_pos_, a_neg_, x_neg_, noise_a_, noise_x_;
  std::vector<Parameter<T>*> params_;
  std::unique_ptr<Adam<T>> opt_;
  Tape<T> t_;
};

void BM_rgcn(benchmark::State& state, bool train) {
  // state.range(0): OpenBLAS threads outside the tape's parallel sections (1 or 2); the split
  // products run single-threaded inside them either way
  std::optional<BlasSingleThreaded> one;
  if (state.range(0) == 1) one.emplace();
  RgcnWork w(train);
  warm_up([&] { w.run(); });
  const double f0 = minor_faults();
  for (auto _ : state) w.run();
  state.counters["page_faults_per_step"] =
      (minor_faults() - f0) / double(std::max<std::int64_t>(1, state.iterations()));
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]).rfind("--chain_threads=", 0) == 0)
      g_chain_threads = std::max(1, std::stoi(std::string(argv[i]).substr(16)));
  const std::pair<const char*, Mode> modes[] = {{"forward", Mode::Forward},
                                                {"grad_x", Mode::GradX},
                                                {"langevin20", Mode::Langevin20},
                                                {"train_step", Mode::TrainStep}};
  for (const auto& [name, mode] : modes)
    for (int blas_threads : {1, 2})
      benchmark::RegisterBenchmark((std::string("pair/cnn/") + name).c_str(), BM_cnn_pair, mode)
          ->Arg(blas_threads)
          ->Iterations(1)
          ->Unit(benchmark::kMillisecond);
  for (int blas_threads : {1, 2}) {
    benchmark::RegisterBenchmark("rgcn/langevin_step", BM_rgcn, false)
        ->Arg(blas_threads)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("rgcn/train_step", BM_rgcn, true)
        ->Arg(blas_threads)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
