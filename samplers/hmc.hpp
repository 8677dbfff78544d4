// Hamiltonian Monte Carlo (Duane et al. 1987; Neal 2011). With potential U(x) = E(x)/T and
// momentum p ~ N(0, I), H(x, p) = U(x) + ½‖p‖². Each iteration draws p, runs L leapfrog steps
//     p ← p - (ε/2)∇U(x);  [x ← x + εp;  p ← p - ε∇U(x)] × L (the last momentum step halved)
// and accepts the end point with probability min(1, exp(H(x,p) - H(x',p'))), chain by chain.
#pragma once

#include <cmath>

#include "samplers/common.hpp"

namespace ebl {

/// HMC's options.
struct HmcOptions {
  int steps = 100;           ///< HMC iterations
  int leapfrog_steps = 10;   ///< L
  double step_size = 0.1;    ///< ε
  double temperature = 1.0;  ///< T
};

/// Hamiltonian Monte Carlo with an identity mass matrix: L leapfrog steps of size ε from a fresh
/// Gaussian momentum, then a Metropolis correction on the Hamiltonian.
template <class T>
class Hmc {
 public:
  /// A sampler for the energy function `energy`; throws on invalid options.
  Hmc(EnergyFn<T> energy, HmcOptions opt) : eval_(std::move(energy)), opt_(opt) {
    if (!(opt_.step_size > 0) || !(opt_.temperature > 0) || opt_.leapfrog_steps < 1)
      throw std::invalid_argument(
          "HMC: step size and temperature must be > 0, leapfrog steps >= 1");
  }

  /// Runs the chains x [n, d] in place; `observe` sees the states after every iteration.
  ChainStats run(Array<T>& x, Rng& rng, const Observer<T>& observe = {}) {
    ChainStats stats;
    const std::size_t n = x.shape()[0], d = x.size() / std::max<std::size_t>(n, 1);
    const double eps = opt_.step_size, inv_t = 1 / opt_.temperature;
    eval_(x, e_, g_);
    ++stats.gradient_evals;
    for (int it = 0; it < opt_.steps; ++it) {
      poll_interrupt();
      stats.record(e_, g_);
      p_.resize(x.shape());
      for (auto& v : p_) v = T(rng.normal());
      h0_.assign(n, 0);
      for (std::size_t i = 0; i < n; ++i) {
        double k = 0;
        for (std::size_t j = i * d; j < (i + 1) * d; ++j)
          k += double(p_.data()[j]) * double(p_.data()[j]);
        h0_[i] = double(e_(i)) * inv_t + 0.5 * k;
      }
      xn_ = x;
      gn_ = g_;
      for (std::size_t j = 0; j < x.size(); ++j)
        p_.data()[j] -= T(0.5 * eps * inv_t * double(gn_.data()[j]));
      for (int l = 0; l < opt_.leapfrog_steps; ++l) {
        poll_interrupt();  // (a trajectory can be long; the chains keep the last accepted state)
        for (std::size_t j = 0; j < x.size(); ++j) xn_.data()[j] += T(eps) * p_.data()[j];
        eval_(xn_, en_, gn_);
        ++stats.gradient_evals;
        const double w = l + 1 < opt_.leapfrog_steps ? eps : 0.5 * eps;
        for (std::size_t j = 0; j < x.size(); ++j)
          p_.data()[j] -= T(w * inv_t * double(gn_.data()[j]));
      }
      for (std::size_t i = 0; i < n; ++i) {
        double k = 0;
        for (std::size_t j = i * d; j < (i + 1) * d; ++j)
          k += double(p_.data()[j]) * double(p_.data()[j]);
        double h1 = double(en_(i)) * inv_t + 0.5 * k;
        ++stats.proposals;
        if (std::log(rng.uniform()) < h0_[i] - h1) {  // NaN (a diverged trajectory) is rejected
          ++stats.accepted;
          accept_chain(i, d, xn_, gn_, en_, x, g_, e_);
        }
      }
      if (observe) observe(x, e_);
    }
    stats.finish();
    return stats;
  }

 private:
  EnergyGrad<T> eval_;
  HmcOptions opt_;
  Array<T> e_, g_, p_, xn_, gn_, en_;
  std::vector<double> h0_;
};

}  // namespace ebl
