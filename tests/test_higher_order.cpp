// Gradients of gradients (autodiff/higher_order.hpp): every op's differentiable VJP checked to
// second order — the recorded gradient's values equal the first-order gradient, and the recorded
// backward differentiated again equals finite differences of first-order gradients (float64,
// random cotangents and directions) — and the helpers built on it against closed forms.
#include <cmath>

#include <xtensor-blas/xlinalg.hpp>

#include "autodiff/higher_order.hpp"
#include "autodiff/layers.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;
using Catch::Matchers::Contains;

namespace {

// Each op is checked bare and under tanh (so that even a linear op's VJP is differentiated
// through a nonlinear context: its cotangent then depends on x).
void expect_second_order(const GradcheckFn& f, std::vector<Array<double>> inputs) {
  for (bool wrapped : {false, true}) {
    GradcheckFn g = wrapped ? GradcheckFn([&](TD& t, In x) { return tanh(f(t, x)); }) : f;
    GradcheckReport r =
        second_order_gradcheck(g, inputs, {.eps = 1e-5, .rtol = 1e-5, .atol = 1e-7});
    INFO((wrapped ? "tanh(f): " : "f: ") << r.str());
    CHECK(r.ok);
    CHECK(r.checked > 0);
  }
}

}  // namespace

TEST_CASE("second order: arithmetic, with broadcasting", "[higher][gradcheck]") {
  const auto a = randn({3, 4}, 1), row = randn({1, 4}, 2), col = randn({3, 1}, 3),
             vec = randn({4}, 4), pos = uniform({3, 4}, 5, 0.5, 2.0);
  for (const auto& b : {a, row, col, vec}) {
    expect_second_order([](TD&, In x) { return add(x[0], x[1]); }, {a, b});
    expect_second_order([](TD&, In x) { return sub(x[1], x[0]); }, {a, b});
    expect_second_order([](TD&, In x) { return mul(x[0], x[1]); }, {a, b});
  }
  expect_second_order([](TD&, In x) { return div(x[0], x[1]); }, {a, pos});
  expect_second_order([](TD&, In x) { return div(x[0], x[1]); }, {col, pos});
  expect_second_order([](TD&, In x) { return neg(x[0]); }, {a});
  expect_second_order([](TD&, In x) { return affine(x[0], 1.5, -0.25); }, {a});
  expect_second_order([](TD&, In x) { return rdiv(2.0, x[0]); }, {pos});
}

TEST_CASE("second order: matmul, linear and bmm with every transpose", "[higher][gradcheck]") {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      INFO("ta " << ta << " tb " << tb);
      const auto a = randn(ta ? Shape{4, 3} : Shape{3, 4}, 10),
                 b = randn(tb ? Shape{2, 4} : Shape{4, 2}, 11);
      expect_second_order([=](TD&, In x) { return matmul(x[0], x[1], ta, tb); }, {a, b});
      const auto ba = randn(ta ? Shape{2, 4, 3} : Shape{2, 3, 4}, 12),
                 bb = randn(tb ? Shape{2, 5, 4} : Shape{2, 4, 5}, 13);
      expect_second_order([=](TD&, In x) { return bmm(x[0], x[1], ta, tb); }, {ba, bb});
    }
  expect_second_order([](TD&, In x) { return linear(x[0], x[1], x[2]); },
                      {randn({5, 3}, 14), randn({3, 2}, 15), randn({2}, 16)});
  // a [n, c, h, w] input read as rows
  expect_second_order([](TD&, In x) { return linear(x[0], x[1], x[2]); },
                      {randn({2, 2, 2, 3}, 17), randn({12, 3}, 18), randn({3}, 19)});
}

TEST_CASE("second order: reductions", "[higher][gradcheck]") {
  const auto a = randn({2, 3, 4}, 20);
  expect_second_order([](TD&, In x) { return sum(square(x[0])); }, {a});
  expect_second_order([](TD&, In x) { return mean(square(x[0])); }, {a});
  for (std::ptrdiff_t ax : {0, 1, 2, -1})
    for (bool kd : {false, true}) {
      INFO("axis " << ax << " keepdims " << kd);
      expect_second_order([=](TD&, In x) { return sum(x[0], ax, kd); }, {a});
      expect_second_order([=](TD&, In x) { return mean(x[0], ax, kd); }, {a});
      expect_second_order([=](TD&, In x) { return logsumexp(x[0], ax, kd); }, {a});
      expect_second_order([=](TD&, In x) { return max(x[0], ax, kd); }, {a});
      expect_second_order([=](TD&, In x) { return min(x[0], ax, kd); }, {a});
    }
  const std::ptrdiff_t axes[2] = {0, 2};
  expect_second_order([&](TD&, In x) { return mean(x[0], std::span<const std::ptrdiff_t>(axes)); },
                      {a});
  expect_second_order(
      [&](TD&, In x) { return mean(x[0], std::span<const std::ptrdiff_t>(axes), true); }, {a});
}

TEST_CASE("second order: elementwise functions", "[higher][gradcheck]") {
  const auto a = randn_off_zero({3, 4}, 30), pos = uniform({3, 4}, 31, 0.3, 2.0);
  expect_second_order([](TD&, In x) { return exp(x[0]); }, {a});
  expect_second_order([](TD&, In x) { return log(x[0]); }, {pos});
  expect_second_order([](TD&, In x) { return sqrt(x[0]); }, {pos});
  expect_second_order([](TD&, In x) { return square(x[0]); }, {a});
  expect_second_order([](TD&, In x) { return pow(x[0], 2.5); }, {pos});
  expect_second_order([](TD&, In x) { return abs(x[0]); }, {a});
  expect_second_order([](TD&, In x) { return relu(x[0]); }, {a});
  expect_second_order([](TD&, In x) { return leaky_relu(x[0], 0.1); }, {a});
  expect_second_order([](TD&, In x) { return clamp(x[0], -0.5, 0.7); }, {a});
  expect_second_order([](TD&, In x) { return sigmoid(x[0]); }, {a});
  expect_second_order([](TD&, In x) { return tanh(x[0]); }, {a});
  expect_second_order([](TD&, In x) { return softplus(x[0]); }, {a});
  expect_second_order([](TD&, In x) { return silu(x[0]); }, {a});
  for (std::ptrdiff_t ax : {0, 1}) {
    expect_second_order([=](TD&, In x) { return log_softmax(x[0], ax); }, {a});
    expect_second_order([=](TD&, In x) { return softmax(x[0], ax); }, {a});
  }
}

TEST_CASE("second order: shapes and indexing", "[higher][gradcheck]") {
  const auto a = randn({3, 4}, 40), c = randn({2, 3, 4}, 41);
  expect_second_order([](TD&, In x) { return reshape(x[0], {4, 3}); }, {a});
  expect_second_order([](TD&, In x) { return transpose(x[0]); }, {a});
  const std::vector<std::size_t> r = {2, 0, 2}, k = {3, 1, 1, 0, 3};
  expect_second_order([&](TD&, In x) { return rows(x[0], r); }, {a});
  expect_second_order([&](TD&, In x) { return cols(x[0], k); }, {a});
  const std::vector<std::size_t> g = {1, 3, 1};
  expect_second_order([&](TD&, In x) { return gather(x[0], g); }, {a});
  for (std::ptrdiff_t ax : {0, 1, 2}) {
    INFO("concat axis " << ax);
    Shape s2 = c.shape();
    s2[std::size_t(ax)] = 2;
    expect_second_order(
        [=](TD&, In x) {
          const std::vector<V> parts{x[0], x[1], x[0]};
          return concat(std::span<const V>(parts), ax);
        },
        {c, randn(s2, 42)});
  }
  expect_second_order([](TD&, In x) { return permute(x[0], {2, 0, 1}); }, {c});
  expect_second_order([](TD&, In x) { return permute(x[0], {1, 2, 0}); }, {c});
}

TEST_CASE("second order: an MLP energy, and a third derivative", "[higher][gradcheck]") {
  for (Activation act :
       {Activation::Silu, Activation::Tanh, Activation::Softplus, Activation::Sigmoid}) {
    Rng rng(50);
    MLP<double> mlp({3, 8, 8, 1}, act, rng);
    expect_second_order([&](TD& t, In x) { return mlp(t, x[0]); }, {randn({4, 3}, 51)});
  }
  // d³/dx³ x⁴ = 24 x, by recording three times
  TD t;
  V x = t.input(Array<double>{0.7, -1.3}, true);
  V y = sum(pow(x, 4.0));
  V d1 = gradients(y, {x})[0];
  V d2 = gradients(sum(d1), {x})[0];  // (elementwise: the diagonal of the Hessian)
  V d3 = gradients(sum(d2), {x})[0];
  CHECK(d1.value()(0) == Approx(4 * std::pow(0.7, 3)).epsilon(1e-12));
  CHECK(d2.value()(1) == Approx(12 * 1.3 * 1.3).epsilon(1e-12));
  CHECK(d3.value()(0) == Approx(24 * 0.7).epsilon(1e-12));
  CHECK(d3.value()(1) == Approx(24 * -1.3).epsilon(1e-12));
}

TEST_CASE("second order: conv2d and pooling, and their VJPs as ops", "[higher][gradcheck]") {
  struct Geometry {
    std::size_t n, c, h, w, o, k, stride, pad;
  };
  for (const Geometry& g : {Geometry{2, 2, 5, 5, 3, 3, 1, 1}, Geometry{1, 1, 6, 5, 2, 3, 2, 0},
                            Geometry{2, 3, 4, 4, 2, 1, 1, 0}, Geometry{1, 2, 7, 6, 2, 3, 2, 1}}) {
    INFO("n " << g.n << " c " << g.c << " " << g.h << "x" << g.w << " o " << g.o << " k " << g.k
              << " stride " << g.stride << " pad " << g.pad);
    const auto x = randn({g.n, g.c, g.h, g.w}, 100), w = randn({g.o, g.c, g.k, g.k}, 101),
               b = randn({g.o}, 102);
    const std::size_t oh = (g.h + 2 * g.pad - g.k) / g.stride + 1,
                      ow = (g.w + 2 * g.pad - g.k) / g.stride + 1;
    const auto gy = randn({g.n, g.o, oh, ow}, 103);
    const std::size_t s = g.stride, p = g.pad, h = g.h, wd = g.w, k = g.k;
    expect_second_order([=](TD&, In v) { return conv2d(v[0], v[1], v[2], s, p); }, {x, w, b});
    // the VJP ops: first order by the ordinary check, then second order
    GradcheckFn in_grad = [=](TD&, In v) { return conv2d_input_grad(v[0], v[1], h, wd, s, p); };
    GradcheckFn w_grad = [=](TD&, In v) { return conv2d_weight_grad(v[0], v[1], k, k, s, p); };
    expect_gradients(in_grad, {gy, w});
    expect_gradients(w_grad, {x, gy});
    expect_second_order(in_grad, {gy, w});
    expect_second_order(w_grad, {x, gy});
    // and they are conv2d's VJP: <gy, conv2d(x)> differentiated = the ops' values
    TD t;
    V xv = t.input(x, true), wv = t.input(w, true);
    t.backward(sum(mul(conv2d(xv, wv, t.constant(b), s, p), t.constant(gy))), {xv, wv});
    CHECK(max_rel_diff(conv2d_input_grad(t.constant(gy), t.constant(w), h, wd, s, p).value(),
                       t.grad(xv)) < 1e-13);
    CHECK(max_rel_diff(conv2d_weight_grad(t.constant(x), t.constant(gy), k, k, s, p).value(),
                       t.grad(wv)) < 1e-13);
  }
  const auto x = randn({2, 2, 6, 5}, 104);
  for (std::size_t k : {2, 3}) {
    const std::size_t st = k == 2 ? 2 : 1;
    expect_second_order([=](TD&, In v) { return avg_pool2d(v[0], k, st); }, {x});
    const std::size_t oh = (6 - k) / st + 1, ow = (5 - k) / st + 1;
    GradcheckFn up = [=](TD&, In v) { return avg_pool2d_grad(v[0], 6, 5, k, st); };
    expect_gradients(up, {randn({2, 2, oh, ow}, 105)});
    expect_second_order(up, {randn({2, 2, oh, ow}, 105)});
  }
  // a small CNN energy end to end
  const Array<double> w1 = 0.5 * randn({3, 1, 3, 3}, 107), b1 = randn({3}, 108),
                     lw = 0.3 * randn({12, 1}, 109);
  expect_second_order(
      [&](TD& t, In v) {
        V h = silu(conv2d(v[0], t.constant(w1), t.constant(b1), 1, 1));
        V pooled = avg_pool2d(h, 2, 2);
        return linear(pooled, t.constant(lw), t.constant(Array<double>{0.1}));
      },
      {randn({2, 1, 4, 4}, 110)});
}

TEST_CASE("an op without a differentiable VJP is named; none is needed off the path", "[higher]") {
  TD t;
  V x = t.input(randn({3}, 60), true);
  // a user's own op, pushed on the tape with an array VJP only
  const std::size_t id = t.push("my_cube", {x.id}, [](TD& tp, std::size_t i) {
    const auto& a = tp.val(tp.in(i, 0));
    tp.accumulate(tp.in(i, 0), 3.0 * a * a * tp.gy(i));
  });
  t.out(id) = x.value() * x.value() * x.value();
  V cube{&t, id};
  V e = sum(cube);
  CHECK_THROWS_WITH(gradients(e, {x}), Contains("'my_cube' has no differentiable VJP"));
  CHECK_FALSE(has_differentiable_vjp("my_cube"));
  CHECK(has_differentiable_vjp("silu"));
  CHECK(has_differentiable_vjp("conv2d"));
  // a node the requested one does not reach is never asked for its VJP
  V z = t.input(randn({3}, 63), true);
  V f = add(sum(square(z)), e);
  const V gz = gradients(f, {z})[0];
  CHECK(max_rel_diff(gz.value(), 2.0 * z.value()) < 1e-15);
}

TEST_CASE("Hessian-vector products, Laplacians and gradient norms against closed forms",
          "[higher]") {
  // a quadratic energy per row: E(x) = ½ xᵀ A x, A symmetric: ∇E = A x, H v = A v, ΔE = tr A
  const Array<double> A = {{2.0, 0.5, -0.3}, {0.5, 1.0, 0.2}, {-0.3, 0.2, 3.0}};
  const Array<double> X = randn({5, 3}, 70), v = randn({5, 3}, 71);
  auto quadratic = [&](TD& t, V x) {
    return affine(sum(mul(matmul(x, t.constant(A)), x), 1, false), 0.5, 0.0);
  };
  TD t;
  V x = t.input(X, true);
  V e = quadratic(t, x);
  const Array<double> hv = hvp(e, x, v).value();
  const Array<double> av = xt::linalg::dot(v, A);
  CHECK(max_rel_diff(hv, av) < 1e-14);
  const Array<double> lap = laplacian(e, x).value();
  for (std::size_t i = 0; i < 5; ++i) CHECK(lap(i) == Approx(6.0).epsilon(1e-14));
  const Array<double> ax = xt::linalg::dot(X, A);
  const Array<double> gn = grad_norm_sq(e, x).value();
  for (std::size_t i = 0; i < 5; ++i) {
    double s = 0;
    for (std::size_t j = 0; j < 3; ++j) s += ax(i, j) * ax(i, j);
    CHECK(gn(i) == Approx(s).epsilon(1e-13));
  }

  // a function with a known Laplacian: E = Σ_j x_j⁴/4 + exp(x₀ x₁),
  // ΔE = Σ_j 3 x_j² + (x₀² + x₁²) exp(x₀ x₁)
  TD t2;
  const Array<double> X2 = uniform({4, 3}, 72, -1, 1);
  V x2 = t2.input(X2, true);
  const std::size_t c0[1] = {0}, c1[1] = {1};
  V e2 = add(affine(sum(pow(x2, 4.0), 1, false), 0.25, 0.0),
             reshape(exp(mul(cols(x2, std::span<const std::size_t>(c0)),
                             cols(x2, std::span<const std::size_t>(c1)))),
                     {-1}));
  const Array<double> lap2 = laplacian(e2, x2).value();
  for (std::size_t i = 0; i < 4; ++i) {
    const double a0 = X2(i, 0), a1 = X2(i, 1), a2 = X2(i, 2);
    const double exact =
        3 * (a0 * a0 + a1 * a1 + a2 * a2) + (a0 * a0 + a1 * a1) * std::exp(a0 * a1);
    CHECK(lap2(i) == Approx(exact).epsilon(1e-12));
  }
}

TEST_CASE("Hutchinson's Laplacian agrees with the exact one within its standard error",
          "[higher][statistical]") {
  // quadratic energy: vᵀ A v per probe has mean tr A and variance 2 Σ_{j≠k} A_jk²
  const Array<double> A = {{2.0, 0.5, -0.3}, {0.5, 1.0, 0.2}, {-0.3, 0.2, 3.0}};
  double off = 0;
  for (std::size_t j = 0; j < 3; ++j)
    for (std::size_t k = 0; k < 3; ++k)
      if (j != k) off += A(j, k) * A(j, k);
  const std::size_t probes = 400, rows = 10;
  TD t;
  V x = t.input(randn({rows, 3}, 80), true);
  V e = affine(sum(mul(matmul(x, t.constant(A)), x), 1, false), 0.5, 0.0);
  Rng rng(81);
  const Array<double> est = laplacian_hutchinson(e, x, probes, rng).value();
  const double se = std::sqrt(2 * off / double(probes));
  double mean_est = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    CHECK(std::abs(est(i) - 6.0) < 5 * se);
    mean_est += est(i) / double(rows);
  }
  CHECK(std::abs(mean_est - 6.0) < 5 * se / std::sqrt(double(rows)));
  // and the rows' estimates do vary (the probes are random): the estimator is not the exact one
  CHECK(std::abs(est(0) - est(1)) > 0.0);

  // a non-quadratic energy (an MLP): many probes against the exact Laplacian
  Rng mrng(82);
  MLP<double> mlp({2, 16, 1}, Activation::Tanh, mrng);
  TD t2;
  V x2 = t2.input(randn({3, 2}, 83), true);
  V e2 = reshape(mlp(t2, x2), {-1});
  const Array<double> exact = laplacian(e2, x2).value();
  Rng hrng(84);
  const std::size_t many = 4000;
  const Array<double> h = laplacian_hutchinson(e2, x2, many, hrng).value();
  // per row, vᵀHv has variance 2 H_01² (d = 2): the exact Hessian's off-diagonal from hvp
  const Array<double> e0 = {{1.0, 0.0}, {1.0, 0.0}, {1.0, 0.0}};
  const Array<double> h_col0 = hvp(e2, x2, e0).value();
  for (std::size_t i = 0; i < 3; ++i) {
    const double sd = std::sqrt(2 * h_col0(i, 1) * h_col0(i, 1) / double(many));
    INFO("row " << i << " exact " << exact(i) << " estimate " << h(i) << " se " << sd);
    CHECK(std::abs(h(i) - exact(i)) < 5 * sd + 1e-12);
  }
}

TEST_CASE("the recorded backward on a cleared, reused tape gives a fresh tape's numbers",
          "[higher]") {
  Rng rng(90);
  MLP<double> mlp({2, 16, 16, 1}, Activation::Silu, rng);
  auto params = mlp.parameters();
  const Array<double> X = randn({8, 2}, 91);
  auto score_matching_grads = [&](TD& t) {
    V x = t.input(X, true);
    V e = reshape(mlp(t, x), {-1});
    V loss = mean(sub(affine(grad_norm_sq(e, x), 0.5, 0.0), laplacian(e, x)));
    return param_gradients<double>(loss, params);
  };
  TD fresh;
  const auto g0 = score_matching_grads(fresh);
  TD reused;
  for (int rep = 0; rep < 3; ++rep) {
    reused.clear();
    const auto g = score_matching_grads(reused);
    for (std::size_t k = 0; k < g.size(); ++k) CHECK(same(g[k], g0[k]));
  }
  // and the θ-gradient of the loss is right: finite differences on the parameters
  expect_gradients(
      [&](TD& t, In x) {
        V e = reshape(mlp(t, x[0]), {-1});
        return mean(sub(affine(grad_norm_sq(e, x[0]), 0.5, 0.0), laplacian(e, x[0])));
      },
      {X}, params);
}
