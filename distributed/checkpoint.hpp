// Checkpoints of a data-parallel run: one file, written by rank 0, holding every rank's state.
//
// Layout: rank 0's checkpoint as a serial run writes it, plus, for each other rank r, every entry
// whose value differs from rank 0's (its chains, its generator, its sampler's counters) under
// "rank<r>/<name>", and the integer "ranks" = R. Entries that are the same on every rank (the
// parameters and the optimiser's state, identical by construction) are stored once. A 1-rank
// run's checkpoint is exactly the serial one (no "ranks" entry), so every existing checkpoint is
// a valid 1-rank checkpoint.
//
// gather_checkpoint() is collective (the ranks' bytes go to rank 0); the file is written by rank
// 0 alone, atomically (io/checkpoint.hpp), so a run killed while writing keeps the previous one.
// load_checkpoint() reads on rank 0 and broadcasts the bytes, so the file need only exist where
// rank 0 runs; a read error is raised on every rank. rank_view() gives rank r its own state, and
// refuses a checkpoint written by another number of ranks.
#pragma once

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "distributed/comm.hpp"
#include "io/checkpoint.hpp"

namespace ebl {

/// An IoError raised on every rank alike (by a collective read): every rank can stop on its own,
/// without aborting the others, and rank 0 alone need say why.
class CollectiveIoError : public IoError {
 public:
  using IoError::IoError;
};

namespace detail {
inline std::string rank_prefix(int r) {
  return fmt::format("rank{}/", r);
}
inline bool same_array(const Array<double>& a, const Array<double>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}
}  // namespace detail

/// Collective. On rank 0: every rank's checkpoint merged into one (layout above); on the other
/// ranks: an empty checkpoint. With one rank: `local` itself.
inline Checkpoint gather_checkpoint(Comm& comm, const Checkpoint& local) {
  if (comm.size() == 1) return local;
  const std::vector<std::string> parts = comm.gather(local.bytes());
  if (!comm.root()) return {};
  Checkpoint merged = local;
  for (int r = 1; r < comm.size(); ++r) {
    const Checkpoint c = Checkpoint::parse(parts[std::size_t(r)], fmt::format("rank {}", r));
    const std::string pre = detail::rank_prefix(r);
    for (const auto& [name, a] : c.arrays) {
      auto it = local.arrays.find(name);
      if (it == local.arrays.end() || !detail::same_array(it->second, a))
        merged.arrays[pre + name] = a;
    }
    for (const auto& [name, v] : c.integers) {
      auto it = local.integers.find(name);
      if (it == local.integers.end() || it->second != v) merged.integers[pre + name] = v;
    }
    for (const auto& [name, v] : c.strings) {
      auto it = local.strings.find(name);
      if (it == local.strings.end() || it->second != v) merged.strings[pre + name] = v;
    }
  }
  merged.integers["ranks"] = std::uint64_t(comm.size());
  return merged;
}

/// The number of ranks that wrote a checkpoint (1 for a serial run's).
inline int checkpoint_ranks(const Checkpoint& c) {
  auto it = c.integers.find("ranks");
  return it == c.integers.end() ? 1 : int(it->second);
}

/// Rank r's own checkpoint out of a merged one. Throws IoError, naming both numbers, when the
/// checkpoint was written by another number of ranks than `ranks`.
inline Checkpoint rank_view(const Checkpoint& merged, int rank, int ranks,
                            const std::string& source = "checkpoint") {
  const int written = checkpoint_ranks(merged);
  if (written != ranks)
    throw IoError(fmt::format(
        "{} was written by {} rank{} and this run has {}: resume on the same number of ranks "
        "(mpirun -np {}), or start a new run from its parameters",
        source, written, written == 1 ? "" : "s", ranks, written));
  Checkpoint v;
  const auto is_per_rank = [](const std::string& name) {
    return name.rfind("rank", 0) == 0 && name.find('/') != std::string::npos &&
           name.substr(4, name.find('/') - 4).find_first_not_of("0123456789") == std::string::npos;
  };
  const std::string mine = detail::rank_prefix(rank);
  auto take = [&](const auto& from, auto& to) {
    for (const auto& [name, val] : from)
      if (!is_per_rank(name) && name != "ranks") to[name] = val;
    if (rank > 0)
      for (const auto& [name, val] : from)
        if (name.rfind(mine, 0) == 0) to[name.substr(mine.size())] = val;
  };
  take(merged.arrays, v.arrays);
  take(merged.integers, v.integers);
  take(merged.strings, v.strings);
  v.source = merged.source;
  return v;
}

/// Collective: the checkpoint at `path` as read by rank 0, on every rank (which need not see the
/// file). A missing, truncated or corrupt file raises the same CollectiveIoError on every rank.
inline Checkpoint load_checkpoint(Comm& comm, const std::filesystem::path& path) {
  if (comm.size() == 1) return Checkpoint::load(path);
  std::string msg;  // "ok" + the file's bytes, or "error" + the message
  if (comm.root()) {
    try {
      const std::string b = Checkpoint::read_bytes(path);
      (void)Checkpoint::parse(b, path.string());  // the checks, before anything is sent
      msg = "ok" + b;
    } catch (const std::exception& e) {
      msg = std::string("error") + e.what();
    }
  }
  comm.broadcast(msg);
  if (msg.rfind("ok", 0) != 0) throw CollectiveIoError(msg.substr(5));
  return Checkpoint::parse(msg.substr(2), path.string());
}

}  // namespace ebl
