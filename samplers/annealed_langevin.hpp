// Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1), the sampler of noise-conditional
// score models (NCSN; EDP-GNN for graphs, Niu et al. 2020): for noise levels σ_1 > ... > σ_L and
// a noise-conditional energy E(x, σ_i) whose score −∇ₓE approximates ∇ log q_σi, the data law
// convolved with N(0, σ_i² I),
//
//   for i = 1..L:   α_i = ε σ_i² / σ_L²
//     T times:      x ← x − (α_i / 2) ∇ₓE(x, σ_i) + τ_i √α_i z,   z ~ N(0, I)
//
// with τ_i = 1 (Song & Ermon's algorithm). τ_i < 1 is EDP-GNN's noise scale ("eps" in its
// sampler, 0.5 for community-small): level i's chain then targets q_σi^(1/τ_i²), the smoothed
// law at temperature τ_i², which concentrates the chains on its modes. One τ may serve every
// level, or each level gets its own (sharpened at the large levels, which settle a sample's
// overall shape, and τ = 1 at the small ones, which settle its details).
//
// and optionally Tweedie's denoising step at the end (Song & Ermon 2020, Jolicoeur-Martineau et
// al. 2021): x ← x − σ_L² ∇ₓE(x, σ_L), the posterior mean E[x₀ | x] under the smallest noise,
// which removes the σ_L noise the chains still carry.
//
// A mask (1 free, 0 fixed, one per coordinate) keeps coordinates where they are: padding that is
// not part of a sample (the absent nodes' pairs of a graph) gets neither drift nor noise.
//
// Check (tests/test_annealed_langevin.cpp): for E(x, σ) = ‖x − μ‖² / 2v, v = s² + σ², the
// discretised chain is an AR(1) whose stationary variance is v / (1 − α / 4v) exactly; the
// denoised output has variance s⁴ / v.
#pragma once

#include <cmath>
#include <cstddef>
#include <functional>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "samplers/common.hpp"

namespace ebl {

/// Annealed Langevin's settings (Song & Ermon 2019's ε and T).
struct AnnealedLangevinOptions {
  double epsilon = 2e-5;    ///< ε: the step at the smallest level (α_L = ε)
  std::size_t steps = 100;  ///< T: steps per noise level
  bool denoise = true;      ///< Tweedie's final step x ← x − σ_L² ∇E(x, σ_L)
  /// τ_i, the noise's scale per level: none (1 at every level, Song & Ermon), one for every
  /// level (EDP-GNN: 0.5), or one per level
  std::vector<double> noise_scales = {};
};

/// The energy at noise level i (0-based, σ_0 the largest) as an EnergyFn.
template <class T>
using LevelEnergy = std::function<EnergyFn<T>(std::size_t level)>;

/// Runs annealed Langevin on the chains x [n, d] in place, from σ_0 (the largest) down to
/// σ_{L−1}; mask, if given, is [n, d] with 1 where a coordinate moves and 0 where it stays.
template <class T>
void annealed_langevin(const LevelEnergy<T>& energy, const std::vector<double>& sigmas,
                       const AnnealedLangevinOptions& o, Array<T>& x, Rng& rng,
                       const Array<T>* mask = nullptr) {
  if (sigmas.empty()) throw std::invalid_argument("annealed Langevin: no noise level");
  for (std::size_t i = 0; i < sigmas.size(); ++i)
    if (!(sigmas[i] > 0) || (i > 0 && !(sigmas[i] < sigmas[i - 1])))
      throw std::invalid_argument(
          fmt::format("annealed Langevin: the noise levels must be positive and decreasing (σ_{} "
                      "= {})",
                      i, sigmas[i]));
  if (!(o.epsilon > 0)) throw std::invalid_argument("annealed Langevin: ε must be positive");
  const std::vector<double>& tau = o.noise_scales;
  if (tau.size() > 1 && tau.size() != sigmas.size())
    throw std::invalid_argument(fmt::format(
        "annealed Langevin: {} noise scales for {} levels (give none, one, or one per level)",
        tau.size(), sigmas.size()));
  for (double v : tau)
    if (!(v >= 0) || !std::isfinite(v))
      throw std::invalid_argument(
          fmt::format("annealed Langevin: a noise scale τ must be finite and ≥ 0 (got {})", v));
  if (x.dimension() != 2)
    throw ShapeError(
        fmt::format("annealed Langevin: chains {} are not [n, d]", shape_str(x.shape())));
  if (mask && mask->shape() != x.shape())
    throw ShapeError(fmt::format("annealed Langevin: mask {} does not match the chains {}",
                                 shape_str(mask->shape()), shape_str(x.shape())));
  const double last = sigmas.back();
  Array<T> e, g;
  for (std::size_t i = 0; i < sigmas.size(); ++i) {
    EnergyGrad<T> grad(energy(i));
    const double a = o.epsilon * sigmas[i] * sigmas[i] / (last * last),
                 noise = (tau.empty() ? 1.0 : tau[tau.size() == 1 ? 0 : i]) * std::sqrt(a);
    for (std::size_t s = 0; s < o.steps; ++s) {
      grad(x, e, g);
      for (std::size_t k = 0; k < x.size(); ++k) {
        const double m = mask ? double(mask->data()[k]) : 1.0;
        x.data()[k] += T(m * (-0.5 * a * double(g.data()[k]) + noise * rng.normal()));
      }
    }
  }
  if (o.denoise) {
    EnergyGrad<T> grad(energy(sigmas.size() - 1));
    grad(x, e, g);
    for (std::size_t k = 0; k < x.size(); ++k) {
      const double m = mask ? double(mask->data()[k]) : 1.0;
      x.data()[k] -= T(m * last * last * double(g.data()[k]));
    }
  }
}

/// σ_1 > ... > σ_L spaced geometrically from hi down to lo (NCSN's schedule).
inline std::vector<double> geometric_sigmas(double hi, double lo, std::size_t levels) {
  if (!(hi > lo) || !(lo > 0) || levels < 2)
    throw std::invalid_argument(fmt::format(
        "geometric noise levels: need hi > lo > 0 and at least two levels (got {}, {}, {})", hi, lo,
        levels));
  std::vector<double> s(levels);
  for (std::size_t i = 0; i < levels; ++i)
    s[i] = hi * std::pow(lo / hi, double(i) / double(levels - 1));
  return s;
}

}  // namespace ebl
