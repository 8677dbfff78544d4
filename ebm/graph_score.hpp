// Score-based generation of graph structure with a noise-conditional graph energy, as EDP-GNN
// (Niu, Song, Song, Zhao, Grover & Ermon 2020) does it with a score network: the adjacency of a
// graph of n nodes (padded to N) is a vector u of its N(N−1)/2 pairs (i < j), A = sym(u); the
// data's u ∈ {0, 1} are perturbed by symmetric Gaussian noise ũ = u + σε at L levels σ_1 > ... >
// σ_L, and the model
//
//   E(ũ, σ) = Σ_{i<j present} β(ũ_ij, ℓ_σ(ũ; i, j), σ) + (1/σ) φ_σ(Σ_{i present} h_i)
//
//   β(ũ, ℓ, σ) = −log[π N(ũ; 1, σ²) + (1 − π) N(ũ; 0, σ²)] + const, π = s(ℓ) (s: logistic)
//              = ũ²/2σ² + softplus(ℓ) − softplus(ℓ + (2ũ − 1)/2σ²)
//
//   h = R-GCN over the relations {Ã, M} (Ã = sym(ũ) on the present nodes, M the complete graph
//       on them), node inputs [1, σ] on present nodes (absent nodes send and get no message),
//   ℓ_σ: an MLP of [ũ_ij, (Ã²)_ij / N, h_i + h_j, h_i ⊙ h_j] per pair (symmetric in i and j;
//       (Ã²)_ij counts common neighbours, which message passing from identical node inputs
//       cannot tell apart from degrees; EDP-GNN's "edge-wise dense prediction"), φ_σ an MLP of
//       the sum readout, each with one output per level.
//
// β is the smoothed Bernoulli energy: an edge present with probability π, seen through N(0, σ²)
// noise. With ℓ constant it is exactly −log q_σ of Erdős–Rényi graphs at density s(ℓ), so the
// model holds the right two-point law per pair at every σ (down to σ → 0, where a free network
// must carve ever sharper wells around 0 and 1), and the network learns how the rest of the
// graph moves each pair's log-odds; Tweedie's denoiser ũ − σ² ∂E/∂ũ is s(ℓ + (2ũ − 1)/2σ²), the
// posterior probability of the edge, when ℓ does not move with ũ_ij. Measured
// (docs/graphs.md): with a free pair term ψ_σ/σ in place of β the model's per-pair denoising
// error at σ = 0.2 and 0.1 stays above the Erdős–Rényi denoiser's and the chains lose edges
// there; with β it is below at every level. (GraphScoreOptions::bernoulli_pairs = false keeps
// the free form.)
//
// E is trained by multi-level denoising score matching (Vincent 2011; Song & Ermon 2019, the
// σ²-weighted loss): L = mean_b ½ Σ_{pairs present} (ε − σ ∇_ũ E(ũ, σ))², one level drawn per
// graph. Sampling: the node count n from the training graphs (EDP-GNN and GDSS fix it so), u from
// U(0, 1) on the present pairs, annealed Langevin (samplers/annealed_langevin.hpp) with the absent
// pairs masked (and, as EDP-GNN, a noise scale τ < 1 at the large levels if asked), Tweedie's
// denoising step, then A_ij = [u_ij > ½].
//
// The 1/σ factor on φ makes its score's scale follow the optimal one (|∇ log q_σ| ~ 1/σ, NCSNv2's
// s(x)/σ); the per-level outputs of ℓ and φ condition the rest (EDP-GNN's noise-conditioned output
// layers), and σ as a node input conditions the message passing.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autodiff/graph_layers.hpp"
#include "autodiff/higher_order.hpp"
#include "samplers/annealed_langevin.hpp"

namespace ebl {

/// A noise-conditional graph energy's shape and its noise levels.
struct GraphScoreOptions {
  std::size_t hidden = 64;  ///< channels of the node layers and of the pair and readout MLPs
  std::size_t depth = 3;    ///< relational convolution layers
  /// σ_1 > ... > σ_L; EDP-GNN's community-small levels
  std::vector<double> sigmas = {1.6, 0.8, 0.6, 0.4, 0.2, 0.1};
  /// The pair term's form: the smoothed Bernoulli energy of a log-odds the network gives (true),
  /// or the network's output itself over σ (false; see the top of the file)
  bool bernoulli_pairs = true;
};

/// The noise-conditional energy E(u, σ_k) over graphs' upper triangles u (see the top of the file).
template <class T>
class NoiseConditionalGraphEnergy {
 public:
  /// Graphs padded to `nodes` nodes.
  NoiseConditionalGraphEnergy(std::size_t nodes, const GraphScoreOptions& o, Rng& rng)
      : n_(nodes),
        o_(o),
        pair_in_(o.hidden, o.hidden, rng, "score.pair0"),
        pair_u_(2, o.hidden, rng, "score.pair0u"),
        pair_out_(o.hidden, o.sigmas.size(), rng, "score.pair1"),
        read_in_(o.hidden, o.hidden, rng, "score.read0"),
        read_out_(o.hidden, o.sigmas.size(), rng, "score.read1") {
    const double bound = 1 / std::sqrt(double(o.hidden));  // h_i ⊙ h_j's weights, as Linear's
    pair_mul_ = Parameter<T>("score.pair0m.W",
                             rng.uniform_array<T>(Shape{o.hidden, o.hidden}, -bound, bound));
    if (nodes < 2 || o.depth == 0 || o.hidden == 0 || o.sigmas.empty())
      throw std::invalid_argument(
          "NoiseConditionalGraphEnergy: needs two nodes, one layer, one channel and a noise level");
    for (std::size_t k = 0; k < o.sigmas.size(); ++k)
      if (!(o.sigmas[k] > 0) || (k > 0 && !(o.sigmas[k] < o.sigmas[k - 1])))
        throw std::invalid_argument(
            "NoiseConditionalGraphEnergy: the noise levels must be positive and decreasing");
    for (std::size_t l = 0; l < o.depth; ++l)
      layers_.emplace_back(l == 0 ? 2 : o.hidden, o.hidden, 2, rng, false,
                           fmt::format("score.rgcn{}", l));
    // pair p = (i, j), i < j, row-major; sym_[i·N + j] = p for i ≠ j, P (a zero column) for i = j
    sym_.assign(n_ * n_, pairs());
    for (std::size_t i = 0, p = 0; i < n_; ++i)
      for (std::size_t j = i + 1; j < n_; ++j, ++p) sym_[i * n_ + j] = sym_[j * n_ + i] = p;
    for (std::size_t i = 0; i < n_; ++i)
      for (std::size_t j = i + 1; j < n_; ++j)
        first_.push_back(i), second_.push_back(j), upper_.push_back(i * n_ + j);
  }

  /// N(N−1)/2, the length of u.
  std::size_t pairs() const { return n_ * (n_ - 1) / 2; }
  /// N, the padded node count.
  std::size_t nodes() const { return n_; }
  /// The noise levels.
  const std::vector<double>& sigmas() const { return o_.sigmas; }

  /// Energies [B] of u [B, P] for graphs with the node masks [B, N] (1: the node is present),
  /// graph b at noise level levels[b].
  Var<T> operator()(Tape<T>& t, Var<T> u, const Array<T>& masks,
                    std::span<const std::size_t> levels) {
    const Shape& s = u.shape();
    const std::size_t P = pairs(), L = o_.sigmas.size(), H = o_.hidden;
    if (s.size() != 2 || s[1] != P || masks.dimension() != 2 || masks.shape()[0] != s[0] ||
        masks.shape()[1] != n_ || levels.size() != s[0])
      throw ShapeError(fmt::format(
          "NoiseConditionalGraphEnergy: pairs {}, node masks {} and {} levels do not fit [B, {}], "
          "[B, {}] and B",
          shape_str(s), shape_str(masks.shape()), levels.size(), P, n_));
    const std::size_t B = s[0];
    const auto Bp = std::ptrdiff_t(B), N = std::ptrdiff_t(n_);
    // constants of the batch: the pair mask M, node inputs [m, m·σ], the level one-hots, 1/σ
    Array<T> pm(Shape{B, n_ * n_}), node_in(Shape{B, n_, 2}), pair_mask(Shape{B * P, 1}),
        pick(Shape{B, L}), pair_pick(Shape{B * P, L}), inv_sigma(Shape{B}),
        pair_inv_sigma(Shape{B * P, 1});
    pick.fill(T(0)), pair_pick.fill(T(0));
    for (std::size_t b = 0; b < B; ++b) {
      if (levels[b] >= L)
        throw std::invalid_argument(fmt::format(
            "NoiseConditionalGraphEnergy: level {} of graph {} (there are {})", levels[b], b, L));
      const double sigma = o_.sigmas[levels[b]];
      inv_sigma(b) = T(1 / sigma);
      pick(b, levels[b]) = T(1);
      for (std::size_t i = 0; i < n_; ++i) {
        node_in(b, i, 0) = masks(b, i);
        node_in(b, i, 1) = T(double(masks(b, i)) * sigma);
        for (std::size_t j = 0; j < n_; ++j)
          pm(b, i * n_ + j) = i == j ? T(0) : T(masks(b, i) * masks(b, j));
      }
      for (std::size_t p = 0; p < P; ++p) {
        pair_mask(b * P + p, 0) = T(masks(b, first_[p]) * masks(b, second_[p]));
        pair_pick(b * P + p, levels[b]) = T(1);
        pair_inv_sigma(b * P + p, 0) = T(1 / sigma);
      }
    }
    Var<T> M = t.constant(pm);
    // Ã = sym(u) on the present nodes: u with a zero column appended, read at sym_
    Var<T> u0 = concat({u, t.constant(Array<T>(xt::zeros<T>(Shape{B, 1})))}, 1);
    Var<T> a_tilde = mul(cols(u0, std::span<const std::size_t>(sym_)), M);
    // messages averaged over the N slots (sums would grow by ~N per layer)
    Var<T> A = reshape(concat({a_tilde, M}, 1), {Bp, 2, N, N}) * T(1 / double(n_));
    Var<T> h = t.constant(node_in);
    for (auto& layer : layers_) h = silu(layer(t, A, h));
    // the pair term: ψ(ũ_ij, h_i, h_j), summed over present pairs
    Var<T> hf = reshape(h, {Bp * N, std::ptrdiff_t(H)});
    std::vector<std::size_t> ri(B * P), rj(B * P);  // the tape copies them
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t p = 0; p < P; ++p)
        ri[b * P + p] = b * n_ + first_[p], rj[b * P + p] = b * n_ + second_[p];
    Var<T> hi = rows(hf, std::span<const std::size_t>(ri)),
           hj = rows(hf, std::span<const std::size_t>(rj));
    // the pair's own value and its common neighbours (Ã²)_ij / N: what closes triangles
    Var<T> a3 = reshape(a_tilde, {Bp, N, N});
    Var<T> a2 = cols(reshape(bmm(a3, a3), {Bp, N * N}), std::span<const std::size_t>(upper_));
    Var<T> up = concat({reshape(u, {Bp * std::ptrdiff_t(P), 1}),
                        reshape(a2, {Bp * std::ptrdiff_t(P), 1}) * T(1 / double(n_))},
                       1);
    Var<T> z =
        silu(pair_in_(t, hi + hj) + pair_u_(t, up) + matmul(mul(hi, hj), t.param(pair_mul_)));
    Var<T> psi = sum(mul(pair_out_(t, z), t.constant(pair_pick)), 1, true);  // [B·P, 1]
    if (o_.bernoulli_pairs) {
      // ψ = ℓ_ij, the log-odds of an edge: −log[π N(ũ; 1, σ²) + (1 − π) N(ũ; 0, σ²)], π = s(ℓ),
      // up to a constant is ũ²/2σ² + softplus(ℓ) − softplus(ℓ + (2ũ − 1)/2σ²)
      Array<T> c2 = T(0.5) * pair_inv_sigma * pair_inv_sigma;
      Var<T> uc = reshape(u, {Bp * std::ptrdiff_t(P), 1}), c = t.constant(c2);
      psi = mul(square(uc), c) + softplus(psi) - softplus(psi + mul(affine(uc, T(2), T(-1)), c));
    } else {
      psi = mul(psi, t.constant(pair_inv_sigma));
    }
    Var<T> pair_term = sum(reshape(mul(psi, t.constant(pair_mask)), {Bp, std::ptrdiff_t(P)}), 1);
    // the readout term: φ(Σ_present h_i) / σ
    Var<T> r = sum_readout(mul(h, reshape(t.constant(masks), {Bp, N, 1})));
    Var<T> phi = sum(mul(read_out_(t, silu(read_in_(t, r))), t.constant(pick)), 1);
    return pair_term + mul(phi, t.constant(inv_sigma));
  }

  /// Every layer's parameters.
  std::vector<Parameter<T>*> parameters() {
    std::vector<Parameter<T>*> ps;
    for (auto& layer : layers_)
      for (auto* p : layer.parameters()) ps.push_back(p);
    for (Linear<T>* l : {&pair_in_, &pair_u_, &pair_out_, &read_in_, &read_out_})
      for (auto* p : l->parameters()) ps.push_back(p);
    ps.push_back(&pair_mul_);
    return ps;
  }

 private:
  std::size_t n_;
  GraphScoreOptions o_;
  std::vector<RelationalGraphConv<T>> layers_;
  Linear<T> pair_in_, pair_u_, pair_out_, read_in_, read_out_;
  Parameter<T> pair_mul_;  // weights of h_i ⊙ h_j (no bias: pair_in_ has one)
  std::vector<std::size_t> sym_, first_, second_, upper_;
};

/// Multi-level denoising score matching (see the top of the file): one level drawn uniformly per
/// graph, symmetric noise on the present pairs, L = mean_b ½ Σ_p (ε − σ ∇_ũ E(ũ, σ))².
template <class T>
Var<T> graph_dsm_loss(NoiseConditionalGraphEnergy<T>& energy, Tape<T>& t, const Array<T>& u,
                      const Array<T>& masks, Rng& rng) {
  const std::size_t B = u.shape()[0], P = u.shape()[1], N = energy.nodes();
  if (masks.shape() != Shape{B, N} || P != energy.pairs())
    throw ShapeError(
        fmt::format("graph_dsm_loss: pairs {} and masks {} do not fit [B, {}], [B, {}]",
                    shape_str(u.shape()), shape_str(masks.shape()), energy.pairs(), N));
  std::vector<std::size_t> levels(B);
  Array<T> eps(Shape{B, P}), ut(Shape{B, P}), sig(Shape{B, 1});
  for (std::size_t b = 0; b < B; ++b) {
    levels[b] = rng.below(energy.sigmas().size());
    const double s = energy.sigmas()[levels[b]];
    sig(b, 0) = T(s);
    for (std::size_t i = 0, p = 0; i < N; ++i)
      for (std::size_t j = i + 1; j < N; ++j, ++p) {
        const bool present = masks(b, i) != T(0) && masks(b, j) != T(0);
        eps(b, p) = present ? T(rng.normal()) : T(0);
        ut(b, p) = T(double(u(b, p)) + s * double(eps(b, p)));
      }
  }
  Var<T> uv = t.input(ut, true);
  Var<T> g = grad_x(energy(t, uv, masks, levels), uv);
  Var<T> r = sub(t.constant(eps), mul(t.constant(sig), g));  // ε − σ ∇E(ũ, σ)
  return affine(mean(sum(square(r), 1, false)), T(0.5), T(0));
}

/// Draws one graph structure per entry of node_counts (n ≤ N nodes present, the rest padding):
/// u from U(0, 1) on the present pairs, annealed Langevin over the model's levels (the absent
/// pairs masked); returns the chains' last state u [B, P]. A graph is A_ij = [u_ij > ½]
/// (datasets/graphs.hpp's pairs_to_graphs).
template <class T>
Array<T> sample_graph_pairs(NoiseConditionalGraphEnergy<T>& energy,
                            const std::vector<std::size_t>& node_counts,
                            const AnnealedLangevinOptions& o, Rng& rng) {
  const std::size_t B = node_counts.size(), N = energy.nodes(), P = energy.pairs();
  Array<T> u(Shape{B, P}), pair_mask(Shape{B, P}), masks(Shape{B, N});
  for (std::size_t b = 0; b < B; ++b) {
    if (node_counts[b] > N)
      throw std::invalid_argument(fmt::format(
          "sample_graph_pairs: {} nodes asked of a model of {} slots", node_counts[b], N));
    for (std::size_t i = 0; i < N; ++i) masks(b, i) = T(i < node_counts[b] ? 1 : 0);
    for (std::size_t i = 0, p = 0; i < N; ++i)
      for (std::size_t j = i + 1; j < N; ++j, ++p) {
        pair_mask(b, p) = T(j < node_counts[b] ? 1 : 0);
        u(b, p) = T(pair_mask(b, p) * rng.uniform(0, 1));
      }
  }
  LevelEnergy<T> at_level = [&](std::size_t level) -> EnergyFn<T> {
    return [&energy, &masks, levels = std::vector<std::size_t>(B, level)](Tape<T>& t, Var<T> x) {
      return energy(t, x, masks, levels);
    };
  };
  annealed_langevin(at_level, energy.sigmas(), o, u, rng, &pair_mask);
  return u;
}

}  // namespace ebl
