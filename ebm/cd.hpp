// Maximum likelihood by contrastive divergence, the seed's Algorithm 1.
//
// The gradient of the negative log-likelihood is the wake term minus the dream term
// (ebm/boltzmann.hpp):  ∇θ NLL = E_data[∇θE(x⁺)] - E_{p_θ}[∇θE(x⁻)].  CD replaces the dream
// expectation by samples x⁻ from a short Langevin chain, and descends the surrogate
//
//     L = mean E(x⁺) - mean E(x⁻) + α (mean E(x⁺)² + mean E(x⁻)²)
//
// whose θ-gradient (with x⁻ held fixed: no gradient flows through the chain) is that estimate,
// plus the energy-magnitude regulariser of Du & Mordatch (2019). A step:
//   1. wake:  x⁺, a data batch;
//   2. dream: x⁻ from Langevin started at the data (CD-k), at noise, or at persistent chains
//             from a replay buffer (persistent CD), restarted from noise with probability ρ;
//   3. L and ∇θ L on the tape; 4. an optimizer step; 5. the chains go back to the buffer.
//
// Divergence guard: if an energy is non-finite or |L| exceeds a bound, step() throws
// DivergenceError before it changes the parameters, the optimizer state or the persistent chains,
// so the last checkpoint() taken is a good state to resume from.
//
// Data-parallel (set_comm, distributed/data_parallel.hpp): each rank runs this step on its own
// batch of n rows and its own chains; its part of L divides by the global batch n·R, so that one
// allreduce of [∇θ L_r | Σ E⁺, Σ E⁻, L_r, non-finite flag] gives every rank the serial gradient
// and the serial guard's numbers: a divergence on any rank stops every rank at the same step.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "autodiff/optim.hpp"
#include "autodiff/parallel.hpp"
#include "distributed/comm.hpp"
#include "distributed/data_parallel.hpp"
#include "ebm/energy.hpp"
#include "ebm/objectives.hpp"
#include "io/checkpoint.hpp"
#include "samplers/langevin.hpp"
#include "samplers/mala.hpp"
#include "samplers/replay_buffer.hpp"
#include "samplers/tempering.hpp"

namespace ebl {

enum class ChainInit { Data, Noise, Persistent };

inline ChainInit parse_chain_init(const std::string& s) {
  if (s == "data") return ChainInit::Data;
  if (s == "noise") return ChainInit::Noise;
  if (s == "persistent") return ChainInit::Persistent;
  throw std::invalid_argument(
      fmt::format("unknown chain init '{}' (expected data, noise, persistent)", s));
}

/// The dream sampler: unadjusted Langevin (the seed's), MALA (the same step, Metropolis-adjusted:
/// exact for its target whatever the step), or parallel tempering (MALA moves on a ladder of
/// temperatures with swaps, for energies whose modes Langevin does not cross in k steps). MALA and
/// tempering take the Langevin options' steps, step size and temperature; Langevin alone clips
/// gradients, clamps and runs on threads.
enum class DreamSampler { Langevin, Mala, Tempering };

inline DreamSampler parse_dream_sampler(const std::string& s) {
  if (s == "langevin") return DreamSampler::Langevin;
  if (s == "mala") return DreamSampler::Mala;
  if (s == "pt") return DreamSampler::Tempering;
  throw std::invalid_argument(fmt::format("unknown sampler '{}' (expected langevin, mala, pt)", s));
}

/// Contrastive divergence's options (the defaults are the seed's persistent CD).
struct CdOptions {
  ChainInit init = ChainInit::Persistent;         ///< where the dream chains start
  LangevinOptions langevin;                       ///< the dream sampler; k = langevin.steps
  DreamSampler sampler = DreamSampler::Langevin;  ///< the chain that moves them
  /// Tempering's ladder: T₁ = langevin.temperature times these factors (1 = f₁ < f₂ < …).
  std::vector<double> tempering_ladder{};
  double alpha = 0;                 ///< weight of the energy-magnitude regulariser
  double noise_lo = -1;             ///< low corner of the box noise chains start from
  double noise_hi = 1;              ///< high corner of that box
  std::size_t buffer_size = 10000;  ///< persistent chains kept
  double restart_prob = 0.05;       ///< ρ: chance a drawn persistent chain restarts from noise
  double loss_bound = 1e4;          ///< divergence guard: |L| beyond this stops the run
  /// Improved CD (Du et al. 2021): the weight of the KL term mean E_θ̄(x_K), whose gradient flows
  /// through the chain's last Langevin step, kept on the tape (ebm/objectives.hpp, cd_kl_term).
  /// 0: plain CD. Needs the Langevin dream sampler; the last step is neither clipped nor clamped,
  /// and the θ-pass runs on one thread.
  double kl_weight = 0;
};

/// What one CD step reports.
struct CdStepStats {
  double loss = 0;       ///< L
  double e_pos = 0;      ///< mean E(x⁺)
  double e_neg = 0;      ///< mean E(x⁻)
  double grad_norm = 0;  ///< ‖∇θ L‖
  ChainStats chain;      ///< the dream chain's diagnostics
};

/// The CD trainer: step() draws negatives, forms the surrogate loss and updates the energy's
/// parameters with the optimizer (see the top of this file); checkpoint() and restore() resume a
/// run exactly.
template <class T>
class ContrastiveDivergence {
 public:
  /// The trainer owns its generator (seeded here), so a checkpoint captures the whole run.
  ContrastiveDivergence(Energy<T>& energy, Optimizer<T>& opt, const CdOptions& o,
                        std::uint64_t seed, std::size_t dim)
      : ContrastiveDivergence(energy, opt, o, Rng(seed), dim) {}
  /// The same, with the generator given (a rank's stream in a data-parallel run: rank_stream).
  ContrastiveDivergence(Energy<T>& energy, Optimizer<T>& opt, const CdOptions& o, Rng rng,
                        std::size_t dim)
      : energy_(energy),
        opt_(opt),
        opt_o_(o),
        params_(energy.parameters()),
        rng_(rng),
        sampler_([this](Tape<T>& t, Var<T> x) { return energy_(t, x); }, o.langevin),
        dim_(dim) {
    if (o.init == ChainInit::Persistent)
      buffer_.emplace(o.buffer_size, dim, o.noise_lo, o.noise_hi, o.restart_prob, rng_);
    auto fn = [this](Tape<T>& t, Var<T> x) { return energy_(t, x); };
    if (o.sampler == DreamSampler::Mala)
      mala_.emplace(fn, MalaOptions{.steps = o.langevin.steps,
                                    .step_size = o.langevin.step_size,
                                    .temperature = o.langevin.temperature});
    if (o.kl_weight > 0) {
      if (o.sampler != DreamSampler::Langevin || o.langevin.steps < 1)
        throw std::invalid_argument(
            "CD: the KL term (kl_weight > 0) needs the Langevin dream sampler and >= 1 step");
      LangevinOptions before_last = o.langevin;  // the chain but its last step
      before_last.steps = o.langevin.steps - 1;
      before_last_.emplace(fn, before_last);
    }
    if (o.sampler == DreamSampler::Tempering) {
      if (o.tempering_ladder.size() < 2)
        throw std::invalid_argument("CD: parallel tempering needs a ladder of at least 2 levels");
      std::vector<double> temps;
      for (double f : o.tempering_ladder) temps.push_back(f * o.langevin.temperature);
      tempering_.emplace(fn, TemperingOptions{.steps = o.langevin.steps,
                                              .temperatures = temps,
                                              .step_size = o.langevin.step_size});
    }
  }

  /// The dream phase: negatives for a data batch, by the configured initialisation and chain.
  ChainStats sample_negatives(const Array<T>& x_pos, Array<T>& x_neg) {
    start_chains(x_pos, x_neg);
    if (mala_) return mala_->run(x_neg, rng_);
    if (tempering_) return tempering_->run(x_neg, rng_);
    return sampler_.run(x_neg, rng_);
  }

 private:
  // The chains' starting states for a batch of x⁺'s size: the data, noise or persistent chains.
  void start_chains(const Array<T>& x_pos, Array<T>& x_neg) {
    const std::size_t n = x_pos.shape()[0];
    switch (opt_o_.init) {
      case ChainInit::Data:
        x_neg.resize(x_pos.shape());
        std::copy(x_pos.begin(), x_pos.end(), x_neg.begin());
        break;
      case ChainInit::Noise:
        x_neg.resize(Shape{n, dim_});
        for (auto& v : x_neg) v = T(rng_.uniform(opt_o_.noise_lo, opt_o_.noise_hi));
        break;
      case ChainInit::Persistent:
        buffer_->sample(n, rng_, x_neg);
        break;
    }
  }

 public:
  /// The surrogate L(θ) for given x⁺ and x⁻ on tape t; its θ-gradient is the CD estimate of
  /// ∇θ NLL (plus the regulariser). Also reports mean E(x⁺) and mean E(x⁻).
  Var<T> loss(Tape<T>& t, const Array<T>& x_pos, const Array<T>& x_neg,
              CdStepStats* stats = nullptr) {
    LossParts parts;
    Var<T> l = loss_part(t, x_pos, x_neg, x_pos.shape()[0], x_neg.shape()[0], parts);
    if (stats) check(parts, *stats);
    return l;
  }

  /// One CD step on a data batch x⁺ [n, d]. With LangevinOptions::threads > 1 the chains and
  /// the θ-pass run on that many threads (row blocks), with BLAS single-threaded throughout, and
  /// so does the optimizer's update (element ranges).
  CdStepStats step(const Array<T>& x_pos) {
    const std::size_t threads = std::size_t(std::max(1, sampler_.options().threads));
    std::optional<BlasSingleThreaded> one_blas_thread;  // our threads, not OpenBLAS's, when > 1
    if (threads > 1) one_blas_thread.emplace();
    CdStepStats s;
    // the guard's promise covers the tempering sampler's hot levels: they go back if it fires
    if (tempering_) tempering_before_ = tempering_->state();
    try {
      step_body(x_pos, s, threads);
    } catch (const DivergenceError&) {
      if (tempering_) tempering_->set_state(tempering_before_);
      throw;
    }
    if (buffer_) buffer_->update(x_neg_);
    ++step_;
    if (distributed() && check_every_ > 0 && step_ % check_every_ == 0)
      check_replicas(*comm_, params_, step_);
    return s;
  }

  /// Data-parallel training over `comm` (nullptr or one rank: serial). Every rank calls step() with
  /// a batch of the same size; every `check_every` steps the ranks compare their parameters'
  /// checksums (ReplicaDriftError on a difference; 0: never).
  void set_comm(Comm* comm, long check_every = 100) {
    comm_ = comm;
    check_every_ = check_every;
  }
  /// Whether steps are data-parallel (a communicator of more than one rank).
  bool distributed() const { return comm_ && comm_->size() > 1; }

 private:
  void step_body(const Array<T>& x_pos, CdStepStats& s, std::size_t threads) {
    const std::size_t ranks = distributed() ? std::size_t(comm_->size()) : 1;
    LossParts total;
    std::size_t parts = 1;
    if (before_last_) {  // improved CD: the last Langevin step on the tape, with the KL term
      start_chains(x_pos, x_prev_);
      s.chain = before_last_->run(x_prev_, rng_);
      const LangevinOptions& lo = opt_o_.langevin;
      const double eps = lo.step_at(lo.steps - 1);
      noise_.resize(x_prev_.shape());
      rng_.fill_normal(noise_, 0, std::sqrt(2 * eps * lo.temperature));
      tape_.clear();
      Var<T> kl = cd_kl_term(energy_, tape_, x_prev_, noise_, eps, x_neg_);
      const std::size_t np = x_pos.shape()[0] * ranks, nn = x_neg_.shape()[0] * ranks;
      Var<T> l = loss_part(tape_, x_pos, x_neg_, np, nn, total);
      const T w = T(opt_o_.kl_weight / double(ranks));  // (a mean over this rank's rows)
      l = l + w * kl;
      total.loss = double(l.item());
      if (ranks == 1) check(total, s);
      opt_.zero_grad();
      tape_.backward(l, {}, params_);
    } else {
      s.chain = sample_negatives(x_pos, x_neg_);
      parts = std::min({threads, x_pos.shape()[0], x_neg_.shape()[0]});
      const std::size_t np = x_pos.shape()[0] * ranks, nn = x_neg_.shape()[0] * ranks;
      if (parts <= 1) {
        tape_.clear();
        Var<T> l = loss_part(tape_, x_pos, x_neg_, np, nn, total);
        if (ranks == 1) check(total, s);  // throws before any state changes
        opt_.zero_grad();
        tape_.backward(l, {}, params_);
      } else {
        total = theta_pass_on_threads(x_pos, parts, np, nn);
        if (ranks == 1) check(total, s);
      }
    }
    if (ranks > 1) {  // the serial gradient and guard, from every rank's parts
      std::array<double, 4> extras{total.wake, total.dream, total.loss, total.finite ? 0.0 : 1.0};
      allreduce_gradients(*comm_, params_, extras);
      check({extras[0], extras[1], extras[2], extras[3] == 0}, s);  // the same on every rank
    }
    s.grad_norm = checked_gradient_norm(params_, step_);
    if (parts > 1)
      opt_.step(*pool_, parts);  // element-wise: the same result as opt_.step()
    else
      opt_.step();
  }

 public:
  /// Everything needed to continue this run exactly: parameters, optimizer state, chains, the
  /// generator and the step count.
  Checkpoint checkpoint() const {
    Checkpoint c;
    put_training_state(c, params_, opt_);
    if (buffer_) c.put("chains", buffer_->chains());
    put_rng(c, rng_);
    c.integers["step"] = std::uint64_t(step_);
    if (tempering_) {  // the hot levels persist between steps
      const auto pt = tempering_->state();
      if (pt.replicas.size()) {
        c.put("dream/replicas", pt.replicas);
        c.integers["dream/iteration"] = pt.iteration;
        for (auto [name, v] : {std::pair{"move_accepted", &pt.move_accepted},
                               std::pair{"move_proposed", &pt.move_proposed},
                               std::pair{"swap_accepted", &pt.swap_accepted},
                               std::pair{"swap_proposed", &pt.swap_proposed}})
          for (std::size_t k = 0; k < v->size(); ++k)
            c.integers[fmt::format("dream/{}/{}", name, k)] = (*v)[k];
      }
    }
    return c;
  }
  /// Continues the run a checkpoint() saved: parameters, optimizer, chains, generator, step.
  void restore(const Checkpoint& c) {
    get_training_state(c, params_, opt_);
    if (buffer_) c.get("chains", buffer_->chains());
    get_rng(c, rng_);
    step_ = long(c.integer("step"));
    if (tempering_) {
      typename ParallelTempering<T>::State pt;
      auto it = c.arrays.find("dream/replicas");
      if (it != c.arrays.end()) {
        pt.replicas = Array<T>::from_shape(it->second.shape());
        c.get("dream/replicas", pt.replicas);
        pt.iteration = c.integer("dream/iteration");
        const std::size_t K = tempering_->temperatures().size();
        for (auto [name, v, len] : {std::tuple{"move_accepted", &pt.move_accepted, K},
                                    std::tuple{"move_proposed", &pt.move_proposed, K},
                                    std::tuple{"swap_accepted", &pt.swap_accepted, K - 1},
                                    std::tuple{"swap_proposed", &pt.swap_proposed, K - 1}})
          for (std::size_t k = 0; k < len; ++k)
            v->push_back(c.integer(fmt::format("dream/{}/{}", name, k)));
      }
      tempering_->set_state(std::move(pt));
    }
  }

  /// Only the energy's parameters from a checkpoint: a new run that starts from them (the
  /// optimizer, the chains, the generator and the step count stay this run's own).
  void restore_parameters(const Checkpoint& c) {
    for (auto* p : params_) c.get("param/" + p->name, p->value);
  }

  /// The trainer's generator (the experiments draw their batches from it too).
  Rng& rng() { return rng_; }
  /// Steps taken (restored by restore()).
  long steps_done() const { return step_; }
  /// The options (the dream sampler's may be changed between steps).
  CdOptions& options() { return opt_o_; }
  /// The Langevin dream sampler.
  Langevin<T>& sampler() { return sampler_; }
  /// The tempering dream sampler (its swap rates), when CdOptions::sampler chose it.
  const ParallelTempering<T>* tempering() const { return tempering_ ? &*tempering_ : nullptr; }
  /// The last step's negatives x⁻.
  const Array<T>& last_negatives() const { return x_neg_; }

 private:
  // The loss's sums over one block of rows (the whole batch when serial): L = Σ_blocks L_b.
  struct LossParts {
    double wake = 0, dream = 0, loss = 0;  // Σ E⁺ / n⁺, Σ E⁻ / n⁻, L_b
    bool finite = true;
  };
  struct Block {
    Tape<T> tape;
    Array<T> x_pos, x_neg;
    LossParts parts;
  };

  // L_b = Σ_b E⁺ / n⁺ - Σ_b E⁻ / n⁻ + α (Σ_b (E⁺)² / n⁺ + Σ_b (E⁻)² / n⁻), with n⁺ and n⁻ the
  // whole batch's sizes, so that the blocks' losses (and gradients) add up to the batch's.
  // (sum · (1/n) is how mean() computes, so a single block is bit-identical to mean().)
  Var<T> loss_part(Tape<T>& t, const Array<T>& x_pos, const Array<T>& x_neg, std::size_t n_pos,
                   std::size_t n_neg, LossParts& parts) {
    Var<T> e_pos = energy_(t, t.input(x_pos)), e_neg = energy_(t, t.input(x_neg));
    const T inv_pos = T(1) / T(n_pos), inv_neg = T(1) / T(n_neg);
    Var<T> wake = sum(e_pos) * inv_pos, dream = sum(e_neg) * inv_neg;
    Var<T> l = wake - dream;
    if (opt_o_.alpha != 0)
      l = l + T(opt_o_.alpha) * (sum(square(e_pos)) * inv_pos + sum(square(e_neg)) * inv_neg);
    auto finite = [](const Array<T>& e) {
      return std::all_of(e.begin(), e.end(), [](T v) { return std::isfinite(v); });
    };
    parts = {double(wake.item()), double(dream.item()), double(l.item()),
             finite(e_pos.value()) && finite(e_neg.value())};
    return l;
  }

  // The divergence guard, on the whole batch's sums.
  void check(const LossParts& p, CdStepStats& stats) const {
    stats.e_pos = p.wake;
    stats.e_neg = p.dream;
    stats.loss = p.loss;
    if (!p.finite || !std::isfinite(stats.loss) || std::abs(stats.loss) > opt_o_.loss_bound)
      throw DivergenceError(fmt::format(
          "training diverged at step {}: loss {:.6g}, mean E(x+) {:.6g}, mean E(x-) {:.6g} "
          "(non-finite energies or |loss| > {:g})",
          step_ + 1, stats.loss, stats.e_pos, stats.e_neg, opt_o_.loss_bound));
  }

  // ∇θ L with the rows of x⁺ and x⁻ split into blocks, one per thread, each on its own tape
  // (the parameters are only read); the blocks' gradients are then summed into Parameter::grad.
  // Returns the whole batch's sums; n_pos and n_neg are the global batch sizes the loss divides by.
  LossParts theta_pass_on_threads(const Array<T>& x_pos, std::size_t parts, std::size_t n_pos,
                                  std::size_t n_neg) {
    if (!pool_ || pool_->max_parts() < parts) pool_ = std::make_unique<WorkerPool>(parts);
    while (blocks_.size() < parts) blocks_.push_back(std::make_unique<Block>());
    const std::size_t np = x_pos.shape()[0], nn = x_neg_.shape()[0];
    for (std::size_t b = 0; b < parts; ++b) {
      copy_rows(x_pos, block_start(np, b, parts), block_start(np, b + 1, parts), blocks_[b]->x_pos);
      copy_rows(x_neg_, block_start(nn, b, parts), block_start(nn, b + 1, parts),
                blocks_[b]->x_neg);
    }
    pool_->run(parts, [&](std::size_t b) {
      Block& blk = *blocks_[b];
      blk.tape.clear();
      Var<T> l = loss_part(blk.tape, blk.x_pos, blk.x_neg, n_pos, n_neg, blk.parts);
      blk.tape.backward_on_tape(l, params_);
    });
    LossParts total;
    for (std::size_t b = 0; b < parts; ++b) {
      const LossParts& p = blocks_[b]->parts;
      total.wake += p.wake;
      total.dream += p.dream;
      total.loss += p.loss;
      total.finite = total.finite && p.finite;
    }
    // Parameter::grad = the sum of every block's gradients, one pass over each parameter, its
    // elements split between the threads (the order of additions is zero_grad's and += block by
    // block, as a serial gather would do them)
    grad_srcs_.resize(params_.size());
    for (std::size_t k = 0; k < params_.size(); ++k) {
      grad_srcs_[k].clear();
      for (std::size_t b = 0; b < parts; ++b)
        blocks_[b]->tape.param_grads(*params_[k], grad_srcs_[k]);
    }
    pool_->run(parts, [&](std::size_t b) {
      for (std::size_t k = 0; k < params_.size(); ++k) {
        const std::size_t n = params_[k]->grad.size();
        sum_into<T>(grad_srcs_[k], params_[k]->grad.data(), block_start(n, b, parts),
                    block_start(n, b + 1, parts));
      }
    });
    return total;
  }

  Energy<T>& energy_;
  Optimizer<T>& opt_;
  CdOptions opt_o_;
  std::vector<Parameter<T>*> params_;  // the energy's, fetched once
  Rng rng_;
  Langevin<T> sampler_;
  std::optional<Mala<T>> mala_;
  std::optional<ParallelTempering<T>> tempering_;
  std::optional<Langevin<T>> before_last_;  // improved CD: the chain's first k − 1 steps
  Array<T> x_prev_, noise_;
  typename ParallelTempering<T>::State tempering_before_;
  std::size_t dim_;
  std::optional<ReplayBuffer<T>> buffer_;
  Tape<T> tape_;
  Array<T> x_neg_;
  std::unique_ptr<WorkerPool> pool_;  // for the θ-pass on threads, made on first use
  std::vector<std::unique_ptr<Block>> blocks_;
  // per parameter: its gradient buffers on the blocks' tapes (Tape::param_grads)
  std::vector<std::vector<const T*>> grad_srcs_;
  long step_ = 0;
  Comm* comm_ = nullptr;  // data-parallel when it has more than one rank
  long check_every_ = 100;
};

}  // namespace ebl
