// Where the data files carried with the library (the 8×8 digits) are found, so that installed
// binaries and programs built against the installed package find them without the source tree.
// In order:
//   1. a directory the caller names (an experiment's --data-dir), or else $EBL_DATA_DIR: when
//      one is named it is the only place looked in (no silent fallback to the library's copy);
//   2. <directory of the running program>/../share/ebl — the installed binaries' own prefix;
//   3. EBL_DEFAULT_DATA_DIR, compiled in: the source tree's datasets/data in a build of this
//      repository, <prefix>/share/ebl for a program built against the installed package (its
//      eblConfig.cmake or ebl.pc sets it from where the package is).
// The first directory that holds the file wins; if none does, one IoError lists every place tried.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "io/files.hpp"

namespace ebl {

/// The directory the user named: `preferred` (an experiment's --data-dir) or else $EBL_DATA_DIR;
/// empty if neither is set.
inline std::filesystem::path named_data_dir(const std::filesystem::path& preferred = {}) {
  if (!preferred.empty()) return preferred;
  if (const char* env = std::getenv("EBL_DATA_DIR"); env && *env) return env;
  return {};
}

/// The candidate directories, in the order they are tried (see the file's comment). A directory
/// the user named is the only candidate: a run told to read the user's data must not quietly
/// read the library's copy instead.
inline std::vector<std::filesystem::path> data_dirs(const std::filesystem::path& preferred = {}) {
  namespace fs = std::filesystem;
  if (fs::path named = named_data_dir(preferred); !named.empty()) return {named};
  std::vector<fs::path> dirs;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back(exe.parent_path().parent_path() / "share" / "ebl");
#ifdef EBL_DEFAULT_DATA_DIR
  dirs.push_back(EBL_DEFAULT_DATA_DIR);
#endif
  return dirs;
}

/// The path of data file `name`, from the first directory of data_dirs(preferred) holding it as
/// a regular file. In a directory the user named, the file must be there: a missing directory,
/// a missing file, or a folder, FIFO or device under that name is one IoError saying which.
inline std::filesystem::path data_file(const std::string& name,
                                       const std::filesystem::path& preferred = {}) {
  namespace fs = std::filesystem;
  if (fs::path named = named_data_dir(preferred); !named.empty()) {
    const char* source = preferred.empty() ? "$EBL_DATA_DIR" : "the data directory";
    std::error_code ec;
    if (!fs::is_directory(named, ec))
      throw IoError(fmt::format("{} {} is not a directory", source, named.string()));
    const fs::path p = named / name;
    const fs::file_status st = fs::status(p, ec);
    if (!fs::exists(st))
      throw IoError(fmt::format("data file {} not found in {} {}", name, source, named.string()));
    if (!fs::is_regular_file(st))
      throw IoError(fmt::format("data file {} is not a regular file", p.string()));
    return p;
  }
  std::string tried;
  for (const auto& d : data_dirs(preferred)) {
    if (fs::is_regular_file(d / name)) return d / name;
    tried += fmt::format("{}{}", tried.empty() ? "" : ", ", d.string());
  }
  throw IoError(fmt::format("data file {} not found (looked in {}; set EBL_DATA_DIR or --data-dir)",
                            name, tried));
}

}  // namespace ebl
