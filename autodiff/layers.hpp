// Small layers on the tape: Linear (y = x W + b) and an MLP builder with a choice of activation.
// Initialisation follows PyTorch's nn.Linear default, U(-1/√fan_in, 1/√fan_in) for W and b,
// drawn from the project's seeded Rng.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/random.hpp"

namespace ebl {

enum class Activation { Relu, LeakyRelu, Tanh, Sigmoid, Softplus, Silu };

inline const char* to_string(Activation a) {
  switch (a) {
    case Activation::Relu:
      return "relu";
    case Activation::LeakyRelu:
      return "leaky_relu";
    case Activation::Tanh:
      return "tanh";
    case Activation::Sigmoid:
      return "sigmoid";
    case Activation::Softplus:
      return "softplus";
    case Activation::Silu:
      return "silu";
  }
  return "?";
}

/// "relu", "leaky_relu", "tanh", "sigmoid", "softplus", "silu" (also "swish").
inline Activation parse_activation(const std::string& s) {
  for (Activation a : {Activation::Relu, Activation::LeakyRelu, Activation::Tanh,
                       Activation::Sigmoid, Activation::Softplus, Activation::Silu})
    if (s == to_string(a)) return a;
  if (s == "swish") return Activation::Silu;
  throw std::invalid_argument(fmt::format(
      "unknown activation '{}' (expected relu, leaky_relu, tanh, sigmoid, softplus, silu)", s));
}

template <class T>
Var<T> activate(Var<T> x, Activation a) {
  switch (a) {
    case Activation::Relu:
      return relu(x);
    case Activation::LeakyRelu:
      return leaky_relu(x, T(0.2));
    case Activation::Tanh:
      return tanh(x);
    case Activation::Sigmoid:
      return sigmoid(x);
    case Activation::Softplus:
      return softplus(x);
    case Activation::Silu:
      return silu(x);
  }
  throw std::logic_error("activate: bad activation");
}

/// y = x W + b with W: [in, out], b: [out].
template <class T>
class Linear {
 public:
  /// A dense layer in -> out, weights and biases uniform in ±1/√in from rng, named NAME.W and NAME.b.
  Linear(std::size_t in, std::size_t out, Rng& rng, const std::string& name = "linear") {
    const double bound = 1 / std::sqrt(double(in));
    Shape ws(2), bs(1);
    ws[0] = in;
    ws[1] = out;
    bs[0] = out;
    W = Parameter<T>(name + ".W", rng.uniform_array<T>(ws, -bound, bound));
    b = Parameter<T>(name + ".b", rng.uniform_array<T>(bs, -bound, bound));
  }

  /// x W + b (the fused linear op).
  Var<T> operator()(Tape<T>& t, Var<T> x) { return linear(x, t.param(W), t.param(b)); }
  /// W and b.
  std::vector<Parameter<T>*> parameters() { return {&W, &b}; }
  /// in.
  std::size_t in_features() const { return W.value.shape()[0]; }
  /// out.
  std::size_t out_features() const { return W.value.shape()[1]; }

  Parameter<T> W;  ///< weights [in, out]
  Parameter<T> b;  ///< biases [out]
};

/// Linear layers of the given sizes with an activation between them (none after the last).
template <class T>
class MLP {
 public:
  /// Parameters are named "<name><l>.W" and "<name><l>.b" for layer l.
  MLP(const std::vector<std::size_t>& sizes, Activation act, Rng& rng,
      const std::string& name = "layer")
      : act_(act) {
    if (sizes.size() < 2) throw std::invalid_argument("MLP: needs at least input and output sizes");
    layers_.reserve(sizes.size() - 1);
    for (std::size_t l = 0; l + 1 < sizes.size(); ++l)
      layers_.emplace_back(sizes[l], sizes[l + 1], rng, fmt::format("{}{}", name, l));
  }

  /// The layers with the activation between them (none after the last).
  Var<T> operator()(Tape<T>& t, Var<T> x) {
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      x = layers_[l](t, x);
      if (l + 1 < layers_.size()) x = activate(x, act_);
    }
    return x;
  }
  /// Every layer's W and b, in order.
  std::vector<Parameter<T>*> parameters() {
    std::vector<Parameter<T>*> ps;
    for (auto& l : layers_)
      for (auto* p : l.parameters()) ps.push_back(p);
    return ps;
  }
  /// The layers.
  std::vector<Linear<T>>& layers() { return layers_; }
  /// The activation between the layers.
  Activation activation() const { return act_; }

 private:
  std::vector<Linear<T>> layers_;
  Activation act_;
};

}  // namespace ebl
