// Spectral normalisation (Miyato et al., ICLR 2018) of any weight, as PyTorch's spectral_norm
// does it. The weight W, seen as a matrix [rows, cols] (rows = its first dimension, cols = the
// rest), is used as W / σ(W), where σ is its largest singular value, estimated by power
// iteration with a persistent left vector u:
//     v ← Wᵀu / ‖Wᵀu‖,   u ← W v / ‖W v‖,   σ = uᵀ W v.
// One iteration per training forward (update = true), none while sampling (update = false: the
// stored u and v). The gradient flows through σ with u and v held constant, ∂σ/∂W = u vᵀ, so on
// the tape σ = Σ (u vᵀ) ⊙ W and the weight used is W / σ.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "autodiff/ops.hpp"
#include "autodiff/random.hpp"

namespace ebl {

/// A weight divided by its largest singular value, estimated by power iteration (Miyato et al.
/// 2018; see the top of this file).
template <class T>
class SpectralNorm {
 public:
  /// Owns the weight; u starts as a normalised Gaussian draw (PyTorch's initialisation).
  SpectralNorm(Parameter<T> w, Rng& rng, double eps = 1e-12) : weight(std::move(w)), eps_(eps) {
    rows_ = weight.value.shape()[0];
    cols_ = weight.value.size() / rows_;
    u_ = rng.normal_array<T>(Shape{rows_});
    normalise(u_);
    v_ = Array<T>::from_shape({cols_});
    uv_ = Array<T>::from_shape(weight.value.shape());
    power_iteration(0);  // v from u, so that σ is defined before the first update
  }

  /// The normalised weight W / σ, of W's shape, on the tape. update: one power iteration first.
  Var<T> operator()(Tape<T>& t, bool update) {
    if (update) power_iteration(1);
    Var<T> w = t.param(weight);
    return w / sum(t.constant(uv_) * w);
  }

  /// k power iterations on the current weight, each v ← Wᵀu / ‖Wᵀu‖ then u ← W v / ‖W v‖ (PyTorch's
  /// order); k = 0 sets only v from u.
  void power_iteration(std::size_t k) {
    const T* W = weight.value.data();
    T *u = u_.data(), *v = v_.data();
    auto v_from_u = [&] {
      for (std::size_t c = 0; c < cols_; ++c) v[c] = 0;
      for (std::size_t r = 0; r < rows_; ++r)
        for (std::size_t c = 0; c < cols_; ++c) v[c] += W[r * cols_ + c] * u[r];
      normalise(v_);
    };
    if (k == 0) v_from_u();
    for (std::size_t it = 0; it < k; ++it) {
      v_from_u();
      for (std::size_t r = 0; r < rows_; ++r) {
        T s = 0;
        for (std::size_t c = 0; c < cols_; ++c) s += W[r * cols_ + c] * v[c];
        u[r] = s;
      }
      normalise(u_);
    }
    // u vᵀ, the constant of the forward: kept here, so that a forward without an update only
    // reads this object (forwards on several threads' tapes at once are then safe)
    for (std::size_t r = 0; r < rows_; ++r)
      for (std::size_t c = 0; c < cols_; ++c) uv_.data()[r * cols_ + c] = u[r] * v[c];
  }

  /// σ = uᵀ W v with the current u and v.
  double sigma() const {
    const T* W = weight.value.data();
    double s = 0;
    for (std::size_t r = 0; r < rows_; ++r)
      for (std::size_t c = 0; c < cols_; ++c)
        s += double(u_.data()[r]) * double(W[r * cols_ + c]) * double(v_.data()[c]);
    return s;
  }
  /// The left singular vector estimate.
  const Array<T>& u() const { return u_; }
  /// The right singular vector estimate.
  const Array<T>& v() const { return v_; }
  /// The raw weight (the only parameter).
  std::vector<Parameter<T>*> parameters() { return {&weight}; }

  Parameter<T> weight;  ///< W before normalisation

 private:
  void normalise(Array<T>& a) const {
    double n = 0;
    for (T x : a) n += double(x) * double(x);
    const T inv = T(1 / std::max(std::sqrt(n), eps_));
    for (T& x : a) x *= inv;
  }
  std::size_t rows_ = 0, cols_ = 0;
  Array<T> u_, v_, uv_;
  double eps_;
};

}  // namespace ebl
