// The loss functionals of LeCun, Chopra, Hadsell, Ranzato & Huang, "A Tutorial on Energy-Based
// Learning" (2006), Table 1 and section 2.2.
//
// Every loss is a function of energies only. For sample i:
//   e_pos = E(W, Yⁱ, Xⁱ)  the energy of the correct answer;
//   e_neg = E(W, Ȳⁱ, Xⁱ)  the energy of the most offending incorrect answer: the incorrect answer
//                         of lowest energy (with a neighbourhood of Yⁱ excluded on a grid);
//   all   = E(W, y, Xⁱ)   for every answer y, for the integrals over y (exact sums over the answer
//                         set, or midpoint sums over a grid of a continuous answer).
//
//  loss           eq.  per-sample formula                                          margin
//  energy         (6)  E(Yⁱ)                                                       none
//  perceptron     (7)  E(Yⁱ) - min_Y E(Y)                                          0
//  hinge          (11) max(0, m + E(Yⁱ) - E(Ȳⁱ))                                   m
//  log            (12) log(1 + exp(E(Yⁱ) - E(Ȳⁱ)))                                 > 0
//  LVQ2           (13) min(M, max(0, E(Yⁱ) - E(Ȳⁱ)))                               0
//  MCE            (15) (1 + exp(-(E(Yⁱ) - E(Ȳⁱ))))⁻¹                               > 0
//  square-square  (16) E(Yⁱ)² + (max(0, m - E(Ȳⁱ)))²                               m
//  square-exp     (17) E(Yⁱ)² + γ exp(-E(Ȳⁱ))                                      > 0
//  NLL/MMI        (23) E(Yⁱ) + (1/β) log ∫_y exp(-βE(y))                           > 0
//  MEE            (27) 1 - exp(-βE(Yⁱ)) / ∫_y exp(-βE(y))                          > 0
//
// NOTE: the tutorial's LVQ2 (13) divides the difference by δ E(Ȳⁱ); this is the unnormalised
// form of the table, saturating at M. MEE is the probability mass of the wrong answers, so
// its sum runs over answers (or grid cells) without the cell volume; NLL, a density, includes it.
#pragma once

#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autodiff/ops.hpp"

namespace ebl {

/// The energies a loss reads, per sample.
template <class T>
struct Answers {
  Var<T> all;                      ///< [n, m] E(W, y, Xⁱ) for every answer y
  Var<T> e_pos;                    ///< [n]    E(W, Yⁱ, Xⁱ)
  Var<T> e_neg;                    ///< [n]    E(W, Ȳⁱ, Xⁱ)
  std::vector<std::size_t> y_pos;  ///< the correct answers Yⁱ
  std::vector<std::size_t> y_neg;  ///< the most offending incorrect answers Ȳⁱ
  double log_cell = 0;             ///< log of the measure of one answer (log Δy on a grid)
};

/// Gather e_pos and find e_neg in an energy matrix [n, m]. Answers j with |j - Yⁱ| <= exclude are
/// not candidates for Ȳⁱ (exclude = 0: only Yⁱ itself; on a grid of a continuous answer, a few
/// cells around it). log_cell is the log-measure of one answer for the NLL's integral.
template <class T>
Answers<T> answers(Var<T> energies, std::span<const std::size_t> y, std::size_t exclude = 0,
                   double log_cell = 0) {
  const Shape& s = energies.shape();
  if (s.size() != 2 || s[0] != y.size())
    throw ShapeError(
        fmt::format("answers: energies {} and {} labels do not match", shape_str(s), y.size()));
  const std::size_t n = s[0], m = s[1];
  // +inf on the excluded answers, so that the row minimum picks the most offending incorrect one
  Array<T> mask(Shape{n, m}, T(0));
  for (std::size_t r = 0; r < n; ++r) {
    if (y[r] >= m)
      throw ShapeError(fmt::format("answers: label {} out of range for {} answers", y[r], m));
    std::size_t lo = y[r] >= exclude ? y[r] - exclude : 0, hi = std::min(m - 1, y[r] + exclude);
    if (hi - lo + 1 >= m)
      throw std::invalid_argument(
          fmt::format("answers: no incorrect answer left for sample {}", r));
    for (std::size_t j = lo; j <= hi; ++j) mask(r, j) = std::numeric_limits<T>::infinity();
  }
  Tape<T>& t = *energies.tape;
  Answers<T> a;
  a.all = energies;
  a.e_pos = gather(energies, y);
  Var<T> masked = energies + t.constant(mask);
  a.e_neg = min(masked, 1);
  a.y_pos.assign(y.begin(), y.end());
  a.y_neg.resize(n);
  for (std::size_t r = 0; r < n; ++r) {
    std::size_t best = 0;
    for (std::size_t j = 1; j < m; ++j)
      if (masked.value()(r, j) < masked.value()(r, best)) best = j;
    a.y_neg[r] = best;
  }
  a.log_cell = log_cell;
  return a;
}

/// Index of the grid point nearest to each answer value (grid sorted ascending).
template <class T>
std::vector<std::size_t> snap_to_grid(const Array<T>& values, const Array<T>& grid) {
  std::vector<std::size_t> idx(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    auto it = std::lower_bound(grid.begin(), grid.end(), values.data()[i]);
    std::size_t j = std::size_t(it - grid.begin());
    if (j == grid.size() ||
        (j > 0 && values.data()[i] - grid.data()[j - 1] < *it - values.data()[i]))
      --j;
    idx[i] = j;
  }
  return idx;
}

// ---- the ten losses, per sample [n] ------------------------------------------------------------

/// (6) E(Yⁱ): pulls the correct answer down and nothing up.
template <class T>
Var<T> energy_loss(const Answers<T>& a) {
  return a.e_pos;
}
/// (7) E(Yⁱ) - min_Y E(Y): zero once the correct answer has the lowest energy.
template <class T>
Var<T> perceptron_loss(const Answers<T>& a) {
  return a.e_pos - min(a.all, 1);
}
/// (11) max(0, m + E(Yⁱ) - E(Ȳⁱ))
template <class T>
Var<T> hinge_loss(const Answers<T>& a, T margin) {
  return relu(margin + (a.e_pos - a.e_neg));
}
/// (12) log(1 + exp(E(Yⁱ) - E(Ȳⁱ))): a soft hinge, an infinite margin.
template <class T>
Var<T> log_loss(const Answers<T>& a) {
  return softplus(a.e_pos - a.e_neg);
}
/// (13) min(M, max(0, E(Yⁱ) - E(Ȳⁱ)))
template <class T>
Var<T> lvq2_loss(const Answers<T>& a, T saturation) {
  return clamp(a.e_pos - a.e_neg, T(0), saturation);
}
/// (15) σ(E(Yⁱ) - E(Ȳⁱ)), the minimum classification error loss
template <class T>
Var<T> mce_loss(const Answers<T>& a) {
  return sigmoid(a.e_pos - a.e_neg);
}
/// (16) E(Yⁱ)² + max(0, m - E(Ȳⁱ))²
template <class T>
Var<T> square_square_loss(const Answers<T>& a, T margin) {
  return square(a.e_pos) + square(relu(margin - a.e_neg));
}
/// (17) E(Yⁱ)² + γ exp(-E(Ȳⁱ))
template <class T>
Var<T> square_exp_loss(const Answers<T>& a, T gamma) {
  return square(a.e_pos) + gamma * exp(-a.e_neg);
}
/// (23) E(Yⁱ) + (1/β) log ∫_y exp(-βE(y)), the negative log-likelihood (MMI)
template <class T>
Var<T> nll_loss(const Answers<T>& a, T beta) {
  return a.e_pos + (logsumexp(a.all * -beta, 1) + T(a.log_cell)) / beta;
}
/// (27) 1 - exp(-βE(Yⁱ)) / Σ_y exp(-βE(y)), the minimum empirical error (1 - p(Yⁱ|Xⁱ))
template <class T>
Var<T> mee_loss(const Answers<T>& a, T beta) {
  return T(1) - exp(a.e_pos * -beta - logsumexp(a.all * -beta, 1));
}

// ---- the table, for code that loops over every loss --------------------------------------------

enum class Loss { Energy, Perceptron, Hinge, Log, Lvq2, Mce, SquareSquare, SquareExp, Nll, Mee };

/// A row of the loss table.
struct LossInfo {
  Loss kind;             ///< the loss
  const char* name;      ///< flag value and table label
  const char* equation;  ///< equation number in the tutorial
  const char* formula;   ///< its per-sample formula
  const char* margin;    ///< the margin it enforces
};

inline constexpr LossInfo kLossTable[] = {
    {Loss::Energy, "energy", "(6)", "E(Yi)", "none"},
    {Loss::Perceptron, "perceptron", "(7)", "E(Yi) - min_Y E(Y)", "0"},
    {Loss::Hinge, "hinge", "(11)", "max(0, m + E(Yi) - E(Ybar))", "m"},
    {Loss::Log, "log", "(12)", "log(1 + exp(E(Yi) - E(Ybar)))", "> 0"},
    {Loss::Lvq2, "lvq2", "(13)", "min(M, max(0, E(Yi) - E(Ybar)))", "0"},
    {Loss::Mce, "mce", "(15)", "sigmoid(E(Yi) - E(Ybar))", "> 0"},
    {Loss::SquareSquare, "square-square", "(16)", "E(Yi)^2 + max(0, m - E(Ybar))^2", "m"},
    {Loss::SquareExp, "square-exp", "(17)", "E(Yi)^2 + gamma exp(-E(Ybar))", "> 0"},
    {Loss::Nll, "nll", "(23)", "E(Yi) + (1/beta) log sum_y exp(-beta E(y))", "> 0"},
    {Loss::Mee, "mee", "(27)", "1 - exp(-beta E(Yi)) / sum_y exp(-beta E(y))", "> 0"},
};

inline const LossInfo& loss_info(Loss kind) {
  for (const auto& l : kLossTable)
    if (l.kind == kind) return l;
  throw std::logic_error("loss_info: unknown loss");
}

inline Loss parse_loss(const std::string& name) {
  std::string names;
  for (const auto& l : kLossTable) {
    if (name == l.name) return l.kind;
    names += names.empty() ? l.name : std::string(", ") + l.name;
  }
  throw std::invalid_argument(fmt::format("unknown loss '{}' (expected one of: {})", name, names));
}

/// The losses' constants.
struct LossOptions {
  double margin = 1;      ///< m of hinge and square-square
  double saturation = 1;  ///< M of LVQ2
  double gamma = 1;       ///< γ of square-exp
  double beta = 1;        ///< β of NLL and MEE
};

/// The loss of each sample, [n].
template <class T>
Var<T> per_sample_loss(Loss kind, const Answers<T>& a, const LossOptions& o = {}) {
  switch (kind) {
    case Loss::Energy:
      return energy_loss(a);
    case Loss::Perceptron:
      return perceptron_loss(a);
    case Loss::Hinge:
      return hinge_loss(a, T(o.margin));
    case Loss::Log:
      return log_loss(a);
    case Loss::Lvq2:
      return lvq2_loss(a, T(o.saturation));
    case Loss::Mce:
      return mce_loss(a);
    case Loss::SquareSquare:
      return square_square_loss(a, T(o.margin));
    case Loss::SquareExp:
      return square_exp_loss(a, T(o.gamma));
    case Loss::Nll:
      return nll_loss(a, T(o.beta));
    case Loss::Mee:
      return mee_loss(a, T(o.beta));
  }
  throw std::logic_error("per_sample_loss: unknown loss");
}

/// The batch loss: the mean over samples.
template <class T>
Var<T> batch_loss(Loss kind, const Answers<T>& a, const LossOptions& o = {}) {
  return mean(per_sample_loss(kind, a, o));
}

}  // namespace ebl
