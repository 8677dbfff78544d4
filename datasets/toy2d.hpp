// 2-D toy datasets, drawn from the project's generator, with their true log-density where it is
// known: in closed form (8 gaussians, checkerboard, rings) or as a 1-D integral along the
// generating curve, computed by the midpoint rule with nodes spaced well under the noise scale
// (two spirals, two moons). Pinwheel's density has no tractable form here and is left unknown.
// Every set lies within [-3, 3]², so a grid over [-4, 4]² holds all but a negligible mass.
#pragma once

#include <cmath>
#include <functional>
#include <limits>
#include <numbers>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "autodiff/random.hpp"

namespace ebl::toy2d {

constexpr double kPi = std::numbers::pi;

/// A toy 2-D set: how to draw from it, and its log-density where it is known.
struct Dataset {
  std::string name;                                       ///< as dataset() names it
  std::function<void(Rng&, double& x, double& y)> draw;   ///< one sample
  std::function<double(double x, double y)> log_density;  ///< empty when unknown
};

namespace detail {
inline double log_normal_2d(double dx, double dy, double s) {
  return -(dx * dx + dy * dy) / (2 * s * s) - std::log(2 * kPi * s * s);
}
// log ∫_0^1 N(x; c(t), s²I) dt by the midpoint rule over t, in a stable log-sum-exp
template <class Curve>
double log_curve_density(double x, double y, double s, Curve c, int nodes = 1000) {
  std::vector<double> l(nodes);
  double m = -INFINITY;
  for (int i = 0; i < nodes; ++i) {
    auto [cx, cy] = c((i + 0.5) / nodes);
    l[i] = log_normal_2d(x - cx, y - cy, s);
    m = std::max(m, l[i]);
  }
  double sum = 0;
  for (double v : l) sum += std::exp(v - m);
  return m + std::log(sum / nodes);
}
inline double log_add(double a, double b) {
  double m = std::max(a, b);
  return m == -INFINITY ? m : m + std::log(std::exp(a - m) + std::exp(b - m));
}
}  // namespace detail

/// Eight Gaussians of standard deviation 0.25 at radius 2 (the proportions of FFJORD's toy set:
/// std/radius = 1/8, so that Langevin chains at T = 1 can still cross between the modes).
inline Dataset eight_gaussians() {
  constexpr double r = 2.0, s = 0.25;
  Dataset d{"8gaussians", {}, {}};
  d.draw = [](Rng& rng, double& x, double& y) {
    double a = double(rng.below(8)) * kPi / 4;
    x = r * std::cos(a) + s * rng.normal();
    y = r * std::sin(a) + s * rng.normal();
  };
  d.log_density = [](double x, double y) {
    double l = -INFINITY;
    for (int k = 0; k < 8; ++k)
      l = detail::log_add(l, detail::log_normal_2d(x - r * std::cos(k * kPi / 4),
                                                   y - r * std::sin(k * kPi / 4), s));
    return l - std::log(8.0);
  };
  return d;
}

/// Uniform on the 8 "black" unit squares of a 4×4 checkerboard over [-2, 2]²; density 1/8 there.
inline Dataset checkerboard() {
  Dataset d{"checkerboard", {}, {}};
  d.draw = [](Rng& rng, double& x, double& y) {
    std::uint64_t k = rng.below(8);  // square k: column k/2, row 2(k%2) + parity of the column
    double col = double(k / 2), row = double(2 * (k % 2) + (k / 2) % 2);
    x = -2 + col + rng.uniform();
    y = -2 + row + rng.uniform();
  };
  d.log_density = [](double x, double y) {
    constexpr double none = -std::numeric_limits<double>::infinity();
    if (x < -2 || x >= 2 || y < -2 || y >= 2) return none;
    long c = long(std::floor(x + 2)), r = long(std::floor(y + 2));
    return (c + r) % 2 == 0 ? -std::log(8.0) : none;
  };
  return d;
}

/// Three rings of radius 0.75, 1.5, 2.25 (equal weight), radial noise 0.08, uniform angle:
/// p(x) = Σ_k ⅓ N(|x|; R_k, 0.08²) / (2π|x|). (r < 0 has probability < 1e-20 and is ignored.)
inline Dataset rings() {
  constexpr double s = 0.08;
  static constexpr double radii[3] = {0.75, 1.5, 2.25};
  Dataset d{"rings", {}, {}};
  d.draw = [](Rng& rng, double& x, double& y) {
    double r = radii[rng.below(3)] + s * rng.normal(), a = 2 * kPi * rng.uniform();
    x = r * std::cos(a);
    y = r * std::sin(a);
  };
  d.log_density = [](double x, double y) {
    double r = std::hypot(x, y), l = -INFINITY;
    for (double rk : radii)
      l = detail::log_add(l, -(r - rk) * (r - rk) / (2 * s * s) - 0.5 * std::log(2 * kPi * s * s));
    return l - std::log(3.0) - std::log(2 * kPi * r);
  };
  return d;
}

namespace detail {
// Two arms c_k(t), t ~ U[0, 1], k ~ U{0, 1}, plus isotropic Gaussian noise s:
// p(x) = ½ Σ_k ∫_0^1 N(x; c_k(t), s²I) dt.
template <class Arm>
Dataset two_arm_dataset(std::string name, double s, Arm arm) {
  Dataset d{std::move(name), {}, {}};
  d.draw = [arm, s](Rng& rng, double& x, double& y) {
    auto [cx, cy] = arm(int(rng.below(2)), rng.uniform());
    x = cx + s * rng.normal();
    y = cy + s * rng.normal();
  };
  d.log_density = [arm, s](double x, double y) {
    double l0 = log_curve_density(x, y, s, [&](double t) { return arm(0, t); });
    double l1 = log_curve_density(x, y, s, [&](double t) { return arm(1, t); });
    return log_add(l0, l1) - std::log(2.0);
  };
  return d;
}
}  // namespace detail

/// Two interleaved spirals (1.5 turns each, radius 0.25 → 2.5), Gaussian noise 0.1.
inline Dataset two_spirals() {
  return detail::two_arm_dataset("2spirals", 0.1, [](int k, double t) {
    double r = 0.25 + 2.25 * t, a = 3 * kPi * t + k * kPi;
    return std::pair{r * std::cos(a), r * std::sin(a)};
  });
}

/// Two moons (scikit-learn's construction), centred and scaled by 1.5, Gaussian noise 0.1.
inline Dataset two_moons() {
  return detail::two_arm_dataset("moons", 0.1, [](int k, double t) {
    constexpr double scale = 1.5;
    double a = kPi * t;
    double x = k == 0 ? std::cos(a) : 1 - std::cos(a), y = k == 0 ? std::sin(a) : 0.5 - std::sin(a);
    return std::pair{scale * (x - 0.5), scale * (y - 0.25)};
  });
}

/// Pinwheel (5 arms; the construction of FFJORD's toy data: radial N(1, 0.3²), tangential
/// N(0, 0.1²), each arm rotated by 0.25·exp(radius)), scaled by 1.2. Density unknown here.
inline Dataset pinwheel() {
  Dataset d{"pinwheel", {}, {}};
  d.draw = [](Rng& rng, double& x, double& y) {
    double a = 1 + 0.3 * rng.normal(), b = 0.1 * rng.normal();
    double ang = double(rng.below(5)) * 2 * kPi / 5 + 0.25 * std::exp(a);
    x = 1.2 * (a * std::cos(ang) - b * std::sin(ang));
    y = 1.2 * (a * std::sin(ang) + b * std::cos(ang));
  };
  return d;
}

inline std::vector<std::string> dataset_names() {
  return {"8gaussians", "2spirals", "checkerboard", "rings", "moons", "pinwheel"};
}

inline Dataset dataset(const std::string& name) {
  if (name == "8gaussians") return eight_gaussians();
  if (name == "2spirals") return two_spirals();
  if (name == "checkerboard") return checkerboard();
  if (name == "rings") return rings();
  if (name == "moons") return two_moons();
  if (name == "pinwheel") return pinwheel();
  throw std::invalid_argument(fmt::format(
      "unknown dataset '{}' (expected 8gaussians, 2spirals, checkerboard, rings, moons, pinwheel)",
      name));
}

/// n samples as an [n, 2] array.
template <class T>
Array<T> sample(const Dataset& d, std::size_t n, Rng& rng) {
  Array<T> a = Array<T>::from_shape({n, 2});
  for (std::size_t i = 0; i < n; ++i) {
    double x, y;
    d.draw(rng, x, y);
    a(i, 0) = T(x);
    a(i, 1) = T(y);
  }
  return a;
}

/// The data's own NLL per sample, -mean log p(x_i), if the density is known.
template <class T>
std::optional<double> true_nll(const Dataset& d, const Array<T>& x) {
  if (!d.log_density) return std::nullopt;
  double s = 0;
  for (std::size_t i = 0; i < x.shape()[0]; ++i)
    s += d.log_density(double(x(i, 0)), double(x(i, 1)));
  return -s / double(x.shape()[0]);
}

}  // namespace ebl::toy2d
