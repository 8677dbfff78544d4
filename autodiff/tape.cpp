// The tape's bookkeeping: node creation with buffer reuse, the backward sweep, and sum_to, the
// one helper that undoes broadcasting.
#include "autodiff/tape.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace ebl {

template <class T>
T Var<T>::item() const {
  const Array<T>& v = value();
  if (v.size() != 1)
    throw ShapeError(fmt::format("item: expected one element, got shape {}", shape_str(v.shape())));
  return *v.data();
}

template <class T>
std::size_t Tape<T>::push(const char* op, std::span<const std::size_t> inputs, VjpFn vjp) {
  for (std::size_t k : inputs)
    if (k >= size_) throw std::logic_error(fmt::format("{}: input is not on this tape", op));
  if (size_ == nodes_.size()) nodes_.emplace_back();
  Node& n = nodes_[size_];
  n.op = op;
  n.value = &n.own;
  n.in.assign(inputs.begin(), inputs.end());  // keeps capacity
  n.idx.clear();
  n.vjp = vjp;
  n.param = nullptr;
  n.requires_grad = false;
  n.needs = n.grad_ready = false;
  return size_++;
}

template <class T>
std::size_t Tape<T>::push(const char* op, std::initializer_list<std::size_t> inputs, VjpFn vjp) {
  return push(op, std::span<const std::size_t>(inputs.begin(), inputs.size()), vjp);
}

template <class T>
std::size_t Tape<T>::push_leaf(const char* op, bool requires_grad) {
  std::size_t i = push(op, std::span<const std::size_t>{}, nullptr);
  nodes_[i].requires_grad = requires_grad;
  return i;
}

template <class T>
Var<T> Tape<T>::param(Parameter<T>& p) {
  if (params_frozen_) return input_ref(p.value, false);  // a constant: no gradient reaches p
  std::size_t i = push_leaf("param", true);
  nodes_[i].param = &p;
  nodes_[i].value = &p.value;
  return {this, i};
}

template <class T>
Var<T> Tape<T>::input(const Array<T>& x, bool requires_grad) {
  std::size_t i = push_leaf("input", requires_grad);
  Array<T>& v = nodes_[i].own;
  v.resize(x.shape());
  std::copy(x.begin(), x.end(), v.begin());
  return {this, i};
}

template <class T>
Var<T> Tape<T>::input_ref(const Array<T>& x, bool requires_grad) {
  std::size_t i = push_leaf("input", requires_grad);
  nodes_[i].value = &x;
  return {this, i};
}

template <class T>
Var<T> Tape<T>::scalar(T s) {
  std::size_t i = push_leaf("scalar", false);
  Array<T>& v = nodes_[i].own;
  v.resize(Shape{});
  *v.data() = s;
  return {this, i};
}

template <class T>
void Tape<T>::backward(Var<T> y) {
  if (y.tape != this) throw std::logic_error("backward: output is not on this tape");
  for (std::size_t i = 0; i <= y.id; ++i) {
    Node& n = nodes_[i];
    n.needs = n.vjp ? false : n.requires_grad;
  }
  run_backward(y);
}

template <class T>
void Tape<T>::backward(Var<T> y, std::span<const Var<T>> wrt,
                       std::span<Parameter<T>* const> params) {
  if (y.tape != this) throw std::logic_error("backward: output is not on this tape");
  for (std::size_t i = 0; i <= y.id; ++i) {
    Node& n = nodes_[i];
    n.needs = n.param && std::find(params.begin(), params.end(), n.param) != params.end();
  }
  for (const Var<T>& v : wrt) {
    if (v.tape != this) throw std::logic_error("backward: a requested leaf is not on this tape");
    if (nodes_[v.id].vjp)
      throw std::invalid_argument(fmt::format(
          "backward: requested node {} is the output of '{}', not a leaf", v.id, nodes_[v.id].op));
    if (v.id <= y.id) nodes_[v.id].needs = true;
  }
  run_backward(y);
}

template <class T>
void Tape<T>::run_backward(Var<T> y) {
  if (val(y.id).size() != 1)
    throw ShapeError(fmt::format("backward: output must have one element, got shape {}",
                                 shape_str(val(y.id).shape())));
  // Forward sweep: an op node needs a gradient iff one of its inputs does.
  for (std::size_t i = 0; i <= y.id; ++i) {
    Node& n = nodes_[i];
    n.grad_ready = false;
    if (n.vjp)
      n.needs =
          std::any_of(n.in.begin(), n.in.end(), [&](std::size_t k) { return nodes_[k].needs; });
  }
  for (std::size_t i = y.id + 1; i < size_; ++i) nodes_[i].needs = nodes_[i].grad_ready = false;

  Node& top = nodes_[y.id];
  top.grad.resize(top.value->shape());
  top.grad.fill(T(1));
  top.grad_ready = true;
  // Reverse sweep in creation order: when node i runs its VJP, every consumer of i has already
  // added its contribution to i's gradient.
  for (std::size_t i = y.id + 1; i-- > 0;) {
    Node& n = nodes_[i];
    if (!n.needs || !n.grad_ready || !n.vjp) continue;
    n.vjp(*this, i);
    ++stats.vjp_calls;
  }
  // Requested leaves that y does not depend on get a zero gradient; parameters accumulate.
  for (std::size_t i = 0; i <= y.id; ++i) {
    Node& n = nodes_[i];
    if (n.vjp || !n.needs) continue;
    if (!n.grad_ready) {
      n.grad.resize(n.value->shape());
      n.grad.fill(T(0));
      n.grad_ready = true;
    }
    if (n.param && !keep_param_grads_) xt::noalias(n.param->grad) += n.grad;
  }
  last_output_ = y.id;
}

template <class T>
void Tape<T>::backward_on_tape(Var<T> y, std::span<Parameter<T>* const> params) {
  keep_param_grads_ = true;
  try {
    backward(y, std::span<const Var<T>>{}, params);
  } catch (...) {
    keep_param_grads_ = false;
    throw;
  }
  keep_param_grads_ = false;
}

template <class T>
void Tape<T>::param_grads(const Parameter<T>& p, std::vector<const T*>& out) const {
  for (std::size_t i = 0; i <= last_output_ && i < size_; ++i) {
    const Node& n = nodes_[i];
    if (n.param == &p && n.needs && n.grad_ready) out.push_back(n.grad.data());
  }
}

template <class T>
const Array<T>& Tape<T>::grad(Var<T> leaf) const {
  if (leaf.tape != this || leaf.id >= size_)
    throw std::logic_error("grad: node is not on this tape");
  const Node& n = nodes_[leaf.id];
  if (n.vjp || !n.needs || !n.grad_ready)
    throw std::logic_error(fmt::format(
        "grad: node {} ('{}') was not a requested leaf of the last backward pass", leaf.id, n.op));
  return n.grad;
}

template <class T>
void Tape<T>::swap_grad(Var<T> leaf, Array<T>& into) {
  grad(leaf);  // the same checks
  Node& n = nodes_[leaf.id];
  std::swap(n.grad, into);
  n.grad_ready = false;
}

template <class T>
T* Tape<T>::grad_zeroed(std::size_t i) {
  Node& n = nodes_[i];
  if (!n.grad_ready) {
    n.grad.resize(n.value->shape());
    n.grad.fill(T(0));
    n.grad_ready = true;
  }
  return n.grad.data();
}

template <class T>
Array<T>& Tape<T>::grad_for_gemm(std::size_t i, T& beta) {
  Node& n = nodes_[i];
  beta = n.grad_ready ? T(1) : T(0);
  if (!n.grad_ready) {
    n.grad.resize(n.value->shape());
    n.grad_ready = true;
  }
  return n.grad;
}

// Sum g (shaped like a broadcast result) down to node i's shape and add it to node i's gradient.
// Numpy rules: shapes are right-aligned; a dimension missing or equal to 1 in the target was
// broadcast, so g is summed over it.
template <class T>
void Tape<T>::sum_to(const Array<T>& g, std::size_t i) {
  const Shape& gs = g.shape();
  const Shape& ts = val(i).shape();
  const std::size_t r = gs.size();
  const std::size_t off = r - ts.size();
  // target stride per dimension of g, 0 where broadcast
  Shape tstride(r, 0);
  std::size_t st = 1;
  for (std::size_t d = r; d-- > off;) {
    std::size_t td = ts[d - off];
    tstride[d] = (td == 1 && gs[d] != 1) ? 0 : st;
    st *= td;
  }
  T* dst = grad_zeroed(i);
  const T* src = g.data();
  if (r == 0) {
    dst[0] += src[0];
    return;
  }
  const std::size_t inner = gs[r - 1], inner_stride = tstride[r - 1];
  const std::size_t outer = g.size() / std::max<std::size_t>(inner, 1);
  Shape counter(r, 0);
  std::size_t toff = 0;
  for (std::size_t o = 0; o < outer; ++o) {
    T* d = dst + toff;
    if (inner_stride == 0) {
      T acc = 0;
      for (std::size_t k = 0; k < inner; ++k) acc += src[k];
      d[0] += acc;
    } else {
      for (std::size_t k = 0; k < inner; ++k) d[k] += src[k];
    }
    src += inner;
    // advance the multi-index over the outer dimensions
    for (std::size_t dd = r - 1; dd-- > 0;) {
      toff += tstride[dd];
      if (++counter[dd] < gs[dd]) break;
      toff -= tstride[dd] * gs[dd];
      counter[dd] = 0;
    }
  }
}

template class Tape<float>;
template class Tape<double>;
template struct Var<float>;
template struct Var<double>;

}  // namespace ebl
