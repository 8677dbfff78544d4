// Samplers of the Ising model (ebm/ising.hpp) that read its structure: each row of a
// [chains, n] array of spins is one chain.
//
//   ising_gibbs           single-site Gibbs, random or systematic scan: s_i ← +1 with probability
//                         σ(2 (h_i + Σ_j J_ij s_j)) (its local field)
//   ising_checkerboard    two-colour block Gibbs: on a bipartite graph (an even periodic lattice,
//                         any open lattice) the nodes of one colour are independent given the
//                         other's, so a sweep is two exact block updates
//   swendsen_wang         Swendsen & Wang (1987), for ferromagnetic couplings J ≥ 0: bonds between
//                         equal neighbours with probability 1 − e^{−2J}, then every cluster set to
//                         +1 with probability σ(2 Σ_{i∈C} h_i) — whole domains flip at once, which
//                         single-site Gibbs cannot do near the critical point
//
// The samplers for any energy (binary_gibbs, gibbs_with_gradients) are in samplers/discrete.hpp.
#pragma once

#include <cmath>
#include <numeric>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "autodiff/interrupt.hpp"
#include "autodiff/random.hpp"
#include "ebm/ising.hpp"
#include "samplers/discrete.hpp"

namespace ebl {

namespace discrete_detail {
inline void check_states(const Array<double>& s, std::size_t n, const char* who) {
  if (s.dimension() != 2 || s.shape()[1] != n || s.shape()[0] == 0)
    throw std::invalid_argument(
        fmt::format("{}: states [chains, {}] needed, got {}", who, n, shape_str(s.shape())));
}
}  // namespace discrete_detail

/// `sweeps` sweeps of single-site Gibbs (n updates each) on every chain of spins s [chains, n].
inline void ising_gibbs(const Ising& m, Array<double>& s, int sweeps, Scan scan, Rng& rng) {
  const std::size_t n = m.nodes();
  discrete_detail::check_states(s, n, "ising_gibbs");
  for (int sw = 0; sw < sweeps; ++sw) {
    poll_interrupt();
    for (std::size_t r = 0; r < s.shape()[0]; ++r) {
      double* x = s.data() + r * n;
      for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = scan == Scan::Random ? rng.below(n) : k;
        x[i] = rng.uniform() < discrete_detail::sigmoid(2 * m.local_field(x, i)) ? 1.0 : -1.0;
      }
    }
  }
}

/// The two colours of a bipartite graph (0 or 1 per node), found by breadth-first search; throws
/// if the graph has an odd cycle (a periodic lattice with an odd side, say).
inline std::vector<int> two_colouring(const Ising& m) {
  const std::size_t n = m.nodes();
  std::vector<int> colour(n, -1);
  std::vector<std::size_t> queue;
  for (std::size_t start = 0; start < n; ++start) {
    if (colour[start] >= 0) continue;
    colour[start] = 0;
    queue.assign(1, start);
    for (std::size_t q = 0; q < queue.size(); ++q)
      for (const auto& [j, e] : m.neighbours()[queue[q]]) {
        if (colour[j] < 0) {
          colour[j] = 1 - colour[queue[q]];
          queue.push_back(j);
        } else if (colour[j] == colour[queue[q]]) {
          throw std::invalid_argument(
              fmt::format("two_colouring: the graph is not bipartite (edge {}–{})", queue[q], j));
        }
      }
  }
  return colour;
}

/// `sweeps` sweeps of checkerboard block Gibbs: every node of colour 0 drawn given the rest,
/// then every node of colour 1 (two_colouring; throws on a graph that is not bipartite).
inline void ising_checkerboard(const Ising& m, Array<double>& s, int sweeps, Rng& rng) {
  const std::size_t n = m.nodes();
  discrete_detail::check_states(s, n, "ising_checkerboard");
  const std::vector<int> colour = two_colouring(m);
  std::vector<std::size_t> blocks[2];
  for (std::size_t i = 0; i < n; ++i) blocks[colour[i]].push_back(i);
  std::vector<double> p(n);
  for (int sw = 0; sw < sweeps; ++sw) {
    poll_interrupt();
    for (std::size_t r = 0; r < s.shape()[0]; ++r) {
      double* x = s.data() + r * n;
      for (const auto& block : blocks) {
        // the block's conditionals all read the other colour only: computed first, then drawn
        for (std::size_t i : block) p[i] = discrete_detail::sigmoid(2 * m.local_field(x, i));
        for (std::size_t i : block) x[i] = rng.uniform() < p[i] ? 1.0 : -1.0;
      }
    }
  }
}

/// `sweeps` Swendsen–Wang updates of every chain (couplings must be ≥ 0; fields allowed).
inline void swendsen_wang(const Ising& m, Array<double>& s, int sweeps, Rng& rng) {
  const std::size_t n = m.nodes();
  discrete_detail::check_states(s, n, "swendsen_wang");
  for (double j : m.J.value)
    if (!(j >= 0))
      throw std::invalid_argument("swendsen_wang: needs ferromagnetic couplings (every J >= 0)");
  const auto& edges = m.graph().edges;
  std::vector<double> bond_p(edges.size());
  for (std::size_t e = 0; e < edges.size(); ++e) bond_p[e] = -std::expm1(-2 * m.J.value(e));
  std::vector<std::size_t> parent(n);
  std::vector<double> cluster_field(n);
  std::vector<double> cluster_spin(n);
  auto find = [&](std::size_t a) {
    while (parent[a] != a) a = parent[a] = parent[parent[a]];
    return a;
  };
  for (int sw = 0; sw < sweeps; ++sw) {
    poll_interrupt();
    for (std::size_t r = 0; r < s.shape()[0]; ++r) {
      double* x = s.data() + r * n;
      std::iota(parent.begin(), parent.end(), std::size_t(0));
      for (std::size_t e = 0; e < edges.size(); ++e) {
        const auto [i, j] = edges[e];
        if (x[i] == x[j] && rng.uniform() < bond_p[e]) parent[find(i)] = find(j);
      }
      std::fill(cluster_field.begin(), cluster_field.end(), 0.0);
      for (std::size_t i = 0; i < n; ++i) cluster_field[find(i)] += m.h.value(i);
      for (std::size_t i = 0; i < n; ++i)  // each root draws its cluster's spin once
        if (find(i) == i)
          cluster_spin[i] =
              rng.uniform() < discrete_detail::sigmoid(2 * cluster_field[i]) ? 1.0 : -1.0;
      for (std::size_t i = 0; i < n; ++i) x[i] = cluster_spin[find(i)];
    }
  }
}

}  // namespace ebl
