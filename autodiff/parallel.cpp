#include "autodiff/parallel.hpp"

#include <dlfcn.h>

namespace ebl {

namespace {

// Polls done() for up to `limit` (the clock read every 64 polls); true as soon as it holds. A zero
// limit looks once.
template <class Done>
bool spin_until(Done done, std::chrono::microseconds limit) {
  if (limit.count() == 0) return done();
  const auto start = std::chrono::steady_clock::now();
  for (unsigned i = 1;; ++i) {
    if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (i % 64 == 0 && std::chrono::steady_clock::now() - start > limit) return false;
  }
}

}  // namespace

WorkerPool::WorkerPool(std::size_t parts, std::chrono::microseconds spin) : spin_(spin) {
  if (parts == 0) throw std::invalid_argument("WorkerPool: needs at least one part");
  for (std::size_t k = 1; k < parts; ++k) threads_.emplace_back([this, k] { work(k); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(m_);
    stop_.store(true);
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
    pending_.store(parts - 1);
    error_ = nullptr;
    generation_.fetch_add(1);
  }
  if (parts > 1) wake_.notify_all();  // no system call when every worker is still spinning
}

void WorkerPool::finish(std::exception_ptr mine) {
  auto all_done = [this] { return pending_.load() == 0; };
  std::unique_lock lock(m_, std::defer_lock);
  if (!spin_until(all_done, spin_)) {
    lock.lock();
    done_.wait(lock, all_done);
  } else {
    lock.lock();  // for error_
  }
  std::exception_ptr e = mine ? mine : error_;
  error_ = nullptr;
  if (e) std::rethrow_exception(e);
}

void WorkerPool::work(std::size_t k) {
  unsigned long seen = 0;
  auto woken = [&] { return stop_.load() || generation_.load() != seen; };
  for (;;) {
    void (*call)(void*, std::size_t);
    void* ctx;
    {
      std::unique_lock lock(m_, std::defer_lock);
      if (!spin_until(woken, spin_)) {
        lock.lock();
        wake_.wait(lock, woken);
      } else {
        lock.lock();  // a consistent snapshot of the section
      }
      if (stop_.load()) return;
      seen = generation_.load();
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
    if (e) {
      std::lock_guard lock(m_);
      if (!error_) error_ = e;
    }
    if (pending_.fetch_sub(1) == 1) {
      // the caller may be between its check of pending_ and its sleep: taking m_ first makes
      // the notification wait until it sleeps
      std::lock_guard lock(m_);
      done_.notify_one();
    }
  }
}

namespace {
using GetThreads = int (*)();
using SetThreads = void (*)(int);
// OpenBLAS's thread switch, if the BLAS linked is OpenBLAS. In a program it is visible to
// RTLD_DEFAULT; in a library loaded without RTLD_GLOBAL (the Python module) it is not, so the
// lookup falls back to the object this code is linked into, whose dependencies dlsym searches
// too (the BLAS library among them). Without the fallback the switch was silently off there, and
// our threads and OpenBLAS's fought over the cores (a CD step of the smallest bench MLP took 1.7x
// as long from Python).
void* openblas_symbol(const char* name) {
  if (void* p = dlsym(RTLD_DEFAULT, name)) return p;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&openblas_symbol), &info) && info.dli_fname)
    if (void* h = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD)) return dlsym(h, name);
  return nullptr;
}
GetThreads openblas_get() {
  return reinterpret_cast<GetThreads>(openblas_symbol("openblas_get_num_threads"));
}
SetThreads openblas_set() {
  return reinterpret_cast<SetThreads>(openblas_symbol("openblas_set_num_threads"));
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
