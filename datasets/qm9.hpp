// QM9's SMILES (datasets/data/qm9.csv.gz: 133,885 molecules of up to 9 heavy atoms among C, N,
// O, F, one kekulé SMILES a line under the header `smiles`; origin and licence in
// datasets/data/README.md), and the fixed, seeded train/test split the graph experiments use.
// Turning SMILES into graphs needs RDKit: molecules/molecule.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autodiff/random.hpp"
#include "datasets/data_dir.hpp"
#include "io/files.hpp"

namespace ebl {

/// The SMILES of a one-column CSV (gzip) whose header is `smiles`, in file order.
inline std::vector<std::string> read_smiles_csv(const std::filesystem::path& path) {
  const std::string text = read_gzip(path);
  std::vector<std::string> out;
  std::size_t pos = 0, line = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string s = text.substr(pos, end - pos);
    if (!s.empty() && s.back() == '\r') s.pop_back();
    pos = end + 1;
    if (line++ == 0) {
      if (s != "smiles")
        throw IoError(
            fmt::format("{}: expected the header 'smiles', found '{}'", path.string(), s));
      continue;
    }
    if (s.empty()) continue;
    // a SMILES is printable ASCII without spaces: a comma, a blank, a control byte (an embedded
    // '\r', a NUL) or a non-ASCII byte means the file is not one SMILES a line
    const auto bad = std::find_if(s.begin(), s.end(), [](char ch) {
      const auto u = static_cast<unsigned char>(ch);
      return u <= 0x20 || u >= 0x7f || ch == ',';
    });
    if (bad != s.end())
      throw IoError(fmt::format("{}:{}: not a single SMILES (byte 0x{:02x} at column {})",
                                path.string(), line, static_cast<unsigned char>(*bad),
                                bad - s.begin() + 1));
    out.push_back(std::move(s));
  }
  if (out.empty()) throw IoError(fmt::format("{}: no SMILES", path.string()));
  return out;
}

/// QM9's SMILES, from the data directory (see datasets/data_dir.hpp).
inline std::vector<std::string> load_qm9_smiles(const std::filesystem::path& data_dir = {}) {
  return read_smiles_csv(data_file("qm9.csv.gz", data_dir));
}

/// A seeded split of indices 0..n-1: a permutation by Rng(seed), its first round(test_fraction·n)
/// to test, the rest to train, each in increasing order.
struct Split {
  std::vector<std::size_t> train;  ///< training indices, increasing
  std::vector<std::size_t> test;   ///< held-out indices, increasing
};
inline Split seeded_split(std::size_t n, double test_fraction, std::uint64_t seed) {
  Rng rng(seed);
  const std::vector<std::size_t> idx = rng.permutation(n);
  const auto n_test = std::size_t(test_fraction * double(n) + 0.5);
  Split s{{idx.begin() + std::ptrdiff_t(n_test), idx.end()},
          {idx.begin(), idx.begin() + std::ptrdiff_t(n_test)}};
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.test.begin(), s.test.end());
  return s;
}

}  // namespace ebl
