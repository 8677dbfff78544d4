// Unadjusted Langevin dynamics (ULA), the seed's dream-phase sampler:
//
//     x_t = x_{t-1} - ε ∇x E(x_{t-1}) + ω,   ω ~ N(0, 2εT I)
//
// a discretisation of the diffusion whose stationary law is p(x) ∝ exp(-E(x)/T). Step size ε and
// temperature T are separate options.
//
// NOTE on conventions. The seed writes ω ~ N(0, ε): that is this update at T = ½, i.e. it samples
// exp(-2E). The short-run recipes of the literature (Du & Mordatch 2019, Nijkamp et al. 2019:
// e.g. ε = 10 with noise of standard deviation 0.005) are this update at a very low temperature,
// T = 0.005² / (2·10) ≈ 1e-6: nearly gradient descent on E with a little noise. In every case the
// chain is biased at finite ε (for a Gaussian of variance σ² its stationary variance is
// Tσ² / (1 - ε/2σ²)); MALA removes the bias.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "autodiff/parallel.hpp"

#include "samplers/common.hpp"

namespace ebl {

enum class StepSchedule { Constant, Linear, Geometric };

/// Unadjusted Langevin's options.
struct LangevinOptions {
  int steps = 20;            ///< steps per run()
  double step_size = 0.01;   ///< ε at the first step
  double temperature = 1.0;  ///< T: noise variance 2εT
  double grad_clip = 0;      ///< clip each component of ∇x E to [-c, c]; 0 = off
  bool clamp = false;        ///< clamp x to [lo, hi] after every step
  double lo = -1;            ///< clamp's lower bound
  double hi = 1;             ///< clamp's upper bound
  StepSchedule schedule =
      StepSchedule::Constant;  ///< how ε moves from step_size to final_step_size
  double final_step_size = 0;  ///< ε at the last step for the Linear and Geometric schedules
  /// Threads to run the chains on: the rows of x are split into this many blocks, each advanced
  /// by its own thread with its own tape and its own generator (split from the caller's, so a
  /// run is reproducible for a given seed and thread count, but differs between thread counts),
  /// with BLAS single-threaded inside. The energy must allow concurrent evaluation on separate
  /// tapes (the library's energies do: a ∇x pass only reads the parameters).
  int threads = 1;
  /// Keep every chain's energy at every step in ChainStats::energy_traces (E of the state each
  /// step starts from, which the step computes anyway: no extra evaluation, no other change).
  bool trace_energies = false;

  /// ε at step t of `steps`
  double step_at(int t) const {
    if (schedule == StepSchedule::Constant || steps <= 1) return step_size;
    double f = double(t) / double(steps - 1);
    if (schedule == StepSchedule::Linear) return step_size + f * (final_step_size - step_size);
    return step_size * std::pow(final_step_size / step_size, f);
  }
};

/// The unadjusted Langevin sampler (the update at the top of this file).
template <class T>
class Langevin {
 public:
  /// A sampler of exp(−E/T) for the energy function `energy`; throws on invalid options.
  Langevin(EnergyFn<T> energy, LangevinOptions opt)
      : eval_fn_(std::move(energy)), opt_(opt), serial_(eval_fn_) {
    if (!(opt_.step_size > 0) || opt_.temperature < 0 || opt_.steps < 0)
      throw std::invalid_argument("Langevin: step size must be > 0, temperature >= 0, steps >= 0");
    if (opt_.threads < 1) throw std::invalid_argument("Langevin: threads must be >= 1");
    if (opt_.schedule == StepSchedule::Geometric && !(opt_.final_step_size > 0))
      throw std::invalid_argument("Langevin: a geometric schedule needs final_step_size > 0");
  }

  /// Runs the chains x [n, d] in place for opt.steps steps. `observe` sees the states after
  /// every step (on one thread only: the threaded blocks run their steps independently).
  ChainStats run(Array<T>& x, Rng& rng, const Observer<T>& observe = {}) {
    const std::size_t n = x.shape().empty() ? 0 : x.shape()[0];
    const std::size_t parts = std::min<std::size_t>(std::size_t(std::max(opt_.threads, 1)), n);
    if (parts <= 1) return chain(x, rng, serial_, observe);
    if (observe)
      throw std::invalid_argument(
          "Langevin: an observer needs threads = 1 (the threaded blocks do not step together)");
    // Row blocks on the pool: each block copies its rows out, runs, and copies them back.
    if (!pool_ || pool_->max_parts() < parts) pool_ = std::make_unique<WorkerPool>(parts);
    while (blocks_.size() < parts) blocks_.push_back(std::make_unique<Block>(eval_fn_));
    const std::size_t d = x.size() / n;
    for (std::size_t b = 0; b < parts; ++b) {
      Block& blk = *blocks_[b];
      blk.r0 = block_start(n, b, parts);
      blk.r1 = block_start(n, b + 1, parts);
      copy_rows(x, blk.r0, blk.r1, blk.x);
      blk.rng = rng.split();
    }
    {
      BlasSingleThreaded one_blas_thread;
      pool_->run(parts, [this](std::size_t b) {
        Block& blk = *blocks_[b];
        blk.stats = chain(blk.x, blk.rng, blk.bufs, {});
      });
    }
    ChainStats stats;
    stats.gradient_evals = std::size_t(opt_.steps);
    stats.mean_energy.assign(std::size_t(opt_.steps), 0.0);
    stats.mean_grad_norm.assign(std::size_t(opt_.steps), 0.0);
    for (std::size_t b = 0; b < parts; ++b) {  // row-weighted means over the blocks
      Block& blk = *blocks_[b];
      std::copy_n(blk.x.data(), blk.x.size(), x.data() + blk.r0 * d);
      for (auto& tr : blk.stats.energy_traces) stats.energy_traces.push_back(std::move(tr));
      const double w = double(blk.r1 - blk.r0) / double(n);
      for (std::size_t t = 0; t < stats.mean_energy.size(); ++t) {
        stats.mean_energy[t] += w * blk.stats.mean_energy[t];
        stats.mean_grad_norm[t] += w * blk.stats.mean_grad_norm[t];
      }
    }
    stats.finish();
    return stats;
  }

  /// The options (may be changed between runs).
  LangevinOptions& options() { return opt_; }

 private:
  // What one thread's chains need: a tape (inside EnergyGrad) and the step's buffers.
  struct Buffers {
    explicit Buffers(EnergyFn<T> f) : eval(std::move(f)) {}
    EnergyGrad<T> eval;
    Array<T> energy, grad, noise;
  };
  struct Block {
    explicit Block(EnergyFn<T> f) : bufs(std::move(f)) {}
    Buffers bufs;
    Array<T> x;
    Rng rng;
    ChainStats stats;
    std::size_t r0 = 0, r1 = 0;
  };

  // x_t = x_{t-1} - ε ∇E(x_{t-1}) + sqrt(2εT) ξ for the chains x, on one thread.
  ChainStats chain(Array<T>& x, Rng& rng, Buffers& bf, const Observer<T>& observe) const {
    ChainStats stats;
    for (int t = 0; t < opt_.steps; ++t) {
      poll_interrupt();
      bf.eval(x, bf.energy, bf.grad);
      ++stats.gradient_evals;
      if (opt_.trace_energies) {
        stats.energy_traces.resize(bf.energy.size());
        for (std::size_t i = 0; i < bf.energy.size(); ++i)
          stats.energy_traces[i].push_back(double(bf.energy(i)));
      }
      if (observe && t > 0) observe(x, bf.energy);  // the state after step t - 1, with its energy
      stats.record(bf.energy, bf.grad);
      const double eps = opt_.step_at(t);
      const T noise = T(std::sqrt(2 * eps * opt_.temperature)), step = T(eps);
      // the noise first (the serial part: one ziggurat draw per coordinate, in coordinate
      // order), then the update as one vectorised pass
      bf.noise.resize(x.shape());
      rng.fill_normal(bf.noise.data(), bf.noise.size());
      const T c = T(opt_.grad_clip), lo = T(opt_.lo), hi = T(opt_.hi);
      T* xs = x.data();
      const T *g = bf.grad.data(), *w = bf.noise.data();
      const std::size_t n = x.size();
      if (c > 0)
        for (std::size_t e = 0; e < n; ++e) xs[e] += -step * std::clamp(g[e], -c, c) + noise * w[e];
      else
        for (std::size_t e = 0; e < n; ++e) xs[e] += -step * g[e] + noise * w[e];
      if (opt_.clamp)
        for (std::size_t e = 0; e < n; ++e) xs[e] = std::clamp(xs[e], lo, hi);
    }
    if (observe && opt_.steps > 0) {  // the last state's energy (not otherwise evaluated)
      bf.eval.energy(x, bf.energy);
      observe(x, bf.energy);
    }
    stats.finish();
    return stats;
  }

  EnergyFn<T> eval_fn_;
  LangevinOptions opt_;
  Buffers serial_;
  std::unique_ptr<WorkerPool> pool_;  // made on the first threaded run
  std::vector<std::unique_ptr<Block>> blocks_;
};

}  // namespace ebl
