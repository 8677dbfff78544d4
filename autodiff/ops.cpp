// The ops: each function computes its forward value into a new tape node, and registers its
// vector-Jacobian product as a capture-less lambda right underneath. Vocabulary inside a VJP:
// `i` is the op's own node, `a`/`b`/`x` its inputs, `gy` the incoming cotangent, `y` the output.
// The table of all forward/VJP formulas is at the top of ops.hpp.
//
// Every array written here is a tape buffer assigned with xt::noalias (plain `=` on an xtensor
// container builds a temporary first), so a reused tape performs no allocation.
#include "autodiff/ops.hpp"

#include "autodiff/blas.hpp"
#include "autodiff/op_helpers.hpp"
#include "autodiff/vmath.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xmath.hpp>

// NOTE: the VJP lambdas are capture-less (they become plain function pointers stored in the
// node) and deliberately reuse the forward's vocabulary: t the tape, i the node, a/b the inputs.
// They cannot see the enclosing locals, so the shadowing that -Wshadow reports is harmless here.
#pragma GCC diagnostic ignored "-Wshadow"

namespace ebl {
namespace {

using op_detail::split_range;
using op_detail::tape_of;

using op_detail::kSplitElements;
using op_detail::kSplitMacs;

// numpy broadcasting of two shapes, or a ShapeError naming the op
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  std::size_t r = std::max(a.size(), b.size());
  Shape s(r, 1);
  for (std::size_t d = 0; d < r; ++d) {
    std::size_t da = d + a.size() >= r ? a[d + a.size() - r] : 1;
    std::size_t db = d + b.size() >= r ? b[d + b.size() - r] : 1;
    if (da != db && da != 1 && db != 1)
      throw ShapeError(
          fmt::format("{}: shapes {} and {} do not broadcast", op, shape_str(a), shape_str(b)));
    s[d] = da == 1 ? db : da;
  }
  return s;
}

std::size_t norm_axis(const char* op, std::ptrdiff_t axis, const Shape& s) {
  auto r = static_cast<std::ptrdiff_t>(s.size());
  if (axis < -r || axis >= r)
    throw ShapeError(fmt::format("{}: axis {} out of range for shape {}", op, axis, shape_str(s)));
  return static_cast<std::size_t>(axis < 0 ? axis + r : axis);
}

// An axis reduction views the array as [outer, n, inner]:
// element (o, k, j) sits at (o*n + k)*inner + j.
struct AxisView {
  std::size_t outer = 1, n = 1, inner = 1;
  std::size_t at(std::size_t o, std::size_t k, std::size_t j) const {
    return (o * n + k) * inner + j;
  }
};
AxisView axis_view(const Shape& s, std::size_t ax) {
  AxisView v;
  for (std::size_t d = 0; d < ax; ++d) v.outer *= s[d];
  v.n = s[ax];
  for (std::size_t d = ax + 1; d < s.size(); ++d) v.inner *= s[d];
  return v;
}
// log Σ_k exp(x[o,k,j]) for one fibre along the axis, shifted by its maximum; ±inf when the
// maximum is infinite.
template <class T>
T fibre_logsumexp(const T* x, const AxisView& v, std::size_t o, std::size_t j) {
  T m = -std::numeric_limits<T>::infinity();
  for (std::size_t k = 0; k < v.n; ++k) m = std::max(m, x[v.at(o, k, j)]);
  if (!std::isfinite(m)) return m;
  T s = 0;
  for (std::size_t k = 0; k < v.n; ++k) s += std::exp(x[v.at(o, k, j)] - m);
  return m + std::log(s);
}

Shape reduced_shape(const Shape& s, std::size_t ax, bool keepdims) {
  Shape r;
  for (std::size_t d = 0; d < s.size(); ++d) {
    if (d != ax)
      r.push_back(s[d]);
    else if (keepdims)
      r.push_back(1);
  }
  return r;
}

// A fresh node for a one-input op; the caller writes its value.
template <class T>
Var<T> unary(const char* op, Var<T> a, typename Tape<T>::VjpFn vjp) {
  Tape<T>& t = tape_of(op, a);
  return {&t, t.push(op, {a.id}, vjp)};
}

}  // namespace

// ---- arithmetic --------------------------------------------------------------------------------

template <class T>
Var<T> add(Var<T> a, Var<T> b) {
  Tape<T>& t = tape_of("add", a, b);
  broadcast_shape("add", a.shape(), b.shape());
  std::size_t i = t.push("add", {a.id, b.id}, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0), b = t.in(i, 1);
    if (t.needs(a)) t.accumulate_sum_to(a, t.gy(i));
    if (t.needs(b)) t.accumulate_sum_to(b, t.gy(i));
  });
  xt::noalias(t.out(i)) = t.val(a.id) + t.val(b.id);
  return {&t, i};
}

template <class T>
Var<T> sub(Var<T> a, Var<T> b) {
  Tape<T>& t = tape_of("sub", a, b);
  broadcast_shape("sub", a.shape(), b.shape());
  std::size_t i = t.push("sub", {a.id, b.id}, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0), b = t.in(i, 1);
    if (t.needs(a)) t.accumulate_sum_to(a, t.gy(i));
    if (t.needs(b)) t.accumulate_sum_to(b, -t.gy(i));
  });
  xt::noalias(t.out(i)) = t.val(a.id) - t.val(b.id);
  return {&t, i};
}

template <class T>
Var<T> mul(Var<T> a, Var<T> b) {
  Tape<T>& t = tape_of("mul", a, b);
  broadcast_shape("mul", a.shape(), b.shape());
  std::size_t i = t.push("mul", {a.id, b.id}, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0), b = t.in(i, 1);
    if (t.needs(a)) t.accumulate_sum_to(a, t.gy(i) * t.val(b));
    if (t.needs(b)) t.accumulate_sum_to(b, t.gy(i) * t.val(a));
  });
  xt::noalias(t.out(i)) = t.val(a.id) * t.val(b.id);
  return {&t, i};
}

namespace {
// b has one element and no more axes than a: the quotient has a's shape (SpectralNorm's W / σ).
bool by_scalar(const Shape& as, const Shape& bs) {
  return shape_size(bs) == 1 && bs.size() <= as.size();
}
// div's VJP for that case, as loops computing exactly what the broadcasting expressions below it
// compute, in the same order: ga (+)= gy / b; gb += Σ over rows of a's last axis of the row sums
// of (-gy · y) / b (Tape::sum_to's order).
template <class T>
void div_by_scalar_vjp(Tape<T>& t, std::size_t i) {
  std::size_t a = t.in(i, 0), b = t.in(i, 1);
  const T* gy = t.gy(i).data();
  const T bv = *t.val(b).data();
  const std::size_t n = t.val(a).size();
  if (t.needs(a)) {
    T beta;
    T* ga = t.grad_for_gemm(a, beta).data();
    if (beta == T(0))
      for (std::size_t e = 0; e < n; ++e) ga[e] = gy[e] / bv;
    else
      for (std::size_t e = 0; e < n; ++e) ga[e] += gy[e] / bv;
  }
  if (!t.needs(b)) return;
  const T* y = t.val(i).data();
  const Shape& as = t.val(a).shape();
  if (as == t.val(b).shape()) {  // one element each: accumulate, no reduction
    T beta;
    T* gb = t.grad_for_gemm(b, beta).data();
    const T v = (-gy[0] * y[0]) / bv;
    gb[0] = beta == T(0) ? v : gb[0] + v;
    return;
  }
  T* gb = t.grad_zeroed(b);
  const std::size_t inner = as.back();
  for (std::size_t r = 0; r < n / std::max<std::size_t>(inner, 1); ++r) {
    T acc = 0;
    for (std::size_t k = r * inner; k < (r + 1) * inner; ++k) acc += (-gy[k] * y[k]) / bv;
    gb[0] += acc;
  }
}
}  // namespace

template <class T>
Var<T> div(Var<T> a, Var<T> b) {
  Tape<T>& t = tape_of("div", a, b);
  broadcast_shape("div", a.shape(), b.shape());
  std::size_t i = t.push("div", {a.id, b.id}, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0), b = t.in(i, 1);
    if (by_scalar(t.val(a).shape(), t.val(b).shape())) return div_by_scalar_vjp(t, i);
    if (t.needs(a)) t.accumulate_sum_to(a, t.gy(i) / t.val(b));
    if (t.needs(b)) t.accumulate_sum_to(b, -t.gy(i) * t.val(i) / t.val(b));
  });
  if (by_scalar(a.shape(), b.shape())) {  // a weight over its norm: plain loops, no broadcasting
    Array<T>& y = t.out(i);
    y.resize(a.shape());
    const T *x = a.value().data(), bv = *b.value().data();
    for (std::size_t e = 0, n = y.size(); e < n; ++e) y.data()[e] = x[e] / bv;
    return {&t, i};
  }
  xt::noalias(t.out(i)) = t.val(a.id) / t.val(b.id);
  return {&t, i};
}

template <class T>
Var<T> neg(Var<T> a) {
  Var<T> y =
      unary<T>("neg", a, [](Tape<T>& t, std::size_t i) { t.accumulate(t.in(i, 0), -t.gy(i)); });
  xt::noalias(y.tape->out(y.id)) = -a.value();
  return y;
}

template <class T>
Var<T> affine(Var<T> a, T scale, T shift) {
  Var<T> y = unary<T>("affine", a, [](Tape<T>& t, std::size_t i) {
    t.accumulate(t.in(i, 0), t.node_(i).s0 * t.gy(i));
  });
  auto& n = y.tape->node_(y.id);
  n.s0 = scale;
  n.s1 = shift;
  xt::noalias(n.own) = scale * a.value() + shift;
  return y;
}

template <class T>
Var<T> rdiv(T s, Var<T> a) {
  Var<T> y = unary<T>("rdiv", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    t.accumulate(a, -t.gy(i) * t.val(i) / t.val(a));
  });
  xt::noalias(y.tape->out(y.id)) = s / a.value();
  return y;
}

// ---- matrix products ---------------------------------------------------------------------------

template <class T>
Var<T> matmul(Var<T> a, Var<T> b, bool trans_a, bool trans_b) {
  Tape<T>& t = tape_of("matmul", a, b);
  const Shape &sa = a.shape(), &sb = b.shape();
  if (sa.size() != 2 || sb.size() != 2)
    throw ShapeError(
        fmt::format("matmul: expects 2-D arrays, got {} x {}", shape_str(sa), shape_str(sb)));
  std::size_t m = trans_a ? sa[1] : sa[0], k = trans_a ? sa[0] : sa[1];
  std::size_t kb = trans_b ? sb[1] : sb[0], n = trans_b ? sb[0] : sb[1];
  if (k != kb)
    throw ShapeError(fmt::format("matmul: {}{} x {}{} do not align", shape_str(sa),
                                 trans_a ? "^T" : "", shape_str(sb), trans_b ? "^T" : ""));
  std::size_t i = t.push("matmul", {a.id, b.id}, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0), b = t.in(i, 1);
    const auto& nd = t.node_(i);
    bool ta = nd.flag_a, tb = nd.flag_b;
    const Array<T>&A = t.val(a), &B = t.val(b), &gy = t.gy(i);
    std::size_t m = gy.shape()[0], n = gy.shape()[1], k = ta ? A.shape()[0] : A.shape()[1];
    // with A untransposed, on a tape with threads: ga by blocks of its rows, gb (B untransposed)
    // by blocks of its rows, i.e. of A's columns, as linear's VJP
    const std::size_t min_rows = kSplitMacs / std::max<std::size_t>(1, n * k);
    if (t.needs(a)) {
      T beta;
      Array<T>& ga = t.grad_for_gemm(a, beta);
      if (!ta)  // ga[m,k] += gy op(B)^T
        split_range(t, m, min_rows, [&](std::size_t lo, std::size_t hi) {
          gemm(false, !tb, hi - lo, k, n, T(1), gy.data() + lo * n, n, B.data(), B.shape()[1], beta,
               ga.data() + lo * k, k);
        });
      else  // ga[k,m] += op(B) gy^T
        gemm(tb, true, k, m, n, T(1), B.data(), B.shape()[1], gy.data(), n, beta, ga.data(), m);
      ++t.stats.gemm_backward;
    }
    if (t.needs(b)) {
      T beta;
      Array<T>& gb = t.grad_for_gemm(b, beta);
      if (!tb && !ta)  // gb[k,n] += A^T gy
        split_range(t, k, kSplitMacs / std::max<std::size_t>(1, m * n),
                    [&](std::size_t lo, std::size_t hi) {
                      gemm(true, false, hi - lo, n, m, T(1), A.data() + lo, A.shape()[1], gy.data(),
                           n, beta, gb.data() + lo * n, n);
                    });
      else if (!tb)  // gb[k,n] += op(A)^T gy
        gemm(!ta, false, k, n, m, T(1), A.data(), A.shape()[1], gy.data(), n, beta, gb.data(), n);
      else  // gb[n,k] += gy^T op(A)
        gemm(true, ta, n, k, m, T(1), gy.data(), n, A.data(), A.shape()[1], beta, gb.data(), k);
      ++t.stats.gemm_backward;
    }
  });
  auto& nd = t.node_(i);
  nd.flag_a = trans_a;
  nd.flag_b = trans_b;
  nd.own.resize(Shape{m, n});
  // on a tape with threads, blocks of C's rows (A's rows; A untransposed), one per thread
  const std::size_t min_rows = trans_a ? m + 1 : kSplitMacs / std::max<std::size_t>(1, n * k);
  split_range(t, m, min_rows, [&](std::size_t lo, std::size_t hi) {
    gemm(trans_a, trans_b, hi - lo, n, k, T(1), a.value().data() + lo * sa[1], sa[1],
         b.value().data(), sb[1], T(0), nd.own.data() + lo * n, n);
  });
  ++t.stats.gemm_forward;
  return {&t, i};
}

template <class T>
Var<T> linear(Var<T> x, Var<T> w, Var<T> b) {
  Tape<T>& t = tape_of("linear", x, w);
  tape_of("linear", x, b);
  const Shape &sx = x.shape(), &sw = w.shape(), &sb = b.shape();
  // x may have more than two axes: [n, a, b, ...] is read as the rows [n, a·b·...] it is stored
  // as (a flattening without a copy, e.g. a CNN's feature maps into its linear head)
  const std::size_t features = sx.size() >= 2 ? x.size() / std::max<std::size_t>(1, sx[0]) : 0;
  if (sx.size() < 2 || sw.size() != 2 || features != sw[0] || sb.size() != 1 || sb[0] != sw[1])
    throw ShapeError(fmt::format("linear: x {} W {} b {} do not align (want [n,i] [i,o] [o])",
                                 shape_str(sx), shape_str(sw), shape_str(sb)));
  std::size_t i = t.push("linear", {x.id, w.id, b.id}, [](Tape<T>& t, std::size_t i) {
    std::size_t x = t.in(i, 0), w = t.in(i, 1), b = t.in(i, 2);
    const Array<T>&X = t.val(x), &W = t.val(w), &gy = t.gy(i);
    std::size_t n = X.shape()[0], in = X.size() / std::max<std::size_t>(1, n), o = W.shape()[1];
    const std::size_t min_rows = kSplitMacs / std::max<std::size_t>(1, in * o);
    if (t.needs(x)) {  // gx[n,in] += gy W^T, by blocks of rows on a tape with threads
      T beta;
      T* gx = t.grad_for_gemm(x, beta).data();
      split_range(t, n, min_rows, [&](std::size_t lo, std::size_t hi) {
        gemm(false, true, hi - lo, in, o, T(1), gy.data() + lo * o, o, W.data(), o, beta,
             gx + lo * in, in);
      });
      ++t.stats.gemm_backward;
    }
    if (t.needs(w)) {  // gW[in,o] += X^T gy, by blocks of gW's rows (X's columns)
      T beta;
      T* gw = t.grad_for_gemm(w, beta).data();
      split_range(t, in, kSplitMacs / std::max<std::size_t>(1, n * o),
                  [&](std::size_t lo, std::size_t hi) {
                    gemm(true, false, hi - lo, o, n, T(1), X.data() + lo, in, gy.data(), o, beta,
                         gw + lo * o, o);
                  });
      ++t.stats.gemm_backward;
    }
    if (t.needs(b)) {  // gb[o] += column sums of gy
      T* gb = t.grad_zeroed(b);
      for (std::size_t r = 0; r < n; ++r) {
        const T* row = gy.data() + r * o;
        for (std::size_t c = 0; c < o; ++c) gb[c] += row[c];
      }
    }
  });
  Array<T>& y = t.out(i);
  std::size_t n = sx[0], in = features, o = sw[1];
  y.resize(Shape{n, o});
  const T* bias = b.value().data();
  split_range(t, n, kSplitMacs / std::max<std::size_t>(1, in * o),
              [&](std::size_t lo, std::size_t hi) {
                for (std::size_t r = lo; r < hi; ++r) std::copy(bias, bias + o, y.data() + r * o);
                gemm(false, false, hi - lo, o, in, T(1), x.value().data() + lo * in, in,
                     w.value().data(), o, T(1), y.data() + lo * o, o);
              });
  ++t.stats.gemm_forward;
  return {&t, i};
}

// ---- reductions --------------------------------------------------------------------------------

template <class T>
Var<T> sum(Var<T> a) {
  Var<T> y = unary<T>("sum", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    const T g = *t.gy(i).data();
    T* ga = t.grad_zeroed(a);
    for (std::size_t e = 0, n = t.val(a).size(); e < n; ++e) ga[e] += g;
  });
  Array<T>& out = y.tape->out(y.id);
  out.resize(Shape{});
  *out.data() = std::accumulate(a.value().begin(), a.value().end(), T(0));
  return y;
}

template <class T>
Var<T> mean(Var<T> a) {
  if (a.size() == 0) throw ShapeError("mean: empty array");
  return affine(sum(a), T(1) / T(a.size()), T(0));
}

template <class T>
Var<T> sum(Var<T> a, std::ptrdiff_t axis, bool keepdims) {
  std::size_t ax = norm_axis("sum", axis, a.shape());
  Var<T> y = unary<T>("sum_axis", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    AxisView v = axis_view(t.val(a).shape(), static_cast<std::size_t>(t.node_(i).axis));
    T* ga = t.grad_zeroed(a);
    const T* gy = t.gy(i).data();
    for (std::size_t o = 0; o < v.outer; ++o)
      for (std::size_t k = 0; k < v.n; ++k)
        for (std::size_t j = 0; j < v.inner; ++j) ga[v.at(o, k, j)] += gy[o * v.inner + j];
  });
  auto& nd = y.tape->node_(y.id);
  nd.axis = static_cast<std::ptrdiff_t>(ax);
  AxisView v = axis_view(a.shape(), ax);
  nd.own.resize(reduced_shape(a.shape(), ax, keepdims));
  std::fill(nd.own.begin(), nd.own.end(), T(0));
  const T* src = a.value().data();
  T* dst = nd.own.data();
  for (std::size_t o = 0; o < v.outer; ++o)
    for (std::size_t k = 0; k < v.n; ++k)
      for (std::size_t j = 0; j < v.inner; ++j) dst[o * v.inner + j] += src[v.at(o, k, j)];
  return y;
}

template <class T>
Var<T> mean(Var<T> a, std::ptrdiff_t axis, bool keepdims) {
  std::size_t ax = norm_axis("mean", axis, a.shape());
  if (a.shape()[ax] == 0)
    throw ShapeError(fmt::format("mean: empty axis {} of {}", axis, shape_str(a.shape())));
  return affine(sum(a, axis, keepdims), T(1) / T(a.shape()[ax]), T(0));
}

// ---- elementwise functions ---------------------------------------------------------------------

template <class T>
Var<T> exp(Var<T> a) {
  Var<T> y = unary<T>(
      "exp", a, [](Tape<T>& t, std::size_t i) { t.accumulate(t.in(i, 0), t.gy(i) * t.val(i)); });
  const Array<T>& x = a.value();
  Array<T>& out = y.tape->out(y.id);
  out.resize(x.shape());
  vexp(x.data(), out.data(), x.size());
  return y;
}

template <class T>
Var<T> log(Var<T> a) {
  Var<T> y = unary<T>("log", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    t.accumulate(a, t.gy(i) / t.val(a));
  });
  xt::noalias(y.tape->out(y.id)) = xt::log(a.value());
  return y;
}

template <class T>
Var<T> sqrt(Var<T> a) {
  Var<T> y = unary<T>("sqrt", a, [](Tape<T>& t, std::size_t i) {
    t.accumulate(t.in(i, 0), T(0.5) * t.gy(i) / t.val(i));
  });
  xt::noalias(y.tape->out(y.id)) = xt::sqrt(a.value());
  return y;
}

template <class T>
Var<T> square(Var<T> a) {
  Var<T> y = unary<T>("square", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    t.accumulate(a, T(2) * t.val(a) * t.gy(i));
  });
  xt::noalias(y.tape->out(y.id)) = a.value() * a.value();
  return y;
}

template <class T>
Var<T> pow(Var<T> a, T p) {
  Var<T> y = unary<T>("pow", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    T p = t.node_(i).s0;
    t.accumulate(a, p * xt::pow(t.val(a), p - T(1)) * t.gy(i));
  });
  y.tape->node_(y.id).s0 = p;
  xt::noalias(y.tape->out(y.id)) = xt::pow(a.value(), p);
  return y;
}

template <class T>
Var<T> abs(Var<T> a) {
  // NOTE: subgradient 0 at a = 0 (sign(0) = 0), as PyTorch.
  Var<T> y = unary<T>("abs", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    t.accumulate(a, xt::sign(t.val(a)) * t.gy(i));
  });
  xt::noalias(y.tape->out(y.id)) = xt::abs(a.value());
  return y;
}

template <class T>
Var<T> relu(Var<T> a) {
  // NOTE: subgradient 0 at a = 0.
  Var<T> y = unary<T>("relu", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    t.accumulate(a, xt::where(t.val(a) > T(0), t.gy(i), T(0)));
  });
  xt::noalias(y.tape->out(y.id)) = xt::maximum(a.value(), T(0));
  return y;
}

template <class T>
Var<T> leaky_relu(Var<T> a, T slope) {
  Var<T> y = unary<T>("leaky_relu", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    t.accumulate(a, xt::where(t.val(a) > T(0), t.gy(i), t.node_(i).s0 * t.gy(i)));
  });
  y.tape->node_(y.id).s0 = slope;
  xt::noalias(y.tape->out(y.id)) = xt::where(a.value() > T(0), a.value(), slope * a.value());
  return y;
}

template <class T>
Var<T> sigmoid(Var<T> a) {
  // 1/(1+e^-a) is accurate everywhere: for a → -inf, e^-a overflows to inf and y = 0 exactly.
  Var<T> y = unary<T>("sigmoid", a, [](Tape<T>& t, std::size_t i) {
    const Array<T>& y = t.val(i);
    t.accumulate(t.in(i, 0), y * (T(1) - y) * t.gy(i));
  });
  const Array<T>& x = a.value();
  Array<T>& out = y.tape->out(y.id);
  out.resize(x.shape());
  vsigmoid(x.data(), out.data(), x.size());  // one vectorised pass (autodiff/vmath.hpp)
  return y;
}

template <class T>
Var<T> tanh(Var<T> a) {
  Var<T> y = unary<T>("tanh", a, [](Tape<T>& t, std::size_t i) {
    const Array<T>& y = t.val(i);
    t.accumulate(t.in(i, 0), (T(1) - y * y) * t.gy(i));
  });
  xt::noalias(y.tape->out(y.id)) = xt::tanh(a.value());
  return y;
}

template <class T>
Var<T> softplus(Var<T> a) {
  // y = max(a,0) + log1p(e^-|a|) never overflows; σ(a) = 1 - e^-y = -expm1(-y) keeps full
  // relative precision when y is tiny (a → -inf).
  Var<T> y = unary<T>("softplus", a, [](Tape<T>& t, std::size_t i) {
    t.accumulate(t.in(i, 0), -xt::expm1(-t.val(i)) * t.gy(i));
  });
  const Array<T>& x = a.value();
  xt::noalias(y.tape->out(y.id)) = xt::maximum(x, T(0)) + xt::log1p(xt::exp(-xt::abs(x)));
  return y;
}

template <class T>
Var<T> silu(Var<T> a) {
  Var<T> y = unary<T>("silu", a, [](Tape<T>& t, std::size_t i) {
    // ga += σ(a)(1 + a(1 - σ(a))) gy, with σ(a) saved by the forward pass; a vmath kernel, as
    // this VJP runs at every Langevin step (an xtensor expression here took 1.6x as long)
    std::size_t a = t.in(i, 0);
    T beta;
    T* ga = t.grad_for_gemm(a, beta).data();  // beta 0: the first contribution, 1: add to it
    const T *s = t.node_(i).aux.data(), *x = t.val(a).data(), *gy = t.gy(i).data();
    split_range(t, t.val(a).size(), kSplitElements, [&](std::size_t lo, std::size_t hi) {
      vsilu_vjp(s + lo, x + lo, gy + lo, ga + lo, hi - lo, beta != T(0));
    });
  });
  auto& nd = y.tape->node_(y.id);
  const Array<T>& x = a.value();
  nd.aux.resize(x.shape());
  nd.own.resize(x.shape());
  split_range(*y.tape, x.size(), kSplitElements, [&](std::size_t lo, std::size_t hi) {
    vsilu(x.data() + lo, nd.aux.data() + lo, nd.own.data() + lo, hi - lo);  // σ(a), a σ(a)
  });
  return y;
}

// ---- softmax family and extrema along an axis --------------------------------------------------

template <class T>
Var<T> logsumexp(Var<T> a, std::ptrdiff_t axis, bool keepdims) {
  std::size_t ax = norm_axis("logsumexp", axis, a.shape());
  if (a.shape()[ax] == 0)
    throw ShapeError(fmt::format("logsumexp: empty axis {} of {}", axis, shape_str(a.shape())));
  // NOTE: where y is ±inf (all entries -inf, or some +inf) the gradient is set to 0.
  Var<T> y = unary<T>("logsumexp", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    AxisView v = axis_view(t.val(a).shape(), static_cast<std::size_t>(t.node_(i).axis));
    T* ga = t.grad_zeroed(a);
    const T *x = t.val(a).data(), *y = t.val(i).data(), *gy = t.gy(i).data();
    for (std::size_t o = 0; o < v.outer; ++o)
      for (std::size_t j = 0; j < v.inner; ++j) {
        T yo = y[o * v.inner + j], g = gy[o * v.inner + j];
        if (!std::isfinite(yo)) continue;
        for (std::size_t k = 0; k < v.n; ++k) {
          std::size_t e = v.at(o, k, j);
          ga[e] += std::exp(x[e] - yo) * g;
        }
      }
  });
  auto& nd = y.tape->node_(y.id);
  nd.axis = static_cast<std::ptrdiff_t>(ax);
  AxisView v = axis_view(a.shape(), ax);
  nd.own.resize(reduced_shape(a.shape(), ax, keepdims));
  const T* x = a.value().data();
  T* out = nd.own.data();
  for (std::size_t o = 0; o < v.outer; ++o)
    for (std::size_t j = 0; j < v.inner; ++j) out[o * v.inner + j] = fibre_logsumexp(x, v, o, j);
  return y;
}

template <class T>
Var<T> log_softmax(Var<T> a, std::ptrdiff_t axis) {
  std::size_t ax = norm_axis("log_softmax", axis, a.shape());
  Var<T> y = unary<T>("log_softmax", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    AxisView v = axis_view(t.val(a).shape(), static_cast<std::size_t>(t.node_(i).axis));
    T* ga = t.grad_zeroed(a);
    const T *y = t.val(i).data(), *gy = t.gy(i).data();
    for (std::size_t o = 0; o < v.outer; ++o)
      for (std::size_t j = 0; j < v.inner; ++j) {
        T s = 0;
        for (std::size_t k = 0; k < v.n; ++k) s += gy[v.at(o, k, j)];
        for (std::size_t k = 0; k < v.n; ++k) {
          std::size_t e = v.at(o, k, j);
          ga[e] += gy[e] - std::exp(y[e]) * s;
        }
      }
  });
  auto& nd = y.tape->node_(y.id);
  nd.axis = static_cast<std::ptrdiff_t>(ax);
  AxisView v = axis_view(a.shape(), ax);
  nd.own.resize(a.shape());
  const T* x = a.value().data();
  T* out = nd.own.data();
  for (std::size_t o = 0; o < v.outer; ++o)
    for (std::size_t j = 0; j < v.inner; ++j) {
      const T lse = fibre_logsumexp(x, v, o, j);
      for (std::size_t k = 0; k < v.n; ++k) out[v.at(o, k, j)] = x[v.at(o, k, j)] - lse;
    }
  return y;
}

template <class T>
Var<T> softmax(Var<T> a, std::ptrdiff_t axis) {
  std::size_t ax = norm_axis("softmax", axis, a.shape());
  Var<T> y = unary<T>("softmax", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    AxisView v = axis_view(t.val(a).shape(), static_cast<std::size_t>(t.node_(i).axis));
    T* ga = t.grad_zeroed(a);
    const T *y = t.val(i).data(), *gy = t.gy(i).data();
    for (std::size_t o = 0; o < v.outer; ++o)
      for (std::size_t j = 0; j < v.inner; ++j) {
        T s = 0;
        for (std::size_t k = 0; k < v.n; ++k) {
          std::size_t e = v.at(o, k, j);
          s += gy[e] * y[e];
        }
        for (std::size_t k = 0; k < v.n; ++k) {
          std::size_t e = v.at(o, k, j);
          ga[e] += y[e] * (gy[e] - s);
        }
      }
  });
  auto& nd = y.tape->node_(y.id);
  nd.axis = static_cast<std::ptrdiff_t>(ax);
  AxisView v = axis_view(a.shape(), ax);
  nd.own.resize(a.shape());
  const T* x = a.value().data();
  T* out = nd.own.data();
  for (std::size_t o = 0; o < v.outer; ++o)
    for (std::size_t j = 0; j < v.inner; ++j) {
      const T lse = fibre_logsumexp(x, v, o, j);
      for (std::size_t k = 0; k < v.n; ++k) out[v.at(o, k, j)] = std::exp(x[v.at(o, k, j)] - lse);
    }
  return y;
}

namespace {
// NOTE: the gradient of max/min flows to the first extremal entry only (a valid subgradient).
template <class T, class Better>
Var<T> extremum(const char* op, Var<T> a, std::ptrdiff_t axis, bool keepdims, Better better) {
  std::size_t ax = norm_axis(op, axis, a.shape());
  if (a.shape()[ax] == 0)
    throw ShapeError(fmt::format("{}: empty axis {} of {}", op, axis, shape_str(a.shape())));
  Var<T> y = unary<T>(op, a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    T* ga = t.grad_zeroed(a);
    const T* gy = t.gy(i).data();
    const auto& arg = t.node_(i).idx;  // flat index of the chosen entry for each output
    for (std::size_t r = 0; r < arg.size(); ++r) ga[arg[r]] += gy[r];
  });
  auto& nd = y.tape->node_(y.id);
  nd.axis = static_cast<std::ptrdiff_t>(ax);  // (for the differentiable VJP)
  AxisView v = axis_view(a.shape(), ax);
  nd.own.resize(reduced_shape(a.shape(), ax, keepdims));
  nd.idx.resize(nd.own.size());
  const T* x = a.value().data();
  for (std::size_t o = 0; o < v.outer; ++o)
    for (std::size_t j = 0; j < v.inner; ++j) {
      std::size_t best = o * v.n * v.inner + j;
      for (std::size_t k = 1; k < v.n; ++k) {
        std::size_t e = v.at(o, k, j);
        if (better(x[e], x[best])) best = e;
      }
      nd.idx[o * v.inner + j] = best;
      nd.own.data()[o * v.inner + j] = x[best];
    }
  return y;
}
}  // namespace

template <class T>
Var<T> max(Var<T> a, std::ptrdiff_t axis, bool keepdims) {
  return extremum<T>("max", a, axis, keepdims, [](T u, T v) { return u > v; });
}

template <class T>
Var<T> min(Var<T> a, std::ptrdiff_t axis, bool keepdims) {
  return extremum<T>("min", a, axis, keepdims, [](T u, T v) { return u < v; });
}

template <class T>
Var<T> clamp(Var<T> a, T lo, T hi) {
  if (!(lo <= hi)) throw std::invalid_argument(fmt::format("clamp: lo {} > hi {}", lo, hi));
  // NOTE: the gradient passes where lo <= a <= hi, bounds included (PyTorch's convention).
  Var<T> y = unary<T>("clamp", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    const auto& nd = t.node_(i);
    const Array<T>& x = t.val(a);
    t.accumulate(a, xt::where(x >= nd.s0 && x <= nd.s1, t.gy(i), T(0)));
  });
  auto& nd = y.tape->node_(y.id);
  nd.s0 = lo;
  nd.s1 = hi;
  xt::noalias(nd.own) = xt::clip(a.value(), lo, hi);
  return y;
}

// ---- shape and indexing ------------------------------------------------------------------------

template <class T>
Var<T> reshape(Var<T> a, std::span<const std::ptrdiff_t> shape) {
  Shape s;
  std::size_t known = 1, infer = shape.size();
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == -1 && infer == shape.size()) {
      infer = d;
      s.push_back(1);
    } else if (shape[d] < 0) {
      throw ShapeError(
          fmt::format("reshape: bad target dimension {} for {}", shape[d], shape_str(a.shape())));
    } else {
      s.push_back(static_cast<std::size_t>(shape[d]));
      known *= s.back();
    }
  }
  if (infer < shape.size()) s[infer] = known ? a.size() / known : 0;
  if (shape_size(s) != a.size()) {
    std::vector<std::ptrdiff_t> req(shape.begin(), shape.end());
    throw ShapeError(
        fmt::format("reshape: cannot view {} as [{}]", shape_str(a.shape()), fmt::join(req, ",")));
  }
  Var<T> y = unary<T>("reshape", a, [](Tape<T>& t, std::size_t i) {
    t.accumulate_flat(t.in(i, 0), t.gy(i).data());  // the same elements, a's shape
  });
  Array<T>& out = y.tape->out(y.id);
  out.resize(s);
  std::copy(a.value().begin(), a.value().end(), out.begin());
  return y;
}

template <class T>
Var<T> transpose(Var<T> a) {
  if (a.shape().size() != 2)
    throw ShapeError(fmt::format("transpose: expects a 2-D array, got {}", shape_str(a.shape())));
  Var<T> y = unary<T>("transpose", a, [](Tape<T>& t, std::size_t i) {
    t.accumulate(t.in(i, 0), xt::transpose(t.gy(i)));
  });
  xt::noalias(y.tape->out(y.id)) = xt::transpose(a.value());
  return y;
}

template <class T>
Var<T> rows(Var<T> a, std::span<const std::size_t> idx) {
  const Shape& s = a.shape();
  if (s.size() != 2)
    throw ShapeError(fmt::format("rows: expects a 2-D array, got {}", shape_str(s)));
  for (std::size_t r : idx)
    if (r >= s[0])
      throw ShapeError(fmt::format("rows: index {} out of range for shape {}", r, shape_str(s)));
  Var<T> y = unary<T>("rows", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    std::size_t m = t.val(a).shape()[1];
    T* ga = t.grad_zeroed(a);
    const T* gy = t.gy(i).data();
    const auto& idx = t.node_(i).idx;
    for (std::size_t r = 0; r < idx.size(); ++r)
      for (std::size_t c = 0; c < m; ++c) ga[idx[r] * m + c] += gy[r * m + c];
  });
  auto& nd = y.tape->node_(y.id);
  nd.idx.assign(idx.begin(), idx.end());
  nd.own.resize(Shape{idx.size(), s[1]});
  for (std::size_t r = 0; r < idx.size(); ++r)
    std::copy_n(a.value().data() + idx[r] * s[1], s[1], nd.own.data() + r * s[1]);
  return y;
}

template <class T>
Var<T> cols(Var<T> a, std::span<const std::size_t> idx) {
  const Shape& s = a.shape();
  if (s.size() != 2)
    throw ShapeError(fmt::format("cols: expects a 2-D array, got {}", shape_str(s)));
  for (std::size_t c : idx)
    if (c >= s[1])
      throw ShapeError(fmt::format("cols: index {} out of range for shape {}", c, shape_str(s)));
  Var<T> y = unary<T>("cols", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    std::size_t n = t.val(a).shape()[0], m = t.val(a).shape()[1];
    T* ga = t.grad_zeroed(a);
    const T* gy = t.gy(i).data();
    const auto& idx = t.node_(i).idx;
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t c = 0; c < idx.size(); ++c) ga[r * m + idx[c]] += gy[r * idx.size() + c];
  });
  auto& nd = y.tape->node_(y.id);
  nd.idx.assign(idx.begin(), idx.end());
  nd.own.resize(Shape{s[0], idx.size()});
  for (std::size_t r = 0; r < s[0]; ++r)
    for (std::size_t c = 0; c < idx.size(); ++c)
      nd.own.data()[r * idx.size() + c] = a.value().data()[r * s[1] + idx[c]];
  return y;
}

template <class T>
Var<T> gather(Var<T> a, std::span<const std::size_t> idx) {
  const Shape& s = a.shape();
  if (s.size() != 2 || idx.size() != s[0])
    throw ShapeError(
        fmt::format("gather: needs a 2-D array and one index per row, got {} and {} indices",
                    shape_str(s), idx.size()));
  for (std::size_t c : idx)
    if (c >= s[1])
      throw ShapeError(fmt::format("gather: index {} out of range for shape {}", c, shape_str(s)));
  Var<T> y = unary<T>("gather", a, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    std::size_t m = t.val(a).shape()[1];
    T* ga = t.grad_zeroed(a);
    const T* gy = t.gy(i).data();
    const auto& idx = t.node_(i).idx;
    for (std::size_t r = 0; r < idx.size(); ++r) ga[r * m + idx[r]] += gy[r];
  });
  auto& nd = y.tape->node_(y.id);
  nd.idx.assign(idx.begin(), idx.end());
  nd.own.resize(Shape{s[0]});
  for (std::size_t r = 0; r < s[0]; ++r) nd.own.data()[r] = a.value().data()[r * s[1] + idx[r]];
  return y;
}

template <class T>
Var<T> concat(std::span<const Var<T>> parts, std::ptrdiff_t axis) {
  if (parts.empty()) throw std::invalid_argument("concat: no inputs");
  Tape<T>& t = tape_of("concat", parts[0]);
  const Shape& s0 = parts[0].shape();
  std::size_t ax = norm_axis("concat", axis, s0);
  Shape s = s0;
  s[ax] = 0;
  std::size_t ids[64];
  if (parts.size() > 64) throw std::invalid_argument("concat: at most 64 inputs");
  for (std::size_t p = 0; p < parts.size(); ++p) {
    tape_of("concat", parts[0], parts[p]);
    const Shape& sp = parts[p].shape();
    bool ok = sp.size() == s0.size();
    for (std::size_t d = 0; ok && d < sp.size(); ++d) ok = d == ax || sp[d] == s0[d];
    if (!ok)
      throw ShapeError(fmt::format("concat: shapes {} and {} differ off axis {}", shape_str(s0),
                                   shape_str(sp), axis));
    s[ax] += sp[ax];
    ids[p] = parts[p].id;
  }
  // Along the axis, each input is a block of n_p*inner contiguous values in every outer slice.
  std::size_t i = t.push("concat", std::span<const std::size_t>(ids, parts.size()),
                         [](Tape<T>& t, std::size_t i) {
                           const auto& nd = t.node_(i);
                           std::size_t ax = static_cast<std::size_t>(nd.axis);
                           AxisView v = axis_view(t.val(i).shape(), ax);
                           const T* gy = t.gy(i).data();
                           std::size_t offset = 0;
                           for (std::size_t a : nd.in) {
                             std::size_t block = t.val(a).shape()[ax] * v.inner;
                             if (t.needs(a)) {
                               T* ga = t.grad_zeroed(a);
                               for (std::size_t o = 0; o < v.outer; ++o)
                                 for (std::size_t e = 0; e < block; ++e)
                                   ga[o * block + e] += gy[o * v.n * v.inner + offset + e];
                             }
                             offset += block;
                           }
                         });
  auto& nd = t.node_(i);
  nd.axis = static_cast<std::ptrdiff_t>(ax);
  nd.own.resize(s);
  AxisView v = axis_view(s, ax);
  std::size_t offset = 0;
  for (const Var<T>& p : parts) {
    std::size_t block = p.shape()[ax] * v.inner;
    const T* src = p.value().data();
    for (std::size_t o = 0; o < v.outer; ++o)
      std::copy_n(src + o * block, block, nd.own.data() + o * v.n * v.inner + offset);
    offset += block;
  }
  return {&t, i};
}

// ---- explicit instantiation for float and double -----------------------------------------------

#define EBL_INSTANTIATE(T)                                          \
  template Var<T> add(Var<T>, Var<T>);                              \
  template Var<T> sub(Var<T>, Var<T>);                              \
  template Var<T> mul(Var<T>, Var<T>);                              \
  template Var<T> div(Var<T>, Var<T>);                              \
  template Var<T> neg(Var<T>);                                      \
  template Var<T> affine(Var<T>, T, T);                             \
  template Var<T> rdiv(T, Var<T>);                                  \
  template Var<T> matmul(Var<T>, Var<T>, bool, bool);               \
  template Var<T> linear(Var<T>, Var<T>, Var<T>);                   \
  template Var<T> sum(Var<T>);                                      \
  template Var<T> sum(Var<T>, std::ptrdiff_t, bool);                \
  template Var<T> mean(Var<T>);                                     \
  template Var<T> mean(Var<T>, std::ptrdiff_t, bool);               \
  template Var<T> exp(Var<T>);                                      \
  template Var<T> log(Var<T>);                                      \
  template Var<T> sqrt(Var<T>);                                     \
  template Var<T> square(Var<T>);                                   \
  template Var<T> pow(Var<T>, T);                                   \
  template Var<T> abs(Var<T>);                                      \
  template Var<T> relu(Var<T>);                                     \
  template Var<T> leaky_relu(Var<T>, T);                            \
  template Var<T> sigmoid(Var<T>);                                  \
  template Var<T> tanh(Var<T>);                                     \
  template Var<T> softplus(Var<T>);                                 \
  template Var<T> silu(Var<T>);                                     \
  template Var<T> logsumexp(Var<T>, std::ptrdiff_t, bool);          \
  template Var<T> log_softmax(Var<T>, std::ptrdiff_t);              \
  template Var<T> softmax(Var<T>, std::ptrdiff_t);                  \
  template Var<T> max(Var<T>, std::ptrdiff_t, bool);                \
  template Var<T> min(Var<T>, std::ptrdiff_t, bool);                \
  template Var<T> clamp(Var<T>, T, T);                              \
  template Var<T> reshape(Var<T>, std::span<const std::ptrdiff_t>); \
  template Var<T> transpose(Var<T>);                                \
  template Var<T> rows(Var<T>, std::span<const std::size_t>);       \
  template Var<T> cols(Var<T>, std::span<const std::size_t>);       \
  template Var<T> gather(Var<T>, std::span<const std::size_t>);     \
  template Var<T> concat(std::span<const Var<T>>, std::ptrdiff_t);

EBL_INSTANTIATE(float)
EBL_INSTANTIATE(double)

}  // namespace ebl
