// Data-parallel training and evaluation over a Comm (distributed/comm.hpp).
//
// The scheme, for every trainer (CD, the RBM's, JEM's): each of the R ranks owns a shard of the
// data, its own persistent chains (a shard of the replay buffer) and its own generator stream,
// rank_stream(seed, rank); each computes the gradient of its part of the loss; one allreduce over
// a single packed buffer, [∇θ of every parameter | the loss's scalars], sums them; every rank
// applies the same optimiser step to the same numbers, so the parameters stay identical, which
// check_replicas() verifies every N steps by a checksum. With R = 1 nothing here is called and a
// run is the serial run, bit for bit.
//
// What makes a 2-rank step equal the 1-process step on the union of the batches: the loss is a
// sum over rows scaled by the global batch size (CD), or a mean over rows whose per-rank means are
// averaged (grad_scale = 1/R, JEM and the RBM with equal shards). The reduced gradient is then
// the serial gradient up to the order of its additions.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autodiff/parallel.hpp"
#include "autodiff/random.hpp"
#include "autodiff/tape.hpp"
#include "distributed/comm.hpp"

namespace ebl {

/// The parameters of ranks that should hold the same parameters do not.
class ReplicaDriftError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Rank r's generator: Rng(seed) advanced by r jumps of 2^128 draws, so that rank 0's stream is
/// the serial run's and no two ranks' streams overlap.
inline Rng rank_stream(std::uint64_t seed, int rank) {
  Rng rng(seed);
  for (int r = 0; r < rank; ++r) rng.jump();
  return rng;
}

/// Rows [begin, end) of n that rank r of R owns: near-equal contiguous blocks.
struct RowBlock {
  std::size_t begin = 0;  ///< the first row
  std::size_t end = 0;    ///< one past the last
  /// The number of rows.
  std::size_t size() const { return end - begin; }
};
inline RowBlock row_block(std::size_t n, const Comm& comm) {
  const auto r = std::size_t(comm.rank()), R = std::size_t(comm.size());
  return {block_start(n, r, R), block_start(n, r + 1, R)};
}

/// Parameter::grad ← grad_scale · Σ_ranks Parameter::grad, and extras ← Σ_ranks extras, by one
/// allreduce over one packed buffer of doubles (float gradients are summed in double and rounded
/// once). The buffer is the Comm's scratch: no allocation in a steady loop.
template <class T>
void allreduce_gradients(Comm& comm, const std::vector<Parameter<T>*>& params,
                         std::span<double> extras, double grad_scale = 1) {
  std::size_t total = extras.size();
  for (const auto* p : params) total += p->grad.size();
  std::vector<double>& buf = comm.scratch();
  if (buf.size() < total) buf.resize(total);
  std::size_t at = 0;
  for (const auto* p : params)
    for (T g : p->grad) buf[at++] = double(g);
  for (double e : extras) buf[at++] = e;
  comm.allreduce_sum(buf.data(), total);
  at = 0;
  for (auto* p : params)
    for (T& g : p->grad) g = T(grad_scale * buf[at++]);
  for (double& e : extras) e = buf[at++];
}

/// A 64-bit FNV-1a hash of the parameters' bytes: equal on two ranks iff (up to a collision,
/// p ≈ 2⁻⁶⁴) their parameters are bit-identical.
template <class T>
std::uint64_t parameter_checksum(const std::vector<Parameter<T>*>& params) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const auto* p : params) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(p->value.data());
    for (std::size_t k = 0; k < p->value.size() * sizeof(T); ++k) {
      h ^= bytes[k];
      h *= 0x100000001b3ull;
    }
  }
  return h;
}

/// Collective: throws ReplicaDriftError on every rank, naming the step and the ranks, when any
/// rank's parameters differ from rank 0's. Every rank receives every checksum, so every rank
/// takes the same decision.
template <class T>
void check_replicas(Comm& comm, const std::vector<Parameter<T>*>& params, long step) {
  if (comm.size() == 1) return;
  const std::vector<std::uint64_t> sums = comm.allgather(parameter_checksum(params));
  std::string differ;
  for (std::size_t r = 1; r < sums.size(); ++r)
    if (sums[r] != sums[0])
      differ += fmt::format("{}{} ({:016x})", differ.empty() ? "" : ", ", r, sums[r]);
  if (!differ.empty())
    throw ReplicaDriftError(fmt::format(
        "parameters differ between ranks after step {}: rank(s) {} against rank 0 ({:016x}); "
        "the ranks no longer train one model",
        step, differ, sums[0]));
}

/// Σ over every rank of the given value (a partial sum over its rows), on every rank.
inline double allreduce_sum(Comm& comm, double value) {
  comm.allreduce_sum(&value, 1);
  return value;
}

/// The rows each rank computed, [its block of n rows] × cols, assembled on every rank: rank r's
/// block at its place, zeros elsewhere, summed (x + 0 = x exactly, so the result is each rank's
/// numbers unchanged).
template <class T>
std::vector<double> allgather_rows(Comm& comm, std::span<const T> mine, std::size_t n,
                                   std::size_t cols = 1) {
  std::vector<double> all(n * cols, 0.0);
  const RowBlock rb = row_block(n, comm);
  if (mine.size() != rb.size() * cols)
    throw std::invalid_argument(
        fmt::format("allgather_rows: rank {} has {} values for {} rows of {}", comm.rank(),
                    mine.size(), rb.size(), cols));
  for (std::size_t k = 0; k < mine.size(); ++k) all[rb.begin * cols + k] = double(mine[k]);
  comm.allreduce_sum(all.data(), all.size());
  return all;
}

}  // namespace ebl
