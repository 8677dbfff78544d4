// The Boltzmann–Gibbs distribution of an energy, computed exactly where the domain can be
// enumerated or gridded.
//
//   p(y|x) = exp(-βE(x,y)) / Z(x),   Z(x) = Σ_y exp(-βE(x,y))       (discrete answers)
//   p(x)   = exp(-βE(x)) / Z,        Z    = ∫ exp(-βE(x)) dx          (continuous x)
//
// On a grid, Z is the midpoint rule: Z ≈ Σ_g exp(-βE(x_g)) · vol(cell), so
// log Z = logsumexp_g(-βE(x_g)) + log vol(cell). A finite set (all binary vectors of an RBM's
// smaller layer) is a domain whose cells have volume 1.
//
// Maximum likelihood. For data x_1..x_N, the negative log-likelihood is
//   NLL(θ) = β mean_i E(x_i) + log Z(θ),
// and its gradient is the seed's wake term minus its dream term:
//   ∇θ NLL = β ( mean_i ∇θE(x_i)  -  E_{x'~p_θ}[∇θE(x')] )        (= -mean_i ∇θ log p(x_i))
//                 \___ wake ____/     \______ dream ______/
// exact_mle_gradient computes both terms exactly on a domain; contrastive divergence estimates
// the dream term with samples, and can be checked against it.
#pragma once

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "distributed/data_parallel.hpp"
#include "ebm/energy.hpp"

namespace ebl {

/// Points covering a domain, and the log-volume of the cell each one stands for.
template <class T>
struct Domain {
  Array<T> points;      ///< [m, d]
  double log_cell = 0;  ///< log vol(cell); 0 for a finite set
  /// The number of points m.
  std::size_t size() const { return points.shape()[0]; }
};

/// Midpoints of n equal cells of [lo, hi].
template <class T>
Domain<T> grid_1d(double lo, double hi, std::size_t n) {
  if (!(hi > lo) || n == 0)
    throw std::invalid_argument(fmt::format("grid_1d: bad box [{}, {}] or n = {}", lo, hi, n));
  Domain<T> d;
  d.points = Array<T>::from_shape({n, 1});
  const double h = (hi - lo) / double(n);
  for (std::size_t i = 0; i < n; ++i) d.points(i, 0) = T(lo + (double(i) + 0.5) * h);
  d.log_cell = std::log(h);
  return d;
}

/// Midpoints of an n0 × n1 grid of cells over [lo0, hi0] × [lo1, hi1], row-major: point i*n1 + j
/// is (x0_i, x1_j).
template <class T>
Domain<T> grid_2d(double lo0, double hi0, std::size_t n0, double lo1, double hi1, std::size_t n1) {
  if (!(hi0 > lo0) || !(hi1 > lo1) || n0 == 0 || n1 == 0)
    throw std::invalid_argument(fmt::format("grid_2d: bad box [{}, {}] x [{}, {}] or sizes {} x {}",
                                            lo0, hi0, lo1, hi1, n0, n1));
  Domain<T> d;
  d.points = Array<T>::from_shape({n0 * n1, 2});
  const double h0 = (hi0 - lo0) / double(n0), h1 = (hi1 - lo1) / double(n1);
  for (std::size_t i = 0; i < n0; ++i)
    for (std::size_t j = 0; j < n1; ++j) {
      d.points(i * n1 + j, 0) = T(lo0 + (double(i) + 0.5) * h0);
      d.points(i * n1 + j, 1) = T(lo1 + (double(j) + 0.5) * h1);
    }
  d.log_cell = std::log(h0) + std::log(h1);
  return d;
}

/// All 2^dim binary vectors (bit k of the index is coordinate k), cells of volume 1.
template <class T>
Domain<T> binary_cube(std::size_t dim) {
  if (dim > 24)
    throw std::invalid_argument(
        fmt::format("binary_cube: 2^{} points is too many to enumerate", dim));
  const std::size_t m = std::size_t(1) << dim;
  Domain<T> d;
  d.points = Array<T>::from_shape({m, dim});
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t k = 0; k < dim; ++k) d.points(i, k) = T((i >> k) & 1);
  return d;
}

// ---- discrete answers: the energy matrix E [n, |Y|] of E(W, Y, X) ------------------------------

/// log Z(x_i) = log Σ_y exp(-βE(x_i, y)), one per row.
template <class T>
Var<T> log_partition(Var<T> energies, T beta) {
  return logsumexp(energies * -beta, 1);
}

/// log p(y | x_i) = -βE(x_i, y) - log Z(x_i), the matrix [n, |Y|].
template <class T>
Var<T> log_prob(Var<T> energies, T beta) {
  return log_softmax(energies * -beta, 1);
}

/// Inference: y*_i = argmin_y E(x_i, y) (the first on ties).
template <class T>
std::vector<std::size_t> infer(const Array<T>& energies) {
  if (energies.dimension() != 2)
    throw ShapeError(fmt::format("infer: want [n, |Y|], got {}", shape_str(energies.shape())));
  const std::size_t n = energies.shape()[0], k = energies.shape()[1];
  std::vector<std::size_t> y(n, 0);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t c = 1; c < k; ++c)
      if (energies(r, c) < energies(r, y[r])) y[r] = c;
  return y;
}

// ---- continuous (or enumerated) x: E_θ(x) on a domain ------------------------------------------

/// E(x_g) at every point of the domain, [m].
template <class T>
Array<T> energies_on(Energy<T>& energy, const Domain<T>& domain) {
  Tape<T> t;
  return energy(t, t.constant(domain.points)).value();
}

namespace detail {
// log Σ_g exp(-β e_g), in double
template <class T>
double log_sum_exp_neg(const Array<T>& e, double beta) {
  double m = -std::numeric_limits<double>::infinity();
  for (T v : e) m = std::max(m, -beta * double(v));
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (T v : e) s += std::exp(-beta * double(v) - m);
  return m + std::log(s);
}
}  // namespace detail

/// log Z = log ∫ exp(-βE(x)) dx by the midpoint rule on the domain (exact on a finite set), from
/// the energies at its points (energies_on), so that callers needing Z and p evaluate them once.
template <class T>
double log_partition(const Array<T>& domain_energies, const Domain<T>& domain, double beta = 1) {
  return detail::log_sum_exp_neg(domain_energies, beta) + domain.log_cell;
}
template <class T>
double log_partition(Energy<T>& energy, const Domain<T>& domain, double beta = 1) {
  return log_partition(energies_on(energy, domain), domain, beta);
}

/// The normalised density p(x_g) = exp(-βE(x_g)) / Z at every point of the domain, [m].
/// (On a finite set, the probabilities; on a grid, densities: Σ_g p_g vol(cell) = 1.)
template <class T>
Array<T> density(Array<T> domain_energies, const Domain<T>& domain, double beta = 1) {
  const double log_z = log_partition(domain_energies, domain, beta);
  for (T& v : domain_energies) v = T(std::exp(-beta * double(v) - log_z));
  return domain_energies;
}
template <class T>
Array<T> density(Energy<T>& energy, const Domain<T>& domain, double beta = 1) {
  return density(energies_on(energy, domain), domain, beta);
}

/// mean_i E(x_i) over data [N, d].
template <class T>
double mean_energy(Energy<T>& energy, const Array<T>& data) {
  Tape<T> t;
  const Array<T>& e = energy(t, t.constant(data)).value();
  double s = 0;
  for (T v : e) s += double(v);
  return s / double(e.size());
}

// ---- the same, with the rows split across the ranks of a data-parallel run ---------------------
// Collective (every rank calls them with the same arguments and receives the same result); with
// one rank, exactly the serial functions above.

namespace detail {
// Rank r's block of the rows of x [n, d], and E of it.
template <class T>
Array<T> energies_of_block(Energy<T>& energy, const Array<T>& x, RowBlock rb) {
  const std::size_t d = x.size() / std::max<std::size_t>(1, x.shape()[0]);
  Shape shape = x.shape();
  shape[0] = rb.size();
  Array<T> mine(shape);
  std::copy_n(x.data() + rb.begin * d, rb.size() * d, mine.data());
  if (rb.size() == 0) return Array<T>(Shape{0});
  Tape<T> t;
  return energy(t, t.constant(mine)).value();
}
}  // namespace detail

/// E at every point of the domain, each rank evaluating its block of the points.
template <class T>
Array<T> energies_on(Comm& comm, Energy<T>& energy, const Domain<T>& domain) {
  if (comm.size() == 1) return energies_on(energy, domain);
  const std::size_t m = domain.size();
  const Array<T> mine = detail::energies_of_block(energy, domain.points, row_block(m, comm));
  const std::vector<double> all =
      allgather_rows<T>(comm, std::span<const T>(mine.data(), mine.size()), m);
  Array<T> e(Shape{m});
  std::transform(all.begin(), all.end(), e.begin(), [](double v) { return T(v); });  // exact
  return e;
}
template <class T>
double log_partition(Comm& comm, Energy<T>& energy, const Domain<T>& domain, double beta = 1) {
  return log_partition(energies_on(comm, energy, domain), domain, beta);
}
/// mean_i E(x_i), each rank summing its block of the rows.
template <class T>
double mean_energy(Comm& comm, Energy<T>& energy, const Array<T>& data) {
  if (comm.size() == 1) return mean_energy(energy, data);
  double s = 0;
  for (T v : detail::energies_of_block(energy, data, row_block(data.shape()[0], comm)))
    s += double(v);
  return allreduce_sum(comm, s) / double(data.shape()[0]);
}

/// Exact negative log-likelihood per sample of data [N, d]: β mean_i E(x_i) + log Z.
template <class T>
double nll(Energy<T>& energy, const Domain<T>& domain, const Array<T>& data, double beta = 1) {
  return beta * mean_energy(energy, data) + log_partition(energy, domain, beta);
}

/// The two terms of the exact maximum-likelihood gradient, one array per parameter:
/// wake = mean_i ∇θE(x_i), dream = E_{p_θ}[∇θE] (p_θ on the domain). ∇θ NLL = β (wake - dream).
template <class T>
struct MleGradient {
  std::vector<Array<T>> wake;   ///< mean_i ∇θE(x_i), per parameter
  std::vector<Array<T>> dream;  ///< E_{p_θ}[∇θE], per parameter
  double beta = 1;              ///< the inverse temperature
  /// β (wake − dream), per parameter.
  std::vector<Array<T>> nll_gradient() const {
    std::vector<Array<T>> g;
    for (std::size_t k = 0; k < wake.size(); ++k) g.push_back(T(beta) * (wake[k] - dream[k]));
    return g;
  }
};

template <class T>
MleGradient<T> exact_mle_gradient(Energy<T>& energy, const Domain<T>& domain, const Array<T>& data,
                                  double beta = 1) {
  auto params = energy.parameters();
  Tape<T> t;
  Var<T> e_data = energy(t, t.constant(data));
  Var<T> e_grid = energy(t, t.constant(domain.points));
  // p_g = softmax(-βE)_g: the model's probability of each cell, held constant
  Array<T> p = e_grid.value();
  const double lse = detail::log_sum_exp_neg(p, beta);
  for (T& v : p) v = T(std::exp(-beta * double(v) - lse));
  MleGradient<T> g;
  g.beta = beta;
  g.wake = param_gradients<T>(mean(e_data), params);
  g.dream = param_gradients<T>(sum(e_grid * t.constant(p)), params);
  return g;
}

}  // namespace ebl
