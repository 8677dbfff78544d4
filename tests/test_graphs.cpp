// Graphs without RDKit: the dense one-hot representation, community-small, the graph statistics
// and MMDs of the literature, W1, and the graph energy (invariance, gradients, goal-directed loss).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <thread>

#include "datasets/community.hpp"
#include "datasets/graphs.hpp"
#include "datasets/qm9.hpp"
#include "ebm/graph_ebm.hpp"
#include "helpers.hpp"
#include "metrics/graph_stats.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {

TypedGraph random_graph(std::size_t n, int f, int r, double p_node, double p_edge, Rng& rng) {
  TypedGraph g(n, f, r);
  for (std::size_t i = 0; i < n; ++i)
    g.nodes[i] = rng.bernoulli(p_node) ? int(rng.below(std::uint64_t(f - 1))) : f - 1;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j)
      if (rng.bernoulli(p_edge)) g.set_edge(i, j, int(rng.below(std::uint64_t(r - 1))));
  return g;
}

AdjacencyLists lists(std::size_t n, std::initializer_list<std::pair<int, int>> edges) {
  AdjacencyLists g(n);
  for (auto [a, b] : edges) {
    g[std::size_t(a)].push_back(b);
    g[std::size_t(b)].push_back(a);
  }
  return g;
}

// orbit counts of node v as a vector (for readable expectations)
std::vector<double> orbits_of(const AdjacencyLists& g, std::size_t v) {
  auto o = orbit_counts(g)[v];
  return {o.begin(), o.end()};
}

std::vector<double> orbit_vec(std::initializer_list<std::pair<int, double>> nonzero) {
  std::vector<double> o(15, 0.0);
  for (auto [k, c] : nonzero) o[std::size_t(k)] = c;
  return o;
}

}  // namespace

TEST_CASE("graphs: packed rows decode to the graph they encode", "[graphs]") {
  Rng rng(1);
  for (int trial = 0; trial < 50; ++trial) {
    TypedGraph g = random_graph(9, 5, 4, 0.8, 0.3, rng);
    const GraphLayout l = layout_of(g);
    std::vector<double> row(l.dim());
    pack_graph(g, l, row.data());
    // one-hot: every node row and every pair's channels sum to 1
    for (std::size_t i = 0; i < l.nodes; ++i)
      CHECK(std::accumulate(row.begin() + std::ptrdiff_t(i * 5),
                            row.begin() + std::ptrdiff_t(i * 5 + 5), 0.0) == 1);
    CHECK(std::accumulate(row.begin(), row.end(), 0.0) == double(9 + 81));
    CHECK(unpack_graph(row.data(), l) == g);
    // small noise does not change the decoding; the decoding symmetrises A
    for (double& v : row) v += 0.2 * rng.uniform();
    CHECK(unpack_graph(row.data(), l) == g);
  }
  TypedGraph g(4, 2, 2);
  CHECK_THROWS_WITH(pack_graph(g, GraphLayout{9, 5, 4}, std::vector<double>(405).data()),
                    Catch::Contains("does not fit"));
}

TEST_CASE("graphs: the seeded split is a fixed partition", "[graphs]") {
  Split a = seeded_split(1000, 0.1, 7), b = seeded_split(1000, 0.1, 7),
        c = seeded_split(1000, 0.1, 8);
  CHECK(a.test.size() == 100);
  CHECK(a.train.size() == 900);
  CHECK(a.test == b.test);
  CHECK(a.test != c.test);
  std::vector<std::size_t> all(a.train);
  all.insert(all.end(), a.test.begin(), a.test.end());
  std::sort(all.begin(), all.end());
  for (std::size_t i = 0; i < all.size(); ++i) REQUIRE(all[i] == i);
}

TEST_CASE("community-small has the documented node and edge statistics", "[graphs][community]") {
  const CommunitySmall d = community_small(0);
  CHECK(d.train.size() == 80);
  CHECK(d.test.size() == 20);
  // many graphs from another seed: sizes, the communities' density and the bridges
  Rng rng(5);
  const int graphs = 4000;
  double inside = 0, pairs_inside = 0;
  std::vector<double> bridge_excess;  // bridges minus their expectation, per graph
  std::vector<int> size_seen(21, 0);
  for (int k = 0; k < graphs; ++k) {
    const std::size_t m = 12 + rng.below(9), half = m / 2;
    TypedGraph g = community_graph(half, 20, rng);
    REQUIRE(g.node_count() == 2 * half);
    size_seen[2 * half] += 1;
    double bridges = 0;
    for (std::size_t i = 0; i < 2 * half; ++i)
      for (std::size_t j = i + 1; j < 2 * half; ++j) {
        const bool same = (i < half) == (j < half);
        if (same)
          inside += g.has_edge(i, j), pairs_inside += 1;
        else
          bridges += g.has_edge(i, j);
      }
    REQUIRE(bridges >= 1);
    // E[bridges] = 0.1·k + P(no bridge drawn) (then one is added); p = 0.1/k over k² pairs
    const double p = 0.1 / double(half), none = std::pow(1 - p, double(half * half));
    bridge_excess.push_back(bridges - (0.1 * double(half) + none));
  }
  for (std::size_t s : {12u, 14u, 16u, 18u, 20u}) CHECK(size_seen[s] > 0);
  for (std::size_t s : {13u, 15u, 17u, 19u}) CHECK(size_seen[s] == 0);
  const double density = inside / pairs_inside;
  CHECK(std::abs(density - 0.7) < 4 * std::sqrt(0.7 * 0.3 / pairs_inside));
  double mean = 0, var = 0;
  for (double e : bridge_excess) mean += e / graphs;
  for (double e : bridge_excess) var += (e - mean) * (e - mean) / (graphs - 1);
  CHECK(std::abs(mean) < 4 * std::sqrt(var / graphs));
}

TEST_CASE("orbit counts on graphs whose graphlets are known", "[graphs][metrics]") {
  // path 0-1-2-3
  auto p4 = lists(4, {{0, 1}, {1, 2}, {2, 3}});
  CHECK(orbits_of(p4, 0) == orbit_vec({{0, 1}, {1, 1}, {4, 1}}));
  CHECK(orbits_of(p4, 1) == orbit_vec({{0, 2}, {1, 1}, {2, 1}, {5, 1}}));
  // star: centre 0
  auto star = lists(4, {{0, 1}, {0, 2}, {0, 3}});
  CHECK(orbits_of(star, 0) == orbit_vec({{0, 3}, {2, 3}, {7, 1}}));
  CHECK(orbits_of(star, 2) == orbit_vec({{0, 1}, {1, 2}, {6, 1}}));
  // cycle of 4
  auto c4 = lists(4, {{0, 1}, {1, 2}, {2, 3}, {3, 0}});
  for (std::size_t v = 0; v < 4; ++v)
    CHECK(orbits_of(c4, v) == orbit_vec({{0, 2}, {1, 2}, {2, 1}, {8, 1}}));
  // K4
  auto k4 = lists(4, {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}});
  for (std::size_t v = 0; v < 4; ++v)
    CHECK(orbits_of(k4, v) == orbit_vec({{0, 3}, {3, 3}, {14, 1}}));
  // paw: triangle 0-1-2 and the tail 2-3
  auto paw = lists(4, {{0, 1}, {1, 2}, {0, 2}, {2, 3}});
  CHECK(orbits_of(paw, 3) == orbit_vec({{0, 1}, {1, 2}, {9, 1}}));
  CHECK(orbits_of(paw, 0) == orbit_vec({{0, 2}, {1, 1}, {3, 1}, {10, 1}}));
  CHECK(orbits_of(paw, 2) == orbit_vec({{0, 3}, {2, 2}, {3, 1}, {11, 1}}));
  // diamond: K4 without the edge 0-3
  auto diamond = lists(4, {{0, 1}, {0, 2}, {1, 2}, {1, 3}, {2, 3}});
  CHECK(orbits_of(diamond, 0) == orbit_vec({{0, 2}, {1, 2}, {3, 1}, {12, 1}}));
  CHECK(orbits_of(diamond, 1) == orbit_vec({{0, 3}, {2, 1}, {3, 2}, {13, 1}}));
  // a triangle with an isolated node has no 4-node graphlet
  auto tri = lists(4, {{0, 1}, {1, 2}, {0, 2}});
  CHECK(orbits_of(tri, 3) == orbit_vec({}));
}

TEST_CASE("connected components", "[graphs][metrics]") {
  CHECK(connected_components(AdjacencyLists{}) == 0);
  CHECK(connected_components(lists(4, {{0, 1}, {2, 3}})) == 2);
  CHECK(connected_components(lists(5, {{0, 1}, {1, 2}, {2, 3}})) == 2);  // node 4 alone
  CHECK(connected_components(lists(4, {{0, 1}, {1, 2}, {2, 3}})) == 1);
}

TEST_CASE("a neighbour outside the graph or a self-loop is refused by every graph statistic",
          "[graphs][metrics]") {
  for (const AdjacencyLists& bad :
       {AdjacencyLists{{5}}, AdjacencyLists{{-1}}, AdjacencyLists{{1}, {1}}}) {
    CHECK_THROWS_WITH(degree_histogram(bad), Catch::Contains("lists neighbour"));
    CHECK_THROWS_AS(clustering_coefficients(bad), std::invalid_argument);
    CHECK_THROWS_AS(connected_components(bad), std::invalid_argument);
    CHECK_THROWS_AS(orbit_counts(bad), std::invalid_argument);
    CHECK_THROWS_AS(graph_mmd({bad}, {AdjacencyLists{{}}}), std::invalid_argument);
  }
}

TEST_CASE("orbit counts agree with closed-form graph counts on random graphs",
          "[graphs][metrics]") {
  Rng rng(3);
  for (int trial = 0; trial < 20; ++trial) {
    TypedGraph tg = random_graph(14, 2, 2, 1.0, 0.35, rng);
    auto g = adjacency_lists(tg);
    const std::size_t n = g.size();
    std::vector<std::vector<double>> a(n, std::vector<double>(n, 0));
    for (std::size_t i = 0; i < n; ++i)
      for (int j : g[i]) a[i][std::size_t(j)] = 1;
    // triangles at v = (A³)_vv / 2; induced paths of 3 centred at v = C(deg, 2) − triangles at v;
    // 4-cycles through v (not necessarily induced) = ((A⁴)_vv − deg² − Σ_{u~v}(deg u − 1)) / 2
    auto o = orbit_counts(g);
    for (std::size_t v = 0; v < n; ++v) {
      double tri = 0;
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) tri += a[v][i] * a[i][j] * a[j][v];
      tri /= 2;
      const double d = double(g[v].size());
      CHECK(o[v][0] == d);
      CHECK(o[v][3] == tri);
      CHECK(o[v][2] == d * (d - 1) / 2 - tri);
      // every cycle of 4 through v is induced as a C4 (orbit 8), a diamond (12 or 13) or K4 (14);
      // K4 holds 3 four-cycles through each node, a diamond 1 through each of its nodes
      std::vector<double> a2(n, 0);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) a2[j] += a[v][i] * a[i][j];
      double walks4 = 0, walks2 = 0;
      for (std::size_t j = 0; j < n; ++j) walks4 += a2[j] * a2[j];
      for (int u : g[v]) walks2 += double(g[std::size_t(u)].size()) - 1;
      const double cycles4 = (walks4 - d * d - walks2) / 2;
      CHECK(o[v][8] + o[v][12] + o[v][13] + 3 * o[v][14] == cycles4);
    }
  }
}

TEST_CASE("graph MMDs are 0 for a set with itself and grow with a perturbation",
          "[graphs][metrics]") {
  const CommunitySmall d = community_small(1);
  std::vector<AdjacencyLists> ref;
  for (const auto& g : d.train) ref.push_back(adjacency_lists(g));
  GraphMmd self = graph_mmd(ref, ref);
  CHECK(std::abs(self.degree) < 1e-12);
  CHECK(std::abs(self.clustering) < 1e-12);
  CHECK(std::abs(self.orbit) < 1e-12);
  // flip each pair with probability q: the MMDs grow with q
  GraphMmd last = self;
  for (double q : {0.05, 0.15, 0.4}) {
    Rng rng(9);
    std::vector<AdjacencyLists> noisy;
    for (TypedGraph g : d.train) {
      for (std::size_t i = 0; i < g.node_count(); ++i)
        for (std::size_t j = i + 1; j < g.node_count(); ++j)
          if (rng.bernoulli(q)) g.set_edge(i, j, g.has_edge(i, j) ? 1 : 0);
      noisy.push_back(adjacency_lists(g));
    }
    GraphMmd m = graph_mmd(ref, noisy);
    INFO("q = " << q);
    CHECK(m.degree > last.degree);
    CHECK(m.clustering > last.clustering);
    CHECK(m.orbit > last.orbit);
    last = m;
  }
}

TEST_CASE("EMD of histograms and W1 of samples on the line", "[metrics]") {
  // all mass moves one bin: EMD = bin width
  CHECK(emd_1d({1, 0, 0}, {0, 1}, 1.0) == Approx(1.0));
  CHECK(emd_1d({2, 0, 0}, {0, 0, 5}, 0.5) == Approx(1.0));
  CHECK(emd_1d({1, 1}, {1, 1}, 1.0) == 0.0);
  // half the mass moves two bins
  CHECK(emd_1d({1, 0, 1}, {0, 0, 2}, 1.0) == Approx(1.0));
  CHECK(wasserstein1({0, 1}, {0, 1}) == 0.0);
  CHECK(wasserstein1({0, 0}, {3}) == Approx(3.0));
  CHECK(wasserstein1({0, 2}, {1}) == Approx(1.0));
  CHECK(wasserstein1({0, 1, 2, 3}, {1, 2, 3, 4}) == Approx(1.0));
}

TEST_CASE("graph energy: invariant to the order of the nodes, gradients checked", "[graphs][ebm]") {
  Rng rng(11);
  const GraphLayout l{6, 3, 3};
  GraphEnergy<double> e(l.nodes, l.node_types, l.edge_types, 8, 2, rng);
  e.update_spectral_norm();
  // a batch of dequantised graphs and its node-permuted copy
  std::vector<TypedGraph> gs;
  for (int k = 0; k < 3; ++k) gs.push_back(random_graph(6, 3, 3, 0.8, 0.5, rng));
  std::vector<std::size_t> idx{0, 1, 2};
  Rng deq(12);
  Array<double> x = graphs_to_rows<double>(gs, idx, l, 0.3, deq);
  const std::vector<std::size_t> perm{3, 0, 5, 1, 4, 2};
  Array<double> xp(x.shape());
  for (std::size_t b = 0; b < 3; ++b) {
    const double* r = x.data() + b * l.dim();
    double* q = xp.data() + b * l.dim();
    for (std::size_t k = 0; k < 6; ++k)
      for (std::size_t f = 0; f < 3; ++f) q[k * 3 + f] = r[perm[k] * 3 + f];
    for (std::size_t c = 0; c < 3; ++c)
      for (std::size_t i = 0; i < 6; ++i)
        for (std::size_t j = 0; j < 6; ++j)
          q[l.x_size() + (c * 6 + i) * 6 + j] = r[l.x_size() + (c * 6 + perm[i]) * 6 + perm[j]];
  }
  TD t;
  Var<double> y = e(t, t.constant(x)), yp = e(t, t.constant(xp));
  for (std::size_t b = 0; b < 3; ++b) CHECK(yp.value()(b) == Approx(y.value()(b)).epsilon(1e-12));
  // the energy is not constant: another graph has another energy
  CHECK(std::abs(y.value()(0) - y.value()(1)) > 1e-6);
  // ∇x (X and A) and ∇θ by central differences
  expect_gradients([&](TD& tt, In v) { return e(tt, v[0]); }, {x}, e.parameters());
  CHECK_THROWS_WITH(e(t, t.constant(Array<double>::from_shape({2, 10}))),
                    Catch::Contains("GraphEnergy: input [2,10] is not [B, 126]"));
}

TEST_CASE("goal-directed loss is GraphEBM's weighted comparison", "[graphs][ebm]") {
  Rng rng(13);
  const GraphLayout l{4, 2, 2};
  GraphEnergy<double> e(l.nodes, l.node_types, l.edge_types, 4, 1, rng, false);
  Array<double> xp = uniform({3, l.dim()}, 14, 0, 1), xn = uniform({3, l.dim()}, 15, 0, 1);
  Array<double> y{0.1, -0.5, 2.0}, w = 1.0 + xt::exp(y);
  TD t;
  Var<double> ep = e(t, t.constant(xp)), en = e(t, t.constant(xn));
  double want = 0;
  for (std::size_t i = 0; i < 3; ++i)
    want += (w(i) * ep.value()(i) - en.value()(i)) / 3 +
            0.7 * (ep.value()(i) * ep.value()(i) + en.value()(i) * en.value()(i)) / 3;
  CHECK(goal_directed_loss<double>(e, t, xp, xn, w, 0.7).item() == Approx(want).epsilon(1e-12));
  expect_gradients([&](TD& tt, In) { return goal_directed_loss<double>(e, tt, xp, xn, w, 0.7); },
                   {}, e.parameters());
}

TEST_CASE("goal-directed training with unit weights is CD with the same chains", "[graphs][ebm]") {
  const GraphLayout l{5, 3, 3};
  CdOptions o;
  o.init = ChainInit::Persistent;
  o.alpha = 1;
  o.buffer_size = 50;
  o.noise_lo = 0, o.noise_hi = 1;
  o.langevin.steps = 3, o.langevin.step_size = 0.5, o.langevin.temperature = 1e-4;
  o.langevin.grad_clip = 0.01, o.langevin.clamp = true, o.langevin.lo = 0, o.langevin.hi = 1;
  auto make = [&] {
    Rng init(21);
    return GraphEnergy<double>(l.nodes, l.node_types, l.edge_types, 6, 2, init);
  };
  GraphEnergy<double> a = make(), b = make();
  Adam<double> oa(a.parameters(), {.lr = 1e-2}), ob(b.parameters(), {.lr = 1e-2});
  ContrastiveDivergence<double> cd(a, oa, o, 5, l.dim());
  GoalDirectedTrainer<double> gd(b, ob, o, 5, l.dim());
  Rng data(22);
  std::vector<TypedGraph> gs;
  for (int k = 0; k < 8; ++k) gs.push_back(random_graph(5, 3, 3, 0.9, 0.4, data));
  const Array<double> ones = xt::ones<double>({8});
  for (int step = 0; step < 5; ++step) {
    Array<double> x = graphs_to_rows<double>(gs, {0, 1, 2, 3, 4, 5, 6, 7}, l, 0.2, data);
    const double lc = cd.step(x).loss, lg = gd.step(x, ones);
    CHECK(lg == Approx(lc).epsilon(1e-10));
  }
  auto pa = a.parameters(), pb = b.parameters();
  for (std::size_t k = 0; k < pa.size(); ++k)
    CHECK(max_rel_diff(pa[k]->value, pb[k]->value) < 1e-8);
  // the weights matter: other weights, another update
  GraphEnergy<double> c = make();
  Adam<double> oc(c.parameters(), {.lr = 1e-2});
  GoalDirectedTrainer<double> gw(c, oc, o, 5, l.dim());
  Array<double> w = xt::ones<double>({8});
  w(0) = 3;
  Rng data2(22);
  for (int k = 0; k < 8; ++k) random_graph(5, 3, 3, 0.9, 0.4, data2);  // the same draws as above
  gw.step(graphs_to_rows<double>(gs, {0, 1, 2, 3, 4, 5, 6, 7}, l, 0.2, data2), w);
  CHECK(max_rel_diff(make().parameters()[0]->value, c.parameters()[0]->value) > 1e-6);
}

TEST_CASE("graph energy: forwards on two threads' tapes at once agree with one thread",
          "[graphs][ebm]") {
  // Langevin's threads evaluate one energy on several tapes at once: the spectrally normalised
  // relational layers must only read shared state while sampling
  Rng rng(31);
  const GraphLayout l{7, 3, 4};
  GraphEnergy<double> e(l.nodes, l.node_types, l.edge_types, 8, 3, rng);
  e.update_spectral_norm();
  Array<double> xa = uniform({4, l.dim()}, 32, 0, 1), xb = uniform({4, l.dim()}, 33, 0, 1);
  auto energies = [&](const Array<double>& x) {
    TD t;
    Var<double> xv = t.input(x);
    Var<double> y = e(t, xv);
    t.backward(sum(y), {xv});
    Array<double> out = y.value();
    return std::pair{out, Array<double>(t.grad(xv))};
  };
  const auto want_a = energies(xa), want_b = energies(xb);
  bool same_a = true, same_b = true;
  std::thread other([&] {
    for (int k = 0; k < 200; ++k) same_b = same_b && energies(xb) == want_b;
  });
  for (int k = 0; k < 200; ++k) same_a = same_a && energies(xa) == want_a;
  other.join();
  CHECK(same_a);
  CHECK(same_b);
}

TEST_CASE("graph energy with bond-only messages ignores the no-edge channel", "[graphs][ebm]") {
  Rng rng(41);
  const GraphLayout l{5, 3, 3};
  GraphEnergy<double> e(l.nodes, l.node_types, l.edge_types,
                        GraphEnergyOptions{.hidden = 6,
                                           .depth = 2,
                                           .spectral_norm = true,
                                           .none_channel_messages = false,
                                           .adjacency_scale = 0.25},
                        rng);
  e.update_spectral_norm();
  Array<double> x = uniform({3, l.dim()}, 42, 0, 1);
  expect_gradients([&](TD& t, In v) { return e(t, v[0]); }, {x}, e.parameters());
  TD t;
  Var<double> xv = t.input(x);
  t.backward(sum(e(t, xv)), {xv});
  const Array<double>& g = t.grad(xv);
  const std::size_t none_from = l.x_size() + 2 * 25;  // channel R-1 = 2 of A
  double on_none = 0, on_bonds = 0;
  for (std::size_t b = 0; b < 3; ++b)
    for (std::size_t k = l.x_size(); k < l.dim(); ++k)
      (k >= none_from ? on_none : on_bonds) += std::abs(g(b, k));
  CHECK(on_none == 0.0);
  CHECK(on_bonds > 0.0);
}

TEST_CASE("clustering bins are np.histogram's: bin k holds linspace's [e_k, e_{k+1})",
          "[graphs][metrics]") {
  // np.histogram(c, bins=100, range=(0, 1)) puts c in the k with e_k <= c < e_{k+1}, where
  // e = np.linspace(0, 1, 101) = k · 0.01 in double (the last bin closed). Checked against that
  // definition, searched edge by edge, for every k / 100 written as a double and its neighbours.
  // floor(100 c) disagreed with it on c = 0.07, 0.14, 0.28, 0.29, 0.55, 0.56, 0.57, 0.58, 0.7 ...
  auto by_definition = [](double c) {
    std::size_t k = 0;
    while (k + 1 < 100 && !(c < double(k + 1) * 0.01)) ++k;
    return k;
  };
  std::size_t floor_disagrees = 0;
  for (int k = 0; k <= 100; ++k) {
    const double c = double(k) / 100;
    for (double v : {std::nextafter(c, -1.0), c, std::nextafter(c, 2.0)}) {
      if (v < 0 || v > 1) continue;
      INFO("c = " << v);
      CHECK(histogram_bin(v, 100) == by_definition(v));
      floor_disagrees += std::min<std::size_t>(99, std::size_t(v * 100)) != by_definition(v);
    }
  }
  CHECK(floor_disagrees >= 11);          // the c = 0.7 and ten other values
  CHECK(histogram_bin(0.7, 100) == 69);  // 0.7 < 70 · 0.01 = 0.7000000000000001
  CHECK(histogram_bin(1.0, 100) == 99);
  CHECK(histogram_bin(0.0, 100) == 0);
  // a reference set holding a graph without nodes: its empty histograms are left out (NaN before)
  const CommunitySmall d = community_small(1);
  std::vector<AdjacencyLists> ref, gen;
  for (const auto& g : d.train) ref.push_back(adjacency_lists(g));
  for (const auto& g : d.test) gen.push_back(adjacency_lists(g));
  const GraphMmd clean = graph_mmd(ref, gen);
  ref.push_back({});
  const GraphMmd with_empty = graph_mmd(ref, gen);
  CHECK(std::isfinite(with_empty.clustering));
  CHECK(with_empty.clustering == clean.clustering);
  CHECK(with_empty.degree == clean.degree);
  CHECK_THROWS_AS(graph_mmd({AdjacencyLists{}}, gen), std::invalid_argument);
}

TEST_CASE("the published protocol: isolated nodes removed, draws scored apart, mean and spread",
          "[graphs][metrics]") {
  // a path 0-1-2 with isolated nodes 3 and 4 (and 0 isolated before it in another order)
  const AdjacencyLists g{{}, {2}, {1, 3}, {2}, {}};
  const AdjacencyLists r = remove_isolated(g);
  REQUIRE(r.size() == 3);
  CHECK(r[0] == std::vector<int>{1});
  CHECK(r[1] == std::vector<int>{0, 2});
  CHECK(r[2] == std::vector<int>{1});
  const CommunitySmall d = community_small(41);
  std::vector<AdjacencyLists> ref, gen;
  for (const auto& t : d.test) ref.push_back(adjacency_lists(t));
  for (std::size_t i = 0; i < 40; ++i) gen.push_back(adjacency_lists(d.train[i]));
  gen[3].push_back({});  // an isolated node: removed before scoring
  std::vector<std::size_t> draw(40);
  for (std::size_t i = 0; i < 40; ++i) draw[i] = i / 20;
  const GraphMmdDraws m = graph_mmd_draws(ref, gen, draw);
  REQUIRE(m.each.size() == 2);
  gen[3].pop_back();
  const GraphMmd a = graph_mmd(ref, {gen.begin(), gen.begin() + 20}),
                 b = graph_mmd(ref, {gen.begin() + 20, gen.end()});
  CHECK(m.each[0].degree == a.degree);
  CHECK(m.each[1].orbit == b.orbit);
  CHECK(m.mean.clustering == Approx((a.clustering + b.clustering) / 2));
  CHECK(m.sd.degree == Approx(std::abs(a.degree - b.degree) / std::sqrt(2.0)));
  // a draw of edgeless graphs has nothing to score: NaN, and so has the mean
  std::vector<AdjacencyLists> bare(gen.begin(), gen.begin() + 20);
  for (std::size_t i = 0; i < 20; ++i) bare.push_back(AdjacencyLists(5));
  const GraphMmdDraws e = graph_mmd_draws(ref, bare, draw);
  CHECK(std::isnan(e.each[1].degree));
  CHECK(std::isnan(e.mean.degree));
  CHECK_THROWS_WITH(graph_mmd_draws(ref, gen, {0, 1}), Catch::Contains("40 graphs but 2 draw"));
}
