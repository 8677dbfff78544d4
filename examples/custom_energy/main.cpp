// A user's own energy on the installed library: a custom op with its own VJP, an energy built from
// it and the library's layers, its gradient check, Langevin samples from it, a few steps of
// contrastive divergence on the library's 2-D data, and the library's data files found from the
// installed prefix. Exits with status 1 if any check fails.
//
//   E_θ(x) = MLP_θ(x) + λ Σ_d soft_abs(x_d),   soft_abs(u) = sqrt(u² + 1)
//
// soft_abs confines the density (it grows like |u|) while staying smooth at 0, where |u| has a kink.
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "autodiff/gradcheck.hpp"
#include "autodiff/layers.hpp"
#include "autodiff/optim.hpp"
#include "autodiff/version.hpp"
#include "datasets/images.hpp"
#include "datasets/toy2d.hpp"
#include "ebm/cd.hpp"
#include "ebm/energy.hpp"
#include "samplers/langevin.hpp"

using namespace ebl;

// A custom op, written the way the library writes its own (autodiff/ops.cpp): push a node with
// its inputs and a capture-less VJP, then write the forward value.
//   forward  y = sqrt(x² + 1)
//   VJP      gx += gy · x / y        (reusing y rather than recomputing the square root)
template <class T>
Var<T> soft_abs(Var<T> x) {
  Tape<T>& t = *x.tape;
  const std::size_t i = t.push("soft_abs", {x.id}, [](Tape<T>& tp, std::size_t self) {
    const std::size_t a = tp.in(self, 0);
    tp.accumulate(a, tp.gy(self) * tp.val(a) / tp.val(self));
  });
  xt::noalias(t.out(i)) = xt::sqrt(x.value() * x.value() + T(1));
  return {&t, i};
}

// The energy: any Energy<T> works with the library's samplers and trainers unchanged.
template <class T>
class ConfinedMlpEnergy : public Energy<T> {
 public:
  ConfinedMlpEnergy(std::size_t dim, std::size_t hidden, T lambda, Rng& rng)
      : mlp_({dim, hidden, hidden, 1}, Activation::Silu, rng), lambda_(lambda) {}
  Var<T> operator()(Tape<T>& t, Var<T> x) override {
    return reshape(mlp_(t, x), {-1}) + lambda_ * sum(soft_abs(x), 1);
  }
  std::vector<Parameter<T>*> parameters() override { return mlp_.parameters(); }

 private:
  MLP<T> mlp_;
  T lambda_;
};

int main() {
  fmt::print("custom_energy on ebl {}\n", kVersion);
  bool ok = true;

  // 1. Gradient checks in double: the op alone (random cotangent, inputs on both sides of 0), and
  //    the whole energy in x and in θ.
  Rng rng(7);
  Array<double> x0 = rng.normal_array<double>({5, 2}, 0.0, 1.5);
  auto op_report =
      gradcheck([](Tape<double>&, std::span<const Var<double>> v) { return soft_abs(v[0]); }, {x0});
  fmt::print("soft_abs: {}\n", op_report.str());
  ConfinedMlpEnergy<double> e64(2, 16, 0.5, rng);
  auto energy_report =
      gradcheck([&](Tape<double>& t, std::span<const Var<double>> v) { return e64(t, v[0]); }, {x0},
                e64.parameters());
  fmt::print("energy:   {}\n", energy_report.str());
  ok = ok && op_report.ok && energy_report.ok;

  // 2. Langevin samples from the energy as initialised (float, the fast path).
  ConfinedMlpEnergy<float> energy(2, 64, 0.5f, rng);
  auto mean_energy = [&](const Array<float>& x) {
    Tape<float> t;
    return double(mean(energy(t, t.constant(x))).item());
  };
  Array<float> chains = rng.uniform_array<float>({256, 2}, -4.0f, 4.0f);
  const double before = mean_energy(chains);
  Langevin<float>([&](Tape<float>& t, Var<float> v) { return energy(t, v); },
                  {.steps = 200, .step_size = 0.01})
      .run(chains, rng);
  const double after = mean_energy(chains);
  fmt::print("Langevin: mean energy of 256 chains {:.3f} -> {:.3f}\n", before, after);
  ok = ok && after < before;

  // 3. Contrastive divergence on the library's 8 gaussians: E(x⁺) falls below E(x⁻).
  Adam<float> opt(energy.parameters(), {.lr = 1e-3});
  CdOptions o;
  o.langevin = {.steps = 20, .step_size = 0.005};
  o.noise_lo = -4;
  o.noise_hi = 4;
  o.buffer_size = 2000;
  o.alpha = 0.01;
  ContrastiveDivergence<float> cd(energy, opt, o, /*seed=*/1, /*dim=*/2);
  const toy2d::Dataset data = toy2d::eight_gaussians();
  CdStepStats s{};
  for (int step = 1; step <= 300; ++step) {
    Array<float> batch = toy2d::sample<float>(data, 128, cd.rng());
    s = cd.step(batch);
    if (step % 100 == 0)
      fmt::print("CD step {}: loss {:+.3f}, E(x+) {:+.3f}, E(x-) {:+.3f}\n", step, s.loss, s.e_pos,
                 s.e_neg);
  }
  ok = ok && std::isfinite(s.loss) && s.e_pos < s.e_neg;

  // 4. The data carried with the library, found from the installed prefix.
  try {
    const auto path = default_digits_path();
    const LabeledData digits = load_digits_csv(path);
    fmt::print("digits: {} images from {}\n", digits.size(), path.string());
    ok = ok && digits.size() == 1797;
  } catch (const IoError& err) {
    fmt::print("digits: {}\n", err.what());
    ok = false;
  }

  fmt::print("{}\n", ok ? "all checks passed" : "A CHECK FAILED");
  return ok ? 0 : 1;
}
