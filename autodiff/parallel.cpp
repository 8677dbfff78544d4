#include "autodiff/parallel.hpp"

#include <dlfcn.h>

namespace ebl {

WorkerPool::WorkerPool(std::size_t parts) {
  if (parts == 0) throw std::invalid_argument("WorkerPool: needs at least one part");
  for (std::size_t k = 1; k < parts; ++k) threads_.emplace_back([this, k] { work(k); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(m_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::start(std::size_t parts, void (*call)(void*, std::size_t), void* ctx) {
  {
    std::lock_guard lock(m_);
    call_ = call;
    ctx_ = ctx;
    parts_ = parts;
    pending_ = parts - 1;
    error_ = nullptr;
    ++generation_;
  }
  if (parts > 1) wake_.notify_all();
}

void WorkerPool::finish(std::exception_ptr mine) {
  std::unique_lock lock(m_);
  done_.wait(lock, [this] { return pending_ == 0; });
  std::exception_ptr e = mine ? mine : error_;
  error_ = nullptr;
  if (e) std::rethrow_exception(e);
}

void WorkerPool::work(std::size_t k) {
  unsigned long seen = 0;
  for (;;) {
    void (*call)(void*, std::size_t);
    void* ctx;
    {
      std::unique_lock lock(m_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (k >= parts_) continue;  // this section has fewer parts than the pool has threads
      call = call_;
      ctx = ctx_;
    }
    std::exception_ptr e;
    try {
      call(ctx, k);
    } catch (...) {
      e = std::current_exception();
    }
    {
      std::lock_guard lock(m_);
      if (e && !error_) error_ = e;
      if (--pending_ == 0) done_.notify_one();
    }
  }
}

namespace {
using GetThreads = int (*)();
using SetThreads = void (*)(int);
GetThreads openblas_get() {
  return reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
}
SetThreads openblas_set() {
  return reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
}
}  // namespace

BlasSingleThreaded::BlasSingleThreaded() {
  static const GetThreads get = openblas_get();
  static const SetThreads set = openblas_set();
  if (get && set) {
    saved_ = get();
    if (saved_ > 1) set(1);
  }
}

BlasSingleThreaded::~BlasSingleThreaded() {
  static const SetThreads set = openblas_set();
  if (set && saved_ > 1) set(saved_);
}

}  // namespace ebl
