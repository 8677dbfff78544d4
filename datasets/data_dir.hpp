// Where the data files carried with the library (the 8×8 digits) are found, so that installed
// binaries and programs built against the installed package find them without the source tree.
// In order:
//   1. a directory the caller names (an experiment's --data-dir), or else $EBL_DATA_DIR;
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

/// The candidate directories, in the order they are tried (see the file's comment).
inline std::vector<std::filesystem::path> data_dirs(const std::filesystem::path& preferred = {}) {
  namespace fs = std::filesystem;
  std::vector<fs::path> dirs;
  if (!preferred.empty()) {
    dirs.push_back(preferred);
  } else if (const char* env = std::getenv("EBL_DATA_DIR"); env && *env) {
    dirs.push_back(env);
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back(exe.parent_path().parent_path() / "share" / "ebl");
#ifdef EBL_DEFAULT_DATA_DIR
  dirs.push_back(EBL_DEFAULT_DATA_DIR);
#endif
  return dirs;
}

/// The path of data file `name`, from the first directory of data_dirs(preferred) holding it.
inline std::filesystem::path data_file(const std::string& name,
                                       const std::filesystem::path& preferred = {}) {
  std::string tried;
  for (const auto& d : data_dirs(preferred)) {
    if (std::filesystem::is_regular_file(d / name)) return d / name;
    tried += fmt::format("{}{}", tried.empty() ? "" : ", ", d.string());
  }
  throw IoError(fmt::format("data file {} not found (looked in {}; set EBL_DATA_DIR or --data-dir)",
                            name, tried));
}

}  // namespace ebl
