// Gradients of gradients: a backward pass that records itself on the tape (PyTorch's
// create_graph=True), and what is built on it — Hessian-vector products, the Laplacian (exact and
// by Hutchinson's estimator), ‖∇ₓE‖² — and its check against finite differences.
//
// gradients(y, wrt) walks the tape from y down, like Tape::backward, but each node's VJP is its
// *differentiable* VJP: the same formula as the op table's VJP column (autodiff/ops.hpp), written
// with the library's own ops, so the cotangents it returns are Vars on the same tape and any
// expression of them can be differentiated again — by Tape::backward (first order, e.g. ∇θ of a
// score-matching loss) or by gradients() again (any order). The first-order path is untouched:
// the differentiable VJPs live in a table of their own (autodiff/higher_order.cpp), looked up by
// op name only when gradients() runs; Tape::backward never sees them.
//
// Each op's differentiable VJP, beside its array VJP (gy is the incoming cotangent, a Var):
//   add/sub/mul/div, neg, affine, rdiv     the array formulas, with sum_to for broadcasting
//   matmul, linear, bmm                    products of gy with the other factor (transposes as flags)
//   sum, sum_axis, mean (over axes)        broadcast_to(gy) (scaled by 1/count)
//   exp, log, sqrt, square, pow            gy·y, gy/a, gy/(2y), 2a·gy, p·a^(p−1)·gy
//   sigmoid, tanh, softplus, silu          gy·y(1−y), gy(1−y²), gy·σ(a), gy·σ(a)(1 + a(1−σ(a)))
//   abs, relu, leaky_relu, clamp           gy times the (constant) derivative mask
//   logsumexp, log_softmax, softmax        gy·e^(a−y), gy − e^y Σgy, y(gy − Σ gy·y)
//   max, min, gather                       gy into a one-hot mask (constant)
//   reshape, transpose, permute            the inverse reshape / transpose / permutation of gy
//   rows, cols                             a constant selection matrix times gy
//   concat                                 each input's block of gy (permute, reshape, rows)
//   conv2d                                 conv2d_input_grad(gy, W), conv2d_weight_grad(x, gy), Σ gy
//   avg_pool2d                             avg_pool2d_grad(gy)
//   conv2d_input_grad, conv2d_weight_grad,  conv2d or each other (each is linear in each input)
//   avg_pool2d_grad                          and avg_pool2d: the set closes under differentiation
// An op pushed on the tape without an entry here (a user's own op) makes gradients() throw,
// naming it.
// Piecewise-linear ops (abs, relu, clamp, max, ...) have a zero second derivative almost
// everywhere, which their constant masks give.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autodiff/gradcheck.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/random.hpp"

namespace ebl {

/// dy/dx for every x in wrt (leaves, or any node below y), as Vars on y's tape: the backward pass
/// recorded with differentiable VJPs. y must have one element. A node in wrt that y does not
/// depend on gets a zero constant. Throws std::invalid_argument naming the first op on the path
/// that has no differentiable VJP.
template <class T>
std::vector<Var<T>> gradients(Var<T> y, std::span<const Var<T>> wrt);
template <class T>
std::vector<Var<T>> gradients(Var<T> y, std::initializer_list<Var<T>> wrt) {
  return gradients(y, std::span<const Var<T>>(wrt.begin(), wrt.size()));
}

/// Whether op `name` has a differentiable VJP (the op table's names: "add", "matmul", ...).
bool has_differentiable_vjp(const char* name);

/// The sum of g over the axes a broadcast to `shape` added (leading axes, and axes of size 1 in
/// `shape`): the Var form of the array VJPs' sum_to.
template <class T>
Var<T> sum_to(Var<T> g, const Shape& shape);
/// g broadcast (numpy rules) to `shape`, differentiably (its VJP is sum_to).
template <class T>
Var<T> broadcast_to(Var<T> g, const Shape& shape);

// ---- built on it: the second-order quantities EBM training methods use ------------------------
// E maps a batch x [n, d] to energies [n], each row's energy a function of that row only (every
// energy of the library); the results are per row, [n], and differentiable in θ and x.

/// ∇ₓ Σ E(x): row i is ∇ₓE(x_i). [n, d]
template <class T>
Var<T> grad_x(Var<T> energies, Var<T> x);
/// ‖∇ₓE(x_i)‖² per row. [n]
template <class T>
Var<T> grad_norm_sq(Var<T> energies, Var<T> x);
/// Hessian-vector product per row, H(x_i) v_i, for v [n, d]. [n, d]
template <class T>
Var<T> hvp(Var<T> energies, Var<T> x, const Array<T>& v);
/// ΔE(x_i) = tr ∇²ₓE(x_i) per row, exactly: d second backward passes. [n]
template <class T>
Var<T> laplacian(Var<T> energies, Var<T> x);
/// Hutchinson's estimate of ΔE(x_i), mean over `probes` Rademacher vectors v of vᵀ H v (unbiased;
/// its variance is 2 Σ_{j≠k} H_jk² per probe). [n]
template <class T>
Var<T> laplacian_hutchinson(Var<T> energies, Var<T> x, std::size_t probes, Rng& rng);

// ---- checking it ------------------------------------------------------------------------------

/// The second-order gradient check of a function f(x) (any shape): with a seeded cotangent w and
/// a seeded direction u, L = Σ w ⊙ f(x), G = gradients(L, x) (recorded), and
///   1. G's values equal the first-order gradient of L (Tape::backward) to rounding;
///   2. ∇ₓ ⟨u, G⟩, the recorded backward differentiated by Tape::backward (= H u), equals the
///      central difference (∇L(x + h u) − ∇L(x − h u)) / 2h of first-order gradients.
/// Elements pass when |a − n| ≤ atol + rtol · max(|a|, |n|) (GradcheckOptions; eps is h).
GradcheckReport second_order_gradcheck(const GradcheckFn& f, std::vector<Array<double>> inputs,
                                       const GradcheckOptions& opt = {});

}  // namespace ebl
