// A steady training loop allocates nothing: after a warm-up step, building the graph again on a
// cleared tape, running backward and an optimizer step makes no heap allocation. Every operator
// new of this binary is replaced by a counting one (the library's arrays allocate through it).
#include <atomic>
#include <cstdlib>
#include <new>

#include "autodiff/conv_layers.hpp"
#include "autodiff/graph_layers.hpp"
#include "autodiff/higher_order.hpp"
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

TEST_CASE("a steady CNN training step and an R-GCN step allocate nothing", "[alloc]") {
  using T = float;
  Rng rng(2);
  CnnSpec spec;
  spec.height = spec.width = 12;
  spec.blocks = {{.channels = 4, .pool = 2}, {.channels = 8, .pool = 2}};
  spec.hidden = {16};
  spec.outputs = 10;
  Cnn<T> f(spec, Activation::Silu, rng);
  Adam<T> opt(f.parameters(), {.lr = 1e-3});
  Array<T> x_pos = rng.normal_array<T>({8, 144}), x_neg = rng.normal_array<T>({8, 144});
  RelationalGraphConv<T> g1(5, 8, 4, rng, true), g2(8, 8, 4, rng, true);
  std::vector<Parameter<T>*> gp = g1.parameters();
  for (auto* p : g2.parameters()) gp.push_back(p);
  Adam<T> gopt(gp, {.lr = 1e-3});
  Array<T> adj = rng.uniform_array<T>({4, 4, 9, 9}), feat = rng.uniform_array<T>({4, 9, 5});
  Tape<T> t;
  t.set_threads(2);  // the convolutions' image blocks on two threads
  auto step = [&]() {
    // CNN: the energy -logsumexp of the logits on data and samples, ∇θ, Adam; then ∇x
    t.clear();
    opt.zero_grad();
    Var<T> e_pos = neg(logsumexp(f(t, t.input(x_pos)), 1));
    Var<T> e_neg = neg(logsumexp(f(t, t.input(x_neg)), 1));
    t.backward(mean(e_pos) - mean(e_neg));
    opt.step();
    t.clear();
    Var<T> x = t.input(x_neg, true);
    t.backward(sum(f(t, x)), {x});
    const Array<T>& gx = t.grad(x);
    for (std::size_t e = 0; e < x_neg.size(); ++e) x_neg.data()[e] -= T(0.01) * gx.data()[e];
    // R-GCN with spectral norm: a training step (one power iteration per weight), then ∇(A, X)
    t.clear();
    gopt.zero_grad();
    Var<T> a = t.input(adj);
    Var<T> e = sum(sum_readout(g2(t, a, silu(g1(t, a, t.input(feat), true)), true)));
    t.backward(e);
    gopt.step();
    t.clear();
    Var<T> av = t.input(adj, true), xv = t.input(feat, true);
    t.backward(sum(sum_readout(g2(t, av, silu(g1(t, av, xv))))), {av, xv});
  };
  step();  // warm-up: the tape's buffers are sized here
  long before = g_allocations;
  for (int k = 0; k < 3; ++k) step();
  CHECK(g_allocations - before == 0);
}

TEMPLATE_TEST_CASE("a steady score-matching step (the recorded backward) allocates nothing",
                   "[alloc][higher]", float, double) {
  using T = TestType;
  Rng rng(3);
  MLP<T> f({2, 32, 32, 1}, Activation::Silu, rng);
  Adam<T> opt(f.parameters(), {.lr = 1e-3});
  const Array<T> x_data = rng.normal_array<T>({64, 2});
  Tape<T> t;
  auto step = [&]() {
    // ½‖∇ₓE‖² − ΔE (exact, d = 2): two levels of recorded backward, then ∇θ and Adam
    t.clear();
    opt.zero_grad();
    Var<T> x = t.input(x_data, true);
    Var<T> e = reshape(f(t, x), {-1});
    Var<T> loss = mean(sub(affine(grad_norm_sq(e, x), T(0.5), T(0)), laplacian(e, x)));
    t.backward(loss);
    opt.step();
  };
  step();  // warm-up
  long before = g_allocations;
  for (int k = 0; k < 5; ++k) step();
  CHECK(g_allocations - before == 0);
}
