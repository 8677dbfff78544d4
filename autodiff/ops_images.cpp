// Image ops on NCHW arrays: conv2d (lowered to matrix products through an im2col buffer) and
// avg_pool2d. Same conventions as ops.cpp: the VJP is a capture-less lambda under the forward,
// `i` is the op's node, x/w/b its inputs, gy the incoming cotangent; the formulas are in ops.hpp's
// table. Every buffer is a tape buffer (the node's value, gradient or aux), so a reused tape
// allocates nothing.
#include <algorithm>

#include <fmt/format.h>

#include "autodiff/blas.hpp"
#include "autodiff/op_helpers.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/parallel.hpp"

#pragma GCC diagnostic ignored "-Wshadow"  // as in ops.cpp: the VJPs reuse the forward's names

namespace ebl {
namespace {

using op_detail::tape_of;

// The geometry of one convolution: input [n, c, h, w], weight [o, c, kh, kw], output [n, o, oh, ow].
struct ConvGeom {
  std::size_t n, c, h, w, o, kh, kw, stride, pad, oh, ow;
  std::size_t K() const { return c * kh * kw; }  // rows of the im2col matrix
  std::size_t L() const { return oh * ow; }      // its columns: one per output position
};

ConvGeom conv_geom(const Shape& xs, const Shape& ws, std::size_t stride, std::size_t pad) {
  return {xs[0],
          xs[1],
          xs[2],
          xs[3],
          ws[0],
          ws[2],
          ws[3],
          stride,
          pad,
          (xs[2] + 2 * pad - ws[2]) / stride + 1,
          (xs[3] + 2 * pad - ws[3]) / stride + 1};
}

// The output columns ox whose input column ox·s - p + kj lies inside [0, w): [lo, hi).
inline void valid_range(const ConvGeom& g, std::size_t kj, std::size_t& lo, std::size_t& hi) {
  const std::ptrdiff_t off = std::ptrdiff_t(kj) - std::ptrdiff_t(g.pad),
                       s = std::ptrdiff_t(g.stride);
  // smallest ox with ox·s + off >= 0, and the first ox with ox·s + off >= w
  const std::ptrdiff_t first = off >= 0 ? 0 : (-off + s - 1) / s;
  const std::ptrdiff_t end = (std::ptrdiff_t(g.w) - off + s - 1) / s;
  lo = std::size_t(std::clamp<std::ptrdiff_t>(first, 0, std::ptrdiff_t(g.ow)));
  hi = std::size_t(std::clamp<std::ptrdiff_t>(end, std::ptrdiff_t(lo), std::ptrdiff_t(g.ow)));
}

// Stride 1 with ow == w (a "same" convolution: 2p = kw - 1): output row oy reads input row
// oy - p + ki at column offset kj - p, so over the rows [oy0, oy1) whose input row exists, a row of
// col is the input plane shifted by (ki - p)·w + kj - p: one contiguous run, in which only the
// ow - (hi - lo) columns per row that wrapped around to a neighbouring row are wrong (they lie in
// the padding). The rows [oy0, oy1) of output positions with an input row, for kernel row ki.
inline bool shifted_plane(const ConvGeom& g) {
  return g.stride == 1 && g.ow == g.w;
}
inline void valid_rows(const ConvGeom& g, std::size_t ki, std::size_t& oy0, std::size_t& oy1) {
  const std::ptrdiff_t off = std::ptrdiff_t(ki) - std::ptrdiff_t(g.pad);  // iy = oy + off
  oy0 = std::size_t(std::clamp<std::ptrdiff_t>(-off, 0, std::ptrdiff_t(g.oh)));
  oy1 = std::size_t(std::clamp<std::ptrdiff_t>(std::ptrdiff_t(g.h) - off, std::ptrdiff_t(oy0),
                                               std::ptrdiff_t(g.oh)));
}

// The wrapped columns of a shifted plane's rows [oy0, oy1): ox < lo and ox >= hi, in the padding.
// Column by column (a strided store of a few values per column), not row by row, where each row's
// one or two values would be a call to memset.
template <class T>
void zero_wrapped(const ConvGeom& g, T* row, std::size_t lo, std::size_t hi, std::size_t oy0,
                  std::size_t oy1) {
  for (std::size_t ox = 0; ox < lo; ++ox)
    for (std::size_t oy = oy0; oy < oy1; ++oy) row[oy * g.ow + ox] = T(0);
  for (std::size_t ox = hi; ox < g.ow; ++ox)
    for (std::size_t oy = oy0; oy < oy1; ++oy) row[oy * g.ow + ox] = T(0);
}

// col[K, L] for one image x [c, h, w]: col[(ci kh + ki) kw + kj, oy ow + ox] =
// x[ci, oy s - p + ki, ox s - p + kj], 0 in the padding. Each row of col is written as zeros at
// the padded edges and a contiguous copy (stride 1) or a strided gather in between; for a "same"
// convolution, as one copy of the shifted plane with its wrapped columns then zeroed.
template <class T>
void im2col(const ConvGeom& g, const T* x, T* col) {
  const std::size_t L = g.L();
  for (std::size_t ci = 0; ci < g.c; ++ci)
    for (std::size_t ki = 0; ki < g.kh; ++ki)
      for (std::size_t kj = 0; kj < g.kw; ++kj) {
        T* row = col + ((ci * g.kh + ki) * g.kw + kj) * L;
        std::size_t lo, hi;
        valid_range(g, kj, lo, hi);
        if (shifted_plane(g)) {
          std::size_t oy0, oy1;
          valid_rows(g, ki, oy0, oy1);
          if (oy0 == oy1 || lo == hi) {  // this tap reads only padding
            std::fill(row, row + L, T(0));
            continue;
          }
          std::fill(row, row + oy0 * g.ow, T(0));  // rows above and below the image
          std::fill(row + oy1 * g.ow, row + L, T(0));
          // positions oy0·ow + lo .. (oy1-1)·ow + hi read x[ci] from (oy0 - p + ki)·w + lo - p + kj
          const std::size_t first = oy0 * g.ow + lo, last = (oy1 - 1) * g.ow + hi;
          const T* src = x + (ci * g.h + oy0 + ki - g.pad) * g.w + lo + kj - g.pad;
          std::copy(src, src + (last - first), row + first);
          zero_wrapped(g, row, lo, hi, oy0, oy1);
          continue;
        }
        for (std::size_t oy = 0; oy < g.oh; ++oy) {
          const std::ptrdiff_t iy = std::ptrdiff_t(oy * g.stride + ki) - std::ptrdiff_t(g.pad);
          T* r = row + oy * g.ow;
          if (iy < 0 || iy >= std::ptrdiff_t(g.h)) {
            std::fill(r, r + g.ow, T(0));
            continue;
          }
          std::fill(r, r + lo, T(0));
          std::fill(r + hi, r + g.ow, T(0));
          if (lo == hi) continue;
          // input column of output column ox: ox·s + kj - p (>= 0 for ox >= lo)
          const T* xr = x + (ci * g.h + std::size_t(iy)) * g.w + lo * g.stride + kj - g.pad;
          if (g.stride == 1)
            std::copy(xr, xr + (hi - lo), r + lo);
          else
            for (std::size_t ox = lo; ox < hi; ++ox) r[ox] = xr[(ox - lo) * g.stride];
        }
      }
}

// The adjoint of im2col: gx[c, h, w] += every entry of gcol[K, L] at the pixel it was read from.
// For a "same" convolution gcol's wrapped columns are zeroed first (gcol is scratch), so each row
// of gcol adds to the shifted plane as one contiguous run.
template <class T>
void col2im_add(const ConvGeom& g, T* gcol, T* gx) {
  const std::size_t L = g.L();
  for (std::size_t ci = 0; ci < g.c; ++ci)
    for (std::size_t ki = 0; ki < g.kh; ++ki)
      for (std::size_t kj = 0; kj < g.kw; ++kj) {
        T* row = gcol + ((ci * g.kh + ki) * g.kw + kj) * L;
        std::size_t lo, hi;
        valid_range(g, kj, lo, hi);
        if (shifted_plane(g)) {
          std::size_t oy0, oy1;
          valid_rows(g, ki, oy0, oy1);
          if (oy0 == oy1 || lo == hi) continue;
          zero_wrapped(g, row, lo, hi, oy0, oy1);
          const std::size_t first = oy0 * g.ow + lo, last = (oy1 - 1) * g.ow + hi;
          T* dst = gx + (ci * g.h + oy0 + ki - g.pad) * g.w + lo + kj - g.pad;
          const T* src = row + first;
          for (std::size_t e = 0; e < last - first; ++e) dst[e] += src[e];
          continue;
        }
        for (std::size_t oy = 0; oy < g.oh; ++oy) {
          const std::ptrdiff_t iy = std::ptrdiff_t(oy * g.stride + ki) - std::ptrdiff_t(g.pad);
          if (iy < 0 || iy >= std::ptrdiff_t(g.h) || lo == hi) continue;
          T* xr = gx + (ci * g.h + std::size_t(iy)) * g.w + lo * g.stride + kj - g.pad;
          const T* r = row + oy * g.ow;
          if (g.stride == 1)
            for (std::size_t ox = lo; ox < hi; ++ox) xr[ox - lo] += r[ox];
          else
            for (std::size_t ox = lo; ox < hi; ++ox) xr[(ox - lo) * g.stride] += r[ox];
        }
      }
}

}  // namespace

template <class T>
Var<T> conv2d(Var<T> x, Var<T> w, Var<T> b, std::size_t stride, std::size_t padding) {
  Tape<T>& t = tape_of("conv2d", x, w);
  tape_of("conv2d", x, b);
  const Shape &xs = x.shape(), &ws = w.shape(), &bs = b.shape();
  if (xs.size() != 4 || ws.size() != 4)
    throw ShapeError(fmt::format("conv2d: input {} and weight {} must be [n,c,h,w] and [o,c,kh,kw]",
                                 shape_str(xs), shape_str(ws)));
  if (xs[1] != ws[1])
    throw ShapeError(fmt::format("conv2d: input {} has {} channels, weight {} expects {}",
                                 shape_str(xs), xs[1], shape_str(ws), ws[1]));
  if (bs.size() != 1 || bs[0] != ws[0])
    throw ShapeError(fmt::format("conv2d: bias {} does not match weight {} (want [{}])",
                                 shape_str(bs), shape_str(ws), ws[0]));
  if (stride < 1) throw ShapeError("conv2d: stride must be at least 1");
  if (xs[2] + 2 * padding < ws[2] || xs[3] + 2 * padding < ws[3])
    throw ShapeError(fmt::format("conv2d: kernel {}x{} larger than input {} padded by {}", ws[2],
                                 ws[3], shape_str(xs), padding));
  std::size_t i = t.push("conv2d", {x.id, w.id, b.id}, [](Tape<T>& t, std::size_t i) {
    std::size_t x = t.in(i, 0), w = t.in(i, 1), b = t.in(i, 2);
    auto& nd = t.node_(i);
    const Array<T>&X = t.val(x), &W = t.val(w), &gy = t.gy(i);
    const ConvGeom g = conv_geom(X.shape(), W.shape(), nd.idx[0], nd.idx[1]);
    const std::size_t K = g.K(), L = g.L(), in_size = g.c * g.h * g.w, out_size = g.o * L;
    const bool need_w = t.needs(w), need_x = t.needs(x);
    if (t.needs(b)) {  // gb[o] += Σ_{n, positions} gy
      T* gb = t.grad_zeroed(b);
      for (std::size_t s = 0; s < g.n; ++s)
        for (std::size_t oc = 0; oc < g.o; ++oc) {
          const T* r = gy.data() + s * out_size + oc * L;
          T acc = 0;
          for (std::size_t l = 0; l < L; ++l) acc += r[l];
          gb[oc] += acc;
        }
    }
    if (!need_w && !need_x) return;
    // Blocks of images, one per thread: each has its columns' buffer [K, L] and, with more than
    // one block, its own partial weight gradient [o, K], summed over the blocks afterwards.
    const std::size_t parts = op_detail::split_parts(t, g.n, 1);
    const std::size_t part_size = K * L + (parts > 1 ? g.o * K : 0);
    nd.aux.resize(Shape{parts * part_size});
    T gw_beta = 0, gx_beta = 0;
    T* gw = need_w ? t.grad_for_gemm(w, gw_beta).data() : nullptr;
    // gx: zero-filled by each block for its own images (in parallel) when this is its first
    // contribution, then col2im adds into it
    T* gx = need_x ? t.grad_for_gemm(x, gx_beta).data() : nullptr;
    op_detail::run_blocks(t, g.n, parts, [&](std::size_t part, std::size_t s0, std::size_t s1) {
      T* col = nd.aux.data() + part * part_size;
      T* gw_part = parts > 1 ? col + K * L : gw;
      for (std::size_t s = s0; s < s1; ++s) {
        if (need_w) {  // gW[o, K] += gy_n[o, L] col_nᵀ
          im2col(g, X.data() + s * in_size, col);
          const T beta = s > s0 ? T(1) : (parts > 1 ? T(0) : gw_beta);
          gemm(false, true, g.o, K, L, T(1), gy.data() + s * out_size, L, col, L, beta, gw_part, K);
        }
        if (need_x) {  // gx_n += col2im(Wᵀ gy_n)
          gemm(true, false, K, L, g.o, T(1), W.data(), K, gy.data() + s * out_size, L, T(0), col,
               L);
          if (gx_beta == T(0)) std::fill(gx + s * in_size, gx + (s + 1) * in_size, T(0));
          col2im_add(g, col, gx + s * in_size);
        }
      }
    });
    if (need_w && parts > 1)  // the blocks' partial gradients, in block order
      for (std::size_t e = 0; e < g.o * K; ++e) {
        T acc = gw_beta == T(0) ? T(0) : gw[e];
        for (std::size_t part = 0; part < parts; ++part)
          acc += nd.aux.data()[part * part_size + K * L + e];
        gw[e] = acc;
      }
    t.stats.gemm_backward += g.n * (std::size_t(need_w) + std::size_t(need_x));
  });
  auto& nd = t.node_(i);
  nd.idx.assign({stride, padding});
  const ConvGeom g = conv_geom(xs, ws, stride, padding);
  const std::size_t K = g.K(), L = g.L(), in_size = g.c * g.h * g.w, out_size = g.o * L;
  nd.own.resize(Shape{g.n, g.o, g.oh, g.ow});
  const std::size_t parts = op_detail::split_parts(t, g.n, 1);
  nd.aux.resize(Shape{parts * K * L});
  const T *X = x.value().data(), *W = w.value().data(), *B = b.value().data();
  // y_n[o, L] = W[o, K] col_n[K, L] + b, one block of images per thread, each with its columns
  op_detail::run_blocks(t, g.n, parts, [&](std::size_t part, std::size_t s0, std::size_t s1) {
    T* col = nd.aux.data() + part * K * L;
    for (std::size_t s = s0; s < s1; ++s) {
      im2col(g, X + s * in_size, col);
      T* y = nd.own.data() + s * out_size;
      gemm(false, false, g.o, L, K, T(1), W, K, col, L, T(0), y, L);
      for (std::size_t oc = 0; oc < g.o; ++oc)
        for (std::size_t l = 0; l < L; ++l) y[oc * L + l] += B[oc];
    }
  });
  t.stats.gemm_forward += g.n;
  return {&t, i};
}

template <class T>
Var<T> avg_pool2d(Var<T> x, std::size_t kernel, std::size_t stride) {
  Tape<T>& t = tape_of("avg_pool2d", x);
  const Shape& xs = x.shape();
  if (xs.size() != 4)
    throw ShapeError(fmt::format("avg_pool2d: input {} is not [n,c,h,w]", shape_str(xs)));
  if (stride == 0) stride = kernel;
  if (kernel < 1 || kernel > xs[2] || kernel > xs[3])
    throw ShapeError(
        fmt::format("avg_pool2d: kernel {} does not fit input {}", kernel, shape_str(xs)));
  std::size_t i = t.push("avg_pool2d", {x.id}, [](Tape<T>& t, std::size_t i) {
    std::size_t x = t.in(i, 0);
    const auto& nd = t.node_(i);
    const std::size_t k = nd.idx[0], s = nd.idx[1];
    const Shape &xs = t.val(x).shape(), &ys = nd.own.shape();
    const std::size_t planes = xs[0] * xs[1], h = xs[2], w = xs[3], oh = ys[2], ow = ys[3];
    const T inv = T(1) / T(k * k);
    const T* gy = t.gy(i).data();
    if (k == 2 && s == 2) {  // windows tile the rows: each input row pair gets gy/4 twice over
      // on the first contribution the covered pixels are written (not added) and only the rest
      // (an odd last row or column) zeroed: no pass over the whole gradient to clear it first
      T beta;
      T* gx = t.grad_for_gemm(x, beta).data();
      op_detail::split_range(t, planes, 256, [&](std::size_t p0, std::size_t p1) {
        for (std::size_t p = p0; p < p1; ++p) {
          for (std::size_t oy = 0; oy < oh; ++oy) {
            const T* g = gy + (p * oh + oy) * ow;
            T* r0 = gx + (p * h + 2 * oy) * w;
            T* r1 = r0 + w;
            if (beta == T(0)) {
              for (std::size_t c = 0; c < 2 * ow; ++c) r0[c] = r1[c] = g[c / 2] * inv;
              std::fill(r0 + 2 * ow, r0 + w, T(0));
              std::fill(r1 + 2 * ow, r1 + w, T(0));
            } else {
              for (std::size_t c = 0; c < 2 * ow; ++c) {
                r0[c] += g[c / 2] * inv;
                r1[c] += g[c / 2] * inv;
              }
            }
          }
          if (beta == T(0))
            std::fill(gx + (p * h + 2 * oh) * w, gx + (p + 1) * h * w, T(0));  // rows not covered
        }
      });
      return;
    }
    T* gx = t.grad_zeroed(x);
    for (std::size_t p = 0; p < planes; ++p)  // every pixel of a window gets gy / k²
      for (std::size_t oy = 0; oy < oh; ++oy)
        for (std::size_t ox = 0; ox < ow; ++ox) {
          const T gv = gy[(p * oh + oy) * ow + ox] * inv;
          for (std::size_t ki = 0; ki < k; ++ki) {
            T* r = gx + (p * h + oy * s + ki) * w + ox * s;
            for (std::size_t kj = 0; kj < k; ++kj) r[kj] += gv;
          }
        }
  });
  auto& nd = t.node_(i);
  nd.idx.assign({kernel, stride});
  const std::size_t planes = xs[0] * xs[1], h = xs[2], w = xs[3];
  const std::size_t oh = (h - kernel) / stride + 1, ow = (w - kernel) / stride + 1;
  nd.own.resize(Shape{xs[0], xs[1], oh, ow});
  const T inv = T(1) / T(kernel * kernel);
  const T* X = x.value().data();
  T* Y = nd.own.data();
  if (kernel == 2 && stride == 2) {  // the common case: pairs of the two rows' sums
    op_detail::split_range(t, planes, 256, [&](std::size_t p0, std::size_t p1) {
      for (std::size_t p = p0; p < p1; ++p)
        for (std::size_t oy = 0; oy < oh; ++oy) {
          const T* x0 = X + (p * h + 2 * oy) * w;
          const T* x1 = x0 + w;
          T* y = Y + (p * oh + oy) * ow;
          for (std::size_t ox = 0; ox < ow; ++ox)
            y[ox] = ((x0[2 * ox] + x1[2 * ox]) + (x0[2 * ox + 1] + x1[2 * ox + 1])) * inv;
        }
    });
    return {&t, i};
  }
  for (std::size_t p = 0; p < planes; ++p)
    for (std::size_t oy = 0; oy < oh; ++oy)
      for (std::size_t ox = 0; ox < ow; ++ox) {
        T acc = 0;
        for (std::size_t ki = 0; ki < kernel; ++ki) {
          const T* r = X + (p * h + oy * stride + ki) * w + ox * stride;
          for (std::size_t kj = 0; kj < kernel; ++kj) acc += r[kj];
        }
        Y[(p * oh + oy) * ow + ox] = acc * inv;
      }
  return {&t, i};
}

// ---- conv2d's and avg_pool2d's VJPs as ops of their own -----------------------------------------
// What the recorded backward pass (autodiff/higher_order.cpp) uses as their differentiable VJPs:
// each is linear in each input, and its own VJP is again conv2d or one of these, so the set is
// closed under differentiation. Serial code: they run only when gradients of gradients are asked.

template <class T>
Var<T> conv2d_input_grad(Var<T> gy, Var<T> w, std::size_t h, std::size_t wd, std::size_t stride,
                         std::size_t padding) {
  Tape<T>& t = tape_of("conv2d_input_grad", gy, w);
  const Shape &gs = gy.shape(), &ws = w.shape();
  if (gs.size() != 4 || ws.size() != 4 || gs[1] != ws[0])
    throw ShapeError(fmt::format("conv2d_input_grad: gy {} and weight {} do not match",
                                 shape_str(gs), shape_str(ws)));
  const ConvGeom g = conv_geom(Shape{gs[0], ws[1], h, wd}, ws, stride, padding);
  if (g.oh != gs[2] || g.ow != gs[3])
    throw ShapeError(fmt::format("conv2d_input_grad: gy {} is not the output of a {}x{} input",
                                 shape_str(gs), h, wd));
  std::size_t i = t.push("conv2d_input_grad", {gy.id, w.id}, [](Tape<T>& t, std::size_t i) {
    std::size_t gy = t.in(i, 0), w = t.in(i, 1);
    auto& nd = t.node_(i);
    const Array<T>&GY = t.val(gy), &W = t.val(w), &G = t.gy(i);
    const ConvGeom g = conv_geom(nd.own.shape(), W.shape(), nd.idx[0], nd.idx[1]);
    const std::size_t K = g.K(), L = g.L(), in_size = g.c * g.h * g.w, out_size = g.o * L;
    nd.aux.resize(Shape{K * L});
    T* col = nd.aux.data();
    T* ggy = t.needs(gy) ? t.grad_zeroed(gy) : nullptr;
    T* gw = t.needs(w) ? t.grad_zeroed(w) : nullptr;
    for (std::size_t s = 0; s < g.n; ++s) {  // y_n = col2im(Wᵀ gy_n): its adjoint is conv2d
      im2col(g, G.data() + s * in_size, col);
      if (ggy)
        gemm(false, false, g.o, L, K, T(1), W.data(), K, col, L, T(1), ggy + s * out_size, L);
      if (gw) gemm(false, true, g.o, K, L, T(1), GY.data() + s * out_size, L, col, L, T(1), gw, K);
    }
  });
  auto& nd = t.node_(i);
  nd.idx.assign({stride, padding});
  const std::size_t K = g.K(), L = g.L(), in_size = g.c * g.h * g.w, out_size = g.o * L;
  nd.own.resize(Shape{g.n, g.c, g.h, g.w});
  std::fill(nd.own.begin(), nd.own.end(), T(0));
  nd.aux.resize(Shape{K * L});
  for (std::size_t s = 0; s < g.n; ++s) {
    gemm(true, false, K, L, g.o, T(1), w.value().data(), K, gy.value().data() + s * out_size, L,
         T(0), nd.aux.data(), L);
    col2im_add(g, nd.aux.data(), nd.own.data() + s * in_size);
  }
  return {&t, i};
}

template <class T>
Var<T> conv2d_weight_grad(Var<T> x, Var<T> gy, std::size_t kh, std::size_t kw, std::size_t stride,
                          std::size_t padding) {
  Tape<T>& t = tape_of("conv2d_weight_grad", x, gy);
  const Shape &xs = x.shape(), &gs = gy.shape();
  if (xs.size() != 4 || gs.size() != 4 || xs[0] != gs[0])
    throw ShapeError(fmt::format("conv2d_weight_grad: input {} and gy {} do not match",
                                 shape_str(xs), shape_str(gs)));
  const ConvGeom g = conv_geom(xs, Shape{gs[1], xs[1], kh, kw}, stride, padding);
  if (g.oh != gs[2] || g.ow != gs[3])
    throw ShapeError(fmt::format("conv2d_weight_grad: gy {} is not the output of input {}",
                                 shape_str(gs), shape_str(xs)));
  std::size_t i = t.push("conv2d_weight_grad", {x.id, gy.id}, [](Tape<T>& t, std::size_t i) {
    std::size_t x = t.in(i, 0), gy = t.in(i, 1);
    auto& nd = t.node_(i);
    const Array<T>&X = t.val(x), &GY = t.val(gy), &G = t.gy(i);
    const ConvGeom g = conv_geom(X.shape(), nd.own.shape(), nd.idx[0], nd.idx[1]);
    const std::size_t K = g.K(), L = g.L(), in_size = g.c * g.h * g.w, out_size = g.o * L;
    nd.aux.resize(Shape{K * L});
    T* col = nd.aux.data();
    T* gx = t.needs(x) ? t.grad_zeroed(x) : nullptr;
    T* ggy = t.needs(gy) ? t.grad_zeroed(gy) : nullptr;
    for (std::size_t s = 0; s < g.n; ++s) {  // y = Σ_n gy_n col(x_n)ᵀ, bilinear
      if (gx) {
        gemm(true, false, K, L, g.o, T(1), G.data(), K, GY.data() + s * out_size, L, T(0), col, L);
        col2im_add(g, col, gx + s * in_size);
      }
      if (ggy) {
        im2col(g, X.data() + s * in_size, col);
        gemm(false, false, g.o, L, K, T(1), G.data(), K, col, L, T(1), ggy + s * out_size, L);
      }
    }
  });
  auto& nd = t.node_(i);
  nd.idx.assign({stride, padding});
  const std::size_t K = g.K(), L = g.L(), in_size = g.c * g.h * g.w, out_size = g.o * L;
  nd.own.resize(Shape{g.o, g.c, kh, kw});
  std::fill(nd.own.begin(), nd.own.end(), T(0));
  nd.aux.resize(Shape{K * L});
  for (std::size_t s = 0; s < g.n; ++s) {
    im2col(g, x.value().data() + s * in_size, nd.aux.data());
    gemm(false, true, g.o, K, L, T(1), gy.value().data() + s * out_size, L, nd.aux.data(), L, T(1),
         nd.own.data(), K);
  }
  return {&t, i};
}

template <class T>
Var<T> avg_pool2d_grad(Var<T> gy, std::size_t h, std::size_t w, std::size_t kernel,
                       std::size_t stride) {
  Tape<T>& t = tape_of("avg_pool2d_grad", gy);
  const Shape& gs = gy.shape();
  if (gs.size() != 4 || kernel < 1 || stride < 1 || h < kernel || w < kernel ||
      (h - kernel) / stride + 1 != gs[2] || (w - kernel) / stride + 1 != gs[3])
    throw ShapeError(fmt::format("avg_pool2d_grad: gy {} is not the pooling of a {}x{} input",
                                 shape_str(gs), h, w));
  std::size_t i = t.push("avg_pool2d_grad", {gy.id}, [](Tape<T>& t, std::size_t i) {
    std::size_t gy = t.in(i, 0);
    const auto& nd = t.node_(i);
    const std::size_t k = nd.idx[0], s = nd.idx[1];
    const Shape &ys = nd.own.shape(), &gs = t.val(gy).shape();
    const std::size_t planes = gs[0] * gs[1], h = ys[2], w = ys[3], oh = gs[2], ow = gs[3];
    const T inv = T(1) / T(k * k);
    const T* G = t.gy(i).data();
    T* ggy = t.grad_zeroed(gy);
    for (std::size_t p = 0; p < planes; ++p)  // the adjoint of spreading: average the window
      for (std::size_t oy = 0; oy < oh; ++oy)
        for (std::size_t ox = 0; ox < ow; ++ox) {
          T acc = 0;
          for (std::size_t ki = 0; ki < k; ++ki)
            for (std::size_t kj = 0; kj < k; ++kj)
              acc += G[(p * h + oy * s + ki) * w + ox * s + kj];
          ggy[(p * oh + oy) * ow + ox] += acc * inv;
        }
  });
  auto& nd = t.node_(i);
  nd.idx.assign({kernel, stride});
  const std::size_t planes = gs[0] * gs[1], oh = gs[2], ow = gs[3];
  nd.own.resize(Shape{gs[0], gs[1], h, w});
  std::fill(nd.own.begin(), nd.own.end(), T(0));
  const T inv = T(1) / T(kernel * kernel);
  const T* G = gy.value().data();
  T* Y = nd.own.data();
  for (std::size_t p = 0; p < planes; ++p)
    for (std::size_t oy = 0; oy < oh; ++oy)
      for (std::size_t ox = 0; ox < ow; ++ox) {
        const T v = G[(p * oh + oy) * ow + ox] * inv;
        for (std::size_t ki = 0; ki < kernel; ++ki)
          for (std::size_t kj = 0; kj < kernel; ++kj)
            Y[(p * h + oy * stride + ki) * w + ox * stride + kj] += v;
      }
  return {&t, i};
}

#define EBL_INSTANTIATE(T)                                                                  \
  template Var<T> conv2d(Var<T>, Var<T>, Var<T>, std::size_t, std::size_t);                 \
  template Var<T> avg_pool2d(Var<T>, std::size_t, std::size_t);                             \
  template Var<T> conv2d_input_grad(Var<T>, Var<T>, std::size_t, std::size_t, std::size_t,  \
                                    std::size_t);                                           \
  template Var<T> conv2d_weight_grad(Var<T>, Var<T>, std::size_t, std::size_t, std::size_t, \
                                     std::size_t);                                          \
  template Var<T> avg_pool2d_grad(Var<T>, std::size_t, std::size_t, std::size_t, std::size_t);

EBL_INSTANTIATE(float)
EBL_INSTANTIATE(double)

}  // namespace ebl
