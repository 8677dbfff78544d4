// Block Gibbs sampling for a bipartite model (an RBM): all hidden units given the visible ones,
// then all visible units given the hidden ones,
//     h ~ p(h | v),  v ~ p(v | h),
// each layer a product of Bernoullis. The model provides hidden_probs(v, ph) and
// visible_probs(h, pv); the sampler knows nothing else about it.
#pragma once

#include <type_traits>
#include <vector>

#include "autodiff/interrupt.hpp"
#include "autodiff/random.hpp"

namespace ebl {

/// Bernoulli draws from probabilities, in place: p -> 1{u < p}, u ~ U[0, 1).
/// In float, u has 24 random bits (all a float probability resolves), two per 64-bit draw;
/// in double, 53 bits, one per draw.
template <class T>
void sample_bernoulli(T* p, std::size_t n, Rng& rng) {
  if constexpr (std::is_same_v<T, float>) {
    std::size_t i = 0;
    for (; i + 2 <= n; i += 2) {
      const std::uint64_t r = rng.next_u64();
      p[i] = float(r >> 40) * 0x1.0p-24f < p[i] ? 1.0f : 0.0f;
      p[i + 1] = float((r >> 8) & 0xFFFFFFu) * 0x1.0p-24f < p[i + 1] ? 1.0f : 0.0f;
    }
    if (i < n) p[i] = float(rng.next_u64() >> 40) * 0x1.0p-24f < p[i] ? 1.0f : 0.0f;
  } else {
    for (std::size_t i = 0; i < n; ++i) p[i] = rng.uniform() < double(p[i]) ? T(1) : T(0);
  }
}
template <class T>
void sample_bernoulli(Array<T>& p, Rng& rng) {
  sample_bernoulli(p.data(), p.size(), rng);
}

/// `sweeps` block-Gibbs sweeps of the chains v [n, V] in place; h [n, H] holds the last hidden
/// sample.
template <class T, class Model>
void block_gibbs(const Model& m, Array<T>& v, Array<T>& h, int sweeps, Rng& rng) {
  for (int s = 0; s < sweeps; ++s) {
    poll_interrupt();
    m.hidden_probs(v, h);
    sample_bernoulli(h, rng);
    m.visible_probs(h, v);
    sample_bernoulli(v, rng);
  }
}

/// The negative particles of an RBM trained by persistent CD: visible states v [n, V] and the
/// hidden sample h [n, H] ~ p(h | v) that continues each chain. Keeping h (as Tieleman's PCD
/// implementations and scikit-learn's BernoulliRBM do) lets a step reuse p(h | v⁻), which the
/// gradient computes anyway, as the next step's first half-sweep. An empty h is drawn on first use.
/// With persistent parallel tempering (ebm/rbm.hpp: tempered_gibbs), the chains at the hotter
/// levels of the ladder live here too, with the swap counts between neighbouring levels.
template <class T>
struct GibbsChains {
  Array<T> v;                                 ///< visible states [n, V]
  Array<T> h;                                 ///< hidden states [n, H]
  std::vector<Array<T>> hot_v{};              ///< levels 2 … K of the ladder: visible states
  std::vector<Array<T>> hot_h{};              ///< levels 2 … K of the ladder: hidden states
  std::vector<std::size_t> swaps_accepted{};  ///< per neighbouring pair of levels
  std::vector<std::size_t> swaps_proposed{};  ///< per neighbouring pair of levels
};

}  // namespace ebl
