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
#pragma once

#include <cmath>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "autodiff/optim.hpp"
#include "ebm/checkpoint.hpp"
#include "ebm/energy.hpp"
#include "samplers/langevin.hpp"
#include "samplers/replay_buffer.hpp"

namespace ebl {

enum class ChainInit { Data, Noise, Persistent };

inline ChainInit parse_chain_init(const std::string& s) {
  if (s == "data") return ChainInit::Data;
  if (s == "noise") return ChainInit::Noise;
  if (s == "persistent") return ChainInit::Persistent;
  throw std::invalid_argument(
      fmt::format("unknown chain init '{}' (expected data, noise, persistent)", s));
}

struct CdOptions {
  ChainInit init = ChainInit::Persistent;
  LangevinOptions langevin;            ///< the dream sampler; k = langevin.steps
  double alpha = 0;                    ///< weight of the energy-magnitude regulariser
  double noise_lo = -1, noise_hi = 1;  ///< box of the uniform noise chains start from
  std::size_t buffer_size = 10000;     ///< persistent chains kept
  double restart_prob = 0.05;          ///< ρ: chance a drawn persistent chain restarts from noise
  double loss_bound = 1e4;             ///< divergence guard: |L| beyond this stops the run
};

struct CdStepStats {
  double loss = 0, e_pos = 0, e_neg = 0;  ///< L, mean E(x⁺), mean E(x⁻)
  double grad_norm = 0;                   ///< ‖∇θ L‖
  ChainStats chain;
};

class DivergenceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class T>
class ContrastiveDivergence {
 public:
  /// The trainer owns its generator (seeded here), so a checkpoint captures the whole run.
  ContrastiveDivergence(Energy<T>& energy, Optimizer<T>& opt, const CdOptions& o,
                        std::uint64_t seed, std::size_t dim)
      : energy_(energy),
        opt_(opt),
        opt_o_(o),
        params_(energy.parameters()),
        rng_(seed),
        sampler_([this](Tape<T>& t, Var<T> x) { return energy_(t, x); }, o.langevin),
        dim_(dim) {
    if (o.init == ChainInit::Persistent)
      buffer_.emplace(o.buffer_size, dim, o.noise_lo, o.noise_hi, o.restart_prob, rng_);
  }

  /// The dream phase: negatives for a data batch, by the configured initialisation and chain.
  ChainStats sample_negatives(const Array<T>& x_pos, Array<T>& x_neg) {
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
    return sampler_.run(x_neg, rng_);
  }

  /// The surrogate L(θ) for given x⁺ and x⁻ on tape t; its θ-gradient is the CD estimate of
  /// ∇θ NLL (plus the regulariser). Also reports mean E(x⁺) and mean E(x⁻).
  Var<T> loss(Tape<T>& t, const Array<T>& x_pos, const Array<T>& x_neg,
              CdStepStats* stats = nullptr) {
    Var<T> e_pos = energy_(t, t.input(x_pos)), e_neg = energy_(t, t.input(x_neg));
    Var<T> wake = mean(e_pos), dream = mean(e_neg);
    Var<T> l = wake - dream;
    if (opt_o_.alpha != 0) l = l + T(opt_o_.alpha) * (mean(square(e_pos)) + mean(square(e_neg)));
    if (stats) {
      stats->e_pos = double(wake.item());
      stats->e_neg = double(dream.item());
      stats->loss = double(l.item());
      bool finite = std::all_of(e_pos.value().begin(), e_pos.value().end(),
                                [](T v) { return std::isfinite(v); }) &&
                    std::all_of(e_neg.value().begin(), e_neg.value().end(),
                                [](T v) { return std::isfinite(v); });
      if (!finite || !std::isfinite(stats->loss) || std::abs(stats->loss) > opt_o_.loss_bound)
        throw DivergenceError(fmt::format(
            "training diverged at step {}: loss {:.6g}, mean E(x+) {:.6g}, mean E(x-) {:.6g} "
            "(non-finite energies or |loss| > {:g})",
            step_ + 1, stats->loss, stats->e_pos, stats->e_neg, opt_o_.loss_bound));
    }
    return l;
  }

  /// One CD step on a data batch x⁺ [n, d].
  CdStepStats step(const Array<T>& x_pos) {
    CdStepStats s;
    s.chain = sample_negatives(x_pos, x_neg_);
    tape_.clear();
    Var<T> l = loss(tape_, x_pos, x_neg_, &s);  // throws before any state changes
    opt_.zero_grad();
    tape_.backward(l, {}, params_);
    double g2 = 0;
    for (auto* p : params_)
      for (T v : p->grad) g2 += double(v) * double(v);
    s.grad_norm = std::sqrt(g2);
    if (!std::isfinite(s.grad_norm))
      throw DivergenceError(
          fmt::format("training diverged at step {}: non-finite gradient", step_ + 1));
    opt_.step();
    if (buffer_) buffer_->update(x_neg_);
    ++step_;
    return s;
  }

  /// Everything needed to continue this run exactly: parameters, optimizer state, chains, the
  /// generator and the step count.
  Checkpoint checkpoint() const {
    Checkpoint c;
    for (auto* p : params_) c.put("param/" + p->name, p->value);
    for (auto& [name, a] : opt_.state()) c.put("optim/" + name, *a);
    c.integers["optim/steps"] = std::uint64_t(opt_.steps());
    if (buffer_) c.put("chains", buffer_->chains());
    Rng::State st = rng_.state();
    for (int k = 0; k < 4; ++k) c.integers[fmt::format("rng/s{}", k)] = st.s[k];
    c.integers["step"] = std::uint64_t(step_);
    return c;
  }
  void restore(const Checkpoint& c) {
    for (auto* p : params_) c.get("param/" + p->name, p->value);
    for (auto& [name, a] : opt_.state()) c.get("optim/" + name, *a);
    opt_.steps() = long(c.integer("optim/steps"));
    if (buffer_) c.get("chains", buffer_->chains());
    Rng::State st{};
    for (int k = 0; k < 4; ++k) st.s[k] = c.integer(fmt::format("rng/s{}", k));
    rng_.set_state(st);
    step_ = long(c.integer("step"));
  }

  Rng& rng() { return rng_; }
  long steps_done() const { return step_; }
  CdOptions& options() { return opt_o_; }
  Langevin<T>& sampler() { return sampler_; }
  const Array<T>& last_negatives() const { return x_neg_; }

 private:
  Energy<T>& energy_;
  Optimizer<T>& opt_;
  CdOptions opt_o_;
  std::vector<Parameter<T>*> params_;  // the energy's, fetched once
  Rng rng_;
  Langevin<T> sampler_;
  std::size_t dim_;
  std::optional<ReplayBuffer<T>> buffer_;
  Tape<T> tape_;
  Array<T> x_neg_;
  long step_ = 0;
};

}  // namespace ebl
