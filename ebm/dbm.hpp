// A deep Boltzmann machine with two hidden layers (Salakhutdinov & Hinton 2009), binary units
// v ∈ {0,1}^V, h¹ ∈ {0,1}^H₁, h² ∈ {0,1}^H₂:
//
//   E(v, h¹, h²) = −bᵀv − c¹ᵀh¹ − c²ᵀh² − vᵀW¹h¹ − h¹ᵀW²h²          (W¹: [V, H₁], W²: [H₁, H₂])
//
// Given v and h², the units of h¹ are independent (it sits between them), so h¹ sums out exactly:
//   log Σ_{h¹} e^{−E} = bᵀv + c²ᵀh² + Σ_j softplus(c¹_j + (vᵀW¹)_j + (W²h²)_j).
// That makes log Z exact by enumerating (v, h²) for small models, and log p(v) exact by
// enumerating h². The data term of learning needs p(h | v), which the DBM does not factorise:
// mean-field inference finds q(h¹)q(h²) with the fixed point
//   μ¹ = σ(c¹ + W¹ᵀv + W²μ²),   μ² = σ(c² + W²ᵀμ¹),
// and ln p(v) ≥ −E_q[E] + H(q) − ln Z (the variational lower bound). The model term comes from
// persistent chains moved by block Gibbs: h¹ | (v, h²), then (v, h²) | h¹ (independent given h¹).
#pragma once

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "autodiff/interrupt.hpp"
#include "autodiff/optim.hpp"
#include "autodiff/random.hpp"

namespace ebl {

/// A two-hidden-layer binary DBM in double (see the top of this file).
class Dbm {
 public:
  /// V visible, H₁ and H₂ hidden units: weights N(0, init_std²), biases 0.
  Dbm(std::size_t visible, std::size_t hidden1, std::size_t hidden2, Rng& rng,
      double init_std = 0.01)
      : W1("W1", rng.normal_array<double>({visible, hidden1}, 0.0, init_std)),
        W2("W2", rng.normal_array<double>({hidden1, hidden2}, 0.0, init_std)),
        b("b", Array<double>(Shape{visible}, 0.0)),
        c1("c1", Array<double>(Shape{hidden1}, 0.0)),
        c2("c2", Array<double>(Shape{hidden2}, 0.0)) {
    if (visible == 0 || hidden1 == 0 || hidden2 == 0)
      throw std::invalid_argument("Dbm: every layer needs at least one unit");
  }
  /// V.
  std::size_t visible() const { return W1.value.shape()[0]; }
  /// H₁.
  std::size_t hidden1() const { return W1.value.shape()[1]; }
  /// H₂.
  std::size_t hidden2() const { return W2.value.shape()[1]; }
  /// W¹, W², b, c¹, c², in that order.
  std::vector<Parameter<double>*> parameters() { return {&W1, &W2, &b, &c1, &c2}; }

  /// E(v, h¹, h²) of one joint state.
  double energy(const double* v, const double* h1, const double* h2) const {
    const std::size_t nv = visible(), n1 = hidden1(), n2 = hidden2();
    double e = 0;
    for (std::size_t i = 0; i < nv; ++i) e -= b.value(i) * v[i];
    for (std::size_t j = 0; j < n1; ++j) e -= c1.value(j) * h1[j];
    for (std::size_t k = 0; k < n2; ++k) e -= c2.value(k) * h2[k];
    for (std::size_t i = 0; i < nv; ++i)
      for (std::size_t j = 0; j < n1; ++j) e -= v[i] * W1.value(i, j) * h1[j];
    for (std::size_t j = 0; j < n1; ++j)
      for (std::size_t k = 0; k < n2; ++k) e -= h1[j] * W2.value(j, k) * h2[k];
    return e;
  }
  /// log Σ_{h¹} e^{−E(v, h¹, h²)}: h¹ summed out exactly.
  double log_sum_h1(const double* v, const double* h2) const {
    const std::size_t nv = visible(), n1 = hidden1(), n2 = hidden2();
    double l = 0;
    for (std::size_t i = 0; i < nv; ++i) l += b.value(i) * v[i];
    for (std::size_t k = 0; k < n2; ++k) l += c2.value(k) * h2[k];
    for (std::size_t j = 0; j < n1; ++j) {
      double a = c1.value(j);
      for (std::size_t i = 0; i < nv; ++i) a += v[i] * W1.value(i, j);
      for (std::size_t k = 0; k < n2; ++k) a += W2.value(j, k) * h2[k];
      l += a > 0 ? a + std::log1p(std::exp(-a)) : std::log1p(std::exp(a));
    }
    return l;
  }

  Parameter<double> W1;  ///< visible–first hidden weights [V, H₁]
  Parameter<double> W2;  ///< first–second hidden weights [H₁, H₂]
  Parameter<double> b;   ///< visible biases [V]
  Parameter<double> c1;  ///< first hidden layer's biases [H₁]
  Parameter<double> c2;  ///< second hidden layer's biases [H₂]
};

namespace dbm_detail {
inline double log_add(double a, double b) {
  if (a == -std::numeric_limits<double>::infinity()) return b;
  const double m = std::max(a, b);
  return m + std::log(std::exp(a - m) + std::exp(b - m));
}
inline void bits(std::size_t s, std::vector<double>& x) {
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = double((s >> i) & 1u);
}
inline double sigmoid(double a) {
  return 1 / (1 + std::exp(-a));
}
}  // namespace dbm_detail

/// Exact log Z by enumerating v and h² (h¹ summed out): 2^(V + H₂) terms, V + H₂ ≤ 24.
inline double dbm_exact_log_z(const Dbm& m) {
  const std::size_t nv = m.visible(), n2 = m.hidden2();
  if (nv + n2 > 24)
    throw std::invalid_argument(
        fmt::format("dbm_exact_log_z: 2^{} states is too many to enumerate", nv + n2));
  std::vector<double> v(nv), h2(n2);
  double lz = -std::numeric_limits<double>::infinity();
  for (std::size_t s = 0; s < (std::size_t(1) << nv); ++s) {
    dbm_detail::bits(s, v);
    for (std::size_t t = 0; t < (std::size_t(1) << n2); ++t) {
      dbm_detail::bits(t, h2);
      lz = dbm_detail::log_add(lz, m.log_sum_h1(v.data(), h2.data()));
    }
  }
  return lz;
}

/// Exact log p(v) for one visible state given log Z, by enumerating h² (H₂ ≤ 24).
inline double dbm_exact_log_prob(const Dbm& m, const double* v, double log_z) {
  const std::size_t n2 = m.hidden2();
  if (n2 > 24) throw std::invalid_argument("dbm_exact_log_prob: H2 > 24 is too many to enumerate");
  std::vector<double> h2(n2);
  double l = -std::numeric_limits<double>::infinity();
  for (std::size_t t = 0; t < (std::size_t(1) << n2); ++t) {
    dbm_detail::bits(t, h2);
    l = dbm_detail::log_add(l, m.log_sum_h1(v, h2.data()));
  }
  return l - log_z;
}

/// A mean-field posterior q(h¹)q(h²) of one visible state.
struct MeanField {
  std::vector<double> mu1;  ///< q(h¹_j = 1)
  std::vector<double> mu2;  ///< q(h²_k = 1)
  int iterations = 0;       ///< sweeps until the largest change fell below the tolerance
};

/// Mean-field inference for visible state v: alternating updates μ¹ = σ(c¹ + W¹ᵀv + W²μ²),
/// μ² = σ(c² + W²ᵀμ¹) from μ² = ½, until the largest change is below tol (or max_iter sweeps).
inline MeanField dbm_mean_field(const Dbm& m, const double* v, double tol = 1e-10,
                                int max_iter = 500) {
  const std::size_t nv = m.visible(), n1 = m.hidden1(), n2 = m.hidden2();
  MeanField q{std::vector<double>(n1, 0.5), std::vector<double>(n2, 0.5), 0};
  for (int it = 1; it <= max_iter; ++it) {
    double change = 0;
    for (std::size_t j = 0; j < n1; ++j) {
      double a = m.c1.value(j);
      for (std::size_t i = 0; i < nv; ++i) a += v[i] * m.W1.value(i, j);
      for (std::size_t k = 0; k < n2; ++k) a += m.W2.value(j, k) * q.mu2[k];
      const double u = dbm_detail::sigmoid(a);
      change = std::max(change, std::abs(u - q.mu1[j]));
      q.mu1[j] = u;
    }
    for (std::size_t k = 0; k < n2; ++k) {
      double a = m.c2.value(k);
      for (std::size_t j = 0; j < n1; ++j) a += q.mu1[j] * m.W2.value(j, k);
      const double u = dbm_detail::sigmoid(a);
      change = std::max(change, std::abs(u - q.mu2[k]));
      q.mu2[k] = u;
    }
    q.iterations = it;
    if (change < tol) break;
  }
  return q;
}

/// The variational lower bound on log p(v): −E_q[E(v, h¹, h²)] + H(q) − log Z.
inline double dbm_lower_bound(const Dbm& m, const double* v, const MeanField& q, double log_z) {
  const std::size_t n1 = m.hidden1(), n2 = m.hidden2();
  // E is linear in each unit, and q factorises: E_q[E] = E(v, μ¹, μ²)
  double l = -m.energy(v, q.mu1.data(), q.mu2.data());
  auto entropy = [](double p) {
    return (p > 0 ? -p * std::log(p) : 0.0) + (p < 1 ? -(1 - p) * std::log1p(-p) : 0.0);
  };
  for (std::size_t j = 0; j < n1; ++j) l += entropy(q.mu1[j]);
  for (std::size_t k = 0; k < n2; ++k) l += entropy(q.mu2[k]);
  return l - log_z;
}

/// Persistent chains of a DBM: rows of v [n, V], h¹ [n, H₁], h² [n, H₂].
struct DbmChains {
  Array<double> v;   ///< visible states
  Array<double> h1;  ///< first hidden layer's states
  Array<double> h2;  ///< second hidden layer's states
};

/// Fresh chains: n rows of uniform random binary states.
inline DbmChains dbm_chains(const Dbm& m, std::size_t n, Rng& rng) {
  DbmChains c{Array<double>(Shape{n, m.visible()}), Array<double>(Shape{n, m.hidden1()}),
              Array<double>(Shape{n, m.hidden2()})};
  for (auto* a : {&c.v, &c.h1, &c.h2})
    for (auto& x : *a) x = rng.uniform() < 0.5 ? 1.0 : 0.0;
  return c;
}

/// k sweeps of block Gibbs on every chain: h¹ | (v, h²), then v | h¹ and h² | h¹.
inline void dbm_gibbs(const Dbm& m, DbmChains& c, int k, Rng& rng) {
  const std::size_t n = c.v.shape()[0], nv = m.visible(), n1 = m.hidden1(), n2 = m.hidden2();
  if (c.v.shape()[1] != nv || c.h1.shape()[1] != n1 || c.h2.shape()[1] != n2)
    throw std::invalid_argument("dbm_gibbs: the chains do not match the model's layers");
  for (int s = 0; s < k; ++s) {
    poll_interrupt();
    for (std::size_t r = 0; r < n; ++r) {
      for (std::size_t j = 0; j < n1; ++j) {
        double a = m.c1.value(j);
        for (std::size_t i = 0; i < nv; ++i) a += c.v(r, i) * m.W1.value(i, j);
        for (std::size_t q = 0; q < n2; ++q) a += m.W2.value(j, q) * c.h2(r, q);
        c.h1(r, j) = rng.uniform() < dbm_detail::sigmoid(a) ? 1.0 : 0.0;
      }
      for (std::size_t i = 0; i < nv; ++i) {
        double a = m.b.value(i);
        for (std::size_t j = 0; j < n1; ++j) a += m.W1.value(i, j) * c.h1(r, j);
        c.v(r, i) = rng.uniform() < dbm_detail::sigmoid(a) ? 1.0 : 0.0;
      }
      for (std::size_t q = 0; q < n2; ++q) {
        double a = m.c2.value(q);
        for (std::size_t j = 0; j < n1; ++j) a += c.h1(r, j) * m.W2.value(j, q);
        c.h2(r, q) = rng.uniform() < dbm_detail::sigmoid(a) ? 1.0 : 0.0;
      }
    }
  }
}

/// One step of Salakhutdinov & Hinton's learning: the data term from mean-field posteriors of the
/// batch v [n, V], the model term from the persistent chains after k Gibbs sweeps; the optimizer
/// descends −(⟨·⟩_data − ⟨·⟩_model) for every parameter.
inline void dbm_train_step(Dbm& m, Optimizer<double>& opt, const Array<double>& v_pos,
                           DbmChains& chains, int k, Rng& rng) {
  const std::size_t nv = m.visible(), n1 = m.hidden1(), n2 = m.hidden2();
  if (v_pos.dimension() != 2 || v_pos.shape()[1] != nv || v_pos.shape()[0] == 0)
    throw std::invalid_argument(fmt::format("dbm_train_step: a batch of [n, {}] is needed, got {}",
                                            nv, shape_str(v_pos.shape())));
  if (k < 1) throw std::invalid_argument("dbm_train_step: needs at least one Gibbs sweep");
  dbm_gibbs(m, chains, k, rng);
  opt.zero_grad();
  const double np = double(v_pos.shape()[0]), nn = double(chains.v.shape()[0]);
  // gradients of −log-likelihood: −(data − model) statistics
  for (std::size_t r = 0; r < v_pos.shape()[0]; ++r) {
    const double* v = v_pos.data() + r * nv;
    const MeanField q = dbm_mean_field(m, v);
    for (std::size_t i = 0; i < nv; ++i) {
      m.b.grad(i) -= v[i] / np;
      for (std::size_t j = 0; j < n1; ++j) m.W1.grad(i, j) -= v[i] * q.mu1[j] / np;
    }
    for (std::size_t j = 0; j < n1; ++j) {
      m.c1.grad(j) -= q.mu1[j] / np;
      for (std::size_t t = 0; t < n2; ++t) m.W2.grad(j, t) -= q.mu1[j] * q.mu2[t] / np;
    }
    for (std::size_t t = 0; t < n2; ++t) m.c2.grad(t) -= q.mu2[t] / np;
  }
  for (std::size_t r = 0; r < chains.v.shape()[0]; ++r) {
    for (std::size_t i = 0; i < nv; ++i) {
      m.b.grad(i) += chains.v(r, i) / nn;
      for (std::size_t j = 0; j < n1; ++j) m.W1.grad(i, j) += chains.v(r, i) * chains.h1(r, j) / nn;
    }
    for (std::size_t j = 0; j < n1; ++j) {
      m.c1.grad(j) += chains.h1(r, j) / nn;
      for (std::size_t t = 0; t < n2; ++t)
        m.W2.grad(j, t) += chains.h1(r, j) * chains.h2(r, t) / nn;
    }
    for (std::size_t t = 0; t < n2; ++t) m.c2.grad(t) += chains.h2(r, t) / nn;
  }
  opt.step();
}

}  // namespace ebl
