// Every op: value tests (edge cases included) and a gradient check of every differentiable input,
// broadcasting shapes included.
#include <cmath>
#include <limits>

#include <xtensor/xview.hpp>

#include "autodiff/ops.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {
constexpr double inf = std::numeric_limits<double>::infinity();

Array<double> arr(std::initializer_list<double> v) {
  Array<double> a = Array<double>::from_shape({v.size()});
  std::copy(v.begin(), v.end(), a.begin());
  return a;
}

// Value and gradient of a unary op at given points, on one tape.
struct Eval {
  Array<double> y, g;
};
template <class F>
Eval eval_unary(F f, const Array<double>& x) {
  TD t;
  V xv = t.input(x, true);
  V y = f(xv);
  t.backward(sum(y), {xv});
  return {y.value(), t.grad(xv)};
}
}  // namespace

// ---- arithmetic and broadcasting ---------------------------------------------------------------

TEST_CASE("binary arithmetic: gradients with broadcasting", "[ops][gradcheck]") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {3, 4}},
      {{3, 4}, {4}},
      {{3, 4}, {3, 1}},
      {{3, 1}, {1, 4}},
      {{2, 3, 4}, {3, 1}},
      {{}, {3, 4}},
      {{4}, {2, 3, 4}},
      // a one-element divisor (div's loop path, as in SpectralNorm's W / σ)
      {{3, 4}, {1}},
      {{3, 4}, {1, 1}},
      {{1}, {1}},
      {{}, {}}};
  std::uint64_t seed = 10;
  for (const auto& [sa, sb] : shapes) {
    INFO("shapes " << shape_str(sa) << " and " << shape_str(sb));
    Array<double> a = randn(sa, seed++), b = randn(sb, seed++);
    Array<double> bpos = uniform(sb, seed++, 0.5, 2.0);  // divisor away from zero
    expect_gradients([](TD&, In x) { return add(x[0], x[1]); }, {a, b});
    expect_gradients([](TD&, In x) { return sub(x[0], x[1]); }, {a, b});
    expect_gradients([](TD&, In x) { return mul(x[0], x[1]); }, {a, b});
    expect_gradients([](TD&, In x) { return div(x[0], x[1]); }, {a, bpos});
    expect_gradients([](TD&, In x) { return div(x[1], x[0]); }, {bpos, a});
  }
}

TEST_CASE("division by a one-element array: values and gradients in closed form", "[ops]") {
  for (const Shape& sb : {Shape{}, Shape{1}, Shape{1, 1}}) {
    INFO("divisor shape " << shape_str(sb));
    TD t;
    Array<double> a = randn(Shape{3, 5}, 7);
    Array<double> b = Array<double>::from_shape(sb);
    b.data()[0] = -1.7;
    V av = t.input(a, true), bv = t.input(b, true);
    V y = div(av, bv);
    REQUIRE(y.shape() == a.shape());
    Array<double> w = randn(Shape{3, 5}, 8);  // a cotangent: L = Σ w ⊙ y
    t.backward(sum(mul(t.constant(w), y)), {av, bv});
    double gb = 0;
    for (std::size_t e = 0; e < a.size(); ++e) {
      CHECK(y.value().data()[e] == a.data()[e] / -1.7);
      CHECK(t.grad(av).data()[e] == Approx(w.data()[e] / -1.7).epsilon(1e-14));
      gb -= w.data()[e] * a.data()[e] / (1.7 * 1.7);
    }
    CHECK(t.grad(bv).shape() == sb);
    CHECK(t.grad(bv).data()[0] == Approx(gb).epsilon(1e-12));
  }
}

TEST_CASE("binary arithmetic: values broadcast as numpy", "[ops]") {
  TD t;
  Array<double> a = {{1., 2., 3.}, {4., 5., 6.}};
  V x = t.constant(a), r = t.constant(arr({10., 20., 30.}));
  Array<double> c = Array<double>::from_shape({2, 1});
  c(0, 0) = 2;
  c(1, 0) = 4;
  V col = t.constant(c);
  CHECK((x + r).value()(1, 2) == 36.);
  CHECK((x - r).value()(0, 1) == -18.);
  CHECK((x * col).value()(1, 0) == 16.);
  CHECK((x / col).value()(0, 2) == 1.5);
  CHECK((x + col).shape() == Shape{2, 3});
}

TEST_CASE("scalar forms and neg", "[ops][gradcheck]") {
  Array<double> a = randn({3, 2}, 1), apos = uniform({3, 2}, 2, 0.5, 2);
  expect_gradients([](TD&, In x) { return neg(x[0]); }, {a});
  expect_gradients([](TD&, In x) { return x[0] * 3.0 + 1.5; }, {a});
  expect_gradients([](TD&, In x) { return 2.0 - x[0] / 4.0; }, {a});
  expect_gradients([](TD&, In x) { return 3.0 / x[0]; }, {apos});
  TD t;
  V x = t.constant(a);
  CHECK((2.0 - x).value()(1, 1) == 2.0 - a(1, 1));
  CHECK((x / 4.0).value()(2, 0) == Approx(a(2, 0) / 4.0));
  CHECK((3.0 / x).value()(0, 1) == Approx(3.0 / a(0, 1)));
  CHECK((-x).value()(0, 0) == -a(0, 0));
}

// ---- matrix products ---------------------------------------------------------------------------

TEST_CASE("matmul: all four transpose combinations", "[ops][gradcheck]") {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      INFO("trans_a " << ta << " trans_b " << tb);
      Array<double> a = randn(ta ? Shape{4, 3} : Shape{3, 4}, 1);
      Array<double> b = randn(tb ? Shape{5, 4} : Shape{4, 5}, 2);
      GradcheckFn f = [ta, tb](TD&, In x) { return matmul(x[0], x[1], ta, tb); };
      expect_gradients(f, {a, b});
      // value against a plain triple loop
      TD t;
      V y = matmul(t.constant(a), t.constant(b), ta, tb);
      REQUIRE(y.shape() == Shape{3, 5});
      for (std::size_t r = 0; r < 3; ++r)
        for (std::size_t c = 0; c < 5; ++c) {
          double s = 0;
          for (std::size_t k = 0; k < 4; ++k)
            s += (ta ? a(k, r) : a(r, k)) * (tb ? b(c, k) : b(k, c));
          CHECK(y.value()(r, c) == Approx(s).epsilon(1e-12));
        }
    }
}

TEST_CASE("linear: y = xW + b with gradients of x and W and b", "[ops][gradcheck]") {
  Array<double> x = randn({5, 3}, 1), w = randn({3, 4}, 2), b = randn({4}, 3);
  expect_gradients([](TD&, In v) { return linear(v[0], v[1], v[2]); }, {x, w, b});
  TD t;
  V y = linear(t.constant(x), t.constant(w), t.constant(b));
  V ref = matmul(t.constant(x), t.constant(w)) + t.constant(b);
  for (std::size_t e = 0; e < y.size(); ++e)
    CHECK(y.value().data()[e] == Approx(ref.value().data()[e]));
}

// ---- reductions --------------------------------------------------------------------------------

TEST_CASE("sum and mean: all or per axis with keepdims", "[ops][gradcheck]") {
  Array<double> a = randn({2, 3, 4}, 5);
  expect_gradients([](TD&, In x) { return sum(x[0]); }, {a});
  expect_gradients([](TD&, In x) { return mean(x[0]); }, {a});
  for (std::ptrdiff_t ax : {0, 1, 2, -1})
    for (bool kd : {false, true}) {
      INFO("axis " << ax << " keepdims " << kd);
      GradcheckFn fs = [ax, kd](TD&, In x) { return sum(x[0], ax, kd); };
      GradcheckFn fm = [ax, kd](TD&, In x) { return mean(x[0], ax, kd); };
      expect_gradients(fs, {a});
      expect_gradients(fm, {a});
    }
  TD t;
  V x = t.constant(a);
  CHECK(sum(x, 1).shape() == Shape{2, 4});
  CHECK(sum(x, 1, true).shape() == Shape{2, 1, 4});
  CHECK(sum(x, -1).shape() == Shape{2, 3});
  double s = 0;
  for (std::size_t k = 0; k < 3; ++k) s += a(1, k, 2);
  CHECK(sum(x, 1).value()(1, 2) == Approx(s));
  CHECK(mean(x, 1).value()(1, 2) == Approx(s / 3));
  CHECK(mean(x).item() == Approx(xt::mean(a)()));
}

// ---- elementwise functions ---------------------------------------------------------------------

TEST_CASE("elementwise functions: gradients", "[ops][gradcheck]") {
  Array<double> a = randn({3, 4}, 7), apos = uniform({3, 4}, 8, 0.3, 3.0);
  Array<double> aoff = randn_off_zero({3, 4}, 9);
  expect_gradients([](TD&, In x) { return exp(x[0]); }, {a});
  expect_gradients([](TD&, In x) { return log(x[0]); }, {apos});
  expect_gradients([](TD&, In x) { return sqrt(x[0]); }, {apos});
  expect_gradients([](TD&, In x) { return square(x[0]); }, {a});
  expect_gradients([](TD&, In x) { return pow(x[0], 2.5); }, {apos});
  expect_gradients([](TD&, In x) { return pow(x[0], -1.5); }, {apos});
  expect_gradients([](TD&, In x) { return abs(x[0]); }, {aoff});
  expect_gradients([](TD&, In x) { return relu(x[0]); }, {aoff});
  expect_gradients([](TD&, In x) { return leaky_relu(x[0], 0.1); }, {aoff});
  expect_gradients([](TD&, In x) { return sigmoid(x[0]); }, {a});
  expect_gradients([](TD&, In x) { return tanh(x[0]); }, {a});
  expect_gradients([](TD&, In x) { return softplus(x[0]); }, {a});
  expect_gradients([](TD&, In x) { return silu(x[0]); }, {a});
  // silu's VJP adds to a gradient another consumer of its input already wrote (fan-out)
  expect_gradients([](TD&, In x) { return silu(x[0]) + x[0] * x[0]; }, {a});
  expect_gradients([](TD&, In x) { return clamp(x[0], -0.5, 0.7); }, {aoff});
}

TEST_CASE("elementwise functions: values against the standard library", "[ops]") {
  Array<double> a = randn({10}, 3);
  auto check = [&](auto op, auto ref) {
    TD t;
    V y = op(t.constant(a));
    for (std::size_t e = 0; e < a.size(); ++e)
      CHECK(y.value()(e) == Approx(ref(a(e))).epsilon(1e-12));
  };
  check([](V x) { return exp(x); }, [](double v) { return std::exp(v); });
  check([](V x) { return tanh(x); }, [](double v) { return std::tanh(v); });
  check([](V x) { return sigmoid(x); }, [](double v) { return 1 / (1 + std::exp(-v)); });
  check([](V x) { return softplus(x); }, [](double v) { return std::log(1 + std::exp(v)); });
  check([](V x) { return silu(x); }, [](double v) { return v / (1 + std::exp(-v)); });
  check([](V x) { return square(x); }, [](double v) { return v * v; });
  check([](V x) { return abs(x); }, [](double v) { return std::abs(v); });
  check([](V x) { return relu(x); }, [](double v) { return v > 0 ? v : 0.0; });
  a = uniform({10}, 4, 0.1, 5.0);  // positive arguments for log, sqrt and pow
  check([](V x) { return log(x); }, [](double v) { return std::log(v); });
  check([](V x) { return sqrt(x); }, [](double v) { return std::sqrt(v); });
  check([](V x) { return pow(x, 2.5); }, [](double v) { return std::pow(v, 2.5); });
  check([](V x) { return pow(x, -1.5); }, [](double v) { return std::pow(v, -1.5); });
  check([](V x) { return leaky_relu(x, 0.1); }, [](double v) { return v > 0 ? v : 0.1 * v; });
}

TEST_CASE("kinks take the documented subgradient", "[ops][edge]") {
  Array<double> z = arr({0.0});
  CHECK(eval_unary([](V x) { return relu(x); }, z).g(0) == 0.0);
  CHECK(eval_unary([](V x) { return abs(x); }, z).g(0) == 0.0);
  CHECK(eval_unary([](V x) { return leaky_relu(x, 0.1); }, z).g(0) == Approx(0.1));
  // clamp passes the gradient at its bounds (PyTorch's convention) and blocks it outside
  Eval c = eval_unary([](V x) { return clamp(x, -1.0, 1.0); }, arr({-1.0, 1.0, -1.5, 1.5, 0.3}));
  CHECK(c.g(0) == 1.0);
  CHECK(c.g(1) == 1.0);
  CHECK(c.g(2) == 0.0);
  CHECK(c.g(3) == 0.0);
  CHECK(c.y(2) == -1.0);
  CHECK(c.y(3) == 1.0);
  CHECK(c.y(4) == 0.3);
}

TEST_CASE("softplus and sigmoid at very large inputs", "[ops][edge]") {
  Eval sp = eval_unary([](V x) { return softplus(x); }, arr({1000., -1000., -50., 50., 0.}));
  CHECK(sp.y(0) == 1000.);
  CHECK(sp.y(1) == 0.);
  CHECK(sp.y(2) == Approx(std::exp(-50.)).epsilon(1e-12));  // full relative precision in the tail
  CHECK(sp.y(3) == 50.);
  CHECK(sp.y(4) == Approx(std::log(2.)));
  CHECK(sp.g(0) == 1.);
  CHECK(sp.g(1) == 0.);
  CHECK(sp.g(2) == Approx(std::exp(-50.)).epsilon(1e-12));
  CHECK(sp.g(4) == Approx(0.5));
  Eval sg = eval_unary([](V x) { return sigmoid(x); }, arr({1000., -1000.}));
  CHECK(sg.y(0) == 1.);
  CHECK(sg.y(1) == 0.);
  CHECK(sg.g(0) == 0.);
  CHECK(sg.g(1) == 0.);
  Eval sl = eval_unary([](V x) { return silu(x); }, arr({-1000., 1000.}));
  CHECK(sl.y(0) == 0.);
  CHECK(sl.y(1) == 1000.);
  CHECK(sl.g(0) == 0.);
  CHECK(sl.g(1) == 1.);
}

TEST_CASE("exp and log and division at the edges of the reals", "[ops][edge]") {
  TD t;
  CHECK(exp(t.constant(arr({1000.}))).value()(0) == inf);
  CHECK(log(t.constant(arr({0.}))).value()(0) == -inf);
  CHECK(std::isnan(log(t.constant(arr({-1.}))).value()(0)));
  CHECK((1.0 / t.constant(arr({0.}))).value()(0) == inf);
  CHECK(sqrt(t.constant(arr({0.}))).value()(0) == 0.);
}

// ---- softmax family and extrema ----------------------------------------------------------------

TEST_CASE("logsumexp and log_softmax and softmax: gradients along every axis", "[ops][gradcheck]") {
  Array<double> a = randn({2, 3, 4}, 11);
  for (std::ptrdiff_t ax : {0, 1, 2, -1}) {
    INFO("axis " << ax);
    GradcheckFn lse = [ax](TD&, In x) { return logsumexp(x[0], ax); };
    GradcheckFn lsek = [ax](TD&, In x) { return logsumexp(x[0], ax, true); };
    GradcheckFn lsm = [ax](TD&, In x) { return log_softmax(x[0], ax); };
    GradcheckFn sm = [ax](TD&, In x) { return softmax(x[0], ax); };
    expect_gradients(lse, {a});
    expect_gradients(lsek, {a});
    expect_gradients(lsm, {a});
    expect_gradients(sm, {a});
  }
}

TEST_CASE("logsumexp is stable at large and infinite inputs", "[ops][edge]") {
  TD t;
  Array<double> big = {{1000., 1000.}, {-1000., -1000.}};
  V x = t.input(big, true);
  V y = logsumexp(x, 1);
  CHECK(y.value()(0) == Approx(1000. + std::log(2.)));
  CHECK(y.value()(1) == Approx(-1000. + std::log(2.)));
  t.backward(sum(y), {x});
  for (double g : t.grad(x)) CHECK(g == Approx(0.5));

  Array<double> infs = {{-inf, -inf}, {inf, 0.}, {-inf, 2.}};
  V xi = t.input(infs, true);
  V yi = logsumexp(xi, 1);
  CHECK(yi.value()(0) == -inf);
  CHECK(yi.value()(1) == inf);
  CHECK(yi.value()(2) == 2.);
  t.backward(sum(yi), {xi});
  const Array<double>& g = t.grad(xi);
  CHECK(g(0, 0) == 0.);  // NOTE: gradient set to 0 where the result is infinite
  CHECK(g(1, 1) == 0.);
  CHECK(g(2, 0) == 0.);
  CHECK(g(2, 1) == 1.);

  V ls = log_softmax(t.constant(big), 1);
  CHECK(ls.value()(0, 0) == Approx(-std::log(2.)));
  V sm = softmax(t.constant(Array<double>{{1000., 0.}}), 1);
  CHECK(sm.value()(0, 0) == 1.);
  CHECK(sm.value()(0, 1) == 0.);
}

TEST_CASE("softmax rows sum to one and equal exp(log_softmax)", "[ops]") {
  TD t;
  V x = t.constant(randn({4, 6}, 3));
  V s = softmax(x, 1), ls = log_softmax(x, 1);
  V rs = sum(s, 1);
  for (std::size_t r = 0; r < 4; ++r) CHECK(rs.value()(r) == Approx(1.0));
  for (std::size_t e = 0; e < 24; ++e)
    CHECK(s.value().data()[e] == Approx(std::exp(ls.value().data()[e])));
}

TEST_CASE("max and min along an axis: values and gradients and ties", "[ops][gradcheck]") {
  Array<double> a = randn({3, 5}, 13);
  for (std::ptrdiff_t ax : {0, 1})
    for (bool kd : {false, true}) {
      GradcheckFn fmax = [ax, kd](TD&, In x) { return max(x[0], ax, kd); };
      GradcheckFn fmin = [ax, kd](TD&, In x) { return min(x[0], ax, kd); };
      expect_gradients(fmax, {a});
      expect_gradients(fmin, {a});
    }
  TD t;
  V x = t.constant(a);
  V m = max(x, 1), n = min(x, 0);
  for (std::size_t r = 0; r < 3; ++r) CHECK(m.value()(r) == xt::amax(xt::view(a, r, xt::all()))());
  for (std::size_t c = 0; c < 5; ++c) CHECK(n.value()(c) == xt::amin(xt::view(a, xt::all(), c))());
  // NOTE: with ties the gradient goes to the first extremal entry only
  Eval tie = eval_unary([](V v) { return max(v, 0); }, arr({1., 3., 3., 2.}));
  CHECK(tie.y() == 3.);
  CHECK(tie.g(1) == 1.);
  CHECK(tie.g(2) == 0.);
}

// ---- shape and indexing ------------------------------------------------------------------------

TEST_CASE("reshape and transpose", "[ops][gradcheck]") {
  Array<double> a = randn({3, 4}, 17);
  expect_gradients([](TD&, In x) { return reshape(x[0], {2, -1}); }, {a});
  expect_gradients([](TD&, In x) { return reshape(x[0], {12}); }, {a});
  expect_gradients([](TD&, In x) { return transpose(x[0]); }, {a});
  TD t;
  V x = t.constant(a);
  CHECK(reshape(x, {2, -1}).shape() == Shape{2, 6});
  CHECK(reshape(x, {-1}).value()(5) == a(1, 1));
  CHECK(transpose(x).value()(3, 2) == a(2, 3));
}

TEST_CASE("rows and cols and gather (repeated indices accumulate)", "[ops][gradcheck]") {
  Array<double> a = randn({4, 5}, 19);
  static const std::vector<std::size_t> ri = {2, 0, 2}, ci = {4, 1, 1, 3}, gi = {3, 0, 4, 4};
  expect_gradients([](TD&, In x) { return rows(x[0], ri); }, {a});
  expect_gradients([](TD&, In x) { return cols(x[0], ci); }, {a});
  expect_gradients([](TD&, In x) { return gather(x[0], gi); }, {a});
  TD t;
  V x = t.input(a, true);
  V r = rows(x, ri), c = cols(x, ci), g = gather(x, gi);
  CHECK(r.value()(2, 3) == a(2, 3));
  CHECK(c.value()(1, 0) == a(1, 4));
  CHECK(g.shape() == Shape{4});
  CHECK(g.value()(2) == a(2, 4));
  t.backward(sum(r), {x});
  CHECK(t.grad(x)(2, 0) == 2.);  // row 2 selected twice
  CHECK(t.grad(x)(1, 0) == 0.);
}

TEST_CASE("concat along an axis", "[ops][gradcheck]") {
  Array<double> a = randn({2, 3}, 1), b = randn({2, 1}, 2), c = randn({2, 2}, 3),
                d = randn({1, 3}, 4);
  expect_gradients([](TD&, In x) { return concat({x[0], x[1], x[2]}, 1); }, {a, b, c});
  expect_gradients([](TD&, In x) { return concat({x[0], x[1]}, 0); }, {a, d});
  TD t;
  V y = concat({t.constant(a), t.constant(b), t.constant(c)}, -1);
  REQUIRE(y.shape() == Shape{2, 6});
  CHECK(y.value()(1, 2) == a(1, 2));
  CHECK(y.value()(1, 3) == b(1, 0));
  CHECK(y.value()(0, 5) == c(0, 1));
  V z = concat({t.constant(a), t.constant(d)}, 0);
  CHECK(z.value()(2, 1) == d(0, 1));
}

TEST_CASE("compositions: an RBM-style free energy and a LeCun-style loss", "[ops][gradcheck]") {
  // F(v) = -v·b - Σ_j softplus(c_j + (vW)_j), the kind of graph the RBM issue builds
  Array<double> v = randn({3, 4}, 1), w = randn({4, 2}, 2), b = randn({4}, 3), c = randn({2}, 4);
  expect_gradients(
      [](TD&, In x) {
        V vb = sum(mul(x[0], x[2]), 1);
        return neg(vb) - sum(softplus(linear(x[0], x[1], x[3])), 1);
      },
      {v, w, b, c});
  // hinge on the energy of the correct answer against the lowest other: relu(m + E(Y) - min E(Ȳ))
  Array<double> e = randn({4, 5}, 5);
  static const std::vector<std::size_t> y = {1, 0, 4, 2};
  expect_gradients(
      [](TD& t, In x) {
        Array<double> mask = Array<double>::from_shape({4, 5});
        mask.fill(0.);
        for (std::size_t r = 0; r < 4; ++r) mask(r, y[r]) = 1e9;
        V e_pos = gather(x[0], y);
        V e_neg = min(x[0] + t.constant(mask), 1);
        return mean(relu(1.0 + e_pos - e_neg));
      },
      {e});
}
