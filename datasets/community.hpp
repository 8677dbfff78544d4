// Community-small, the generic-graph benchmark of the graph-generation literature (GraphRNN, You
// et al. 2018; EDP-GNN, Niu et al. 2020; GDSS, Jo et al. 2022), generated as their code does
// (GDSS data/data_generators.py, n_community): a size m drawn uniformly from 12..20, two
// communities of k = ⌊m/2⌋ nodes, each an Erdős–Rényi G(k, 0.7); every cross pair becomes a
// bridge with probability p = 2·0.05 / k (one bridge, between the communities' first nodes, when
// none was drawn). So a graph has 2k ∈ {12, 14, 16, 18, 20} nodes, on average 0.7·k(k−1) edges
// inside the communities and about 0.1·k bridges. 100 graphs, split 80 train / 20 test.
// (The reference seeds community i's G(k, 0.7) with i, so the two communities of a graph differ
// but the same pair repeats in every graph of that size; here every community is drawn from the
// generator.)
#pragma once

#include <cstdint>
#include <vector>

#include "autodiff/random.hpp"
#include "datasets/graphs.hpp"

namespace ebl {

/// One community graph of 2k nodes, padded to `pad` nodes (≥ 2k) as a TypedGraph with one node
/// type and one edge type (F = R = 2 with "none").
inline TypedGraph community_graph(std::size_t k, std::size_t pad, Rng& rng) {
  TypedGraph g(pad, 2, 2);
  for (std::size_t i = 0; i < 2 * k; ++i) g.nodes[i] = 0;
  for (std::size_t c = 0; c < 2; ++c)
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t j = i + 1; j < k; ++j)
        if (rng.bernoulli(0.7)) g.set_edge(c * k + i, c * k + j, 0);
  const double p_bridge = 0.05 * 2 / double(k);
  bool bridged = false;
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j)
      if (rng.bernoulli(p_bridge)) {
        g.set_edge(i, k + j, 0);
        bridged = true;
      }
  if (!bridged) g.set_edge(0, k, 0);
  return g;
}

/// The community-small set, split as GraphRNN and GDSS split it.
struct CommunitySmall {
  std::vector<TypedGraph> train;                ///< the training graphs
  std::vector<TypedGraph> test;                 ///< the held-out graphs
  static constexpr std::size_t kMaxNodes = 20;  ///< the largest graph's nodes (the padding size)
};

/// The data set: `count` graphs (100), the first 80% to train, the rest to test (the graphs are
/// drawn independently, so the order is already random), padded to 20 nodes.
inline CommunitySmall community_small(std::uint64_t seed, std::size_t count = 100) {
  Rng rng(seed);
  CommunitySmall d;
  const std::size_t n_train = count * 4 / 5;
  for (std::size_t g = 0; g < count; ++g) {
    const std::size_t m = 12 + rng.below(9);  // 12..20
    (g < n_train ? d.train : d.test)
        .push_back(community_graph(m / 2, CommunitySmall::kMaxNodes, rng));
  }
  return d;
}

}  // namespace ebl
