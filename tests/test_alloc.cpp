// A steady training loop allocates nothing: after a warm-up step, building the graph again on a
// cleared tape, running backward and an optimizer step makes no heap allocation. Every operator
// new of this binary is replaced by a counting one (the library's arrays allocate through it).
#include <atomic>
#include <cstdlib>
#include <new>

#include "autodiff/layers.hpp"
#include "autodiff/optim.hpp"
#include "tests/helpers.hpp"

namespace {
std::atomic<long> g_allocations{0};
void* counted(std::size_t n, std::size_t align) {
  ++g_allocations;
  void* p = nullptr;
  if (align <= alignof(std::max_align_t))
    p = std::malloc(n ? n : 1);
  else if (posix_memalign(&p, align, n ? n : 1) != 0)
    p = nullptr;
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t n) {
  return counted(n, 0);
}
void* operator new[](std::size_t n) {
  return counted(n, 0);
}
void* operator new(std::size_t n, std::align_val_t a) {
  return counted(n, std::size_t(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted(n, std::size_t(a));
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

using namespace ebl;

TEST_CASE("the allocation counter sees the library's arrays", "[alloc]") {
  long before = g_allocations;
  Array<float> a(Shape{1000}, 0.f);
  CHECK(g_allocations > before);
}

TEMPLATE_TEST_CASE("a steady training step allocates nothing", "[alloc]", float, double) {
  using T = TestType;
  Rng rng(1);
  MLP<T> f({2, 64, 64, 1}, Activation::Silu, rng);
  Adam<T> opt(f.parameters(), {.lr = 1e-3});
  Array<T> x_pos = rng.normal_array<T>({128, 2}), x_neg = rng.normal_array<T>({128, 2});
  Tape<T> t;
  auto step = [&]() {
    // a contrastive-divergence-shaped step: energies of data and samples, a regularised loss,
    // ∇θ, Adam; then a Langevin-shaped ∇x pass
    t.clear();
    opt.zero_grad();
    Var<T> xp = t.input(x_pos), xn = t.input(x_neg);
    Var<T> e_pos = reshape(f(t, xp), {-1}), e_neg = reshape(f(t, xn), {-1});
    Var<T> loss = mean(e_pos) - mean(e_neg) + T(0.1) * (mean(square(e_pos)) + mean(square(e_neg)));
    t.backward(loss);
    opt.step();
    t.clear();
    Var<T> x = t.input(x_neg, true);
    t.backward(sum(f(t, x)), {x});
    const Array<T>& gx = t.grad(x);
    for (std::size_t e = 0; e < x_neg.size(); ++e) x_neg.data()[e] -= T(0.01) * gx.data()[e];
  };
  step();  // warm-up: the tape's buffers are sized here
  long before = g_allocations;
  for (int k = 0; k < 5; ++k) step();
  CHECK(g_allocations - before == 0);
}
