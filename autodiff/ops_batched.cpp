// Ops on n-d arrays: batched matrix products, any permutation of the axes, and a mean over
// several axes (global average pooling). Conventions as in ops.cpp; formulas in ops.hpp's table.
#include <algorithm>
#include <array>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "autodiff/blas.hpp"
#include "autodiff/op_helpers.hpp"
#include "autodiff/ops.hpp"

#pragma GCC diagnostic ignored "-Wshadow"  // as in ops.cpp: the VJPs reuse the forward's names

namespace ebl {
namespace {

using op_detail::kSplitMacs;
using op_detail::split_range;
using op_detail::tape_of;
constexpr std::size_t kMaxRank = 8;

// Walks the elements of an array of shape `s` in row-major order while keeping a second offset,
// off = Σ_d index[d] * stride[d], for another layout of the same elements (a permutation, or a
// reduction when some strides are 0). f(e, off, len, step) is called once per run along the last
// axis: elements e .. e+len-1 match offsets off, off+step, ..., off+(len-1)·step.
template <class F>
void walk(const Shape& s, const std::array<std::size_t, kMaxRank>& stride, F f) {
  const std::size_t r = s.size();
  std::size_t total = 1;
  for (auto d : s) total *= d;
  if (total == 0) return;
  if (r == 0) return f(std::size_t(0), std::size_t(0), std::size_t(1), std::size_t(0));
  const std::size_t len = s[r - 1], step = stride[r - 1];
  std::array<std::size_t, kMaxRank> idx{};
  std::size_t off = 0;
  for (std::size_t e = 0; e < total; e += len) {
    f(e, off, len, step);
    for (std::size_t d = r - 1; d-- > 0;) {  // odometer step over the outer axes
      if (++idx[d] < s[d]) {
        off += stride[d];
        break;
      }
      off -= stride[d] * (s[d] - 1);
      idx[d] = 0;
    }
  }
}

std::array<std::size_t, kMaxRank> row_major_strides(const Shape& s) {
  std::array<std::size_t, kMaxRank> st{};
  std::size_t acc = 1;
  for (std::size_t d = s.size(); d-- > 0;) {
    st[d] = acc;
    acc *= s[d];
  }
  return st;
}

}  // namespace

template <class T>
Var<T> bmm(Var<T> a, Var<T> b, bool trans_a, bool trans_b) {
  Tape<T>& t = tape_of("bmm", a, b);
  const Shape &sa = a.shape(), &sb = b.shape();
  if (sa.size() != 3 || sb.size() != 3 || sa[0] != sb[0])
    throw ShapeError(fmt::format("bmm: expects [B,m,k] x [B,k,n] with the same B, got {} x {}",
                                 shape_str(sa), shape_str(sb)));
  const std::size_t m = trans_a ? sa[2] : sa[1], k = trans_a ? sa[1] : sa[2];
  const std::size_t kb = trans_b ? sb[2] : sb[1], n = trans_b ? sb[1] : sb[2];
  if (k != kb)
    throw ShapeError(fmt::format("bmm: {}{} x {}{} do not align", shape_str(sa),
                                 trans_a ? "^T" : "", shape_str(sb), trans_b ? "^T" : ""));
  std::size_t i = t.push("bmm", {a.id, b.id}, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0), b = t.in(i, 1);
    const auto& nd = t.node_(i);
    const bool ta = nd.flag_a, tb = nd.flag_b;
    const Array<T>&A = t.val(a), &B = t.val(b), &gy = t.gy(i);
    const std::size_t batch = gy.shape()[0], m = gy.shape()[1], n = gy.shape()[2];
    const std::size_t k = ta ? A.shape()[1] : A.shape()[2], lda = A.shape()[2], ldb = B.shape()[2];
    const std::size_t sa = A.shape()[1] * lda, sb = B.shape()[1] * ldb, sy = m * n;
    // on a tape with threads, blocks of the batch, one per thread (each product is separate)
    const std::size_t min_split = kSplitMacs / std::max<std::size_t>(1, m * n * k);
    if (t.needs(a)) {
      T beta;
      Array<T>& ga = t.grad_for_gemm(a, beta);
      split_range(t, batch, min_split, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t p = lo; p < hi; ++p) {
          if (!ta)  // ga[m,k] += gy op(B)ᵀ
            gemm_small(false, !tb, m, k, n, T(1), gy.data() + p * sy, n, B.data() + p * sb, ldb,
                       beta, ga.data() + p * sa, k);
          else  // ga[k,m] += op(B) gyᵀ
            gemm_small(tb, true, k, m, n, T(1), B.data() + p * sb, ldb, gy.data() + p * sy, n, beta,
                       ga.data() + p * sa, m);
        }
      });
      t.stats.gemm_backward += batch;
    }
    if (t.needs(b)) {
      T beta;
      Array<T>& gb = t.grad_for_gemm(b, beta);
      split_range(t, batch, min_split, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t p = lo; p < hi; ++p) {
          if (!tb)  // gb[k,n] += op(A)ᵀ gy
            gemm_small(!ta, false, k, n, m, T(1), A.data() + p * sa, lda, gy.data() + p * sy, n,
                       beta, gb.data() + p * sb, n);
          else  // gb[n,k] += gyᵀ op(A)
            gemm_small(true, ta, n, k, m, T(1), gy.data() + p * sy, n, A.data() + p * sa, lda, beta,
                       gb.data() + p * sb, k);
        }
      });
      t.stats.gemm_backward += batch;
    }
  });
  auto& nd = t.node_(i);
  nd.flag_a = trans_a;
  nd.flag_b = trans_b;
  const std::size_t batch = sa[0];
  nd.own.resize(Shape{batch, m, n});
  split_range(t, batch, kSplitMacs / std::max<std::size_t>(1, m * n * k),
              [&](std::size_t lo, std::size_t hi) {
                for (std::size_t p = lo; p < hi; ++p)
                  gemm_small(trans_a, trans_b, m, n, k, T(1), a.value().data() + p * sa[1] * sa[2],
                             sa[2], b.value().data() + p * sb[1] * sb[2], sb[2], T(0),
                             nd.own.data() + p * m * n, n);
              });
  t.stats.gemm_forward += batch;
  return {&t, i};
}

template <class T>
Var<T> permute(Var<T> a, std::span<const std::size_t> axes) {
  Tape<T>& t = tape_of("permute", a);
  const Shape& sa = a.shape();
  const std::size_t r = sa.size();
  std::array<bool, kMaxRank> seen{};
  bool ok = axes.size() == r && r <= kMaxRank;
  for (std::size_t d = 0; ok && d < r; ++d) {
    ok = axes[d] < r && !seen[axes[d]];
    if (ok) seen[axes[d]] = true;
  }
  if (!ok)
    throw ShapeError(fmt::format("permute: [{}] is not a permutation of the axes of {}",
                                 fmt::join(axes, ","), shape_str(sa)));
  // y[j] = a[Σ_d j_d stride_a[axes[d]]]: walk y in order with the matching offset into a
  auto in_strides = [](const Shape& sa, const std::vector<std::size_t>& axes) {
    const auto st = row_major_strides(sa);
    std::array<std::size_t, kMaxRank> s{};
    for (std::size_t d = 0; d < axes.size(); ++d) s[d] = st[axes[d]];
    return s;
  };
  std::size_t i = t.push("permute", {a.id}, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    const auto& nd = t.node_(i);
    const Shape& sa = t.val(a).shape();
    const auto st = row_major_strides(sa);
    std::array<std::size_t, kMaxRank> s{};
    for (std::size_t d = 0; d < nd.idx.size(); ++d) s[d] = st[nd.idx[d]];
    T* ga = t.grad_zeroed(a);
    const T* gy = t.gy(i).data();
    walk(nd.own.shape(), s, [&](std::size_t e, std::size_t off, std::size_t len, std::size_t step) {
      for (std::size_t l = 0; l < len; ++l) ga[off + l * step] += gy[e + l];
    });
  });
  auto& nd = t.node_(i);
  nd.idx.assign(axes.begin(), axes.end());
  Shape ys(r);
  for (std::size_t d = 0; d < r; ++d) ys[d] = sa[axes[d]];
  nd.own.resize(ys);
  const T* x = a.value().data();
  T* y = nd.own.data();
  walk(ys, in_strides(sa, nd.idx),
       [&](std::size_t e, std::size_t off, std::size_t len, std::size_t step) {
         if (step == 1)
           std::copy(x + off, x + off + len, y + e);
         else
           for (std::size_t l = 0; l < len; ++l) y[e + l] = x[off + l * step];
       });
  return {&t, i};
}

template <class T>
Var<T> mean(Var<T> a, std::span<const std::ptrdiff_t> axes, bool keepdims) {
  Tape<T>& t = tape_of("mean", a);
  const Shape& sa = a.shape();
  const std::size_t r = sa.size();
  std::array<bool, kMaxRank> reduced{};
  if (r > kMaxRank) throw ShapeError(fmt::format("mean: rank of {} above 8", shape_str(sa)));
  for (std::ptrdiff_t ax : axes) {
    const std::ptrdiff_t d = ax < 0 ? ax + std::ptrdiff_t(r) : ax;
    if (d < 0 || d >= std::ptrdiff_t(r) || reduced[std::size_t(d)])
      throw ShapeError(fmt::format("mean: axes [{}] are not distinct axes of {}",
                                   fmt::join(axes, ","), shape_str(sa)));
    reduced[std::size_t(d)] = true;
  }
  // the output's shape, and the strides of the input's axes into it (0 along a reduced axis)
  Shape ys;
  std::size_t count = 1;
  for (std::size_t d = 0; d < r; ++d) {
    if (!reduced[d])
      ys.push_back(sa[d]);
    else {
      count *= sa[d];
      if (keepdims) ys.push_back(1);
    }
  }
  std::size_t i = t.push("mean", {a.id}, [](Tape<T>& t, std::size_t i) {
    std::size_t a = t.in(i, 0);
    const auto& nd = t.node_(i);
    const Shape& sa = t.val(a).shape();
    std::array<std::size_t, kMaxRank> s{};
    for (std::size_t d = 0; d < sa.size(); ++d) s[d] = nd.idx[d];
    const T inv = t.node_(i).s0;
    T* ga = t.grad_zeroed(a);
    const T* gy = t.gy(i).data();
    walk(sa, s, [&](std::size_t e, std::size_t off, std::size_t len, std::size_t step) {
      for (std::size_t l = 0; l < len; ++l) ga[e + l] += gy[off + l * step] * inv;
    });
  });
  auto& nd = t.node_(i);
  nd.own.resize(ys);
  // strides into y of the input's axes, kept in idx for the VJP
  nd.idx.assign(r, 0);
  {
    std::size_t acc = 1;
    for (std::size_t d = r; d-- > 0;)
      if (!reduced[d]) {
        nd.idx[d] = acc;
        acc *= sa[d];
      }
  }
  std::array<std::size_t, kMaxRank> s{};
  for (std::size_t d = 0; d < r; ++d) s[d] = nd.idx[d];
  nd.s0 = T(1) / T(count);
  std::fill(nd.own.begin(), nd.own.end(), T(0));
  const T* x = a.value().data();
  T* y = nd.own.data();
  walk(sa, s, [&](std::size_t e, std::size_t off, std::size_t len, std::size_t step) {
    for (std::size_t l = 0; l < len; ++l) y[off + l * step] += x[e + l];
  });
  for (auto& v : nd.own) v *= nd.s0;
  return {&t, i};
}

#define EBL_INSTANTIATE(T)                                       \
  template Var<T> bmm(Var<T>, Var<T>, bool, bool);               \
  template Var<T> permute(Var<T>, std::span<const std::size_t>); \
  template Var<T> mean(Var<T>, std::span<const std::ptrdiff_t>, bool);

EBL_INSTANTIATE(float)
EBL_INSTANTIATE(double)

}  // namespace ebl
