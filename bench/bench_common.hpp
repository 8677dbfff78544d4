// What the benchmark binaries share: the untimed warm-up before a measurement, and the page-fault
// counter.
#pragma once

#include <sys/resource.h>

#include <chrono>

namespace ebl::bench {

// Untimed runs before timing: the steady state of a loop is what is measured. The first run sizes
// the tape and the buffers and starts worker threads; and for 0.2 s after a multi-threaded BLAS
// call OpenBLAS's idle threads keep spinning (its THREAD_TIMEOUT, ~2^28 cycles), competing with
// whatever runs next, so every benchmark first runs that long, not paying for the one before it.
template <class F>
void warm_up(F&& once) {
  const auto start = std::chrono::steady_clock::now();
  do once();
  while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(200));
}

/// Minor page faults of this process so far.
inline double minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_minflt);
}

}  // namespace ebl::bench
