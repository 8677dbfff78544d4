// WorkerPool: every part of every section runs exactly once, whether hand-offs spin (the default
// pool, sections back to back) or sleep (a pool with a spin of zero), with fewer parts than
// threads, and the first exception of a section reaches the caller with the pool still usable.
// Nothing here sleeps or reads a clock: the pool's spin picks the path, a flag the order of the
// parts inside a section.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "autodiff/parallel.hpp"

using namespace ebl;
using std::chrono::microseconds;

TEST_CASE("WorkerPool runs each part once per section, spinning or sleeping between sections",
          "[parallel]") {
  for (microseconds spin : {WorkerPool::kSpin, microseconds(0)}) {
    INFO("spin " << spin.count() << " us");
    WorkerPool pool(3, spin);
    CHECK(pool.max_parts() == 3);
    std::vector<long> count(3, 0);  // each slot written by one part only: no atomics needed
    long expected[3] = {0, 0, 0};
    for (int s = 0; s < 6000; ++s) {
      const std::size_t parts = std::size_t(1 + s % 3);
      pool.run(parts, [&](std::size_t k) { count[k] += 1; });
      for (std::size_t k = 0; k < parts; ++k) ++expected[k];
    }
    for (std::size_t k = 0; k < 3; ++k) CHECK(count[k] == expected[k]);
    CHECK(expected[2] == 2000);
  }
}

TEST_CASE("WorkerPool sees the results of every part when run returns", "[parallel]") {
  WorkerPool pool(2);
  std::vector<double> data(1 << 16, 0.0);
  const std::size_t half = data.size() / 2;
  for (int s = 0; s < 200; ++s) {
    pool.run(2, [&](std::size_t k) {  // part k writes s + k over its half
      for (std::size_t e = k * half; e < (k + 1) * half; ++e) data[e] = double(s) + double(k);
    });
    double sum = 0;  // read on the caller's thread
    for (double v : data) sum += v;
    CHECK(sum == double(half) * (2.0 * s + 1.0));
  }
}

TEST_CASE("WorkerPool rethrows a part's exception once all parts are done, and goes on",
          "[parallel]") {
  for (microseconds spin : {WorkerPool::kSpin, microseconds(0)}) {
    INFO("spin " << spin.count() << " us");
    WorkerPool pool(2, spin);
    std::atomic<int> finished{0};
    std::atomic<bool> thrown{false};
    // the other part finishes only after the thrower has thrown: run() must still wait for it
    auto throwing = [&](std::size_t thrower) {
      thrown = false;
      return [&, thrower](std::size_t k) {
        if (k == thrower) {
          thrown = true;
          throw std::runtime_error("part " + std::to_string(k));
        }
        while (!thrown) std::this_thread::yield();
        ++finished;
      };
    };
    CHECK_THROWS_WITH(pool.run(2, throwing(1)), "part 1");  // a worker's part
    CHECK(finished == 1);  // the caller's part had finished before run returned
    CHECK_THROWS_WITH(pool.run(2, throwing(0)), "part 0");  // the caller's own part
    CHECK(finished == 2);                                   // and the worker's
    int ran = 0;
    pool.run(2, [&](std::size_t k) {
      if (k == 0) ran = 1;
    });
    CHECK(ran == 1);
    CHECK_THROWS_AS(pool.run(3, [](std::size_t) {}), std::invalid_argument);
  }
}
