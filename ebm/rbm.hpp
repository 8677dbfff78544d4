// The binary Restricted Boltzmann Machine (Smolensky 1986; Hinton 2002), the seed's example of a
// classic energy-based model, with visible v ∈ {0,1}^V and hidden h ∈ {0,1}^H:
//
//   E(v, h) = -vᵀb - cᵀh - vᵀWh                                  (W: [V, H], b: [V], c: [H])
//   F(v)    = -log Σ_h exp(-E(v, h)) = -vᵀb - Σ_j softplus(c_j + (vᵀW)_j)     (free energy)
//   p(h_j = 1 | v) = σ(c_j + (vᵀW)_j),   p(v_i = 1 | h) = σ(b_i + (Wh)_i)
//
// The log-likelihood gradient has a closed form (data minus model correlations), and the tape
// gives the same through F: ∇θ [mean F(v_data) - mean F(v_model)] = -(⟨·⟩_data - ⟨·⟩_model).
// Partition functions: exact by enumerating the smaller layer; otherwise annealed importance
// sampling (Salakhutdinov & Murray 2008) from a base-rate model.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include <fmt/format.h>
#include <xtensor/xmath.hpp>

#include "autodiff/blas.hpp"
#include "autodiff/interrupt.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/optim.hpp"
#include "autodiff/random.hpp"
#include "autodiff/vmath.hpp"
#include "distributed/data_parallel.hpp"
#include "io/checkpoint.hpp"
#include "samplers/gibbs.hpp"

namespace ebl {

/// A binary restricted Boltzmann machine, E(v, h) = −vᵀb − cᵀh − vᵀWh (see the top of this file).
template <class T>
class Rbm {
 public:
  /// Weights N(0, init_std²), biases 0 (Hinton's practical guide: init_std = 0.01).
  Rbm(std::size_t visible, std::size_t hidden, Rng& rng, double init_std = 0.01)
      : W("W", rng.normal_array<T>({visible, hidden}, 0.0, init_std)),
        b("b", Array<T>(Shape{visible}, T(0))),
        c("c", Array<T>(Shape{hidden}, T(0))) {}

  /// V, the number of visible units.
  std::size_t visible() const { return W.value.shape()[0]; }
  /// H, the number of hidden units.
  std::size_t hidden() const { return W.value.shape()[1]; }
  /// W, b and c, in that order (the gradients' order too).
  std::vector<Parameter<T>*> parameters() { return {&W, &b, &c}; }

  /// F(v) on the tape: v [n, V] -> [n].
  Var<T> free_energy(Tape<T>& t, Var<T> v) {
    Var<T> vb = sum(v * t.param(b), 1);
    return neg(vb) - sum(softplus(linear(v, t.param(W), t.param(c))), 1);
  }

  /// E(v, h) of one configuration, in double (for tests and enumeration).
  double energy(const T* v, const T* h) const {
    const std::size_t nv = visible(), nh = hidden();
    double e = 0;
    for (std::size_t i = 0; i < nv; ++i) e -= double(v[i]) * double(b.value(i));
    for (std::size_t j = 0; j < nh; ++j) e -= double(h[j]) * double(c.value(j));
    for (std::size_t i = 0; i < nv; ++i)
      for (std::size_t j = 0; j < nh; ++j) e -= double(v[i]) * double(W.value(i, j)) * double(h[j]);
    return e;
  }

  /// p(h = 1 | v) for a batch v [n, V] -> ph [n, H]. `beta` scales the model's terms (AIS).
  void hidden_probs(const Array<T>& v, Array<T>& ph, T beta = T(1)) const {
    const std::size_t n = v.shape()[0], nv = visible(), nh = hidden();
    ph.resize(Shape{n, nh});
    for (std::size_t r = 0; r < n; ++r) std::copy_n(c.value.data(), nh, ph.data() + r * nh);
    gemm<T>(false, false, n, nh, nv, T(1), v.data(), nv, W.value.data(), nh, T(1), ph.data(), nh);
    if (beta != T(1)) xt::noalias(ph) = beta * ph;
    vsigmoid(ph.data(), ph.data(), ph.size());  // in place, vectorised (autodiff/vmath.hpp)
  }
  /// p(v = 1 | h) for a batch h [n, H] -> pv [n, V]; with `base_bias`, the visible input is
  /// (1-β) base_bias + β (b + Wh) (the AIS intermediate models).
  void visible_probs(const Array<T>& h, Array<T>& pv, T beta = T(1),
                     const Array<T>* base_bias = nullptr) const {
    const std::size_t n = h.shape()[0], nv = visible(), nh = hidden();
    pv.resize(Shape{n, nv});
    for (std::size_t r = 0; r < n; ++r) std::copy_n(b.value.data(), nv, pv.data() + r * nv);
    gemm<T>(false, true, n, nv, nh, T(1), h.data(), nh, W.value.data(), nh, T(1), pv.data(), nv);
    if (base_bias)
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t i = 0; i < nv; ++i)
          pv(r, i) = beta * pv(r, i) + (T(1) - beta) * (*base_bias)(i);
    else if (beta != T(1))
      xt::noalias(pv) = beta * pv;
    vsigmoid(pv.data(), pv.data(), pv.size());
  }

  Parameter<T> W;  ///< weights [V, H]
  Parameter<T> b;  ///< visible biases [V]
  Parameter<T> c;  ///< hidden biases [H]
};

/// Buffers reused across training steps, so that a step allocates nothing.
template <class T>
struct RbmWorkspace {
  Array<T> stacked;           ///< v⁺ and v⁻ stacked into one batch
  Array<T> ph;                ///< p(h | v) of the stacked batch
  Array<T> weighted;          ///< the rows scaled by their weights
  std::vector<T> row_weight;  ///< +1/n⁺ for v⁺ rows, −1/n⁻ for v⁻ rows
};

/// The closed-form gradient of the average log-likelihood, for data v⁺ and model samples v⁻:
/// ∇W = ⟨v p(h|v)ᵀ⟩⁺ - ⟨v p(h|v)ᵀ⟩⁻, ∇b = ⟨v⟩⁺ - ⟨v⟩⁻, ∇c = ⟨p(h|v)⟩⁺ - ⟨p(h|v)⟩⁻
/// (the hidden units summed out exactly), written into g in the order of parameters(): W, b, c,
/// scaled by `scale` (-1 gives the gradient of -log p, for an optimizer).
/// NOTE: v⁺ and v⁻ are stacked into one batch with row weights +1/n⁺ and -1/n⁻, so the two
/// expectations cost one p(h|v) product and one ∇W product instead of two each: on the small
/// mini-batches of RBM training the BLAS call overhead is a large part of the step.
template <class T>
void rbm_loglik_gradient(const Rbm<T>& m, const Array<T>& v_pos, const Array<T>& v_neg,
                         std::vector<Array<T>*> g, RbmWorkspace<T>& ws, T scale = T(1)) {
  const std::size_t nv = m.visible(), nh = m.hidden(), np = v_pos.shape()[0], nn = v_neg.shape()[0],
                    n = np + nn;
  ws.stacked.resize(
      std::array<std::size_t, 2>{n, nv});  // (a Shape here trips a false g++ 12 warning)
  std::copy(v_pos.begin(), v_pos.end(), ws.stacked.begin());
  std::copy(v_neg.begin(), v_neg.end(), ws.stacked.begin() + std::ptrdiff_t(np * nv));
  ws.row_weight.assign(n, scale / T(np));
  std::fill(ws.row_weight.begin() + std::ptrdiff_t(np), ws.row_weight.end(), -scale / T(nn));
  m.hidden_probs(ws.stacked, ws.ph);
  ws.weighted.resize(ws.ph.shape());
  std::fill(g[1]->begin(), g[1]->end(), T(0));
  std::fill(g[2]->begin(), g[2]->end(), T(0));
  T *gb = g[1]->data(), *gc = g[2]->data();
  for (std::size_t r = 0; r < n; ++r) {  // raw rows, so that the compiler vectorises them
    const T w = ws.row_weight[r];
    const T *ph = ws.ph.data() + r * nh, *v = ws.stacked.data() + r * nv;
    T* weighted = ws.weighted.data() + r * nh;
    for (std::size_t j = 0; j < nh; ++j) {
      weighted[j] = w * ph[j];
      gc[j] += weighted[j];
    }
    for (std::size_t i = 0; i < nv; ++i) gb[i] += w * v[i];
  }
  gemm<T>(true, false, nv, nh, n, T(1), ws.stacked.data(), nv, ws.weighted.data(), nh, T(0),
          g[0]->data(), nh);
}

template <class T>
std::vector<Array<T>> rbm_loglik_gradient(const Rbm<T>& m, const Array<T>& v_pos,
                                          const Array<T>& v_neg) {
  std::vector<Array<T>> g = {Array<T>(m.W.value.shape()), Array<T>(m.b.value.shape()),
                             Array<T>(m.c.value.shape())};
  RbmWorkspace<T> ws;
  rbm_loglik_gradient(m, v_pos, v_neg, {&g[0], &g[1], &g[2]}, ws);
  return g;
}

namespace detail {
inline double softplus_d(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}
inline double log_sum_exp(const std::vector<double>& a) {
  double m = -std::numeric_limits<double>::infinity();
  for (double x : a) m = std::max(m, x);
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (double x : a) s += std::exp(x - m);
  return m + std::log(s);
}
}  // namespace detail

/// Exact log Z by enumerating the smaller layer (2^min(V, H) terms; up to 24 units):
/// summing out the other layer in closed form, e.g. over h: log Z = logsumexp_h [cᵀh + Σ_i softplus(b_i + (Wh)_i)].
template <class T>
double rbm_exact_log_z(const Rbm<T>& m) {
  const std::size_t nv = m.visible(), nh = m.hidden();
  const bool over_hidden = nh <= nv;
  const std::size_t k = over_hidden ? nh : nv, other = over_hidden ? nv : nh;
  if (k > 24)
    throw std::invalid_argument(
        fmt::format("rbm_exact_log_z: 2^{} states is too many to enumerate", k));
  std::vector<double> terms(std::size_t(1) << k);
  for (std::size_t s = 0; s < terms.size(); ++s) {
    double t = 0;
    for (std::size_t a = 0; a < k; ++a)
      if ((s >> a) & 1) t += over_hidden ? double(m.c.value(a)) : double(m.b.value(a));
    for (std::size_t o = 0; o < other; ++o) {
      double act = over_hidden ? double(m.b.value(o)) : double(m.c.value(o));
      for (std::size_t a = 0; a < k; ++a)
        if ((s >> a) & 1) act += over_hidden ? double(m.W.value(o, a)) : double(m.W.value(a, o));
      t += detail::softplus_d(act);
    }
    terms[s] = t;
  }
  return detail::log_sum_exp(terms);
}

/// F(v) per row, in double.
template <class T>
std::vector<double> rbm_free_energies(const Rbm<T>& m, const Array<T>& v) {
  const std::size_t n = v.shape()[0], nv = m.visible(), nh = m.hidden();
  std::vector<double> f(n, 0);
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t i = 0; i < nv; ++i) f[r] -= double(v(r, i)) * double(m.b.value(i));
    for (std::size_t j = 0; j < nh; ++j) {
      double act = double(m.c.value(j));
      for (std::size_t i = 0; i < nv; ++i) act += double(v(r, i)) * double(m.W.value(i, j));
      f[r] -= detail::softplus_d(act);
    }
  }
  return f;
}

/// Average log-likelihood of data under the model given log Z: mean(-F(v)) - log Z.
template <class T>
double rbm_average_loglik(const Rbm<T>& m, const Array<T>& v, double log_z) {
  double s = 0;
  for (double f : rbm_free_energies(m, v)) s -= f;
  return s / double(v.shape()[0]) - log_z;
}

/// The same with the rows of v split across the ranks of `comm` (every rank passes all of v):
/// each sums its block's free energies, one allreduce adds the sums. Collective; one rank: serial.
template <class T>
double rbm_average_loglik(Comm& comm, const Rbm<T>& m, const Array<T>& v, double log_z) {
  if (comm.size() == 1) return rbm_average_loglik(m, v, log_z);
  const std::size_t n = v.shape()[0], nv = m.visible();
  const RowBlock rb = row_block(n, comm);
  Array<T> mine(Shape{rb.size(), nv});
  std::copy_n(v.data() + rb.begin * nv, rb.size() * nv, mine.data());
  double s = 0;
  if (rb.size() > 0)
    for (double f : rbm_free_energies(m, mine)) s -= f;
  return allreduce_sum(comm, s) / double(n) - log_z;
}

/// Average pseudo-log-likelihood, Σ_i log p(v_i | v_-i) = Σ_i log σ(F(v with v_i flipped) - F(v)),
/// over every visible unit of every row (Besag 1975).
template <class T>
double rbm_pseudo_loglik(const Rbm<T>& m, const Array<T>& v) {
  const std::size_t n = v.shape()[0], nv = m.visible();
  std::vector<double> f = rbm_free_energies(m, v);
  Array<T> flipped = v;
  double total = 0;
  for (std::size_t i = 0; i < nv; ++i) {
    for (std::size_t r = 0; r < n; ++r) flipped(r, i) = T(1) - v(r, i);
    std::vector<double> ff = rbm_free_energies(m, flipped);
    for (std::size_t r = 0; r < n; ++r)
      total -= detail::softplus_d(-(ff[r] - f[r]));  // log σ(x) = -softplus(-x)
    for (std::size_t r = 0; r < n; ++r) flipped(r, i) = v(r, i);
  }
  return total / double(n);
}

/// How rbm_train_step estimates the model term.
struct RbmTrainOptions {
  int k = 1;                ///< Gibbs sweeps per step (CD-k, or PCD-k)
  bool persistent = false;  ///< PCD: chains carried across steps instead of restarted at the data
  /// Persistent parallel tempering (with persistent): the inverse temperatures of the ladder,
  /// 1 = β₁ > β₂ > … ≥ 0; empty: plain PCD.
  std::vector<double> tempering_betas{};
};

/// E(v, h) of every row of v [n, V] and h [n, H], in double: −vᵀb − cᵀh − (vᵀW) h.
template <class T>
std::vector<double> rbm_joint_energies(const Rbm<T>& m, const Array<T>& v, const Array<T>& h,
                                       Array<T>& vw) {
  const std::size_t n = v.shape()[0], nv = m.visible(), nh = m.hidden();
  vw.resize(Shape{n, nh});
  gemm<T>(false, false, n, nh, nv, T(1), v.data(), nv, m.W.value.data(), nh, T(0), vw.data(), nh);
  std::vector<double> e(n, 0.0);
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t i = 0; i < nv; ++i) e[r] -= double(v(r, i)) * double(m.b.value(i));
    for (std::size_t j = 0; j < nh; ++j)
      e[r] -= double(h(r, j)) * (double(m.c.value(j)) + double(vw(r, j)));
  }
  return e;
}

/// Persistent parallel tempering for an RBM (Desjardins, Courville, Bengio, Vincent & Delalleau
/// 2010): a ladder of inverse temperatures 1 = β₁ > … > β_K ≥ 0, level k holding n chains of
/// p_β(v, h) ∝ exp(−β E(v, h)) (at β = 0, independent fair coins). Each level takes `sweeps`
/// block-Gibbs sweeps at its β; then neighbouring levels, from the bottom up, exchange their
/// (v, h) states chain by chain with probability min(1, exp((β_k − β_{k+1}) (E_k − E_{k+1}))).
/// The β = 1 level (chains.v, chains.h) is the model's sample; the hot levels cross between
/// modes that Gibbs at β = 1 rarely leaves. Hot levels start as copies of chains.v.
template <class T>
void tempered_gibbs(const Rbm<T>& m, GibbsChains<T>& chains, const std::vector<double>& betas,
                    int sweeps, Rng& rng) {
  if (betas.empty() || betas[0] != 1.0)
    throw std::invalid_argument("tempered_gibbs: the ladder must start at beta = 1");
  for (std::size_t k = 1; k < betas.size(); ++k)
    if (!(betas[k] < betas[k - 1]) || betas[k] < 0)
      throw std::invalid_argument("tempered_gibbs: betas must decrease from 1 to >= 0");
  const std::size_t K = betas.size(), n = chains.v.shape()[0];
  if (chains.hot_v.size() != K - 1 || (K > 1 && chains.hot_v[0].shape() != chains.v.shape())) {
    chains.hot_v.assign(K - 1, chains.v);
    chains.hot_h.assign(K - 1, Array<T>{});
    chains.swaps_accepted.assign(K - 1, 0);
    chains.swaps_proposed.assign(K - 1, 0);
  }
  auto level_v = [&](std::size_t k) -> Array<T>& {
    return k == 0 ? chains.v : chains.hot_v[k - 1];
  };
  auto level_h = [&](std::size_t k) -> Array<T>& {
    return k == 0 ? chains.h : chains.hot_h[k - 1];
  };
  for (std::size_t k = 0; k < K; ++k)
    for (int s = 0; s < sweeps; ++s) {
      poll_interrupt();
      m.hidden_probs(level_v(k), level_h(k), T(betas[k]));
      sample_bernoulli(level_h(k), rng);
      m.visible_probs(level_h(k), level_v(k), T(betas[k]));
      sample_bernoulli(level_v(k), rng);
    }
  Array<T> vw;
  std::vector<std::vector<double>> e(K);
  for (std::size_t k = 0; k < K; ++k) e[k] = rbm_joint_energies(m, level_v(k), level_h(k), vw);
  const std::size_t nv = m.visible(), nh = m.hidden();
  for (std::size_t k = 0; k + 1 < K; ++k) {
    const double db = betas[k] - betas[k + 1];
    Array<T>&va = level_v(k), &vb = level_v(k + 1), &ha = level_h(k), &hb = level_h(k + 1);
    for (std::size_t i = 0; i < n; ++i) {
      ++chains.swaps_proposed[k];
      if (std::log(rng.uniform()) < db * (e[k][i] - e[k + 1][i])) {
        ++chains.swaps_accepted[k];
        std::swap_ranges(va.data() + i * nv, va.data() + (i + 1) * nv, vb.data() + i * nv);
        std::swap_ranges(ha.data() + i * nh, ha.data() + (i + 1) * nh, hb.data() + i * nh);
        std::swap(e[k][i], e[k + 1][i]);
      }
    }
  }
}

/// One CD-k / PCD-k step: negatives v⁻ by k block-Gibbs sweeps from the data batch (CD) or from
/// the persistent chains (PCD, advanced in place); the closed-form log-likelihood gradient,
/// negated into Parameter::grad, so that the optimizer (SGD with momentum and weight decay)
/// descends -log p. The workspace keeps the buffers between steps: a step allocates nothing.
/// For PCD the chains carry their hidden sample: a sweep ends with h ~ p(h | v⁻), and since the
/// gradient computes p(h | v⁻) anyway, the last step's copy of it starts the next sweep (drawn
/// under the parameters before that step's update, as in scikit-learn's BernoulliRBM).
///
/// Data-parallel (`comm` with more than one rank): every rank passes its own batch of the same
/// size, its own chains and its own generator; the gradients (means over each rank's rows) are
/// averaged by one allreduce before the optimiser's step, which every rank then takes alike.
template <class T>
void rbm_train_step(Rbm<T>& m, Optimizer<T>& opt, const Array<T>& v_pos, GibbsChains<T>& chains,
                    const RbmTrainOptions& o, Rng& rng, RbmWorkspace<T>& ws, Comm* comm = nullptr) {
  auto reduce = [&] {
    if (comm && comm->size() > 1)
      allreduce_gradients<T>(*comm, m.parameters(), {}, 1.0 / double(comm->size()));
  };
  if (o.k < 1)
    throw std::invalid_argument(
        fmt::format("rbm_train_step: k = {} Gibbs sweeps; need at least 1", o.k));
  if (!o.tempering_betas.empty()) {
    if (!o.persistent)
      throw std::invalid_argument("rbm_train_step: parallel tempering needs persistent chains");
    tempered_gibbs(m, chains, o.tempering_betas, o.k, rng);
    rbm_loglik_gradient(m, v_pos, chains.v, {&m.W.grad, &m.b.grad, &m.c.grad}, ws, T(-1));
    reduce();
    opt.step();
    return;
  }
  if (!o.persistent) {
    chains.v.resize(v_pos.shape());
    std::copy(v_pos.begin(), v_pos.end(), chains.v.begin());
    block_gibbs(m, chains.v, chains.h, o.k, rng);
  } else {
    const std::size_t n = chains.v.shape()[0];
    for (int s = 0; s < o.k; ++s) {
      poll_interrupt();
      if (s > 0 || chains.h.size() != n * m.hidden()) {  // (the first step of fresh chains draws h)
        m.hidden_probs(chains.v, chains.h);
        sample_bernoulli(chains.h, rng);
      }
      m.visible_probs(chains.h, chains.v);
      sample_bernoulli(chains.v, rng);
    }
  }
  rbm_loglik_gradient(m, v_pos, chains.v, {&m.W.grad, &m.b.grad, &m.c.grad}, ws, T(-1));
  if (o.persistent) {  // h ~ p(h | v⁻): the rows of v⁻ follow those of v⁺ in the stacked batch
    std::copy(ws.ph.begin() + std::ptrdiff_t(v_pos.shape()[0] * m.hidden()), ws.ph.end(),
              chains.h.begin());
    sample_bernoulli(chains.h, rng);
  }
  reduce();
  opt.step();
}

/// The RBM trainer's state, everything needed to continue a run exactly: the parameters under
/// `prefix` ("param/W", ...), the optimizer's buffers and step count, the chains (v, and h once
/// drawn) and the generator. Written to a Checkpoint (io/checkpoint.hpp: checked whole on load).
template <class T>
void rbm_save_state(Checkpoint& c, Rbm<T>& m, Optimizer<T>& opt, const GibbsChains<T>& chains,
                    const Rng& rng, const std::string& prefix = "") {
  put_training_state<T>(c, m.parameters(), opt, prefix);
  c.put(prefix + "chains/v", chains.v);
  c.put(prefix + "chains/h", chains.h);
  for (std::size_t k = 0; k < chains.hot_v.size(); ++k) {  // persistent parallel tempering
    c.put(fmt::format("{}chains/hot_v/{}", prefix, k), chains.hot_v[k]);
    c.put(fmt::format("{}chains/hot_h/{}", prefix, k), chains.hot_h[k]);
    c.integers[fmt::format("{}chains/swaps_accepted/{}", prefix, k)] = chains.swaps_accepted[k];
    c.integers[fmt::format("{}chains/swaps_proposed/{}", prefix, k)] = chains.swaps_proposed[k];
  }
  put_rng(c, rng, prefix + "rng");
}

/// Restores what rbm_save_state wrote into a trainer of the same shape (an IoError names the
/// first entry missing or of another shape).
template <class T>
void rbm_restore_state(const Checkpoint& c, Rbm<T>& m, Optimizer<T>& opt, GibbsChains<T>& chains,
                       Rng& rng, const std::string& prefix = "") {
  get_training_state<T>(c, m.parameters(), opt, prefix);
  for (auto [name, a] : {std::pair{"chains/v", &chains.v}, std::pair{"chains/h", &chains.h}}) {
    auto it = c.arrays.find(prefix + name);
    if (it == c.arrays.end())
      throw IoError(fmt::format("{}: no array '{}'", c.where(), prefix + name));
    a->resize(it->second.shape());  // h is empty until the chains have drawn it
    c.get(prefix + name, *a);
  }
  chains.hot_v.clear(), chains.hot_h.clear();
  chains.swaps_accepted.clear(), chains.swaps_proposed.clear();
  for (std::size_t k = 0;; ++k) {  // the hot levels of persistent parallel tempering, if any
    const std::string kv = fmt::format("{}chains/hot_v/{}", prefix, k),
                      kh = fmt::format("{}chains/hot_h/{}", prefix, k);
    auto v = c.arrays.find(kv), h = c.arrays.find(kh);
    if (v == c.arrays.end() || h == c.arrays.end()) break;
    chains.hot_v.push_back(Array<T>::from_shape(v->second.shape()));
    chains.hot_h.push_back(Array<T>::from_shape(h->second.shape()));
    c.get(kv, chains.hot_v.back());
    c.get(kh, chains.hot_h.back());
    chains.swaps_accepted.push_back(
        c.integer(fmt::format("{}chains/swaps_accepted/{}", prefix, k)));
    chains.swaps_proposed.push_back(
        c.integer(fmt::format("{}chains/swaps_proposed/{}", prefix, k)));
  }
  get_rng(c, rng, prefix + "rng");
}

/// An AIS estimate of log Z (rbm_ais, rbm_reverse_ais).
struct AisResult {
  double log_z =
      0;  ///< the estimate: log Z_A + log mean w (forward), log Z_A − log mean w (reverse)
  /// its standard error (delta method on the mean of the weights). NOTE: with heavy-tailed
  /// weights and few runs this underestimates the spread: for reverse AIS at 50 runs it came out
  /// about 20% below the standard deviation of log_z across independent replicates (measured by an
  /// independent reimplementation); run more runs, or replicate, before trusting a small
  /// difference.
  double std_err = 0;
  /// The bound in expectation: log Z_A + mean log w (forward: E ≤ log Z) or log Z_A − mean log w
  /// (reverse: E ≥ log Z), whose gap to log Z is the KL divergence between the annealing's
  /// forward and backward paths: it shows how far the schedule is from exact, where log_z (whose
  /// Jensen gap is only ~ std_err²/2) does not.
  double log_z_bound = 0;
  double bound_std_err = 0;      ///< sd(log w) / √runs
  double log_z_base = 0;         ///< log Z of the base model
  std::size_t runs = 0;          ///< annealing runs
  std::size_t temperatures = 0;  ///< intermediate temperatures per run
};

namespace detail {
/// One annealing pass shared by forward and reverse AIS. Intermediate model at inverse
/// temperature β between the base model A (β = 0) and the RBM (β = 1):
///   log p*_β(v) = (1-β) vᵀb_A + β vᵀb + Σ_j softplus(β (c_j + (vᵀW)_j)),
/// moved by one Gibbs sweep that leaves it invariant. The chains v [runs, V] start from the law
/// at betas[0] and visit betas[1], …, betas[K]; the log-weights Σ_k log p*_{β_k}(v_{k−1}) −
/// log p*_{β_{k−1}}(v_{k−1}) come back, where v_{k−1} is the state after the sweep at β_{k−1}.
/// Their mean estimates Z(β_K) / Z(β_0) without bias when the start is exact.
inline std::vector<double> rbm_anneal(const Rbm<double>& m, const Array<double>& base_bias,
                                      Array<double>& v, const std::vector<double>& betas,
                                      Rng& rng) {
  const std::size_t runs = v.shape()[0], nv = m.visible(), nh = m.hidden();
  std::vector<double> log_w(runs, 0.0);
  Array<double> h, pv, pre;
  // log p*_β(v) for every run
  auto log_p = [&](double beta, std::vector<double>& out) {
    pre.resize(Shape{runs, nh});
    for (std::size_t r = 0; r < runs; ++r) std::copy_n(m.c.value.data(), nh, pre.data() + r * nh);
    gemm<double>(false, false, runs, nh, nv, 1.0, v.data(), nv, m.W.value.data(), nh, 1.0,
                 pre.data(), nh);
    out.assign(runs, 0.0);
    for (std::size_t r = 0; r < runs; ++r) {
      for (std::size_t i = 0; i < nv; ++i)
        out[r] += v(r, i) * ((1 - beta) * base_bias(i) + beta * m.b.value(i));
      for (std::size_t j = 0; j < nh; ++j) out[r] += detail::softplus_d(beta * pre(r, j));
    }
  };
  std::vector<double> lp_prev, lp_next;
  const std::size_t K = betas.size() - 1;
  for (std::size_t k = 1; k <= K; ++k) {
    log_p(betas[k - 1], lp_prev);
    log_p(betas[k], lp_next);
    for (std::size_t r = 0; r < runs; ++r) log_w[r] += lp_next[r] - lp_prev[r];
    if (k == K) break;
    // one Gibbs sweep at β_k: h ~ p(h | v), v ~ p(v | h)
    m.hidden_probs(v, h, betas[k]);
    sample_bernoulli(h, rng);
    m.visible_probs(h, pv, betas[k], &base_bias);
    sample_bernoulli(pv, rng);
    v = pv;
  }
  return log_w;
}

/// Fills res from the log-weights with sign +1 (forward) or −1 (reverse): log mean w and its
/// standard error, se(log mean w) ≈ sd(w) / (√M mean(w)); mean log w and sd(log w) / √M.
inline void summarise_weights(const std::vector<double>& log_w, double sign, AisResult& res) {
  const std::size_t runs = log_w.size();
  const double log_mean = detail::log_sum_exp(log_w) - std::log(double(runs));
  double s2 = 0, mean_log = 0, s2_log = 0;
  for (double lw : log_w) {
    const double ratio = std::exp(lw - log_mean);  // w / mean(w)
    s2 += (ratio - 1) * (ratio - 1);
    mean_log += lw / double(runs);
  }
  for (double lw : log_w) s2_log += (lw - mean_log) * (lw - mean_log);
  const double root = std::sqrt(double(runs));
  res.log_z = res.log_z_base + sign * log_mean;
  res.std_err = runs > 1 ? std::sqrt(s2 / double(runs - 1)) / root : INFINITY;
  res.log_z_bound = res.log_z_base + sign * mean_log;
  res.bound_std_err = runs > 1 ? std::sqrt(s2_log / double(runs - 1)) / root : INFINITY;
}

// The log-weights of `runs` forward annealing runs from exact draws of the base model.
inline void check_base(const Rbm<double>& m, const Array<double>& base_bias,
                       std::size_t temperatures) {
  if (base_bias.dimension() != 1 || base_bias.size() != m.visible())
    throw std::invalid_argument(fmt::format("AIS: base biases {} for {} visible units",
                                            shape_str(base_bias.shape()), m.visible()));
  if (temperatures < 1) throw std::invalid_argument("AIS: needs at least one temperature");
}

inline std::vector<double> forward_log_weights(const Rbm<double>& m, const Array<double>& base_bias,
                                               std::size_t runs, std::size_t temperatures,
                                               Rng& rng) {
  check_base(m, base_bias, temperatures);
  const std::size_t nv = m.visible();
  Array<double> v(Shape{runs, nv});
  for (std::size_t r = 0; r < runs; ++r)
    for (std::size_t i = 0; i < nv; ++i)
      v(r, i) = rng.uniform() < 1 / (1 + std::exp(-base_bias(i))) ? 1.0 : 0.0;
  std::vector<double> betas(temperatures + 1);
  for (std::size_t k = 0; k <= temperatures; ++k) betas[k] = double(k) / double(temperatures);
  return rbm_anneal(m, base_bias, v, betas, rng);
}

inline double base_log_z(const Rbm<double>& m, const Array<double>& base_bias) {
  double z = 0;
  for (std::size_t i = 0; i < m.visible(); ++i) z += detail::softplus_d(base_bias(i));
  return z + double(m.hidden()) * std::log(2.0);  // each free hidden unit doubles Z
}

// The log-weights of reverse annealing runs from the given RBM states, back to the base model.
inline std::vector<double> reverse_log_weights(const Rbm<double>& m, const Array<double>& base_bias,
                                               Array<double> v, std::size_t temperatures,
                                               Rng& rng) {
  check_base(m, base_bias, temperatures);
  std::vector<double> betas(temperatures + 1);
  for (std::size_t k = 0; k <= temperatures; ++k) betas[k] = 1 - double(k) / double(temperatures);
  return rbm_anneal(m, base_bias, v, betas, rng);
}

inline void check_start_states(const Rbm<double>& m, const Array<double>& v_start) {
  if (v_start.dimension() != 2 || v_start.shape()[1] != m.visible() || v_start.shape()[0] < 1)
    throw std::invalid_argument(fmt::format("rbm_reverse_ais: start states {} for {} visible units",
                                            shape_str(v_start.shape()), m.visible()));
}

// The estimate from every run's log-weights: sign +1 forward (Z / Z_A), −1 reverse (Z_A / Z).
inline AisResult ais_result(const Rbm<double>& m, const Array<double>& base_bias,
                            std::size_t temperatures, const std::vector<double>& log_w,
                            double sign) {
  AisResult res;
  res.runs = log_w.size();
  res.temperatures = temperatures;
  res.log_z_base = base_log_z(m, base_bias);
  summarise_weights(log_w, sign, res);
  return res;
}
}  // namespace detail

/// Annealed importance sampling (Salakhutdinov & Murray 2008), forward: from the base model A
/// (visible biases base_bias, zero weights and hidden biases: its visible units are independent,
/// it is sampled exactly and log Z_A = Σ_i softplus(b_A,i) + H log 2) to the RBM over a linear
/// schedule of β. E[w] = Z / Z_A, so by Jensen's inequality E[log Ẑ] ≤ log Z: the estimate is a
/// stochastic lower bound (it underestimates log Z, overestimates the log-likelihood). In double.
inline AisResult rbm_ais(const Rbm<double>& m, const Array<double>& base_bias, std::size_t runs,
                         std::size_t temperatures, Rng& rng) {
  if (runs < 1) throw std::invalid_argument("AIS: needs at least one run");
  return detail::ais_result(m, base_bias, temperatures,
                            detail::forward_log_weights(m, base_bias, runs, temperatures, rng),
                            1.0);
}

/// Forward AIS with its runs split across the ranks of `comm` (rank r anneals its block of the
/// runs with its own generator): every rank's log-weights are gathered and summarised as one
/// estimate over all `runs`, the same on every rank. Collective; with one rank, rbm_ais.
inline AisResult rbm_ais(Comm& comm, const Rbm<double>& m, const Array<double>& base_bias,
                         std::size_t runs, std::size_t temperatures, Rng& rng) {
  if (runs < 1) throw std::invalid_argument("AIS: needs at least one run");
  if (comm.size() == 1) return rbm_ais(m, base_bias, runs, temperatures, rng);
  const std::vector<double> mine =
      detail::forward_log_weights(m, base_bias, row_block(runs, comm).size(), temperatures, rng);
  return detail::ais_result(m, base_bias, temperatures, allgather_rows<double>(comm, mine, runs),
                            1.0);
}

/// Reverse AIS (Burda, Grosse & Salakhutdinov 2015; the reverse half of Grosse et al.'s
/// bidirectional Monte Carlo): chains start at visible states v_start drawn from the RBM and are
/// annealed back to the base model over the same schedule; their weights have E[w] = Z_A / Z, so
/// log Ẑ = log Z_A − log mean w is a stochastic upper bound on log Z — with forward AIS, log Z is
/// bracketed from both sides. The bound holds when v_start are exact draws of the RBM (e.g.
/// rbm_exact_samples on a small model); started from data, as in RAISE, the estimate is an upper
/// bound only as far as the data look like the model's samples.
inline AisResult rbm_reverse_ais(const Rbm<double>& m, const Array<double>& base_bias,
                                 const Array<double>& v_start, std::size_t temperatures, Rng& rng) {
  detail::check_start_states(m, v_start);
  return detail::ais_result(m, base_bias, temperatures,
                            detail::reverse_log_weights(m, base_bias, v_start, temperatures, rng),
                            -1.0);
}

/// Reverse AIS with the start states' rows split across the ranks of `comm` (every rank passes
/// all of v_start and anneals its block of rows with its own generator); one estimate over all
/// runs, the same on every rank. Collective; with one rank, rbm_reverse_ais.
inline AisResult rbm_reverse_ais(Comm& comm, const Rbm<double>& m, const Array<double>& base_bias,
                                 const Array<double>& v_start, std::size_t temperatures, Rng& rng) {
  if (comm.size() == 1) return rbm_reverse_ais(m, base_bias, v_start, temperatures, rng);
  detail::check_start_states(m, v_start);
  const std::size_t runs = v_start.shape()[0], nv = m.visible();
  const RowBlock rb = row_block(runs, comm);
  Array<double> v(Shape{rb.size(), nv});
  std::copy_n(v_start.data() + rb.begin * nv, rb.size() * nv, v.data());
  const std::vector<double> mine = detail::reverse_log_weights(m, base_bias, v, temperatures, rng);
  return detail::ais_result(m, base_bias, temperatures, allgather_rows<double>(comm, mine, runs),
                            -1.0);
}

/// Exact draws of the visible units of a small RBM: the hidden layer's marginal
/// log p(h) = cᵀh + Σ_i softplus(b_i + (Wh)_i) − log Z enumerated (2^H states, H ≤ 20), h drawn
/// from it, then v ~ p(v | h).
inline Array<double> rbm_exact_samples(const Rbm<double>& m, std::size_t n, Rng& rng) {
  const std::size_t nv = m.visible(), nh = m.hidden();
  if (nh > 20)
    throw std::invalid_argument(
        fmt::format("rbm_exact_samples: 2^{} hidden states is too many to enumerate", nh));
  std::vector<double> log_p(std::size_t(1) << nh);
  for (std::size_t s = 0; s < log_p.size(); ++s) {
    double t = 0;
    for (std::size_t j = 0; j < nh; ++j)
      if ((s >> j) & 1) t += m.c.value(j);
    for (std::size_t i = 0; i < nv; ++i) {
      double act = m.b.value(i);
      for (std::size_t j = 0; j < nh; ++j)
        if ((s >> j) & 1) act += m.W.value(i, j);
      t += detail::softplus_d(act);
    }
    log_p[s] = t;
  }
  const double lz = detail::log_sum_exp(log_p);
  std::vector<double> cdf(log_p.size());
  double acc = 0;
  for (std::size_t s = 0; s < log_p.size(); ++s) cdf[s] = acc += std::exp(log_p[s] - lz);
  Array<double> h(Shape{n, nh}), v;
  for (std::size_t r = 0; r < n; ++r) {
    const double u = rng.uniform() * acc;
    const std::size_t s = std::size_t(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    for (std::size_t j = 0; j < nh; ++j) h(r, j) = double((std::min(s, cdf.size() - 1) >> j) & 1);
  }
  m.visible_probs(h, v);
  sample_bernoulli(v, rng);
  return v;
}

/// The base-rate model's visible biases from data: b_A,i = log(p_i / (1 - p_i)), p_i the mean of
/// v_i smoothed by `pseudo` counts so that no bias is infinite.
template <class T>
Array<double> base_rate_bias(const Array<T>& data, double pseudo = 1.0) {
  const std::size_t n = data.shape()[0], nv = data.shape()[1];
  Array<double> b = Array<double>::from_shape({nv});
  for (std::size_t i = 0; i < nv; ++i) {
    double s = 0;
    for (std::size_t r = 0; r < n; ++r) s += double(data(r, i));
    double p = (s + pseudo) / (double(n) + 2 * pseudo);
    b(i) = std::log(p / (1 - p));
  }
  return b;
}

}  // namespace ebl
