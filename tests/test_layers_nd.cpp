// Image and graph layers: the Cnn's gradients and its pruned ∇x pass; spectral normalisation
// against the SVD; relational graph convolution's gradients and its equivariance to the order of
// the nodes.
#include <numeric>

#include <xtensor-blas/xlinalg.hpp>

#include "autodiff/conv_layers.hpp"
#include "autodiff/graph_layers.hpp"
#include "autodiff/spectral_norm.hpp"
#include "ebm/energy.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {
CnnSpec small_cnn() {
  CnnSpec s;
  s.channels = 2;
  s.height = 7;
  s.width = 6;
  s.blocks = {{.channels = 3, .kernel = 3, .stride = 1, .padding = 1, .pool = 2},
              {.channels = 4, .kernel = 3, .stride = 2, .padding = 1, .pool = 1}};
  s.hidden = {5};
  s.outputs = 3;
  return s;
}
double largest_singular_value(const Array<double>& w) {
  Array<double> m = w;
  m.reshape({w.shape()[0], w.size() / w.shape()[0]});
  auto [u, s, vt] = xt::linalg::svd(m, false);
  return xt::amax(s)();
}
}  // namespace

TEST_CASE("a Cnn's gradients in x and in every parameter pass the gradient check",
          "[layers][cnn]") {
  Rng rng(3);
  Cnn<double> net(small_cnn(), Activation::Silu, rng);
  CHECK(net.flat_features() == 4 * 2 * 2);  // 7x6 -pool2-> 3x3 -stride 2-> 2x2
  Array<double> x = randn({2, 2 * 7 * 6}, 4);
  expect_gradients([&](TD& t, In v) { return net(t, v[0]); }, {x}, net.parameters());
  // NCHW input gives the same values as flat rows
  TD t;
  Array<double> x4 = x;
  x4.reshape({2, 2, 7, 6});
  CHECK(same(net(t, t.constant(x)).value(), net(t, t.constant(x4)).value()));
}

TEST_CASE("a Cnn refuses blocks of zero channels, kernel, stride or pool", "[layers][cnn]") {
  for (int k = 0; k < 4; ++k) {
    CnnSpec s = small_cnn();
    ConvBlock& b = s.blocks[1];
    (k == 0 ? b.channels : k == 1 ? b.kernel : k == 2 ? b.stride : b.pool) = 0;
    Rng rng(1);
    CHECK_THROWS_WITH(Cnn<double>(s, Activation::Silu, rng), Catch::Contains("block 1 needs"));
  }
}

TEST_CASE("a CNN energy is its network with one output, one energy per image", "[layers][cnn]") {
  Rng r1(5), r2(5);
  CnnEnergy<double> e(small_cnn(), Activation::Silu, r1);  // (the spec's 3 outputs become 1)
  CnnSpec one = small_cnn();
  one.outputs = 1;
  Cnn<double> net(one, Activation::Silu, r2);
  Array<double> x = randn({3, 2 * 7 * 6}, 6);
  TD t;
  Var<double> y = e(t, t.constant(x));
  CHECK(y.shape() == Shape{3});
  Array<double> ref = net(t, t.constant(x)).value();
  ref.reshape({3});
  CHECK(same(y.value(), ref));
  expect_gradients([&](TD& tp, In v) { return e(tp, v[0]); }, {x}, e.parameters());
}

TEST_CASE("a ∇x-only pass through a Cnn runs no weight-gradient product", "[layers][cnn][prune]") {
  Rng rng(5);
  Cnn<float> net(small_cnn(), Activation::Silu, rng);
  Tape<float> t;
  Var<float> x = t.input(rng.normal_array<float>({3, 2 * 7 * 6}), true);
  Var<float> e = sum(net(t, x));
  t.stats = {};
  t.backward(e, {x});
  // one product per image per convolution (its input gradient) and one per linear layer: none
  // for a weight
  CHECK(t.stats.gemm_backward == 3 * 2 + 2);
  for (auto* p : net.parameters()) {
    const bool untouched =
        std::all_of(p->grad.begin(), p->grad.end(), [](float g) { return g == 0; });
    CHECK(untouched);
  }
}

TEST_CASE("spectral norm: σ converges to the largest singular value, W/σ has norm 1",
          "[layers][spectral]") {
  for (Shape shape : {Shape{6, 4}, Shape{3, 8}, Shape{5, 3, 3, 3}}) {
    INFO("weight " << shape_str(shape));
    Rng rng(7);
    SpectralNorm<double> sn(Parameter<double>("W", randn(shape, 8)), rng);
    const double exact = largest_singular_value(sn.weight.value);
    sn.power_iteration(500);
    CHECK(sn.sigma() == Approx(exact).epsilon(1e-9));
    TD t;
    Array<double> wn = sn(t, false).value();
    CHECK(largest_singular_value(wn) == Approx(1.0).epsilon(1e-9));
    // a training forward runs one more iteration; a sampling forward leaves u and v alone
    Array<double> u = sn.u();
    sn(t, false);
    CHECK(same(u, sn.u()));
  }
}

TEST_CASE("spectral norm's gradient (u, v fixed) passes the gradient check", "[layers][spectral]") {
  Rng rng(9);
  SpectralNorm<double> sn(Parameter<double>("W", randn({4, 3}, 10)), rng);
  sn.power_iteration(2);  // not converged: the check must hold for any fixed u, v
  expect_gradients([&](TD& t, In) { return sn(t, false); }, {}, sn.parameters());
  // and through a layer that uses the normalised weight
  Array<double> x = randn({5, 4}, 11);
  expect_gradients([&](TD& t, In v) { return matmul(v[0], sn(t, false)); }, {x}, sn.parameters());
}

namespace {
// A [B, R, N, N] with symmetric 0/1 entries, one relation per edge, and features H [B, N, F].
Array<double> random_adjacency(std::size_t B, std::size_t R, std::size_t N, std::uint64_t seed) {
  Rng rng(seed);
  Array<double> a(Shape{B, R, N, N}, 0.0);
  for (std::size_t g = 0; g < B; ++g)
    for (std::size_t i = 0; i < N; ++i)
      for (std::size_t j = i + 1; j < N; ++j)
        if (rng.bernoulli(0.5)) {
          const std::size_t r = rng.below(R);
          a(g, r, i, j) = a(g, r, j, i) = 1.0;
        }
  return a;
}
}  // namespace

TEST_CASE("relational graph convolution: gradients in A, H and every weight", "[layers][rgcn]") {
  for (bool sn : {false, true}) {
    INFO("spectral norm " << sn);
    Rng rng(12);
    RelationalGraphConv<double> conv(3, 4, 2, rng, sn);
    Array<double> a = random_adjacency(2, 2, 5, 13) + 0.1 * randn({2, 2, 5, 5}, 14);
    Array<double> h = randn({2, 5, 3}, 15);
    expect_gradients([&](TD& t, In v) { return conv(t, v[0], v[1], false); }, {a, h},
                     conv.parameters());
  }
}

TEST_CASE("relational graph convolution is equivariant to the order of the nodes",
          "[layers][rgcn]") {
  Rng rng(16);
  RelationalGraphConv<double> conv1(3, 6, 4, rng, true), conv2(6, 5, 4, rng, true);
  const std::size_t B = 2, R = 4, N = 7;
  Array<double> a = random_adjacency(B, R, N, 17), h = randn({B, N, 3}, 18);
  std::vector<std::size_t> perm(N);
  std::iota(perm.begin(), perm.end(), 0);
  Rng prng(19);
  for (std::size_t i = N; i-- > 1;) std::swap(perm[i], perm[prng.below(i + 1)]);
  Array<double> ap(a.shape()), hp(h.shape());  // node k of the permuted graph is node perm[k]
  for (std::size_t g = 0; g < B; ++g) {
    for (std::size_t k = 0; k < N; ++k)
      for (std::size_t f = 0; f < 3; ++f) hp(g, k, f) = h(g, perm[k], f);
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t k = 0; k < N; ++k)
        for (std::size_t l = 0; l < N; ++l) ap(g, r, k, l) = a(g, r, perm[k], perm[l]);
  }
  auto net = [&](TD& t, const Array<double>& A, const Array<double>& H) {
    Var<double> av = t.constant(A);
    return conv2(t, av, silu(conv1(t, av, t.constant(H))));
  };
  TD t;
  Var<double> y = net(t, a, h), yp = net(t, ap, hp);
  double worst = 0;
  for (std::size_t g = 0; g < B; ++g)
    for (std::size_t k = 0; k < N; ++k)
      for (std::size_t f = 0; f < 5; ++f)
        worst = std::max(worst, std::abs(yp.value()(g, k, f) - y.value()(g, perm[k], f)));
  CHECK(worst < 1e-12);
  Var<double> s = sum_readout(y), sp = sum_readout(yp);
  REQUIRE(s.shape() == Shape{B, 5});
  for (std::size_t e = 0; e < s.value().size(); ++e)
    CHECK(sp.value().data()[e] == Approx(s.value().data()[e]).epsilon(1e-12));
}

TEST_CASE("a Cnn on a tape with threads agrees with one thread, values and every gradient",
          "[layers][cnn][threads]") {
  // large enough that every split happens: the SiLU maps (250k values), the pooling (320
  // planes), the linear layer's rows and its weight gradient's rows, and the convolution's images
  CnnSpec spec;
  spec.blocks = {{.channels = 8, .pool = 2}};
  spec.hidden = {32};
  spec.outputs = 10;
  Rng rng(31);
  Cnn<double> net(spec, Activation::Silu, rng);
  Array<double> x = randn({40, 784}, 32);
  auto run = [&](std::size_t threads) {
    TD t;
    t.set_threads(threads);
    for (auto* p : net.parameters()) p->zero_grad();
    V xv = t.input(x, true);
    V y = net(t, xv);
    Array<double> cot = randn(y.shape(), 33);
    t.backward(sum(y * t.constant(cot)), {xv}, net.parameters());
    std::vector<Array<double>> out{y.value(), t.grad(xv)};
    for (auto* p : net.parameters()) out.push_back(p->grad);
    return out;
  };
  auto one = run(1), two = run(2);
  for (std::size_t k = 0; k < one.size(); ++k) {
    INFO("output " << k);
    CHECK(max_rel_diff(one[k], two[k]) < 1e-10);
  }
}
