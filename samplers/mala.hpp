// Metropolis-adjusted Langevin (MALA; Roberts & Tweedie 1996). The Langevin step is a proposal
//     x' = x - ε ∇E(x) + √(2εT) ξ,   q(x'|x) = N(x'; x - ε∇E(x), 2εT I),
// accepted with probability min(1, π(x') q(x|x') / (π(x) q(x'|x))), π ∝ exp(-E/T), chain by
// chain. The stationary law is exactly π for any step size; the acceptance rate tells whether ε
// is too large.
#pragma once

#include <cmath>

#include "samplers/common.hpp"

namespace ebl {

/// MALA's options.
struct MalaOptions {
  int steps = 100;           ///< iterations per run()
  double step_size = 0.01;   ///< ε of the Langevin proposal
  double temperature = 1.0;  ///< T: the target is exp(−E/T)
};

/// The Metropolis-adjusted Langevin algorithm: a Langevin step as the proposal, accepted by
/// Metropolis–Hastings, so its draws are exact for exp(−E/T) at any step size.
template <class T>
class Mala {
 public:
  /// A sampler for the energy function `energy`; throws on invalid options.
  Mala(EnergyFn<T> energy, MalaOptions opt) : eval_(std::move(energy)), opt_(opt) {
    if (!(opt_.step_size > 0) || !(opt_.temperature > 0))
      throw std::invalid_argument("MALA: step size and temperature must be > 0");
  }

  /// Runs the chains x [n, d] in place for opt.steps steps; `observe` sees every step's states.
  ChainStats run(Array<T>& x, Rng& rng, const Observer<T>& observe = {}) {
    ChainStats stats;
    const std::size_t n = x.shape()[0], d = x.size() / std::max<std::size_t>(n, 1);
    const double eps = opt_.step_size, temp = opt_.temperature, noise = std::sqrt(2 * eps * temp);
    eval_(x, e_, g_);
    ++stats.gradient_evals;
    y_.resize(x.shape());
    for (int t = 0; t < opt_.steps; ++t) {
      poll_interrupt();
      stats.record(e_, g_);
      for (std::size_t k = 0; k < x.size(); ++k)
        y_.data()[k] = T(double(x.data()[k]) - eps * double(g_.data()[k]) + noise * rng.normal());
      eval_(y_, ey_, gy_);
      ++stats.gradient_evals;
      for (std::size_t i = 0; i < n; ++i) {
        // log q(x|y) - log q(y|x), each -‖to - from + ε∇E(from)‖² / 4εT
        double fwd = 0, bwd = 0;
        for (std::size_t k = i * d; k < (i + 1) * d; ++k) {
          double xk = x.data()[k], yk = y_.data()[k];
          double a = yk - xk + eps * double(g_.data()[k]),
                 b = xk - yk + eps * double(gy_.data()[k]);
          fwd += a * a;
          bwd += b * b;
        }
        double log_alpha =
            -(double(ey_(i)) - double(e_(i))) / temp - (bwd - fwd) / (4 * eps * temp);
        ++stats.proposals;
        if (std::log(rng.uniform()) < log_alpha) {
          ++stats.accepted;
          accept_chain(i, d, y_, gy_, ey_, x, g_, e_);
        }
      }
      if (observe) observe(x, e_);
    }
    stats.finish();
    return stats;
  }

 private:
  EnergyGrad<T> eval_;
  MalaOptions opt_;
  Array<T> e_, g_, y_, ey_, gy_;
};

}  // namespace ebl
