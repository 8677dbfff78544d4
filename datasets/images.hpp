// Labelled image data: the 8×8 digits (CSV, gzip) and Fashion-MNIST (IDX, gzip), pixels scaled
// to [0, 1], loaded into a LabeledData (datasets/labeled.hpp). Every malformed input — a missing
// file, bad gzip, a wrong magic number, truncated data, sizes that disagree, a bad CSV field — is
// one IoError naming the file and what is wrong with it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "datasets/data_dir.hpp"
#include "datasets/labeled.hpp"
#include "io/files.hpp"

namespace ebl {

namespace detail {
/// A field of a data file as it can be printed on one line: control and non-ASCII bytes as \xNN,
/// at most 40 characters.
inline std::string printable(const std::string& s) {
  std::string out;
  for (char ch : s.substr(0, 40)) {
    const auto u = static_cast<unsigned char>(ch);
    out += (u < 0x20 || u >= 0x7f) ? fmt::format("\\x{:02x}", u) : std::string(1, ch);
  }
  return s.size() > 40 ? out + "..." : out;
}
}  // namespace detail

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
      if (q == line.size() && !field.empty() && field.back() == '\r') field.pop_back();
      // a plain non-negative decimal: strtod alone would also take "nan", "inf", "0x1f" and
      // " 5", and stop at an embedded NUL ("5\0garbage" read as 5)
      const bool plain = !field.empty() && std::all_of(field.begin(), field.end(), [](char ch) {
        return (ch >= '0' && ch <= '9') || ch == '.';
      });
      char* stop = nullptr;
      const double v = plain ? std::strtod(field.c_str(), &stop) : 0;
      if (!plain || stop != field.c_str() + field.size())
        throw IoError(fmt::format("{}: line {}: '{}' is not a number", path.string(), line_no,
                                  detail::printable(field)));
      fields.push_back(v);
      p = q + 1;
    }
    if (fields.size() != 65)
      throw IoError(fmt::format("{}: line {}: {} fields, expected 64 pixels and a label",
                                path.string(), line_no, fields.size()));
    for (int k = 0; k < 64; ++k) {
      if (!(fields[k] >= 0 && fields[k] <= 16))
        throw IoError(fmt::format("{}: line {}: pixel {} is {}, outside 0..16", path.string(),
                                  line_no, k, fields[k]));
      pixels.push_back(float(fields[k] / 16.0));
    }
    double label = fields[64];
    if (!(label >= 0 && label <= 9) || label != std::floor(label))
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
  // sizes checked without overflow (a crafted header may hold any 32-bit numbers) before
  // anything is allocated
  if (rows == 0 || cols == 0)
    throw IoError(fmt::format("{}: images of {} x {} pixels", images.string(), rows, cols));
  const std::size_t stored = im.size() - 16;
  if (rows > stored || cols > stored || rows * cols > stored || stored % (rows * cols) != 0 ||
      stored / (rows * cols) != n)
    throw IoError(fmt::format("{}: {} bytes of pixels, expected {} x {} x {} (truncated or padded)",
                              images.string(), stored, n, rows, cols));
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

/// Where the data live: the digits copy carried with the library (datasets/data/ here,
/// <prefix>/share/ebl once installed; see datasets/data_dir.hpp for the lookup and its
/// overrides), and Debian's Fashion-MNIST (package dataset-fashion-mnist).
inline std::filesystem::path default_digits_path(const std::filesystem::path& data_dir = {}) {
  return data_file("digits.csv.gz", data_dir);
}
inline constexpr const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

}  // namespace ebl
