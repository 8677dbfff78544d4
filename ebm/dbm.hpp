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

#include "autodiff/blas.hpp"
#include "autodiff/interrupt.hpp"
#include "autodiff/optim.hpp"
#include "autodiff/random.hpp"
#include "ebm/rbm.hpp"

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
      l += detail::softplus_d(a);
    }
    return l;
  }

  /// log Σ_{h²} e^{−E(v, h¹, h²)}: h² summed out exactly (it touches only h¹).
  double log_sum_h2(const double* v, const double* h1) const {
    const std::size_t nv = visible(), n1 = hidden1(), n2 = hidden2();
    double l = 0;
    for (std::size_t i = 0; i < nv; ++i) l += b.value(i) * v[i];
    for (std::size_t j = 0; j < n1; ++j) {
      double a = c1.value(j);
      for (std::size_t i = 0; i < nv; ++i) a += v[i] * W1.value(i, j);
      l += a * h1[j];
    }
    for (std::size_t k = 0; k < n2; ++k) {
      double a = c2.value(k);
      for (std::size_t j = 0; j < n1; ++j) a += h1[j] * W2.value(j, k);
      l += detail::softplus_d(a);
    }
    return l;
  }
  /// log Σ_{v, h²} e^{−E(v, h¹, h²)}: given h¹, v and h² are independent and both sum out,
  ///   c¹ᵀh¹ + Σ_i softplus(b_i + (W¹h¹)_i) + Σ_k softplus(c²_k + (W²ᵀh¹)_k).
  double log_sum_v_h2(const double* h1) const {
    const std::size_t nv = visible(), n1 = hidden1(), n2 = hidden2();
    double l = 0;
    for (std::size_t j = 0; j < n1; ++j) l += c1.value(j) * h1[j];
    for (std::size_t i = 0; i < nv; ++i) {
      double a = b.value(i);
      for (std::size_t j = 0; j < n1; ++j) a += W1.value(i, j) * h1[j];
      l += detail::softplus_d(a);
    }
    for (std::size_t k = 0; k < n2; ++k) {
      double a = c2.value(k);
      for (std::size_t j = 0; j < n1; ++j) a += h1[j] * W2.value(j, k);
      l += detail::softplus_d(a);
    }
    return l;
  }
  /// Parameters: V·H₁ + H₁·H₂ + V + H₁ + H₂ (to compare with an RBM of as many).
  std::size_t parameter_count() const {
    return visible() * hidden1() + hidden1() * hidden2() + visible() + hidden1() + hidden2();
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

/// Which states an exact sum enumerates; the other layers are summed out in closed form.
enum class DbmEnumerate {
  Smaller,      ///< whichever of the two below has fewer states
  FirstHidden,  ///< h¹ (2^H₁ terms; v and h², independent given h¹, sum out)
  Outer,        ///< the layers around h¹: (v, h²) for log Z, h² for log p(v) (h¹ sums out)
};

/// Exact log Z: by enumerating h¹ (2^H₁ terms) or (v, h²) (2^(V + H₂) terms), the smaller by
/// default; at most 2^24 terms.
inline double dbm_exact_log_z(const Dbm& m, DbmEnumerate how = DbmEnumerate::Smaller) {
  const std::size_t nv = m.visible(), n1 = m.hidden1(), n2 = m.hidden2();
  const bool by_h1 =
      how == DbmEnumerate::FirstHidden || (how == DbmEnumerate::Smaller && n1 <= nv + n2);
  const std::size_t bits = by_h1 ? n1 : nv + n2;
  if (bits > 24)
    throw std::invalid_argument(
        fmt::format("dbm_exact_log_z: 2^{} states is too many to enumerate", bits));
  double lz = -std::numeric_limits<double>::infinity();
  if (by_h1) {
    std::vector<double> h1(n1);
    for (std::size_t s = 0; s < (std::size_t(1) << n1); ++s) {
      dbm_detail::bits(s, h1);
      lz = dbm_detail::log_add(lz, m.log_sum_v_h2(h1.data()));
    }
    return lz;
  }
  std::vector<double> v(nv), h2(n2);
  for (std::size_t s = 0; s < (std::size_t(1) << nv); ++s) {
    dbm_detail::bits(s, v);
    for (std::size_t t = 0; t < (std::size_t(1) << n2); ++t) {
      dbm_detail::bits(t, h2);
      lz = dbm_detail::log_add(lz, m.log_sum_h1(v.data(), h2.data()));
    }
  }
  return lz;
}

/// Exact log p(v) for one visible state given log Z: by enumerating h² (h¹ summed out) or h¹
/// (h² summed out), the smaller layer by default; at most 2^24 terms.
inline double dbm_exact_log_prob(const Dbm& m, const double* v, double log_z,
                                 DbmEnumerate how = DbmEnumerate::Smaller) {
  const std::size_t n1 = m.hidden1(), n2 = m.hidden2();
  const bool by_h1 = how == DbmEnumerate::FirstHidden || (how == DbmEnumerate::Smaller && n1 < n2);
  const std::size_t bits = by_h1 ? n1 : n2;
  if (bits > 24)
    throw std::invalid_argument(
        fmt::format("dbm_exact_log_prob: 2^{} hidden states is too many to enumerate", bits));
  std::vector<double> h(bits);
  double l = -std::numeric_limits<double>::infinity();
  for (std::size_t t = 0; t < (std::size_t(1) << bits); ++t) {
    dbm_detail::bits(t, h);
    l = dbm_detail::log_add(l, by_h1 ? m.log_sum_h2(v, h.data()) : m.log_sum_h1(v, h.data()));
  }
  return l - log_z;
}

/// Mean exact log p(v) over the rows of v [n, V] (dbm_exact_log_prob on each row).
inline double dbm_average_loglik(const Dbm& m, const Array<double>& v, double log_z) {
  if (v.dimension() != 2 || v.shape()[1] != m.visible() || v.shape()[0] == 0)
    throw std::invalid_argument(fmt::format("dbm_average_loglik: rows [n, {}] needed, got {}",
                                            m.visible(), shape_str(v.shape())));
  double s = 0;
  for (std::size_t r = 0; r < v.shape()[0]; ++r) {
    poll_interrupt();
    s += dbm_exact_log_prob(m, v.data() + r * m.visible(), log_z);
  }
  return s / double(v.shape()[0]);
}

/// A mean-field posterior q(h¹)q(h²) of one visible state.
struct MeanField {
  std::vector<double> mu1;  ///< q(h¹_j = 1)
  std::vector<double> mu2;  ///< q(h²_k = 1)
  int iterations = 0;       ///< sweeps until the largest change fell below the tolerance
};

/// Mean-field posteriors of a batch: rows of μ¹ [n, H₁] and μ² [n, H₂].
struct MeanFieldBatch {
  Array<double> mu1;   ///< q(h¹_j = 1) of every row
  Array<double> mu2;   ///< q(h²_k = 1) of every row
  int iterations = 0;  ///< sweeps until the largest change over all rows fell below the tolerance
};

namespace dbm_detail {
// out [n, H₁] = v W¹ + x₂ W²ᵀ + c¹ (x₂: h² states or μ²), by two GEMMs
inline void first_layer_input(const Dbm& m, const Array<double>& v, const Array<double>& x2,
                              Array<double>& out) {
  const std::size_t n = v.shape()[0], nv = m.visible(), n1 = m.hidden1(), n2 = m.hidden2();
  out.resize(Shape{n, n1});
  for (std::size_t r = 0; r < n; ++r) std::copy_n(m.c1.value.data(), n1, out.data() + r * n1);
  gemm<double>(false, false, n, n1, nv, 1.0, v.data(), nv, m.W1.value.data(), n1, 1.0, out.data(),
               n1);
  gemm<double>(false, true, n, n1, n2, 1.0, x2.data(), n2, m.W2.value.data(), n2, 1.0, out.data(),
               n1);
}
// out [n, H₂] = x₁ W² + c²
inline void second_layer_input(const Dbm& m, const Array<double>& x1, Array<double>& out) {
  const std::size_t n = x1.shape()[0], n1 = m.hidden1(), n2 = m.hidden2();
  out.resize(Shape{n, n2});
  for (std::size_t r = 0; r < n; ++r) std::copy_n(m.c2.value.data(), n2, out.data() + r * n2);
  gemm<double>(false, false, n, n2, n1, 1.0, x1.data(), n1, m.W2.value.data(), n2, 1.0, out.data(),
               n2);
}
// out [n, V] = h¹ W¹ᵀ + b
inline void visible_input(const Dbm& m, const Array<double>& h1, Array<double>& out) {
  const std::size_t n = h1.shape()[0], nv = m.visible(), n1 = m.hidden1();
  out.resize(Shape{n, nv});
  for (std::size_t r = 0; r < n; ++r) std::copy_n(m.b.value.data(), nv, out.data() + r * nv);
  gemm<double>(false, true, n, nv, n1, 1.0, h1.data(), n1, m.W1.value.data(), n1, 1.0, out.data(),
               nv);
}
}  // namespace dbm_detail

/// Mean-field inference for every row of v [n, V] at once: alternating updates
///   μ¹ = σ(c¹ + W¹ᵀv + W²μ²),   μ² = σ(c² + W²ᵀμ¹)
/// from μ² = ½, until the largest change over all rows is below tol (or max_iter sweeps).
inline MeanFieldBatch dbm_mean_field(const Dbm& m, const Array<double>& v, double tol = 1e-10,
                                     int max_iter = 500) {
  if (v.dimension() != 2 || v.shape()[1] != m.visible())
    throw std::invalid_argument(fmt::format("dbm_mean_field: rows [n, {}] needed, got {}",
                                            m.visible(), shape_str(v.shape())));
  const std::size_t n = v.shape()[0];
  MeanFieldBatch q{Array<double>(Shape{n, m.hidden1()}, 0.5),
                   Array<double>(Shape{n, m.hidden2()}, 0.5), 0};
  Array<double> a;
  for (int it = 1; it <= max_iter; ++it) {
    double change = 0;
    dbm_detail::first_layer_input(m, v, q.mu2, a);
    for (std::size_t i = 0; i < a.size(); ++i) {
      const double u = dbm_detail::sigmoid(a.data()[i]);
      change = std::max(change, std::abs(u - q.mu1.data()[i]));
      q.mu1.data()[i] = u;
    }
    dbm_detail::second_layer_input(m, q.mu1, a);
    for (std::size_t i = 0; i < a.size(); ++i) {
      const double u = dbm_detail::sigmoid(a.data()[i]);
      change = std::max(change, std::abs(u - q.mu2.data()[i]));
      q.mu2.data()[i] = u;
    }
    q.iterations = it;
    if (change < tol) break;
  }
  return q;
}

/// Mean-field inference for one visible state v (dbm_mean_field on a batch of one row).
inline MeanField dbm_mean_field(const Dbm& m, const double* v, double tol = 1e-10,
                                int max_iter = 500) {
  Array<double> row(Shape{1, m.visible()});
  std::copy_n(v, m.visible(), row.data());
  const MeanFieldBatch b = dbm_mean_field(m, row, tol, max_iter);
  return {std::vector<double>(b.mu1.begin(), b.mu1.end()),
          std::vector<double>(b.mu2.begin(), b.mu2.end()), b.iterations};
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

/// Mean of the mean-field lower bound on log p(v) over the rows of v [n, V] (dbm_mean_field, then
/// dbm_lower_bound on each row); with log Z from AIS when the model is too large to enumerate.
inline double dbm_average_lower_bound(const Dbm& m, const Array<double>& v, double log_z) {
  if (v.dimension() != 2 || v.shape()[1] != m.visible() || v.shape()[0] == 0)
    throw std::invalid_argument(fmt::format("dbm_average_lower_bound: rows [n, {}] needed, got {}",
                                            m.visible(), shape_str(v.shape())));
  const std::size_t n = v.shape()[0], n1 = m.hidden1(), n2 = m.hidden2();
  const MeanFieldBatch q = dbm_mean_field(m, v);
  double s = 0;
  MeanField row{std::vector<double>(n1), std::vector<double>(n2), q.iterations};
  for (std::size_t r = 0; r < n; ++r) {
    std::copy_n(q.mu1.data() + r * n1, n1, row.mu1.data());
    std::copy_n(q.mu2.data() + r * n2, n2, row.mu2.data());
    s += dbm_lower_bound(m, v.data() + r * m.visible(), row, log_z);
  }
  return s / double(n);
}

/// Annealed importance sampling of a DBM's log Z (Salakhutdinov & Hinton 2009, §4), on the
/// states (v, h²) with h¹ summed out. The base model A has independent visible units of biases
/// `base_bias` (e.g. the data's base rates, base_rate_bias) and free hidden units, so
///   log Z_A = Σ_i softplus(b_A,i) + (H₁ + H₂) log 2,
/// and the intermediate models, for β from 0 to 1 in `temperatures` equal steps, are
///   log p*_β(v, h²) = (1−β) b_Aᵀv + β (bᵀv + c²ᵀh²) + Σ_j softplus(β (c¹_j + (W¹ᵀv)_j + (W²h²)_j)),
/// the marginal of p_β(v, h¹, h²) ∝ exp((1−β) b_Aᵀv − β E(v, h¹, h²)), each moved by one block
/// Gibbs sweep of that joint law (h¹ | v, h²; then v, h² | h¹). Forward AIS: log_z is a
/// stochastic lower bound on log Z, log_z_bound its bound in expectation (AisResult).
inline AisResult dbm_ais(const Dbm& m, const Array<double>& base_bias, std::size_t runs,
                         std::size_t temperatures, Rng& rng) {
  const std::size_t nv = m.visible(), n1 = m.hidden1(), n2 = m.hidden2();
  if (base_bias.dimension() != 1 || base_bias.size() != nv)
    throw std::invalid_argument(fmt::format("dbm_ais: base biases {} for {} visible units",
                                            shape_str(base_bias.shape()), nv));
  if (runs < 1 || temperatures < 1)
    throw std::invalid_argument("dbm_ais: needs at least one run and one temperature");
  std::vector<double> v(nv), h1(n1), h2(n2), a1(n1);
  auto first_layer_input = [&] {  // a¹_j = c¹_j + (W¹ᵀv)_j + (W²h²)_j
    for (std::size_t j = 0; j < n1; ++j) {
      double a = m.c1.value(j);
      for (std::size_t i = 0; i < nv; ++i) a += v[i] * m.W1.value(i, j);
      for (std::size_t k = 0; k < n2; ++k) a += m.W2.value(j, k) * h2[k];
      a1[j] = a;
    }
  };
  auto log_p = [&](double beta) {  // log p*_β(v, h²), from a¹ of the current state
    double l = 0;
    for (std::size_t i = 0; i < nv; ++i)
      l += v[i] * ((1 - beta) * base_bias(i) + beta * m.b.value(i));
    for (std::size_t k = 0; k < n2; ++k) l += beta * m.c2.value(k) * h2[k];
    for (std::size_t j = 0; j < n1; ++j) l += detail::softplus_d(beta * a1[j]);
    return l;
  };
  std::vector<double> log_w(runs, 0.0);
  for (std::size_t r = 0; r < runs; ++r) {
    poll_interrupt();
    for (std::size_t i = 0; i < nv; ++i)  // an exact draw of the base model
      v[i] = rng.uniform() < dbm_detail::sigmoid(base_bias(i)) ? 1.0 : 0.0;
    for (std::size_t k = 0; k < n2; ++k) h2[k] = rng.uniform() < 0.5 ? 1.0 : 0.0;
    for (std::size_t t = 1; t <= temperatures; ++t) {
      const double b_prev = double(t - 1) / double(temperatures),
                   b_now = double(t) / double(temperatures);
      first_layer_input();
      log_w[r] += log_p(b_now) - log_p(b_prev);
      if (t == temperatures) break;
      // one block Gibbs sweep at β = b_now
      for (std::size_t j = 0; j < n1; ++j)
        h1[j] = rng.uniform() < dbm_detail::sigmoid(b_now * a1[j]) ? 1.0 : 0.0;
      for (std::size_t i = 0; i < nv; ++i) {
        double a = m.b.value(i);
        for (std::size_t j = 0; j < n1; ++j) a += m.W1.value(i, j) * h1[j];
        const double u = (1 - b_now) * base_bias(i) + b_now * a;
        v[i] = rng.uniform() < dbm_detail::sigmoid(u) ? 1.0 : 0.0;
      }
      for (std::size_t k = 0; k < n2; ++k) {
        double a = m.c2.value(k);
        for (std::size_t j = 0; j < n1; ++j) a += h1[j] * m.W2.value(j, k);
        h2[k] = rng.uniform() < dbm_detail::sigmoid(b_now * a) ? 1.0 : 0.0;
      }
    }
  }
  AisResult res;
  res.runs = runs;
  res.temperatures = temperatures;
  for (std::size_t i = 0; i < nv; ++i) res.log_z_base += detail::softplus_d(base_bias(i));
  res.log_z_base += double(n1 + n2) * std::log(2.0);
  detail::summarise_weights(log_w, +1, res);
  return res;
}

/// Options of greedy layer-wise pre-training (dbm_pretrain).
struct DbmPretrainOptions {
  std::size_t epochs = 20;     ///< passes over the data, for each of the two RBMs
  std::size_t batch = 20;      ///< mini-batch size
  double lr = 0.05;            ///< SGD learning rate
  double momentum = 0.5;       ///< SGD momentum
  double weight_decay = 1e-4;  ///< L2 penalty on the weights
};

/// Greedy layer-wise pre-training (Salakhutdinov & Hinton 2009, §3.1): two RBMs trained by CD-1,
/// then composed into the DBM. In the DBM, h¹ hears both v and h², so each RBM doubles the input
/// that will later be shared:
///   bottom RBM (v, h¹):  p(h¹ | v) = σ(2 W¹ᵀv + c_b),   p(v | h¹) = σ(W¹h¹ + b);
///   top RBM (h¹, h²):    p(h² | h¹) = σ(W²ᵀh¹ + c²),    p(h¹ | h²) = σ(2 W²h² + c_t),
/// the top one trained on the bottom one's p(h¹ | v) of the data. Composed: W¹, W², b and c² as
/// learned, c¹ = (c_b + c_t) / 2, so that the DBM's p(h¹ | v, h²) = σ(W¹ᵀv + W²h² + c¹) averages
/// the two doubled inputs. (The paper gives the weights' doubling, not the biases': halving the
/// sum of the two hidden biases is our choice.) The DBM's parameters are overwritten.
inline void dbm_pretrain(Dbm& m, const Array<double>& data, const DbmPretrainOptions& o, Rng& rng) {
  const std::size_t nv = m.visible(), n1 = m.hidden1(), n2 = m.hidden2();
  if (data.dimension() != 2 || data.shape()[1] != nv || data.shape()[0] == 0)
    throw std::invalid_argument(
        fmt::format("dbm_pretrain: data [n, {}] needed, got {}", nv, shape_str(data.shape())));
  if (o.epochs < 1 || o.batch < 1 || !(o.lr > 0))
    throw std::invalid_argument("dbm_pretrain: epochs, batch and lr must be positive");
  const std::size_t n = data.shape()[0], batch = std::min(o.batch, n);
  // CD-1 on one RBM with weights [nin, nout]: `up` and `down` scale the weights in each pass.
  auto train_rbm = [&](const Array<double>& x, Array<double>& W, Array<double>& bin,
                       Array<double>& bout, double up, double down) {
    const std::size_t nin = W.shape()[0], nout = W.shape()[1];
    Array<double> dW(W.shape(), 0.0), dbi(bin.shape(), 0.0), dbo(bout.shape(), 0.0);
    std::vector<double> p0(nout), h0(nout), v1(nin), p1(nout);
    std::vector<std::size_t> perm(n);
    for (std::size_t i = 0; i < n; ++i) perm[i] = i;
    auto hidden = [&](const double* in, std::vector<double>& p) {
      for (std::size_t j = 0; j < nout; ++j) {
        double a = bout(j);
        for (std::size_t i = 0; i < nin; ++i) a += up * in[i] * W(i, j);
        p[j] = dbm_detail::sigmoid(a);
      }
    };
    Array<double> gW(W.shape()), gbi(bin.shape()), gbo(bout.shape());
    for (std::size_t e = 0; e < o.epochs; ++e) {
      for (std::size_t i = n; i-- > 1;) std::swap(perm[i], perm[rng.below(i + 1)]);
      for (std::size_t start = 0; start + batch <= n; start += batch) {
        poll_interrupt();
        gW.fill(0), gbi.fill(0), gbo.fill(0);
        for (std::size_t r = start; r < start + batch; ++r) {
          const double* x0 = x.data() + perm[r] * nin;
          hidden(x0, p0);
          for (std::size_t j = 0; j < nout; ++j) h0[j] = rng.uniform() < p0[j] ? 1.0 : 0.0;
          for (std::size_t i = 0; i < nin; ++i) {
            double a = bin(i);
            for (std::size_t j = 0; j < nout; ++j) a += down * W(i, j) * h0[j];
            v1[i] = dbm_detail::sigmoid(a);  // the reconstruction's probabilities
          }
          hidden(v1.data(), p1);
          for (std::size_t i = 0; i < nin; ++i) {
            gbi(i) += x0[i] - v1[i];
            for (std::size_t j = 0; j < nout; ++j) gW(i, j) += x0[i] * p0[j] - v1[i] * p1[j];
          }
          for (std::size_t j = 0; j < nout; ++j) gbo(j) += p0[j] - p1[j];
        }
        const double scale = o.lr / double(batch);
        dW = o.momentum * dW + scale * gW - o.lr * o.weight_decay * W;
        dbi = o.momentum * dbi + scale * gbi;
        dbo = o.momentum * dbo + scale * gbo;
        W += dW, bin += dbi, bout += dbo;
      }
    }
  };
  Array<double> W1 = m.W1.value, b = Array<double>(Shape{nv}, 0.0), cb(Shape{n1}, 0.0);
  train_rbm(data, W1, b, cb, 2.0, 1.0);
  Array<double> mid(Shape{n, n1});  // the bottom RBM's p(h¹ | v) of the data
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t j = 0; j < n1; ++j) {
      double a = cb(j);
      for (std::size_t i = 0; i < nv; ++i) a += 2 * data(r, i) * W1(i, j);
      mid(r, j) = dbm_detail::sigmoid(a);
    }
  Array<double> W2 = m.W2.value, ct(Shape{n1}, 0.0), c2(Shape{n2}, 0.0);
  train_rbm(mid, W2, ct, c2, 1.0, 2.0);
  m.W1.value = W1;
  m.W2.value = W2;
  m.b.value = b;
  m.c1.value = 0.5 * (cb + ct);
  m.c2.value = c2;
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

/// k sweeps of block Gibbs on every chain: h¹ | (v, h²), then v | h¹ and h² | h¹ (each layer of
/// every chain at once: its inputs by GEMM, then one uniform per unit, row by row).
inline void dbm_gibbs(const Dbm& m, DbmChains& c, int k, Rng& rng) {
  const std::size_t nv = m.visible(), n1 = m.hidden1(), n2 = m.hidden2();
  if (c.v.dimension() != 2 || c.h1.dimension() != 2 || c.h2.dimension() != 2 ||
      c.v.shape()[1] != nv || c.h1.shape()[1] != n1 || c.h2.shape()[1] != n2 ||
      c.h1.shape()[0] != c.v.shape()[0] || c.h2.shape()[0] != c.v.shape()[0])
    throw std::invalid_argument("dbm_gibbs: the chains do not match the model's layers");
  Array<double> a;
  auto draw = [&](Array<double>& x) {
    for (std::size_t i = 0; i < a.size(); ++i)
      x.data()[i] = rng.uniform() < dbm_detail::sigmoid(a.data()[i]) ? 1.0 : 0.0;
  };
  for (int s = 0; s < k; ++s) {
    poll_interrupt();
    dbm_detail::first_layer_input(m, c.v, c.h2, a);
    draw(c.h1);
    dbm_detail::visible_input(m, c.h1, a);
    draw(c.v);
    dbm_detail::second_layer_input(m, c.h1, a);
    draw(c.h2);
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
  const std::size_t np = v_pos.shape()[0], nn = chains.v.shape()[0];
  const MeanFieldBatch q = dbm_mean_field(m, v_pos);
  // gradients of −log-likelihood: −⟨·⟩_data + ⟨·⟩_model, the pairwise terms by GEMM
  gemm<double>(true, false, nv, n1, np, -1.0 / double(np), v_pos.data(), nv, q.mu1.data(), n1, 0.0,
               m.W1.grad.data(), n1);
  gemm<double>(true, false, nv, n1, nn, 1.0 / double(nn), chains.v.data(), nv, chains.h1.data(), n1,
               1.0, m.W1.grad.data(), n1);
  gemm<double>(true, false, n1, n2, np, -1.0 / double(np), q.mu1.data(), n1, q.mu2.data(), n2, 0.0,
               m.W2.grad.data(), n2);
  gemm<double>(true, false, n1, n2, nn, 1.0 / double(nn), chains.h1.data(), n1, chains.h2.data(),
               n2, 1.0, m.W2.grad.data(), n2);
  auto unit_means = [](Array<double>& g, const Array<double>& pos, const Array<double>& neg) {
    const std::size_t d = g.size(), a = pos.shape()[0], b = neg.shape()[0];
    for (std::size_t r = 0; r < a; ++r)
      for (std::size_t i = 0; i < d; ++i) g(i) -= pos(r, i) / double(a);
    for (std::size_t r = 0; r < b; ++r)
      for (std::size_t i = 0; i < d; ++i) g(i) += neg(r, i) / double(b);
  };
  unit_means(m.b.grad, v_pos, chains.v);
  unit_means(m.c1.grad, q.mu1, chains.h1);
  unit_means(m.c2.grad, q.mu2, chains.h2);
  opt.step();
}

}  // namespace ebl
