// Fork-join parallelism for independent work (the rows of a batch of Markov chains), and the
// switch that keeps OpenBLAS's own thread pool out of such sections.
//
// WorkerPool keeps its threads for its whole life: run(parts, fn) calls fn(0) on the calling
// thread and fn(1), ..., fn(parts-1) on the workers, and returns when all have finished. Nothing
// is allocated per section, and the first exception thrown by any part is rethrown by run() once
// every part has finished.
//
// Hand-offs: a worker that has finished its part spins on the section counter for a short while
// (kSpin) before it sleeps on a condition variable, and so does the caller waiting for the parts:
// a tape's ops open one section each, back to back, and a sleep-and-wake per section costs tens of
// microseconds (45 us measured here), several percent of a CNN forward pass. Spinning workers
// burn their core for at most kSpin after each section. A pool made with a spin of zero always
// sleeps (the tests drive both hand-offs this way, without timing anything).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

namespace ebl {

/// Work split across threads: block b of `parts` near-equal contiguous blocks of n items (the
/// rows of a batch of chains, the elements of a parameter) starts at block_start(n, b, parts) and
/// ends where block b + 1 starts.
inline std::size_t block_start(std::size_t n, std::size_t b, std::size_t parts) {
  return n * b / parts;
}

/// A fork-join pool of threads kept for its whole life (see the top of this file).
class WorkerPool {
 public:
  static constexpr std::chrono::microseconds kSpin{100};  ///< the default spin before sleeping

  /// A pool for sections of up to `parts` parts: parts - 1 worker threads, each spinning for up
  /// to `spin` after a section before it sleeps (the caller likewise, waiting for the parts).
  explicit WorkerPool(std::size_t parts, std::chrono::microseconds spin = kSpin);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// The most parts a section can have (the workers plus the caller).
  std::size_t max_parts() const { return threads_.size() + 1; }

  /// fn(k) for k = 0 .. parts-1, k = 0 on this thread; returns when all are done.
  template <class F>
  void run(std::size_t parts, F&& fn) {
    if (parts > max_parts())
      throw std::invalid_argument("WorkerPool::run: more parts than the pool has threads");
    auto call = [](void* f, std::size_t k) { (*static_cast<std::remove_reference_t<F>*>(f))(k); };
    start(parts, call, static_cast<void*>(&fn));
    std::exception_ptr mine;
    try {
      fn(std::size_t(0));
    } catch (...) {
      mine = std::current_exception();
    }
    finish(mine);
  }

 private:
  void start(std::size_t parts, void (*call)(void*, std::size_t), void* ctx);
  void finish(std::exception_ptr mine);
  void work(std::size_t k);

  const std::chrono::microseconds spin_;
  std::vector<std::thread> threads_;
  std::mutex m_;  // guards call_, ctx_, parts_, error_ and the sleeps
  std::condition_variable wake_, done_;
  void (*call_)(void*, std::size_t) = nullptr;
  void* ctx_ = nullptr;
  std::size_t parts_ = 0;
  std::atomic<std::size_t> pending_{0};       // workers' parts of this section not yet done
  std::atomic<unsigned long> generation_{0};  // one per section, written under m_
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
};

/// While alive, BLAS calls run single-threaded (OpenBLAS's openblas_set_num_threads, looked up at
/// run time; a no-op with another BLAS). Parallel sections whose parts call BLAS hold one: two
/// callers each driving OpenBLAS's pool would fight over the same cores.
class BlasSingleThreaded {
 public:
  BlasSingleThreaded();
  ~BlasSingleThreaded();
  BlasSingleThreaded(const BlasSingleThreaded&) = delete;
  BlasSingleThreaded& operator=(const BlasSingleThreaded&) = delete;

 private:
  int saved_ = 0;
};

}  // namespace ebl
