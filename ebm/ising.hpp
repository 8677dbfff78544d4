// The Ising model: spins s ∈ {−1, +1}^n on the nodes of a graph, couplings J_e on its edges and a
// field h_i on its nodes,
//
//   E(s) = − Σ_{e = (i, j)} J_e s_i s_j − Σ_i h_i s_i,        p(s) = e^{−E(s)} / Z
//
// (the inverse temperature folded into J and h). As an Energy on the tape it reads rows of spins
// [batch, n] and gives E for each, differentiable in J and h (learning) and in s (its gradient
// ∇s E = −(J s + h)_i is what Gibbs-with-gradients proposes flips from); the couplings live on
// the edges only, so any graph — a lattice, a random sparse graph — is one model.
//
// Exact answers: by enumerating the 2^n states (n ≤ 24), or, on an R × C lattice, by the
// transfer matrix along its columns (2^R column states: a 4 × 16 lattice is 16 states per step,
// however large C is), both with the marginals E[s_i] and the edge correlations E[s_i s_j]; and
// the Onsager free energy of the infinite square lattice, which the transfer matrix approaches as
// R grows.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>
#include <stdexcept>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "autodiff/interrupt.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/random.hpp"
#include "ebm/energy.hpp"

namespace ebl {

/// A graph on nodes 0 … n−1: its undirected edges (i < j, no repeats).
struct IsingGraph {
  std::size_t nodes = 0;                                   ///< n
  std::vector<std::pair<std::size_t, std::size_t>> edges;  ///< (i, j) with i < j
  std::size_t rows = 0;   ///< for a lattice: R (site (r, c) is node r·C + c); 0 otherwise
  std::size_t cols = 0;   ///< for a lattice: C
  bool periodic = false;  ///< for a lattice: wrapped in both directions
};

/// The R × C square lattice, node r·C + c at row r and column c, open or periodic in both
/// directions (periodic needs R, C ≥ 3, so that no edge appears twice).
inline IsingGraph ising_lattice(std::size_t rows, std::size_t cols, bool periodic) {
  if (rows == 0 || cols == 0) throw std::invalid_argument("ising_lattice: empty lattice");
  if (periodic && (rows < 3 || cols < 3))
    throw std::invalid_argument(fmt::format(
        "ising_lattice: a periodic {} x {} lattice would repeat edges (R, C >= 3)", rows, cols));
  IsingGraph g;
  g.nodes = rows * cols;
  g.rows = rows;
  g.cols = cols;
  g.periodic = periodic;
  auto add = [&](std::size_t a, std::size_t b) {
    g.edges.push_back({std::min(a, b), std::max(a, b)});
  };
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      const std::size_t i = r * cols + c;
      if (c + 1 < cols)
        add(i, i + 1);
      else if (periodic)
        add(i, r * cols);
      if (r + 1 < rows)
        add(i, i + cols);
      else if (periodic)
        add(i, c);
    }
  return g;
}

/// An Erdős–Rényi graph G(n, p): each of the n(n−1)/2 pairs an edge with probability p.
inline IsingGraph ising_random_graph(std::size_t nodes, double p, Rng& rng) {
  if (nodes < 2 || !(p >= 0 && p <= 1))
    throw std::invalid_argument("ising_random_graph: needs n >= 2 and 0 <= p <= 1");
  IsingGraph g;
  g.nodes = nodes;
  for (std::size_t i = 0; i < nodes; ++i)
    for (std::size_t j = i + 1; j < nodes; ++j)
      if (rng.uniform() < p) g.edges.push_back({i, j});
  return g;
}

/// An Ising model on a graph (see the top of this file). As an Energy: rows of spins → E.
class Ising : public Energy<double> {
 public:
  /// Every coupling J_e = coupling, every field h_i = field.
  explicit Ising(IsingGraph graph, double coupling = 0, double field = 0)
      : J("J", Array<double>(Shape{graph.edges.size()}, coupling)),
        h("h", Array<double>(Shape{graph.nodes}, field)),
        graph_(std::move(graph)),
        nbrs_(graph_.nodes) {
    if (graph_.nodes == 0) throw std::invalid_argument("Ising: the graph has no nodes");
    for (std::size_t e = 0; e < graph_.edges.size(); ++e) {
      const auto [i, j] = graph_.edges[e];
      if (i >= j || j >= graph_.nodes)
        throw std::invalid_argument(fmt::format(
            "Ising: edge ({}, {}) is not a pair i < j of the {} nodes", i, j, graph_.nodes));
      nbrs_[i].push_back({j, e});
      nbrs_[j].push_back({i, e});
    }
    // the endpoints' selectors: (S P_a)[:, e] = s_i, (S P_b)[:, e] = s_j
    const std::size_t n = graph_.nodes, m = graph_.edges.size();
    pa_ = Array<double>(Shape{n, std::max<std::size_t>(m, 1)}, 0.0);
    pb_ = pa_;
    for (std::size_t e = 0; e < m; ++e) {
      pa_(graph_.edges[e].first, e) = 1;
      pb_(graph_.edges[e].second, e) = 1;
    }
  }
  /// n.
  std::size_t nodes() const { return graph_.nodes; }
  /// The graph.
  const IsingGraph& graph() const { return graph_; }
  /// For each node, its (neighbour, edge index) pairs.
  const std::vector<std::vector<std::pair<std::size_t, std::size_t>>>& neighbours() const {
    return nbrs_;
  }
  /// J and h.
  std::vector<Parameter<double>*> parameters() override { return {&J, &h}; }

  /// E(s) of rows of spins s [batch, n] (entries ±1; any real values are read as they are).
  Var<double> operator()(Tape<double>& t, Var<double> s) override {
    if (s.value().dimension() != 2 || s.value().shape()[1] != nodes())
      throw std::invalid_argument(fmt::format("Ising: spins [batch, {}] needed, got {}", nodes(),
                                              shape_str(s.value().shape())));
    Var<double> field = sum(s * t.param(h), 1);
    if (graph_.edges.empty()) return neg(field);
    Var<double> si = matmul(s, t.constant(pa_)), sj = matmul(s, t.constant(pb_));
    return neg(sum(si * sj * t.param(J), 1) + field);
  }
  /// E(x^{−i}) − E(x) = 2 s_i (h_i + Σ_j J_ij s_j) for every row and node of spins s [B, n], on the
  /// tape as [B, n]: the local fields by four small GEMMs with the edges' endpoint selectors,
  /// instead of n energies of flipped copies (what pseudo-likelihood and ratio matching need).
  Var<double> flip_gaps(Tape<double>& t, Var<double> s) {
    Var<double> h_row = reshape(t.param(h), {1, std::ptrdiff_t(nodes())});
    if (graph_.edges.empty()) return 2.0 * s * h_row;
    Var<double> j = t.param(J), pa = t.constant(pa_), pb = t.constant(pb_);
    // Σ_e J_e s_a(e) [b(e) = i] + Σ_e J_e s_b(e) [a(e) = i]
    Var<double> from_a = matmul(matmul(s, pa) * j, pb, false, true);
    Var<double> from_b = matmul(matmul(s, pb) * j, pa, false, true);
    return 2.0 * s * (from_a + from_b + h_row);
  }
  /// E(s) of one state.
  double energy(const double* s) const {
    double e = 0;
    for (std::size_t k = 0; k < graph_.edges.size(); ++k)
      e -= J.value(k) * s[graph_.edges[k].first] * s[graph_.edges[k].second];
    for (std::size_t i = 0; i < nodes(); ++i) e -= h.value(i) * s[i];
    return e;
  }
  /// The local field of node i: h_i + Σ_j J_ij s_j, so that p(s_i = +1 | rest) = σ(2 · field).
  double local_field(const double* s, std::size_t i) const {
    double f = h.value(i);
    for (const auto& [j, e] : nbrs_[i]) f += J.value(e) * s[j];
    return f;
  }

  Parameter<double> J;  ///< couplings, one per edge [m]
  Parameter<double> h;  ///< fields, one per node [n]

 private:
  IsingGraph graph_;
  std::vector<std::vector<std::pair<std::size_t, std::size_t>>> nbrs_;
  Array<double> pa_, pb_;
};

/// Exact quantities of an Ising model.
struct IsingExact {
  double log_z = 0;                   ///< log Z
  std::vector<double> magnetisation;  ///< E[s_i] per node
  std::vector<double> correlation;    ///< E[s_i s_j] per edge, in the graph's edge order
};

namespace ising_detail {
inline double log_add(double a, double b) {
  if (a == -std::numeric_limits<double>::infinity()) return b;
  const double m = std::max(a, b);
  return m + std::log(std::exp(a - m) + std::exp(b - m));
}
inline double spin(std::size_t state, std::size_t bit) {
  return ((state >> bit) & 1u) ? 1.0 : -1.0;
}
}  // namespace ising_detail

/// Exact log Z, magnetisations and edge correlations by enumerating the 2^n states (n ≤ 24).
inline IsingExact ising_exact(const Ising& m) {
  const std::size_t n = m.nodes(), ne = m.graph().edges.size();
  if (n > 24)
    throw std::invalid_argument(
        fmt::format("ising_exact: 2^{} states is too many to enumerate (the transfer matrix "
                    "takes lattices)",
                    n));
  std::vector<double> s(n), lp(std::size_t(1) << n);
  double lz = -std::numeric_limits<double>::infinity();
  for (std::size_t x = 0; x < lp.size(); ++x) {
    for (std::size_t i = 0; i < n; ++i) s[i] = ising_detail::spin(x, i);
    lp[x] = -m.energy(s.data());
    lz = ising_detail::log_add(lz, lp[x]);
  }
  IsingExact r{lz, std::vector<double>(n, 0.0), std::vector<double>(ne, 0.0)};
  for (std::size_t x = 0; x < lp.size(); ++x) {
    const double p = std::exp(lp[x] - lz);
    for (std::size_t i = 0; i < n; ++i) r.magnetisation[i] += p * ising_detail::spin(x, i);
    for (std::size_t e = 0; e < ne; ++e)
      r.correlation[e] += p * ising_detail::spin(x, m.graph().edges[e].first) *
                          ising_detail::spin(x, m.graph().edges[e].second);
  }
  return r;
}

/// Exact log Z, magnetisations and edge correlations of a model on an R × C lattice
/// (ising_lattice) by the transfer matrix along the columns: the 2^R states of a column, the
/// forward and backward sums over the columns (rescaled at every column, in linear space), and,
/// on a periodic lattice, one pass per state of the first column. Cost O(C · 4^R) open, O(C · 8^R)
/// periodic; R ≤ 12 open, R ≤ 8 periodic. Any couplings and fields: they are read per edge.
inline IsingExact ising_transfer_matrix(const Ising& m) {
  const IsingGraph& g = m.graph();
  const std::size_t R = g.rows, C = g.cols;
  if (R == 0 || C == 0 || g.nodes != R * C)
    throw std::invalid_argument("ising_transfer_matrix: the model is not on a lattice");
  if (R > (g.periodic ? 8u : 12u))
    throw std::invalid_argument(fmt::format(
        "ising_transfer_matrix: {} rows is too wide ({} column states per step)", R, 1u << R));
  const std::size_t S = std::size_t(1) << R;
  // couplings by node pair
  std::map<std::pair<std::size_t, std::size_t>, std::size_t> edge_of;
  for (std::size_t e = 0; e < g.edges.size(); ++e) edge_of[g.edges[e]] = e;
  auto coupling = [&](std::size_t a, std::size_t b) -> double {
    auto it = edge_of.find({std::min(a, b), std::max(a, b)});
    return it == edge_of.end() ? 0.0 : m.J.value(it->second);
  };
  auto node = [&](std::size_t r, std::size_t c) { return r * C + c; };
  using ising_detail::spin;
  // within column c: log φ_c(x) = Σ vertical J s s + Σ h s
  std::vector<std::vector<double>> phi(C, std::vector<double>(S));
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t x = 0; x < S; ++x) {
      double l = 0;
      for (std::size_t r = 0; r < R; ++r) {
        l += m.h.value(node(r, c)) * spin(x, r);
        if (r + 1 < R) l += coupling(node(r, c), node(r + 1, c)) * spin(x, r) * spin(x, r + 1);
      }
      if (g.periodic) l += coupling(node(R - 1, c), node(0, c)) * spin(x, R - 1) * spin(x, 0);
      phi[c][x] = l;
    }
  // between column c and the next (c + 1, or 0 after the last on a periodic lattice):
  // ψ_c(x, y) = Σ_r J s_r(x) s_r(y), as the matrix exp(ψ_c) [S, S]
  const std::size_t links = g.periodic ? C : C - 1;
  std::vector<std::vector<double>> T(links, std::vector<double>(S * S));
  for (std::size_t c = 0; c < links; ++c) {
    const std::size_t c2 = (c + 1) % C;
    std::vector<double> jr(R);
    for (std::size_t r = 0; r < R; ++r) jr[r] = coupling(node(r, c), node(r, c2));
    for (std::size_t x = 0; x < S; ++x)
      for (std::size_t y = 0; y < S; ++y) {
        double l = 0;
        for (std::size_t r = 0; r < R; ++r) l += jr[r] * spin(x, r) * spin(y, r);
        T[c][x * S + y] = std::exp(l);
      }
  }
  // column potentials in linear space with their maxima taken out (log scale kept aside)
  std::vector<std::vector<double>> Phi(C, std::vector<double>(S));
  double log_shift = 0;
  for (std::size_t c = 0; c < C; ++c) {
    double mx = -std::numeric_limits<double>::infinity();
    for (double l : phi[c]) mx = std::max(mx, l);
    for (std::size_t x = 0; x < S; ++x) Phi[c][x] = std::exp(phi[c][x] - mx);
    log_shift += mx;
  }
  IsingExact res{0, std::vector<double>(g.nodes, 0.0), std::vector<double>(g.edges.size(), 0.0)};
  // sums weighted by each pass's mass (over first-column states when periodic)
  std::vector<double> mag(g.nodes, 0.0), cor(g.edges.size(), 0.0);
  double total = 0, log_base = -std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> alpha(C, std::vector<double>(S)),
      beta(C, std::vector<double>(S));
  std::vector<double> la(C, 0.0), lb(C, 0.0);  // log of each column's rescaling
  const std::size_t passes = g.periodic ? S : 1;
  for (std::size_t a = 0; a < passes; ++a) {
    poll_interrupt();
    // forward: alpha_c(x) ∝ Σ over columns < c, column c = x (its φ included)
    for (std::size_t x = 0; x < S; ++x) alpha[0][x] = (!g.periodic || x == a) ? Phi[0][x] : 0.0;
    for (std::size_t c = 0; c < C; ++c) {
      if (c > 0)
        for (std::size_t y = 0; y < S; ++y) {
          double s = 0;
          for (std::size_t x = 0; x < S; ++x) s += alpha[c - 1][x] * T[c - 1][x * S + y];
          alpha[c][y] = s * Phi[c][y];
        }
      double norm = 0;
      for (double v : alpha[c]) norm += v;
      for (double& v : alpha[c]) v /= norm;
      la[c] = std::log(norm) + (c > 0 ? la[c - 1] : 0.0);
    }
    // backward: beta_c(x) ∝ Σ over columns > c given column c = x (closing the ring at a)
    for (std::size_t x = 0; x < S; ++x) beta[C - 1][x] = g.periodic ? T[C - 1][x * S + a] : 1.0;
    for (std::size_t c = C; c-- > 0;) {  // each column rescaled before the next is summed
      double norm = 0;
      for (double v : beta[c]) norm += v;
      for (double& v : beta[c]) v /= norm;
      lb[c] = std::log(norm);
      if (c > 0)
        for (std::size_t x = 0; x < S; ++x) {
          double s = 0;
          for (std::size_t y = 0; y < S; ++y) s += T[c - 1][x * S + y] * Phi[c][y] * beta[c][y];
          beta[c - 1][x] = s;
        }
    }
    // this pass's mass: Σ_x alpha_{C−1}(x) beta_{C−1}(x), with the scales
    double end = 0;
    for (std::size_t x = 0; x < S; ++x) end += alpha[C - 1][x] * beta[C - 1][x];
    const double log_mass = std::log(end) + la[C - 1] + lb[C - 1];
    // marginals of this pass: columns, then links
    std::vector<double> pm(g.nodes, 0.0), pc(g.edges.size(), 0.0);
    for (std::size_t c = 0; c < C; ++c) {
      double zc = 0;
      for (std::size_t x = 0; x < S; ++x) zc += alpha[c][x] * beta[c][x];
      for (std::size_t x = 0; x < S; ++x) {
        const double p = alpha[c][x] * beta[c][x] / zc;
        for (std::size_t r = 0; r < R; ++r) pm[node(r, c)] += p * spin(x, r);
        for (std::size_t r = 0; r < R; ++r) {
          const std::size_t r2 = r + 1 < R ? r + 1 : (g.periodic ? 0 : R);
          if (r2 == R) continue;
          auto it =
              edge_of.find({std::min(node(r, c), node(r2, c)), std::max(node(r, c), node(r2, c))});
          if (it != edge_of.end()) pc[it->second] += p * spin(x, r) * spin(x, r2);
        }
      }
    }
    for (std::size_t c = 0; c < links; ++c) {
      const std::size_t c2 = (c + 1) % C;
      // p(x_c, x_c2) ∝ alpha_c(x) T(x, y) [Phi_c2(y) beta_c2(y), or at the ring's closing link
      // (c2 = 0): the first column pinned to a]
      double z = 0;
      std::vector<double> w(S * S);
      for (std::size_t x = 0; x < S; ++x)
        for (std::size_t y = 0; y < S; ++y) {
          const double right = c2 == 0 ? (y == a ? 1.0 : 0.0) : Phi[c2][y] * beta[c2][y];
          w[x * S + y] = alpha[c][x] * T[c][x * S + y] * right;
          z += w[x * S + y];
        }
      for (std::size_t r = 0; r < R; ++r) {
        auto it =
            edge_of.find({std::min(node(r, c), node(r, c2)), std::max(node(r, c), node(r, c2))});
        if (it == edge_of.end()) continue;
        double e = 0;
        for (std::size_t x = 0; x < S; ++x)
          for (std::size_t y = 0; y < S; ++y) e += w[x * S + y] * spin(x, r) * spin(y, r);
        pc[it->second] += e / z;
      }
    }
    // combine the passes with weights ∝ their masses
    const double new_base = std::max(log_base, log_mass);
    const double scale_old = std::exp(log_base - new_base), w_new = std::exp(log_mass - new_base);
    total = total * scale_old + w_new;
    for (std::size_t i = 0; i < g.nodes; ++i) mag[i] = mag[i] * scale_old + w_new * pm[i];
    for (std::size_t e = 0; e < g.edges.size(); ++e) cor[e] = cor[e] * scale_old + w_new * pc[e];
    log_base = new_base;
  }
  res.log_z = log_base + std::log(total) + log_shift;
  for (std::size_t i = 0; i < g.nodes; ++i) res.magnetisation[i] = mag[i] / total;
  for (std::size_t e = 0; e < g.edges.size(); ++e) res.correlation[e] = cor[e] / total;
  return res;
}

/// n exact draws of an Ising model with at most 20 nodes, rows of spins [n, nodes]: its 2^nodes
/// probabilities enumerated once, then each draw by inverting the cumulative distribution.
inline Array<double> ising_exact_samples(const Ising& m, std::size_t n, Rng& rng) {
  const std::size_t d = m.nodes();
  if (d > 20)
    throw std::invalid_argument(
        fmt::format("ising_exact_samples: 2^{} states is too many to enumerate", d));
  const double lz = ising_exact(m).log_z;
  std::vector<double> cdf(std::size_t(1) << d), s(d);
  double acc = 0;
  for (std::size_t x = 0; x < cdf.size(); ++x) {
    for (std::size_t i = 0; i < d; ++i) s[i] = ising_detail::spin(x, i);
    acc += std::exp(-m.energy(s.data()) - lz);
    cdf[x] = acc;
  }
  Array<double> out(Shape{n, d});
  for (std::size_t r = 0; r < n; ++r) {
    const double u = rng.uniform() * acc;
    std::size_t x = std::size_t(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    x = std::min(x, cdf.size() - 1);
    for (std::size_t i = 0; i < d; ++i) out(r, i) = ising_detail::spin(x, i);
  }
  return out;
}

/// Onsager's free energy of the infinite square-lattice Ising model without field, coupling
/// K = βJ, per site: log Z / N → ln 2 + (1/8π²) ∫∫ ln[cosh²(2K) − sinh(2K)(cos θ₁ + cos θ₂)]
/// dθ₁ dθ₂ over [0, 2π]², by the midpoint rule on `grid`² points (the integrand is smooth and
/// periodic away from the critical point, so the rule converges exponentially).
inline double onsager_log_z_per_site(double K, std::size_t grid = 400) {
  const double c = std::cosh(2 * K), sh = std::sinh(2 * K);
  double s = 0;
  const double step = 2 * std::numbers::pi / double(grid);
  for (std::size_t a = 0; a < grid; ++a)
    for (std::size_t b = 0; b < grid; ++b) {
      const double t1 = (double(a) + 0.5) * step, t2 = (double(b) + 0.5) * step;
      s += std::log(c * c - sh * (std::cos(t1) + std::cos(t2)));
    }
  return std::log(2.0) + 0.5 * s / double(grid * grid);
}

}  // namespace ebl
