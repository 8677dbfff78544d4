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
#include <cmath>
#include <string>

#include "samplers/common.hpp"

namespace ebl {

enum class StepSchedule { Constant, Linear, Geometric };

struct LangevinOptions {
  int steps = 20;
  double step_size = 0.01;   ///< ε at the first step
  double temperature = 1.0;  ///< T: noise variance 2εT
  double grad_clip = 0;      ///< clip each component of ∇x E to [-c, c]; 0 = off
  bool clamp = false;        ///< clamp x to [lo, hi] after every step
  double lo = -1, hi = 1;
  StepSchedule schedule = StepSchedule::Constant;
  double final_step_size = 0;  ///< ε at the last step for the Linear and Geometric schedules

  /// ε at step t of `steps`
  double step_at(int t) const {
    if (schedule == StepSchedule::Constant || steps <= 1) return step_size;
    double f = double(t) / double(steps - 1);
    if (schedule == StepSchedule::Linear) return step_size + f * (final_step_size - step_size);
    return step_size * std::pow(final_step_size / step_size, f);
  }
};

template <class T>
class Langevin {
 public:
  Langevin(EnergyFn<T> energy, LangevinOptions opt) : eval_(std::move(energy)), opt_(opt) {
    if (!(opt_.step_size > 0) || opt_.temperature < 0 || opt_.steps < 0)
      throw std::invalid_argument("Langevin: step size must be > 0, temperature >= 0, steps >= 0");
    if (opt_.schedule == StepSchedule::Geometric && !(opt_.final_step_size > 0))
      throw std::invalid_argument("Langevin: a geometric schedule needs final_step_size > 0");
  }

  /// Runs the chains x [n, d] in place for opt.steps steps.
  ChainStats run(Array<T>& x, Rng& rng) {
    ChainStats stats;
    for (int t = 0; t < opt_.steps; ++t) {
      eval_(x, energy_, grad_);
      stats.record(energy_, grad_);
      const double eps = opt_.step_at(t);
      const T noise = T(std::sqrt(2 * eps * opt_.temperature)), step = T(eps);
      const T c = T(opt_.grad_clip);
      T* xs = x.data();
      const T* g = grad_.data();
      for (std::size_t e = 0; e < x.size(); ++e) {
        T ge = c > 0 ? std::clamp(g[e], -c, c) : g[e];
        xs[e] += -step * ge + noise * T(rng.normal());
        if (opt_.clamp) xs[e] = std::clamp(xs[e], T(opt_.lo), T(opt_.hi));
      }
    }
    stats.finish();
    return stats;
  }

  LangevinOptions& options() { return opt_; }

 private:
  EnergyGrad<T> eval_;
  LangevinOptions opt_;
  Array<T> energy_, grad_;
};

}  // namespace ebl
