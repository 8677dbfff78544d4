// The reverse-mode tape.
//
// A Tape records every operation of a computation as a node, in creation order. Creation order
// is a topological order of the graph, so the backward pass is one reverse loop over the nodes
// (Stan Math's design), with no graph search. Each node stores its value, the indices of its
// inputs, a small payload (scalars, an axis, integer indices) and a pointer to its
// vector-Jacobian product (VJP): a capture-less lambda written right under the op's forward
// code in ops.cpp.
//
// Leaves come in two kinds:
//   * parameters: owned by models (Parameter), they outlive tapes; their gradients accumulate
//     into Parameter::grad;
//   * inputs: arrays copied onto the tape, with or without a gradient.
// backward(y, wrt) computes gradients for exactly the leaves asked for. A node runs its VJP only
// if some requested leaf lies below it, and inside a VJP an input's gradient is computed only if
// that input needs one, so a ∇x-only pass (Langevin) runs no weight-gradient GEMM.
//
// Memory: clear() forgets the nodes but keeps them, with their value and gradient buffers. A
// training loop that builds the same graph every step therefore allocates nothing after the first
// step: every buffer is resized to the size it already has.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "autodiff/array.hpp"
#include "autodiff/parallel.hpp"

namespace ebl {

template <class T>
class Tape;  // (defined below)

/// A model parameter: a named array that persists across tapes, with its accumulated gradient.
template <class T>
struct Parameter {
  std::string name;  ///< unique within a model: checkpoints store it as "param/<name>"
  Array<T> value;    ///< read in place by every tape it is put on (Tape::param)
  Array<T> grad;     ///< same shape as value; backward() adds into it, zero_grad() resets it

  Parameter() = default;
  /// A parameter named `name_` holding `value_`, with a zero gradient of the same shape.
  Parameter(std::string name_, Array<T> value_)
      : name(std::move(name_)), value(std::move(value_)), grad(value.shape(), T(0)) {}
  /// grad = 0 (optimizers call it before each backward pass).
  void zero_grad() { std::fill(grad.begin(), grad.end(), T(0)); }
};

/// A cheap handle to a node of a tape: the tape's address and the node's index.
template <class T>
struct Var {
  Tape<T>* tape = nullptr;  ///< the tape the node is on
  std::size_t id = 0;       ///< the node's index on it (its position in creation order)

  /// The node's value (valid until the tape is cleared).
  const Array<T>& value() const;
  /// The value's shape.
  const Shape& shape() const { return value().shape(); }
  /// The value's number of elements.
  std::size_t size() const { return value().size(); }
  /// The value of a one-element node (a loss, a summed energy).
  T item() const;
};

/// Work counters, so that tests can prove which products ran.
struct TapeStats {
  std::size_t vjp_calls = 0;      ///< VJPs run by backward passes
  std::size_t gemm_forward = 0;   ///< matrix products in forward ops
  std::size_t gemm_backward = 0;  ///< matrix products in VJPs (input or weight gradients)
};

/// The reverse-mode tape (see the top of this file): records a computation as nodes in creation
/// order and runs backward passes over them, computing only the gradients asked for.
template <class T>
class Tape {
 public:
  /// A node's vector-Jacobian product: reads gy(self) and adds into its inputs' gradients.
  using VjpFn = void (*)(Tape<T>&, std::size_t self);

  Tape() = default;
  Tape(const Tape&) = delete;  // Vars point at their tape
  Tape& operator=(const Tape&) = delete;

  // ---- leaves ---------------------------------------------------------------------------------
  /// A parameter leaf. The tape reads p.value in place (no copy); p must outlive the tape's use.
  Var<T> param(Parameter<T>& p);
  /// An input leaf: x is copied onto the tape (into a reused buffer).
  Var<T> input(const Array<T>& x, bool requires_grad = false);
  /// An input leaf from an xtensor expression, evaluated into the tape's buffer (no temporary).
  template <class E>
  Var<T> input(const xt::xexpression<E>& x, bool requires_grad = false) {
    std::size_t i = push_leaf("input", requires_grad);
    xt::noalias(node_(i).own) = x.derived_cast();
    return {this, i};
  }
  /// An input leaf that reads x in place, without input()'s copy (as a parameter leaf reads its
  /// Parameter): x must outlive the tape's use and keep its values until backward is done.
  Var<T> input_ref(const Array<T>& x, bool requires_grad = false);
  /// A constant: an input that never wants a gradient.
  Var<T> constant(const Array<T>& x) { return input(x, false); }
  /// A one-element constant.
  Var<T> scalar(T v);

  // ---- backward -------------------------------------------------------------------------------
  /// Gradients of the one-element y with respect to every leaf that wants one: all parameters
  /// (accumulated into Parameter::grad) and every input made with requires_grad.
  void backward(Var<T> y);
  /// Gradients with respect to exactly the given leaves (inputs or parameter leaves) and the given
  /// parameters. Nothing else is computed.
  void backward(Var<T> y, std::span<const Var<T>> wrt, std::span<Parameter<T>* const> params = {});
  /// backward(y, wrt, params) with the leaves given as a braced list.
  void backward(Var<T> y, std::initializer_list<Var<T>> wrt,
                std::span<Parameter<T>* const> params = {}) {
    backward(y, std::span<const Var<T>>(wrt.begin(), wrt.size()), params);
  }
  /// dy/dleaf from the last backward pass. Throws if the leaf was not asked for.
  const Array<T>& grad(Var<T> leaf) const;
  /// Moves dy/dleaf out instead of copying it: swaps it with `into`, whose buffer the tape keeps
  /// for the next pass (a loop that passes the same array every time allocates nothing once both
  /// buffers have their size). grad(leaf) is not readable afterwards.
  void swap_grad(Var<T> leaf, Array<T>& into);
  /// Like backward(y, {}, params), but the parameters' gradients stay on the tape instead of being
  /// added into Parameter::grad; param_grads then finds them. For tapes on several threads
  /// whose energies share parameters: each thread's backward writes only to its own tape.
  void backward_on_tape(Var<T> y, std::span<Parameter<T>* const> params);
  /// Appends to `out` the gradient buffers (p.value.size() elements each) of p's leaves from the
  /// last backward_on_tape, in tape order: dy/dp is their sum (an energy evaluated twice puts each
  /// parameter on the tape twice). See sum_into for adding them up.
  void param_grads(const Parameter<T>& p, std::vector<const T*>& out) const;

  /// Forget all nodes but keep their memory for the next graph.
  /// While frozen, param(p) records p's current value as a constant (no gradient flows to p):
  /// how a term such as improved CD's E_θ̄(x) evaluates an energy at fixed parameters while its
  /// input still depends on them. Off by default; clear() does not change it.
  void set_params_frozen(bool frozen) { params_frozen_ = frozen; }
  /// Whether param(p) records constants (set_params_frozen).
  bool params_frozen() const { return params_frozen_; }

  /// Forget the nodes (their memory is kept for the next graph); every Var made so far is stale.
  void clear() { size_ = 0; }
  /// The number of nodes recorded since the last clear().
  std::size_t size() const { return size_; }
  TapeStats stats;  ///< work counters, accumulated over the tape's life (tests read them)

  /// Threads for ops that split their work by sample: conv2d runs its images on `n` threads, bmm
  /// its batch, matmul and linear their rows, the elementwise ops their elements, each block with
  /// OpenBLAS single-threaded inside (a per-image product is too small for OpenBLAS's own threads
  /// to pay). 1, the default, runs everything on the calling thread. Values agree with one
  /// thread's up to rounding (the weight gradient is summed per block, then over blocks).
  void set_threads(std::size_t n) { pool_ = n > 1 ? std::make_unique<WorkerPool>(n) : nullptr; }
  /// The number of threads set (1: none but the caller's).
  std::size_t threads() const { return pool_ ? pool_->max_parts() : 1; }
  /// The tape's worker pool, or nullptr with one thread (ops split their work on it).
  WorkerPool* pool() { return pool_.get(); }

  // ---- the interface ops are written against (ops.cpp) ----------------------------------------
  /// One recorded operation: its value, its gradient in the current backward pass, its inputs
  /// and the payload its VJP needs.
  struct Node {
    const char* op = "";  ///< the op's name (the differentiable VJPs are looked up by it)
    Array<T> own;         ///< value storage (a parameter leaf reads its Parameter)
    const Array<T>* value = nullptr;  ///< &own, or &param->value
    Array<T> grad;                    ///< cotangent, valid when grad_ready
    Array<T> aux;                     ///< forward data a VJP reuses (e.g. sigmoid(x) for silu)
    std::vector<std::size_t> in;      ///< input node indices
    std::vector<std::size_t> idx;     ///< integer payload: gather indices, argmax positions, ...
    VjpFn vjp = nullptr;              ///< nullptr for leaves
    Parameter<T>* param = nullptr;    ///< set for parameter leaves
    T s0{};                           ///< scalar payload (e.g. affine's scale, leaky_relu's slope)
    T s1{};                           ///< second scalar payload (e.g. affine's shift)
    std::ptrdiff_t axis = 0;          ///< axis payload (reductions, softmax, concat)
    bool keepdims = false;            ///< whether a reduction kept its axis
    bool flag_a = false;              ///< flag payload, e.g. matmul's transpose of a
    bool flag_b = false;              ///< flag payload, e.g. matmul's transpose of b
    bool requires_grad = false;       ///< leaves only
    bool needs = false;               ///< set by backward: a requested leaf lies below
    bool grad_ready = false;          ///< set by backward: grad holds a value
  };

  /// Append an op node with the given inputs; its value is to be written into out(i).
  std::size_t push(const char* op, std::initializer_list<std::size_t> inputs, VjpFn vjp);
  /// push() with the inputs as a span (ops with a variable number of inputs: concat).
  std::size_t push(const char* op, std::span<const std::size_t> inputs, VjpFn vjp);
  /// Node i itself (an op's implementation reads and writes its payload).
  Node& node_(std::size_t i) { return nodes_[i]; }
  /// Node i, read-only.
  const Node& node_(std::size_t i) const { return nodes_[i]; }
  /// Node i's value.
  const Array<T>& val(std::size_t i) const { return *nodes_[i].value; }
  /// Node i's own value buffer, where an op writes its result.
  Array<T>& out(std::size_t i) { return nodes_[i].own; }
  /// The index of node i's k-th input.
  std::size_t in(std::size_t i, std::size_t k) const { return nodes_[i].in[k]; }
  /// Does node i need a gradient in the current backward pass?
  bool needs(std::size_t i) const { return nodes_[i].needs; }
  /// The incoming cotangent of node i (inside its VJP).
  const Array<T>& gy(std::size_t i) const { return nodes_[i].grad; }

  /// Add expr (shaped like node i) into node i's gradient; the first contribution is assigned.
  template <class E>
  void accumulate(std::size_t i, const E& expr) {
    Node& n = nodes_[i];
    if (!n.grad_ready) {
      xt::noalias(n.grad) = expr;
      n.grad_ready = true;
    } else {
      xt::noalias(n.grad) += expr;
    }
  }
  /// Add expr, shaped like the broadcast output, into node i's gradient summed back to node i's
  /// shape: the one place where broadcasting is undone.
  template <class E>
  void accumulate_sum_to(std::size_t i, const E& expr) {
    const auto& es = expr.shape();
    const auto& vs = val(i).shape();
    if (es.size() == vs.size() && std::equal(es.begin(), es.end(), vs.begin()))
      return accumulate(i, expr);
    xt::noalias(scratch_) = expr;  // materialise at the broadcast shape, then reduce
    sum_to(scratch_, i);
  }
  /// Node i's gradient buffer, zero-filled on first use in this pass (for scatter-style VJPs).
  T* grad_zeroed(std::size_t i);
  /// Add n values, in node i's element order, into node i's gradient: copied on the first
  /// contribution, added afterwards (reshape's VJP: the same elements under another shape).
  void accumulate_flat(std::size_t i, const T* src) {
    Node& nd = nodes_[i];
    const std::size_t n = nd.value->size();
    if (!nd.grad_ready) {
      nd.grad.resize(nd.value->shape());
      std::copy(src, src + n, nd.grad.data());
      nd.grad_ready = true;
    } else {
      T* g = nd.grad.data();
      for (std::size_t e = 0; e < n; ++e) g[e] += src[e];
    }
  }
  /// Node i's gradient buffer shaped like its value, and the BLAS beta to write into it with:
  /// 0 on the first contribution (overwrite), 1 afterwards (accumulate).
  Array<T>& grad_for_gemm(std::size_t i, T& beta);

 private:
  std::size_t push_leaf(const char* op, bool requires_grad);
  void sum_to(const Array<T>& g, std::size_t i);
  void run_backward(Var<T> y);

  std::deque<Node> nodes_;         // a deque: references to nodes stay valid while the tape grows
  bool keep_param_grads_ = false;  // set during backward_on_tape
  std::size_t last_output_ = 0;    // y of the last backward pass
  std::size_t size_ = 0;
  Array<T> scratch_;
  std::unique_ptr<WorkerPool> pool_;  // set_threads
  bool params_frozen_ = false;        // set_params_frozen
};

template <class T>
const Array<T>& Var<T>::value() const {
  return tape->val(id);
}

/// dst[e] = src[0][e] + src[1][e] + ... for e in [lo, hi), added left to right (0 for no
/// sources): gradients held on several tapes (Tape::param_grads), gathered in one pass. The order
/// is that of zeroing dst and adding each source in turn, with one read of each buffer.
template <class T>
void sum_into(std::span<const T* const> src, T* dst, std::size_t lo, std::size_t hi) {
  const std::size_t m = src.size();
  if (m == 0) return std::fill(dst + lo, dst + hi, T(0));
  if (m == 1) {
    std::copy(src[0] + lo, src[0] + hi, dst + lo);
    return;
  }
  // two sources a pass, so that dst is written (and read back) half as often
  for (std::size_t e = lo; e < hi; ++e) dst[e] = src[0][e] + src[1][e];
  std::size_t k = 2;
  for (; k + 1 < m; k += 2)
    for (std::size_t e = lo; e < hi; ++e) dst[e] = (dst[e] + src[k][e]) + src[k + 1][e];
  if (k < m)
    for (std::size_t e = lo; e < hi; ++e) dst[e] += src[k][e];
}

/// Gradients of y with respect to the given leaves, as copies, in order.
template <class T>
std::vector<Array<T>> grad(Var<T> y, std::initializer_list<Var<T>> wrt) {
  y.tape->backward(y, wrt);
  std::vector<Array<T>> out;
  out.reserve(wrt.size());
  for (const auto& v : wrt) out.push_back(y.tape->grad(v));
  return out;
}

/// This tape's gradients of y for the given parameters, returned as copies (together with the
/// gradients of the leaves in wrt, which stay readable through grad()), without touching the
/// parameters' accumulated .grad: each is saved, zeroed, read after backward, and restored.
template <class T>
std::vector<Array<T>> param_gradients(Var<T> y, std::span<Parameter<T>* const> params,
                                      std::span<const Var<T>> wrt = {}) {
  std::vector<Array<T>> saved, out;
  saved.reserve(params.size());
  out.reserve(params.size());
  for (auto* p : params) {
    saved.push_back(p->grad);
    p->zero_grad();
  }
  y.tape->backward(y, wrt, params);
  for (std::size_t k = 0; k < params.size(); ++k) {
    out.push_back(params[k]->grad);
    params[k]->grad = std::move(saved[k]);
  }
  return out;
}

extern template class Tape<float>;
extern template class Tape<double>;
extern template struct Var<float>;
extern template struct Var<double>;

}  // namespace ebl
