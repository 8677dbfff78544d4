// Convolutional layers on the tape: Conv2d and a small Cnn builder in the manner of MLP —
// blocks of convolution, activation and average pooling, then a flattening and linear layers.
// Initialisation follows PyTorch's nn.Conv2d default, U(-1/√fan_in, 1/√fan_in) for W and b with
// fan_in = c·kh·kw, drawn from the project's seeded Rng.
#pragma once

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autodiff/layers.hpp"

namespace ebl {

/// y = conv2d(x, W, b) with W: [out, in, k, k], b: [out], on NCHW batches.
template <class T>
class Conv2d {
 public:
  /// A k×k convolution from `in` to `out` maps with He-uniform weights from rng.
  Conv2d(std::size_t in, std::size_t out, std::size_t kernel, Rng& rng, std::size_t stride = 1,
         std::size_t padding = 0, const std::string& name = "conv")
      : stride_(stride), padding_(padding) {
    const double bound = 1 / std::sqrt(double(in * kernel * kernel));
    W = Parameter<T>(name + ".W",
                     rng.uniform_array<T>(Shape{out, in, kernel, kernel}, -bound, bound));
    b = Parameter<T>(name + ".b", rng.uniform_array<T>(Shape{out}, -bound, bound));
  }
  /// conv2d(x, W, b) on the tape: x [n, in, h, w].
  Var<T> operator()(Tape<T>& t, Var<T> x) {
    return conv2d(x, t.param(W), t.param(b), stride_, padding_);
  }
  /// W and b.
  std::vector<Parameter<T>*> parameters() { return {&W, &b}; }
  /// The stride.
  std::size_t stride() const { return stride_; }
  /// The zero padding.
  std::size_t padding() const { return padding_; }

  Parameter<T> W;  ///< filters [out, in, k, k]
  Parameter<T> b;  ///< biases [out]

 private:
  std::size_t stride_, padding_;
};

/// One block of a Cnn: a convolution to `channels` maps, the activation, then average pooling
/// over pool×pool windows (pool = 1: none).
struct ConvBlock {
  std::size_t channels;     ///< output maps
  std::size_t kernel = 3;   ///< k of the k×k filters
  std::size_t stride = 1;   ///< the convolution's stride
  std::size_t padding = 1;  ///< zero padding on each side
  std::size_t pool = 1;     ///< average pooling window (1: none)
};

/// The shape of a Cnn: its input images, its blocks, and the linear layers after them.
struct CnnSpec {
  std::size_t channels = 1;         ///< input images' channels
  std::size_t height = 28;          ///< input images' height
  std::size_t width = 28;           ///< input images' width
  std::vector<ConvBlock> blocks;    ///< the convolution blocks, in order
  std::vector<std::size_t> hidden;  ///< widths of the hidden linear layers
  std::size_t outputs = 1;          ///< of the last linear layer (no activation after it)
  /// Average each map over its positions before the linear layers (global average pooling):
  /// features, and so outputs, that do not depend on where in the image a pattern is.
  bool global_pool = false;
};

/// x [n, c·h·w] (or [n, c, h, w]) -> [n, outputs]: the blocks, a flattening, the linear layers
/// with the activation between them. Flat input rows make it an energy's network like MLP: the
/// samplers move x as [n, d].
template <class T>
class Cnn {
 public:
  /// The blocks and linear layers of `spec`, parameters named NAME.convK and NAME.fcL.
  Cnn(const CnnSpec& spec, Activation act, Rng& rng, const std::string& name = "cnn")
      : spec_(spec), act_(act) {
    std::size_t c = spec.channels, h = spec.height, w = spec.width;
    convs_.reserve(spec.blocks.size());
    for (std::size_t k = 0; k < spec.blocks.size(); ++k) {
      const ConvBlock& bl = spec.blocks[k];
      if (bl.channels == 0 || bl.kernel == 0 || bl.stride == 0 || bl.pool == 0)
        throw std::invalid_argument(fmt::format(
            "Cnn: block {} needs channels, kernel, stride and pool of at least 1 (got {}, {}, {}, "
            "{})",
            k, bl.channels, bl.kernel, bl.stride, bl.pool));
      if (h + 2 * bl.padding < bl.kernel || w + 2 * bl.padding < bl.kernel)
        throw std::invalid_argument(fmt::format("Cnn: block {} has a {}x{} kernel for {}x{} maps",
                                                k, bl.kernel, bl.kernel, h, w));
      convs_.emplace_back(c, bl.channels, bl.kernel, rng, bl.stride, bl.padding,
                          fmt::format("{}.conv{}", name, k));
      c = bl.channels;
      h = (h + 2 * bl.padding - bl.kernel) / bl.stride + 1;
      w = (w + 2 * bl.padding - bl.kernel) / bl.stride + 1;
      if (bl.pool > 1) {
        if (bl.pool > h || bl.pool > w)
          throw std::invalid_argument(
              fmt::format("Cnn: block {} pools {}x{} maps by {}", k, h, w, bl.pool));
        h = (h - bl.pool) / bl.pool + 1;
        w = (w - bl.pool) / bl.pool + 1;
      }
    }
    flat_ = spec.global_pool ? c : c * h * w;
    std::vector<std::size_t> sizes{flat_};
    sizes.insert(sizes.end(), spec.hidden.begin(), spec.hidden.end());
    sizes.push_back(spec.outputs);
    head_ = std::make_unique<MLP<T>>(sizes, act, rng, name + ".fc");
  }

  /// x [n, c·h·w] or [n, c, h, w] -> [n, outputs].
  Var<T> operator()(Tape<T>& t, Var<T> x) {
    const auto n = std::ptrdiff_t(x.shape()[0]);
    if (x.shape().size() == 2)
      x = reshape(x, {n, std::ptrdiff_t(spec_.channels), std::ptrdiff_t(spec_.height),
                      std::ptrdiff_t(spec_.width)});
    for (std::size_t k = 0; k < convs_.size(); ++k) {
      x = activate(convs_[k](t, x), act_);
      if (spec_.blocks[k].pool > 1) x = avg_pool2d(x, spec_.blocks[k].pool);
    }
    if (spec_.global_pool) return (*head_)(t, mean(x, {2, 3}));  // [n, c]
    return (*head_)(t, x);  // linear reads the maps [n, c, h, w] as rows [n, c·h·w]: no copy
  }
  /// Every convolution's and linear layer's parameters.
  std::vector<Parameter<T>*> parameters() {
    std::vector<Parameter<T>*> ps;
    for (auto& c : convs_)
      for (auto* p : c.parameters()) ps.push_back(p);
    for (auto* p : head_->parameters()) ps.push_back(p);
    return ps;
  }
  /// c·h·w, the length of a flat input row.
  std::size_t input_size() const { return spec_.channels * spec_.height * spec_.width; }
  /// Features entering the first linear layer.
  std::size_t flat_features() const { return flat_; }

 private:
  CnnSpec spec_;
  Activation act_;
  std::vector<Conv2d<T>> convs_;
  std::unique_ptr<MLP<T>> head_;
  std::size_t flat_ = 0;
};

}  // namespace ebl
