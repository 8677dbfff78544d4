// What every experiment binary shares: flag parsing with one-line errors, a fresh run folder that
// never overwrites an earlier run, atomic JSON/CSV output, a progress line on stderr, and
// pictures drawn by gnuplot.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "autodiff/version.hpp"
#include "datasets/images.hpp"
#include "io/checkpoint.hpp"
#include "io/files.hpp"

namespace ebl::xp {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

/// A flag's value that the program refuses after parsing (a resume under different flags, ...):
/// main prints it as one line and exits with status 2, like a parse error.
class FlagError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Every floating-point flag (CLI11's type FLOAT) refuses NaN and ±inf. Added to every flag of the
/// app at parse time, so a new flag cannot be forgotten, and placed before the flag's own checks
/// (CLI11's range checks let NaN through), which still apply.
inline void require_finite_floats(CLI::App& app) {
  for (CLI::Option* o : app.get_options()) {
    if (o->get_type_name().rfind("FLOAT", 0) != 0) continue;
    CLI::Validator finite(
        [](std::string& v) -> std::string {
          char* end = nullptr;
          const double x = std::strtod(v.c_str(), &end);
          if (end != v.c_str() && !std::isfinite(x))
            return fmt::format("must be a finite number, got {}", v);
          return {};
        },
        "", "finite");
    o->transform(finite.non_modifying());  // transform() puts it first
  }
}

/// Parse flags. Returns an exit code when the program should stop now: 0 after --help, 2 after a
/// bad flag (one line on stderr, naming the program), 0 after --version (which every binary has).
/// Floating-point flags refuse NaN and ±inf.
inline std::optional<int> parse_flags(CLI::App& app, int argc, char** argv) {
  require_finite_floats(app);
  app.set_version_flag("--version", fmt::format("{} (ebl {})", app.get_name(), ebl::kVersion),
                       "print the library's version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForVersion& e) {
    fmt::print("{}\n", e.what());
    return 0;
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "{}: {}\n", app.get_name(), e.what());
    return 2;
  }
  return std::nullopt;
}

/// A flag's name from its key in config.json: lr_final -> --lr-final.
inline std::string flag_name(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return "--" + key;
}

/// Refuses to resume from checkpoint `c` (read from `path`) under flags other than those it was
/// made with: compares the configuration stored in it with `now`, key by key, except the keys in
/// `may_differ` (flags that only extend the run, route its output or change its evaluation), and
/// throws a FlagError listing every differing flag with both values.
inline void check_resume_config(const Checkpoint& c, const nlohmann::json& now,
                                const std::set<std::string>& may_differ, const fs::path& path) {
  const std::string* text = c.text("config");
  if (!text)
    throw FlagError(fmt::format(
        "cannot resume from {}: it records no configuration (use --resume-from-weights to start "
        "a new run from its parameters)",
        path.string()));
  nlohmann::json saved;
  try {
    saved = nlohmann::json::parse(*text);
  } catch (const nlohmann::json::exception& e) {
    throw IoError(
        fmt::format("checkpoint {}: unreadable configuration ({})", path.string(), e.what()));
  }
  std::set<std::string> keys;
  for (const auto& [k, v] : saved.items()) keys.insert(k);
  for (const auto& [k, v] : now.items()) keys.insert(k);
  std::string diffs;
  for (const auto& k : keys) {
    if (may_differ.count(k)) continue;
    const nlohmann::json a = saved.contains(k) ? saved[k] : nlohmann::json(nullptr),
                         b = now.contains(k) ? now[k] : nlohmann::json(nullptr);
    if (a == b) continue;
    diffs += fmt::format("{}{} {} (now {})", diffs.empty() ? "" : ", ", flag_name(k), a.dump(),
                         b.dump());
  }
  if (!diffs.empty())
    throw FlagError(fmt::format(
        "cannot resume from {}: it was made with other flags: {}; resume with the same flags, or "
        "start a new run from its parameters with --resume-from-weights",
        path.string(), diffs));
}

/// A new folder base/<name>/<tag>, or <tag>-2, -3, ... if that exists: never an earlier run's.
inline fs::path make_run_dir(const fs::path& base, const std::string& name,
                             const std::string& tag) {
  fs::path parent = base / name;
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw IoError(fmt::format("cannot create {}: {}", parent.string(), ec.message()));
  for (int k = 1; k < 10000; ++k) {
    fs::path dir = parent / (k == 1 ? tag : fmt::format("{}-{}", tag, k));
    if (fs::create_directory(dir, ec)) return dir;
    if (ec) throw IoError(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  }
  throw IoError(fmt::format("too many runs named {} in {}", tag, parent.string()));
}

template <class Json>
void write_json(const fs::path& path, const Json& j) {
  write_file_atomic(path, j.dump(2) + "\n");
}

/// A CSV table kept in memory and written whole, atomically.
class Csv {
 public:
  explicit Csv(std::vector<std::string> header) : cols_(header.size()) {
    for (std::size_t k = 0; k < header.size(); ++k) text_ += (k ? "," : "") + header[k];
    text_ += "\n";
  }
  void row(const std::vector<double>& values) {
    if (values.size() != cols_) throw std::logic_error("Csv::row: wrong number of values");
    for (std::size_t k = 0; k < values.size(); ++k)
      text_ += fmt::format("{}{:.9g}", k ? "," : "", values[k]);
    text_ += "\n";
    ++rows_;
  }
  /// A row whose first column is a label (the header's first name), then numbers.
  void row(const std::string& label, const std::vector<double>& values) {
    row(std::vector<std::string>{label}, values);
  }
  /// A row whose first columns are labels, then numbers.
  void row(const std::vector<std::string>& labels, const std::vector<double>& values) {
    if (labels.empty() || labels.size() + values.size() != cols_)
      throw std::logic_error("Csv::row: wrong number of values");
    for (std::size_t k = 0; k < labels.size(); ++k) text_ += (k ? "," : "") + labels[k];
    for (double v : values) text_ += fmt::format(",{:.9g}", v);
    text_ += "\n";
    ++rows_;
  }
  std::size_t rows() const { return rows_; }
  void save(const fs::path& path) const { write_file_atomic(path, text_); }
  /// The whole table as text, and the way back (for a checkpoint: a resumed run keeps its rows).
  const std::string& text() const { return text_; }
  void restore(const std::string& text) {
    const std::string header = text_;
    if (text.compare(0, header.size(), header) != 0)
      throw IoError("Csv::restore: the saved table has another header");
    text_ = text;
    rows_ = std::size_t(std::count(text_.begin(), text_.end(), '\n')) - 1;
  }

 private:
  std::size_t cols_, rows_ = 0;
  std::string text_;
};

/// A progress bar on stderr: redrawn in place on a terminal, a line every 10% otherwise.
class Progress {
 public:
  Progress(std::string label, long total)
      : label_(std::move(label)), total_(total), tty_(isatty(2)) {}
  void update(long done, const std::string& info = "") {
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - start_).count();
    int pct = total_ > 0 ? int(100 * done / total_) : 100;
    if (tty_) {
      if (done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
      last_ = now;
    } else {
      if (pct < next_pct_ && done < total_) return;
      next_pct_ = pct / 10 * 10 + 10;
    }
    double eta = done > 0 ? elapsed * double(total_ - done) / double(done) : 0;
    const int width = 30, filled = width * pct / 100;
    std::string bar = std::string(filled, '#') + std::string(width - filled, '.');
    fmt::print(stderr, "{}{} [{}] {:3d}% {}/{} {:.0f}s eta {:.0f}s {}{}", tty_ ? "\r" : "", label_,
               bar, pct, done, total_, elapsed, eta, info, tty_ ? "\033[K" : "\n");
    if (tty_ && done >= total_) fmt::print(stderr, "\n");
  }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::string label_;
  long total_;
  bool tty_;
  int next_pct_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
};

/// Fashion-MNIST's official training (60000) and test (10000) sets, installing Debian's
/// dataset-fashion-mnist first if it is missing.
inline std::pair<LabeledData, LabeledData> load_fashion_on_demand() {
  const fs::path dir = kFashionDir;
  if (!fs::exists(dir / "train-images-idx3-ubyte.gz")) {
    // the repository's install script where there is one; an installed binary asks apt-get
    const fs::path script = fs::path(EBL_SOURCE_DIR) / "scripts/install-deps.sh";
    if (!fs::exists(script))
      throw IoError(fmt::format(
          "Fashion-MNIST is not installed in {} (apt-get install dataset-fashion-mnist)",
          dir.string()));
    fmt::print(stderr,
               "Fashion-MNIST is not installed; installing Debian's dataset-fashion-mnist\n");
    const std::string cmd = fmt::format("'{}' dataset-fashion-mnist", script.string());
    if (std::system(cmd.c_str()) != 0)
      throw IoError(
          "could not install dataset-fashion-mnist (apt-get install dataset-fashion-mnist)");
  }
  return {load_idx(dir / "train-images-idx3-ubyte.gz", dir / "train-labels-idx1-ubyte.gz"),
          load_idx(dir / "t10k-images-idx3-ubyte.gz", dir / "t10k-labels-idx1-ubyte.gz")};
}

/// The data of a classification study: Fashion-MNIST's own train/test sets, or the digits with a
/// fixed held-out split of test_size images. data_dir: where to look for the digits first (the
/// --data-dir flag; empty: the library's own lookup, datasets/data_dir.hpp).
inline std::pair<LabeledData, LabeledData> load_train_test(bool fashion, std::size_t test_size,
                                                           std::uint64_t seed,
                                                           const fs::path& data_dir = {}) {
  if (fashion) return load_fashion_on_demand();
  LabeledData all = load_digits_csv(default_digits_path(data_dir));
  if (test_size >= all.size())
    throw std::invalid_argument(fmt::format("--test-size {} leaves no training data", test_size));
  return split(all, test_size, seed);
}

inline bool have_gnuplot() {
  return std::system("command -v gnuplot >/dev/null 2>&1") == 0;
}

/// Runs a gnuplot script in dir. The script writes each picture to "<name>.png.tmp"; those listed
/// in `outputs` are renamed to "<name>.png" only if gnuplot succeeds. Returns false (after one
/// warning line) if gnuplot is missing or fails: pictures are a convenience, the data is in CSV.
inline bool plot(const fs::path& dir, const std::string& script_name, const std::string& script,
                 const std::vector<std::string>& outputs) {
  write_file_atomic(dir / script_name, script);
  if (!have_gnuplot()) {
    fmt::print(stderr, "warning: gnuplot not found; pictures not drawn (script left in {})\n",
               (dir / script_name).string());
    return false;
  }
  std::string cmd =
      fmt::format("cd '{}' && gnuplot '{}' 2> gnuplot.log", dir.string(), script_name);
  if (std::system(cmd.c_str()) != 0) {
    fmt::print(stderr, "warning: gnuplot failed on {}; see {}\n", script_name,
               (dir / "gnuplot.log").string());
    return false;
  }
  for (const auto& o : outputs) fs::rename(dir / (o + ".tmp"), dir / o);
  std::error_code ec;
  if (fs::file_size(dir / "gnuplot.log", ec) == 0) fs::remove(dir / "gnuplot.log", ec);
  return true;
}

}  // namespace ebl::xp
