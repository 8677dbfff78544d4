// A study made of independent units (one model on one data set with one seed, say), each a
// function of the flags alone: after every unit its results join checkpoint.bin, and a resumed
// run skips the units it finds there, so that a stopped study loses at most the unit in progress
// and ends with the numbers of an uninterrupted one (timings aside: each unit's "seconds" is
// measured when it runs).
#pragma once

#include <chrono>
#include <set>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "experiments/common/run.hpp"
#include "io/checkpoint.hpp"

namespace ebl::xp {

/// Thrown after --stop-after-units units: the run ends early on purpose, its checkpoint written.
struct StopAfterUnits {};

/// The finished units of a study and its checkpoint (see the top of this file).
class Units {
 public:
  /// A study under `config` (what a resume must match) that stops, by throwing StopAfterUnits,
  /// after `stop_after` units run in this invocation (0: never).
  Units(json config, std::size_t stop_after)
      : config_(std::move(config)), stop_after_(stop_after) {}
  /// Takes the finished units of the checkpoint at `path`, refusing (FlagError) one made under
  /// other flags than those outside `may_differ`.
  void resume(const fs::path& path, const std::set<std::string>& may_differ) {
    const Checkpoint c = Checkpoint::load(path);
    check_resume_config(c, config_, may_differ, path);
    done_ = json::parse(c.required_text("units"));
    fmt::print("resuming {}: {} units done\n", path.string(), done_.size());
  }
  /// Where checkpoint.bin goes (the run folder, made after the inputs were checked).
  void set_dir(const fs::path& dir) { dir_ = dir; }
  /// The results of unit `name`: from the checkpoint, or body() run now (its JSON object gains
  /// "seconds") and checkpointed.
  template <class Body>
  const json& run(const std::string& name, Body&& body) {
    if (!done_.contains(name)) {
      const auto t0 = std::chrono::steady_clock::now();
      json r = body();
      r["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      done_[name] = r;
      Checkpoint c;
      c.strings["config"] = config_.dump();
      c.strings["units"] = done_.dump();
      c.save(dir_ / "checkpoint.bin");
      fmt::print("{}: {}\n", name, r.dump());
      if (stop_after_ > 0 && ++ran_ == stop_after_) throw StopAfterUnits{};
    }
    return done_[name];
  }
  /// Every unit's results by name.
  const json& all() const { return done_; }

 private:
  json config_, done_ = json::object();
  std::size_t stop_after_ = 0, ran_ = 0;
  fs::path dir_;
};

}  // namespace ebl::xp
