// Learning energies over binary vectors (spins ±1 or bits 0/1), with or without their
// partition function. For data rows x and x^{−i} (x with bit i flipped):
//
//   exact maximum likelihood   ∇θ NLL = E_data[∇θ E] − E_model[∇θ E], the model term exact:
//                              for an Ising model, ∂NLL/∂J_e = E_model[s_i s_j] − mean s_i s_j
//                              (ising_exact, or the transfer matrix on a lattice)
//   pseudo-likelihood          −Σ_i log p(x_i | x_{−i}) = Σ_i softplus(E(x) − E(x^{−i}))
//                              (Besag 1975): each conditional needs only E at x and at x^{−i}
//   ratio matching             Σ_i g(p(x)/p(x^{−i}))², g(u) = 1/(1 + u), i.e.
//                              Σ_i σ(E(x) − E(x^{−i}))² (Hyvärinen 2007): score matching's
//                              counterpart for binary data, also free of Z
//   noise-contrastive est.     log p_m(x) = −E(x) − c with c learned, and a noise law q:
//                              −mean_data log σ(G) − ν mean_noise log σ(−G),
//                              G(u) = log p_m(u) − log ν q(u) (Gutmann & Hyvärinen 2010): a
//                              logistic regression of data against ν times as much noise; at its
//                              optimum c = log Z
//   persistent CD              mean E(data) − mean E(chains), the chains moved by a discrete
//                              sampler between steps
//
// The single-flip losses evaluate E on d·B flipped rows per batch of B: one batched tape pass.
#pragma once

#include <cmath>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/optim.hpp"
#include "ebm/energy.hpp"
#include "ebm/ising.hpp"
#include "ebm/ising_samplers.hpp"
#include "ebm/objectives.hpp"
#include "samplers/discrete.hpp"

namespace ebl {

/// Rows [d·B, d]: row i·B + b is x_b with bit i flipped (x [B, d]).
inline Array<double> single_flips(const Array<double>& x, BinaryDomain domain) {
  if (x.dimension() != 2 || x.shape()[0] == 0 || x.shape()[1] == 0)
    throw std::invalid_argument(
        fmt::format("single_flips: rows [B, d] needed, got {}", shape_str(x.shape())));
  const std::size_t B = x.shape()[0], d = x.shape()[1];
  Array<double> f(Shape{d * B, d});
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t b = 0; b < B; ++b) {
      std::copy_n(x.data() + b * d, d, f.data() + (i * B + b) * d);
      const double v = x(b, i);
      f(i * B + b, i) = domain == BinaryDomain::Spins ? -v : 1 - v;
    }
  return f;
}

namespace discrete_training_detail {
// E(x^{−i}) − E(x) on the tape, as [d, B] (or [B, d] for an Ising model: the losses only sum)
inline Var<double> flip_gaps(Tape<double>& t, Energy<double>& energy, const Array<double>& x,
                             BinaryDomain domain) {
  if (auto* ising = dynamic_cast<Ising*>(&energy); ising && domain == BinaryDomain::Spins)
    return ising->flip_gaps(t, t.input(x));  // [B, d]: the local fields, no flipped copies
  const std::ptrdiff_t B = std::ptrdiff_t(x.shape()[0]), d = std::ptrdiff_t(x.shape()[1]);
  Var<double> e = reshape(energy(t, t.input(x)), {1, B});
  Var<double> ef = reshape(energy(t, t.input(single_flips(x, domain))), {d, B});
  return ef - e;
}
}  // namespace discrete_training_detail

/// Pseudo-likelihood loss: mean over rows of Σ_i softplus(E(x) − E(x^{−i})) (on the tape).
inline Var<double> pseudo_likelihood_loss(Tape<double>& t, Energy<double>& energy,
                                          const Array<double>& x, BinaryDomain domain) {
  Var<double> gap = discrete_training_detail::flip_gaps(t, energy, x, domain);
  return sum(softplus(neg(gap))) * (1.0 / double(x.shape()[0]));
}

/// Ratio-matching loss: mean over rows of Σ_i σ(E(x) − E(x^{−i}))² (on the tape).
inline Var<double> ratio_matching_loss(Tape<double>& t, Energy<double>& energy,
                                       const Array<double>& x, BinaryDomain domain) {
  Var<double> gap = discrete_training_detail::flip_gaps(t, energy, x, domain);
  return sum(square(sigmoid(neg(gap)))) * (1.0 / double(x.shape()[0]));
}

/// Exact average negative log-likelihood of spin rows under an Ising model, given its log Z.
inline double ising_average_nll(const Ising& m, const Array<double>& s, double log_z) {
  if (s.dimension() != 2 || s.shape()[1] != m.nodes() || s.shape()[0] == 0)
    throw std::invalid_argument(fmt::format("ising_average_nll: spins [n, {}] needed, got {}",
                                            m.nodes(), shape_str(s.shape())));
  double e = 0;
  for (std::size_t r = 0; r < s.shape()[0]; ++r) e += m.energy(s.data() + r * m.nodes());
  return e / double(s.shape()[0]) + log_z;
}

/// Exact quantities by the cheaper exact route: enumeration up to 20 nodes, else the transfer
/// matrix (lattices only).
inline IsingExact ising_exact_any(const Ising& m) {
  if (m.nodes() <= 20) return ising_exact(m);
  if (m.graph().rows > 0) return ising_transfer_matrix(m);
  throw std::invalid_argument(
      fmt::format("ising_exact_any: {} nodes off a lattice are too many to enumerate", m.nodes()));
}

/// The learning methods of DiscreteTrainer.
enum class DiscreteMethod {
  ExactMle,          ///< exact maximum likelihood (Ising models only)
  PseudoLikelihood,  ///< Besag's pseudo-likelihood
  RatioMatching,     ///< Hyvärinen's ratio matching
  Nce,               ///< noise-contrastive estimation against independent bits (data marginals)
  Pcd,               ///< persistent contrastive divergence with a discrete sampler
};

/// The samplers persistent CD can use.
enum class DiscreteSampler {
  Gibbs,         ///< single-site Gibbs, random scan (Ising: local fields; else on the tape)
  Gwg,           ///< Gibbs-with-gradients
  Checkerboard,  ///< two-colour block Gibbs (Ising on a bipartite graph)
  SwendsenWang,  ///< Swendsen–Wang (ferromagnetic Ising: learning projects the couplings to J ≥ 0)
};

/// Options of DiscreteTrainer.
struct DiscreteTrainOptions {
  DiscreteMethod method = DiscreteMethod::Pcd;       ///< what is minimised
  DiscreteSampler sampler = DiscreteSampler::Gibbs;  ///< persistent CD's sampler
  BinaryDomain domain = BinaryDomain::Spins;         ///< how the data's states are written
  double lr = 0.01;                                  ///< Adam's learning rate
  std::size_t chains = 100;                          ///< persistent CD's chains
  /// Persistent CD's moves per step: sweeps of Gibbs, checkerboard or Swendsen–Wang, or steps of
  /// Gibbs-with-gradients (one proposed flip per chain each).
  int sampler_steps = 1;
  double noise_ratio = 1.0;  ///< NCE's ν: noise rows per data row
  /// NCE's noise: P(bit i = 1), or P(s_i = +1), per unit (bit_marginals of the training data).
  std::vector<double> noise_marginals{};
};

/// The fraction of rows with bit i on (1, or +1 for spins), per unit, kept inside
/// [1/(n+2), (n+1)/(n+2)] (add-one smoothing): a noise law that covers every state.
inline std::vector<double> bit_marginals(const Array<double>& x) {
  const std::size_t n = x.shape()[0], d = x.shape()[1];
  std::vector<double> p(d, 0.0);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t i = 0; i < d; ++i) p[i] += x(r, i) > 0.5 ? 1.0 : 0.0;
  for (double& v : p) v = (v + 1) / (double(n) + 2);
  return p;
}

/// Trains an energy over binary vectors by one of the DiscreteMethods with Adam. The exact
/// method and the Ising samplers (checkerboard, Swendsen–Wang, and the local-field Gibbs) need
/// the energy to be the Ising model `ising`; the others take any energy.
class DiscreteTrainer {
 public:
  /// Trains `energy` (which must be *ising when that is given) with options o, from seed.
  DiscreteTrainer(Energy<double>& energy, const DiscreteTrainOptions& o, std::uint64_t seed,
                  Ising* ising = nullptr)
      : log_z("log_z", Array<double>(Shape{1}, 0.0)),
        energy_(energy),
        ising_(ising),
        o_(o),
        rng_(seed),
        opt_(params(), {.lr = o.lr}) {
    const bool needs_ising =
        o.method == DiscreteMethod::ExactMle ||
        (o.method == DiscreteMethod::Pcd && (o.sampler == DiscreteSampler::Checkerboard ||
                                             o.sampler == DiscreteSampler::SwendsenWang));
    if (needs_ising && !ising)
      throw std::invalid_argument(
          "DiscreteTrainer: exact MLE, checkerboard and Swendsen-Wang need an Ising model");
    if (ising && &energy != static_cast<Energy<double>*>(ising))
      throw std::invalid_argument("DiscreteTrainer: the Ising model must be the energy trained");
    if ((ising || needs_ising) && o.domain != BinaryDomain::Spins)
      throw std::invalid_argument("DiscreteTrainer: the Ising model's states are spins");
    if (o.method == DiscreteMethod::Nce && (o.noise_marginals.empty() || !(o.noise_ratio > 0)))
      throw std::invalid_argument("DiscreteTrainer: NCE needs noise marginals and a ratio > 0");
    if (o.method == DiscreteMethod::Pcd && (o.chains == 0 || o.sampler_steps < 1))
      throw std::invalid_argument("DiscreteTrainer: persistent CD needs chains and moves");
  }

  /// One step on a batch of rows [B, d]; returns the loss (for exact MLE: the batch's NLL).
  double step(const Array<double>& batch) {
    if (batch.dimension() != 2 || batch.shape()[0] == 0)
      throw std::invalid_argument(fmt::format("DiscreteTrainer: a batch [B, d] is needed, got {}",
                                              shape_str(batch.shape())));
    const std::size_t B = batch.shape()[0], d = batch.shape()[1];
    opt_.zero_grad();
    double loss = 0;
    if (o_.method == DiscreteMethod::ExactMle) {
      const IsingExact x = ising_exact_any(*ising_);
      const auto& edges = ising_->graph().edges;
      for (std::size_t e = 0; e < edges.size(); ++e) {
        double data = 0;
        for (std::size_t r = 0; r < B; ++r)
          data += batch(r, edges[e].first) * batch(r, edges[e].second);
        ising_->J.grad(e) = x.correlation[e] - data / double(B);
      }
      for (std::size_t i = 0; i < d; ++i) {
        double data = 0;
        for (std::size_t r = 0; r < B; ++r) data += batch(r, i);
        ising_->h.grad(i) = x.magnetisation[i] - data / double(B);
      }
      loss = ising_average_nll(*ising_, batch, x.log_z);
    } else {
      tape_.clear();
      Var<double> l;
      switch (o_.method) {
        case DiscreteMethod::PseudoLikelihood:
          l = pseudo_likelihood_loss(tape_, energy_, batch, o_.domain);
          break;
        case DiscreteMethod::RatioMatching:
          l = ratio_matching_loss(tape_, energy_, batch, o_.domain);
          break;
        case DiscreteMethod::Nce: {
          const std::size_t m =
              std::max<std::size_t>(1, std::size_t(std::lround(o_.noise_ratio * double(B))));
          Array<double> y(Shape{m, d});
          for (std::size_t r = 0; r < m; ++r)
            for (std::size_t i = 0; i < d; ++i)
              y(r, i) = rng_.uniform() < o_.noise_marginals[i] ? 1.0 : off();
          const std::vector<double> lqy = noise_log_q(y);
          if (steps_ == 0) {  // c starts at the importance-sampling estimate of log Z from the
                              // noise: log mean e^{−E(y) − log q(y)}
            Tape<double> t0;
            const Array<double> ey = energy_(t0, t0.input(y)).value();
            double mx = -INFINITY, acc = 0;
            for (std::size_t r = 0; r < m; ++r) mx = std::max(mx, -ey(r) - lqy[r]);
            for (std::size_t r = 0; r < m; ++r) acc += std::exp(-ey(r) - lqy[r] - mx);
            log_z.value(0) = mx + std::log(acc / double(m));
          }
          l = nce_loss(tape_, energy_, tape_.param(log_z), batch, noise_log_q(batch), y, lqy);
          break;
        }
        default: {  // persistent CD
          if (chains.dimension() != 2 || chains.shape()[0] != o_.chains || chains.shape()[1] != d) {
            chains = Array<double>(Shape{o_.chains, d});
            for (auto& v : chains) v = rng_.uniform() < 0.5 ? 1.0 : off();
          }
          move_chains();
          l = mean(energy_(tape_, tape_.input(batch))) - mean(energy_(tape_, tape_.input(chains)));
        }
      }
      loss = double(l.item());
      if (!std::isfinite(loss))
        throw DivergenceError(fmt::format("DiscreteTrainer: non-finite loss ({})", loss));
      auto ps = params();
      tape_.backward(l, {}, std::span<Parameter<double>* const>(ps));
    }
    opt_.step();
    // Swendsen–Wang samples ferromagnets only: learning with it stays in that family, a
    // coupling the step took below 0 projected back to 0
    if (o_.method == DiscreteMethod::Pcd && o_.sampler == DiscreteSampler::SwendsenWang)
      for (auto& j : ising_->J.value) j = std::max(j, 0.0);
    ++steps_;
    return loss;
  }

  /// Steps taken.
  std::size_t steps_done() const { return steps_; }
  /// Sets Adam's learning rate (for a schedule).
  void set_lr(double lr) { opt_.options().lr = lr; }
  /// The trainer's generator.
  Rng& rng() { return rng_; }
  /// Energy evaluations (per row) made by persistent CD's sampler so far.
  std::size_t sampler_evaluations() const { return sampler_evals_; }

  /// NCE's c, the learned log Z (trained only by NCE; it starts at the importance-sampling
  /// estimate from the first noise batch)
  Parameter<double> log_z;
  Array<double> chains;  ///< persistent CD's chains [chains, d] (made on the first step)

 private:
  std::vector<Parameter<double>*> params() {
    auto ps = energy_.parameters();
    if (o_.method == DiscreteMethod::Nce) ps.push_back(&log_z);
    return ps;
  }
  double off() const { return o_.domain == BinaryDomain::Spins ? -1.0 : 0.0; }
  std::vector<double> noise_log_q(const Array<double>& x) const {
    std::vector<double> lq(x.shape()[0], 0.0);
    for (std::size_t r = 0; r < x.shape()[0]; ++r)
      for (std::size_t i = 0; i < x.shape()[1]; ++i)
        lq[r] += std::log(x(r, i) > 0.5 ? o_.noise_marginals[i] : 1 - o_.noise_marginals[i]);
    return lq;
  }
  void move_chains() {
    const std::size_t n = chains.shape()[0], d = chains.shape()[1];
    EnergyFn<double> f = [this](Tape<double>& t, Var<double> x) { return energy_(t, x); };
    switch (o_.sampler) {
      case DiscreteSampler::Gibbs:
        if (ising_) {
          ising_gibbs(*ising_, chains, o_.sampler_steps, Scan::Random, rng_);
          sampler_evals_ += n * d * std::size_t(o_.sampler_steps);  // one local field per site
        } else {
          sampler_evals_ +=
              binary_gibbs(f, chains, o_.sampler_steps, Scan::Random, o_.domain, rng_);
        }
        break;
      case DiscreteSampler::Gwg:
        sampler_evals_ +=
            gibbs_with_gradients(f, chains, o_.sampler_steps, o_.domain, rng_).evaluations;
        break;
      case DiscreteSampler::Checkerboard:
        ising_checkerboard(*ising_, chains, o_.sampler_steps, rng_);
        sampler_evals_ += n * d * std::size_t(o_.sampler_steps);
        break;
      case DiscreteSampler::SwendsenWang:
        swendsen_wang(*ising_, chains, o_.sampler_steps, rng_);
        sampler_evals_ += n * d * std::size_t(o_.sampler_steps);
        break;
    }
  }

  Energy<double>& energy_;
  Ising* ising_;
  DiscreteTrainOptions o_;
  Rng rng_;
  Adam<double> opt_;
  Tape<double> tape_;
  std::size_t steps_ = 0, sampler_evals_ = 0;
};

}  // namespace ebl
