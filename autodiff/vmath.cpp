// The elementwise kernels of vmath.hpp, each compiled twice: for the build's x86-64-v3 and, in a
// function with GCC's target attribute, for x86-64-v4 (AVX-512). A loop body is written once, as
// an always-inline template, and inlined into both; best_isa() picks one at run time.
#include "autodiff/vmath.hpp"

namespace ebl {

namespace {

#define EBL_ALWAYS_INLINE [[gnu::always_inline]] inline
#define EBL_TARGET_V4 [[gnu::target("arch=x86-64-v4")]]

template <class T>
EBL_ALWAYS_INLINE void exp_loop(const T* x, T* y, std::size_t n) {
  T lo, hi;
  detail::exp_bounds(lo, hi);
  for (std::size_t i = 0; i < n; ++i) y[i] = detail::exp_one(x[i], lo, hi);
}

template <class T>
EBL_ALWAYS_INLINE void sigmoid_loop(const T* x, T* y, std::size_t n) {
  T lo, hi;
  detail::exp_bounds(lo, hi, true);
  for (std::size_t i = 0; i < n; ++i) y[i] = T(1) / (T(1) + detail::exp_for_sigmoid(-x[i], lo, hi));
}

template <class T>
EBL_ALWAYS_INLINE void silu_loop(const T* x, T* s, T* y, std::size_t n) {
  T lo, hi;
  detail::exp_bounds(lo, hi, true);
  for (std::size_t i = 0; i < n; ++i) {
    const T si = T(1) / (T(1) + detail::exp_for_sigmoid(-x[i], lo, hi));
    s[i] = si;
    y[i] = x[i] * si;
  }
}

template <class T>
EBL_ALWAYS_INLINE void silu_vjp_loop(const T* s, const T* x, const T* gy, T* ga, std::size_t n,
                                     bool accumulate) {
  if (accumulate)
    for (std::size_t i = 0; i < n; ++i) ga[i] += s[i] * (T(1) + x[i] * (T(1) - s[i])) * gy[i];
  else
    for (std::size_t i = 0; i < n; ++i) ga[i] = s[i] * (T(1) + x[i] * (T(1) - s[i])) * gy[i];
}

// The same loops compiled for AVX-512.
template <class T>
EBL_TARGET_V4 void exp_v4(const T* x, T* y, std::size_t n) {
  exp_loop(x, y, n);
}
template <class T>
EBL_TARGET_V4 void sigmoid_v4(const T* x, T* y, std::size_t n) {
  sigmoid_loop(x, y, n);
}
template <class T>
EBL_TARGET_V4 void silu_v4(const T* x, T* s, T* y, std::size_t n) {
  silu_loop(x, s, y, n);
}
template <class T>
EBL_TARGET_V4 void silu_vjp_v4(const T* s, const T* x, const T* gy, T* ga, std::size_t n,
                               bool accumulate) {
  silu_vjp_loop(s, x, gy, ga, n, accumulate);
}

}  // namespace

Isa best_isa() {
  static const Isa isa = __builtin_cpu_supports("x86-64-v4") ? Isa::X86_64_v4 : Isa::X86_64_v3;
  return isa;
}

const char* isa_name(Isa isa) {
  return isa == Isa::X86_64_v4 ? "x86-64-v4" : "x86-64-v3";
}

template <class T>
void vexp(const T* x, T* y, std::size_t n, Isa isa) {
  if (isa == Isa::X86_64_v4) return exp_v4(x, y, n);
  exp_loop(x, y, n);
}

template <class T>
void vsigmoid(const T* x, T* y, std::size_t n, Isa isa) {
  if (isa == Isa::X86_64_v4) return sigmoid_v4(x, y, n);
  sigmoid_loop(x, y, n);
}

template <class T>
void vsilu(const T* x, T* s, T* y, std::size_t n, Isa isa) {
  if (isa == Isa::X86_64_v4) return silu_v4(x, s, y, n);
  silu_loop(x, s, y, n);
}

template <class T>
void vsilu_vjp(const T* s, const T* x, const T* gy, T* ga, std::size_t n, bool accumulate,
               Isa isa) {
  if (isa == Isa::X86_64_v4) return silu_vjp_v4(s, x, gy, ga, n, accumulate);
  silu_vjp_loop(s, x, gy, ga, n, accumulate);
}

#define EBL_INSTANTIATE(T)                                    \
  template void vexp<T>(const T*, T*, std::size_t, Isa);      \
  template void vsigmoid<T>(const T*, T*, std::size_t, Isa);  \
  template void vsilu<T>(const T*, T*, T*, std::size_t, Isa); \
  template void vsilu_vjp<T>(const T*, const T*, const T*, T*, std::size_t, bool, Isa);
EBL_INSTANTIATE(float)
EBL_INSTANTIATE(double)

}  // namespace ebl
