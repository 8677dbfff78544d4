// Checkpoints: named arrays, integers and strings in one binary file, written atomically and
// checked whole when read back.
//
// Format 2 (little-endian, as the machine writes it):
//   header   "EBLCKPT " (8 bytes), u32 format version (2), u64 length of the whole file
//   arrays   u64 count, then per array: u32 name length, name, u32 rank, u64 dims[rank],
//            f64 data[prod dims]
//   integers u64 count, then per integer: u32 name length, name, u64 value
//   strings  u64 count, then per string: u32 name length, name, u64 length, bytes
//   trailer  u32 CRC-32 (zlib's) of every byte before it
// Arrays are stored in double: a float array round-trips exactly. The CRC is checked before
// anything is parsed, so a changed byte anywhere — header, parameters, optimizer state, chains,
// generator, configuration, the CRC itself — is reported as corruption, naming the file (CRC-32
// detects every error burst of up to 32 bits); a shorter file is reported as truncated.
// Format 1 ("EBLCKPT1", no checksum) is refused with a message saying so.
//
// save() goes through write_file_atomic (io/files.hpp): an interrupted save leaves the previous
// checkpoint intact.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <zlib.h>

#include <fmt/format.h>

#include "autodiff/array.hpp"
#include "autodiff/optim.hpp"
#include "autodiff/random.hpp"
#include "io/files.hpp"

namespace ebl {

/// A run's state as named arrays, integers and strings, in a checked file format (see the top
/// of this file): save() writes atomically, load() refuses a corrupt or truncated file.
struct Checkpoint {
  static constexpr std::uint32_t kFormatVersion = 2;  ///< the file format written

  std::map<std::string, Array<double>> arrays;    ///< named arrays, stored in double
  std::map<std::string, std::uint64_t> integers;  ///< named integers (steps, counts, rng words)
  std::map<std::string, std::string> strings;     ///< e.g. "config": the run's flags as JSON
  /// Where it was read from (the file), named in the errors of the accessors below; not stored.
  std::string source;

  /// Stores a copy of `a` (in double) under `name`.
  template <class T>
  void put(const std::string& name, const Array<T>& a) {
    Array<double> d(a.shape());
    std::copy(a.begin(), a.end(), d.begin());
    arrays[name] = std::move(d);
  }
  /// Copy a stored array into `a`, which must have the stored shape. Every value must be finite
  /// in T: what a trainer saves (parameters, optimizer moments, chains) always is, so a NaN or a
  /// value beyond T's range means a file that no trainer wrote, refused before it is used.
  template <class T>
  void get(const std::string& name, Array<T>& a) const {
    auto it = arrays.find(name);
    if (it == arrays.end()) throw IoError(fmt::format("{}: no array '{}'", where(), name));
    if (it->second.shape() != a.shape())
      throw IoError(fmt::format("{}: array '{}' has shape {}, expected {}", where(), name,
                                shape_str(it->second.shape()), shape_str(a.shape())));
    std::size_t k = 0;
    for (double v : it->second) {
      const T t = T(v);
      if (!std::isfinite(t))
        throw IoError(fmt::format("{}: array '{}' holds {} at flat index {}", where(), name, v, k));
      a.data()[k++] = t;
    }
  }
  /// The integer stored under `name`; throws IoError, naming the file, if there is none.
  std::uint64_t integer(const std::string& name) const {
    auto it = integers.find(name);
    if (it == integers.end()) throw IoError(fmt::format("{}: no integer '{}'", where(), name));
    return it->second;
  }
  /// A stored integer that must lie in [lo, hi] (a count, an index, a step).
  std::uint64_t integer_in(const std::string& name, std::uint64_t lo, std::uint64_t hi) const {
    const std::uint64_t v = integer(name);
    if (v < lo || v > hi)
      throw IoError(
          fmt::format("{}: integer '{}' is {}, outside [{}, {}]", where(), name, v, lo, hi));
    return v;
  }
  /// A stored string that must be there.
  const std::string& required_text(const std::string& name) const {
    const std::string* t = text(name);
    if (!t) throw IoError(fmt::format("{}: no string '{}'", where(), name));
    return *t;
  }
  /// A stored permutation of 0 … n-1 (an order of data rows): n entries, each an integer in
  /// range, each once.
  std::vector<std::size_t> permutation(const std::string& name, std::size_t n) const {
    auto it = arrays.find(name);
    if (it == arrays.end()) throw IoError(fmt::format("{}: no array '{}'", where(), name));
    if (it->second.dimension() != 1 || it->second.size() != n)
      throw IoError(fmt::format("{}: array '{}' has shape {}, expected [{}]", where(), name,
                                shape_str(it->second.shape()), n));
    std::vector<std::size_t> p(n);
    std::vector<char> seen(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
      const double v = it->second(i);
      if (!(v >= 0 && v < double(n) && v == std::floor(v)) || seen[std::size_t(v)])
        throw IoError(fmt::format("{}: array '{}' is not a permutation of 0..{} (entry {} is {})",
                                  where(), name, n - 1, i, v));
      seen[std::size_t(v)] = 1;
      p[i] = std::size_t(v);
    }
    return p;
  }
  /// A stored string, or nullptr when there is none of that name.
  const std::string* text(const std::string& name) const {
    auto it = strings.find(name);
    return it == strings.end() ? nullptr : &it->second;
  }

  /// "checkpoint <file>", or "checkpoint" for one made in memory: how errors name it.
  std::string where() const { return source.empty() ? "checkpoint" : "checkpoint " + source; }
  /// The file's bytes (format 2).
  std::string bytes() const {
    std::string b = "EBLCKPT ";
    auto put_u32 = [&b](std::uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
    auto put_u64 = [&b](std::uint64_t v) { b.append(reinterpret_cast<const char*>(&v), 8); };
    auto put_name = [&](const std::string& name) {
      put_u32(std::uint32_t(name.size()));
      b += name;
    };
    put_u32(kFormatVersion);
    put_u64(0);  // the file's length, filled in below
    put_u64(arrays.size());
    for (const auto& [name, a] : arrays) {
      put_name(name);
      put_u32(std::uint32_t(a.dimension()));
      for (auto d : a.shape()) put_u64(d);
      b.append(reinterpret_cast<const char*>(a.data()), a.size() * sizeof(double));
    }
    put_u64(integers.size());
    for (const auto& [name, v] : integers) {
      put_name(name);
      put_u64(v);
    }
    put_u64(strings.size());
    for (const auto& [name, v] : strings) {
      put_name(name);
      put_u64(v.size());
      b += v;
    }
    const std::uint64_t length = b.size() + 4;
    std::memcpy(b.data() + kLengthAt, &length, 8);
    put_u32(crc(b.data(), b.size()));
    return b;
  }

  /// Writes the file atomically (a temporary, then a rename).
  void save(const std::filesystem::path& path) const { write_file_atomic(path, bytes()); }

  /// Reads and checks a file.
  static Checkpoint load(const std::filesystem::path& path) {
    return parse(read_bytes(path), path.string());
  }
  /// A checkpoint file's bytes, unchecked (parse checks them).
  static std::string read_bytes(const std::filesystem::path& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))  // (a directory opens, then fails to read)
      throw IoError(fmt::format("cannot read checkpoint {}: it is a directory", path.string()));
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(fmt::format("cannot read checkpoint {}", path.string()));
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  /// Reads a checkpoint from its bytes; `source` names it in errors.
  static Checkpoint parse(const std::string& b, const std::string& source) {
    auto corrupt = [&](const std::string& why) {
      return IoError(fmt::format("checkpoint {} is corrupt: {}", source, why));
    };
    if (b.size() < 8 || b.compare(0, 7, "EBLCKPT") != 0)
      throw IoError(fmt::format(
          "{} is not an ebl checkpoint (or its header is corrupt: it does not start with EBLCKPT)",
          source));
    if (b[7] == '1')
      throw IoError(fmt::format(
          "checkpoint {} has format 1 (no checksum), which this version no longer reads; start "
          "a new run",
          source));
    if (b[7] != ' ') throw corrupt("bad magic number");
    if (b.size() < kHeaderSize + 4)
      throw corrupt(fmt::format("truncated: {} bytes, shorter than a header", b.size()));
    std::uint64_t length;
    std::memcpy(&length, b.data() + kLengthAt, 8);
    if (length != b.size())
      throw corrupt(
          length > b.size()
              ? fmt::format("truncated: {} bytes, its header records {}", b.size(), length)
              : fmt::format("{} bytes, its header records {}", b.size(), length));
    std::uint32_t stored;
    std::memcpy(&stored, b.data() + b.size() - 4, 4);
    const std::uint32_t computed = crc(b.data(), b.size() - 4);
    if (stored != computed)
      throw corrupt(
          fmt::format("CRC-32 {:08x} of its contents, {:08x} recorded", computed, stored));
    std::uint32_t version;
    std::memcpy(&version, b.data() + 8, 4);
    if (version != kFormatVersion)
      throw IoError(fmt::format("checkpoint {} has format {}; this version reads format {}", source,
                                version, kFormatVersion));

    // From here on the bytes are what a writer wrote; the checks below guard against a writer's
    // bug, not against corruption.
    const std::size_t end = b.size() - 4;
    std::size_t pos = kHeaderSize;
    auto need = [&](std::size_t n) {
      if (n > end - pos) throw corrupt("an entry runs past the end of the file");
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
    auto get_bytes = [&](std::uint64_t n) {
      need(n);
      std::string v = b.substr(pos, n);
      pos += n;
      return v;
    };
    auto get_name = [&]() { return get_bytes(get_u32()); };
    Checkpoint c;
    for (std::uint64_t k = 0, n = get_u64(); k < n; ++k) {
      std::string name = get_name();
      std::uint32_t rank = get_u32();
      if (rank > 8) throw corrupt(fmt::format("array '{}' has rank {}", name, rank));
      Shape s(rank);
      std::size_t count = 1;
      for (auto& d : s) {
        d = get_u64();
        if (d > end || (count *= d) > end) throw corrupt("an entry runs past the end of the file");
      }
      need(count * sizeof(double));  // before allocating: a bad size must not allocate
      Array<double> a(s);
      if (count > 0) std::memcpy(a.data(), b.data() + pos, a.size() * sizeof(double));
      pos += a.size() * sizeof(double);
      c.arrays[name] = std::move(a);
    }
    for (std::uint64_t k = 0, n = get_u64(); k < n; ++k) {
      std::string name = get_name();
      c.integers[name] = get_u64();
    }
    for (std::uint64_t k = 0, n = get_u64(); k < n; ++k) {
      std::string name = get_name();
      c.strings[name] = get_bytes(get_u64());
    }
    if (pos != end) throw corrupt(fmt::format("{} unread bytes before the checksum", end - pos));
    c.source = source;
    return c;
  }

 private:
  static constexpr std::size_t kLengthAt = 12, kHeaderSize = 20;
  static std::uint32_t crc(const char* data, std::size_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    while (n > 0) {  // zlib takes lengths as uInt
      const uInt chunk = uInt(std::min<std::size_t>(n, 1u << 30));
      c = crc32(c, reinterpret_cast<const Bytef*>(data), chunk);
      data += chunk;
      n -= chunk;
    }
    return std::uint32_t(c);
  }
};

// ---- what every trainer's checkpoint holds ----------------------------------------------------

/// The parameters under <prefix>param/<name>, the optimizer's buffers under <prefix>optim/<name>
/// and its step count under <prefix>optim/steps.
template <class T>
void put_training_state(Checkpoint& c, const std::vector<Parameter<T>*>& params, Optimizer<T>& opt,
                        const std::string& prefix = "") {
  for (auto* p : params) c.put(prefix + "param/" + p->name, p->value);
  for (auto& [name, a] : opt.state()) c.put(prefix + "optim/" + name, *a);
  c.integers[prefix + "optim/steps"] = std::uint64_t(opt.steps());
}
template <class T>
void get_training_state(const Checkpoint& c, const std::vector<Parameter<T>*>& params,
                        Optimizer<T>& opt, const std::string& prefix = "") {
  for (auto* p : params) c.get(prefix + "param/" + p->name, p->value);
  for (auto& [name, a] : opt.state()) c.get(prefix + "optim/" + name, *a);
  opt.steps() = long(c.integer(prefix + "optim/steps"));
}

/// A generator's state under <key>/s0 … <key>/s3: restoring it continues the stream exactly.
inline void put_rng(Checkpoint& c, const Rng& rng, const std::string& key = "rng") {
  const Rng::State st = rng.state();
  for (int k = 0; k < 4; ++k) c.integers[fmt::format("{}/s{}", key, k)] = st.s[k];
}
/// Refuses the all-zero state, the one state xoshiro256** never leaves (every draw would be 0,
/// and rejection loops such as Rng::below would never end).
inline void get_rng(const Checkpoint& c, Rng& rng, const std::string& key = "rng") {
  Rng::State st{};
  for (int k = 0; k < 4; ++k) st.s[k] = c.integer(fmt::format("{}/s{}", key, k));
  if ((st.s[0] | st.s[1] | st.s[2] | st.s[3]) == 0)
    throw IoError(
        fmt::format("{}: generator state '{}' is all zero, which no generator "
                    "reaches",
                    c.where(), key));
  rng.set_state(st);
}

}  // namespace ebl
