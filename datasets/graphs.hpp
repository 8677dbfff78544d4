// Graphs with typed nodes and edges, and their dense one-hot tensors, as the one-shot graph
// generators use them (MoFlow, GraphEBM, GDSS): a graph padded to n nodes is
//     X [n, F]      one-hot node types; the last type means "no node" (padding)
//     A [R, n, n]   one-hot edge types, symmetric; the last type means "no edge" (and the diagonal)
// A molecule is one (F = 5: C, N, O, F, none; R = 4: single, double, triple, none; see
// molecules/); a plain graph of at most n nodes is one with F = 2 (node, none) and R = 2 (edge,
// none). An energy reads a batch of graphs as rows x [B, n·F + R·n·n] (pack_graph): the model code
// takes X and A back out of the row by a view, and samplers, CD and composition see an ordinary
// batch of vectors.
//
// Decoding a (generated, continuous) row (unpack_graph), as GraphEBM does: A is symmetrised,
// (A + Aᵀ)/2, then every node takes the argmax of its row of X and every pair i < j the argmax
// over its R channels; the diagonal is "no edge".
#pragma once

#include <cstddef>
#include <span>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "autodiff/random.hpp"

namespace ebl {

/// A graph with typed nodes and edges on n slots (a molecule, a community graph): a slot holds
/// the "none" node type when it is padding, a pair the "none" edge type when it has no edge.
struct TypedGraph {
  std::size_t n = 0;       ///< nodes, padding included
  int node_types = 2;      ///< F, "none" included (the last code)
  int edge_types = 2;      ///< R, "none" included (the last code)
  std::vector<int> nodes;  ///< node codes, nodes[i] in [0, F)
  std::vector<int> edges;  ///< edge codes, edges[i·n + j] in [0, R), symmetric

  TypedGraph() = default;
  /// n slots of F node and R edge types, all "none".
  TypedGraph(std::size_t nodes_, int f, int r)
      : n(nodes_),
        node_types(f),
        edge_types(r),
        nodes(nodes_, f - 1),
        edges(nodes_ * nodes_, r - 1) {}
  /// The "none" node code (F − 1).
  int no_node() const { return node_types - 1; }
  /// The "none" edge code (R − 1).
  int no_edge() const { return edge_types - 1; }
  /// The edge code of the pair (i, j).
  int edge(std::size_t i, std::size_t j) const { return edges[i * n + j]; }
  /// Sets the edge code of (i, j) and (j, i).
  void set_edge(std::size_t i, std::size_t j, int t) { edges[i * n + j] = edges[j * n + i] = t; }
  /// Whether slot i holds a node.
  bool has_node(std::size_t i) const { return nodes[i] != no_node(); }
  /// Whether (i, j) is an edge.
  bool has_edge(std::size_t i, std::size_t j) const { return edges[i * n + j] != no_edge(); }
  /// Nodes that are not padding.
  std::size_t node_count() const {
    std::size_t c = 0;
    for (int v : nodes) c += v != no_node();
    return c;
  }
  /// Edges (each pair once).
  std::size_t edge_count() const {
    std::size_t c = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = i + 1; j < n; ++j) c += has_edge(i, j);
    return c;
  }
  /// Equal slots, types and codes.
  bool operator==(const TypedGraph&) const = default;
};

/// The shape of the packed rows: n nodes, F node types, R edge types ("none" included).
struct GraphLayout {
  std::size_t nodes = 9;       ///< n
  std::size_t node_types = 5;  ///< F
  std::size_t edge_types = 4;  ///< R
  /// n·F, the node one-hots' part of a row.
  std::size_t x_size() const { return nodes * node_types; }
  /// R·n², the adjacency channels' part.
  std::size_t a_size() const { return edge_types * nodes * nodes; }
  /// The row length.
  std::size_t dim() const { return x_size() + a_size(); }
  /// Equal sizes.
  bool operator==(const GraphLayout&) const = default;
};

inline GraphLayout layout_of(const TypedGraph& g) {
  return {g.n, std::size_t(g.node_types), std::size_t(g.edge_types)};
}

/// One-hot tensors of g written into row [layout.dim()] (X, then A).
template <class T>
void pack_graph(const TypedGraph& g, const GraphLayout& l, T* row) {
  if (layout_of(g) != l)
    throw std::invalid_argument(fmt::format(
        "pack_graph: graph of {} nodes, {} node and {} edge types does not fit the layout "
        "({}, {}, {})",
        g.n, g.node_types, g.edge_types, l.nodes, l.node_types, l.edge_types));
  std::fill(row, row + l.dim(), T(0));
  for (std::size_t i = 0; i < l.nodes; ++i) row[i * l.node_types + std::size_t(g.nodes[i])] = T(1);
  T* a = row + l.x_size();
  for (std::size_t i = 0; i < l.nodes; ++i)
    for (std::size_t j = 0; j < l.nodes; ++j)
      a[(std::size_t(g.edge(i, j)) * l.nodes + i) * l.nodes + j] = T(1);
}

/// The graph a continuous row decodes to (symmetrise A, argmax per node and per pair).
template <class T>
TypedGraph unpack_graph(const T* row, const GraphLayout& l) {
  TypedGraph g(l.nodes, int(l.node_types), int(l.edge_types));
  for (std::size_t i = 0; i < l.nodes; ++i) {
    const T* x = row + i * l.node_types;
    std::size_t best = 0;
    for (std::size_t k = 1; k < l.node_types; ++k)
      if (x[k] > x[best]) best = k;
    g.nodes[i] = int(best);
  }
  const T* a = row + l.x_size();
  const std::size_t nn = l.nodes * l.nodes;
  for (std::size_t i = 0; i < l.nodes; ++i)
    for (std::size_t j = i + 1; j < l.nodes; ++j) {
      std::size_t best = 0;
      double best_v = 0;
      for (std::size_t r = 0; r < l.edge_types; ++r) {
        const double v =
            0.5 * (double(a[r * nn + i * l.nodes + j]) + double(a[r * nn + j * l.nodes + i]));
        if (r == 0 || v > best_v) best = r, best_v = v;
      }
      g.set_edge(i, j, int(best));
    }
  return g;
}

/// Rows x [B, dim] of graphs[idx[b]], dequantised (GraphEBM §3.2): (one-hot + c·U[0,1)) / (1 + c).
/// c = 0: the one-hot tensors. Dividing by 1 + c keeps data and chains in one box [0, 1] (the
/// reference clamps the chains' X to [0, 1 + c] and A to [0, 1] while the data's A reaches
/// 1 + c; one box for both is the same model up to the scale of X).
template <class T>
Array<T> graphs_to_rows(const std::vector<TypedGraph>& graphs, const std::vector<std::size_t>& idx,
                        const GraphLayout& l, double c, Rng& rng) {
  Array<T> x = Array<T>::from_shape({idx.size(), l.dim()});
  for (std::size_t b = 0; b < idx.size(); ++b) {
    T* row = x.data() + b * l.dim();
    pack_graph(graphs.at(idx[b]), l, row);
    if (c != 0)
      for (std::size_t k = 0; k < l.dim(); ++k)
        row[k] = T((double(row[k]) + c * rng.uniform()) / (1 + c));
  }
  return x;
}

/// The plain graph (adjacency lists) of the nodes and edges that exist, renumbered in order.
inline std::vector<std::vector<int>> adjacency_lists(const TypedGraph& g) {
  std::vector<int> index(g.n, -1);
  int k = 0;
  for (std::size_t i = 0; i < g.n; ++i)
    if (g.has_node(i)) index[i] = k++;
  std::vector<std::vector<int>> adj(static_cast<std::size_t>(k));
  for (std::size_t i = 0; i < g.n; ++i)
    for (std::size_t j = i + 1; j < g.n; ++j)
      if (index[i] >= 0 && index[j] >= 0 && g.has_edge(i, j)) {
        adj[std::size_t(index[i])].push_back(index[j]);
        adj[std::size_t(index[j])].push_back(index[i]);
      }
  return adj;
}

/// Graphs as the score model reads them: u [B, P], 1 on the edges (pairs i < j, row-major), and
/// the node masks [B, N], 1 on the nodes that are not padding.
template <class T>
struct PairRows {
  Array<T> u;      ///< [B, N(N−1)/2]
  Array<T> masks;  ///< [B, N]
};

/// Rows of graphs[idx] (each padded to the same N ≥ 2 slots).
template <class T>
PairRows<T> graphs_to_pairs(const std::vector<TypedGraph>& graphs,
                            std::span<const std::size_t> idx) {
  if (idx.empty()) throw std::invalid_argument("graphs_to_pairs: no graph");
  const std::size_t N = graphs[idx[0]].n;
  PairRows<T> r{Array<T>(Shape{idx.size(), N * (N - 1) / 2}), Array<T>(Shape{idx.size(), N})};
  for (std::size_t b = 0; b < idx.size(); ++b) {
    const TypedGraph& g = graphs.at(idx[b]);
    if (g.n != N)
      throw ShapeError(fmt::format("graphs_to_pairs: graph {} has {} slots, graph {} has {}",
                                   idx[b], g.n, idx[0], N));
    for (std::size_t i = 0, p = 0; i < N; ++i) {
      r.masks(b, i) = T(g.has_node(i) ? 1 : 0);
      for (std::size_t j = i + 1; j < N; ++j, ++p) r.u(b, p) = T(g.has_edge(i, j) ? 1 : 0);
    }
  }
  return r;
}

/// Graphs from pairs' values u [B, N(N−1)/2]: graph b has nodes 0..node_counts[b]−1 (one node
/// type; F = R = 2 with "none") and the edges whose u_ij > ½ (the score model's threshold).
template <class T>
std::vector<TypedGraph> pairs_to_graphs(const Array<T>& u,
                                        const std::vector<std::size_t>& node_counts,
                                        std::size_t N) {
  if (u.dimension() != 2 || u.shape()[0] != node_counts.size() || u.shape()[1] != N * (N - 1) / 2)
    throw ShapeError(fmt::format("pairs_to_graphs: pairs {} for {} graphs of {} slots",
                                 shape_str(u.shape()), node_counts.size(), N));
  std::vector<TypedGraph> out;
  for (std::size_t b = 0; b < node_counts.size(); ++b) {
    if (node_counts[b] > N)
      throw std::invalid_argument(
          fmt::format("pairs_to_graphs: {} nodes in {} slots", node_counts[b], N));
    TypedGraph g(N, 2, 2);
    for (std::size_t i = 0; i < node_counts[b]; ++i) g.nodes[i] = 0;
    for (std::size_t i = 0, p = 0; i < N; ++i)
      for (std::size_t j = i + 1; j < N; ++j, ++p)
        if (j < node_counts[b] && u(b, p) > T(0.5)) g.set_edge(i, j, 0);
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace ebl
