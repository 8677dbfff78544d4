// The Potts model: q-state spins σ_i ∈ {0, …, q−1} on the nodes of a graph, written one-hot
// (x_{i,a} = [σ_i = a], rows [batch, n·q] with node i's block at columns i·q … i·q + q − 1):
//
//   E(σ) = − Σ_{e = (i, j)} J_e [σ_i = σ_j] − Σ_i h_{i, σ_i}
//        = − Σ_e J_e Σ_a x_{i,a} x_{j,a} − Σ_{i,a} h_{i,a} x_{i,a}
//
// q = 2 is the Ising model with couplings J/2 (up to a constant). As an Energy on the tape it is
// differentiable in J, h and x; exact log Z and marginals come from enumerating the q^n states,
// and potts_gibbs draws single sites from their exact conditionals
//   p(σ_i = a | rest) ∝ exp(h_{i,a} + Σ_{j ~ i} J_ij [σ_j = a]).
#pragma once

#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "autodiff/interrupt.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/random.hpp"
#include "ebm/energy.hpp"
#include "ebm/ising.hpp"

namespace ebl {

/// A q-state Potts model on a graph (see the top of this file). As an Energy: one-hot rows → E.
class Potts : public Energy<double> {
 public:
  /// q ≥ 2 states on the graph's nodes; every coupling = coupling, every field 0.
  Potts(IsingGraph graph, std::size_t states, double coupling = 0)
      : J("J", Array<double>(Shape{graph.edges.size()}, coupling)),
        h("h", Array<double>(Shape{graph.nodes, states}, 0.0)),
        graph_(std::move(graph)),
        q_(states),
        nbrs_(graph_.nodes) {
    if (states < 2) throw std::invalid_argument("Potts: needs at least 2 states");
    if (graph_.nodes == 0) throw std::invalid_argument("Potts: the graph has no nodes");
    const std::size_t n = graph_.nodes, m = graph_.edges.size();
    for (std::size_t e = 0; e < m; ++e) {
      const auto [i, j] = graph_.edges[e];
      if (i >= j || j >= n)
        throw std::invalid_argument(
            fmt::format("Potts: edge ({}, {}) is not a pair i < j of the {} nodes", i, j, n));
      nbrs_[i].push_back({j, e});
      nbrs_[j].push_back({i, e});
    }
    // selectors of the edges' endpoint blocks: (X A)[:, e·q + a] = x_{i(e), a}, (X B) likewise
    const std::size_t mm = std::max<std::size_t>(m, 1);
    sel_a_ = Array<double>(Shape{n * q_, mm * q_}, 0.0);
    sel_b_ = sel_a_;
    for (std::size_t e = 0; e < m; ++e)
      for (std::size_t a = 0; a < q_; ++a) {
        sel_a_(graph_.edges[e].first * q_ + a, e * q_ + a) = 1;
        sel_b_(graph_.edges[e].second * q_ + a, e * q_ + a) = 1;
      }
  }
  /// n.
  std::size_t nodes() const { return graph_.nodes; }
  /// q.
  std::size_t states() const { return q_; }
  /// The graph.
  const IsingGraph& graph() const { return graph_; }
  /// J and h.
  std::vector<Parameter<double>*> parameters() override { return {&J, &h}; }

  /// E of one-hot rows x [batch, n·q].
  Var<double> operator()(Tape<double>& t, Var<double> x) override {
    const std::size_t n = nodes(), m = graph_.edges.size();
    if (x.value().dimension() != 2 || x.value().shape()[1] != n * q_)
      throw std::invalid_argument(fmt::format("Potts: one-hot rows [batch, {}] needed, got {}",
                                              n * q_, shape_str(x.value().shape())));
    const std::ptrdiff_t B = std::ptrdiff_t(x.value().shape()[0]);
    Var<double> field = sum(x * reshape(t.param(h), {1, std::ptrdiff_t(n * q_)}), 1);
    if (m == 0) return neg(field);
    // agreement of each edge's endpoints: Σ_a x_{i,a} x_{j,a}, as [B, m]
    Var<double> agree = sum(reshape(matmul(x, t.constant(sel_a_)) * matmul(x, t.constant(sel_b_)),
                                    {B, std::ptrdiff_t(m), std::ptrdiff_t(q_)}),
                            2);
    return neg(sum(agree * t.param(J), 1) + field);
  }
  /// E of one configuration σ (states 0 … q−1 per node).
  double energy(const std::size_t* sigma) const {
    double e = 0;
    for (std::size_t k = 0; k < graph_.edges.size(); ++k)
      if (sigma[graph_.edges[k].first] == sigma[graph_.edges[k].second]) e -= J.value(k);
    for (std::size_t i = 0; i < nodes(); ++i) e -= h.value(i, sigma[i]);
    return e;
  }
  /// For each node, its (neighbour, edge index) pairs.
  const std::vector<std::vector<std::pair<std::size_t, std::size_t>>>& neighbours() const {
    return nbrs_;
  }

  Parameter<double> J;  ///< couplings, one per edge [m]
  Parameter<double> h;  ///< fields [n, q]

 private:
  IsingGraph graph_;
  std::size_t q_;
  std::vector<std::vector<std::pair<std::size_t, std::size_t>>> nbrs_;
  Array<double> sel_a_, sel_b_;
};

/// One-hot rows [batch, n·q] of configurations [batch, n] (states as doubles 0 … q−1).
inline Array<double> potts_one_hot(const Array<double>& sigma, std::size_t q) {
  const std::size_t B = sigma.shape()[0], n = sigma.shape()[1];
  Array<double> x(Shape{B, n * q}, 0.0);
  for (std::size_t r = 0; r < B; ++r)
    for (std::size_t i = 0; i < n; ++i) {
      const double s = sigma(r, i);
      if (!(s >= 0 && s < double(q) && s == std::floor(s)))
        throw std::invalid_argument(fmt::format("potts_one_hot: state {} not in 0..{}", s, q - 1));
      x(r, i * q + std::size_t(s)) = 1;
    }
  return x;
}

/// Exact quantities of a Potts model.
struct PottsExact {
  double log_z = 0;               ///< log Z
  Array<double> marginals;        ///< p(σ_i = a) [n, q]
  std::vector<double> agreement;  ///< p(σ_i = σ_j) per edge
};

/// Exact log Z, marginals and edge agreements by enumerating the q^n configurations (≤ 2^24).
inline PottsExact potts_exact(const Potts& m) {
  const std::size_t n = m.nodes(), q = m.states(), ne = m.graph().edges.size();
  double states = 1;
  for (std::size_t i = 0; i < n; ++i) states *= double(q);
  if (states > double(1 << 24))
    throw std::invalid_argument(
        fmt::format("potts_exact: {}^{} configurations is too many to enumerate", q, n));
  const std::size_t S = std::size_t(states);
  std::vector<double> lp(S);
  std::vector<std::size_t> sigma(n);
  auto decode = [&](std::size_t x) {
    for (std::size_t i = 0; i < n; ++i) sigma[i] = x % q, x /= q;
  };
  double mx = -std::numeric_limits<double>::infinity();
  for (std::size_t x = 0; x < S; ++x) {
    decode(x);
    lp[x] = -m.energy(sigma.data());
    mx = std::max(mx, lp[x]);
  }
  double z = 0;
  for (double l : lp) z += std::exp(l - mx);
  PottsExact r{mx + std::log(z), Array<double>(Shape{n, q}, 0.0), std::vector<double>(ne, 0.0)};
  for (std::size_t x = 0; x < S; ++x) {
    decode(x);
    const double p = std::exp(lp[x] - r.log_z);
    for (std::size_t i = 0; i < n; ++i) r.marginals(i, sigma[i]) += p;
    for (std::size_t e = 0; e < ne; ++e)
      if (sigma[m.graph().edges[e].first] == sigma[m.graph().edges[e].second]) r.agreement[e] += p;
  }
  return r;
}

/// `sweeps` systematic sweeps of single-site Gibbs on configurations sigma [chains, n] (states
/// as doubles 0 … q−1), each site drawn from its exact conditional.
inline void potts_gibbs(const Potts& m, Array<double>& sigma, int sweeps, Rng& rng) {
  const std::size_t n = m.nodes(), q = m.states();
  if (sigma.dimension() != 2 || sigma.shape()[1] != n || sigma.shape()[0] == 0)
    throw std::invalid_argument(fmt::format(
        "potts_gibbs: configurations [chains, {}] needed, got {}", n, shape_str(sigma.shape())));
  std::vector<double> logit(q);
  for (int s = 0; s < sweeps; ++s) {
    poll_interrupt();
    for (std::size_t r = 0; r < sigma.shape()[0]; ++r) {
      double* x = sigma.data() + r * n;
      for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t a = 0; a < q; ++a) logit[a] = m.h.value(i, a);
        for (const auto& [j, e] : m.neighbours()[i]) logit[std::size_t(x[j])] += m.J.value(e);
        double mx = logit[0], z = 0;
        for (double l : logit) mx = std::max(mx, l);
        for (double& l : logit) z += (l = std::exp(l - mx));
        double u = rng.uniform() * z;
        std::size_t a = 0;
        for (; a + 1 < q; ++a) {
          u -= logit[a];
          if (u < 0) break;
        }
        x[i] = double(a);
      }
    }
  }
}

}  // namespace ebl
