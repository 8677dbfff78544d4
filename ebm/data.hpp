// Labelled image data: the 8×8 digits (CSV, gzip) and Fashion-MNIST (IDX, gzip), pixels scaled
// to [0, 1], with a fixed held-out split. Every malformed input — a missing file, bad gzip, a
// wrong magic number, truncated data, sizes that disagree, a bad CSV field — is one IoError
// naming the file and what is wrong with it.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autodiff/random.hpp"
#include "ebm/checkpoint.hpp"

namespace ebl {

struct LabeledData {
  Array<float> x;              ///< [n, d], in [0, 1]
  std::vector<std::size_t> y;  ///< labels in [0, classes)
  std::size_t classes = 0;
  std::size_t size() const { return y.size(); }
};

/// The whole decompressed content of a gzip file.
inline std::string read_gzip(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path))
    throw IoError(fmt::format("{}: no such file", path.string()));
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw IoError(fmt::format("{}: cannot open", path.string()));
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, std::size_t(n));
  int err = 0;
  const char* msg = gzerror(f, &err);
  std::string what = (n < 0 || err < 0) ? std::string(msg) : std::string();
  gzclose(f);
  if (!what.empty()) throw IoError(fmt::format("{}: corrupt gzip data ({})", path.string(), what));
  return out;
}

/// The digits CSV: per line 64 pixel values 0..16 then the label 0..9.
inline LabeledData load_digits_csv(const std::filesystem::path& path) {
  const std::string text = read_gzip(path);
  LabeledData d;
  d.classes = 10;
  std::vector<float> pixels;
  std::size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.empty() || line == "\r") continue;
    std::vector<double> fields;
    std::size_t p = 0;
    while (p <= line.size()) {
      std::size_t q = line.find(',', p);
      if (q == std::string::npos) q = line.size();
      std::string field = line.substr(p, q - p);
      char* stop = nullptr;
      double v = std::strtod(field.c_str(), &stop);
      if (field.empty() || (*stop != '\0' && *stop != '\r'))
        throw IoError(
            fmt::format("{}: line {}: '{}' is not a number", path.string(), line_no, field));
      fields.push_back(v);
      p = q + 1;
    }
    if (fields.size() != 65)
      throw IoError(fmt::format("{}: line {}: {} fields, expected 64 pixels and a label",
                                path.string(), line_no, fields.size()));
    for (int k = 0; k < 64; ++k) {
      if (fields[k] < 0 || fields[k] > 16)
        throw IoError(fmt::format("{}: line {}: pixel {} is {}, outside 0..16", path.string(),
                                  line_no, k, fields[k]));
      pixels.push_back(float(fields[k] / 16.0));
    }
    double label = fields[64];
    if (label < 0 || label > 9 || label != std::floor(label))
      throw IoError(
          fmt::format("{}: line {}: label {} is not a digit", path.string(), line_no, label));
    d.y.push_back(std::size_t(label));
  }
  if (d.y.empty()) throw IoError(fmt::format("{}: no data", path.string()));
  d.x = Array<float>::from_shape({d.y.size(), 64});
  std::copy(pixels.begin(), pixels.end(), d.x.begin());
  return d;
}

namespace detail {
inline std::uint32_t big_endian_u32(const std::string& b, std::size_t pos) {
  return (std::uint32_t(std::uint8_t(b[pos])) << 24) |
         (std::uint32_t(std::uint8_t(b[pos + 1])) << 16) |
         (std::uint32_t(std::uint8_t(b[pos + 2])) << 8) | std::uint32_t(std::uint8_t(b[pos + 3]));
}
}  // namespace detail

/// An IDX image file (magic 2051: n, rows, cols, then bytes) and its label file (magic 2049: n,
/// then bytes), both gzip-compressed, as in MNIST and Fashion-MNIST.
inline LabeledData load_idx(const std::filesystem::path& images,
                            const std::filesystem::path& labels, std::size_t classes = 10) {
  const std::string im = read_gzip(images), lb = read_gzip(labels);
  if (im.size() < 16 || detail::big_endian_u32(im, 0) != 2051)
    throw IoError(fmt::format("{}: not an IDX image file (magic number {} instead of 2051)",
                              images.string(), im.size() >= 4 ? detail::big_endian_u32(im, 0) : 0));
  if (lb.size() < 8 || detail::big_endian_u32(lb, 0) != 2049)
    throw IoError(fmt::format("{}: not an IDX label file (magic number {} instead of 2049)",
                              labels.string(), lb.size() >= 4 ? detail::big_endian_u32(lb, 0) : 0));
  const std::size_t n = detail::big_endian_u32(im, 4), rows = detail::big_endian_u32(im, 8),
                    cols = detail::big_endian_u32(im, 12), nl = detail::big_endian_u32(lb, 4);
  if (n != nl)
    throw IoError(fmt::format("{} has {} images but {} has {} labels", images.string(), n,
                              labels.string(), nl));
  if (im.size() != 16 + n * rows * cols)
    throw IoError(fmt::format("{}: {} bytes of pixels, expected {} x {} x {} (truncated or padded)",
                              images.string(), im.size() - 16, n, rows, cols));
  if (lb.size() != 8 + n)
    throw IoError(
        fmt::format("{}: {} labels stored, expected {}", labels.string(), lb.size() - 8, n));
  LabeledData d;
  d.classes = classes;
  d.x = Array<float>::from_shape({n, rows * cols});
  for (std::size_t k = 0; k < n * rows * cols; ++k)
    d.x.data()[k] = float(std::uint8_t(im[16 + k])) / 255.0f;
  d.y.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    d.y[i] = std::uint8_t(lb[8 + i]);
    if (d.y[i] >= classes)
      throw IoError(
          fmt::format("{}: label {} at {} is not below {}", labels.string(), d.y[i], i, classes));
  }
  return d;
}

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
  std::vector<std::size_t> perm(d.size());
  for (std::size_t i = 0; i < perm.size(); ++i) perm[i] = i;
  Rng rng(seed);
  for (std::size_t i = perm.size(); i-- > 1;) std::swap(perm[i], perm[rng.below(i + 1)]);
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

/// Where the data live: the digits copy carried in the repository (data/, see its README), and
/// Debian's Fashion-MNIST (package dataset-fashion-mnist).
inline std::filesystem::path default_digits_path() {
  return std::filesystem::path(EBL_SOURCE_DIR) / "data/digits.csv.gz";
}
inline constexpr const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

}  // namespace ebl
