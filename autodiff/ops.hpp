// Every differentiable op of the library, with its forward and its vector-Jacobian product (VJP)
// on one screen. In the VJP column, gy is the incoming cotangent dL/dy, ga/gb/gx the cotangents
// added into the inputs; "sum_to" reduces a broadcast cotangent back to the input's shape. The
// implementations live in ops.cpp (elementwise, reductions, products, shapes and indexing),
// ops_batched.cpp (bmm, permute, mean over axes) and ops_images.cpp (conv2d, avg_pool2d), each
// VJP right under its forward code. For gradients of gradients, each op also has a
// differentiable VJP — the same formula written with these ops, so that the backward pass can be
// recorded on the tape (autodiff/higher_order.hpp has the table). conv2d's and avg_pool2d's VJPs
// are ops of their own for that (the last three rows), each again differentiable.
//
// clang-format off
//  op                         forward y                               VJP
//  -------------------------  --------------------------------------  ------------------------------------
//  add(a, b)                  a + b  (broadcast)                      ga += sum_to(gy); gb += sum_to(gy)
//  sub(a, b)                  a - b                                   ga += sum_to(gy); gb -= sum_to(gy)
//  mul(a, b)                  a * b                                   ga += sum_to(gy*b); gb += sum_to(gy*a)
//  div(a, b)                  a / b                                   ga += sum_to(gy/b); gb -= sum_to(gy*y/b)
//  neg(a)                     -a                                      ga -= gy
//  affine(a, s, t)            s*a + t   (a±t, a*s, a/s, t-a)          ga += s*gy
//  rdiv(s, a)                 s / a                                   ga -= gy*y/a
//  matmul(a, b, ta, tb)       op(a) op(b), op = transpose if flag     ga += gy op(b)^T (or op(b) gy^T if ta)
//                                                                     gb += op(a)^T gy (or gy^T op(a) if tb)
//  linear(x, W, b)            x W + b   (x:[n,i], W:[i,o], b:[o];       gx += gy W^T; gW += x^T gy; gb += Σ_rows gy
//                             x:[n,a,b,..] read as [n,a·b·..])
//  sum(a) / sum(a, ax, kd)    Σ a                                     ga += broadcast(gy)
//  mean(a) / mean(a, ax, kd)  Σ a / n                                 ga += broadcast(gy) / n
//  exp(a)                     e^a                                     ga += gy*y
//  log(a)                     ln a                                    ga += gy/a
//  sqrt(a)                    √a                                      ga += gy/(2y)
//  square(a)                  a²                                      ga += 2a gy
//  pow(a, p)                  a^p  (scalar p)                         ga += p a^(p-1) gy
//  abs(a)                     |a|                                     ga += sign(a) gy        (0 at a = 0)
//  relu(a)                    max(a, 0)                               ga += [a > 0] gy        (0 at a = 0)
//  leaky_relu(a, s)           a > 0 ? a : s a                         ga += (a > 0 ? 1 : s) gy
//  sigmoid(a)                 σ(a) = 1/(1+e^-a)                       ga += y(1-y) gy
//  tanh(a)                    tanh a                                  ga += (1-y²) gy
//  softplus(a)                ln(1+e^a) = max(a,0)+ln1p(e^-|a|)        ga += σ(a) gy = -expm1(-y) gy
//  silu(a)                    a σ(a)                                  ga += σ(a)(1 + a(1-σ(a))) gy
//  logsumexp(a, ax, kd)       m + ln Σ e^(a-m), m = max a             ga += e^(a-y) gy        (0 if y = ±inf)
//  log_softmax(a, ax)         a - logsumexp(a)                        ga += gy - e^y Σ gy
//  softmax(a, ax)             e^(a - logsumexp(a))                    ga += y (gy - Σ gy y)
//  max(a, ax, kd) / min       a at the first arg-max / arg-min        ga[argmax] += gy        (ties: first index)
//  clamp(a, lo, hi)           min(max(a, lo), hi)                     ga += [lo ≤ a ≤ hi] gy  (passes at the bounds)
//  reshape(a, shape)          same data, new shape (one -1 allowed)   ga += reshape(gy)
//  transpose(a)               a^T  (2-D)                              ga += gy^T
//  rows(a, idx)               a[idx, :]                               ga[idx[r], :] += gy[r, :]
//  cols(a, idx)               a[:, idx]                               ga[:, idx[c]] += gy[:, c]
//  gather(a, idx)             y[r] = a[r, idx[r]]   (one per row)     ga[r, idx[r]] += gy[r]
//  concat({a, b, ...}, ax)    joined along ax                         each input gets its slice of gy
//  bmm(a, b, ta, tb)          y[p] = op(a[p]) op(b[p]), a:[B,m,k]       ga[p] += gy[p] op(b[p])^T (as matmul, per p)
//                                                   b:[B,k,n]        gb[p] += op(a[p])^T gy[p]
//  permute(a, axes)           y.shape[d] = a.shape[axes[d]]           ga += permute(gy, axes⁻¹)
//  mean(a, {axes}, kd)        Σ over the axes / their element count   ga += broadcast(gy) / count
//  conv2d(x, W, b, s, p)      y[n,o] = Σ_c W[o,c] ⋆ x[n,c] + b[o]       per image, with C = im2col(x[n]) [c·kh·kw, oh·ow]:
//                             NCHW; x:[n,c,h,w] W:[o,c,kh,kw]          y[n] = W C + b;  gW += gy[n] Cᵀ;
//                             stride s, zero padding p                 gx[n] += col2im(Wᵀ gy[n]);  gb += Σ gy
//  avg_pool2d(x, k, s)        mean of each k×k window, stride s       each window's pixels += gy / k²
//  conv2d_input_grad(gy, W,   col2im(Wᵀ gy[n]): conv2d's ∇x           g_gy[n] += W im2col(g[n]) (a conv2d);
//    h, w, s, p)              as an op, [n, c, h, w]                  gW += Σ gy[n] im2col(g[n])ᵀ
//  conv2d_weight_grad(x, gy,  Σ_n gy[n] im2col(x[n])ᵀ: conv2d's ∇W     gx[n] += col2im(gᵀ gy[n]);
//    kh, kw, s, p)            as an op, [o, c, kh, kw]                g_gy[n] += g im2col(x[n]) (a conv2d)
//  avg_pool2d_grad(gy, h, w,  every window's pixels += gy / k²          g_gy += avg_pool2d(g)
//    k, s)                    (avg_pool2d's ∇x as an op)
// clang-format on
#pragma once

#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

#include "autodiff/tape.hpp"

namespace ebl {

// clang-format off
template <class T> Var<T> add(Var<T> a, Var<T> b);
template <class T> Var<T> sub(Var<T> a, Var<T> b);
template <class T> Var<T> mul(Var<T> a, Var<T> b);
template <class T> Var<T> div(Var<T> a, Var<T> b);
template <class T> Var<T> neg(Var<T> a);
/// y = scale * a + shift
template <class T> Var<T> affine(Var<T> a, T scale, T shift);
/// y = s / a
template <class T> Var<T> rdiv(T s, Var<T> a);

/// y = op(a) op(b) with op(m) = m^T when the flag is set; transposes go to BLAS, never copied.
template <class T> Var<T> matmul(Var<T> a, Var<T> b, bool trans_a = false, bool trans_b = false);
/// y = x W + b, the fused affine layer (one GEMM, bias added in place). x [n, a, b, ...] with
/// more axes is read as the rows [n, a·b·...] it is stored as: a flattening without a copy.
template <class T> Var<T> linear(Var<T> x, Var<T> w, Var<T> b);

template <class T> Var<T> sum(Var<T> a);
template <class T> Var<T> sum(Var<T> a, std::ptrdiff_t axis, bool keepdims = false);
template <class T> Var<T> mean(Var<T> a);
template <class T> Var<T> mean(Var<T> a, std::ptrdiff_t axis, bool keepdims = false);

template <class T> Var<T> exp(Var<T> a);
template <class T> Var<T> log(Var<T> a);
template <class T> Var<T> sqrt(Var<T> a);
template <class T> Var<T> square(Var<T> a);
template <class T> Var<T> pow(Var<T> a, T p);
template <class T> Var<T> abs(Var<T> a);

template <class T> Var<T> relu(Var<T> a);
template <class T> Var<T> leaky_relu(Var<T> a, T slope = T(0.01));
template <class T> Var<T> sigmoid(Var<T> a);
template <class T> Var<T> tanh(Var<T> a);
template <class T> Var<T> softplus(Var<T> a);
template <class T> Var<T> silu(Var<T> a);

template <class T> Var<T> logsumexp(Var<T> a, std::ptrdiff_t axis, bool keepdims = false);
template <class T> Var<T> log_softmax(Var<T> a, std::ptrdiff_t axis);
template <class T> Var<T> softmax(Var<T> a, std::ptrdiff_t axis);
template <class T> Var<T> max(Var<T> a, std::ptrdiff_t axis, bool keepdims = false);
template <class T> Var<T> min(Var<T> a, std::ptrdiff_t axis, bool keepdims = false);
template <class T> Var<T> clamp(Var<T> a, T lo, T hi);

template <class T> Var<T> reshape(Var<T> a, std::span<const std::ptrdiff_t> shape);
template <class T> Var<T> reshape(Var<T> a, std::initializer_list<std::ptrdiff_t> shape) {
  return reshape(a, std::span<const std::ptrdiff_t>(shape.begin(), shape.size()));
}
template <class T> Var<T> transpose(Var<T> a);
template <class T> Var<T> rows(Var<T> a, std::span<const std::size_t> idx);
template <class T> Var<T> cols(Var<T> a, std::span<const std::size_t> idx);
template <class T> Var<T> gather(Var<T> a, std::span<const std::size_t> idx);
template <class T> Var<T> concat(std::span<const Var<T>> parts, std::ptrdiff_t axis);
template <class T> Var<T> concat(std::initializer_list<Var<T>> parts, std::ptrdiff_t axis) {
  return concat(std::span<const Var<T>>(parts.begin(), parts.size()), axis);
}

/// Batched products y[p] = op(a[p]) op(b[p]) for a [B,m,k] and b [B,k,n] (op: transpose when flagged).
template <class T> Var<T> bmm(Var<T> a, Var<T> b, bool trans_a = false, bool trans_b = false);
/// The axes of a in any order: y.shape[d] = a.shape[axes[d]] (numpy's transpose(a, axes)).
template <class T> Var<T> permute(Var<T> a, std::span<const std::size_t> axes);
template <class T> Var<T> permute(Var<T> a, std::initializer_list<std::size_t> axes) {
  return permute(a, std::span<const std::size_t>(axes.begin(), axes.size()));
}
/// The mean over several axes at once (global average pooling: mean(x, {2, 3}) on NCHW).
template <class T> Var<T> mean(Var<T> a, std::span<const std::ptrdiff_t> axes, bool keepdims = false);
template <class T> Var<T> mean(Var<T> a, std::initializer_list<std::ptrdiff_t> axes, bool keepdims = false) {
  return mean(a, std::span<const std::ptrdiff_t>(axes.begin(), axes.size()), keepdims);
}
/// 2-D convolution (cross-correlation, as in every deep-learning library) on NCHW: x [n,c,h,w],
/// w [o,c,kh,kw], b [o] -> [n, o, (h+2p-kh)/s+1, (w+2p-kw)/s+1], zero padding p on each side.
template <class T> Var<T> conv2d(Var<T> x, Var<T> w, Var<T> b, std::size_t stride = 1, std::size_t padding = 0);
/// Average pooling over k×k windows with stride s (0: s = k), no padding, on NCHW.
template <class T> Var<T> avg_pool2d(Var<T> x, std::size_t kernel, std::size_t stride = 0);
/// conv2d's VJPs and avg_pool2d's, as ops (what gradients of gradients are recorded with).
template <class T> Var<T> conv2d_input_grad(Var<T> gy, Var<T> w, std::size_t h, std::size_t wd, std::size_t stride, std::size_t padding);
template <class T> Var<T> conv2d_weight_grad(Var<T> x, Var<T> gy, std::size_t kh, std::size_t kw, std::size_t stride, std::size_t padding);
template <class T> Var<T> avg_pool2d_grad(Var<T> gy, std::size_t h, std::size_t w, std::size_t kernel, std::size_t stride);

// Operators: the arithmetic above, with scalars on either side.
template <class T> Var<T> operator+(Var<T> a, Var<T> b) { return add(a, b); }
template <class T> Var<T> operator-(Var<T> a, Var<T> b) { return sub(a, b); }
template <class T> Var<T> operator*(Var<T> a, Var<T> b) { return mul(a, b); }
template <class T> Var<T> operator/(Var<T> a, Var<T> b) { return div(a, b); }
template <class T> Var<T> operator-(Var<T> a) { return neg(a); }
template <class T> Var<T> operator+(Var<T> a, std::type_identity_t<T> s) { return affine(a, T(1), s); }
template <class T> Var<T> operator+(std::type_identity_t<T> s, Var<T> a) { return affine(a, T(1), s); }
template <class T> Var<T> operator-(Var<T> a, std::type_identity_t<T> s) { return affine(a, T(1), -s); }
template <class T> Var<T> operator-(std::type_identity_t<T> s, Var<T> a) { return affine(a, T(-1), s); }
template <class T> Var<T> operator*(Var<T> a, std::type_identity_t<T> s) { return affine(a, s, T(0)); }
template <class T> Var<T> operator*(std::type_identity_t<T> s, Var<T> a) { return affine(a, s, T(0)); }
template <class T> Var<T> operator/(Var<T> a, std::type_identity_t<T> s) { return affine(a, T(1) / s, T(0)); }
template <class T> Var<T> operator/(std::type_identity_t<T> s, Var<T> a) { return rdiv(s, a); }
// clang-format on

}  // namespace ebl
