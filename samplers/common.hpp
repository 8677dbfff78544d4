// What every sampler shares: the energy as a function of a batch, its value and gradient in x
// from one reused tape, and the diagnostics a run reports.
//
// Samplers know nothing about models: an energy is any function that maps a batch x [n, d] on a
// tape to one energy per row [n]. Each row of x is an independent chain. The target density at
// temperature T is p(x) ∝ exp(-E(x) / T).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "autodiff/interrupt.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/parallel.hpp"
#include "autodiff/random.hpp"

namespace ebl {

template <class T>
using EnergyFn = std::function<Var<T>(Tape<T>&, Var<T>)>;

/// Evaluates E(x) and ∇x E(x) for a batch on a tape it keeps, so repeated calls allocate nothing.
/// Only ∇x is computed: the energy's parameters get no gradient and no weight-gradient GEMM runs.
template <class T>
class EnergyGrad {
 public:
  /// Evaluates the energy function f (a batch on a tape to one energy per row).
  explicit EnergyGrad(EnergyFn<T> f) : f_(std::move(f)) {}
  /// Fills energy [n] and grad [n, d] (both resized only if their sizes change).
  void operator()(const Array<T>& x, Array<T>& energy, Array<T>& grad) {
    tape_.clear();
    Var<T> xv = tape_.input_ref(x, true);  // x is read in place; the tape is done with it on return
    Var<T> e = f_(tape_, xv);
    if (e.shape().size() != 1 || e.shape()[0] != x.shape()[0])
      throw ShapeError(fmt::format("sampler: the energy of a batch {} must have shape [{}], got {}",
                                   shape_str(x.shape()), x.shape()[0], shape_str(e.shape())));
    tape_.backward(sum(e), {xv});  // rows are independent chains: ∇x Σ_i E(x_i) = [∇E(x_i)]_i
    energy.resize(e.shape());
    std::copy(e.value().begin(), e.value().end(), energy.begin());
    tape_.swap_grad(xv, grad);  // ∇x moves out; grad's old buffer is the tape's next
  }
  /// E(x) only.
  void energy(const Array<T>& x, Array<T>& energy) {
    tape_.clear();
    Var<T> e = f_(tape_, tape_.input_ref(x));
    energy.resize(e.shape());
    std::copy(e.value().begin(), e.value().end(), energy.begin());
  }

 private:
  EnergyFn<T> f_;
  Tape<T> tape_;
};

/// A Metropolis acceptance of chain i (row i of [n, d] arrays): its proposed state, gradient and
/// energy replace the current ones.
template <class T>
void accept_chain(std::size_t i, std::size_t d, const Array<T>& x_new, const Array<T>& g_new,
                  const Array<T>& e_new, Array<T>& x, Array<T>& g, Array<T>& e) {
  std::copy_n(x_new.data() + i * d, d, x.data() + i * d);
  std::copy_n(g_new.data() + i * d, d, g.data() + i * d);
  e.data()[i] = e_new.data()[i];
}

/// Rows [r0, r1) of x [n, d] into `to` [r1 - r0, d] (which keeps its buffer when the size holds).
template <class T>
void copy_rows(const Array<T>& x, std::size_t r0, std::size_t r1, Array<T>& to) {
  const std::size_t d = x.size() / x.shape()[0];
  to.resize(std::array<std::size_t, 2>{r1 - r0, d});
  std::copy_n(x.data() + r0 * d, to.size(), to.data());
}

/// Σ_k a[k]² in double, with eight running sums so that the loop vectorises (a single sum is a
/// serial chain of additions: it ran at one element per add latency).
template <class T>
double sum_of_squares(const T* a, std::size_t n) {
  double acc[8] = {};
  std::size_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (std::size_t j = 0; j < 8; ++j) acc[j] += double(a[k + j]) * double(a[k + j]);
  for (; k < n; ++k) acc[0] += double(a[k]) * double(a[k]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/// Diagnostics of one sampler run, per step: mean energy over chains, mean ‖∇x E‖ over chains,
/// and the acceptance rate (1 for unadjusted Langevin). `gradient_evals` counts the evaluations
/// of E and ∇x E the run made per chain (a batch evaluation is one for every chain): the cost
/// that effective sample sizes are divided by.
struct ChainStats {
  std::vector<double> mean_energy;     ///< per step: the mean energy over the chains
  std::vector<double> mean_grad_norm;  ///< per step: the mean ‖∇x E‖ over the chains
  double acceptance = 1;               ///< accepted / proposals (1 for unadjusted Langevin)
  std::size_t proposals = 0;           ///< Metropolis–Hastings proposals made, over all chains
  std::size_t accepted = 0;            ///< of which accepted
  std::size_t gradient_evals = 0;      ///< evaluations of E and ∇x E per chain
  /// With LangevinOptions::trace_energies: E of every chain at every step (chains × steps), the
  /// input of effective_sample_size and split_rhat (samplers/diagnostics.hpp).
  std::vector<std::vector<double>> energy_traces;

  /// Appends one step's mean energy and mean gradient norm.
  void record(const auto& energy, const auto& grad) {
    const std::size_t n = energy.size(), d = n ? grad.size() / n : 0;
    double se = 0, sg = 0;
    for (std::size_t i = 0; i < n; ++i) {
      se += double(energy.data()[i]);
      sg += std::sqrt(sum_of_squares(grad.data() + i * d, d));
    }
    mean_energy.push_back(n ? se / double(n) : 0);
    mean_grad_norm.push_back(n ? sg / double(n) : 0);
  }
  /// Sets acceptance from the counts (at the end of a run).
  void finish() { acceptance = proposals ? double(accepted) / double(proposals) : 1.0; }
};

/// Called by a sampler after each iteration that counts as a draw (after warm-up) with the chains'
/// states x [n, d] and energies [n]: where a caller records traces for the diagnostics
/// (samplers/diagnostics.hpp) or anything else it wants to follow.
template <class T>
using Observer = std::function<void(const Array<T>& x, const Array<T>& energy)>;

/// Records one scalar per chain per draw, f(row of x, d, energy), as Traces (chains × draws) for
/// effective_sample_size and split_rhat. The default scalar is the energy.
template <class T>
struct TraceRecorder {
  /// The scalar recorded for a chain's state (its d coordinates and its energy).
  std::function<double(const T* x, std::size_t d, double energy)> scalar =
      [](const T*, std::size_t, double e) { return e; };
  std::vector<std::vector<double>> traces;  ///< chains × draws

  /// The observer to pass to a sampler's run(); it appends to traces.
  Observer<T> observer() {
    return [this](const Array<T>& x, const Array<T>& e) {
      const std::size_t n = x.shape()[0], d = n ? x.size() / n : 0;
      if (traces.size() != n) traces.assign(n, {});
      for (std::size_t i = 0; i < n; ++i)
        traces[i].push_back(scalar(x.data() + i * d, d, double(e.data()[i])));
    };
  }
};

}  // namespace ebl
