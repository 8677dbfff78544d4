// The score-based graph generator: the noise-conditional graph energy (invariance, masking,
// gradients to second order through the DSM loss), annealed Langevin against the exact stationary
// law of its discretised Gaussian chain, and learning a graph's structure exactly.
#include <algorithm>
#include <numeric>

#include "autodiff/optim.hpp"
#include "datasets/graphs.hpp"
#include "ebm/graph_score.hpp"
#include "helpers.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {

// a graph of n present nodes in N slots with the given edges
TypedGraph graph_of(std::size_t N, std::size_t n, std::vector<std::pair<int, int>> edges) {
  TypedGraph g(N, 2, 2);
  for (std::size_t i = 0; i < n; ++i) g.nodes[i] = 0;
  for (auto [i, j] : edges) g.set_edge(std::size_t(i), std::size_t(j), 0);
  return g;
}

// whether two graphs on the first n slots are isomorphic (every permutation tried)
bool isomorphic(const TypedGraph& a, const TypedGraph& b, std::size_t n) {
  std::vector<std::size_t> p(n);
  std::iota(p.begin(), p.end(), 0);
  do {
    bool same = true;
    for (std::size_t i = 0; i < n && same; ++i)
      for (std::size_t j = i + 1; j < n && same; ++j)
        same = a.has_edge(i, j) == b.has_edge(p[i], p[j]);
    if (same) return true;
  } while (std::next_permutation(p.begin(), p.end()));
  return false;
}

}  // namespace

TEST_CASE("noise-conditional graph energy: invariant to node order, blind to padding, gradients",
          "[graphs][score]") {
  Rng rng(21);
  GraphScoreOptions o{.hidden = 6, .depth = 2, .sigmas = {1.0, 0.5, 0.25}};
  NoiseConditionalGraphEnergy<double> e(5, o, rng);
  REQUIRE(e.pairs() == 10);
  // two graphs: 4 present nodes (slot 4 padding) and 5, at levels 0 and 2
  std::vector<TypedGraph> gs{graph_of(5, 4, {{0, 1}, {1, 2}, {2, 3}}),
                             graph_of(5, 5, {{0, 4}, {1, 4}, {2, 3}, {0, 1}})};
  const std::vector<std::size_t> idx{0, 1}, levels{0, 2};
  PairRows<double> x = graphs_to_pairs<double>(gs, idx);
  Array<double> u = x.u + 0.3 * randn(x.u.shape(), 22);
  for (std::size_t p = 0; p < 10; ++p)  // padding pairs of graph 0 (those with node 4) hold 0
    if (p == 3 || p == 6 || p == 8 || p == 9) u(0, p) = 0;
  TD t;
  Var<double> y = e(t, t.constant(u), x.masks, levels);
  // permuting the nodes of graph 1 (u and its mask) leaves its energy unchanged
  const std::vector<std::size_t> perm{3, 0, 4, 1, 2};
  auto pair = [](std::size_t i, std::size_t j) {  // index of (min, max) among 5 nodes
    if (i > j) std::swap(i, j);
    std::size_t p = 0;
    for (std::size_t a = 0; a < i; ++a) p += 5 - a - 1;
    return p + (j - i - 1);
  };
  Array<double> up = u;
  for (std::size_t i = 0; i < 5; ++i)
    for (std::size_t j = i + 1; j < 5; ++j) up(1, pair(i, j)) = u(1, pair(perm[i], perm[j]));
  Var<double> yp = e(t, t.constant(up), x.masks, levels);
  CHECK(yp.value()(1) == Approx(y.value()(1)).epsilon(1e-12));
  CHECK(std::abs(y.value()(0) - y.value()(1)) > 1e-6);
  // a padding pair's value changes nothing; ∇ on padding pairs is exactly 0
  Array<double> u2 = u;
  u2(0, 9) = 0.7;
  Var<double> y2 = e(t, t.constant(u2), x.masks, levels);
  CHECK(y2.value()(0) == y.value()(0));
  Var<double> uv = t.input(u, true);
  Array<double> g = grad(sum(e(t, uv, x.masks, levels)), {uv})[0];
  for (std::size_t p : {3, 6, 8, 9}) CHECK(g(0, p) == 0.0);
  CHECK(std::abs(g(1, 9)) > 0);
  // the level matters: the same graph at another σ has another energy
  const std::vector<std::size_t> other{1, 2};
  CHECK(e(t, t.constant(u), x.masks, other).value()(0) != y.value()(0));
  // ∇u and ∇θ by central differences
  expect_gradients([&](TD& tt, In v) { return e(tt, v[0], x.masks, levels); }, {u}, e.parameters());
  CHECK_THROWS_WITH(e(t, t.constant(Array<double>::from_shape({2, 9})), x.masks, levels),
                    Catch::Contains("pairs [2,9], node masks [2,5] and 2 levels do not fit"));
  const std::vector<std::size_t> bad{0, 3};
  CHECK_THROWS_WITH(e(t, t.constant(u), x.masks, bad), Catch::Contains("level 3 of graph 1"));
}

TEST_CASE("graph DSM loss: the noise is symmetric and on present pairs, its θ-gradient checked",
          "[graphs][score]") {
  Rng rng(23);
  GraphScoreOptions o{.hidden = 5, .depth = 2, .sigmas = {0.8, 0.2}};
  NoiseConditionalGraphEnergy<double> e(4, o, rng);
  std::vector<TypedGraph> gs{graph_of(4, 3, {{0, 1}, {1, 2}}), graph_of(4, 4, {{0, 3}, {2, 3}})};
  const std::vector<std::size_t> idx{0, 1};
  const PairRows<double> x = graphs_to_pairs<double>(gs, idx);
  // the loss's gradient in θ goes through ∇_u E (a second-order path): central differences of
  // the loss, with the same noise drawn each time
  expect_gradients(
      [&](TD& tt, In) {
        Rng r(24);
        return graph_dsm_loss(e, tt, x.u, x.masks, r);
      },
      {}, e.parameters());
  // at a model with ∇E = 0 (the free pair form, every weight 0) the loss is ½ Σ ε² over present
  // pairs: its mean is ½ (3 + 6) / 2
  GraphScoreOptions free = o;
  free.bernoulli_pairs = false;
  NoiseConditionalGraphEnergy<double> flat(4, free, rng);
  for (auto* p : flat.parameters()) p->value.fill(0.0);
  Rng r(25);
  double mean = 0;
  const int reps = 2000;
  for (int k = 0; k < reps; ++k) {
    TD tt;
    mean += graph_dsm_loss(flat, tt, x.u, x.masks, r).item() / reps;
  }
  // ½ mean_b χ²: variance of the mean loss (¼ · 2·(3 + 6)/4) / reps; 4 standard errors
  CHECK(std::abs(mean - 2.25) < 4 * std::sqrt(0.25 * 2 * 9 / 4.0 / reps));
}

TEST_CASE("smoothed Bernoulli pairs: log-odds 0 give the exact score of fair-coin edges",
          "[graphs][score]") {
  // every weight 0: ℓ = 0 and φ = 0, so E(ũ, σ) = −Σ_present log[½ N(ũ; 1, σ²) + ½ N(ũ; 0, σ²)]
  // + const, the noisy law of independent fair-coin edges, whose score is known in closed form:
  // ∂E/∂ũ = (ũ − s((2ũ − 1)/2σ²)) / σ², s the logistic function (Tweedie: ũ − σ²∂E/∂ũ is the
  // posterior probability of the edge); absent pairs get 0
  Rng rng(30);
  GraphScoreOptions o{.hidden = 4, .depth = 1, .sigmas = {0.9, 0.3}};
  NoiseConditionalGraphEnergy<double> e(4, o, rng);
  for (auto* p : e.parameters()) p->value.fill(0.0);
  std::vector<TypedGraph> gs{graph_of(4, 3, {{0, 1}}), graph_of(4, 4, {{0, 3}, {1, 2}})};
  const std::vector<std::size_t> idx{0, 1}, levels{0, 1};
  const PairRows<double> x = graphs_to_pairs<double>(gs, idx);
  Array<double> u = uniform(Shape{2, 6}, 31, -1, 2);
  TD t;
  V uv = t.input(u, true);
  t.backward(sum(e(t, uv, x.masks, levels)), {uv});
  const Array<double>& g = t.grad(uv);
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t i = 0, p = 0; i < 4; ++i)
      for (std::size_t j = i + 1; j < 4; ++j, ++p) {
        const double s = o.sigmas[levels[b]], v = u(b, p);
        const bool present = x.masks(b, i) != 0 && x.masks(b, j) != 0;
        const double exact =
            present ? (v - 1 / (1 + std::exp(-(2 * v - 1) / (2 * s * s)))) / (s * s) : 0.0;
        INFO("graph " << b << " pair " << p);
        CHECK(g(b, p) == Approx(exact).margin(1e-12));
      }
}

TEST_CASE("annealed Langevin: the exact stationary variance of its last level, and Tweedie's step",
          "[samplers][score]") {
  // data N(μ, s²) per coordinate: q_σ = N(μ, s² + σ²), E(x, σ) = ‖x − μ‖² / 2(s² + σ²). The
  // last level's chain is x ← x − (α/2v)(x − μ) + τ√α z: AR(1) with stationary variance
  // τ² v / (1 − α/4v), v = s² + σ_L²; after Tweedie's step x − σ²(x − μ)/v: variance × (s²/v)².
  // τ = 1 is Song & Ermon's sampler, τ = 0.5 EDP-GNN's reduced noise.
  const double mu = 1.5, s2 = 0.25;
  const std::vector<double> sigmas = geometric_sigmas(2.0, 0.3, 5);
  LevelEnergy<double> energy = [&](std::size_t i) -> EnergyFn<double> {
    const double v = s2 + sigmas[i] * sigmas[i];
    return [v, mu](TD&, V x) { return affine(sum(square(affine(x, 1.0, -mu)), 1), 0.5 / v, 0.0); };
  };
  const std::size_t n = 4000, d = 2;
  // τ: none (1), one for every level, one per level (the last level's τ sets the variance)
  struct Case {
    bool denoise;
    std::vector<double> scales;
  };
  for (const Case& c :
       {Case{false, {}}, Case{true, {}}, Case{false, {0.5}}, Case{true, {0.5}},
        Case{false, {0.3, 0.3, 0.5, 0.5, 1.0}}, Case{true, {1.0, 1.0, 1.0, 1.0, 0.5}}}) {
    const bool denoise = c.denoise;
    const double tau = c.scales.empty() ? 1.0 : c.scales.back();
    AnnealedLangevinOptions o{
        .epsilon = 0.05, .steps = 60, .denoise = denoise, .noise_scales = c.scales};
    Rng rng(26);
    Array<double> x = uniform(Shape{n, d}, 27, -3, 3);
    annealed_langevin(energy, sigmas, o, x, rng);
    const double v = s2 + 0.09, a = o.epsilon;
    double var = tau * tau * v / (1 - a / (4 * v));
    if (denoise) var *= (s2 / v) * (s2 / v);
    double m = 0, q = 0;
    for (double z : x) m += z / double(x.size());
    for (double z : x) q += (z - m) * (z - m) / double(x.size() - 1);
    const double N = double(x.size());
    INFO("denoise " << denoise << " tau " << tau << " mean " << m << " var " << q << " exact "
                    << var);
    CHECK(std::abs(m - mu) < 4 * std::sqrt(var / N));
    CHECK(std::abs(q - var) < 4 * var * std::sqrt(2 / (N - 1)));
  }
  // a mask holds coordinates where they are
  Array<double> x = uniform(Shape{3, 2}, 28, 0, 1), mask(Shape{3, 2});
  mask.fill(1.0), mask(1, 0) = 0;
  const double kept = x(1, 0);
  Rng rng(29);
  annealed_langevin(energy, sigmas, AnnealedLangevinOptions{}, x, rng, &mask);
  CHECK(x(1, 0) == kept);
  CHECK(x(0, 0) != Approx(x(1, 0)));
  CHECK_THROWS_WITH(annealed_langevin(energy, {0.5, 1.0}, AnnealedLangevinOptions{}, x, rng),
                    Catch::Contains("decreasing"));
  CHECK_THROWS_WITH(
      annealed_langevin(energy, sigmas, AnnealedLangevinOptions{.noise_scales = {-1}}, x, rng),
      Catch::Contains("noise scale"));
  CHECK_THROWS_WITH(
      annealed_langevin(energy, sigmas, AnnealedLangevinOptions{.noise_scales = {1, 1}}, x, rng),
      Catch::Contains("2 noise scales for 5 levels"));
}

TEST_CASE("score-based graph generation learns a graph's structure", "[graphs][score]") {
  // data: one graph on 5 nodes (a triangle with a tail: degrees 2, 2, 3, 2, 1) in 6 slots, in
  // random node orders. Trained by multi-level DSM, annealed Langevin must give graphs
  // isomorphic to it (a point mass up to node order: the exact answer). The sampler is
  // EDP-GNN's, with the noise scaled by τ = 0.5 at every level: at τ = 1 the small levels'
  // chains still flip single edges (19 of 40 isomorphic when this was written).
  const TypedGraph target = graph_of(6, 5, {{0, 1}, {1, 2}, {0, 2}, {2, 3}, {3, 4}});
  std::vector<TypedGraph> data;
  Rng rng(31);
  for (int k = 0; k < 24; ++k) {
    std::vector<std::size_t> p = rng.permutation(5);
    TypedGraph g(6, 2, 2);
    for (std::size_t i = 0; i < 5; ++i) g.nodes[i] = 0;
    for (std::size_t i = 0; i < 5; ++i)
      for (std::size_t j = i + 1; j < 5; ++j)
        if (target.has_edge(i, j)) g.set_edge(p[i], p[j], 0);
    data.push_back(g);
  }
  GraphScoreOptions o{.hidden = 32, .depth = 3, .sigmas = {1.0, 0.5, 0.25, 0.1}};
  Rng init(32);
  NoiseConditionalGraphEnergy<float> e(6, o, init);
  Adam<float> opt(e.parameters(), {.lr = 3e-3});
  Rng r(33);
  std::vector<std::size_t> idx(data.size());
  std::iota(idx.begin(), idx.end(), 0);
  const PairRows<float> x = graphs_to_pairs<float>(data, idx);
  for (int s = 0; s < 3000; ++s) {
    Tape<float> t;
    Var<float> l = graph_dsm_loss(e, t, x.u, x.masks, r);
    opt.zero_grad();
    t.backward(l, {}, e.parameters());
    opt.step();
  }
  Rng g(34);
  const std::vector<std::size_t> counts(40, 5);
  const std::vector<TypedGraph> out = pairs_to_graphs(
      sample_graph_pairs(e, counts, {.epsilon = 5e-3, .steps = 200, .noise_scales = {0.5}}, g),
      counts, 6);
  std::size_t hits = 0;
  std::string edges;  // of every sample, for the failure message
  for (const auto& s : out) {
    CHECK(s.node_count() == 5);
    hits += isomorphic(s, target, 5);
    edges += std::to_string(s.edge_count()) + " ";
  }
  INFO("edges per sample: " << edges);
  // a 5-edge graph on 5 nodes drawn at random is one of the target's 60 labelled copies with
  // chance 60 / C(10, 5) = 24% (any graph: 60 / 2^10 = 6%); the model must give at least 80%
  INFO(hits << " of 40 isomorphic to the data graph");
  CHECK(hits >= 32);
}
