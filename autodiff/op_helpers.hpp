// What the op files (ops*.cpp) share: finding the tape of an op's inputs, with errors naming the
// op. Internal to the implementation of ops; users write ops with Tape::push (see ops.hpp).
#pragma once

#include <stdexcept>

#include <fmt/format.h>

#include "autodiff/parallel.hpp"
#include "autodiff/tape.hpp"

namespace ebl::op_detail {

template <class T>
Tape<T>& tape_of(const char* op, Var<T> a) {
  if (!a.tape) throw std::invalid_argument(fmt::format("{}: variable is not on a tape", op));
  return *a.tape;
}

template <class T>
Tape<T>& tape_of(const char* op, Var<T> a, Var<T> b) {
  Tape<T>& t = tape_of(op, a);
  if (b.tape != a.tape)
    throw std::invalid_argument(fmt::format("{}: inputs are on different tapes", op));
  return t;
}

/// Work below which an op does not split over a tape's threads (elements of an elementwise op,
/// multiply-adds of a product): a fork-join costs about a microsecond.
constexpr std::size_t kSplitElements = 1 << 16, kSplitMacs = 1 << 20;

/// How many blocks work of size n is split into on tape t: one per thread of a tape with threads
/// (set_threads) once n reaches `min_split`, else 1.
template <class T>
std::size_t split_parts(Tape<T>& t, std::size_t n, std::size_t min_split) {
  WorkerPool* pool = t.pool();
  return pool && n >= min_split ? std::min(pool->max_parts(), n) : 1;
}

/// f(b, lo, hi) for the blocks b = 0 .. parts-1 of [0, n), on the tape's threads, with OpenBLAS
/// single-threaded inside. With one block the call is f(0, 0, n): the serial path is exactly the
/// unsplit one. For ops whose blocks need buffers of their own (indexed by b).
template <class T, class F>
void run_blocks(Tape<T>& t, std::size_t n, std::size_t parts, F&& f) {
  WorkerPool* pool = t.pool();
  if (!pool) return f(std::size_t(0), std::size_t(0), n);
  // on a tape with threads BLAS stays single-threaded even for work too small to split: a call
  // on OpenBLAS's own pool leaves its idle threads spinning on the cores the next split needs
  BlasSingleThreaded one_blas_thread;
  if (parts <= 1) return f(std::size_t(0), std::size_t(0), n);
  pool->run(parts,
            [&](std::size_t b) { f(b, block_start(n, b, parts), block_start(n, b + 1, parts)); });
}

/// f(lo, hi) over [0, n), split as split_parts says (see run_blocks).
template <class T, class F>
void split_range(Tape<T>& t, std::size_t n, std::size_t min_split, F&& f) {
  run_blocks(t, n, split_parts(t, n, min_split),
             [&](std::size_t, std::size_t lo, std::size_t hi) { f(lo, hi); });
}

}  // namespace ebl::op_detail
