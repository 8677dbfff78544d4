// Block Gibbs sampling for a bipartite model (an RBM): all hidden units given the visible ones,
// then all visible units given the hidden ones,
//     h ~ p(h | v),  v ~ p(v | h),
// each layer a product of Bernoullis. The model provides hidden_probs(v, ph) and
// visible_probs(h, pv); the sampler knows nothing else about it.
#pragma once

#include "autodiff/random.hpp"

namespace ebl {

/// Bernoulli draws from probabilities, in place: p -> 1{u < p}.
template <class T>
void sample_bernoulli(Array<T>& p, Rng& rng) {
  for (auto& x : p) x = rng.uniform() < double(x) ? T(1) : T(0);
}

/// `sweeps` block-Gibbs sweeps of the chains v [n, V] in place; h [n, H] holds the last hidden
/// sample.
template <class T, class Model>
void block_gibbs(const Model& m, Array<T>& v, Array<T>& h, int sweeps, Rng& rng) {
  for (int s = 0; s < sweeps; ++s) {
    m.hidden_probs(v, h);
    sample_bernoulli(h, rng);
    m.visible_probs(h, v);
    sample_bernoulli(v, rng);
  }
}

}  // namespace ebl
