// Metrics of generated graphs and molecules, as the graph-generation literature computes them
// (GraphRNN, You et al. 2018; GDSS, Jo et al. 2022, evaluation/stats.py and mmd.py), so that
// numbers can be placed next to published tables.
//
// Per graph, given as adjacency lists (datasets/graphs.hpp's adjacency_lists makes them):
//   degree histogram        h[d] = number of nodes of degree d
//   clustering histogram    100 bins on [0, 1] of the local clustering coefficients, binned as
//                           np.histogram bins them
//                           c_v = (edges among v's neighbours) / C(deg v, 2)  (0 when deg v < 2)
//   orbit counts            for every node, how many times it occupies each of the 15 orbits of
//                           the connected graphlets of 2 to 4 nodes (induced subgraphs; Pržulj
//                           2007, numbered as ORCA, Hočevar & Demšar 2014, numbers them):
//                             0 edge | 1,2 path of 3 (end, middle) | 3 triangle
//                             4,5 path of 4 (end, middle) | 6,7 star (leaf, centre) | 8 cycle of 4
//                             9,10,11 paw (tail end, triangle node of degree 2, node of degree 3)
//                             12,13 diamond (degree 2, degree 3) | 14 K4
//                           and the graph's feature is their sum over nodes / number of nodes.
//                           Counted by enumerating node subsets (graphs here have ≤ 40 nodes).
// Between two sets of graphs, MMD² = mean k(x, x') + mean k(y, y') − 2 mean k(x, y) over all
// pairs (the diagonal included: the V-statistic the published tables use), with
//   degree:      histograms normalised to sum 1, k = exp(−EMD² / 2σ²), σ = 1, ground distance |i − j|
//   clustering:  the same with σ = 0.1 and ground distance |i − j| / 100 (bins)
//   orbits:      k = exp(−‖x − y‖² / 2σ²), σ = 30, on the 15-vectors
// For 1-D histograms of equal mass the earth mover's distance is Σ_k |F_x(k) − F_y(k)| (cumulative
// sums) times the bin width; shorter histograms are padded with zeros.
//
// wasserstein1(a, b): the distance between two empirical distributions on the line,
// ∫ |F_a(t) − F_b(t)| dt (exact, by merging the sorted samples).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "metrics/bins.hpp"

namespace ebl {

using AdjacencyLists = std::vector<std::vector<int>>;

/// Throws std::invalid_argument unless every neighbour index lies in [0, nodes) and no node lists
/// itself: the graph functions below index with them (a bad list read out of bounds before).
inline void check_adjacency(const AdjacencyLists& g) {
  const auto n = long(g.size());
  for (long v = 0; v < n; ++v)
    for (int u : g[std::size_t(v)])
      if (u < 0 || u >= n || u == v)
        throw std::invalid_argument(fmt::format(
            "graph: node {} lists neighbour {} (nodes are 0 to {}, no self-loops)", v, u, n - 1));
}

inline std::vector<double> degree_histogram(const AdjacencyLists& g) {
  check_adjacency(g);
  std::vector<double> h;
  for (const auto& nb : g) {
    if (nb.size() >= h.size()) h.resize(nb.size() + 1, 0.0);
    h[nb.size()] += 1;
  }
  return h;
}

/// Number of connected components (an isolated node is one; no node: 0).
inline std::size_t connected_components(const AdjacencyLists& g) {
  check_adjacency(g);
  std::vector<char> seen(g.size(), 0);
  std::vector<int> stack;
  std::size_t count = 0;
  for (std::size_t s = 0; s < g.size(); ++s) {
    if (seen[s]) continue;
    ++count;
    seen[s] = 1;
    stack.assign(1, int(s));
    while (!stack.empty()) {
      const int v = stack.back();
      stack.pop_back();
      for (int u : g[std::size_t(v)])
        if (!seen[std::size_t(u)]) seen[std::size_t(u)] = 1, stack.push_back(u);
    }
  }
  return count;
}

namespace graph_detail {
inline std::vector<std::vector<char>> matrix(const AdjacencyLists& g) {
  std::vector<std::vector<char>> m(g.size(), std::vector<char>(g.size(), 0));
  for (std::size_t i = 0; i < g.size(); ++i)
    for (int j : g[i]) m[i][std::size_t(j)] = 1;
  return m;
}
}  // namespace graph_detail

inline std::vector<double> clustering_coefficients(const AdjacencyLists& g) {
  check_adjacency(g);
  const auto m = graph_detail::matrix(g);
  std::vector<double> c(g.size(), 0.0);
  for (std::size_t v = 0; v < g.size(); ++v) {
    const auto& nb = g[v];
    if (nb.size() < 2) continue;
    double links = 0;
    for (std::size_t a = 0; a < nb.size(); ++a)
      for (std::size_t b = a + 1; b < nb.size(); ++b)
        links += m[std::size_t(nb[a])][std::size_t(nb[b])];
    c[v] = links / (0.5 * double(nb.size()) * double(nb.size() - 1));
  }
  return c;
}

/// The bin of c ∈ [0, 1] among `bins` equal bins, exactly as np.histogram(c, bins, range=(0, 1))
/// places it (GraphRNN's and GDSS's clustering statistic). NOTE: ⌊c · bins⌋ is not that: c = 0.7
/// gives 70, but numpy's edge 70 is 70 · 0.01 = 0.7000000000000001 > 0.7, so it is bin 69.
inline std::size_t histogram_bin(double c, std::size_t bins) {
  return equal_width_bin(c, bins, [bins](std::size_t k) { return linspace_edge(k, bins); });
}

/// Histogram of the clustering coefficients in `bins` equal bins of [0, 1], binned as
/// np.histogram bins them (histogram_bin).
inline std::vector<double> clustering_histogram(const AdjacencyLists& g, std::size_t bins = 100) {
  std::vector<double> h(bins, 0.0);
  for (double c : clustering_coefficients(g)) h[histogram_bin(c, bins)] += 1;
  return h;
}

/// Per node, its counts in the 15 orbits (see the file's comment).
inline std::vector<std::array<double, 15>> orbit_counts(const AdjacencyLists& g) {
  check_adjacency(g);
  const std::size_t n = g.size();
  const auto m = graph_detail::matrix(g);
  std::vector<std::array<double, 15>> o(n);
  for (auto& r : o) r.fill(0);
  for (std::size_t v = 0; v < n; ++v) o[v][0] = double(g[v].size());
  auto adj = [&](std::size_t a, std::size_t b) { return m[a][b] != 0; };
  for (std::size_t a = 0; a < n; ++a)
    for (std::size_t b = a + 1; b < n; ++b)
      for (std::size_t c = b + 1; c < n; ++c) {
        const int e = adj(a, b) + adj(a, c) + adj(b, c);
        if (e == 3) {
          o[a][3] += 1, o[b][3] += 1, o[c][3] += 1;
        } else if (e == 2) {  // a path: the middle is the node on both edges
          const std::size_t mid = !adj(b, c) ? a : !adj(a, c) ? b : c;
          for (std::size_t v : {a, b, c}) o[v][v == mid ? 2 : 1] += 1;
        }
        for (std::size_t d = c + 1; d < n; ++d) {
          const std::size_t s[4] = {a, b, c, d};
          int deg[4] = {0, 0, 0, 0}, edges = 0;
          for (int i = 0; i < 4; ++i)
            for (int j = i + 1; j < 4; ++j)
              if (adj(s[i], s[j])) ++deg[i], ++deg[j], ++edges;
          const int max_deg = *std::max_element(deg, deg + 4),
                    min_deg = *std::min_element(deg, deg + 4);
          if (edges < 3 || min_deg == 0) continue;  // not connected
          for (int i = 0; i < 4; ++i) {
            int orbit = 14;
            if (edges == 3)
              orbit = max_deg == 3 ? (deg[i] == 3 ? 7 : 6) : (deg[i] == 1 ? 4 : 5);
            else if (edges == 4)
              orbit = max_deg == 2 ? 8 : (deg[i] == 1 ? 9 : deg[i] == 2 ? 10 : 11);
            else if (edges == 5)
              orbit = deg[i] == 2 ? 12 : 13;
            o[s[i]][std::size_t(orbit)] += 1;
          }
        }
      }
  return o;
}

/// The graph's orbit feature: the orbit counts summed over nodes, divided by the number of nodes.
inline std::vector<double> orbit_feature(const AdjacencyLists& g) {
  std::vector<double> f(15, 0.0);
  if (g.empty()) return f;
  for (const auto& r : orbit_counts(g))
    for (std::size_t k = 0; k < 15; ++k) f[k] += r[k];
  for (double& v : f) v /= double(g.size());
  return f;
}

/// EMD between two histograms (each normalised to sum 1), ground distance |i − j| · bin_width.
inline double emd_1d(const std::vector<double>& x, const std::vector<double>& y, double bin_width) {
  const std::size_t n = std::max(x.size(), y.size());
  double sx = 0, sy = 0;
  for (double v : x) sx += v;
  for (double v : y) sy += v;
  double fx = 0, fy = 0, d = 0;
  for (std::size_t k = 0; k + 1 < n; ++k) {
    fx += k < x.size() ? x[k] / sx : 0;
    fy += k < y.size() ? y[k] / sy : 0;
    d += std::abs(fx - fy);
  }
  return d * bin_width;
}

enum class GraphKernel { GaussianEmd, Gaussian };

/// MMD² (V-statistic) between two sets of feature vectors; for GaussianEmd the vectors are
/// histograms (normalised inside), with the given bin width; for Gaussian, plain vectors (padded).
inline double graph_mmd2(const std::vector<std::vector<double>>& xs,
                         const std::vector<std::vector<double>>& ys, GraphKernel kernel,
                         double sigma, double bin_width = 1) {
  if (xs.empty() || ys.empty()) throw std::invalid_argument("graph_mmd2: an empty set of graphs");
  auto k = [&](const std::vector<double>& a, const std::vector<double>& b) {
    double d2 = 0;
    if (kernel == GraphKernel::GaussianEmd) {
      const double e = emd_1d(a, b, bin_width);
      d2 = e * e;
    } else {
      for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
        const double u = i < a.size() ? a[i] : 0, v = i < b.size() ? b[i] : 0;
        d2 += (u - v) * (u - v);
      }
    }
    return std::exp(-d2 / (2 * sigma * sigma));
  };
  auto mean_k = [&](const auto& p, const auto& q) {
    double s = 0;
    for (const auto& a : p)
      for (const auto& b : q) s += k(a, b);
    return s / (double(p.size()) * double(q.size()));
  };
  return mean_k(xs, xs) + mean_k(ys, ys) - 2 * mean_k(xs, ys);
}

/// The three MMD²s of the literature between a reference set and a generated set.
struct GraphMmd {
  double degree = 0;      ///< degree histograms, Gaussian EMD kernel, σ = 1
  double clustering = 0;  ///< clustering histograms, Gaussian EMD kernel, σ = 0.1
  double orbit = 0;       ///< orbit counts, Gaussian kernel, σ = 30
};
inline GraphMmd graph_mmd(const std::vector<AdjacencyLists>& ref,
                          const std::vector<AdjacencyLists>& gen) {
  auto features = [](const std::vector<AdjacencyLists>& gs, auto f) {
    std::vector<std::vector<double>> out;
    for (const auto& g : gs) out.push_back(f(g));
    return out;
  };
  // graphs without nodes are left out of the generated set, as GDSS does, and of the reference
  // set too: their histograms are empty and would make every MMD² NaN
  std::vector<AdjacencyLists> gen_nonempty, ref_nonempty;
  for (const auto& g : gen)
    if (!g.empty()) gen_nonempty.push_back(g);
  for (const auto& g : ref)
    if (!g.empty()) ref_nonempty.push_back(g);
  if (gen_nonempty.empty())
    throw std::invalid_argument("graph_mmd: every generated graph is empty");
  if (ref_nonempty.empty())
    throw std::invalid_argument("graph_mmd: every reference graph is empty");
  GraphMmd r;
  r.degree = graph_mmd2(features(ref_nonempty, [](const auto& g) { return degree_histogram(g); }),
                        features(gen_nonempty, [](const auto& g) { return degree_histogram(g); }),
                        GraphKernel::GaussianEmd, 1.0, 1.0);
  r.clustering =
      graph_mmd2(features(ref_nonempty, [](const auto& g) { return clustering_histogram(g); }),
                 features(gen_nonempty, [](const auto& g) { return clustering_histogram(g); }),
                 GraphKernel::GaussianEmd, 0.1, 1.0 / 100);
  r.orbit = graph_mmd2(features(ref_nonempty, [](const auto& g) { return orbit_feature(g); }),
                       features(gen_nonempty, [](const auto& g) { return orbit_feature(g); }),
                       GraphKernel::Gaussian, 30.0);
  return r;
}

/// The graph without its isolated nodes (the others renumbered in order): GDSS and GraphRNN
/// score generated graphs so, since a generator that fixes the node count leaves some nodes
/// without an edge.
inline AdjacencyLists remove_isolated(const AdjacencyLists& g) {
  check_adjacency(g);
  std::vector<int> index(g.size(), -1);
  int k = 0;
  for (std::size_t v = 0; v < g.size(); ++v)
    if (!g[v].empty()) index[v] = k++;
  AdjacencyLists out(static_cast<std::size_t>(k));
  for (std::size_t v = 0; v < g.size(); ++v)
    for (int u : g[v]) out[std::size_t(index[v])].push_back(index[std::size_t(u)]);
  return out;
}

/// MMD²s over several draws: their mean and sample standard deviation (0 for one draw).
struct GraphMmdDraws {
  GraphMmd mean;               ///< the draws' mean
  GraphMmd sd;                 ///< their standard deviation
  std::vector<GraphMmd> each;  ///< every draw's
};

/// The published protocol (GraphRNN, GDSS): the generated graphs, grouped by draw[i] (0..K−1;
/// each draw as many graphs as the reference set, by convention), have their isolated nodes
/// removed, and each draw is scored against the reference with graph_mmd; mean and spread over
/// the draws. A draw with no edge at all (nothing left to score) has NaN MMD²s, and so do the
/// mean and spread.
inline GraphMmdDraws graph_mmd_draws(const std::vector<AdjacencyLists>& ref,
                                     const std::vector<AdjacencyLists>& gen,
                                     const std::vector<std::size_t>& draw) {
  if (draw.size() != gen.size())
    throw std::invalid_argument(
        fmt::format("graph_mmd_draws: {} graphs but {} draw labels", gen.size(), draw.size()));
  std::size_t K = 0;
  for (std::size_t d : draw) K = std::max(K, d + 1);
  std::vector<std::vector<AdjacencyLists>> sets(K);
  for (std::size_t i = 0; i < gen.size(); ++i) sets[draw[i]].push_back(remove_isolated(gen[i]));
  GraphMmdDraws r;
  for (std::size_t k = 0; k < K; ++k) {
    if (sets[k].empty())
      throw std::invalid_argument(fmt::format("graph_mmd_draws: draw {} is empty", k));
    const bool all_empty = std::all_of(sets[k].begin(), sets[k].end(),
                                       [](const AdjacencyLists& g) { return g.empty(); });
    r.each.push_back(all_empty ? GraphMmd{NAN, NAN, NAN} : graph_mmd(ref, sets[k]));
  }
  auto stat = [&](auto get, double& mean, double& sd) {
    mean = 0, sd = 0;
    for (const auto& m : r.each) mean += get(m) / double(K);
    for (const auto& m : r.each) sd += (get(m) - mean) * (get(m) - mean);
    sd = K > 1 ? std::sqrt(sd / double(K - 1)) : 0;
  };
  stat([](const GraphMmd& m) { return m.degree; }, r.mean.degree, r.sd.degree);
  stat([](const GraphMmd& m) { return m.clustering; }, r.mean.clustering, r.sd.clustering);
  stat([](const GraphMmd& m) { return m.orbit; }, r.mean.orbit, r.sd.orbit);
  return r;
}

/// W1 between the empirical distributions of two samples on the line.
inline double wasserstein1(std::vector<double> a, std::vector<double> b) {
  if (a.empty() || b.empty()) throw std::invalid_argument("wasserstein1: an empty sample");
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::vector<double> t(a);
  t.insert(t.end(), b.begin(), b.end());
  std::sort(t.begin(), t.end());
  double w = 0;
  std::size_t ia = 0, ib = 0;
  for (std::size_t k = 0; k + 1 < t.size(); ++k) {
    while (ia < a.size() && a[ia] <= t[k]) ++ia;
    while (ib < b.size() && b[ib] <= t[k]) ++ib;
    w +=
        std::abs(double(ia) / double(a.size()) - double(ib) / double(b.size())) * (t[k + 1] - t[k]);
  }
  return w;
}

}  // namespace ebl
