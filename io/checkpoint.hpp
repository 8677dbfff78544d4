// Checkpoints: named arrays and integers in one binary file, written atomically.
//
// Format (little-endian, as the machine writes it):
//   "EBLCKPT1", u64 #arrays, then per array: u32 name length, name, u32 rank, u64 dims[rank],
//   f64 data[prod dims]; u64 #integers, then per integer: u32 name length, name, u64 value.
// Arrays are stored in double: a float array round-trips exactly.
// save() goes through write_file_atomic (io/files.hpp): an interrupted save leaves the previous
// checkpoint intact.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "autodiff/array.hpp"
#include "io/files.hpp"

namespace ebl {

struct Checkpoint {
  std::map<std::string, Array<double>> arrays;
  std::map<std::string, std::uint64_t> integers;

  template <class T>
  void put(const std::string& name, const Array<T>& a) {
    Array<double> d(a.shape());
    std::copy(a.begin(), a.end(), d.begin());
    arrays[name] = std::move(d);
  }
  /// Copy a stored array into `a`, which must have the stored shape.
  template <class T>
  void get(const std::string& name, Array<T>& a) const {
    auto it = arrays.find(name);
    if (it == arrays.end()) throw IoError(fmt::format("checkpoint: no array '{}'", name));
    if (it->second.shape() != a.shape())
      throw IoError(fmt::format("checkpoint: array '{}' has shape {}, expected {}", name,
                                shape_str(it->second.shape()), shape_str(a.shape())));
    std::transform(it->second.begin(), it->second.end(), a.begin(), [](double v) { return T(v); });
  }
  std::uint64_t integer(const std::string& name) const {
    auto it = integers.find(name);
    if (it == integers.end()) throw IoError(fmt::format("checkpoint: no integer '{}'", name));
    return it->second;
  }

  void save(const std::filesystem::path& path) const {
    std::string b = "EBLCKPT1";
    auto put_u32 = [&b](std::uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
    auto put_u64 = [&b](std::uint64_t v) { b.append(reinterpret_cast<const char*>(&v), 8); };
    put_u64(arrays.size());
    for (const auto& [name, a] : arrays) {
      put_u32(std::uint32_t(name.size()));
      b += name;
      put_u32(std::uint32_t(a.dimension()));
      for (auto d : a.shape()) put_u64(d);
      b.append(reinterpret_cast<const char*>(a.data()), a.size() * sizeof(double));
    }
    put_u64(integers.size());
    for (const auto& [name, v] : integers) {
      put_u32(std::uint32_t(name.size()));
      b += name;
      put_u64(v);
    }
    write_file_atomic(path, b);
  }

  static Checkpoint load(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(fmt::format("cannot read checkpoint {}", path.string()));
    std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::size_t pos = 0;
    auto need = [&](std::size_t n) {
      if (pos + n > b.size())
        throw IoError(fmt::format("checkpoint {} is truncated", path.string()));
    };
    auto get_u32 = [&]() {
      need(4);
      std::uint32_t v;
      std::memcpy(&v, b.data() + pos, 4);
      pos += 4;
      return v;
    };
    auto get_u64 = [&]() {
      need(8);
      std::uint64_t v;
      std::memcpy(&v, b.data() + pos, 8);
      pos += 8;
      return v;
    };
    auto get_name = [&]() {
      std::uint32_t n = get_u32();
      need(n);
      std::string s = b.substr(pos, n);
      pos += n;
      return s;
    };
    need(8);
    if (b.compare(0, 8, "EBLCKPT1") != 0)
      throw IoError(fmt::format("{} is not an ebl checkpoint", path.string()));
    pos = 8;
    Checkpoint c;
    for (std::uint64_t k = 0, n = get_u64(); k < n; ++k) {
      std::string name = get_name();
      std::uint32_t rank = get_u32();
      if (rank > 8)
        throw IoError(
            fmt::format("checkpoint {}: array '{}' has rank {}", path.string(), name, rank));
      Shape s(rank);
      std::size_t count = 1;
      for (auto& d : s) {
        d = get_u64();
        if (d > b.size()) throw IoError(fmt::format("checkpoint {} is truncated", path.string()));
        count *= d;
        if (count > b.size())
          throw IoError(fmt::format("checkpoint {} is truncated", path.string()));
      }
      need(count * sizeof(double));  // before allocating: a corrupt size must not allocate
      Array<double> a(s);
      std::memcpy(a.data(), b.data() + pos, a.size() * sizeof(double));
      pos += a.size() * sizeof(double);
      c.arrays[name] = std::move(a);
    }
    for (std::uint64_t k = 0, n = get_u64(); k < n; ++k) {
      std::string name = get_name();
      c.integers[name] = get_u64();
    }
    if (pos != b.size())
      throw IoError(fmt::format("checkpoint {} has trailing bytes", path.string()));
    return c;
  }
};

}  // namespace ebl
