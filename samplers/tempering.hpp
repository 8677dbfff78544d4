// Parallel tempering (replica exchange; Swendsen & Wang 1986, Geyer 1991) for any energy. A
// ladder of temperatures 1 = T₁ < T₂ < … < T_K; level k holds n replicas of the chains, each
// moved by a MALA step that leaves p_k(x) ∝ exp(−E(x)/T_k) invariant; then neighbouring levels
// exchange states, chain by chain, with the Metropolis rule for the product of the levels' laws:
//     swap x_k ↔ x_{k+1} with probability min(1, exp((1/T_k − 1/T_{k+1}) (E(x_k) − E(x_{k+1})))).
// Hot levels cross the barriers between modes; swaps carry their states down to T₁, whose draws
// are those of p(x) ∝ exp(−E(x)). Swaps alternate between the even and the odd pairs of levels
// (the deterministic even-odd scheme, which moves states along the ladder faster than random
// pairs; Okabe et al. 2001, Syed et al. 2019).
//
// MALA's step at temperature T is x' = x − ε∇E + √(2εT) ξ: with one ε for every level the
// proposal's spread grows as √T, as the level's own law does, so one step size serves the whole
// ladder (per-level step sizes are an option). All K·n replicas are evaluated as one batch.
#pragma once

#include <cmath>
#include <vector>

#include "samplers/common.hpp"

namespace ebl {

/// K temperatures from 1 to t_max in geometric progression, the usual ladder: with a constant
/// ratio, neighbouring levels overlap alike when the energy's heat capacity is roughly constant.
inline std::vector<double> geometric_ladder(std::size_t k, double t_max) {
  if (k < 1 || !(t_max >= 1))
    throw std::invalid_argument("geometric_ladder: need at least one level and t_max >= 1");
  std::vector<double> t(k, 1.0);
  for (std::size_t i = 1; i < k; ++i) t[i] = std::pow(t_max, double(i) / double(k - 1));
  return t;
}

/// Parallel tempering's options.
struct TemperingOptions {
  int steps = 1000;                    ///< iterations: a MALA move at every level, then swaps
  std::vector<double> temperatures{};  ///< T₁ < T₂ < …, T₁ that of the draws (normally 1);
                                       ///< empty: geometric_ladder(8, 30)
  double step_size = 0.05;             ///< MALA ε, the same at every level (see above)
  std::vector<double> step_sizes{};    ///< optional: one ε per level (overrides step_size)
};

/// Parallel tempering (see the top of this file): MALA moves at every level of a temperature
/// ladder, then swaps between neighbouring levels, the draws read at T₁.
template <class T>
class ParallelTempering {
 public:
  /// A sampler for the energy function `energy`; throws on an invalid ladder or step sizes.
  ParallelTempering(EnergyFn<T> energy, TemperingOptions opt)
      : eval_(std::move(energy)), opt_(std::move(opt)) {
    if (opt_.temperatures.empty()) opt_.temperatures = geometric_ladder(8, 30);
    const auto& t = opt_.temperatures;
    if (!(t[0] > 0)) throw std::invalid_argument("parallel tempering: temperatures must be > 0");
    for (std::size_t k = 1; k < t.size(); ++k)
      if (!(t[k] > t[k - 1]))
        throw std::invalid_argument("parallel tempering: temperatures must increase");
    if (opt_.step_sizes.empty()) opt_.step_sizes.assign(t.size(), opt_.step_size);
    if (opt_.step_sizes.size() != t.size())
      throw std::invalid_argument(
          fmt::format("parallel tempering: {} step sizes for {} temperatures",
                      opt_.step_sizes.size(), t.size()));
    for (double e : opt_.step_sizes)
      if (!(e > 0)) throw std::invalid_argument("parallel tempering: step sizes must be > 0");
    if (opt_.steps < 0) throw std::invalid_argument("parallel tempering: steps must be >= 0");
  }

  /// Runs opt.steps iterations. x [n, d] is the T₁ level: its chains are read and left with the
  /// last draws. The hotter levels persist between calls (started as copies of x on the first
  /// call, or when n or d changes). `observe` sees the T₁ level after every iteration.
  ChainStats run(Array<T>& x, Rng& rng, const Observer<T>& observe = {}) {
    const std::size_t K = opt_.temperatures.size(), n = x.shape()[0],
                      d = x.size() / std::max<std::size_t>(n, 1);
    if (n_ != n || d_ != d) {
      n_ = n, d_ = d;
      z_.resize(Shape{K * n, d});
      for (std::size_t k = 0; k < K; ++k) std::copy(x.begin(), x.end(), z_.data() + k * n * d);
      move_accepted_.assign(K, 0);
      move_proposed_.assign(K, 0);
      swap_accepted_.assign(K ? K - 1 : 0, 0);
      swap_proposed_.assign(K ? K - 1 : 0, 0);
      iteration_ = 0;
    } else {
      std::copy(x.begin(), x.end(), z_.data());
    }
    ChainStats stats;
    eval_(z_, e_, g_);
    std::size_t evals = 1;
    level_.resize(K * n);
    for (std::size_t r = 0; r < K * n; ++r) level_[r] = r / n;
    for (int t = 0; t < opt_.steps; ++t) {
      poll_interrupt();
      mala_move(rng, stats);
      ++evals;
      swap_sweep(rng);
      ++iteration_;
      std::copy_n(z_.data(), n * d, x.data());
      if (observe) {
        e1_.resize(Shape{n});
        std::copy_n(e_.data(), n, e1_.data());
        observe(x, e1_);
      }
    }
    stats.gradient_evals = evals * K;  // every T₁ chain pays for its K replicas
    stats.finish();
    return stats;
  }

  /// The ladder T₁ < T₂ < ….
  const std::vector<double>& temperatures() const { return opt_.temperatures; }
  /// Swap acceptance rate between levels k and k+1, over every run so far.
  std::vector<double> swap_rates() const {
    std::vector<double> r(swap_accepted_.size(), 0.0);
    for (std::size_t k = 0; k < r.size(); ++k)
      r[k] = swap_proposed_[k] ? double(swap_accepted_[k]) / double(swap_proposed_[k]) : 0.0;
    return r;
  }
  /// MALA acceptance rate at each level.
  std::vector<double> move_rates() const {
    std::vector<double> r(move_accepted_.size(), 0.0);
    for (std::size_t k = 0; k < r.size(); ++k)
      r[k] = move_proposed_[k] ? double(move_accepted_[k]) / double(move_proposed_[k]) : 0.0;
    return r;
  }
  /// Every level's states, [K·n, d] (level k in rows k·n … (k+1)·n − 1).
  const Array<T>& replicas() const { return z_; }

  /// The persistent state: every level's replicas, the move and swap counts and the iteration
  /// (whose parity picks the pairs that swap next). A sampler given it back continues exactly.
  struct State {
    Array<T> replicas;                       ///< [K·n, d]; empty before the first run
    std::size_t iteration = 0;               ///< iterations run so far
    std::vector<std::size_t> move_accepted;  ///< per level: MALA moves accepted
    std::vector<std::size_t> move_proposed;  ///< per level: MALA moves proposed
    std::vector<std::size_t> swap_accepted;  ///< per neighbouring pair: swaps accepted
    std::vector<std::size_t> swap_proposed;  ///< per neighbouring pair: swaps proposed
  };
  /// A copy of the persistent state (for checkpoints).
  State state() const {
    return {z_, iteration_, move_accepted_, move_proposed_, swap_accepted_, swap_proposed_};
  }
  /// Continues from a state() (checked against the ladder).
  void set_state(State st) {
    const std::size_t K = opt_.temperatures.size();
    if (st.replicas.size() == 0) {  // saved before the first run
      n_ = d_ = 0;
      return;
    }
    if (st.replicas.dimension() != 2 || st.replicas.shape()[0] % K != 0 ||
        st.move_accepted.size() != K || st.move_proposed.size() != K ||
        st.swap_accepted.size() != K - 1 || st.swap_proposed.size() != K - 1)
      throw std::invalid_argument(
          fmt::format("parallel tempering: a state of replicas {} does not fit {} levels",
                      shape_str(st.replicas.shape()), K));
    n_ = st.replicas.shape()[0] / K;
    d_ = st.replicas.shape()[1];
    z_ = std::move(st.replicas);
    iteration_ = st.iteration;
    move_accepted_ = std::move(st.move_accepted), move_proposed_ = std::move(st.move_proposed);
    swap_accepted_ = std::move(st.swap_accepted), swap_proposed_ = std::move(st.swap_proposed);
  }

 private:
  // One MALA step of every replica at its level's temperature; the stats count level 1.
  void mala_move(Rng& rng, ChainStats& stats) {
    const std::size_t rows = z_.shape()[0], d = d_;
    y_.resize(z_.shape());
    for (std::size_t r = 0; r < rows; ++r) {
      const double eps = opt_.step_sizes[level_[r]], temp = opt_.temperatures[level_[r]];
      const double sd = std::sqrt(2 * eps * temp);
      for (std::size_t j = r * d; j < (r + 1) * d; ++j)
        y_.data()[j] = T(double(z_.data()[j]) - eps * double(g_.data()[j]) + sd * rng.normal());
    }
    eval_(y_, ey_, gy_);
    struct Rows {  // the T₁ level's rows, for ChainStats::record
      const T* p;
      std::size_t n;
      const T* data() const { return p; }
      std::size_t size() const { return n; }
    };
    stats.record(Rows{e_.data(), n_}, Rows{g_.data(), n_ * d});
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t k = level_[r];
      const double eps = opt_.step_sizes[k], temp = opt_.temperatures[k];
      double fwd = 0, bwd = 0;
      for (std::size_t j = r * d; j < (r + 1) * d; ++j) {
        const double a = double(y_.data()[j]) - double(z_.data()[j]) + eps * double(g_.data()[j]),
                     b = double(z_.data()[j]) - double(y_.data()[j]) + eps * double(gy_.data()[j]);
        fwd += a * a;
        bwd += b * b;
      }
      const double log_alpha =
          -(double(ey_(r)) - double(e_(r))) / temp - (bwd - fwd) / (4 * eps * temp);
      ++move_proposed_[k];
      if (k == 0) ++stats.proposals;
      if (std::log(rng.uniform()) < log_alpha) {
        ++move_accepted_[k];
        if (k == 0) ++stats.accepted;
        accept_chain(r, d, y_, gy_, ey_, z_, g_, e_);
      }
    }
  }

  // Exchanges between the even pairs (0,1), (2,3), … on even iterations, the odd pairs on odd.
  void swap_sweep(Rng& rng) {
    const std::size_t K = opt_.temperatures.size(), n = n_, d = d_;
    for (std::size_t k = iteration_ % 2; k + 1 < K; k += 2) {
      const double db = 1 / opt_.temperatures[k] - 1 / opt_.temperatures[k + 1];
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t a = k * n + i, b = (k + 1) * n + i;
        const double log_alpha = db * (double(e_(a)) - double(e_(b)));
        ++swap_proposed_[k];
        if (std::log(rng.uniform()) < log_alpha) {
          ++swap_accepted_[k];
          std::swap_ranges(z_.data() + a * d, z_.data() + (a + 1) * d, z_.data() + b * d);
          std::swap_ranges(g_.data() + a * d, g_.data() + (a + 1) * d, g_.data() + b * d);
          std::swap(e_(a), e_(b));
        }
      }
    }
  }

  EnergyGrad<T> eval_;
  TemperingOptions opt_;
  std::size_t n_ = 0, d_ = 0, iteration_ = 0;
  Array<T> z_, e_, g_, y_, ey_, gy_, e1_;
  std::vector<std::size_t> level_, move_accepted_, move_proposed_, swap_accepted_, swap_proposed_;
};

}  // namespace ebl
