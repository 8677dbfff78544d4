// Gradient checking, a library feature: users check their own energies with it.
//
// The function under test maps a tape and input variables to an array y of any shape. The check
// contracts y with a seeded random cotangent w, L = Σ w ⊙ y (not all-ones: a ones seed hides
// transposition and broadcasting bugs), and compares the tape's dL/dx with central differences
//     dL/dx_j ≈ (L(x + h e_j) - L(x - h e_j)) / 2h,   h = eps · max(1, |x_j|),
// in double precision, for every element of every input and every listed parameter. An element
// passes when |analytic - numeric| <= atol + rtol · max(|analytic|, |numeric|); the report names
// the worst element, its index and both values.
//
//   auto report = ebl::gradcheck<double>(
//       [&](ebl::Tape<double>& t, std::span<const ebl::Var<double>> x) { return energy(t, x[0]); },
//       {x0}, model.parameters());
//   if (!report.ok) std::cerr << report.str();
#pragma once

#include <cmath>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/random.hpp"

namespace ebl {

/// The gradient checker's steps and tolerances.
struct GradcheckOptions {
  double eps = 1e-6;          ///< relative finite-difference step
  double rtol = 1e-5;         ///< relative tolerance
  double atol = 1e-7;         ///< absolute floor of the tolerance
  std::uint64_t seed = 1234;  ///< seed of the random cotangent
};

/// The gradient checker's verdict.
struct GradcheckReport {
  bool ok = true;           ///< every element within tolerance
  std::size_t checked = 0;  ///< number of elements compared
  double worst_ratio =
      0;  ///< max over elements of |a - n| / (atol + rtol max(|a|,|n|)); ≤ 1 passes
  std::string worst_where;  ///< "input 0 [3,1]" or "param 'W1' [0,2]"
  double analytic = 0;      ///< the worst element's gradient from the tape
  double numeric = 0;       ///< and from central differences

  /// One line: passed or FAILED, the element count, the worst element and its values.
  std::string str() const {
    return fmt::format(
        "gradcheck {}: {} elements, worst {} analytic {:.10g} numeric {:.10g} "
        "(error/tolerance {:.3g})",
        ok ? "passed" : "FAILED", checked, worst_where.empty() ? "-" : worst_where, analytic,
        numeric, worst_ratio);
  }
};

using GradcheckFn = std::function<Var<double>(Tape<double>&, std::span<const Var<double>>)>;

namespace detail {
inline std::string index_str(const Shape& shape, std::size_t flat) {
  Shape idx(shape.size(), 0);
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(idx);
}
/// One element's comparison: analytic a against numeric n, kept in the report when it is the
/// worst so far (where() names it, called only then).
template <class Where>
void compare_element(GradcheckReport& rep, const GradcheckOptions& opt, double a, double n,
                     Where where) {
  double ratio = std::abs(a - n) / (opt.atol + opt.rtol * std::max(std::abs(a), std::abs(n)));
  if (std::isnan(ratio)) ratio = std::numeric_limits<double>::infinity();
  ++rep.checked;
  if (ratio > rep.worst_ratio || rep.worst_where.empty()) {
    rep.worst_ratio = ratio;
    rep.worst_where = where();
    rep.analytic = a;
    rep.numeric = n;
  }
}
}  // namespace detail

/// Check the gradients of f with respect to `inputs` (made tape inputs with requires_grad) and the
/// parameters in `params` (perturbed in place and restored; their .grad is left as it was).
inline GradcheckReport gradcheck(const GradcheckFn& f, std::vector<Array<double>> inputs,
                                 std::span<Parameter<double>* const> params = {},
                                 const GradcheckOptions& opt = {}) {
  Tape<double> tape;
  std::vector<Var<double>> xs;
  auto build = [&]() {
    tape.clear();
    xs.clear();
    for (auto& x : inputs) xs.push_back(tape.input(x, true));
    return f(tape, xs);
  };

  // Analytic gradients of L = Σ w ⊙ y.
  Var<double> y = build();
  Rng rng(opt.seed);
  Array<double> w = rng.normal_array<double>(y.shape());
  Var<double> loss = sum(mul(y, tape.constant(w)));
  std::vector<Array<double>> param_grads = param_gradients<double>(loss, params, xs);
  std::vector<Array<double>> analytic;
  for (auto& x : xs) analytic.push_back(tape.grad(x));
  for (auto& g : param_grads) analytic.push_back(std::move(g));

  auto loss_at = [&]() {
    Var<double> yy = build();
    const Array<double>& v = yy.value();
    if (v.shape() != w.shape())
      throw ShapeError("gradcheck: output shape changed between evaluations");
    double l = 0;
    for (std::size_t e = 0; e < v.size(); ++e) l += w.data()[e] * v.data()[e];
    return l;
  };

  GradcheckReport rep;
  auto check_array = [&](Array<double>& target, const Array<double>& grad,
                         const std::string& name) {
    for (std::size_t e = 0; e < target.size(); ++e) {
      double& xe = target.data()[e];
      const double x0 = xe;
      const double h = opt.eps * std::max(1.0, std::abs(x0));
      xe = x0 + h;
      double lp = loss_at();
      xe = x0 - h;
      double lm = loss_at();
      xe = x0;
      detail::compare_element(rep, opt, grad.data()[e], (lp - lm) / (2 * h),
                              [&] { return name + " " + detail::index_str(target.shape(), e); });
    }
  };
  for (std::size_t k = 0; k < inputs.size(); ++k)
    check_array(inputs[k], analytic[k], fmt::format("input {}", k));
  for (std::size_t k = 0; k < params.size(); ++k)
    check_array(params[k]->value, analytic[inputs.size() + k],
                fmt::format("param '{}'", params[k]->name));
  rep.ok = rep.worst_ratio <= 1.0;
  return rep;
}

inline GradcheckReport gradcheck(const GradcheckFn& f, std::vector<Array<double>> inputs,
                                 const std::vector<Parameter<double>*>& params,
                                 const GradcheckOptions& opt = {}) {
  return gradcheck(f, std::move(inputs), std::span<Parameter<double>* const>(params), opt);
}

}  // namespace ebl
