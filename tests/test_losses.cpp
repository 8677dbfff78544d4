// The ten losses of LeCun et al. (2006), Table 1: gradients, defining properties, and the
// direction in which one gradient step moves the energies.
#include "autodiff/optim.hpp"
#include "ebm/energy.hpp"
#include "ebm/losses.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;
using Catch::Matchers::Contains;

namespace {
const std::vector<std::size_t> kLabels = {2, 0, 5, 3, 1};  // 5 samples, 6 answers

LossOptions options() {
  LossOptions o;
  o.margin = 1.0;
  o.saturation = 0.8;
  o.gamma = 0.7;
  o.beta = 1.7;
  return o;
}

// one row per sample; the correct answer at kLabels[r]
Array<double> energies_with(double pos, double others) {
  Array<double> e(Shape{kLabels.size(), 6}, others);
  for (std::size_t r = 0; r < kLabels.size(); ++r) e(r, kLabels[r]) = pos;
  return e;
}

Array<double> loss_values(Loss kind, const Array<double>& e, LossOptions o = options()) {
  TD t;
  return per_sample_loss(kind, answers(t.constant(e), std::span(kLabels)), o).value();
}
}  // namespace

TEST_CASE("every loss: gradient with respect to the energies", "[losses][gradcheck]") {
  Array<double> e = randn({5, 6}, 31);
  for (const LossInfo& l : kLossTable) {
    INFO("loss " << l.name);
    Loss kind = l.kind;
    expect_gradients(
        [kind](TD&, In x) {
          return per_sample_loss(kind, answers(x[0], std::span(kLabels)), options());
        },
        {e});
    expect_gradients(
        [kind](TD&, In x) {
          return batch_loss(kind, answers(x[0], std::span(kLabels)), options());
        },
        {e});
  }
}

TEST_CASE("every loss: gradient with respect to the parameters of a model E(W Y X)",
          "[losses][gradcheck]") {
  Rng rng(5);
  DiscreteAnswerEnergy<double> model(3, {8}, 6, Activation::Tanh, rng);
  Array<double> x = randn({5, 3}, 6);
  for (const LossInfo& l : kLossTable) {
    INFO("loss " << l.name);
    Loss kind = l.kind;
    expect_gradients(
        [kind, &model](TD& t, In v) {
          return batch_loss(kind, answers(model(t, v[0]), std::span(kLabels)), options());
        },
        {x}, model.parameters());
  }
}

TEST_CASE("the most offending incorrect answer is the incorrect answer of lowest energy",
          "[losses]") {
  Array<double> e = randn({5, 6}, 7);
  TD t;
  V ev = t.input(e, true);
  Answers<double> a = answers(ev, std::span(kLabels));
  for (std::size_t r = 0; r < 5; ++r) {
    std::size_t best = kLabels[r] == 0 ? 1 : 0;
    for (std::size_t j = 0; j < 6; ++j)
      if (j != kLabels[r] && e(r, j) < e(r, best)) best = j;
    CHECK(a.y_neg[r] == best);
    CHECK(a.e_neg.value()(r) == e(r, best));
    CHECK(a.e_pos.value()(r) == e(r, kLabels[r]));
  }
  // the hinge's gradient touches exactly E(Yi) and E(Ybar) of the samples where it is active
  t.backward(sum(hinge_loss(a, 10.0)), {ev});
  for (std::size_t r = 0; r < 5; ++r)
    for (std::size_t j = 0; j < 6; ++j) {
      double want = j == kLabels[r] ? 1.0 : j == a.y_neg[r] ? -1.0 : 0.0;
      CHECK(t.grad(ev)(r, j) == want);
    }
}

TEST_CASE("on a grid of answers a neighbourhood of the correct one can be excluded from Ybar",
          "[losses]") {
  Array<double> grid = {-1.0, -0.5, 0.0, 0.5, 1.0};
  Array<double> y = {0.1, -0.9};
  auto idx = snap_to_grid(y, grid);
  REQUIRE(idx == std::vector<std::size_t>{2, 0});
  // energies increasing away from index 2 in row 0; lowest incorrect outside radius 1 is index 4
  Array<double> e = {{0.3, 0.2, 0.0, 0.1, 0.25}, {0.0, 0.05, 0.5, 0.6, 0.7}};
  TD t;
  Answers<double> a0 = answers(t.constant(e), std::span(idx));
  CHECK(a0.y_neg == std::vector<std::size_t>{3, 1});
  Answers<double> a1 = answers(t.constant(e), std::span(idx), 1);
  CHECK(a1.y_neg == std::vector<std::size_t>{4, 2});
  CHECK_THROWS_WITH(answers(t.constant(e), std::span(idx), 4), Contains("no incorrect answer"));
}

TEST_CASE("hinge is zero once E(Ybar) - E(Yi) >= m and linear below", "[losses]") {
  LossOptions o = options();
  CHECK(all_equal(loss_values(Loss::Hinge, energies_with(0.0, o.margin), o), 0.0));
  CHECK(all_equal(loss_values(Loss::Hinge, energies_with(0.0, o.margin + 0.5), o), 0.0));
  Array<double> l = loss_values(Loss::Hinge, energies_with(0.0, o.margin - 0.25), o);
  for (double v : l) CHECK(v == Approx(0.25));
}

TEST_CASE("perceptron is zero when the correct answer has the lowest energy", "[losses]") {
  CHECK(all_equal(loss_values(Loss::Perceptron, energies_with(-1.0, 0.5)), 0.0));
  Array<double> l = loss_values(Loss::Perceptron, energies_with(0.7, 0.2));
  for (double v : l) CHECK(v == Approx(0.5));
}

TEST_CASE("NLL equals softmax cross-entropy on -beta E", "[losses]") {
  Array<double> e = randn({5, 6}, 9);
  LossOptions o = options();
  Array<double> l = loss_values(Loss::Nll, e, o);
  for (std::size_t r = 0; r < 5; ++r) {
    double z = 0;
    for (std::size_t j = 0; j < 6; ++j) z += std::exp(-o.beta * e(r, j));
    double p = std::exp(-o.beta * e(r, kLabels[r])) / z;
    CHECK(l(r) == Approx(-std::log(p) / o.beta));
  }
}

TEST_CASE("MEE lies in [0 1] and is one minus the probability of the correct answer", "[losses]") {
  Array<double> e = randn({5, 6}, 10) * 30.0;  // includes near-certain and near-impossible answers
  e(0, kLabels[0]) = -1000;
  e(1, kLabels[1]) = 1000;
  LossOptions o = options();
  Array<double> l = loss_values(Loss::Mee, e, o);
  for (double v : l) {
    CHECK(v >= 0.0);
    CHECK(v <= 1.0);
  }
  CHECK(l(0) == Approx(0.0).margin(1e-12));
  CHECK(l(1) == Approx(1.0));
}

TEST_CASE("LVQ2 is zero for a correct ranking and saturates at M", "[losses]") {
  LossOptions o = options();
  CHECK(all_equal(loss_values(Loss::Lvq2, energies_with(0.0, 0.3), o), 0.0));
  CHECK(all_equal(loss_values(Loss::Lvq2, energies_with(5.0, 0.0), o), o.saturation));
  for (double v : loss_values(Loss::Lvq2, energies_with(0.5, 0.2), o)) CHECK(v == Approx(0.3));
}

TEST_CASE("the energy loss does not depend on the other answers", "[losses]") {
  Array<double> a = randn({5, 6}, 11), b = randn({5, 6}, 12);
  for (std::size_t r = 0; r < 5; ++r) b(r, kLabels[r]) = a(r, kLabels[r]);
  CHECK(same(loss_values(Loss::Energy, a), loss_values(Loss::Energy, b)));
  TD t;
  V ev = t.input(a, true);
  t.backward(sum(energy_loss(answers(ev, std::span(kLabels)))), {ev});
  for (std::size_t r = 0; r < 5; ++r)
    for (std::size_t j = 0; j < 6; ++j) CHECK(t.grad(ev)(r, j) == (j == kLabels[r] ? 1.0 : 0.0));
}

TEST_CASE("one gradient step of a margin loss lowers E(Yi) and raises E(Ybar)", "[losses]") {
  // energies as free parameters (the most flexible E(W Y X)), in a range where every loss is active
  for (const LossInfo& l : kLossTable) {
    if (std::string(l.margin) == "none" || std::string(l.margin) == "0") continue;
    INFO("loss " << l.name);
    Parameter<double> e("E", uniform({5, 6}, 13, 0.1, 0.5));
    Array<double> before = e.value;
    std::vector<std::size_t> y_neg;
    {
      TD t;
      Answers<double> a = answers(t.param(e), std::span(kLabels));
      y_neg = a.y_neg;
      t.backward(batch_loss(l.kind, a, options()));
    }
    SGD<double> sgd({&e}, {.lr = 1e-3});
    sgd.step();
    for (std::size_t r = 0; r < 5; ++r) {
      CHECK(e.value(r, kLabels[r]) < before(r, kLabels[r]));
      CHECK(e.value(r, y_neg[r]) > before(r, y_neg[r]));
    }
  }
}

TEST_CASE("the energy loss moves only the correct answer's energy", "[losses]") {
  Parameter<double> e("E", uniform({5, 6}, 14, 0.1, 0.5));
  Array<double> before = e.value;
  TD t;
  t.backward(batch_loss(Loss::Energy, answers(t.param(e), std::span(kLabels))));
  SGD<double> sgd({&e}, {.lr = 1e-2});
  sgd.step();
  for (std::size_t r = 0; r < 5; ++r)
    for (std::size_t j = 0; j < 6; ++j) {
      if (j == kLabels[r])
        CHECK(e.value(r, j) < before(r, j));
      else
        CHECK(e.value(r, j) == before(r, j));  // nothing pushes wrong answers up: it can collapse
    }
}

TEST_CASE("loss names parse and the table has the ten losses in order", "[losses]") {
  CHECK(std::size(kLossTable) == 10);
  CHECK(parse_loss("square-exp") == Loss::SquareExp);
  CHECK(std::string(loss_info(Loss::Mee).equation) == "(27)");
  CHECK_THROWS_WITH(parse_loss("l2"), Contains("unknown loss 'l2'") && Contains("hinge"));
}

TEST_CASE("scalar-answer energies: grid and pair forms agree and have correct gradients",
          "[energy][gradcheck]") {
  Rng rng(3);
  OneBranchEnergy<double> one({1, 20, 1}, Activation::Tanh, rng);
  TwoBranchEnergy<double> two({1, 10, 10}, {1, 10, 10}, Activation::Tanh, rng);
  Array<double> x = uniform({4, 1}, 15, -1, 1), grid = {-0.8, -0.1, 0.3, 0.9, 1.2};
  for (ScalarAnswerEnergy<double>* e : std::vector<ScalarAnswerEnergy<double>*>{&one, &two}) {
    TD t;
    V xv = t.constant(x);
    V g = e->on_grid(t, xv, t.constant(grid));
    REQUIRE(g.shape() == Shape{4, 5});
    for (std::size_t j = 0; j < 5; ++j) {
      V p = e->pairs(t, xv, t.constant(Array<double>(Shape{4}, grid(j))));
      for (std::size_t r = 0; r < 4; ++r)
        CHECK(g.value()(r, j) == Approx(p.value()(r)).epsilon(1e-12));
    }
    // gradients in x and θ, away from the kinks of |.| (random parameters make exact zeros unlikely)
    expect_gradients(
        [e, &grid](TD& tape, In v) { return e->on_grid(tape, v[0], tape.constant(grid)); }, {x},
        e->parameters());
  }
}
