// demo: the library in one screen. Builds an MLP energy E_θ(x), evaluates it on a batch, takes
// ∇θ (for training) and ∇x (for sampling) from one tape, and gradient-checks both against
// central differences. The README's main job until the flagship experiment exists.
#include <cmath>
#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "autodiff/gradcheck.hpp"
#include "autodiff/layers.hpp"
#include "experiments/common/run.hpp"

using namespace ebl;

namespace {

template <class T>
double l2(const Array<T>& a) {
  double s = 0;
  for (T v : a) s += double(v) * double(v);
  return std::sqrt(s);
}

// E_θ(x) = MLP(x), one energy per row of x.
Var<double> energy(MLP<double>& f, Tape<double>& t, Var<double> x) {
  return reshape(f(t, x), {-1});
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"demo: an MLP energy E(x), its gradients in θ and x, and their gradient check",
               "demo"};
  std::size_t batch = 4, in = 2, hidden = 16, layers = 2;
  std::string act_name = "silu";
  std::uint64_t seed = 0;
  // NOTE: small ranges on purpose: the demo prints a row per sample and its gradient check
  // differentiates numerically through every parameter (two forward passes each).
  app.add_option("--batch", batch, "number of samples x")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--in", in, "dimension of x")->check(CLI::Range(1, 16))->capture_default_str();
  app.add_option("--hidden", hidden, "width of each hidden layer")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--layers", layers, "number of hidden layers")
      ->check(CLI::Range(1, 4))
      ->capture_default_str();
  app.add_option("--activation", act_name, "relu, leaky_relu, tanh, sigmoid, softplus, silu")
      ->capture_default_str();
  app.add_option("--seed", seed, "seed of the generator")->capture_default_str();
  if (auto code = ebl::xp::parse_flags(app, argc, argv)) return *code;
  Activation act;
  try {
    act = parse_activation(act_name);
  } catch (const std::exception& e) {
    fmt::print(stderr, "demo: {}\n", e.what());
    return 2;
  }

  try {
    Rng rng(seed);
    std::vector<std::size_t> sizes{in};
    for (std::size_t l = 0; l < layers; ++l) sizes.push_back(hidden);
    sizes.push_back(1);
    MLP<double> f(sizes, act, rng);
    Array<double> x0 = rng.normal_array<double>({batch, in});

    fmt::print("MLP energy E(x): sizes [{}], activation {}, batch {}, seed {}\n\n",
               fmt::join(sizes, ", "), to_string(act), batch, seed);

    // One tape, both gradients: ∇θ of the mean energy (training), ∇x of the summed energy (sampling:
    // each sample's energy depends on its own x only, so ∇x Σ E = [∇x E(x_i)]_i).
    Tape<double> t;
    Var<double> x = t.input(x0, true);
    Var<double> e = energy(f, t, x);
    t.backward(sum(e), {x}, f.parameters());

    fmt::print("{:>4}  {:>34}  {:>12}  {}\n", "i", "x_i", "E(x_i)", "grad_x E(x_i)");
    for (std::size_t r = 0; r < batch; ++r) {
      std::vector<double> xr, gr;
      for (std::size_t c = 0; c < in; ++c) {
        xr.push_back(x0(r, c));
        gr.push_back(t.grad(x)(r, c));
      }
      fmt::print("{:>4}  {:>34}  {:>12.6f}  {:.6f}\n", r, fmt::format("{:.4f}", fmt::join(xr, " ")),
                 e.value()(r), fmt::join(gr, " "));
    }
    fmt::print("\ngrad_theta sum_i E(x_i):\n");
    for (auto* p : f.parameters())
      fmt::print("  {:<10} shape {:<8}  |grad| = {:.6f}\n", p->name, shape_str(p->value.shape()),
                 l2(p->grad));

    // Gradient check of both, with a random cotangent over the per-sample energies.
    for (auto* p : f.parameters()) p->zero_grad();
    GradcheckReport rep = gradcheck(
        [&f](Tape<double>& tt, std::span<const Var<double>> v) { return energy(f, tt, v[0]); },
        {x0}, f.parameters());
    fmt::print("\n{}\n", rep.str());
    fmt::print("tape: {} nodes, {} forward GEMMs, {} backward GEMMs\n", t.size(),
               t.stats.gemm_forward, t.stats.gemm_backward);
    return rep.ok ? 0 : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "demo: {}\n", ebl::xp::error_line(e));
    return 1;
  }
}
