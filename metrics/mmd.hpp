// Sample-based metrics.
//
// Maximum mean discrepancy (Gretton et al. 2012), the unbiased estimate of MMD² with a sum of
// Gaussian kernels k(a, b) = Σ_h exp(-||a - b||² / (2h²)):
//   MMD²_u = 1/(n(n-1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m-1)) Σ_{i≠j} k(y_i, y_j) - 2/(nm) Σ_{i,j} k(x_i, y_j)
// It is zero in expectation when both samples come from the same law (and may then be slightly
// negative), positive otherwise.
#pragma once

#include <cmath>
#include <stdexcept>
#include <vector>

#include "autodiff/array.hpp"

namespace ebl {

template <class T>
double mmd2_unbiased(const Array<T>& x, const Array<T>& y, const std::vector<double>& bandwidths) {
  if (x.dimension() != 2 || y.dimension() != 2 || x.shape()[1] != y.shape()[1] ||
      x.shape()[0] < 2 || y.shape()[0] < 2)
    throw ShapeError("mmd2_unbiased: need two [n, d] samples of the same d with n >= 2");
  const std::size_t d = x.shape()[1];
  auto k = [&](const T* a, const T* b) {
    double r2 = 0;
    for (std::size_t c = 0; c < d; ++c)
      r2 += (double(a[c]) - double(b[c])) * (double(a[c]) - double(b[c]));
    double s = 0;
    for (double h : bandwidths) s += std::exp(-r2 / (2 * h * h));
    return s;
  };
  auto within = [&](const Array<T>& a) {
    const std::size_t n = a.shape()[0];
    double s = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = i + 1; j < n; ++j) s += 2 * k(a.data() + i * d, a.data() + j * d);
    return s / (double(n) * double(n - 1));
  };
  double cross = 0;
  for (std::size_t i = 0; i < x.shape()[0]; ++i)
    for (std::size_t j = 0; j < y.shape()[0]; ++j) cross += k(x.data() + i * d, y.data() + j * d);
  cross /= double(x.shape()[0]) * double(y.shape()[0]);
  return within(x) + within(y) - 2 * cross;
}

}  // namespace ebl
