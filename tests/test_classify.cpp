// The loss-comparison study's claims as tests: the collapse detector, margin losses learn the
// digits, and what the tutorial predicts for the energy loss and the zero-margin losses.
#include "datasets/images.hpp"
#include "ebm/classify.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {
struct Digits {
  LabeledData train, test;
};
const Digits& digits() {
  static const Digits d = [] {
    auto [tr, te] = split(load_digits_csv(default_digits_path()), 500, 0);
    return Digits{tr, te};
  }();
  return d;
}

// A small fixed run: 64-32-10 ReLU, Adam 1e-3, batch 32, 20 epochs (a fraction of a second).
ClassifierEval train_digits(Loss loss, std::uint64_t seed, double* first_energy = nullptr) {
  Rng rng(seed);
  DiscreteAnswerEnergy<float> model(64, {32}, 10, Activation::Relu, rng);
  ClassifierTraining o;
  o.epochs = 20;
  if (first_energy)
    *first_energy =
        evaluate_classifier(model, digits().test.x, digits().test.y, o.flat_tol).mean_energy;
  ClassifierEval last;
  bool ok = train_classifier(model, loss, {digits().train.x, digits().train.y},
                             {digits().test.x, digits().test.y}, o, rng,
                             [&](std::size_t, const ClassifierEval& e) { last = e; });
  REQUIRE(ok);
  return last;
}
}  // namespace

TEST_CASE("the collapse detector flags a flat energy and not a trained one", "[classify]") {
  Array<float> flat(Shape{20, 10}, 3.0f);
  flat(0, 1) = 3.0005f;  // tiny wiggles stay flat
  CollapseReport c = detect_collapse(flat, 1e-3);
  CHECK(c.collapsed);
  CHECK(c.flat_fraction == Approx(1.0));
  Array<float> nan_rows(Shape{4, 3}, std::nanf(""));
  CHECK(detect_collapse(nan_rows, 1e-3).collapsed);
  ClassifierEval trained = train_digits(Loss::Hinge, 1);
  CHECK_FALSE(trained.collapse.collapsed);
  CHECK(trained.collapse.flat_fraction == 0.0);
  CHECK(trained.collapse.mean_range > 1.0);
}

TEST_CASE("every loss with a positive margin learns the digits far above chance", "[classify]") {
  for (const LossInfo& l : kLossTable) {
    std::string margin = l.margin;
    if (margin == "none" || margin == "0") continue;
    INFO("loss " << l.name);
    ClassifierEval e = train_digits(l.kind, 2);
    CHECK(e.error < 0.2);   // chance is 0.9
    CHECK(e.mean_gap > 0);  // on average the correct answer beats the most offending one
    CHECK_FALSE(e.collapse.collapsed);
  }
}

TEST_CASE(
    "the energy loss: nothing pulls wrong answers up, so energies sink and nothing is learned",
    "[classify]") {
  // Tutorial, section 2.2: the energy loss only pushes E(Yi) down. With one unbounded output
  // energy per class, every output can sink: predicted, and checked here, a falling mean energy
  // and a classifier no better than chance (E(Ybar) ends below E(Yi) on average).
  double e0 = 0;
  ClassifierEval e = train_digits(Loss::Energy, 3, &e0);
  CHECK(e.mean_energy < e0 - 10);
  CHECK(e.error > 0.7);
  CHECK(e.mean_gap < 0);
}

TEST_CASE(
    "zero-margin losses: a flat energy is a minimum, yet from random weights they learn with a "
    "thin margin",
    "[classify]") {
  // Tutorial: the perceptron and LVQ2 losses have no margin, so a collapsed (flat) energy has
  // zero loss and is a minimum; hinge charges it m. Checked exactly on a flat energy matrix...
  TD t;
  Array<double> flat(Shape{4, 5}, 2.0);
  static const std::vector<std::size_t> y = {0, 1, 2, 3};
  Answers<double> a = answers(t.constant(flat), std::span(y));
  CHECK(all_equal(perceptron_loss(a).value(), 0.0));
  CHECK(all_equal(lvq2_loss(a, 1.0).value(), 0.0));
  CHECK(all_equal(hinge_loss(a, 1.0).value(), 1.0));
  // ...and what actually happens from random weights: they learn (nothing pushes toward the
  // flat minimum once the correct answer wins), but stop as soon as it wins, leaving a gap far
  // thinner than a margin loss's.
  ClassifierEval hinge = train_digits(Loss::Hinge, 4);
  for (Loss l : {Loss::Perceptron, Loss::Lvq2}) {
    INFO("loss " << loss_info(l).name);
    ClassifierEval e = train_digits(l, 4);
    CHECK(e.error < 0.2);
    CHECK_FALSE(e.collapse.collapsed);
    CHECK(e.mean_gap < 0.5 * hinge.mean_gap);
  }
}
