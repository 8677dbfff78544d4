// The n-d ops: conv2d and avg_pool2d against direct loops, bmm, permute and the mean over several
// axes; gradient checks of every input at several shapes (strides 1 and 2, padding 0 and 1, 1×1
// and 3×3 kernels, odd sizes, a batch of one); pruning; shape errors naming the op and shapes.
#include "autodiff/ops.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;
using Catch::Matchers::Contains;

namespace {
// y[n,o,oy,ox] = b[o] + Σ_{c,ki,kj} W[o,c,ki,kj] x[n,c,oy s - p + ki, ox s - p + kj], zero outside
Array<double> direct_conv(const Array<double>& x, const Array<double>& w, const Array<double>& b,
                          std::size_t s, std::size_t p) {
  const std::size_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], wd = x.shape()[3];
  const std::size_t o = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3];
  const std::size_t oh = (h + 2 * p - kh) / s + 1, ow = (wd + 2 * p - kw) / s + 1;
  Array<double> y(Shape{n, o, oh, ow}, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t oc = 0; oc < o; ++oc)
      for (std::size_t oy = 0; oy < oh; ++oy)
        for (std::size_t ox = 0; ox < ow; ++ox) {
          double acc = b(oc);
          for (std::size_t ci = 0; ci < c; ++ci)
            for (std::size_t ki = 0; ki < kh; ++ki)
              for (std::size_t kj = 0; kj < kw; ++kj) {
                const long iy = long(oy * s + ki) - long(p), ix = long(ox * s + kj) - long(p);
                if (iy >= 0 && iy < long(h) && ix >= 0 && ix < long(wd))
                  acc += w(oc, ci, ki, kj) * x(i, ci, std::size_t(iy), std::size_t(ix));
              }
          y(i, oc, oy, ox) = acc;
        }
  return y;
}

struct ConvCase {
  Shape x, w;
  std::size_t stride, pad;
};
}  // namespace

TEST_CASE("conv2d equals a direct convolution and passes the gradient check", "[ops][conv]") {
  const ConvCase cases[] = {
      {{2, 3, 5, 5}, {4, 3, 3, 3}, 1, 1},  // same-size 3×3
      {{2, 3, 5, 5}, {4, 3, 3, 3}, 1, 0},  // valid
      {{1, 2, 7, 6}, {3, 2, 3, 3}, 2, 1},  // stride 2, odd sizes, a batch of one
      {{3, 2, 6, 7}, {2, 2, 3, 3}, 2, 0},
      {{2, 4, 5, 3}, {3, 4, 1, 1}, 1, 0},  // 1×1
      {{1, 3, 4, 5}, {2, 3, 1, 1}, 2, 1},  // 1×1 with stride and padding
      {{2, 1, 6, 6}, {2, 1, 2, 3}, 1, 1},  // a non-square kernel
      // "same" convolutions (stride 1, 2p = kw - 1: im2col copies shifted planes)
      {{1, 2, 6, 5}, {2, 2, 5, 5}, 1, 2},  // 5×5
      {{2, 2, 1, 4}, {3, 2, 3, 3}, 1, 1},  // a single row: every kernel row but one in padding
  };
  std::uint64_t seed = 1;
  for (const auto& cc : cases) {
    INFO("x " << shape_str(cc.x) << " w " << shape_str(cc.w) << " stride " << cc.stride << " pad "
              << cc.pad);
    Array<double> x = randn(cc.x, seed++), w = randn(cc.w, seed++),
                  b = randn(Shape{cc.w[0]}, seed++);
    TD t;
    V y = conv2d(t.constant(x), t.constant(w), t.constant(b), cc.stride, cc.pad);
    Array<double> want = direct_conv(x, w, b, cc.stride, cc.pad);
    REQUIRE(y.shape() == want.shape());
    double worst = 0;
    for (std::size_t e = 0; e < want.size(); ++e)
      worst = std::max(worst, std::abs(y.value().data()[e] - want.data()[e]));
    CHECK(worst < 1e-12);
    const std::size_t s = cc.stride, p = cc.pad;
    expect_gradients([s, p](TD&, In v) { return conv2d(v[0], v[1], v[2], s, p); }, {x, w, b});
  }
}

TEST_CASE("conv2d computes only the gradients asked for", "[ops][conv][prune]") {
  Array<double> x = randn({3, 2, 5, 5}, 1), w = randn({4, 2, 3, 3}, 2), b = randn({4}, 3);
  TD t;
  V xv = t.input(x, true);
  Parameter<double> wp("W", w), bp("b", b);
  V y = sum(conv2d(xv, t.param(wp), t.param(bp), 1, 1));
  t.stats = {};
  t.backward(y, {xv});  // ∇x only: one product per image, no weight gradient
  CHECK(t.stats.gemm_backward == 3);
  const bool untouched =
      std::all_of(wp.grad.begin(), wp.grad.end(), [](double g) { return g == 0; });
  CHECK(untouched);
  t.stats = {};
  t.backward(y, {}, std::vector<Parameter<double>*>{&wp, &bp});  // ∇θ only
  CHECK(t.stats.gemm_backward == 3);
  const double largest = xt::amax(xt::abs(wp.grad))();
  CHECK(largest > 0.0);
  // ∇b = the number of output positions per channel, summed over the batch
  CHECK(bp.grad(0) == Approx(3.0 * 25));
}

TEST_CASE("avg_pool2d equals a direct loop and passes the gradient check", "[ops][pool]") {
  struct Case {
    Shape x;
    std::size_t k, s;
  };
  for (const Case& c :
       {Case{{2, 3, 4, 4}, 2, 2}, Case{{1, 2, 5, 7}, 2, 2}, Case{{2, 1, 5, 5}, 3, 1},
        Case{{1, 1, 6, 6}, 3, 3}, Case{{2, 2, 3, 3}, 1, 1}}) {
    INFO("x " << shape_str(c.x) << " k " << c.k << " s " << c.s);
    Array<double> x = randn(c.x, 11);
    TD t;
    V y = avg_pool2d(t.constant(x), c.k, c.s);
    const std::size_t oh = (c.x[2] - c.k) / c.s + 1, ow = (c.x[3] - c.k) / c.s + 1;
    REQUIRE(y.shape() == Shape{c.x[0], c.x[1], oh, ow});
    for (std::size_t n = 0; n < c.x[0]; ++n)
      for (std::size_t ch = 0; ch < c.x[1]; ++ch)
        for (std::size_t oy = 0; oy < oh; ++oy)
          for (std::size_t ox = 0; ox < ow; ++ox) {
            double acc = 0;
            for (std::size_t i = 0; i < c.k; ++i)
              for (std::size_t j = 0; j < c.k; ++j) acc += x(n, ch, oy * c.s + i, ox * c.s + j);
            CHECK(y.value()(n, ch, oy, ox) == Approx(acc / double(c.k * c.k)).epsilon(1e-12));
          }
    const std::size_t k = c.k, s = c.s;
    expect_gradients([k, s](TD&, In v) { return avg_pool2d(v[0], k, s); }, {x});
  }
}

TEST_CASE("bmm: every transpose combination, against per-batch matmul", "[ops][bmm]") {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      INFO("trans_a " << ta << " trans_b " << tb);
      Array<double> a = randn(ta ? Shape{3, 4, 2} : Shape{3, 2, 4}, 1);
      Array<double> b = randn(tb ? Shape{3, 5, 4} : Shape{3, 4, 5}, 2);
      expect_gradients([ta, tb](TD&, In v) { return bmm(v[0], v[1], ta, tb); }, {a, b});
      TD t;
      V y = bmm(t.constant(a), t.constant(b), ta, tb);
      REQUIRE(y.shape() == Shape{3, 2, 5});
      for (std::size_t p = 0; p < 3; ++p)
        for (std::size_t r = 0; r < 2; ++r)
          for (std::size_t c = 0; c < 5; ++c) {
            double s = 0;
            for (std::size_t k = 0; k < 4; ++k)
              s += (ta ? a(p, k, r) : a(p, r, k)) * (tb ? b(p, c, k) : b(p, k, c));
            CHECK(y.value()(p, r, c) == Approx(s).epsilon(1e-12));
          }
    }
  Array<double> one_a = randn({1, 1, 3}, 3), one_b = randn({1, 3, 1}, 4);  // a batch of one
  expect_gradients([](TD&, In v) { return bmm(v[0], v[1]); }, {one_a, one_b});
}

TEST_CASE("permute reorders axes; its gradient is the inverse permutation", "[ops][permute]") {
  Array<double> a = randn({2, 3, 4, 5}, 5);
  TD t;
  V y = permute(t.constant(a), {2, 0, 3, 1});
  REQUIRE(y.shape() == Shape{4, 2, 5, 3});
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      for (std::size_t k = 0; k < 4; ++k)
        for (std::size_t l = 0; l < 5; ++l) CHECK(y.value()(k, i, l, j) == a(i, j, k, l));
  expect_gradients([](TD&, In v) { return permute(v[0], {2, 0, 3, 1}); }, {a});
  expect_gradients([](TD&, In v) { return permute(v[0], {1, 0}); }, {randn({3, 4}, 6)});
  expect_gradients([](TD&, In v) { return permute(v[0], {0, 1, 2}); }, {randn({2, 1, 3}, 7)});
}

TEST_CASE("mean over several axes equals nested means, with and without keepdims", "[ops][mean]") {
  Array<double> a = randn({2, 3, 4, 5}, 8);
  TD t;
  V g = mean(t.constant(a), {2, 3});  // global average pooling
  REQUIRE(g.shape() == Shape{2, 3});
  V nested = mean(mean(t.constant(a), 3), 2);
  for (std::size_t e = 0; e < 6; ++e)
    CHECK(g.value().data()[e] == Approx(nested.value().data()[e]).epsilon(1e-12));
  CHECK(mean(t.constant(a), {1, -1}, true).shape() == Shape{2, 1, 4, 1});
  CHECK(mean(t.constant(a), {0, 1, 2, 3}).value().size() == 1);
  CHECK(mean(t.constant(a), {0, 1, 2, 3}).value().data()[0] == Approx(xt::mean(a)()));
  expect_gradients([](TD&, In v) { return mean(v[0], {2, 3}); }, {a});
  expect_gradients([](TD&, In v) { return mean(v[0], {0, 2}, true); }, {a});
  expect_gradients([](TD&, In v) { return mean(v[0], {1}); }, {randn({3, 4}, 9)});
}

TEST_CASE("the n-d ops name themselves and the shapes in their errors", "[ops][errors]") {
  TD t;
  V x = t.constant(Array<double>(Shape{8, 3, 28, 28}, 0.0));
  V w = t.constant(Array<double>(Shape{32, 1, 3, 3}, 0.0));
  V b = t.constant(Array<double>(Shape{32}, 0.0));
  CHECK_THROWS_WITH(
      conv2d(x, w, b),
      Contains("conv2d: input [8,3,28,28] has 3 channels, weight [32,1,3,3] expects 1"));
  V w3 = t.constant(Array<double>(Shape{32, 3, 3, 3}, 0.0));
  CHECK_THROWS_WITH(conv2d(x, w3, t.constant(Array<double>(Shape{16}, 0.0))),
                    Contains("conv2d: bias [16]"));
  CHECK_THROWS_WITH(conv2d(t.constant(Array<double>(Shape{1, 3, 2, 2}, 0.0)), w3, b),
                    Contains("kernel 3x3 larger than input [1,3,2,2]"));
  CHECK_THROWS_WITH(avg_pool2d(x, 30),
                    Contains("avg_pool2d: kernel 30 does not fit input [8,3,28,28]"));
  CHECK_THROWS_WITH(bmm(t.constant(Array<double>(Shape{2, 3, 4}, 0.0)),
                        t.constant(Array<double>(Shape{2, 5, 6}, 0.0))),
                    Contains("bmm: [2,3,4] x [2,5,6] do not align"));
  CHECK_THROWS_WITH(permute(x, {0, 1, 1, 2}), Contains("permute: [0,1,1,2] is not a permutation"));
  CHECK_THROWS_WITH(mean(x, {1, 1}), Contains("mean: axes [1,1]"));
}

TEST_CASE("conv2d on a tape with threads agrees with one thread, values and gradients",
          "[ops][conv][threads]") {
  Array<double> x = randn({5, 3, 6, 7}, 21), w = randn({4, 3, 3, 3}, 22), b = randn({4}, 23);
  auto run = [&](std::size_t threads, bool accumulate_twice) {
    TD t;
    t.set_threads(threads);
    Parameter<double> wp("W", w), bp("b", b);
    V xv = t.input(x, true);
    V y = conv2d(xv, t.param(wp), t.param(bp), 2, 1);
    if (accumulate_twice) y = y + conv2d(xv, t.param(wp), t.param(bp), 2, 1);  // fan-out
    Array<double> cot = randn(y.shape(), 24);
    t.backward(sum(y * t.constant(cot)), {xv}, std::vector<Parameter<double>*>{&wp, &bp});
    return std::vector<Array<double>>{y.value(), t.grad(xv), wp.grad, bp.grad};
  };
  for (bool twice : {false, true})
    for (std::size_t threads : {2, 3, 8}) {  // 8 threads: more than the 5 images
      INFO("threads " << threads << " fan-out " << twice);
      auto one = run(1, twice), many = run(threads, twice);
      for (std::size_t k = 0; k < one.size(); ++k) {
        INFO("output " << k);
        CHECK(max_scaled_diff(one[k], many[k]) < 1e-12);
      }
    }
}

TEST_CASE("linear reads an input of more axes as the rows it is stored as", "[ops][nd]") {
  const Array<double> x = randn({3, 2, 2, 2}, 41), w = randn({8, 5}, 42), b = randn({5}, 43);
  Tape<double> t;
  const Array<double> y4 = linear(t.input(x), t.input(w), t.input(b)).value();
  const Array<double> y2 = linear(reshape(t.input(x), {3, 8}), t.input(w), t.input(b)).value();
  CHECK(same(y4, y2));
  expect_gradients([](TD&, In v) { return sum(square(linear(v[0], v[1], v[2]))); }, {x, w, b});
  CHECK_THROWS_WITH(linear(t.input(randn({3, 2, 3}, 44)), t.input(w), t.input(b)),
                    Catch::Contains("linear: x [3,2,3] W [8,5] b [5] do not align"));
}

TEST_CASE("matmul and bmm on a tape with threads agree with one thread, values and gradients",
          "[ops][bmm][threads]") {
  // sizes above the split thresholds: matmul's rows (and gB's rows) and bmm's batch are split
  // The blocks' products may round differently from the whole one (OpenBLAS's Haswell/Zen dgemm
  // does for gB's two 32-row halves), hence a difference relative to the largest element.
  Array<double> a = randn({300, 64}, 31), b = randn({64, 64}, 32);
  Array<double> p = randn({64, 36, 9}, 33), q = randn({64, 9, 64}, 34);
  auto run = [&](std::size_t threads, bool fan_out) {
    TD t;
    t.set_threads(threads);
    V av = t.input(a, true), bv = t.input(b, true), pv = t.input(p, true), qv = t.input(q, true);
    V y = matmul(av, bv), z = bmm(pv, qv);
    if (fan_out) y = y + matmul(av, bv), z = z + bmm(pv, qv);  // gradients added to
    Array<double> cy = randn(y.shape(), 35), cz = randn(z.shape(), 36);
    t.backward(sum(y * t.constant(cy)) + sum(z * t.constant(cz)), {av, bv, pv, qv});
    return std::vector<Array<double>>{y.value(),  z.value(),  t.grad(av),
                                      t.grad(bv), t.grad(pv), t.grad(qv)};
  };
  for (bool fan_out : {false, true})
    for (std::size_t threads : {2, 3}) {
      INFO("threads " << threads << " fan-out " << fan_out);
      auto one = run(1, fan_out), many = run(threads, fan_out);
      for (std::size_t k = 0; k < one.size(); ++k) {
        INFO("output " << k);
        CHECK(max_scaled_diff(one[k], many[k]) < 1e-12);
      }
    }
}
