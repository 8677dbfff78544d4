// What every experiment binary shares: flag parsing with one-line errors, a fresh run folder that
// never overwrites an earlier run, atomic JSON/CSV output, a progress line on stderr, and
// pictures drawn by gnuplot.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <new>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
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

/// Every floating-point flag (CLI11's type FLOAT) refuses NaN, ±inf and values beyond float32's
/// range (the models run in float: 1e39 is finite as a double and +inf once used). Every integer
/// flag (INT, UINT) is read as decimal digits only, an optional '-' for signed flags, with no
/// leading zero and a value that fits 64 bits: CLI11 alone wraps "-1" to 2^64 - 1, saturates
/// 99999999999999999999, reads "" as 0 and "010" as 8. Added to every flag of the app at parse
/// time, so a new flag cannot be forgotten, and placed before the flag's own checks (CLI11's range
/// checks let NaN through), which still apply.
inline void require_valid_numbers(CLI::App& app) {
  for (CLI::Option* o : app.get_options()) {
    const std::string type = o->get_type_name();
    if (type.rfind("FLOAT", 0) == 0) {
      CLI::Validator finite(
          [](std::string& v) -> std::string {
            char* end = nullptr;
            const double x = std::strtod(v.c_str(), &end);
            if (end != v.c_str() && !std::isfinite(x))
              return fmt::format("must be a finite number, got {}", v);
            if (end != v.c_str() && std::abs(x) > double(std::numeric_limits<float>::max()))
              return fmt::format("{} is beyond float32's range (the precision models run in)", v);
            return {};
          },
          "", "finite");
      o->transform(finite.non_modifying());  // transform() puts it first
    } else if (type.rfind("INT", 0) == 0 || type.rfind("UINT", 0) == 0) {
      const bool is_signed = type.rfind("INT", 0) == 0;
      CLI::Validator integer(
          [is_signed](std::string& v) -> std::string {
            std::string_view d = v;
            const bool negative = !d.empty() && d[0] == '-';
            if (negative) d.remove_prefix(1);
            const bool digits = !d.empty() && std::all_of(d.begin(), d.end(), [](char c) {
              return c >= '0' && c <= '9';
            });
            if (!digits || (negative && !is_signed))
              return fmt::format("'{}' is not a {}decimal integer", v,
                                 is_signed ? "" : "non-negative ");
            if (d.size() > 1 && d[0] == '0')
              return fmt::format("'{}' has a leading zero (write decimal numbers without one)", v);
            std::uint64_t u = 0;
            const auto r = std::from_chars(d.data(), d.data() + d.size(), u);
            const std::uint64_t limit =
                is_signed
                    ? std::uint64_t(std::numeric_limits<std::int64_t>::max()) + (negative ? 1 : 0)
                    : std::numeric_limits<std::uint64_t>::max();
            if (r.ec == std::errc::result_out_of_range || u > limit)
              return fmt::format("{} is out of range for a 64-bit integer", v);
            return {};
          },
          "", "integer");
      o->transform(integer.non_modifying());
    }
  }
}

/// Parse flags. Returns an exit code when the program should stop now: 0 after --help, 2 after a
/// bad flag (one line on stderr, naming the program), 0 after --version (which every binary has).
/// Numeric flags are checked by require_valid_numbers.
inline std::optional<int> parse_flags(CLI::App& app, int argc, char** argv) {
  require_valid_numbers(app);
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

/// --smoke's small sizes, applied only to the flags the user did not type: `--smoke --steps 100`
/// runs 100 steps. Usage: SmokeSizes{app}("--steps", f.steps, 30)("--hidden", f.hidden, 32);
class SmokeSizes {
 public:
  explicit SmokeSizes(const CLI::App& app) : app_(app) {}
  template <class T, class U>
  SmokeSizes& operator()(const std::string& flag, T& value, U smoke_value) {
    if (!app_.get_option_no_throw(flag))
      throw std::logic_error(fmt::format("SmokeSizes: no flag {}", flag));
    if (app_.count(flag) == 0) value = T(smoke_value);
    return *this;
  }

 private:
  const CLI::App& app_;
};

/// The items of a comma-separated list flag. An empty list, an empty item ("a,,b", ",") or a
/// repeated item is refused with one line naming the flag: a run that would do nothing, or one
/// thing twice, is a typo.
inline std::vector<std::string> parse_list(const std::string& flag, const std::string& value) {
  std::vector<std::string> items;
  if (value.empty()) throw FlagError(fmt::format("{}: the list is empty", flag));
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = value.find(',', start);
    std::string item =
        value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.empty()) throw FlagError(fmt::format("{}: empty item in '{}'", flag, value));
    if (std::find(items.begin(), items.end(), item) != items.end())
      throw FlagError(fmt::format("{}: '{}' is listed twice", flag, item));
    items.push_back(std::move(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

/// Refuses sizes whose arrays cannot fit in this machine's memory, before anything is allocated:
/// `bytes` is the caller's estimate of what the run will hold at once, `what` names the flags.
inline void require_fits_memory(double bytes, const std::string& what) {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const double total = pages > 0 && page > 0 ? double(pages) * double(page) : 0;
  if (total > 0 && bytes > total)
    throw FlagError(fmt::format("{} need about {:.3g} GB, more than this machine's {:.3g} GB", what,
                                bytes / 1e9, total / 1e9));
}

/// The one line an error ends a run with: its message, except for an allocation that failed,
/// whose message ("std::bad_alloc") would not say what to do.
inline std::string error_line(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e))
    return "out of memory: the sizes asked for do not fit in this machine's memory; use smaller "
           "sizes";
  return e.what();
}

/// Bytes an MLP of layer widths `widths` holds while it trains on `rows` rows at a time: each
/// parameter's value, gradient and two Adam moments, and for each layer a few arrays of
/// rows x width on the tape (pre-activation, output, their gradients). An estimate for
/// require_fits_memory, not an account.
inline double mlp_bytes(const std::vector<double>& widths, double rows, double scalar_bytes = 4) {
  double params = 0, acts = 0;
  for (std::size_t k = 1; k < widths.size(); ++k) {
    params += widths[k - 1] * widths[k] + widths[k];
    acts += rows * widths[k];
  }
  return scalar_bytes * (4 * params + 4 * acts);
}

/// The names of the non-finite numbers in a results document (NaN and ±inf, which JSON cannot
/// hold and nlohmann writes as null), as paths like "cd1.test_ll": a run whose results hold one
/// must not end with status 0 as if all were well.
template <class Json>
void find_nonfinite(const Json& j, const std::string& path, std::vector<std::string>& found) {
  if (j.is_number_float()) {
    if (!std::isfinite(j.template get<double>())) found.push_back(path.empty() ? "(root)" : path);
  } else if (j.is_object()) {
    for (const auto& [k, v] : j.items())
      find_nonfinite(v, path.empty() ? k : path + "." + k, found);
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i)
      find_nonfinite(j[i], fmt::format("{}[{}]", path, i), found);
  }
}

/// A run's results checked before they are written: if they hold a non-finite number, they get
/// (if an object) a "non_finite" entry listing where, one line goes to stderr, and the exit status
/// becomes 3 (as a divergence). Otherwise `status` is returned and the results are untouched.
template <class Json>
int check_finite(const std::string& program, Json& results, int status = 0) {
  std::vector<std::string> found;
  find_nonfinite(results, "", found);
  if (found.empty()) return status;
  std::string names;
  for (std::size_t k = 0; k < found.size() && k < 5; ++k) names += (k ? ", " : "") + found[k];
  if (found.size() > 5) names += fmt::format(" and {} more", found.size() - 5);
  if (results.is_object()) results["non_finite"] = found;
  fmt::print(stderr, "{}: the results hold non-finite values ({}): a model or sampler diverged\n",
             program, names);
  return 3;
}

/// A flag's name from its key in config.json: lr_final -> --lr-final.
inline std::string flag_name(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return "--" + key;
}

/// Refuses to resume from checkpoint `c` (read from `path`) under flags other than those it was
/// made with: compares the configuration stored in it with `now`, key by key, except the keys in
/// `may_differ` (flags that only extend the run, route its output or change its evaluation), and
/// throws a FlagError listing every differing flag with both values. `weights_flag`: the program's
/// flag that starts a new run from a checkpoint's parameters (toy2d's --resume-from-weights),
/// offered in the message; empty if it has none.
inline void check_resume_config(const Checkpoint& c, const nlohmann::json& now,
                                const std::set<std::string>& may_differ, const fs::path& path,
                                const std::string& weights_flag = "") {
  const std::string* text = c.text("config");
  if (!text)
    throw FlagError(
        weights_flag.empty()
            ? fmt::format("cannot resume from {}: it records no configuration", path.string())
            : fmt::format("cannot resume from {}: it records no configuration (use {} to start "
                          "a new run from its parameters)",
                          path.string(), weights_flag));
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
        "cannot resume from {}: it was made with other flags: {}; resume with the same flags{}",
        path.string(), diffs,
        weights_flag.empty()
            ? std::string()
            : fmt::format(", or start a new run from its parameters with {}", weights_flag)));
}

/// "mean ± sd" of values (sd with n − 1; the mean alone for one value), `digits` decimals each.
inline std::string mean_sd(const std::vector<double>& v, int digits = 3) {
  double m = 0, s = 0;
  for (double x : v) m += x / double(v.size());
  for (double x : v) s += (x - m) * (x - m);
  if (v.size() < 2) return fmt::format("{:.{}f}", m, digits);
  return fmt::format("{:.{}f} ± {:.{}f}", m, digits, std::sqrt(s / double(v.size() - 1)), digits);
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

/// A text field as RFC 4180 writes it: quoted (its quotes doubled) if it holds a comma, a quote
/// or a line break, as is otherwise. ("band OR mixture (½, ½)" would be two fields unquoted.)
inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q(1, '"');
  for (char ch : s) {
    if (ch == '"') q.push_back('"');
    q.push_back(ch);
  }
  q.push_back('"');
  return q;
}

/// A CSV table (RFC 4180) kept in memory and written whole, atomically.
class Csv {
 public:
  explicit Csv(std::vector<std::string> header) : cols_(header.size()) {
    for (std::size_t k = 0; k < header.size(); ++k) {
      if (k) text_ += ',';
      text_ += csv_field(header[k]);
    }
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
    for (std::size_t k = 0; k < labels.size(); ++k) {
      if (k) text_ += ',';
      text_ += csv_field(labels[k]);
    }
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
