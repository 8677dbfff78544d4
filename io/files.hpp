// File I/O shared by the library and the experiments: one error type for everything that reads or
// writes a file, atomic writes, and gzip reading.
//
// write_file_atomic writes to "<path>.tmp" and renames it over <path>, so an interrupted write
// leaves the previous file intact and never a half-written one.
#pragma once

#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace ebl {

class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Write `bytes` to path through a temporary file and a rename.
inline void write_file_atomic(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  std::error_code ec;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError(fmt::format("cannot write {}", tmp.string()));
    out.write(bytes.data(), std::streamsize(bytes.size()));
    out.flush();
    if (!out) {
      out.close();
      std::filesystem::remove(tmp, ec);  // a failed write leaves nothing behind
      throw IoError(fmt::format("cannot write {} (disk full?)", tmp.string()));
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    std::filesystem::remove(tmp, ec);
    throw IoError(fmt::format("cannot rename {} to {}: {}", tmp.string(), path.string(), why));
  }
}

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

}  // namespace ebl
