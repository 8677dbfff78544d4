// Layers and optimizers: an MLP energy's ∇θ and ∇x against finite differences, and the
// optimizers' update rules.
#include <cmath>

#include "autodiff/layers.hpp"
#include "autodiff/optim.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;
using Catch::Matchers::Contains;

TEST_CASE("MLP energy: grad_theta and grad_x match finite differences for every activation",
          "[layers][gradcheck]") {
  for (Activation act : {Activation::Relu, Activation::LeakyRelu, Activation::Tanh,
                         Activation::Sigmoid, Activation::Softplus, Activation::Silu}) {
    INFO("activation " << to_string(act));
    Rng rng(42);
    MLP<double> f({3, 8, 8, 1}, act, rng);
    // E_θ(x) = MLP(x), one energy per row; x chosen so that no ReLU unit sits at a kink
    Array<double> x = randn({5, 3}, 43);
    expect_gradients([&f](TD& t, In v) { return reshape(f(t, v[0]), {-1}); }, {x}, f.parameters());
  }
}

TEST_CASE("Linear initialisation is uniform within 1/sqrt(fan_in) and seeded", "[layers]") {
  Rng r1(5), r2(5), r3(6);
  Linear<double> a(100, 50, r1), b(100, 50, r2), c(100, 50, r3);
  CHECK(same(a.W.value, b.W.value));
  CHECK(!same(a.W.value, c.W.value));
  CHECK(xt::amax(xt::abs(a.W.value))() <= 0.1);
  CHECK(xt::amax(xt::abs(a.W.value))() > 0.09);  // 5000 draws fill the interval
  CHECK(a.W.value.shape() == Shape{100, 50});
  CHECK(a.b.value.shape() == Shape{50});
}

TEST_CASE("parse_activation accepts the documented names and rejects others", "[layers]") {
  CHECK(parse_activation("silu") == Activation::Silu);
  CHECK(parse_activation("swish") == Activation::Silu);
  CHECK(parse_activation("leaky_relu") == Activation::LeakyRelu);
  CHECK_THROWS_WITH(parse_activation("gelu"), Contains("unknown activation 'gelu'"));
}

TEST_CASE("SGD with momentum and weight decay follows v = mu v + g + wd theta", "[optim]") {
  Parameter<double> p("p", Array<double>{1.0, -2.0});
  SGD<double> opt({&p}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
  p.grad = Array<double>{0.5, 1.0};
  opt.step();
  // v1 = g + wd θ0; θ1 = θ0 - lr v1
  double v0 = 0.5 + 0.01 * 1.0, v1 = 1.0 + 0.01 * -2.0;
  CHECK(p.value(0) == Approx(1.0 - 0.1 * v0));
  CHECK(p.value(1) == Approx(-2.0 - 0.1 * v1));
  double th0 = p.value(0);
  opt.step();  // same gradient again: v2 = 0.9 v1 + g + wd θ1
  double v0b = 0.9 * v0 + 0.5 + 0.01 * th0;
  CHECK(p.value(0) == Approx(th0 - 0.1 * v0b));
  opt.zero_grad();
  CHECK(p.grad(0) == 0.0);
}

TEST_CASE("Adam's first step moves each coordinate by lr against the sign of its gradient",
          "[optim]") {
  Parameter<double> p("p", Array<double>{1.0, -2.0, 0.5});
  Adam<double> opt({&p}, {.lr = 0.01});
  p.grad = Array<double>{3.0, -0.2, 1e-3};
  opt.step();
  // m̂ = g, v̂ = g², so the step is lr g / (|g| + eps)
  CHECK(p.value(0) == Approx(1.0 - 0.01).epsilon(1e-9));
  CHECK(p.value(1) == Approx(-2.0 + 0.01).epsilon(1e-9));
  CHECK(p.value(2) == Approx(0.5 - 0.01 * 1e-3 / (1e-3 + 1e-8)).epsilon(1e-9));
  CHECK(opt.steps() == 1);
}

TEST_CASE("SGD and Adam minimise a quadratic through the tape", "[optim]") {
  // f(θ) = Σ (θ - c)², minimum at c
  Array<double> c = {1.5, -0.5, 2.0};
  for (int which = 0; which < 2; ++which) {
    Parameter<double> p("p", Array<double>{0.0, 0.0, 0.0});
    SGD<double> sgd({&p}, {.lr = 0.05, .momentum = 0.5});
    Adam<double> adam({&p}, {.lr = 0.05});
    TD t;
    for (int step = 0; step < 400; ++step) {
      t.clear();
      p.zero_grad();
      V loss = sum(square(t.param(p) - t.constant(c)));
      t.backward(loss);
      which == 0 ? sgd.step() : adam.step();
    }
    INFO((which == 0 ? "SGD" : "Adam"));
    for (std::size_t e = 0; e < 3; ++e) CHECK(p.value(e) == Approx(c(e)).margin(1e-3));
  }
}

TEMPLATE_TEST_CASE("an optimizer step split over threads is bit-identical to the serial step",
                   "[optim]", float, double) {
  using T = TestType;
  // odd sizes, so that the blocks' edges fall inside vector widths and the loops' tails run
  auto make = [](std::uint64_t seed) {
    Rng rng(seed);
    std::vector<Parameter<T>> ps;
    for (std::size_t n : {std::size_t(1), std::size_t(37), std::size_t(1001)})
      ps.emplace_back(fmt::format("p{}", n), rng.normal_array<T>({n}));
    return ps;
  };
  auto ptrs = [](std::vector<Parameter<T>>& ps) {
    std::vector<Parameter<T>*> out;
    for (auto& p : ps) out.push_back(&p);
    return out;
  };
  WorkerPool pool(3);
  for (int which = 0; which < 3; ++which) {
    auto serial = make(1), split = make(1);
    std::unique_ptr<Optimizer<T>> a, b;
    if (which == 0) {
      a = std::make_unique<SGD<T>>(ptrs(serial), typename SGD<T>::Options{.lr = 0.1});
      b = std::make_unique<SGD<T>>(ptrs(split), typename SGD<T>::Options{.lr = 0.1});
    } else if (which == 1) {
      typename SGD<T>::Options o{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01};
      a = std::make_unique<SGD<T>>(ptrs(serial), o);
      b = std::make_unique<SGD<T>>(ptrs(split), o);
    } else {
      typename Adam<T>::Options o{.lr = 0.01, .weight_decay = 0.01};
      a = std::make_unique<Adam<T>>(ptrs(serial), o);
      b = std::make_unique<Adam<T>>(ptrs(split), o);
    }
    Rng rng(2);
    for (int step = 0; step < 5; ++step) {
      for (std::size_t k = 0; k < serial.size(); ++k) {  // the same gradients on both
        serial[k].grad = rng.normal_array<T>(serial[k].value.shape());
        split[k].grad = serial[k].grad;
      }
      a->step();
      b->step(pool, std::size_t(2 + step % 2));  // 2 and 3 parts
    }
    INFO("optimizer " << which);
    CHECK(a->steps() == b->steps());
    for (std::size_t k = 0; k < serial.size(); ++k) {
      CHECK(same(serial[k].value, split[k].value));
      CHECK_FALSE(same(serial[k].value, make(1)[k].value));  // and the steps moved them
    }
    for (std::size_t k = 0; k < a->state().size(); ++k)
      CHECK(same(*a->state()[k].second, *b->state()[k].second));
  }
}

TEST_CASE("an optimizer of one's own gets a threaded step that runs its serial one", "[optim]") {
  struct Halve : Optimizer<double> {  // θ ← θ / 2, with no threaded step of its own
    Parameter<double>* p;
    long t = 0;
    explicit Halve(Parameter<double>* q) : p(q) {}
    void step() override {
      ++t;
      for (auto& v : p->value) v /= 2;
    }
    void zero_grad() override { p->zero_grad(); }
    std::vector<std::pair<std::string, Array<double>*>> state() override { return {}; }
    long& steps() override { return t; }
  };
  Parameter<double> p("p", Array<double>{4.0, -8.0});
  Halve opt(&p);
  WorkerPool pool(2);
  static_cast<Optimizer<double>&>(opt).step(pool, 2);
  CHECK(opt.steps() == 1);
  CHECK(p.value(0) == 2.0);
  CHECK(p.value(1) == -4.0);
}
