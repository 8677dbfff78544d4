// The Gaussian–Bernoulli RBM: real visible units v ∈ ℝ^V, binary hidden units h ∈ {0,1}^H, in
// the parameterisation of Cho, Raiko & Ilin (2011, "Improved learning of Gaussian-Bernoulli
// restricted Boltzmann machines"), with the variances learned as z_i = log σ_i²:
//
//   E(v, h) = Σ_i (v_i − b_i)² / 2σ_i²  −  cᵀh  −  Σ_ij (v_i / σ_i²) W_ij h_j
//   p(h_j = 1 | v) = σ(c_j + Σ_i W_ij v_i / σ_i²),     p(v_i | h) = N(b_i + (Wh)_i, σ_i²)
//   F(v) = −log Σ_h e^{−E(v,h)} = Σ_i (v_i − b_i)² / 2σ_i² − Σ_j softplus(c_j + Σ_i W_ij v_i / σ_i²)
//
// Why this parameterisation and not Krizhevsky's (2009: v_i/σ_i in the interaction): here the
// conditional mean of v given h, b + Wh, does not depend on σ, the hidden units read v scaled by
// its precision (a noisy unit counts less), and the gradient in z stays well scaled as σ changes —
// Cho et al. show Krizhevsky's form makes learning the variances unstable. Learning z keeps σ > 0.
//
// Exact log Z for a few hidden units: completing the square in v, with μ(h) = b + Wh,
//   ∫ e^{−E(v,h)} dv = Π_i √(2πσ_i²) · exp(cᵀh + Σ_i (μ_i² − b_i²) / 2σ_i²),
// so Z is a sum of 2^H Gaussians' masses, and p(v) is a mixture of 2^H Gaussians N(μ(h), diag σ²)
// with weights ∝ exp(cᵀh + Σ_i (μ_i² − b_i²)/2σ_i²). Training descends mean F(v⁺) − mean F(v⁻)
// on the tape, the negatives from block Gibbs (CD-k, or persistent chains: PCD).
#pragma once

#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "autodiff/interrupt.hpp"
#include "autodiff/optim.hpp"
#include "ebm/energy.hpp"
#include "ebm/rbm.hpp"
#include "samplers/gibbs.hpp"

namespace ebl {

/// A Gaussian–Bernoulli RBM (see the top of this file). As an Energy it is its free energy F(v).
template <class T>
class GaussianRbm : public Energy<T> {
 public:
  /// V real visible and H binary hidden units: W ~ N(0, init_std²), b = c = 0, σ² = exp(log_var)
  /// for every unit; with learn_variance false, z stays fixed (not among the parameters).
  GaussianRbm(std::size_t visible, std::size_t hidden, Rng& rng, double init_std = 0.01,
              double log_var = 0, bool learn_variance = true)
      : W("W", rng.normal_array<T>({visible, hidden}, 0.0, init_std)),
        b("b", Array<T>(Shape{visible}, T(0))),
        c("c", Array<T>(Shape{hidden}, T(0))),
        z("z", Array<T>(Shape{visible}, T(log_var))),
        learn_variance_(learn_variance) {
    if (visible == 0 || hidden == 0)
      throw std::invalid_argument("GaussianRbm: needs at least one visible and one hidden unit");
  }

  /// V.
  std::size_t visible() const { return W.value.shape()[0]; }
  /// H.
  std::size_t hidden() const { return W.value.shape()[1]; }
  /// W, b, c and, when learned, z.
  std::vector<Parameter<T>*> parameters() override {
    if (learn_variance_) return {&W, &b, &c, &z};
    return {&W, &b, &c};
  }

  /// F(v) on the tape: v [n, V] -> [n].
  Var<T> operator()(Tape<T>& t, Var<T> v) override {
    if (v.shape().size() != 2 || v.shape()[1] != visible())
      throw ShapeError(
          fmt::format("GaussianRbm: input {} is not [n, {}]", shape_str(v.shape()), visible()));
    Var<T> prec = exp(neg(t.param(z)));                     // 1/σ² [V]
    Var<T> d = v - t.param(b);                              // [n, V]
    Var<T> quad = T(0.5) * sum(square(d) * prec, 1);        // Σ_i (v_i − b_i)² / 2σ_i²
    Var<T> act = linear(v * prec, t.param(W), t.param(c));  // c + Wᵀ(v/σ²), [n, H]
    return quad - sum(softplus(act), 1);
  }

  /// E(v, h) of one visible and one hidden state, in double.
  double energy(const T* v, const T* h) const {
    const std::size_t nv = visible(), nh = hidden();
    double e = 0;
    for (std::size_t i = 0; i < nv; ++i) {
      const double s2 = std::exp(double(z.value(i))), d = double(v[i]) - double(b.value(i));
      e += d * d / (2 * s2);
      for (std::size_t j = 0; j < nh; ++j)
        e -= double(v[i]) / s2 * double(W.value(i, j)) * double(h[j]);
    }
    for (std::size_t j = 0; j < nh; ++j) e -= double(c.value(j)) * double(h[j]);
    return e;
  }

  /// The visible units' precisions 1/σ_i² = exp(−z_i), in double.
  std::vector<double> precisions() const {
    std::vector<double> p(visible());
    for (std::size_t i = 0; i < p.size(); ++i) p[i] = std::exp(-double(z.value(i)));
    return p;
  }

  /// p(h = 1 | v) for a batch v [n, V] -> ph [n, H].
  void hidden_probs(const Array<T>& v, Array<T>& ph) const {
    const std::size_t n = v.shape()[0], nv = visible(), nh = hidden();
    const std::vector<double> prec = precisions();
    ph.resize(Shape{n, nh});
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t j = 0; j < nh; ++j) {
        double a = double(c.value(j));
        for (std::size_t i = 0; i < nv; ++i) a += double(W.value(i, j)) * double(v(r, i)) * prec[i];
        ph(r, j) = T(1 / (1 + std::exp(-a)));
      }
  }
  /// Draws v ~ p(v | h) = N(b + Wh, diag σ²) for a batch h [n, H] into v [n, V].
  void sample_visible(const Array<T>& h, Array<T>& v, Rng& rng) const {
    const std::size_t n = h.shape()[0], nv = visible(), nh = hidden();
    v.resize(Shape{n, nv});
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t i = 0; i < nv; ++i) {
        double mu = double(b.value(i));
        for (std::size_t j = 0; j < nh; ++j) mu += double(W.value(i, j)) * double(h(r, j));
        v(r, i) = T(mu + std::exp(0.5 * double(z.value(i))) * rng.normal());
      }
  }

  Parameter<T> W;  ///< weights [V, H]
  Parameter<T> b;  ///< visible means' bias [V]
  Parameter<T> c;  ///< hidden biases [H]
  Parameter<T> z;  ///< log-variances of the visible units [V]

 private:
  bool learn_variance_;
};

/// k sweeps of block Gibbs on the chains v [n, V]: h ~ p(h | v), then v ~ p(v | h). h is left
/// with the last hidden draw.
template <class T>
void gbrbm_gibbs(const GaussianRbm<T>& m, Array<T>& v, Array<T>& h, int k, Rng& rng) {
  for (int s = 0; s < k; ++s) {
    poll_interrupt();
    m.hidden_probs(v, h);
    sample_bernoulli(h, rng);
    m.sample_visible(h, v, rng);
  }
}

/// log of the unnormalised weight of hidden state h in p(h): cᵀh + Σ_i (μ_i² − b_i²)/2σ_i²,
/// μ = b + Wh (the log of ∫ e^{−E(v,h)} dv without Π_i √(2πσ_i²)).
template <class T>
double gbrbm_log_hidden_weight(const GaussianRbm<T>& m, const std::vector<int>& h) {
  const std::size_t nv = m.visible(), nh = m.hidden();
  double w = 0;
  for (std::size_t j = 0; j < nh; ++j) w += double(m.c.value(j)) * h[j];
  for (std::size_t i = 0; i < nv; ++i) {
    double mu = double(m.b.value(i));
    for (std::size_t j = 0; j < nh; ++j) mu += double(m.W.value(i, j)) * h[j];
    const double bi = double(m.b.value(i));
    w += (mu * mu - bi * bi) / (2 * std::exp(double(m.z.value(i))));
  }
  return w;
}

/// Exact log Z: the log-sum over the 2^H hidden states of the Gaussians' masses (H ≤ 24).
template <class T>
double gbrbm_exact_log_z(const GaussianRbm<T>& m) {
  const std::size_t nh = m.hidden(), nv = m.visible();
  if (nh > 24)
    throw std::invalid_argument(
        fmt::format("gbrbm_exact_log_z: 2^{} hidden states is too many to enumerate", nh));
  std::vector<int> h(nh);
  double mx = -std::numeric_limits<double>::infinity();
  std::vector<double> lw(std::size_t(1) << nh);
  for (std::size_t s = 0; s < lw.size(); ++s) {
    for (std::size_t j = 0; j < nh; ++j) h[j] = int((s >> j) & 1u);
    lw[s] = gbrbm_log_hidden_weight(m, h);
    mx = std::max(mx, lw[s]);
  }
  double sum = 0;
  for (double l : lw) sum += std::exp(l - mx);
  double log_gauss = 0;  // Σ_i ½ log(2πσ_i²)
  for (std::size_t i = 0; i < nv; ++i)
    log_gauss += 0.5 * (std::log(2 * std::numbers::pi) + double(m.z.value(i)));
  return mx + std::log(sum) + log_gauss;
}

/// F(v) of every row of v [n, V], in double.
template <class T>
std::vector<double> gbrbm_free_energies(const GaussianRbm<T>& m, const Array<T>& v) {
  const std::size_t n = v.shape()[0], nv = m.visible(), nh = m.hidden();
  if (v.dimension() != 2 || v.shape()[1] != nv)
    throw ShapeError(
        fmt::format("gbrbm_free_energies: input {} is not [n, {}]", shape_str(v.shape()), nv));
  const std::vector<double> prec = m.precisions();
  std::vector<double> f(n);
  for (std::size_t r = 0; r < n; ++r) {
    double e = 0;
    for (std::size_t i = 0; i < nv; ++i) {
      const double d = double(v(r, i)) - double(m.b.value(i));
      e += d * d * prec[i] / 2;
    }
    for (std::size_t j = 0; j < nh; ++j) {
      double a = double(m.c.value(j));
      for (std::size_t i = 0; i < nv; ++i) a += double(m.W.value(i, j)) * double(v(r, i)) * prec[i];
      e -= detail::softplus_d(a);
    }
    f[r] = e;
  }
  return f;
}

/// Average log-likelihood of rows v [n, V] given log Z: mean(−F(v)) − log Z.
template <class T>
double gbrbm_average_loglik(const GaussianRbm<T>& m, const Array<T>& v, double log_z) {
  double s = 0;
  for (double f : gbrbm_free_energies(m, v)) s -= f;
  return s / double(v.shape()[0]) - log_z;
}

/// An AIS estimate of a Gaussian–Bernoulli RBM's log Z (gbrbm_ais).
struct GbrbmAis {
  double log_z = 0;       ///< log Z_A + log mean w: a stochastic lower bound on log Z
  double std_err = 0;     ///< its standard error (delta method on the mean of the weights)
  double log_z_base = 0;  ///< log Z_A of the base model
  std::size_t runs = 0;   ///< annealing runs
};

namespace gbrbm_detail {
/// One Gibbs sweep, for one state (v, h), of the law interpolating at β between the base A of
/// independent Gaussians N(mean_i, var_i) (hidden units free) and the GB-RBM:
///   log p_β(v, h) = −(1−β) Σ_i (v_i − mean_i)²/2 var_i − β E(v, h),
/// given act_j = c_j + Σ_i W_ij v_i/σ_i² of the current v: h_j ~ Bernoulli(σ(β act_j)), then
/// v_i ~ N of precision (1−β)/var_i + β/σ_i² and the matching mean. (AIS and persistent
/// tempering share it.)
template <class T>
void tempered_sweep(const GaussianRbm<T>& m, const std::vector<double>& prec,
                    const std::vector<double>& mean, const std::vector<double>& var, double beta,
                    const std::vector<double>& act, std::vector<double>& v, std::vector<int>& h,
                    Rng& rng) {
  const std::size_t nv = m.visible(), nh = m.hidden();
  for (std::size_t j = 0; j < nh; ++j) h[j] = rng.uniform() < 1 / (1 + std::exp(-beta * act[j]));
  for (std::size_t i = 0; i < nv; ++i) {
    double mu_h = double(m.b.value(i));
    for (std::size_t j = 0; j < nh; ++j) mu_h += double(m.W.value(i, j)) * h[j];
    const double p = (1 - beta) / var[i] + beta * prec[i];
    const double mu = ((1 - beta) * mean[i] / var[i] + beta * mu_h * prec[i]) / p;
    v[i] = mu + rng.normal() / std::sqrt(p);
  }
}
}  // namespace gbrbm_detail

/// Annealed importance sampling (Neal 2001; Salakhutdinov & Murray 2008) from a base model A
/// whose visible units are independent Gaussians N(mean_i, var_i) — fitted to the data's moments
/// (base_moments) — and whose hidden units are free, so that log Z_A = Σ_i ½ log(2π var_i) +
/// H log 2 and A is sampled exactly. The intermediate models are
///   log p*_β(v) = −(1−β) Σ_i (v_i − m_i)²/2s_i² − β Σ_i (v_i − b_i)²/2σ_i²
///                 + Σ_j softplus(β (c_j + Σ_i W_ij v_i/σ_i²)),
/// each moved by one Gibbs sweep that leaves it invariant (h | v: Bernoulli(σ(β a_j)); v | h:
/// Gaussian of precision (1−β)/s_i² + β/σ_i²), over `temperatures` equally spaced β.
template <class T>
GbrbmAis gbrbm_ais(const GaussianRbm<T>& m, const std::vector<double>& mean,
                   const std::vector<double>& var, std::size_t runs, std::size_t temperatures,
                   Rng& rng) {
  const std::size_t nv = m.visible(), nh = m.hidden();
  if (mean.size() != nv || var.size() != nv)
    throw std::invalid_argument(fmt::format("gbrbm_ais: base moments of {} and {} units for {}",
                                            mean.size(), var.size(), nv));
  for (double s2 : var)
    if (!(s2 > 0)) throw std::invalid_argument("gbrbm_ais: base variances must be > 0");
  if (runs < 1 || temperatures < 1)
    throw std::invalid_argument("gbrbm_ais: needs at least one run and one temperature");
  const std::vector<double> prec = m.precisions();
  std::vector<double> v(nv), act(nh);
  std::vector<int> h(nh);
  auto activations = [&] {  // a_j = c_j + Σ_i W_ij v_i / σ_i²
    for (std::size_t j = 0; j < nh; ++j) {
      double a = double(m.c.value(j));
      for (std::size_t i = 0; i < nv; ++i) a += double(m.W.value(i, j)) * v[i] * prec[i];
      act[j] = a;
    }
  };
  auto log_p = [&](double beta) {  // log p*_β(v): at β = 0 its integral is Z_A
    double l = 0;
    for (std::size_t i = 0; i < nv; ++i) {
      const double da = v[i] - mean[i], dm = v[i] - double(m.b.value(i));
      l -= (1 - beta) * da * da / (2 * var[i]) + beta * dm * dm * prec[i] / 2;
    }
    for (std::size_t j = 0; j < nh; ++j)
      l += detail::softplus_d(beta * act[j]);  // (H log 2 at β = 0)
    return l;
  };
  std::vector<double> log_w(runs, 0.0);
  for (std::size_t r = 0; r < runs; ++r) {
    poll_interrupt();
    for (std::size_t i = 0; i < nv; ++i) v[i] = mean[i] + std::sqrt(var[i]) * rng.normal();
    for (std::size_t k = 1; k <= temperatures; ++k) {
      const double b_prev = double(k - 1) / double(temperatures),
                   b_now = double(k) / double(temperatures);
      activations();
      log_w[r] += log_p(b_now) - log_p(b_prev);
      if (k == temperatures) break;
      gbrbm_detail::tempered_sweep(m, prec, mean, var, b_now, act, v, h, rng);  // at β = b_now
    }
  }
  GbrbmAis res;
  res.runs = runs;
  for (std::size_t i = 0; i < nv; ++i)
    res.log_z_base += 0.5 * std::log(2 * std::numbers::pi * var[i]);
  res.log_z_base += double(nh) * std::log(2.0);
  double mx = -std::numeric_limits<double>::infinity();
  for (double l : log_w) mx = std::max(mx, l);
  double s = 0, s2 = 0;
  for (double l : log_w) {
    const double w = std::exp(l - mx);
    s += w, s2 += w * w;
  }
  const double n = double(runs), mean_w = s / n;
  res.log_z = res.log_z_base + mx + std::log(mean_w);
  const double var_w = runs > 1 ? (s2 / n - mean_w * mean_w) * n / (n - 1) : 0;
  res.std_err = std::sqrt(std::max(0.0, var_w) / n) / mean_w;  // delta method: sd(ŵ) / ŵ
  return res;
}

/// The moments of data rows x [n, V] per unit (mean, variance with a floor), for gbrbm_ais.
template <class T>
std::pair<std::vector<double>, std::vector<double>> base_moments(const Array<T>& x,
                                                                 double floor = 1e-6) {
  if (x.dimension() != 2 || x.shape()[0] < 2)
    throw std::invalid_argument("base_moments: needs rows [n >= 2, V]");
  const std::size_t n = x.shape()[0], d = x.shape()[1];
  std::vector<double> mean(d, 0.0), var(d, 0.0);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t i = 0; i < d; ++i) mean[i] += double(x(r, i)) / double(n);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t i = 0; i < d; ++i)
      var[i] += (double(x(r, i)) - mean[i]) * (double(x(r, i)) - mean[i]) / double(n - 1);
  for (double& v2 : var) v2 = std::max(v2, floor);
  return {mean, var};
}

/// Training chains: the visible states of persistent chains (PCD), or empty (CD from the data).
template <class T>
struct GbrbmChains {
  Array<T> v;  ///< chains' visible states [n, V]
  Array<T> h;  ///< their last hidden draws [n, H]
  /// Persistent tempering: the visible states of the ladder's levels 2 … K ([n, V] each; made from
  /// the base on the first tempered step).
  std::vector<Array<T>> hot_v{};
  std::vector<std::size_t> swaps_accepted{};  ///< per neighbouring pair of levels
  std::vector<std::size_t> swaps_proposed{};  ///< per neighbouring pair of levels
};

/// Persistent tempering for a GB-RBM. A Gaussian–Bernoulli RBM has no β = 0 law of its own (v's
/// variance σ²/β grows without bound), so the ladder interpolates, as AIS does, between a base of
/// independent Gaussians N(mean_i, var_i) (e.g. base_moments of the data) at β = 0 and the model
/// at β = 1 (gbrbm_detail::tempered_sweep).
struct GbrbmTempering {
  std::vector<double> betas;  ///< 1 = β₁ > β₂ > … ≥ 0
  std::vector<double> mean;   ///< the base's means [V]
  std::vector<double> var;    ///< the base's variances [V], > 0
};

/// k tempered sweeps of every level of the ladder, then one round of swaps between neighbouring
/// levels (l, l+1) for every chain, accepted with probability
///   min(1, exp((β_l − β_{l+1}) (g(x_{l+1}) − g(x_l)))),   g(v, h) = E_A(v) − E(v, h),
/// E_A(v) = Σ_i (v_i − mean_i)²/2 var_i: the Metropolis ratio of exchanging the two states
/// between log p_β = −E_A + β g. Level 1 (β = 1) is chains.v / chains.h.
template <class T>
void gbrbm_tempered_gibbs(const GaussianRbm<T>& m, GbrbmChains<T>& chains, const GbrbmTempering& t,
                          int k, Rng& rng) {
  const std::size_t nv = m.visible(), nh = m.hidden(), levels = t.betas.size();
  if (levels < 2 || t.betas[0] != 1.0)
    throw std::invalid_argument("gbrbm_tempered_gibbs: the ladder needs β₁ = 1 and a second level");
  for (std::size_t l = 1; l < levels; ++l)
    if (!(t.betas[l] < t.betas[l - 1] && t.betas[l] >= 0))
      throw std::invalid_argument("gbrbm_tempered_gibbs: the βs must decrease from 1 to >= 0");
  if (t.mean.size() != nv || t.var.size() != nv)
    throw std::invalid_argument(
        fmt::format("gbrbm_tempered_gibbs: base moments of {} and {} units for {}", t.mean.size(),
                    t.var.size(), nv));
  for (double s2 : t.var)
    if (!(s2 > 0)) throw std::invalid_argument("gbrbm_tempered_gibbs: base variances must be > 0");
  if (chains.v.dimension() != 2 || chains.v.shape()[1] != nv)
    throw std::invalid_argument("gbrbm_tempered_gibbs: the chains need visible states [n, V]");
  const std::size_t n = chains.v.shape()[0];
  if (chains.hot_v.size() != levels - 1) {  // the hot levels start from the base's draws
    chains.hot_v.assign(levels - 1, Array<T>(Shape{n, nv}));
    for (auto& a : chains.hot_v)
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t i = 0; i < nv; ++i)
          a(r, i) = T(t.mean[i] + std::sqrt(t.var[i]) * rng.normal());
    chains.swaps_accepted.assign(levels - 1, 0);
    chains.swaps_proposed.assign(levels - 1, 0);
  }
  chains.h.resize(Shape{n, nh});
  const std::vector<double> prec = m.precisions();
  // every level's states in double, row by row: v [levels][n][V], h [levels][n][H]
  std::vector<std::vector<std::vector<double>>> v(levels, std::vector<std::vector<double>>(n));
  std::vector<std::vector<std::vector<int>>> h(
      levels, std::vector<std::vector<int>>(n, std::vector<int>(nh)));
  for (std::size_t l = 0; l < levels; ++l) {
    const Array<T>& a = l == 0 ? chains.v : chains.hot_v[l - 1];
    for (std::size_t r = 0; r < n; ++r) v[l][r].assign(a.data() + r * nv, a.data() + (r + 1) * nv);
  }
  std::vector<double> act(nh);
  for (int s = 0; s < k; ++s) {
    poll_interrupt();
    for (std::size_t l = 0; l < levels; ++l)
      for (std::size_t r = 0; r < n; ++r) {
        for (std::size_t j = 0; j < nh; ++j) {
          double a = double(m.c.value(j));
          for (std::size_t i = 0; i < nv; ++i) a += double(m.W.value(i, j)) * v[l][r][i] * prec[i];
          act[j] = a;
        }
        gbrbm_detail::tempered_sweep(m, prec, t.mean, t.var, t.betas[l], act, v[l][r], h[l][r],
                                     rng);
      }
  }
  auto g = [&](const std::vector<double>& x, const std::vector<int>& hh) {
    double ea = 0, e = 0;
    for (std::size_t i = 0; i < nv; ++i) {
      const double da = x[i] - t.mean[i], dm = x[i] - double(m.b.value(i));
      ea += da * da / (2 * t.var[i]);
      e += dm * dm * prec[i] / 2;
    }
    for (std::size_t j = 0; j < nh; ++j) {
      if (!hh[j]) continue;
      double a = double(m.c.value(j));
      for (std::size_t i = 0; i < nv; ++i) a += double(m.W.value(i, j)) * x[i] * prec[i];
      e -= a;
    }
    return ea - e;
  };
  for (std::size_t l = 0; l + 1 < levels; ++l)
    for (std::size_t r = 0; r < n; ++r) {
      const double log_ratio =
          (t.betas[l] - t.betas[l + 1]) * (g(v[l + 1][r], h[l + 1][r]) - g(v[l][r], h[l][r]));
      ++chains.swaps_proposed[l];
      if (std::log(rng.uniform()) < log_ratio) {
        std::swap(v[l][r], v[l + 1][r]);
        std::swap(h[l][r], h[l + 1][r]);
        ++chains.swaps_accepted[l];
      }
    }
  for (std::size_t l = 0; l < levels; ++l) {
    Array<T>& a = l == 0 ? chains.v : chains.hot_v[l - 1];
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t i = 0; i < nv; ++i) a(r, i) = T(v[l][r][i]);
  }
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t j = 0; j < nh; ++j) chains.h(r, j) = T(h[0][r][j]);
}

/// One CD-k (persistent = false: chains restarted at the data) or PCD-k step: negatives by k
/// block-Gibbs sweeps, then the optimizer's step on ∇θ [mean F(v⁺) − mean F(v⁻)], the
/// log-likelihood gradient's estimate (the hidden units summed out exactly in F). Returns that
/// surrogate's value. Fresh persistent chains must be given states (e.g. data rows or noise).
///
/// With `tempering` (and persistent chains): the negatives are the β = 1 level of persistent
/// tempering (gbrbm_tempered_gibbs: k tempered sweeps of every level, then a round of swaps).
template <class T>
double gbrbm_train_step(GaussianRbm<T>& m, Optimizer<T>& opt, const Array<T>& v_pos,
                        GbrbmChains<T>& chains, int k, bool persistent, Rng& rng, Tape<T>& tape,
                        const GbrbmTempering* tempering = nullptr) {
  if (tempering && !persistent)
    throw std::invalid_argument("gbrbm_train_step: tempering needs persistent chains");
  if (k < 1) throw std::invalid_argument("gbrbm_train_step: needs at least one Gibbs sweep");
  if (!persistent) chains.v = v_pos;
  // (a default xtensor array has shape {} and size 1: the shape, not the size, says "empty")
  if (chains.v.dimension() != 2 || chains.v.shape()[1] != m.visible())
    throw std::invalid_argument(
        fmt::format("gbrbm_train_step: the chains {} are not [n, {}] (persistent chains need "
                    "initial states)",
                    shape_str(chains.v.shape()), m.visible()));
  if (tempering)
    gbrbm_tempered_gibbs(m, chains, *tempering, k, rng);
  else
    gbrbm_gibbs(m, chains.v, chains.h, k, rng);
  tape.clear();
  Var<T> l = mean(m(tape, tape.input(v_pos))) - mean(m(tape, tape.input(chains.v)));
  const double value = double(l.item());
  if (!std::isfinite(value))
    throw DivergenceError(fmt::format("gbrbm_train_step: non-finite free energy ({})", value));
  opt.zero_grad();
  auto ps = m.parameters();
  tape.backward(l, {}, std::span<Parameter<T>* const>(ps));
  opt.step();
  return value;
}

}  // namespace ebl
