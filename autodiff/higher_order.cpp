// The recorded backward pass (gradients) and every op's differentiable VJP, written with the
// library's own ops; see autodiff/higher_order.hpp for the table.
#include "autodiff/higher_order.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace ebl {

namespace {

// A differentiable VJP: the cotangents of node i's inputs from its cotangent gy, as Vars (an
// empty Var, tape == nullptr, where an input needs none). `need[k]`: input k leads to a requested
// node.
template <class T>
using DiffVjp = void (*)(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>& need,
                         std::vector<Var<T>>& out);

template <class T>
Var<T> in_var(Tape<T>& t, std::size_t i, std::size_t k) {
  return {&t, t.in(i, k)};
}
template <class T>
Var<T> out_var(Tape<T>& t, std::size_t i) {
  return {&t, i};
}
template <class T>
Var<T> reshape_to(Var<T> a, const Shape& s) {
  if (a.shape() == s) return a;
  const xt::svector<std::ptrdiff_t, 4> ss(s.begin(), s.end());  // (no heap for rank ≤ 4)
  return reshape(a, std::span<const std::ptrdiff_t>(ss.data(), ss.size()));
}
// A constant of the given shape, filled with v, made in the tape's own buffer (no allocation once
// the tape has been through the same pass).
template <class T>
Var<T> filled(Tape<T>& t, const Shape& s, T v) {
  return t.input(xt::broadcast(v, s));
}
// The input's shape with `axis` kept as 1: where a reduction's cotangent lines up with its input.
inline Shape keepdims_shape(const Shape& s, std::size_t axis) {
  Shape k = s;
  k[axis] = 1;
  return k;
}
// gy of a reduction along `axis`, broadcast back to the input's shape.
template <class T>
Var<T> unreduce(Var<T> gy, const Shape& input, std::size_t axis) {
  return broadcast_to(reshape_to(gy, keepdims_shape(input, axis)), input);
}

// ---- the differentiable VJPs, in the op table's order ------------------------------------------

template <class T>
void d_add(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>& need,
           std::vector<Var<T>>& out) {
  for (std::size_t k = 0; k < 2; ++k)
    if (need[k]) out[k] = sum_to(gy, t.val(t.in(i, k)).shape());
}
template <class T>
void d_sub(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>& need,
           std::vector<Var<T>>& out) {
  if (need[0]) out[0] = sum_to(gy, t.val(t.in(i, 0)).shape());
  if (need[1]) out[1] = neg(sum_to(gy, t.val(t.in(i, 1)).shape()));
}
template <class T>
void d_mul(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>& need,
           std::vector<Var<T>>& out) {
  Var<T> a = in_var(t, i, 0), b = in_var(t, i, 1);
  if (need[0]) out[0] = sum_to(mul(gy, b), a.shape());
  if (need[1]) out[1] = sum_to(mul(gy, a), b.shape());
}
template <class T>
void d_div(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>& need,
           std::vector<Var<T>>& out) {
  Var<T> a = in_var(t, i, 0), b = in_var(t, i, 1), y = out_var(t, i);
  if (need[0]) out[0] = sum_to(div(gy, b), a.shape());
  if (need[1]) out[1] = neg(sum_to(div(mul(gy, y), b), b.shape()));
}
template <class T>
void d_neg(Tape<T>&, std::size_t, Var<T> gy, const std::vector<char>&, std::vector<Var<T>>& out) {
  out[0] = neg(gy);
}
template <class T>
void d_affine(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
              std::vector<Var<T>>& out) {
  out[0] = affine(gy, t.node_(i).s0, T(0));
}
template <class T>
void d_rdiv(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
            std::vector<Var<T>>& out) {
  out[0] = neg(div(mul(gy, out_var(t, i)), in_var(t, i, 0)));
}
// y = op(a) op(b): dL/dop(a) = gy op(b)ᵀ, dL/dop(b) = op(a)ᵀ gy, transposed back when flagged.
template <class T, Var<T> (*Mm)(Var<T>, Var<T>, bool, bool)>
void d_product(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>& need,
               std::vector<Var<T>>& out) {
  const bool ta = t.node_(i).flag_a, tb = t.node_(i).flag_b;
  Var<T> a = in_var(t, i, 0), b = in_var(t, i, 1);
  if (need[0]) out[0] = ta ? Mm(b, gy, tb, true) : Mm(gy, b, false, !tb);
  if (need[1]) out[1] = tb ? Mm(gy, a, true, ta) : Mm(a, gy, !ta, false);
}
template <class T>
Var<T> matmul_fn(Var<T> a, Var<T> b, bool ta, bool tb) {
  return matmul(a, b, ta, tb);
}
template <class T>
Var<T> bmm_fn(Var<T> a, Var<T> b, bool ta, bool tb) {
  return bmm(a, b, ta, tb);
}
template <class T>
void d_linear(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>& need,
              std::vector<Var<T>>& out) {
  Var<T> x = in_var(t, i, 0), w = in_var(t, i, 1);
  const Shape xs = x.shape();
  const std::size_t n = xs[0], features = x.size() / std::max<std::size_t>(1, n);
  if (need[0]) out[0] = reshape_to(matmul(gy, w, false, true), xs);
  if (need[1]) out[1] = matmul(reshape_to(x, Shape{n, features}), gy, true, false);
  if (need[2]) out[2] = sum(gy, 0, false);
}
template <class T>
void d_sum(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
           std::vector<Var<T>>& out) {
  out[0] = broadcast_to(gy, t.val(t.in(i, 0)).shape());
}
template <class T>
void d_sum_axis(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
                std::vector<Var<T>>& out) {
  out[0] = unreduce(gy, t.val(t.in(i, 0)).shape(), std::size_t(t.node_(i).axis));
}
template <class T>
void d_mean_axes(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
                 std::vector<Var<T>>& out) {
  const Shape& sa = t.val(t.in(i, 0)).shape();
  Shape ks = sa;  // idx[d] is 0 for a reduced axis (its stride into y)
  for (std::size_t d = 0; d < sa.size(); ++d)
    if (t.node_(i).idx[d] == 0) ks[d] = 1;
  out[0] = affine(broadcast_to(reshape_to(gy, ks), sa), t.node_(i).s0, T(0));
}
template <class T>
void d_exp(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
           std::vector<Var<T>>& out) {
  out[0] = mul(gy, out_var(t, i));
}
template <class T>
void d_log(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
           std::vector<Var<T>>& out) {
  out[0] = div(gy, in_var(t, i, 0));
}
template <class T>
void d_sqrt(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
            std::vector<Var<T>>& out) {
  out[0] = div(gy, affine(out_var(t, i), T(2), T(0)));
}
template <class T>
void d_square(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
              std::vector<Var<T>>& out) {
  out[0] = mul(gy, affine(in_var(t, i, 0), T(2), T(0)));
}
template <class T>
void d_pow(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
           std::vector<Var<T>>& out) {
  const T p = t.node_(i).s0;
  out[0] = mul(gy, affine(pow(in_var(t, i, 0), p - T(1)), p, T(0)));
}
// gy times a constant mask m(a): the derivative of a piecewise-linear op
template <class T, class Mask>
void masked(Tape<T>& t, std::size_t i, Var<T> gy, std::vector<Var<T>>& out, Mask m) {
  Var<T> mask = filled(t, t.val(t.in(i, 0)).shape(), T(0));
  const Array<T>& a = t.val(t.in(i, 0));
  T* dst = t.out(mask.id).data();
  for (std::size_t e = 0; e < a.size(); ++e) dst[e] = m(a.data()[e], t.node_(i));
  out[0] = mul(gy, mask);
}
template <class T>
void d_abs(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
           std::vector<Var<T>>& out) {
  masked(t, i, gy, out, [](T x, const auto&) { return T((x > 0) - (x < 0)); });
}
template <class T>
void d_relu(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
            std::vector<Var<T>>& out) {
  masked(t, i, gy, out, [](T x, const auto&) { return x > 0 ? T(1) : T(0); });
}
template <class T>
void d_leaky_relu(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
                  std::vector<Var<T>>& out) {
  masked(t, i, gy, out, [](T x, const auto& nd) { return x > 0 ? T(1) : nd.s0; });
}
template <class T>
void d_clamp(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
             std::vector<Var<T>>& out) {
  masked(t, i, gy, out, [](T x, const auto& nd) { return x >= nd.s0 && x <= nd.s1 ? T(1) : T(0); });
}
template <class T>
void d_sigmoid(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
               std::vector<Var<T>>& out) {
  Var<T> y = out_var(t, i);
  out[0] = mul(gy, mul(y, affine(y, T(-1), T(1))));
}
template <class T>
void d_tanh(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
            std::vector<Var<T>>& out) {
  out[0] = mul(gy, affine(square(out_var(t, i)), T(-1), T(1)));
}
template <class T>
void d_softplus(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
                std::vector<Var<T>>& out) {
  out[0] = mul(gy, sigmoid(in_var(t, i, 0)));
}
template <class T>
void d_silu(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
            std::vector<Var<T>>& out) {
  Var<T> a = in_var(t, i, 0), s = sigmoid(a);  // σ(a)(1 + a(1 − σ(a))) = σ + a σ (1 − σ)
  out[0] = mul(gy, add(s, mul(mul(a, s), affine(s, T(-1), T(1)))));
}
template <class T>
void d_logsumexp(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
                 std::vector<Var<T>>& out) {
  Var<T> a = in_var(t, i, 0);
  const std::size_t ax = std::size_t(t.node_(i).axis);
  const Shape ks = keepdims_shape(a.shape(), ax);
  out[0] = mul(unreduce(gy, a.shape(), ax), exp(sub(a, reshape_to(out_var(t, i), ks))));
}
template <class T>
void d_log_softmax(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
                   std::vector<Var<T>>& out) {
  const auto ax = t.node_(i).axis;
  out[0] = sub(gy, mul(exp(out_var(t, i)), sum(gy, ax, true)));
}
template <class T>
void d_softmax(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
               std::vector<Var<T>>& out) {
  const auto ax = t.node_(i).axis;
  Var<T> y = out_var(t, i);
  out[0] = mul(y, sub(gy, sum(mul(gy, y), ax, true)));
}
// max/min: gy, broadcast along the axis, into the one-hot mask of the chosen entries
template <class T>
void d_extremum(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
                std::vector<Var<T>>& out) {
  const Shape sa = t.val(t.in(i, 0)).shape();
  Var<T> mask = filled(t, sa, T(0));
  for (std::size_t e : t.node_(i).idx) t.out(mask.id).data()[e] = T(1);
  out[0] = mul(unreduce(gy, sa, std::size_t(t.node_(i).axis)), mask);
}
template <class T>
void d_reshape(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
               std::vector<Var<T>>& out) {
  out[0] = reshape_to(gy, t.val(t.in(i, 0)).shape());
}
template <class T>
void d_transpose(Tape<T>&, std::size_t, Var<T> gy, const std::vector<char>&,
                 std::vector<Var<T>>& out) {
  out[0] = transpose(gy);
}
// rows: ga = S gy with S[idx[r], r] = 1, [rows of a, len idx]; cols: ga = gy Sᵀ
template <class T>
Var<T> selection(Tape<T>& t, std::size_t n, std::size_t i) {
  const auto& idx = t.node_(i).idx;
  Var<T> s = filled(t, Shape{n, idx.size()}, T(0));
  for (std::size_t r = 0; r < idx.size(); ++r) t.out(s.id)(t.node_(i).idx[r], r) = T(1);
  return s;
}
template <class T>
void d_rows(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
            std::vector<Var<T>>& out) {
  const std::size_t n = t.val(t.in(i, 0)).shape()[0];
  out[0] = matmul(selection(t, n, i), gy);
}
template <class T>
void d_cols(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
            std::vector<Var<T>>& out) {
  const std::size_t n = t.val(t.in(i, 0)).shape()[1];
  out[0] = matmul(gy, selection(t, n, i), false, true);
}
template <class T>
void d_gather(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
              std::vector<Var<T>>& out) {
  const Shape sa = t.val(t.in(i, 0)).shape();
  Var<T> mask = filled(t, sa, T(0));
  for (std::size_t r = 0; r < t.node_(i).idx.size(); ++r)
    t.out(mask.id)(r, t.node_(i).idx[r]) = T(1);
  out[0] = mul(broadcast_to(reshape_to(gy, Shape{sa[0], 1}), sa), mask);
}
// concat: input p's block of gy along the axis (moved to the front, rows taken, moved back)
template <class T>
void d_concat(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>& need,
              std::vector<Var<T>>& out) {
  const std::size_t ax = std::size_t(t.node_(i).axis), r = gy.shape().size();
  std::vector<std::size_t> to_front(r), back(r);
  to_front[0] = ax;
  for (std::size_t d = 0, k = 1; d < r; ++d)
    if (d != ax) to_front[k++] = d;
  for (std::size_t d = 0; d < r; ++d) back[to_front[d]] = d;
  Var<T> front = ax == 0 ? gy : permute(gy, std::span<const std::size_t>(to_front));
  const Shape fs = front.shape();
  const std::size_t rest = gy.size() / std::max<std::size_t>(1, fs[0]);
  Var<T> flat = reshape_to(front, Shape{fs[0], rest});
  std::size_t offset = 0;
  for (std::size_t p = 0; p < t.node_(i).in.size(); ++p) {
    const Shape& sp = t.val(t.in(i, p)).shape();
    const std::size_t len = sp[ax];
    if (need[p]) {
      std::vector<std::size_t> idx(len);
      std::iota(idx.begin(), idx.end(), offset);
      Shape ps = fs;
      ps[0] = len;
      Var<T> block = reshape_to(rows(flat, std::span<const std::size_t>(idx)), ps);
      out[p] = ax == 0 ? block : permute(block, std::span<const std::size_t>(back));
    }
    offset += len;
  }
}
template <class T>
void d_permute(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
               std::vector<Var<T>>& out) {
  const auto& axes = t.node_(i).idx;
  std::vector<std::size_t> inverse(axes.size());
  for (std::size_t d = 0; d < axes.size(); ++d) inverse[axes[d]] = d;
  out[0] = permute(gy, std::span<const std::size_t>(inverse));
}

// conv2d and pooling: their VJPs are ops (ops_images.cpp), each linear in each input, whose own
// VJPs are conv2d or one of them again
template <class T>
Var<T> zero_bias(Tape<T>& t, std::size_t channels) {
  return filled(t, Shape{channels}, T(0));
}
template <class T>
void d_conv2d(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>& need,
              std::vector<Var<T>>& out) {
  Var<T> x = in_var(t, i, 0), w = in_var(t, i, 1);
  const std::size_t s = t.node_(i).idx[0], p = t.node_(i).idx[1];
  const Shape xs = x.shape(), ws = w.shape();
  if (need[0]) out[0] = conv2d_input_grad(gy, w, xs[2], xs[3], s, p);
  if (need[1]) out[1] = conv2d_weight_grad(x, gy, ws[2], ws[3], s, p);
  if (need[2]) out[2] = sum(sum(sum(gy, 3, false), 2, false), 0, false);  // Σ over n, positions
}
template <class T>
void d_conv2d_input_grad(Tape<T>& t, std::size_t i, Var<T> g, const std::vector<char>& need,
                         std::vector<Var<T>>& out) {
  Var<T> gy = in_var(t, i, 0), w = in_var(t, i, 1);
  const std::size_t s = t.node_(i).idx[0], p = t.node_(i).idx[1];
  const Shape ws = w.shape();
  if (need[0]) out[0] = conv2d(g, w, zero_bias(t, ws[0]), s, p);
  if (need[1]) out[1] = conv2d_weight_grad(g, gy, ws[2], ws[3], s, p);
}
template <class T>
void d_conv2d_weight_grad(Tape<T>& t, std::size_t i, Var<T> g, const std::vector<char>& need,
                          std::vector<Var<T>>& out) {
  Var<T> x = in_var(t, i, 0), gy = in_var(t, i, 1);
  const std::size_t s = t.node_(i).idx[0], p = t.node_(i).idx[1];
  const Shape xs = x.shape();
  if (need[0]) out[0] = conv2d_input_grad(gy, g, xs[2], xs[3], s, p);
  if (need[1]) out[1] = conv2d(x, g, zero_bias(t, g.shape()[0]), s, p);
}
template <class T>
void d_avg_pool2d(Tape<T>& t, std::size_t i, Var<T> gy, const std::vector<char>&,
                  std::vector<Var<T>>& out) {
  const Shape& xs = t.val(t.in(i, 0)).shape();
  out[0] = avg_pool2d_grad(gy, xs[2], xs[3], t.node_(i).idx[0], t.node_(i).idx[1]);
}
template <class T>
void d_avg_pool2d_grad(Tape<T>& t, std::size_t i, Var<T> g, const std::vector<char>&,
                       std::vector<Var<T>>& out) {
  out[0] = avg_pool2d(g, t.node_(i).idx[0], t.node_(i).idx[1]);
}

template <class T>
const std::map<std::string_view, DiffVjp<T>>& table() {
  static const std::map<std::string_view, DiffVjp<T>> t = {
      {"add", d_add<T>},
      {"sub", d_sub<T>},
      {"mul", d_mul<T>},
      {"div", d_div<T>},
      {"neg", d_neg<T>},
      {"affine", d_affine<T>},
      {"rdiv", d_rdiv<T>},
      {"matmul", d_product<T, matmul_fn<T>>},
      {"linear", d_linear<T>},
      {"bmm", d_product<T, bmm_fn<T>>},
      {"sum", d_sum<T>},
      {"sum_axis", d_sum_axis<T>},
      {"mean", d_mean_axes<T>},
      {"exp", d_exp<T>},
      {"log", d_log<T>},
      {"sqrt", d_sqrt<T>},
      {"square", d_square<T>},
      {"pow", d_pow<T>},
      {"abs", d_abs<T>},
      {"relu", d_relu<T>},
      {"leaky_relu", d_leaky_relu<T>},
      {"clamp", d_clamp<T>},
      {"sigmoid", d_sigmoid<T>},
      {"tanh", d_tanh<T>},
      {"softplus", d_softplus<T>},
      {"silu", d_silu<T>},
      {"logsumexp", d_logsumexp<T>},
      {"log_softmax", d_log_softmax<T>},
      {"softmax", d_softmax<T>},
      {"max", d_extremum<T>},
      {"min", d_extremum<T>},
      {"reshape", d_reshape<T>},
      {"transpose", d_transpose<T>},
      {"rows", d_rows<T>},
      {"cols", d_cols<T>},
      {"gather", d_gather<T>},
      {"concat", d_concat<T>},
      {"permute", d_permute<T>},
      {"conv2d", d_conv2d<T>},
      {"conv2d_input_grad", d_conv2d_input_grad<T>},
      {"conv2d_weight_grad", d_conv2d_weight_grad<T>},
      {"avg_pool2d", d_avg_pool2d<T>},
      {"avg_pool2d_grad", d_avg_pool2d_grad<T>},
  };
  return t;
}

}  // namespace

bool has_differentiable_vjp(const char* name) {
  return table<double>().count(name) > 0;
}

template <class T>
Var<T> sum_to(Var<T> g, const Shape& shape) {
  if (g.shape() == shape) return g;
  if (shape.size() > g.shape().size())
    throw ShapeError(
        fmt::format("sum_to: {} cannot be reduced to {}", shape_str(g.shape()), shape_str(shape)));
  while (g.shape().size() > shape.size()) g = sum(g, 0, false);  // leading broadcast axes
  for (std::size_t d = 0; d < shape.size(); ++d)
    if (shape[d] == 1 && g.shape()[d] != 1) g = sum(g, std::ptrdiff_t(d), true);
  if (g.shape() != shape)
    throw ShapeError(
        fmt::format("sum_to: {} cannot be reduced to {}", shape_str(g.shape()), shape_str(shape)));
  return g;
}

template <class T>
Var<T> broadcast_to(Var<T> g, const Shape& shape) {
  if (g.shape() == shape) return g;
  if (g.shape().size() < shape.size()) {  // align on the right, as numpy
    Shape s(shape.size() - g.shape().size(), 1);
    s.insert(s.end(), g.shape().begin(), g.shape().end());
    g = reshape_to(g, s);
  }
  // g + 0 at the target shape: add broadcasts, and its VJP is sum_to
  return add(g, filled(*g.tape, shape, T(0)));
}

namespace {
// The recorded backward pass, writing d y / d wrt[k] into out[k]. Its bookkeeping lives in
// per-thread buffers that keep their capacity, so a steady loop allocates nothing here.
template <class T>
void gradients_into(Var<T> y, std::span<const Var<T>> wrt, std::span<Var<T>> out) {
  Tape<T>& t = *y.tape;
  if (y.size() != 1)
    throw ShapeError(
        fmt::format("gradients: output must have one element, got shape {}", shape_str(y.shape())));
  const std::size_t top = y.id;
  // Only y's ancestors are visited (found by a walk from y, swept in id order), and the per-node
  // state is reset only where it was set: the cost follows the graph below y, not the tape's
  // length. (Scanning every node up to y made each of Hutchinson's probes pay for all earlier
  // probes' nodes: quadratic in the number of probes.)
  thread_local std::vector<char> needs, seen, need_in;
  thread_local std::vector<Var<T>> cot, gin;
  thread_local std::vector<std::size_t> order, stack;
  if (needs.size() < top + 1) {  // grown, never shrunk: entries past what is reset stay clean
    needs.resize(top + 1, 0);
    seen.resize(top + 1, 0);
    cot.resize(top + 1);
  }
  order.clear();
  struct Reset {  // leaves the thread's buffers clean, also when a VJP throws
    ~Reset() {
      for (std::size_t i : order) needs[i] = 0, seen[i] = 0, cot[i] = Var<T>{};
    }
  } reset;
  stack.assign(1, top);
  seen[top] = 1;
  while (!stack.empty()) {
    const std::size_t i = stack.back();
    stack.pop_back();
    order.push_back(i);
    for (std::size_t k : t.node_(i).in)
      if (!seen[k]) seen[k] = 1, stack.push_back(k);
  }
  std::sort(order.begin(), order.end());  // creation order is a topological order
  // needs[i]: a requested node lies at or below i
  for (const Var<T>& v : wrt) {
    if (v.tape != &t) throw std::logic_error("gradients: a requested node is not on this tape");
    if (v.id <= top && seen[v.id]) needs[v.id] = 1;
  }
  for (std::size_t i : order)
    if (!needs[i])
      for (std::size_t k : t.node_(i).in)
        if (needs[k]) {
          needs[i] = 1;
          break;
        }
  cot[top] = filled(t, y.shape(), T(1));
  const auto& tab = table<T>();
  for (std::size_t oi = order.size(); oi-- > 0;) {
    const std::size_t i = order[oi];
    const auto& nd = t.node_(i);
    if (!needs[i] || !cot[i].tape || !nd.vjp || nd.in.empty()) continue;
    need_in.assign(nd.in.size(), 0);
    bool any = false;
    for (std::size_t k = 0; k < nd.in.size(); ++k) {
      need_in[k] = needs[nd.in[k]];
      any = any || need_in[k];
    }
    if (!any) continue;
    auto it = tab.find(nd.op);
    if (it == tab.end())
      throw std::invalid_argument(fmt::format(
          "gradients: op '{}' has no differentiable VJP yet, so its gradient cannot be recorded "
          "for a second derivative",
          nd.op));
    gin.assign(nd.in.size(), Var<T>{});
    it->second(t, i, cot[i], need_in, gin);
    for (std::size_t k = 0; k < nd.in.size(); ++k) {
      if (!need_in[k] || !gin[k].tape) continue;
      const std::size_t j = t.node_(i).in[k];
      cot[j] = cot[j].tape ? add(cot[j], gin[k]) : gin[k];
    }
  }
  for (std::size_t k = 0; k < wrt.size(); ++k) {
    const Var<T>& v = wrt[k];
    out[k] = v.id <= top && seen[v.id] && cot[v.id].tape ? cot[v.id] : filled(t, v.shape(), T(0));
  }
}
}  // namespace

template <class T>
std::vector<Var<T>> gradients(Var<T> y, std::span<const Var<T>> wrt) {
  std::vector<Var<T>> out(wrt.size());
  gradients_into(y, wrt, std::span<Var<T>>(out));
  return out;
}

// one requested node, no vector: what the helpers below use
template <class T>
Var<T> gradient_of(Var<T> y, Var<T> x) {
  Var<T> g;
  gradients_into(y, std::span<const Var<T>>(&x, 1), std::span<Var<T>>(&g, 1));
  return g;
}

template <class T>
Var<T> grad_x(Var<T> energies, Var<T> x) {
  return gradient_of(sum(energies), x);
}

template <class T>
Var<T> grad_norm_sq(Var<T> energies, Var<T> x) {
  return sum(square(grad_x(energies, x)), 1, false);
}

template <class T>
Var<T> hvp(Var<T> energies, Var<T> x, const Array<T>& v) {
  Var<T> g = grad_x(energies, x);
  return gradient_of(sum(mul(g, x.tape->constant(v))), x);
}

template <class T>
Var<T> laplacian(Var<T> energies, Var<T> x) {
  if (x.shape().size() != 2)
    throw ShapeError(fmt::format("laplacian: x must be [n, d], got {}", shape_str(x.shape())));
  Var<T> g = grad_x(energies, x);
  const std::size_t d = x.shape()[1];
  Var<T> total;
  for (std::size_t j = 0; j < d; ++j) {
    const std::size_t col[1] = {j};
    // ∂/∂x_j of Σ_rows ∂E/∂x_j: row i's entry j is ∂²E(x_i)/∂x_j² (rows are independent)
    Var<T> hj = gradient_of(sum(cols(g, std::span<const std::size_t>(col))), x);
    Var<T> djj = reshape_to(cols(hj, std::span<const std::size_t>(col)), Shape{x.shape()[0]});
    total = total.tape ? add(total, djj) : djj;
  }
  return total;
}

template <class T>
Var<T> laplacian_hutchinson(Var<T> energies, Var<T> x, std::size_t probes, Rng& rng) {
  if (probes == 0) throw std::invalid_argument("laplacian_hutchinson: needs at least one probe");
  Var<T> g = grad_x(energies, x);
  Var<T> total;
  for (std::size_t p = 0; p < probes; ++p) {
    Array<T> v(x.shape());
    for (auto& e : v) e = rng.bernoulli(0.5) ? T(1) : T(-1);
    Var<T> vc = x.tape->constant(v);
    Var<T> hv = gradient_of(sum(mul(g, vc)), x);
    Var<T> q = sum(mul(hv, vc), 1, false);  // vᵀ H v per row
    total = total.tape ? add(total, q) : q;
  }
  return affine(total, T(1) / T(probes), T(0));
}

GradcheckReport second_order_gradcheck(const GradcheckFn& f, std::vector<Array<double>> inputs,
                                       const GradcheckOptions& opt) {
  Rng rng(opt.seed);
  std::vector<Array<double>> u;
  std::optional<Array<double>> w;  // the cotangent, drawn at the first evaluation's output shape
  // first-order gradient of L = Σ w ⊙ f(x) at the given inputs (Tape::backward)
  auto first_order = [&](const std::vector<Array<double>>& xs) {
    Tape<double> t;
    std::vector<Var<double>> v;
    for (const auto& x : xs) v.push_back(t.input(x, true));
    Var<double> y = f(t, v);
    if (!w) w = rng.normal_array<double>(y.shape());
    if (y.shape() != w->shape())
      throw ShapeError("second_order_gradcheck: output shape changed between evaluations");
    t.backward(sum(mul(y, t.constant(*w))), std::span<const Var<double>>(v));
    std::vector<Array<double>> g;
    for (const auto& vi : v) g.push_back(t.grad(vi));
    return g;
  };
  const std::vector<Array<double>> g0 = first_order(inputs);
  for (const auto& x : inputs) u.push_back(rng.normal_array<double>(x.shape()));

  // recorded: G = gradients(L), then H u = ∇ ⟨u, G⟩ by Tape::backward
  Tape<double> t;
  std::vector<Var<double>> v;
  for (const auto& x : inputs) v.push_back(t.input(x, true));
  Var<double> L = sum(mul(f(t, v), t.constant(*w)));
  std::vector<Var<double>> G = gradients(L, std::span<const Var<double>>(v));
  Var<double> s;
  for (std::size_t k = 0; k < v.size(); ++k) {
    Var<double> sk = sum(mul(G[k], t.constant(u[k])));
    s = s.tape ? add(s, sk) : sk;
  }
  t.backward(s, std::span<const Var<double>>(v));

  GradcheckReport rep;
  auto compare = [&](double ana, double num, auto where) {
    detail::compare_element(rep, opt, ana, num, where);
  };
  // 1. the recorded gradient's values are the first-order gradient's
  for (std::size_t k = 0; k < v.size(); ++k)
    for (std::size_t e = 0; e < g0[k].size(); ++e)
      compare(G[k].value().data()[e], g0[k].data()[e], [&] {
        return fmt::format("gradient of input {} {}", k, detail::index_str(g0[k].shape(), e));
      });
  // 2. H u against central differences of first-order gradients along u
  std::vector<Array<double>> plus = inputs, minus = inputs;
  for (std::size_t k = 0; k < inputs.size(); ++k)
    for (std::size_t e = 0; e < inputs[k].size(); ++e) {
      plus[k].data()[e] += opt.eps * u[k].data()[e];
      minus[k].data()[e] -= opt.eps * u[k].data()[e];
    }
  const auto gp = first_order(plus), gm = first_order(minus);
  for (std::size_t k = 0; k < v.size(); ++k) {
    const Array<double>& hu = t.grad(v[k]);
    for (std::size_t e = 0; e < hu.size(); ++e)
      compare(hu.data()[e], (gp[k].data()[e] - gm[k].data()[e]) / (2 * opt.eps), [&] {
        return fmt::format("Hu of input {} {}", k, detail::index_str(hu.shape(), e));
      });
  }
  rep.ok = rep.worst_ratio <= 1.0;
  return rep;
}

#define EBL_INSTANTIATE(T)                                                 \
  template std::vector<Var<T>> gradients(Var<T>, std::span<const Var<T>>); \
  template Var<T> sum_to(Var<T>, const Shape&);                            \
  template Var<T> broadcast_to(Var<T>, const Shape&);                      \
  template Var<T> grad_x(Var<T>, Var<T>);                                  \
  template Var<T> grad_norm_sq(Var<T>, Var<T>);                            \
  template Var<T> hvp(Var<T>, Var<T>, const Array<T>&);                    \
  template Var<T> laplacian(Var<T>, Var<T>);                               \
  template Var<T> laplacian_hutchinson(Var<T>, Var<T>, std::size_t, Rng&);

EBL_INSTANTIATE(float)
EBL_INSTANTIATE(double)

}  // namespace ebl
