// Graph energy-based models (GraphEBM, Liu, Yan, Oztekin & Ji 2021; Miglior, Simone, Podda &
// Bacciu 2025): an energy over graphs given as dense one-hot tensors (datasets/graphs.hpp), one
// graph a row x = [vec X | vec A] of a batch, so that Langevin, CD, the replay buffer and the
// composition operators take it as any other Energy.
//
//   E_θ(X, A) = w · Σ_nodes h_L + b,   h_0 = X,   h_{l+1} = SiLU(Σ_r Â_r h_l W_r^l + h_l W_self^l + b^l),
//   Â = A / n  (n nodes: GraphEBM's rescaling of one-hot adjacencies, whose rows sum to n)
//
// every W spectrally normalised (Miyato et al. 2018), a sum readout: E is invariant to permuting
// the nodes (X ← P X, A_r ← P A_r Pᵀ). As in GraphEBM's reference code (DIG), messages pass along
// all R edge channels, "no edge" included, and the first layer maps the F node channels.
//
// Spectral normalisation's power iteration is done once per training step by
// update_spectral_norm() (the reference does one per training forward); energies evaluated while
// sampling never change u, so the chains may run on several threads.
//
// The rows (one-hot, dequantised) are made and decoded by datasets/graphs.hpp (graphs_to_rows,
// unpack_graph).
#pragma once

#include <cstddef>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autodiff/graph_layers.hpp"
#include "autodiff/parallel.hpp"
#include "ebm/cd.hpp"
#include "ebm/energy.hpp"
#include "samplers/langevin.hpp"
#include "samplers/replay_buffer.hpp"

namespace ebl {

/// How a GraphEnergy passes messages. The defaults are GraphEBM's (DIG's EnergyFunc): 64
/// channels, 3 layers, spectral norm, messages along every channel of A ("no edge" included),
/// A scaled by 1/n as GraphEBM rescales its data.
struct GraphEnergyOptions {
  std::size_t hidden = 64;            ///< channels of every layer
  std::size_t depth = 3;              ///< relational convolution layers
  bool spectral_norm = true;          ///< spectrally normalised weights (GraphEBM's)
  bool none_channel_messages = true;  ///< false: messages along the bond channels only
  double adjacency_scale = 0;         ///< Â = scale · A; 0: 1/n
};

/// GraphEBM's energy (Liu et al. 2021): relational graph convolutions over packed graph rows
/// (datasets/graphs.hpp), a sum readout and a linear head.
template <class T>
class GraphEnergy : public Energy<T> {
 public:
  /// Graphs of `nodes` nodes with `node_types` and `edge_types` channels ("none" included): rows
  /// of nodes·node_types + edge_types·nodes² (X, then A; datasets/graphs.hpp packs them).
  GraphEnergy(std::size_t nodes, std::size_t node_types, std::size_t edge_types,
              const GraphEnergyOptions& o, Rng& rng, const std::string& name = "graph")
      : layout_{nodes, node_types, edge_types},
        relations_(o.none_channel_messages ? edge_types : edge_types - 1),
        scale_(o.adjacency_scale > 0 ? o.adjacency_scale : 1 / double(nodes)),
        head_(o.hidden, 1, rng) {
    if (o.depth == 0 || o.hidden == 0 || relations_ == 0)
      throw std::invalid_argument(
          "GraphEnergy: needs at least one layer of at least one channel, and one relation");
    for (std::size_t l = 0; l < o.depth; ++l)
      layers_.emplace_back(l == 0 ? layout_.node_types : o.hidden, o.hidden, relations_, rng,
                           o.spectral_norm, fmt::format("{}.rgcn{}", name, l));
    x_cols_.resize(layout_.x_size());
    a_cols_.resize(relations_ * nodes * nodes);  // A's first relations_ channels
    std::iota(x_cols_.begin(), x_cols_.end(), std::size_t(0));
    std::iota(a_cols_.begin(), a_cols_.end(), layout_.x_size());
  }
  /// `hidden` channels, `depth` layers, the other options GraphEBM's.
  GraphEnergy(std::size_t nodes, std::size_t node_types, std::size_t edge_types, std::size_t hidden,
              std::size_t depth, Rng& rng, bool spectral_norm = true)
      : GraphEnergy(
            nodes, node_types, edge_types,
            GraphEnergyOptions{.hidden = hidden, .depth = depth, .spectral_norm = spectral_norm},
            rng) {}

  /// x [B, dim()] -> energies [B].
  Var<T> operator()(Tape<T>& t, Var<T> x) override {
    const Shape& s = x.shape();
    if (s.size() != 2 || s[1] != layout_.dim())
      throw ShapeError(fmt::format(
          "GraphEnergy: input {} is not [B, {}] (graphs of {} nodes, {} node and {} edge types)",
          shape_str(s), layout_.dim(), layout_.nodes, layout_.node_types, layout_.edge_types));
    const auto B = std::ptrdiff_t(s[0]), N = std::ptrdiff_t(layout_.nodes),
               F = std::ptrdiff_t(layout_.node_types), R = std::ptrdiff_t(relations_);
    Var<T> X = reshape(cols(x, std::span<const std::size_t>(x_cols_)), {B, N, F});
    // A / n by default: for one-hot A (the "no edge" channel included) every row sums to n over
    // the channels, so this is GraphEBM's rescale_adj of the data; the chains get the same
    // constant (the reference rescales only the data), and the messages stay O(1) at any size
    Var<T> A = reshape(cols(x, std::span<const std::size_t>(a_cols_)), {B, R, N, N}) * T(scale_);
    Var<T> h = X;
    for (auto& layer : layers_) h = silu(layer(t, A, h, false));
    return reshape(head_(t, sum_readout(h)), {-1});
  }

  /// One power iteration of every spectrally normalised weight (once per training step).
  void update_spectral_norm() {
    for (auto& layer : layers_)
      for (auto& w : layer.weights()) w.power_iteration(1);
  }

  std::vector<Parameter<T>*> parameters() override {
    std::vector<Parameter<T>*> ps;
    for (auto& layer : layers_)
      for (auto* p : layer.parameters()) ps.push_back(p);
    for (auto* p : head_.parameters()) ps.push_back(p);
    return ps;
  }
  /// The length of a packed graph row.
  std::size_t dim() const { return layout_.dim(); }
  /// The convolution layers.
  std::vector<RelationalGraphConv<T>>& layers() { return layers_; }

 private:
  struct Layout {
    std::size_t nodes, node_types, edge_types;
    std::size_t x_size() const { return nodes * node_types; }
    std::size_t a_size() const { return edge_types * nodes * nodes; }
    std::size_t dim() const { return x_size() + a_size(); }
  } layout_;
  std::size_t relations_;
  double scale_;
  std::vector<RelationalGraphConv<T>> layers_;
  Linear<T> head_;
  std::vector<std::size_t> x_cols_, a_cols_;
};

/// GraphEBM's goal-directed loss (Liu et al. 2021, eq. 9), the labelled comparison of the
/// property-optimisation study: positives weighted by their property y,
///     L = mean_i [(1 + e^{y_i}) E(x⁺_i) − E(x⁻_i)] + α mean_i [E(x⁺_i)² + E(x⁻_i)²],
/// with one negative per positive (B rows each). weights holds 1 + e^{y_i}.
template <class T>
Var<T> goal_directed_loss(Energy<T>& energy, Tape<T>& t, const Array<T>& x_pos,
                          const Array<T>& x_neg, const Array<T>& weights, double alpha) {
  if (x_pos.shape() != x_neg.shape() || weights.dimension() != 1 ||
      weights.shape()[0] != x_pos.shape()[0])
    throw ShapeError(fmt::format(
        "goal_directed_loss: positives {}, negatives {} and weights {} do not match",
        shape_str(x_pos.shape()), shape_str(x_neg.shape()), shape_str(weights.shape())));
  Var<T> e_pos = energy(t, t.input(x_pos)), e_neg = energy(t, t.input(x_neg));
  Var<T> l = mean(t.constant(weights) * e_pos - e_neg);
  if (alpha != 0) l = l + T(alpha) * mean(square(e_pos) + square(e_neg));
  return l;
}

/// Trains an energy with the goal-directed loss: negatives as CD draws them (the Langevin dream
/// sampler of CdOptions, from noise or from a replay buffer), then one optimiser step on
/// goal_directed_loss with α = CdOptions::alpha. The divergence guard of CD: a non-finite loss, a
/// non-finite gradient, or |L| > loss_bound throws DivergenceError before the parameters change.
template <class T>
class GoalDirectedTrainer {
 public:
  /// Trains `energy` with `opt` (both referenced) by weighted CD with options o.
  GoalDirectedTrainer(Energy<T>& energy, Optimizer<T>& opt, const CdOptions& o, std::uint64_t seed,
                      std::size_t dim)
      : energy_(energy),
        opt_(opt),
        o_(o),
        params_(energy.parameters()),
        rng_(seed),
        sampler_([this](Tape<T>& t, Var<T> x) { return energy_(t, x); }, o.langevin),
        dim_(dim) {
    if (o.init == ChainInit::Persistent)
      buffer_.emplace(o.buffer_size, dim, o.noise_lo, o.noise_hi, o.restart_prob, rng_);
    if (o.init == ChainInit::Data)
      throw std::invalid_argument("GoalDirectedTrainer: chains start from noise or a buffer");
  }

  /// One step on positives x⁺ [B, dim] with weights 1 + e^{y} [B]; returns the loss.
  double step(const Array<T>& x_pos, const Array<T>& weights) {
    const std::size_t n = x_pos.shape()[0];
    std::optional<BlasSingleThreaded> one_blas_thread;
    if (o_.langevin.threads > 1) one_blas_thread.emplace();
    if (buffer_) {
      buffer_->sample(n, rng_, x_neg_);
    } else {
      x_neg_.resize(Shape{n, dim_});
      for (auto& v : x_neg_) v = T(rng_.uniform(o_.noise_lo, o_.noise_hi));
    }
    sampler_.run(x_neg_, rng_);
    tape_.clear();
    Var<T> l = goal_directed_loss(energy_, tape_, x_pos, x_neg_, weights, o_.alpha);
    const double loss = double(l.item());
    if (!std::isfinite(loss) || std::abs(loss) > o_.loss_bound)
      throw DivergenceError(
          fmt::format("goal-directed training diverged at step {}: loss {}", step_ + 1, loss));
    opt_.zero_grad();
    tape_.backward(l, {}, params_);
    checked_gradient_norm(params_, step_);
    opt_.step();
    if (buffer_) buffer_->update(x_neg_);
    ++step_;
    return loss;
  }

 private:
  Energy<T>& energy_;
  Optimizer<T>& opt_;
  CdOptions o_;
  std::vector<Parameter<T>*> params_;
  Rng rng_;
  Langevin<T> sampler_;
  std::size_t dim_;
  std::optional<ReplayBuffer<T>> buffer_;
  Array<T> x_neg_;
  Tape<T> tape_;
  long step_ = 0;
};

}  // namespace ebl
