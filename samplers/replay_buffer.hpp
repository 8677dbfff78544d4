// Persistent chains kept across training steps: a replay buffer of past samples (Du & Mordatch
// 2019, "IGEBM"; Grathwohl et al. 2020, "JEM"). Each training step draws a batch of chains; each
// drawn chain restarts from noise (uniform in a box) with probability ρ, default 0.05; after
// sampling, the chains are written back to the slots they came from.
#pragma once

#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "autodiff/random.hpp"

namespace ebl {

/// Persistent chains for CD (Du & Mordatch 2019): `capacity` states of `dim` coordinates, drawn at
/// random for each step and written back after it; a drawn chain restarts from uniform noise in
/// [lo, hi] with probability restart_prob.
template <class T>
class ReplayBuffer {
 public:
  /// A buffer filled with uniform noise from rng.
  ReplayBuffer(std::size_t capacity, std::size_t dim, double lo, double hi, double restart_prob,
               Rng& rng)
      : chains_(Shape{capacity, dim}), lo_(lo), hi_(hi), rho_(restart_prob) {
    if (capacity == 0 || dim == 0)
      throw std::invalid_argument("ReplayBuffer: capacity and dim must be > 0");
    if (!(restart_prob >= 0 && restart_prob <= 1))
      throw std::invalid_argument(
          fmt::format("ReplayBuffer: restart probability {} not in [0, 1]", restart_prob));
    for (auto& v : chains_) v = T(rng.uniform(lo_, hi_));
  }

  /// Draws `batch` chains (slots uniformly at random, with replacement) into x [batch, dim];
  /// each restarts from noise with probability ρ.
  void sample(std::size_t batch, Rng& rng, Array<T>& x) {
    const std::size_t d = dim();
    x.resize(Shape{batch, d});
    slots_.resize(batch);
    for (std::size_t i = 0; i < batch; ++i) {
      slots_[i] = rng.below(capacity());
      if (rng.bernoulli(rho_)) {
        ++restarts_;
        for (std::size_t k = 0; k < d; ++k) x(i, k) = T(rng.uniform(lo_, hi_));
      } else {
        std::copy_n(chains_.data() + slots_[i] * d, d, x.data() + i * d);
      }
      ++draws_;
    }
  }
  /// Writes the advanced chains back to the slots of the last sample().
  void update(const Array<T>& x) {
    if (x.shape()[0] != slots_.size() || x.shape()[1] != dim())
      throw ShapeError(fmt::format("ReplayBuffer::update: got {}, last sample was [{},{}]",
                                   shape_str(x.shape()), slots_.size(), dim()));
    for (std::size_t i = 0; i < slots_.size(); ++i)
      std::copy_n(x.data() + i * dim(), dim(), chains_.data() + slots_[i] * dim());
  }

  /// The number of chains kept.
  std::size_t capacity() const { return chains_.shape()[0]; }
  /// Coordinates per chain.
  std::size_t dim() const { return chains_.shape()[1]; }
  /// Chains restarted from noise so far.
  std::size_t restarts() const { return restarts_; }
  /// Chains drawn so far.
  std::size_t draws() const { return draws_; }
  /// The chains [capacity, dim] (for checkpoints).
  Array<T>& chains() { return chains_; }
  /// The chains, read-only.
  const Array<T>& chains() const { return chains_; }

 private:
  Array<T> chains_;
  double lo_, hi_, rho_;
  std::vector<std::size_t> slots_;
  std::size_t restarts_ = 0, draws_ = 0;
};

}  // namespace ebl
