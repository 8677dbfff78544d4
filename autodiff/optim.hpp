// Optimizers over Parameter gradients, following PyTorch's update rules.
//   SGD:  v ← μ v + (g + λθ);  θ ← θ - lr v            (μ momentum, λ weight decay)
//   Adam: m ← β1 m + (1-β1) g;  v ← β2 v + (1-β2) g²;  θ ← θ - lr m̂ / (√v̂ + ε),
//         m̂ = m / (1-β1^t), v̂ = v / (1-β2^t), g including λθ  (Kingma & Ba, 2015)
// Both update in place with raw loops: a step allocates nothing.
#pragma once

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/parallel.hpp"
#include "autodiff/tape.hpp"

namespace ebl {

/// What a training loop needs of an optimizer; state() exposes its buffers for checkpoints.
/// Updates a list of parameters from their accumulated gradients (Parameter::grad).
template <class T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  /// One update of every parameter from its .grad.
  virtual void step() = 0;
  /// The same update with every parameter's elements split into `parts` ranges, one per thread of
  /// `pool`. SGD's and Adam's updates are element-wise, so the result is step()'s, bit for bit;
  /// on large models the update is memory-bound and two threads move its data faster than one.
  /// An optimizer of one's own may keep this default, which runs step() on the calling thread.
  virtual void step(WorkerPool& pool, std::size_t parts) {
    (void)pool, (void)parts;
    step();
  }
  /// Zeroes every parameter's .grad (before the backward pass of the next step).
  virtual void zero_grad() = 0;
  /// Named state arrays (momenta) and the step counter, for saving and restoring.
  virtual std::vector<std::pair<std::string, Array<T>*>> state() = 0;
  /// The number of steps taken (settable, for restoring: Adam's bias correction reads it).
  virtual long& steps() = 0;
};

/// An optimizer whose update is element by element (SGD, Adam): one update of a range of a
/// parameter's elements serves both the serial and the threaded step.
template <class T>
class ElementwiseOptimizer : public Optimizer<T> {
 public:
  /// One update of every element of every parameter, on the calling thread.
  void step() override {
    ++t_;
    for (std::size_t k = 0; k < params_.size(); ++k) update(k, 0, params_[k]->value.size());
  }
  void step(WorkerPool& pool, std::size_t parts) override {
    ++t_;
    pool.run(parts, [&](std::size_t b) {
      for (std::size_t k = 0; k < params_.size(); ++k) {
        const std::size_t n = params_[k]->value.size();
        update(k, block_start(n, b, parts), block_start(n, b + 1, parts));
      }
    });
  }
  /// Zeroes every parameter's .grad.
  void zero_grad() override {
    for (auto* p : params_) p->zero_grad();
  }
  /// The step counter t.
  long& steps() override { return t_; }

 protected:
  /// An optimizer over `params` (referenced: they must outlive it).
  explicit ElementwiseOptimizer(std::vector<Parameter<T>*> params) : params_(std::move(params)) {}
  /// Elements [lo, hi) of parameter k, at step t_ (already counted).
  virtual void update(std::size_t k, std::size_t lo, std::size_t hi) = 0;

  std::vector<Parameter<T>*> params_;  ///< the parameters updated, in the order given
  long t_ = 0;                         ///< steps taken
};

/// Stochastic gradient descent with momentum and weight decay (the formula at the top).
template <class T>
class SGD : public ElementwiseOptimizer<T> {
 public:
  /// SGD's hyperparameters.
  struct Options {
    double lr = 1e-2;         ///< learning rate
    double momentum = 0;      ///< μ (0: plain SGD)
    double weight_decay = 0;  ///< λ, added to the gradient as λθ
  };
  /// SGD over `params` (referenced: they must outlive it).
  SGD(std::vector<Parameter<T>*> params, Options opt)
      : ElementwiseOptimizer<T>(std::move(params)), opt_(opt) {
    for (auto* p : params_) velocity_.emplace_back(Array<T>(p->value.shape(), T(0)));
  }
  std::vector<std::pair<std::string, Array<T>*>> state() override {
    std::vector<std::pair<std::string, Array<T>*>> s;
    for (std::size_t k = 0; k < params_.size(); ++k)
      s.emplace_back(params_[k]->name + ".velocity", &velocity_[k]);
    return s;
  }
  /// The hyperparameters (the learning rate may be changed between steps: a schedule).
  Options& options() { return opt_; }

 private:
  void update(std::size_t k, std::size_t lo, std::size_t hi) override {
    const T lr = T(opt_.lr), mu = T(opt_.momentum), wd = T(opt_.weight_decay);
    T* th = params_[k]->value.data();
    const T* g = params_[k]->grad.data();
    T* v = velocity_[k].data();
    if (mu == T(0) && wd == T(0)) {  // plain SGD: one pass, the velocity is unused
      for (std::size_t e = lo; e < hi; ++e) th[e] -= lr * g[e];
      return;
    }
    for (std::size_t e = lo; e < hi; ++e) {
      T d = g[e] + wd * th[e];
      v[e] = mu * v[e] + d;
      th[e] -= lr * v[e];
    }
  }

  using ElementwiseOptimizer<T>::params_;
  std::vector<Array<T>> velocity_;
  Options opt_;
};

/// Adam (Kingma & Ba 2015) with bias correction (the formula at the top).
template <class T>
class Adam : public ElementwiseOptimizer<T> {
 public:
  /// Adam's hyperparameters (Kingma & Ba's defaults).
  struct Options {
    double lr = 1e-3;         ///< learning rate
    double beta1 = 0.9;       ///< decay of the first moment
    double beta2 = 0.999;     ///< decay of the second moment
    double eps = 1e-8;        ///< added to √v̂
    double weight_decay = 0;  ///< λ, added to the gradient as λθ (L2, not decoupled)
  };
  /// Adam over `params` (referenced: they must outlive it).
  Adam(std::vector<Parameter<T>*> params, Options opt)
      : ElementwiseOptimizer<T>(std::move(params)), opt_(opt) {
    for (auto* p : params_) {
      m_.emplace_back(Array<T>(p->value.shape(), T(0)));
      v_.emplace_back(Array<T>(p->value.shape(), T(0)));
    }
  }
  std::vector<std::pair<std::string, Array<T>*>> state() override {
    std::vector<std::pair<std::string, Array<T>*>> s;
    for (std::size_t k = 0; k < params_.size(); ++k) {
      s.emplace_back(params_[k]->name + ".adam_m", &m_[k]);
      s.emplace_back(params_[k]->name + ".adam_v", &v_[k]);
    }
    return s;
  }
  /// The hyperparameters (the learning rate may be changed between steps: a schedule).
  Options& options() { return opt_; }

 private:
  void update(std::size_t k, std::size_t lo, std::size_t hi) override {
    const double c1 = 1 - std::pow(opt_.beta1, double(t_)),
                 c2 = 1 - std::pow(opt_.beta2, double(t_));
    const T b1 = T(opt_.beta1), b2 = T(opt_.beta2), wd = T(opt_.weight_decay), eps = T(opt_.eps);
    const T step = T(opt_.lr / c1), inv_sqrt_c2 = T(1 / std::sqrt(c2));
    T* th = params_[k]->value.data();
    const T* g = params_[k]->grad.data();
    T *m = m_[k].data(), *v = v_[k].data();
    for (std::size_t e = lo; e < hi; ++e) {
      T d = g[e] + wd * th[e];
      m[e] = b1 * m[e] + (1 - b1) * d;
      v[e] = b2 * v[e] + (1 - b2) * d * d;
      th[e] -= step * m[e] / (std::sqrt(v[e]) * inv_sqrt_c2 + eps);
    }
  }

  using ElementwiseOptimizer<T>::params_;
  using ElementwiseOptimizer<T>::t_;
  std::vector<Array<T>> m_, v_;
  Options opt_;
};

}  // namespace ebl
