// Inference by minimising energy (LeCun et al. 2006, §1: "inference consists in searching for the
// value of Y that minimises E(W, Y, X)"): y* = argmin_y E(x, y) for a batch of x by gradient
// descent on the tape — ∇_y only, no parameter gradient — with
//   - restarts: several starting points per example, the lowest final energy kept;
//   - a stopping rule: a start stops when its largest coordinate step falls below `tol`;
//   - box constraints: y projected back onto [lo, hi] after every step;
//   - an optional noise term, annealed to zero (a Langevin search): y ← y − η∇E + √(2ηT_k) ξ with
//     T_k = noise · (1 − k/K) for k < K (K = anneal_steps, by default half of `steps`) and T_k = 0
//     after, which can leave a poor basin early; the steps after K are plain descent, which
//     polishes the answer to the minimiser and lets the stopping rule end it.
// And conditional inference: minimise E(x) over a subset of x's coordinates with the others held
// fixed (inpainting, denoising) — the fixed coordinates are never written.
// Energy evaluations are counted per example (one forward and ∇ of one row = one evaluation),
// as paid: every step evaluates the whole batch, so a start that has stopped still costs one
// evaluation per step until the last start of the batch stops.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/random.hpp"

namespace ebl {

/// E(x, y) for a batch: x [n, ...], y [n, ...] -> energies [n].
template <class T>
using PairEnergyFn = std::function<Var<T>(Tape<T>&, Var<T> x, Var<T> y)>;
/// E(x) for a batch: x [n, ...] -> energies [n].
template <class T>
using BatchEnergyFn = std::function<Var<T>(Tape<T>&, Var<T> x)>;

/// Inference by minimisation's options.
struct InferenceOptions {
  std::size_t steps = 500;   ///< gradient steps per start, at most
  double step_size = 0.01;   ///< η
  double tol = 1e-7;         ///< a start stops when max |Δy| of a step is below this
  std::size_t restarts = 1;  ///< starting points per example: the given start, then uniform draws
  bool box = false;          ///< project onto [lo, hi] after every step
  double lo = -1;            ///< the box, and where restarts are drawn (also without `box`): low
  double hi = 1;             ///< high
  double noise = 0;          ///< T_0 of the annealed noise term (0: plain gradient descent)
  std::size_t anneal_steps = 0;  ///< K: the noise reaches 0 after K steps (0: steps / 2)
};

/// The answers inference found.
template <class T>
struct InferenceResult {
  Array<T> y;                            ///< [n, ...]: the best answer found per example
  std::vector<double> energy;            ///< E at it, per example
  std::vector<std::size_t> evaluations;  ///< energy evaluations spent per example (all starts)
};

namespace detail {
// Gradient descent on the rows of z [m, d] (m = starts × examples), energy(t, z) -> [m];
// `free` [d] (or empty: all free) says which coordinates move. Returns the final energies and
// adds each row's evaluations into evals.
template <class T>
std::vector<double> descend(const std::function<Var<T>(Tape<T>&, Var<T>)>& energy, Array<T>& z,
                            const std::vector<bool>& free, const InferenceOptions& o, Rng& rng,
                            std::vector<std::size_t>& evals) {
  const std::size_t m = z.shape()[0], d = z.size() / std::max<std::size_t>(m, 1);
  std::vector<bool> active(m, true);
  Tape<T> t;
  Array<T> noise;
  if (o.noise > 0) noise = Array<T>::from_shape(z.shape());
  const std::size_t anneal = o.anneal_steps > 0 ? o.anneal_steps : o.steps / 2;
  for (std::size_t k = 0; k < o.steps; ++k) {
    if (std::none_of(active.begin(), active.end(), [](bool a) { return a; })) break;
    t.clear();
    Var<T> zv = t.input_ref(z, true);
    t.backward(sum(energy(t, zv)), {zv});  // ∇_z only: no parameter gradient is computed
    const T* g = t.grad(zv).data();
    const double temp = k < anneal ? o.noise * (1 - double(k) / double(anneal)) : 0.0;
    if (temp > 0) rng.fill_normal(noise.data(), noise.size());
    const T scale = T(std::sqrt(2 * o.step_size * temp));
    for (std::size_t r = 0; r < m; ++r) {
      ++evals[r];  // the whole batch was evaluated
      if (!active[r]) continue;
      double largest = 0;
      for (std::size_t c = 0; c < d; ++c) {
        if (!free.empty() && !free[c]) continue;
        T& v = z.data()[r * d + c];
        T step = -T(o.step_size) * g[r * d + c];
        if (temp > 0) step += scale * noise.data()[r * d + c];
        T next = v + step;
        if (o.box) next = std::clamp(next, T(o.lo), T(o.hi));
        largest = std::max(largest, double(std::abs(next - v)));
        v = next;
      }
      // NOTE: with noise the steps never vanish before T reaches 0, so the rule bites only then
      if (largest < o.tol && temp == 0) active[r] = false;
    }
  }
  t.clear();
  Var<T> e = energy(t, t.input_ref(z));
  std::vector<double> out(m);
  for (std::size_t r = 0; r < m; ++r) {
    out[r] = double(e.value().data()[r]);
    ++evals[r];
  }
  return out;
}

inline void check_options(const InferenceOptions& o) {
  if (o.restarts < 1 || !(o.step_size > 0) || !(o.tol >= 0) || !(o.noise >= 0) || !(o.lo < o.hi) ||
      (o.noise > 0 && o.anneal_steps > o.steps))
    throw std::invalid_argument(
        "inference: need restarts >= 1, step_size > 0, tol >= 0, noise >= 0, lo < hi and "
        "anneal_steps <= steps");
}

// The lowest final energy over the starts of each example (NaN never wins): the coordinates of z
// where free is true (all when empty) copied into r.y, which holds the rest already. An example
// none of whose starts ends at a finite energy is an error (there is no answer to return).
template <class T>
void keep_best(const Array<T>& z, const std::vector<double>& final,
               const std::vector<std::size_t>& evals, std::size_t n, const std::vector<bool>& free,
               InferenceResult<T>& r) {
  const std::size_t d = z.size() / z.shape()[0];
  r.energy.assign(n, std::numeric_limits<double>::infinity());
  r.evaluations.assign(n, 0);
  for (std::size_t row = 0; row < final.size(); ++row) {
    const std::size_t i = row % n;
    r.evaluations[i] += evals[row];
    if (final[row] < r.energy[i]) {
      r.energy[i] = final[row];
      for (std::size_t c = 0; c < d; ++c)
        if (free.empty() || free[c]) r.y.data()[i * d + c] = z.data()[row * d + c];
    }
  }
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(r.energy[i]))
      throw std::domain_error(fmt::format(
          "inference: no start of example {} ends at a finite energy (the energy is inf or NaN "
          "there); try other starts, a box, or a smaller step size",
          i));
}

// Row r of the stacked batch [restarts · n, ...] is example r % n, start r / n.
template <class T>
Array<T> stacked(const Array<T>& a, std::size_t times) {
  Shape s = a.shape();
  const std::size_t rows = s[0], per = a.size() / std::max<std::size_t>(rows, 1);
  s[0] = rows * times;
  Array<T> out = Array<T>::from_shape(s);
  for (std::size_t k = 0; k < times; ++k)
    std::copy_n(a.data(), rows * per, out.data() + k * rows * per);
  return out;
}
}  // namespace detail

/// y* = argmin_y E(x, y) for each row of x, starting from y0 [n, ...] (the first start) and
/// restarts − 1 uniform draws on [lo, hi].
template <class T>
InferenceResult<T> minimize_energy(const PairEnergyFn<T>& energy, const Array<T>& x,
                                   const Array<T>& y0, const InferenceOptions& o, Rng& rng) {
  detail::check_options(o);
  const std::size_t n = x.shape()[0];
  if (y0.dimension() == 0 || y0.shape()[0] != n)
    throw ShapeError(fmt::format("minimize_energy: start {} does not have one row per x {}",
                                 shape_str(y0.shape()), shape_str(x.shape())));
  const std::size_t d = y0.size() / n, m = n * o.restarts;
  const Array<T> xs = detail::stacked(x, o.restarts);
  Array<T> z = detail::stacked(y0, o.restarts);
  for (std::size_t e = n * d; e < z.size(); ++e) z.data()[e] = T(rng.uniform(o.lo, o.hi));
  std::vector<std::size_t> evals(m, 0);
  auto e_of_y = [&](Tape<T>& t, Var<T> y) { return energy(t, t.input_ref(xs), y); };
  const std::vector<double> final = detail::descend<T>(e_of_y, z, {}, o, rng, evals);
  InferenceResult<T> r;
  r.y = Array<T>::from_shape(y0.shape());
  detail::keep_best(z, final, evals, n, {}, r);
  return r;
}

/// Conditional inference: argmin over the coordinates where free[c] is true of E(x), for each row
/// of x0 [n, d]; the other coordinates keep x0's values exactly. The first start is x0 itself,
/// the others draw the free coordinates uniformly on [lo, hi].
template <class T>
InferenceResult<T> minimize_energy_given(const BatchEnergyFn<T>& energy, const Array<T>& x0,
                                         const std::vector<bool>& free, const InferenceOptions& o,
                                         Rng& rng) {
  detail::check_options(o);
  const std::size_t n = x0.shape()[0], d = x0.size() / std::max<std::size_t>(n, 1);
  if (free.size() != d)
    throw ShapeError(
        fmt::format("minimize_energy_given: mask of {} for rows of {}", free.size(), d));
  const std::size_t m = n * o.restarts;
  Array<T> z = detail::stacked(x0, o.restarts);
  for (std::size_t row = n; row < m; ++row)
    for (std::size_t c = 0; c < d; ++c)
      if (free[c]) z.data()[row * d + c] = T(rng.uniform(o.lo, o.hi));
  std::vector<std::size_t> evals(m, 0);
  const std::vector<double> final = detail::descend<T>(energy, z, free, o, rng, evals);
  InferenceResult<T> r;
  r.y = x0;  // the fixed coordinates, exactly
  detail::keep_best(z, final, evals, n, free, r);
  return r;
}

}  // namespace ebl
