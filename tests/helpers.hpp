// Shared test helpers: the Catch2 wrapper around the library's gradient checker, and seeded
// random inputs.
#pragma once

#include <algorithm>
#include <cmath>

#include <catch2/catch.hpp>

#include "autodiff/gradcheck.hpp"
#include "autodiff/random.hpp"

namespace ebl::test {

using V = Var<double>;
using TD = Tape<double>;
using In = std::span<const V>;

/// Every op, loss and energy test checks its gradients through this one call.
inline void expect_gradients(const GradcheckFn& f, std::vector<Array<double>> inputs,
                             std::vector<Parameter<double>*> params = {},
                             const GradcheckOptions& opt = {}) {
  GradcheckReport r = gradcheck(f, std::move(inputs), params, opt);
  INFO(r.str());
  CHECK(r.ok);
  CHECK(r.checked > 0);
}

/// Same shape and bit-identical values. (A function, because Catch's expression decomposition
/// and xtensor's comparison operators collide inside CHECK.)
template <class T>
bool same(const Array<T>& a, const Array<T>& b) {
  return a.shape() == b.shape() && std::equal(a.begin(), a.end(), b.begin());
}
template <class T>
bool all_equal(const Array<T>& a, T v) {
  return std::all_of(a.begin(), a.end(), [v](T x) { return x == v; });
}

inline Array<double> randn(const Shape& s, std::uint64_t seed) {
  Rng rng(seed);
  return rng.normal_array<double>(s);
}

/// Normal draws pushed at least `gap` away from zero, to keep finite differences off a kink.
inline Array<double> randn_off_zero(const Shape& s, std::uint64_t seed, double gap = 0.1) {
  Array<double> a = randn(s, seed);
  for (auto& v : a) v = v >= 0 ? v + gap : v - gap;
  return a;
}

inline Array<double> uniform(const Shape& s, std::uint64_t seed, double lo, double hi) {
  Rng rng(seed);
  return rng.uniform_array<double>(s, lo, hi);
}

/// max_e |a_e - b_e| / (1e-12 + |a_e|): how far b strays from a reference a, relatively.
inline double max_rel_diff(const Array<double>& a, const Array<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (std::size_t e = 0; e < a.size(); ++e)
    worst = std::max(worst, std::abs(a.data()[e] - b.data()[e]) / (1e-12 + std::abs(a.data()[e])));
  return worst;
}

/// max_e |a_e - b_e| / max_e |a_e|: how far b strays from a, relative to a's largest element.
/// For two evaluations of the same sums in different blockings (a GEMM split over threads, or
/// OpenBLAS's kernels on different block sizes), which may round differently: an element that
/// nearly cancels can differ by many times its own size, never by much of the whole array's.
inline double max_scaled_diff(const Array<double>& a, const Array<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0, scale = 0;
  for (std::size_t e = 0; e < a.size(); ++e) {
    worst = std::max(worst, std::abs(a.data()[e] - b.data()[e]));
    scale = std::max(scale, std::abs(a.data()[e]));
  }
  return worst / std::max(scale, 1e-300);
}

}  // namespace ebl::test
