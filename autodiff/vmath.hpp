// Elementwise exp and the logistic sigmoid over contiguous arrays, written as plain loops without
// branches or calls so that the compiler vectorises them: AVX2 under the build's -march=x86-64-v3,
// and AVX-512 where the CPU has it (vmath.cpp compiles each loop for both; see Isa below).
//
// Why not xt::exp: through xsimd it is fast in float (~0.4 ns an element here) but takes
// ~2.5 ns an element in double (these loops: 1.25 ns), and the SiLU activations of an MLP
// energy evaluate one exp per hidden unit per sample per Langevin step; in float64 that was a
// third of a CD step at the small size.
//
// The method (Cody & Waite 1980; Tang 1989), for x clamped to the range where exp is neither 0
// nor inf plus a margin:
//   n = round(x / ln 2),   r = (x - n ln2_hi) - n ln2_lo      (|r| <= ln 2 / 2; n ln2_hi exact)
//   e^r by a polynomial: in double of degree 12, fitted to e^r on [-h, h], h = ln 2 / 2
//       (Chebyshev interpolation, mpmath.chebyfit(exp, [-h, h], 13), coefficients rounded to
//       double: relative error 4.5e-19); in float its Taylor series to degree 8, whose first
//       omitted term is h^9 / 9! < 2e-10, below half an ulp. (Double's Taylor series needs
//       degree 13, one multiply-add more; the degree-11 fit, 1.7e-17, cost accuracy: 0.95 ulp.)
//   e^x = e^r 2^n1 2^n2 with n1 = round(n/2), n2 = n - n1: two power-of-two factors built from
//   exponent bits, so that subnormal results and overflow to inf come out of the multiplications.
// Rounding to an integer is the classic v + 1.5·2^52 - 1.5·2^52 (1.5·2^23 in float), which also
// leaves the integer in the low bits of v + 1.5·2^52; it needs IEEE arithmetic (no -ffast-math).
// Accuracy (tests/test_vmath.cpp, against exp in long double over the whole range): within
// 1 ulp (0.86 measured in double, 0.85 in float); +inf gives inf, -inf gives 0, NaN gives NaN.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace ebl {

namespace detail {
template <class T>
struct ExpConstants;
template <>
struct ExpConstants<double> {
  using Bits = std::uint64_t;
  static constexpr double lo = -746.0, hi = 710.0;  // exp(lo) = 0, exp(hi) = inf, as doubles
  static constexpr double sig_lo = -708.0;          // exp(sig_lo) is normal
  static constexpr double log2e = 1.4426950408889634, shifter = 0x1.8p52;
  static constexpr double ln2_hi = 0x1.62e42fefa3800p-1, ln2_lo = 0x1.ef35793c7673p-45;
  static constexpr int mantissa = 52, bias = 1023;
  // p(r) ~ e^r, coefficients of r^12 down to r^0 (see the top of this file)
  static constexpr double poly[] = {0x1.1f8b43f2637adp-29,
                                    0x1.af785d433f066p-26,
                                    0x1.27e4cc1847a65p-22,
                                    0x1.71dde76ab2f81p-19,
                                    0x1.a01a01adc27e2p-16,
                                    0x1.a01a01b80226cp-13,
                                    0x1.6c16c16c14d77p-10,
                                    0x1.111111110db76p-7,
                                    0x1.5555555555559p-5,
                                    0x1.5555555555562p-3,
                                    0x1.0p-1,
                                    0x1.0p+0,
                                    0x1.0p+0};
};
template <>
struct ExpConstants<float> {
  using Bits = std::uint32_t;
  static constexpr float lo = -104.0f, hi = 89.0f;
  static constexpr float sig_lo = -86.0f;
  static constexpr float log2e = 1.44269504f, shifter = 0x1.8p23f;
  static constexpr float ln2_hi = 0x1.62e400p-1f, ln2_lo = 0x1.7f7d1cp-20f;
  static constexpr int mantissa = 23, bias = 127;
  // the Taylor series, 1/8!, 1/7!, ..., 1/1!, 1/0!, each rounded from the one before / k
  static constexpr std::array<float, 9> poly = [] {
    std::array<float, 9> c{};
    float inv_factorial = 1;
    for (int k = 0; k <= 8; ++k) {
      if (k > 0) inv_factorial = float(double(inv_factorial) / double(k));
      c[std::size_t(8 - k)] = inv_factorial;
    }
    return c;
  }();
};

// p(r) for the coefficients c (highest degree first) by Horner's rule, (c_0 r + c_1) r + ...,
// unrolled at compile time: one multiply-add per degree.
template <class T, std::size_t... K>
inline T horner(T r, std::index_sequence<K...>) {
  constexpr const auto& c = ExpConstants<T>::poly;
  T p = c[0];
  ((p = p * r + c[K + 1]), ...);
  return p;
}

// The shared first half of both exps: x clamped to [lo, hi], n = round(x / ln 2) and
// p = e^r for r = x - n ln 2, so that e^x = p 2^n.
template <class T>
inline void reduce(T x, T lo, T hi, T& n, T& p) {
  using C = ExpConstants<T>;
  x = x < lo ? lo : x;  // (NaN compares false both times and passes through)
  x = x > hi ? hi : x;
  const T t = x * C::log2e + C::shifter;
  n = t - C::shifter;  // round(x / ln 2), as a T
  const T r = (x - n * C::ln2_hi) - n * C::ln2_lo;
  p = horner<T>(r, std::make_index_sequence<std::size(C::poly) - 1>{});
}

// 2^(n + offset) for an integer-valued n with n + offset in the normal exponent range: n + offset
// + bias lands in the low bits of n + (shifter + offset + bias), and a left shift moves it into
// the exponent field (kept in floating point, because AVX2 has no 64-bit arithmetic shift or
// double-to-int64 conversion).
template <class T>
inline T pow2(T n, int offset = 0) {
  using C = ExpConstants<T>;
  using U = typename C::Bits;
  return std::bit_cast<T>(
      U(std::bit_cast<U>(n + (C::shifter + (C::bias + offset))) << C::mantissa));
}

// e^x for one element; inlined into the loops below, where it vectorises.
// lo and hi are the clamp bounds, passed in (see exp_bounds) rather than read from C.
template <class T>
inline T exp_one(T x, T lo, T hi) {
  using C = ExpConstants<T>;
  T n, p;
  reduce(x, lo, hi, n, p);
  // 2^n as 2^n1 2^n2 with n1 = round(n/2), n2 = n - n1, each in the normal range
  const T n1 = (n * T(0.5) + C::shifter) - C::shifter, n2 = n - n1;
  return p * pow2(n1) * pow2(n2);
}
// e^x for the logistic function, where results below the normal range do not matter (1 + e^x
// rounds to 1 there): x is clamped below at sig_lo (e^x ~ 3e-308, or 4e-38 in float), which lets
// one power of two do the scaling, e^x = (2 e^r) 2^(n-1), two operations fewer than exp_one.
// Exact scalings both, so wherever the result is normal or overflows it equals exp_one's.
template <class T>
inline T exp_for_sigmoid(T x, T lo, T hi) {
  T n, p;
  reduce(x, lo, hi, n, p);
  return (p * T(2)) * pow2(n, -1);
}

// The clamp bounds, hidden from the optimiser: were they constants, GCC would fold the clamped
// path of exp_one into its own branch, and a loop with a branch does not vectorise.
template <class T>
inline void exp_bounds(T& lo, T& hi, bool for_sigmoid = false) {
  lo = for_sigmoid ? ExpConstants<T>::sig_lo : ExpConstants<T>::lo;
  hi = ExpConstants<T>::hi;
  asm("" : "+x"(lo), "+x"(hi));
}
}  // namespace detail

/// The instruction sets the kernels below are compiled for. The library is built for x86-64-v3
/// (AVX2, FMA); where the CPU also has AVX-512 (x86-64-v4: F, BW, CD, DQ, VL) the same loops,
/// compiled a second time for it, run on 512-bit vectors (on this machine, an AMD EPYC, 1.4 -> 1.0
/// ns an element for SiLU in double). Both perform the same IEEE operations element by element,
/// so their results are bit-identical (tested): which one runs changes speed only.
enum class Isa { X86_64_v3, X86_64_v4 };
/// The best the CPU running this has; the default of every kernel.
Isa best_isa();
const char* isa_name(Isa isa);

/// y[i] = e^x[i]; y may alias x.
template <class T>
void vexp(const T* x, T* y, std::size_t n, Isa isa = best_isa());

/// y[i] = σ(x[i]) = 1 / (1 + e^-x[i]); y may alias x. Saturates to exactly 0 and 1.
template <class T>
void vsigmoid(const T* x, T* y, std::size_t n, Isa isa = best_isa());

/// SiLU's forward in one pass: s[i] = σ(x[i]) (kept for the VJP) and y[i] = x[i] s[i].
template <class T>
void vsilu(const T* x, T* s, T* y, std::size_t n, Isa isa = best_isa());

/// SiLU's VJP from the saved s = σ(x): g[i] = s[i] (1 + x[i] (1 - s[i])) gy[i], written to ga
/// (accumulate = false) or added to it (accumulate = true).
template <class T>
void vsilu_vjp(const T* s, const T* x, const T* gy, T* ga, std::size_t n, bool accumulate,
               Isa isa = best_isa());

}  // namespace ebl
