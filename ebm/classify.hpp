// Learning E(W, Y, X) over a discrete answer set with any loss of the table (ebm/losses.hpp), and
// measuring the result: test error of the inference y* = argmin_y E(W, y, X), the energy gap
// E(W, Ȳ, X) - E(W, Y, X) between the most offending incorrect answer and the correct one, and
// collapse — an energy that is flat in y, which rates every answer alike.
#pragma once

#include <cmath>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "autodiff/optim.hpp"
#include "ebm/boltzmann.hpp"
#include "ebm/energy.hpp"
#include "ebm/losses.hpp"

namespace ebl {

/// Collapse of an energy matrix [n, m]: a row is flat when max_y E - min_y E < tol.
struct CollapseReport {
  double mean_range = 0;     ///< mean over rows of max_y E - min_y E
  double flat_fraction = 0;  ///< fraction of flat rows
  bool collapsed = false;    ///< more than half the rows are flat
};

template <class T>
CollapseReport detect_collapse(const Array<T>& e, double tol) {
  CollapseReport r;
  const std::size_t n = e.shape()[0], m = e.shape()[1];
  for (std::size_t i = 0; i < n; ++i) {
    auto [lo, hi] = std::minmax_element(e.data() + i * m, e.data() + (i + 1) * m);
    double range = double(*hi) - double(*lo);
    r.mean_range += range / double(n);
    if (!(range >= tol)) r.flat_fraction += 1.0 / double(n);  // NaN rows count as flat
  }
  r.collapsed = r.flat_fraction > 0.5;
  return r;
}

/// A classifier's evaluation on labelled inputs.
struct ClassifierEval {
  double error = 0;         ///< fraction of argmin_y E(W, y, x) != label
  double mean_gap = 0;      ///< mean E(Ȳ) - E(Y): > 0 when the correct answer wins
  double mean_energy = 0;   ///< mean energy of the correct answer
  CollapseReport collapse;  ///< how many rows' energies are flat over the answers
};

/// Evaluates on inputs x [n, d] with labels y (n of them).
template <class T>
ClassifierEval evaluate_classifier(DiscreteAnswerEnergy<T>& model, const Array<float>& x_in,
                                   std::span<const std::size_t> y, double flat_tol) {
  if (x_in.dimension() != 2 || x_in.shape()[0] != y.size())
    throw ShapeError(fmt::format("evaluate_classifier: inputs {} and {} labels do not match",
                                 shape_str(x_in.shape()), y.size()));
  const std::size_t n = y.size();
  Tape<T> t;
  Array<T> x(x_in.shape());
  std::copy(x_in.begin(), x_in.end(), x.begin());
  Var<T> e = model(t, t.input(x));
  Answers<T> a = answers(e, y);
  std::vector<std::size_t> pred = infer(e.value());
  ClassifierEval r;
  for (std::size_t i = 0; i < n; ++i) {
    r.error += (pred[i] != y[i]) / double(n);
    r.mean_gap += (double(a.e_neg.value()(i)) - double(a.e_pos.value()(i))) / double(n);
    r.mean_energy += double(a.e_pos.value()(i)) / double(n);
  }
  r.collapse = detect_collapse(e.value(), flat_tol);
  return r;
}

/// train_classifier's settings.
struct ClassifierTraining {
  std::size_t epochs = 30;  ///< passes over the training set
  std::size_t batch = 32;   ///< rows per step
  double lr = 1e-3;         ///< Adam's learning rate
  LossOptions loss;         ///< the loss's margin, saturation, γ and β
  double flat_tol = 1e-3;   ///< collapse threshold on max_y E - min_y E
};

/// Labelled examples as the trainer sees them: inputs [n, d] and one label per row. A view: the
/// arrays belong to the caller (a loader's record, a generator's output).
struct LabeledView {
  const Array<float>& x;           ///< inputs [n, d]
  std::span<const std::size_t> y;  ///< one label per row
};

/// Trains with Adam on mini-batches (reshuffled every epoch from rng); after each epoch, calls
/// on_epoch(epoch, evaluation on `test`). Stops early, reporting it, if the loss becomes
/// non-finite (an unbounded loss such as the energy loss can run away).
template <class T, class OnEpoch>
bool train_classifier(DiscreteAnswerEnergy<T>& model, Loss loss, LabeledView train,
                      LabeledView test, const ClassifierTraining& o, Rng& rng, OnEpoch on_epoch) {
  if (train.x.dimension() != 2 || train.x.shape()[0] != train.y.size())
    throw ShapeError(fmt::format("train_classifier: inputs {} and {} labels do not match",
                                 shape_str(train.x.shape()), train.y.size()));
  Adam<T> opt(model.parameters(), {.lr = o.lr});
  const std::size_t n = train.y.size(), dim = train.x.shape()[1];
  std::vector<std::size_t> perm(n), labels;
  for (std::size_t i = 0; i < n; ++i) perm[i] = i;
  Tape<T> t;
  Array<T> xb;
  for (std::size_t epoch = 1; epoch <= o.epochs; ++epoch) {
    for (std::size_t i = n; i-- > 1;) std::swap(perm[i], perm[rng.below(i + 1)]);
    for (std::size_t start = 0; start < n; start += o.batch) {
      const std::size_t b = std::min(o.batch, n - start);
      xb.resize(Shape{b, dim});
      labels.resize(b);
      for (std::size_t i = 0; i < b; ++i) {
        std::copy_n(train.x.data() + perm[start + i] * dim, dim, xb.data() + i * dim);
        labels[i] = train.y[perm[start + i]];
      }
      t.clear();
      opt.zero_grad();
      Var<T> l = batch_loss(loss, answers(model(t, t.input(xb)), std::span(labels)), o.loss);
      if (!std::isfinite(l.item())) return false;
      t.backward(l);
      opt.step();
    }
    on_epoch(epoch, evaluate_classifier<T>(model, test.x, test.y, o.flat_tol));
  }
  return true;
}

}  // namespace ebl
