// The project's seeded random number generator.
//
// One explicit generator is passed to everything that draws (initialisers, samplers, data
// shuffles); there is no global random state. The engine is xoshiro256++ (Blackman & Vigna,
// 2019) seeded through splitmix64, and the uniform and normal draws are our own code over it, so
// the same seed gives the same numbers with any C++ standard library (whose distributions are
// implementation-defined).
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "autodiff/array.hpp"

namespace ebl {

namespace detail {
// The ziggurat's 128 strips of equal area under exp(-x²/2) (Doornik 2005): x[i] the strips'
// right edges (x[0] the base strip's virtual width), ratio[i] = x[i+1] / x[i]. Built in random.cpp.
struct ZigguratTables {
  static constexpr int strips = 128;
  static constexpr double r = 3.442619855899;  // where the tail begins
  double x[strips + 1], ratio[strips];
};
extern const ZigguratTables kZiggurat;
}  // namespace detail

/// The library's generator: xoshiro256** (Blackman & Vigna), seeded through splitmix64, with
/// ziggurat normals. Every run takes an explicit, seeded Rng: the same seed, the same stream.
class Rng {
 public:
  /// The stream of `seed` (its four words filled by splitmix64).
  explicit Rng(std::uint64_t seed = 0);

  /// 64 random bits (xoshiro256++). Inline: samplers call it once per coordinate.
  std::uint64_t next_u64() { return next(s_); }
  /// Uniform on [0, 1), 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Uniform integer in [0, n), unbiased (Lemire's multiply-and-reject).
  std::uint64_t below(std::uint64_t n);
  /// A uniformly random permutation of 0..n-1 (Fisher–Yates, from the last position down).
  std::vector<std::size_t> permutation(std::size_t n) {
    std::vector<std::size_t> p(n);
    for (std::size_t i = 0; i < n; ++i) p[i] = i;
    for (std::size_t i = n; i-- > 1;) std::swap(p[i], p[below(i + 1)]);
    return p;
  }
  /// Standard normal by the ziggurat method (Marsaglia & Tsang 2000; Doornik 2005). The common
  /// case (98.8%: the draw falls inside its strip's rectangle) is inline; the rest is not.
  double normal() {
    const std::uint64_t bits = next_u64();
    double z;
    return normal_fast(bits, z) ? z : normal_slow(bits);
  }
  /// Normal with the given mean and standard deviation.
  double normal(double mean, double stddev) { return mean + stddev * normal(); }
  /// True with probability p.
  bool bernoulli(double p) { return uniform() < p; }

  /// Arrays of draws.
  template <class T>
  Array<T> normal_array(const Shape& shape, double mean = 0, double stddev = 1) {
    Array<T> a(shape);
    for (auto& v : a) v = static_cast<T>(normal(mean, stddev));
    return a;
  }
  /// An array of the given shape, uniform in [lo, hi), filled in element order.
  template <class T>
  Array<T> uniform_array(const Shape& shape, double lo = 0, double hi = 1) {
    Array<T> a(shape);
    for (auto& v : a) v = static_cast<T>(uniform(lo, hi));
    return a;
  }
  /// Fill an existing array in place (no allocation).
  template <class T>
  void fill_normal(Array<T>& a, double mean = 0, double stddev = 1) {
    fill_normal(a.data(), a.size(), mean, stddev);
  }
  /// The same numbers as n calls of normal(), faster: the state stays in local variables
  /// (registers) through the loop and goes back to the object only around the rare slow path,
  /// which draws from it (through `this`, which would otherwise keep the state in memory).
  template <class T>
  void fill_normal(T* a, std::size_t n, double mean = 0, double stddev = 1) {
    std::uint64_t s[4] = {s_[0], s_[1], s_[2], s_[3]};
    for (std::size_t k = 0; k < n; ++k) {
      const std::uint64_t bits = next(s);
      double z;
      if (!normal_fast(bits, z)) {
        std::copy_n(s, 4, s_);
        z = normal_slow(bits);
        std::copy_n(s_, 4, s);
      }
      a[k] = static_cast<T>(mean + stddev * z);
    }
    std::copy_n(s, 4, s_);
  }

  /// The complete state, for checkpoints: restoring it continues the stream exactly.
  struct State {
    std::uint64_t s[4];  ///< xoshiro256**'s four words
  };
  /// The current state.
  State state() const { return {{s_[0], s_[1], s_[2], s_[3]}}; }
  /// Refuses the all-zero state: xoshiro256** never leaves it (every draw would be 0).
  void set_state(const State& st) {
    if ((st.s[0] | st.s[1] | st.s[2] | st.s[3]) == 0)
      throw std::invalid_argument("Rng::set_state: the all-zero state is not a generator state");
    for (int k = 0; k < 4; ++k) s_[k] = st.s[k];
  }

  /// A generator for an independent stream, derived from this one's next output.
  Rng split() { return Rng(next_u64()); }

  /// Advances the state by 2^128 draws (xoshiro256's jump polynomial, Blackman & Vigna): the
  /// streams Rng(s), Rng(s).jump(), Rng(s).jump().jump(), … never overlap in 2^128 draws each,
  /// which is how a data-parallel run gives every rank its own stream from one seed.
  void jump();

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  /// One step of xoshiro256++ on the state s.
  static std::uint64_t next(std::uint64_t (&s)[4]) {
    const std::uint64_t result = rotl(s[0] + s[3], 23) + s[0];
    const std::uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
  /// The ziggurat's common case for the 64 bits of a draw: z = u x[i] if the draw falls inside
  /// strip i's rectangle (returns true), else false (normal_slow takes it from there).
  static bool normal_fast(std::uint64_t bits, double& z) {
    const double u = 2 * (static_cast<double>(bits >> 11) * 0x1.0p-53) - 1;  // uniform on [-1, 1)
    const int i = static_cast<int>(bits & (detail::ZigguratTables::strips - 1));  // 7 other bits
    z = u * detail::kZiggurat.x[i];
    return std::abs(u) < detail::kZiggurat.ratio[i];
  }
  double normal_slow(std::uint64_t bits);  // the wedges and the tail, starting from this draw
  std::uint64_t s_[4];
};

}  // namespace ebl
