// The tape itself: which gradients a backward pass computes, fan-out, reuse, precision, errors.
#include <string>

#include "autodiff/layers.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;
using Catch::Matchers::Contains;

namespace {
// E_θ(x) = MLP(x) as one energy per row: [n, d] -> [n]
template <class T>
Var<T> mlp_energy(MLP<T>& f, Tape<T>& t, Var<T> x) {
  return reshape(f(t, x), {-1});
}
}  // namespace

TEST_CASE("a grad_x-only pass runs no weight-gradient product", "[tape]") {
  Rng rng(1);
  MLP<double> f({2, 16, 16, 1}, Activation::Silu, rng);  // three Linear layers
  TD t;
  V x = t.input(randn({8, 2}, 2), true);
  V e = sum(mlp_energy(f, t, x));

  t.stats = {};
  t.backward(e, {x});
  CHECK(t.stats.gemm_backward == 3);  // one gx product per layer, no gW
  for (auto* p : f.parameters()) CHECK(all_equal(p->grad, 0.0));

  t.stats = {};
  t.backward(e, {}, f.parameters());  // grad_theta only: gW for 3 layers, gx for the 2 upper ones
  CHECK(t.stats.gemm_backward == 3 + 2);
  for (auto* p : f.parameters()) CHECK(!all_equal(p->grad, 0.0));

  t.stats = {};
  t.backward(e, {x}, f.parameters());  // both at once, from one tape
  CHECK(t.stats.gemm_backward == 6);
}

TEST_CASE("VJPs run only on paths from a requested leaf", "[tape]") {
  TD t;
  V a = t.input(randn({3}, 1), true), b = t.input(randn({3}, 2), true);
  V ea = exp(a), eb = exp(b);  // two branches
  V y = sum(ea + eb);
  t.stats = {};
  t.backward(y, {a});
  // y's sum, the add, and exp(a) run; exp(b) is not on a path to a
  CHECK(t.stats.vjp_calls == 3);
  CHECK_THROWS_WITH(t.grad(b), Contains("not a requested leaf"));
}

TEST_CASE("fan-out accumulates: d(x*x)/dx = 2x and d(x+x)/dx = 2", "[tape]") {
  Array<double> x0 = randn({5}, 3);
  TD t;
  V x = t.input(x0, true);
  auto g = grad(sum(x * x), {x});
  for (std::size_t e = 0; e < 5; ++e) CHECK(g[0](e) == Approx(2 * x0(e)));
  auto g2 = grad(sum(x + x), {x});
  for (std::size_t e = 0; e < 5; ++e) CHECK(g2[0](e) == 2.);
  // deeper reuse: y = exp(x) * x + exp(x)
  V ex = exp(x);
  auto g3 = grad(sum(ex * x + ex), {x});
  for (std::size_t e = 0; e < 5; ++e) CHECK(g3[0](e) == Approx(std::exp(x0(e)) * (x0(e) + 2)));
  expect_gradients(
      [](TD&, In v) {
        V ev = exp(v[0]);
        return ev * v[0] + ev * ev;
      },
      {x0});
}

TEST_CASE("a leaf the output does not depend on gets a zero gradient", "[tape]") {
  TD t;
  V x = t.input(randn({2, 2}, 1), true), unused = t.input(randn({3}, 2), true);
  t.backward(sum(square(x)), {x, unused});
  CHECK(t.grad(unused).shape() == Shape{3});
  CHECK(all_equal(t.grad(unused), 0.0));
}

TEST_CASE("parameter gradients accumulate across backward passes", "[tape]") {
  Parameter<double> p("p", randn({3}, 4));
  for (int pass = 1; pass <= 2; ++pass) {
    TD t;
    V w = t.param(p);
    t.backward(sum(w * 3.0));
    for (double g : p.grad) CHECK(g == 3.0 * pass);
  }
  p.zero_grad();
  CHECK(all_equal(p.grad, 0.0));
}

TEST_CASE("the same parameter used twice on one tape sums both uses", "[tape]") {
  Parameter<double> p("p", randn({3}, 5));
  TD t;
  V y = sum(square(t.param(p))) + sum(t.param(p));
  t.backward(y);
  for (std::size_t e = 0; e < 3; ++e) CHECK(p.grad(e) == Approx(2 * p.value(e) + 1));
}

TEST_CASE("a cleared and reused tape gives bit-identical values and gradients", "[tape]") {
  Rng rng(7);
  MLP<double> f({3, 32, 32, 1}, Activation::Silu, rng);
  Array<double> x0 = randn({16, 3}, 8);
  TD t;
  Array<double> e_first, gx_first, gw_first;
  for (int step = 0; step < 3; ++step) {
    t.clear();
    for (auto* p : f.parameters()) p->zero_grad();
    V x = t.input(x0, true);
    V e = mlp_energy(f, t, x);
    t.backward(sum(e), {x}, f.parameters());
    if (step == 0) {
      e_first = e.value();
      gx_first = t.grad(x);
      gw_first = f.parameters()[0]->grad;
    } else {
      CHECK(same(e.value(), e_first));
      CHECK(same(t.grad(x), gx_first));
      CHECK(same(f.parameters()[0]->grad, gw_first));
    }
  }
  // and a fresh tape agrees with the reused one
  TD fresh;
  V x = fresh.input(x0);
  CHECK(same(mlp_energy(f, fresh, x).value(), e_first));
}

TEST_CASE("float and double agree to float precision", "[tape]") {
  Rng r1(3), r2(3);
  MLP<double> fd({4, 32, 1}, Activation::Tanh, r1);
  MLP<float> ff({4, 32, 1}, Activation::Tanh, r2);  // same seed: same draws, rounded to float
  Array<double> xd = randn({10, 4}, 9);
  Array<float> xf = xt::cast<float>(xd);
  TD td;
  Tape<float> tf;
  V vx = td.input(xd, true);
  Var<float> fx = tf.input(xf, true);
  V ed = sum(mlp_energy(fd, td, vx));
  Var<float> ef = sum(mlp_energy(ff, tf, fx));
  td.backward(ed, {vx});
  tf.backward(ef, {fx});
  CHECK(ef.item() == Approx(ed.item()).epsilon(1e-5));
  for (std::size_t e = 0; e < xd.size(); ++e)
    CHECK(tf.grad(fx).data()[e] == Approx(td.grad(vx).data()[e]).epsilon(1e-4).margin(1e-6));
}

TEST_CASE("shape errors name the op and the shapes", "[tape][errors]") {
  TD t;
  V a = t.constant(randn({256, 3}, 1)), b = t.constant(randn({2, 128}, 2));
  CHECK_THROWS_AS(matmul(a, b), ShapeError);
  CHECK_THROWS_WITH(matmul(a, b), Contains("matmul") && Contains("[256,3]") && Contains("[2,128]"));
  CHECK_THROWS_WITH(add(a, b), Contains("add") && Contains("[256,3]") && Contains("[2,128]"));
  CHECK_THROWS_WITH(mul(a, t.constant(randn({4}, 3))), Contains("mul") && Contains("[4]"));
  CHECK_THROWS_WITH(linear(a, b, t.constant(randn({128}, 3))),
                    Contains("linear") && Contains("[256,3]"));
  CHECK_THROWS_WITH(reshape(a, {5, -1}), Contains("reshape") && Contains("[256,3]"));
  CHECK_THROWS_WITH(sum(a, 2), Contains("sum") && Contains("axis 2"));
  CHECK_THROWS_WITH(concat({a, b}, 0), Contains("concat") && Contains("[2,128]"));
  static const std::vector<std::size_t> bad = {0, 3};
  CHECK_THROWS_WITH(gather(t.constant(randn({2, 3}, 4)), bad),
                    Contains("gather") && Contains("index 3"));
  CHECK_THROWS_WITH(rows(t.constant(randn({3, 2}, 5)), bad), Contains("rows") && Contains("[3,2]"));
  CHECK_NOTHROW(rows(a, bad));
}

TEST_CASE("backward needs a one-element output", "[tape][errors]") {
  TD t;
  V x = t.input(randn({3}, 1), true);
  CHECK_THROWS_WITH(t.backward(exp(x), {x}), Contains("backward") && Contains("[3]"));
  CHECK_THROWS_WITH(exp(x).item(), Contains("item"));
}

namespace {
// A user-defined op with a wrong VJP: y = a (a 2-D copy) whose VJP adds gy transposed. With an
// all-ones cotangent the bug is invisible; the checker's random cotangent must expose it.
V buggy_copy(V a) {
  TD& t = *a.tape;
  std::size_t i = t.push("buggy_copy", {a.id}, [](TD& tape, std::size_t node) {
    tape.accumulate(tape.in(node, 0), xt::transpose(tape.gy(node)));
  });
  xt::noalias(t.out(i)) = a.value();
  return {&t, i};
}
}  // namespace

TEST_CASE("gradcheck catches a transposed VJP and names the worst element", "[gradcheck]") {
  GradcheckReport r = gradcheck([](TD&, In x) { return buggy_copy(x[0]); }, {randn({3, 3}, 1)});
  CHECK_FALSE(r.ok);
  CHECK(r.worst_ratio > 1.0);
  CHECK_THAT(r.worst_where, Contains("input 0 ["));
  CHECK_THAT(r.str(), Contains("FAILED"));
  CHECK(r.checked == 9);
  // the analytic value reported is the wrong one, the numeric one is right: dL/da = w
  CHECK(r.analytic != Approx(r.numeric));
}

TEST_CASE("gradcheck passes a correct user-defined op and restores parameters", "[gradcheck]") {
  Parameter<double> p("scale", randn({3}, 2));
  p.grad = randn({3}, 3);
  Array<double> value0 = p.value, grad0 = p.grad;
  GradcheckReport r = gradcheck([&p](TD& t, In x) { return x[0] * t.param(p); }, {randn({2, 3}, 4)},
                                std::vector<Parameter<double>*>{&p});
  INFO(r.str());
  CHECK(r.ok);
  CHECK(r.checked == 6 + 3);
  CHECK(same(p.value, value0));
  CHECK(same(p.grad, grad0));
}

TEST_CASE("backward_on_tape keeps parameter gradients on the tape, summed over repeated leaves",
          "[tape]") {
  // the MLP evaluated twice on one tape puts each parameter on it twice; the sum of param_grads
  // must be what backward() adds into Parameter::grad, and backward_on_tape must leave that alone
  Rng rng(41);
  MLP<double> f({3, 5, 1}, Activation::Tanh, rng);
  Array<double> a = randn({4, 3}, 42), b = randn({6, 3}, 43);
  auto params = f.parameters();
  auto loss = [&](TD& t) {
    return sum(mlp_energy(f, t, t.constant(a))) -
           0.5 * sum(square(mlp_energy(f, t, t.constant(b))));
  };
  TD t1;
  for (auto* p : params) p->zero_grad();
  t1.backward(loss(t1), {}, params);
  std::vector<Array<double>> reference;
  for (auto* p : params) reference.push_back(p->grad);

  TD t2;
  for (auto* p : params) p->zero_grad();
  t2.backward_on_tape(loss(t2), params);
  for (auto* p : params) CHECK(all_equal(p->grad, 0.0));
  for (std::size_t k = 0; k < params.size(); ++k) {
    std::vector<const double*> srcs;
    t2.param_grads(*params[k], srcs);
    CHECK(srcs.size() == 2);
    Array<double> g(params[k]->value.shape(), 7.0);
    sum_into<double>(srcs, g.data(), 0, g.size());
    // the same additions in the same order as backward's zero-then-add: bit-identical
    CHECK(same(g, reference[k]));
  }
  // and a plain backward afterwards accumulates into Parameter::grad again
  TD t3;
  t3.backward(loss(t3), {}, params);
  CHECK(same(params[0]->grad, reference[0]));
}

TEST_CASE("sum_into adds any number of sources left to right over a range", "[tape]") {
  // 0 to 5 sources (the paired passes and the odd one out), over the whole range and a sub-range
  Rng rng(60);
  std::vector<Array<float>> src;
  for (int k = 0; k < 5; ++k) src.push_back(rng.normal_array<float>({37}));
  for (std::size_t m = 0; m <= src.size(); ++m) {
    std::vector<const float*> p;
    for (std::size_t k = 0; k < m; ++k) p.push_back(src[k].data());
    for (auto [lo, hi] : {std::pair<std::size_t, std::size_t>{0, 37}, {5, 30}}) {
      std::vector<float> dst(37, -9.f);
      sum_into<float>(p, dst.data(), lo, hi);
      for (std::size_t e = 0; e < 37; ++e) {
        float ref = 0;  // zero, then += each source in turn
        for (std::size_t k = 0; k < m; ++k) ref += src[k].data()[e];
        INFO("sources " << m << ", element " << e);
        if (e < lo || e >= hi)
          CHECK(dst[e] == -9.f);  // outside the range: untouched
        else
          CHECK(dst[e] == ref);
      }
    }
  }
}

TEST_CASE("input_ref reads its array in place and gives what input gives", "[tape]") {
  Array<double> x0 = randn({4, 3}, 70);
  auto f = [](V x) { return sum(square(tanh(x)) * 2.0); };
  TD t1, t2;
  V a = t1.input(x0, true), b = t2.input_ref(x0, true);
  CHECK(b.value().data() == x0.data());  // no copy
  CHECK(a.value().data() != x0.data());
  V ya = f(a), yb = f(b);
  t1.backward(ya, {a});
  t2.backward(yb, {b});
  CHECK(ya.item() == yb.item());
  CHECK(same(t1.grad(a), t2.grad(b)));
  // the node is reused after clear(): an op created there reads its own buffer, not x0
  t2.clear();
  V c = t2.input(randn({2}, 71));
  V d = exp(c);
  CHECK(d.value().data() != x0.data());
  CHECK(c.value().data() != x0.data());
}

TEST_CASE("swap_grad moves the gradient out and the tape reuses the buffer it gets back",
          "[tape]") {
  Array<double> x0 = randn({4, 3}, 72);
  auto f = [](V x) { return sum(square(tanh(x)) * 2.0 + x * x); };  // x reached twice
  TD reference, t;
  V r = reference.input(x0, true);
  reference.backward(f(r), {r});
  Array<double> g;
  std::vector<const double*> buffers;
  for (int pass = 0; pass < 4; ++pass) {
    t.clear();
    V x = t.input_ref(x0, true);
    t.backward(f(x), {x});
    t.swap_grad(x, g);
    CHECK(same(g, reference.grad(r)));  // the stale values the tape got back were overwritten
    CHECK_THROWS_AS(t.grad(x), std::logic_error);
    buffers.push_back(g.data());
  }
  CHECK(buffers[2] == buffers[0]);  // two buffers taking turns: no allocation once both exist
  CHECK(buffers[3] == buffers[1]);
  CHECK(buffers[1] != buffers[0]);
}
