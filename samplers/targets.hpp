// Closed-form targets whose answers are known, for validating and comparing samplers beyond
// Gaussians (each an EnergyFn on the tape, so every sampler runs on it as on a learned energy):
//
//   mixture of isotropic Gaussians   E(x) = −log Σ_k w_k N(x; μ_k, σ_k² I)     (normalised: Z = 1)
//       separated modes: the exact mode weights are the w_k;
//   banana (Haario, Saksman & Tamminen 1999, a Rosenbrock-like twist of a Gaussian)
//       x₁ ~ N(0, a²),  x₂ | x₁ ~ N(b (x₁² − a²), 1)
//       E(x) = x₁² / 2a² + (x₂ − b(x₁² − a²))² / 2;  mean 0, Var x₁ = a², Var x₂ = 1 + 2a⁴b²,
//       Cov(x₁, x₂) = 0 (x₂'s mean is even in x₁);
//   Neal's funnel (Neal 2003), d dimensions
//       v ~ N(0, s²),  x_i | v ~ N(0, e^v), i = 1 … d−1
//       E(v, x) = v² / 2s² + e^{−v} Σ x_i² / 2 + (d − 1) v / 2;  v's mean 0, sd s;
//       the neck (v ≪ 0) needs steps e^{v/2} times smaller than the mouth.
#pragma once

#include <cmath>
#include <numbers>
#include <numeric>
#include <vector>

#include "samplers/common.hpp"

namespace ebl {

/// A mixture of isotropic Gaussians in d dimensions: means[k] (size d), sd[k], weight[k] (> 0,
/// normalised here).
struct GaussianMixture {
  std::vector<std::vector<double>> means;  ///< the components' means, d each
  std::vector<double> sd;                  ///< the components' standard deviations
  std::vector<double> weight;              ///< the mixture weights, normalised

  /// Checks and normalises: one mean, sd and weight per component, all > 0.
  GaussianMixture(std::vector<std::vector<double>> m, std::vector<double> s, std::vector<double> w)
      : means(std::move(m)), sd(std::move(s)), weight(std::move(w)) {
    if (means.empty() || sd.size() != means.size() || weight.size() != means.size())
      throw std::invalid_argument(
          "GaussianMixture: means, sds and weights must have one entry each");
    for (const auto& mu : means)
      if (mu.size() != means[0].size())
        throw std::invalid_argument("GaussianMixture: means of different dimensions");
    const double total = std::accumulate(weight.begin(), weight.end(), 0.0);
    for (std::size_t k = 0; k < weight.size(); ++k)
      if (!(weight[k] > 0) || !(sd[k] > 0))
        throw std::invalid_argument("GaussianMixture: weights and sds must be > 0");
    for (double& wk : weight) wk /= total;
  }
  /// The dimension d.
  std::size_t dim() const { return means[0].size(); }
  /// The number of components.
  std::size_t components() const { return means.size(); }

  /// E(x) = −log p(x) on the tape: x [n, d] -> [n]. With ‖x − μ_k‖² = ‖x‖² − 2xμ_kᵀ + ‖μ_k‖²,
  /// one product x Mᵀ for all components, then a logsumexp over them.
  template <class T>
  EnergyFn<T> energy() const {
    const std::size_t K = components(), d = dim();
    Array<T> mu(Shape{K, d}), inv2s2(Shape{K}), c(Shape{K});
    for (std::size_t k = 0; k < K; ++k) {
      double sq = 0;
      for (std::size_t j = 0; j < d; ++j) {
        mu(k, j) = T(means[k][j]);
        sq += means[k][j] * means[k][j];
      }
      inv2s2(k) = T(1 / (2 * sd[k] * sd[k]));
      // log w_k − d log σ_k − (d/2) log 2π − ‖μ_k‖² / 2σ_k²
      c(k) = T(std::log(weight[k]) - double(d) * std::log(sd[k]) -
               0.5 * double(d) * std::log(2 * std::numbers::pi) - sq / (2 * sd[k] * sd[k]));
    }
    return [mu, inv2s2, c](Tape<T>& t, Var<T> x) {
      Var<T> xx = sum(square(x), 1, true);                 // [n, 1]
      Var<T> xm = matmul(x, t.constant(mu), false, true);  // [n, K]
      Var<T> s = t.constant(inv2s2);
      // log w_k N(x; μ_k, σ_k²) = c_k + (2 x·μ_k − ‖x‖²) / 2σ_k²
      Var<T> a = t.constant(c) + (xm * T(2) - xx) * s;
      return neg(logsumexp(a, 1));
    };
  }

  /// The component whose mean is nearest to x (the mode a draw belongs to, for well separated
  /// components).
  template <class T>
  std::size_t nearest(const T* x) const {
    std::size_t best = 0;
    double best_d = INFINITY;
    for (std::size_t k = 0; k < components(); ++k) {
      double s = 0;
      for (std::size_t j = 0; j < dim(); ++j)
        s += (double(x[j]) - means[k][j]) * (double(x[j]) - means[k][j]);
      if (s < best_d) best_d = s, best = k;
    }
    return best;
  }
};

/// The banana: E = x₁²/2a² + (x₂ − b(x₁² − a²))²/2 (see the file's comment for its moments).
template <class T>
EnergyFn<T> banana_energy(double a = 1.0, double b = 1.0) {
  return [a, b](Tape<T>& t, Var<T> x) {
    (void)t;
    const std::size_t i0[] = {0}, i1[] = {1};
    Var<T> x1 = cols(x, std::span<const std::size_t>(i0)),
           x2 = cols(x, std::span<const std::size_t>(i1));
    Var<T> x1sq = square(x1);
    Var<T> e = x1sq * T(1 / (2 * a * a)) + square(x2 - (x1sq - T(a * a)) * T(b)) * T(0.5);
    return sum(e, 1);
  };
}

/// Neal's funnel in d ≥ 2 dimensions, x = (v, x₁, …, x_{d−1}), v ~ N(0, s²).
template <class T>
EnergyFn<T> funnel_energy(std::size_t d, double s = 3.0) {
  if (d < 2) throw std::invalid_argument("funnel_energy: need d >= 2");
  std::vector<std::size_t> rest(d - 1);
  std::iota(rest.begin(), rest.end(), std::size_t(1));
  return [rest, d, s](Tape<T>& t, Var<T> x) {
    (void)t;
    const std::size_t i0[] = {0};
    Var<T> v = cols(x, std::span<const std::size_t>(i0));  // [n, 1]
    Var<T> r = cols(x, std::span<const std::size_t>(rest));
    Var<T> e = square(v) * T(1 / (2 * s * s)) + sum(square(r), 1, true) * exp(neg(v)) * T(0.5) +
               v * T(0.5 * double(d - 1));
    return sum(e, 1);
  };
}

}  // namespace ebl
