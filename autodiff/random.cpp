#include "autodiff/random.hpp"

#include <cmath>

namespace ebl {
namespace {
__extension__ typedef unsigned __int128 u128;
std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

Rng::Rng(std::uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

void Rng::jump() {
  static constexpr std::uint64_t kJump[4] = {0x180ec6d33cfd0aba, 0xd5a61266f0c9392c,
                                             0xa9582618e03fc9aa, 0x39abdc4529b1661c};
  std::uint64_t t[4] = {0, 0, 0, 0};
  for (std::uint64_t word : kJump)
    for (int b = 0; b < 64; ++b) {
      if (word & (std::uint64_t(1) << b))
        for (int k = 0; k < 4; ++k) t[k] ^= s_[k];
      next_u64();
    }
  for (int k = 0; k < 4; ++k) s_[k] = t[k];
}

std::uint64_t Rng::below(std::uint64_t n) {
  if (n == 0) return 0;
  // Lemire (2019): the high word of x*n is uniform on [0, n) once the biased low range is rejected.
  u128 m = static_cast<u128>(next_u64()) * n;
  auto low = static_cast<std::uint64_t>(m);
  if (low < n) {
    const std::uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<u128>(next_u64()) * n;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::uint64_t>(m >> 64);
}

// The ziggurat method (Marsaglia & Tsang 2000) in Doornik's formulation ("An improved ziggurat
// method to generate normal random samples", 2005): 128 strips of equal area V under
// f(x) = exp(-x²/2); a draw is one 64-bit number in 98.8% of cases (53 bits for u, 7 independent
// bits for the strip), with exp() only near the strip edges and the Marsaglia tail beyond R.
namespace detail {
namespace {
ZigguratTables make_ziggurat() {
  constexpr int kStrips = ZigguratTables::strips;
  constexpr double kR = ZigguratTables::r, kV = 9.91256303526217e-3;  // R and the strips' area
  ZigguratTables z{};
  double f = std::exp(-0.5 * kR * kR);
  z.x[0] = kV / f;
  z.x[1] = kR;
  z.x[kStrips] = 0;
  for (int i = 2; i < kStrips; ++i) {
    z.x[i] = std::sqrt(-2 * std::log(kV / z.x[i - 1] + f));
    f = std::exp(-0.5 * z.x[i] * z.x[i]);
  }
  for (int i = 0; i < kStrips; ++i) z.ratio[i] = z.x[i + 1] / z.x[i];
  return z;
}
}  // namespace
const ZigguratTables kZiggurat = make_ziggurat();
}  // namespace detail

double Rng::normal_slow(std::uint64_t bits) {
  const auto& z = detail::kZiggurat;
  constexpr double kR = detail::ZigguratTables::r;
  for (;;) {
    const double u = 2 * (static_cast<double>(bits >> 11) * 0x1.0p-53) - 1;
    const int i = static_cast<int>(bits & (detail::ZigguratTables::strips - 1));
    if (std::abs(u) < z.ratio[i]) return u * z.x[i];  // (the redrawn case of the loop below)
    if (i == 0) {  // the base strip's tail beyond R (Marsaglia 1964)
      double t, y;
      do {
        t = std::log(1 - uniform()) / kR;
        y = std::log(1 - uniform());
      } while (-2 * y < t * t);
      return u < 0 ? t - kR : kR - t;
    }
    const double xx = u * z.x[i];  // the wedge between the rectangle and the curve
    const double f0 = std::exp(-0.5 * (z.x[i] * z.x[i] - xx * xx));
    const double f1 = std::exp(-0.5 * (z.x[i + 1] * z.x[i + 1] - xx * xx));
    if (f1 + uniform() * (f0 - f1) < 1.0) return xx;
    bits = next_u64();
  }
}

}  // namespace ebl
