// A labelled data set in memory — rows of features with a class label each — and what is done to
// one before training: a subset, a fixed seeded split, binarised pixels. The loaders
// (datasets/images.hpp) produce it; the trainers in ebm/ take its arrays and labels, not this
// record.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "autodiff/array.hpp"
#include "autodiff/random.hpp"

namespace ebl {

/// Labelled examples: inputs and one label per row.
struct LabeledData {
  Array<float> x;              ///< [n, d], in [0, 1]
  std::vector<std::size_t> y;  ///< labels in [0, classes)
  std::size_t classes = 0;     ///< the number of classes
  /// The number of examples.
  std::size_t size() const { return y.size(); }
};

/// The rows `idx` of a data set.
inline LabeledData subset(const LabeledData& d, const std::vector<std::size_t>& idx) {
  LabeledData s;
  s.classes = d.classes;
  const std::size_t dim = d.x.shape()[1];
  s.x = Array<float>::from_shape({idx.size(), dim});
  for (std::size_t i = 0; i < idx.size(); ++i) {
    std::copy_n(d.x.data() + idx[i] * dim, dim, s.x.data() + i * dim);
    s.y.push_back(d.y[idx[i]]);
  }
  return s;
}

/// A fixed held-out split: a seeded permutation (Fisher–Yates), the last `test` rows held out.
inline std::pair<LabeledData, LabeledData> split(const LabeledData& d, std::size_t test,
                                                 std::uint64_t seed) {
  if (test >= d.size())
    throw std::invalid_argument(
        fmt::format("split: {} held out of {} leaves nothing to train on", test, d.size()));
  Rng rng(seed);
  const std::vector<std::size_t> perm = rng.permutation(d.size());
  std::vector<std::size_t> tr(perm.begin(), perm.end() - std::ptrdiff_t(test)),
      te(perm.end() - std::ptrdiff_t(test), perm.end());
  return {subset(d, tr), subset(d, te)};
}

/// Binarise pixels: by a threshold, or by sampling each pixel as Bernoulli(value).
inline Array<float> binarize_threshold(const Array<float>& x, float threshold = 0.5f) {
  Array<float> b(x.shape());
  std::transform(x.begin(), x.end(), b.begin(),
                 [threshold](float v) { return v > threshold ? 1.0f : 0.0f; });
  return b;
}
inline Array<float> binarize_sample(const Array<float>& x, Rng& rng) {
  Array<float> b(x.shape());
  std::transform(x.begin(), x.end(), b.begin(),
                 [&rng](float v) { return rng.bernoulli(v) ? 1.0f : 0.0f; });
  return b;
}

}  // namespace ebl
