// Samplers on binary spaces for any energy on the tape: each row of a [chains, d] array is one
// chain. (The Ising model's own samplers, which read its local fields and clusters, are in
// ebm/ising_samplers.hpp.)
//
//   binary_gibbs          single-site Gibbs for any energy on the tape (an MLP on {0,1}^d, say):
//                         each update compares E(x) with E(x with bit i flipped), one batched
//                         evaluation per site
//   gibbs_with_gradients  Grathwohl, Swersky, Hashemi, Duvenaud & Maddison (ICML 2021): the flip
//                         of bit i proposed with probability q(i | x) = softmax(d̃(x)/2)_i, where
//                         d̃_i = Δx_i · ∂f/∂x_i is the first-order change of f = −E from flipping
//                         i (Δx_i = 1 − 2x_i for bits, −2s_i for spins), read from one gradient on
//                         the tape; accepted with min(1, e^{f(x') − f(x)} q(i | x') / q(i | x)).
//                         One energy-and-gradient evaluation per step (the accepted state's are
//                         kept).
#pragma once

#include <cmath>
#include <numeric>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "autodiff/interrupt.hpp"
#include "autodiff/random.hpp"
#include "samplers/common.hpp"

namespace ebl {

/// The order of single-site updates in a sweep.
enum class Scan {
  Random,      ///< n sites drawn uniformly with replacement
  Systematic,  ///< sites 0, 1, …, n−1 in turn
};

/// How a binary state is written: spins ±1 or bits 0/1.
enum class BinaryDomain {
  Spins,  ///< s ∈ {−1, +1}
  Bits,   ///< x ∈ {0, 1}
};

namespace discrete_detail {
inline double flipped(double x, BinaryDomain d) {
  return d == BinaryDomain::Spins ? -x : 1 - x;
}
inline double sigmoid(double a) {
  return 1 / (1 + std::exp(-a));
}
}  // namespace discrete_detail

/// `sweeps` sweeps of single-site Gibbs for any energy E(x) of rows x [chains, d] on the tape:
/// for each site, E of every chain with that site flipped is evaluated in one batch, and the
/// site takes the flipped value with probability σ(E(x) − E(x')). Returns the energy
/// evaluations made (batches count once per row).
inline std::size_t binary_gibbs(const EnergyFn<double>& energy, Array<double>& x, int sweeps,
                                Scan scan, BinaryDomain domain, Rng& rng) {
  if (x.dimension() != 2 || x.shape()[0] == 0 || x.shape()[1] == 0)
    throw std::invalid_argument(
        fmt::format("binary_gibbs: states [chains, d] needed, got {}", shape_str(x.shape())));
  const std::size_t chains = x.shape()[0], d = x.shape()[1];
  EnergyGrad<double> eval(energy);
  Array<double> e_now, e_flip, x_flip;
  std::size_t evaluations = 0;
  eval.energy(x, e_now);
  evaluations += chains;
  for (int sw = 0; sw < sweeps; ++sw) {
    poll_interrupt();
    for (std::size_t k = 0; k < d; ++k) {
      // one site per chain (random scan: each chain its own site)
      std::vector<std::size_t> site(chains);
      for (std::size_t r = 0; r < chains; ++r) site[r] = scan == Scan::Random ? rng.below(d) : k;
      x_flip = x;
      for (std::size_t r = 0; r < chains; ++r)
        x_flip(r, site[r]) = discrete_detail::flipped(x(r, site[r]), domain);
      eval.energy(x_flip, e_flip);
      evaluations += chains;
      for (std::size_t r = 0; r < chains; ++r)
        if (rng.uniform() < discrete_detail::sigmoid(e_now(r) - e_flip(r))) {
          x(r, site[r]) = x_flip(r, site[r]);
          e_now(r) = e_flip(r);
        }
    }
  }
  return evaluations;
}

/// What a Gibbs-with-gradients run did.
struct GwgStats {
  std::size_t proposed = 0;     ///< flips proposed (one per chain per step)
  std::size_t accepted = 0;     ///< flips accepted
  std::size_t evaluations = 0;  ///< energy-and-gradient evaluations, per row
  /// accepted / proposed.
  double acceptance() const { return proposed ? double(accepted) / double(proposed) : 0.0; }
};

/// `steps` steps of Gibbs-with-gradients (see the top of this file) on every chain of x
/// [chains, d], for any energy on the tape.
inline GwgStats gibbs_with_gradients(const EnergyFn<double>& energy, Array<double>& x, int steps,
                                     BinaryDomain domain, Rng& rng) {
  if (x.dimension() != 2 || x.shape()[0] == 0 || x.shape()[1] == 0)
    throw std::invalid_argument(fmt::format(
        "gibbs_with_gradients: states [chains, d] needed, got {}", shape_str(x.shape())));
  const std::size_t chains = x.shape()[0], d = x.shape()[1];
  EnergyGrad<double> eval(energy);
  GwgStats st;
  Array<double> e, g, e_new, g_new;
  eval(x, e, g);
  st.evaluations += chains;
  // log q(· | state) for one chain: softmax of d̃/2, d̃_i = Δx_i · ∂f/∂x_i = −Δx_i ∂E/∂x_i
  std::vector<double> logq(d), logq_new(d);
  auto proposal = [&](const double* xs, const double* grad, std::vector<double>& out) {
    double mx = -INFINITY;
    for (std::size_t i = 0; i < d; ++i) {
      const double delta = discrete_detail::flipped(xs[i], domain) - xs[i];
      out[i] = -0.5 * delta * grad[i];
      mx = std::max(mx, out[i]);
    }
    double z = 0;
    for (double v : out) z += std::exp(v - mx);
    const double lz = mx + std::log(z);
    for (double& v : out) v -= lz;
  };
  Array<double> x_new = x;
  std::vector<std::size_t> site(chains);
  std::vector<double> log_fwd(chains);
  for (int s = 0; s < steps; ++s) {
    poll_interrupt();
    x_new = x;
    for (std::size_t r = 0; r < chains; ++r) {
      proposal(x.data() + r * d, g.data() + r * d, logq);
      double u = rng.uniform(), acc = 0;  // draw i from q by inverting its distribution
      std::size_t i = 0;
      for (; i + 1 < d; ++i) {
        acc += std::exp(logq[i]);
        if (u < acc) break;
      }
      site[r] = i;
      log_fwd[r] = logq[i];
      x_new(r, i) = discrete_detail::flipped(x(r, i), domain);
    }
    eval(x_new, e_new, g_new);
    st.evaluations += chains;
    for (std::size_t r = 0; r < chains; ++r) {
      proposal(x_new.data() + r * d, g_new.data() + r * d, logq_new);
      const double log_a = (e(r) - e_new(r)) + logq_new[site[r]] - log_fwd[r];
      ++st.proposed;
      if (std::log(rng.uniform()) < log_a) {
        accept_chain(r, d, x_new, g_new, e_new, x, g, e);
        ++st.accepted;
      }
    }
  }
  return st;
}

}  // namespace ebl
