// The community-small study's parts that are not the models: the baselines (the training graphs,
// Erdős–Rényi at the training graphs' density, complete and edgeless graphs), the draws of the
// published protocol, and the generated graphs as edge-list files (io/edge_lists.hpp) that
// graph_scores (score.cpp) reads back.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "autodiff/random.hpp"
#include "datasets/graphs.hpp"
#include "io/edge_lists.hpp"
#include "metrics/graph_stats.hpp"

namespace ebl::community {

/// The training graphs' node counts: generators draw n from them (EDP-GNN and GDSS do).
inline std::vector<std::size_t> node_counts(const std::vector<TypedGraph>& graphs) {
  std::vector<std::size_t> n;
  for (const auto& g : graphs) n.push_back(g.node_count());
  return n;
}

/// The training graphs' density: their edges over their node pairs, pooled.
inline double density(const std::vector<TypedGraph>& graphs) {
  double edges = 0, pairs = 0;
  for (const auto& g : graphs) {
    const double n = double(g.node_count());
    edges += double(g.edge_count()), pairs += n * (n - 1) / 2;
  }
  return pairs > 0 ? edges / pairs : 0;
}

/// `count` graphs of N slots, n drawn from counts, each pair an edge with probability p
/// (p = 0: edgeless graphs, p = 1: complete ones).
inline std::vector<TypedGraph> erdos_renyi(const std::vector<std::size_t>& counts, double p,
                                           std::size_t N, std::size_t count, Rng& rng) {
  std::vector<TypedGraph> out;
  for (std::size_t k = 0; k < count; ++k) {
    const std::size_t n = counts[rng.below(counts.size())];
    TypedGraph g(N, 2, 2);
    for (std::size_t i = 0; i < n; ++i) g.nodes[i] = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = i + 1; j < n; ++j)
        if (rng.bernoulli(p)) g.set_edge(i, j, 0);
    out.push_back(std::move(g));
  }
  return out;
}

/// The graphs as edge-list records: the present nodes renumbered 0..n−1 in slot order (isolated
/// ones kept), graph k in draw k / per_draw (per_draw 0: no draw).
inline std::vector<EdgeListGraph> to_edge_lists(const std::vector<TypedGraph>& graphs,
                                                std::size_t per_draw) {
  std::vector<EdgeListGraph> out;
  for (std::size_t k = 0; k < graphs.size(); ++k) {
    const AdjacencyLists a = adjacency_lists(graphs[k]);
    EdgeListGraph e;
    e.nodes = a.size();
    e.draw = per_draw ? long(k / per_draw) : -1;
    for (std::size_t v = 0; v < a.size(); ++v)
      for (int u : a[v])
        if (std::size_t(u) > v) e.edges.emplace_back(v, std::size_t(u));
    out.push_back(std::move(e));
  }
  return out;
}

/// Adjacency lists of an edge-list record (every node kept).
inline AdjacencyLists adjacency(const EdgeListGraph& g) {
  AdjacencyLists a(g.nodes);
  for (auto [u, v] : g.edges) a[u].push_back(int(v)), a[v].push_back(int(u));
  return a;
}

/// A file's graphs scored by the published protocol against the reference: its draws (every graph
/// its own draw label; none: one draw) with isolated nodes removed (metrics/graph_stats.hpp).
inline GraphMmdDraws score(const std::vector<EdgeListGraph>& reference,
                           const std::vector<EdgeListGraph>& generated) {
  // the orbit counts keep an n × n matrix per graph: graph-generation benchmarks stay far below
  for (const auto* set : {&reference, &generated})
    for (std::size_t k = 0; k < set->size(); ++k)
      if ((*set)[k].nodes > 10000)
        throw std::invalid_argument(
            fmt::format("graph {} has {} nodes: graph_scores scores graphs of at most 10,000", k,
                        (*set)[k].nodes));
  if (reference.empty() || generated.empty())
    throw std::invalid_argument("no graph to score (an empty file)");
  std::vector<AdjacencyLists> ref, gen;
  std::vector<std::size_t> draw;
  for (const auto& g : reference) ref.push_back(adjacency(g));
  for (const auto& g : generated) {
    gen.push_back(adjacency(g));
    draw.push_back(g.draw >= 0 ? std::size_t(g.draw) : 0);
  }
  return graph_mmd_draws(ref, gen, draw);
}

/// The result rows of one generator: part "community", the model's name, and for degree,
/// clustering and orbit the draws' mean MMD² and its standard deviation.
template <class Record>
void record_scores(const std::string& model, const GraphMmdDraws& m, Record&& record) {
  record("community", model, "mmd_degree", m.mean.degree);
  record("community", model, "mmd_clustering", m.mean.clustering);
  record("community", model, "mmd_orbit", m.mean.orbit);
  record("community", model, "mmd_degree_sd", m.sd.degree);
  record("community", model, "mmd_clustering_sd", m.sd.clustering);
  record("community", model, "mmd_orbit_sd", m.sd.orbit);
}

}  // namespace ebl::community
