// The vectorised exp and sigmoid of autodiff/vmath.hpp against the C library, over the whole
// range of each type, at the special values, and at every length (the vector loop's tails).
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "autodiff/vmath.hpp"
#include "tests/helpers.hpp"

using namespace ebl;

namespace {
// |y - ref| in units in the last place of ref (the spacing of T at ref); subnormal results are
// measured in the subnormal spacing.
template <class T>
double ulps(T y, long double ref) {
  const T r = T(ref);
  const T up = std::nextafter(std::abs(r), std::numeric_limits<T>::infinity());
  const long double spacing = (long double)(up) - (long double)(std::abs(r));
  return double(std::abs((long double)(y)-ref) / spacing);
}

// x on an even grid over [lo, hi], plus the end points.
template <class T>
std::vector<T> grid(double lo, double hi, std::size_t n) {
  std::vector<T> x(n + 1);
  for (std::size_t k = 0; k <= n; ++k) x[k] = T(lo + (hi - lo) * double(k) / double(n));
  return x;
}

template <class T>
double max_exp_error(const std::vector<T>& x) {
  std::vector<T> y(x.size());
  vexp(x.data(), y.data(), x.size());
  double worst = 0;
  for (std::size_t k = 0; k < x.size(); ++k)
    worst = std::max(worst, ulps(y[k], std::exp((long double)(x[k]))));
  return worst;
}
}  // namespace

TEST_CASE("vexp is within 1 ulp of exp over the whole range of double and float", "[vmath]") {
  // from the first x whose exp is not 0 to the last whose exp is finite, subnormals included
  const double de = max_exp_error(grid<double>(-745.1, 709.78, 2000000));
  const double fe = max_exp_error(grid<float>(-103.2, 88.72, 2000000));
  // and densely where most values fall
  const double dn = max_exp_error(grid<double>(-2, 2, 400000));
  const double fn = max_exp_error(grid<float>(-2, 2, 400000));
  INFO("max error in ulp: double " << de << " (near 0: " << dn << "), float " << fe << " (" << fn
                                   << ")");
  CHECK(de <= 1.0);
  CHECK(dn <= 1.0);
  CHECK(fe <= 1.0);
  CHECK(fn <= 1.0);
}

TEMPLATE_TEST_CASE("vexp and vsigmoid at the special values", "[vmath]", float, double) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> x = {T(0), inf, -inf, nan, T(1000), T(-1000), T(-20000), T(30000), T(1)};
  std::vector<T> e(x.size()), s(x.size());
  vexp(x.data(), e.data(), x.size());
  vsigmoid(x.data(), s.data(), x.size());
  CHECK(e[0] == T(1));
  CHECK(e[1] == inf);
  CHECK(e[2] == T(0));
  CHECK(std::isnan(e[3]));
  CHECK(e[4] == inf);
  CHECK(e[5] == T(0));
  CHECK(e[6] == T(0));
  CHECK(e[7] == inf);
  CHECK(e[8] == Approx(std::exp(1.0)).epsilon(2 * std::numeric_limits<T>::epsilon()));
  CHECK(s[0] == T(0.5));
  CHECK(s[1] == T(1));
  CHECK(s[2] == T(0));
  CHECK(std::isnan(s[3]));
  CHECK(s[4] == T(1));
  CHECK(s[5] == T(0));
}

TEMPLATE_TEST_CASE("vsigmoid and vsilu agree with their definitions at every length", "[vmath]",
                   float, double) {
  // lengths 0..40 cover the vector body and every tail; values spread over [-30, 30]
  using T = TestType;
  for (std::size_t n = 0; n <= 40; ++n) {
    std::vector<T> x(n), s(n), y(n), s2(n), ref(n);
    for (std::size_t k = 0; k < n; ++k) x[k] = T(-30 + 60 * double((k * 7919) % 41) / 40.0);
    vsigmoid(x.data(), s.data(), n);
    vsilu(x.data(), s2.data(), y.data(), n);
    for (std::size_t k = 0; k < n; ++k) {
      const long double sig = 1.0L / (1.0L + std::exp(-(long double)(x[k])));
      INFO("n " << n << ", x " << x[k]);
      CHECK(ulps(s[k], sig) <= 3.0);
      CHECK(s2[k] == s[k]);
      CHECK(y[k] == x[k] * s[k]);
    }
  }
  // in place (y aliasing x)
  std::vector<T> x = {T(-3), T(0), T(2)};
  vsigmoid(x.data(), x.data(), x.size());
  CHECK(x[1] == T(0.5));
  CHECK(x[2] == Approx(1 / (1 + std::exp(-2.0))).epsilon(4 * std::numeric_limits<T>::epsilon()));
}

TEMPLATE_TEST_CASE("the sigmoid's exp equals exp wherever its result is normal or overflows",
                   "[vmath]", float, double) {
  // one power-of-two scaling instead of two: both exact, so the results must be bit-identical
  using T = TestType;
  T lo, hi, slo, shi;
  detail::exp_bounds(lo, hi);
  detail::exp_bounds(slo, shi, true);
  const std::vector<T> x = grid<T>(double(slo), double(hi) + 5, 300000);
  std::size_t differ = 0;
  for (T v : x)
    if (detail::exp_for_sigmoid(v, slo, shi) != detail::exp_one(v, lo, hi)) ++differ;
  CHECK(differ == 0);
  CHECK(detail::exp_for_sigmoid(T(1000), slo, shi) == std::numeric_limits<T>::infinity());
  CHECK(detail::exp_for_sigmoid(slo - 1, slo, shi) == detail::exp_one(slo, lo, hi));  // clamped
}

TEMPLATE_TEST_CASE("the x86-64-v4 kernels give bit-identical results to the x86-64-v3 ones",
                   "[vmath]", float, double) {
  // the AVX-512 build of each loop runs the same operations on wider vectors; any difference
  // (another contraction into a multiply-add, say) would make results depend on the CPU
  using T = TestType;
  INFO("this CPU runs " << isa_name(best_isa()));
  if (best_isa() != Isa::X86_64_v4) {
    WARN("no AVX-512 on this CPU: only the x86-64-v3 kernels can run");
    return;
  }
  // every length up to 70 (vector bodies and tails), then a long sweep over the whole range
  std::vector<std::vector<T>> inputs;
  for (std::size_t n = 0; n <= 70; ++n) inputs.push_back(grid<T>(-40, 40 - 0.37 * double(n), n));
  inputs.push_back(grid<T>(-800, 800, 200003));
  Rng rng(7);
  for (auto& x : inputs) {
    const std::size_t n = x.size();
    const std::vector<T> gy = [&] {
      std::vector<T> g(n);
      for (auto& v : g) v = T(rng.normal());
      return g;
    }();
    auto run = [&](Isa isa) {
      std::vector<T> e(n), s(n), s2(n), y(n), g0(n), g1(n, T(0.5));
      vexp(x.data(), e.data(), n, isa);
      vsigmoid(x.data(), s.data(), n, isa);
      vsilu(x.data(), s2.data(), y.data(), n, isa);
      vsilu_vjp(s2.data(), x.data(), gy.data(), g0.data(), n, false, isa);
      vsilu_vjp(s2.data(), x.data(), gy.data(), g1.data(), n, true, isa);
      return std::vector<std::vector<T>>{e, s, s2, y, g0, g1};
    };
    const auto v3 = run(Isa::X86_64_v3), v4 = run(Isa::X86_64_v4);
    for (std::size_t k = 0; k < v3.size(); ++k) {
      INFO("output " << k << " (exp, sigmoid, silu's s, silu, vjp, vjp accumulated), n " << n);
      CHECK(std::memcmp(v3[k].data(), v4[k].data(), n * sizeof(T)) == 0);
    }
  }
}

TEMPLATE_TEST_CASE("vsilu_vjp is the derivative of SiLU", "[vmath]", float, double) {
  // d/dx x σ(x) = σ(x) (1 + x (1 - σ(x))): the formula against central differences of x σ(x) in
  // long double (truncation ~h², far below the 1e-7 asked), and the kernel against the formula
  // in long double to a few ulp
  using T = TestType;
  const std::vector<T> x = grid<T>(-8, 8, 64);
  const std::size_t n = x.size();
  std::vector<T> s(n), y(n), gy(n, T(1)), g(n), acc(n, T(2));
  vsilu(x.data(), s.data(), y.data(), n);
  vsilu_vjp(s.data(), x.data(), gy.data(), g.data(), n, false);
  vsilu_vjp(s.data(), x.data(), gy.data(), acc.data(), n, true);
  for (std::size_t k = 0; k < n; ++k) {
    const long double v = x[k], sig = 1.0L / (1.0L + std::exp(-v));
    const long double exact = sig * (1.0L + v * (1.0L - sig));
    auto f = [](long double u) { return u / (1.0L + std::exp(-u)); };
    const long double h = 1e-5L, fd = (f(v + h) - f(v - h)) / (2 * h);
    INFO("x " << x[k]);
    CHECK(double(std::abs(fd - exact)) < 1e-7);
    CHECK(double(std::abs(g[k] - exact)) <=
          8 * double(std::numeric_limits<T>::epsilon()) * double(std::abs(exact) + 1));
    CHECK(acc[k] == T(2) + g[k]);
  }
}
