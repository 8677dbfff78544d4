// Relational graph convolution for a batch of dense graphs (Schlichtkrull et al. 2018, as the
// graph EBMs use it: GraphEBM, Liu et al. 2021; Miglior et al. 2025):
//     H' = Σ_r A_r H W_r + H W_self + b,     A: [B, R, N, N] (one adjacency per relation),
//                                             H: [B, N, F] -> H': [B, N, F'],
// each weight optionally spectrally normalised (SpectralNorm). On the tape, per graph, with the
// adjacency's axes ordered (node i, relation r, node j):
//     Σ_r A_r H W_r = [A_1 H | A_2 H | ... | A_R H] [W_1; W_2; ...; W_R],
// one batched product of A viewed as [N·R, N] by H, whose result read as [N, R·F] (the same
// elements in the same order: a reshape, not a permute) is the left factor above, and one product
// by the weights stacked [R·F, F']: the sum over relations happens inside the second product.
// sum_readout sums the node features: a permutation-invariant graph feature [B, F'].
#pragma once

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autodiff/layers.hpp"
#include "autodiff/spectral_norm.hpp"

namespace ebl {

/// A relational graph convolution (Schlichtkrull et al. 2018, GraphEBM's layer; see the top of
/// this file): H' = Σ_r A_r H W_r + H W_self + b.
template <class T>
class RelationalGraphConv {
 public:
  static constexpr std::size_t kMaxRelations = 16;  ///< the most relations a layer takes
  /// Weights U(-1/√in, 1/√in), as Linear; with spectral_norm each of W_1..W_R and W_self is used
  /// divided by its largest singular value.
  RelationalGraphConv(std::size_t in, std::size_t out, std::size_t relations, Rng& rng,
                      bool spectral_norm = true, const std::string& name = "rgcn")
      : in_(in), out_(out), sn_(spectral_norm) {
    const double bound = 1 / std::sqrt(double(in));
    for (std::size_t r = 0; r <= relations; ++r) {  // r == relations: W_self
      Parameter<T> w(r < relations ? fmt::format("{}.W{}", name, r) : name + ".Wself",
                     rng.uniform_array<T>(Shape{in, out}, -bound, bound));
      weights_.emplace_back(std::move(w), rng);
    }
    b = Parameter<T>(name + ".b", rng.uniform_array<T>(Shape{out}, -bound, bound));
    if (relations == 0 || relations > kMaxRelations)
      throw std::invalid_argument(fmt::format(
          "RelationalGraphConv: {} relations (1 to {} supported)", relations, kMaxRelations));
    relations_ = relations;
  }

  /// A [B, R, N, N], H [B, N, F] -> [B, N, F']. update_sn: one power iteration per weight (a
  /// training forward); false while sampling.
  Var<T> operator()(Tape<T>& t, Var<T> A, Var<T> H, bool update_sn = false) {
    const Shape &as = A.shape(), &hs = H.shape();
    const std::size_t R = relations_;
    if (as.size() != 4 || hs.size() != 3 || as[0] != hs[0] || as[1] != R || as[2] != hs[1] ||
        as[3] != hs[1] || hs[2] != in_)
      throw ShapeError(fmt::format(
          "RelationalGraphConv: adjacency {} and features {} do not fit [B,{},N,N] and [B,N,{}]",
          shape_str(as), shape_str(hs), R, in_));
    const auto B = std::ptrdiff_t(hs[0]), N = std::ptrdiff_t(hs[1]), F = std::ptrdiff_t(in_),
               Fo = std::ptrdiff_t(out_), Rp = std::ptrdiff_t(R);
    // the relations' weights on this tape: on the stack, so that forwards on several threads'
    // tapes at once share nothing written (and a steady forward allocates nothing here)
    std::array<Var<T>, kMaxRelations> parts;
    for (std::size_t r = 0; r < R; ++r) parts[r] = weight(t, r, update_sn);
    // A [B, R, N, N] -> [B, N, R, N] -> [B, N·R, N]: row (i, r) holds A_r[i, :]
    Var<T> a = reshape(permute(A, {0, 2, 1, 3}), {B, N * Rp, N});
    Var<T> ah = reshape(bmm(a, H), {B * N, Rp * F});  // row (b, i): [(A_1 H)[i] | ... | (A_R H)[i]]
    Var<T> agg = matmul(ah, concat(std::span<const Var<T>>(parts.data(), R), 0));  // Σ_r A_r H W_r
    Var<T> self = linear(reshape(H, {B * N, F}), weight(t, R, update_sn), t.param(b));
    return reshape(agg + self, {B, N, Fo});
  }

  /// Every relation's weight, the self weight and the bias.
  std::vector<Parameter<T>*> parameters() {
    std::vector<Parameter<T>*> ps;
    for (auto& w : weights_) ps.push_back(&w.weight);
    ps.push_back(&b);
    return ps;
  }
  std::vector<SpectralNorm<T>>& weights() { return weights_; }  ///< W_1..W_R, then W_self

  Parameter<T> b;  ///< bias [out]

 private:
  Var<T> weight(Tape<T>& t, std::size_t r, bool update_sn) {
    return sn_ ? weights_[r](t, update_sn) : t.param(weights_[r].weight);
  }
  std::size_t in_, out_;
  bool sn_;
  std::vector<SpectralNorm<T>> weights_;
  std::size_t relations_ = 0;
};

/// Σ over the nodes: H [B, N, F] -> [B, F], invariant to the order of the nodes.
template <class T>
Var<T> sum_readout(Var<T> H) {
  return sum(H, 1);
}

}  // namespace ebl
