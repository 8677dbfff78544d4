// compose: energies trained apart, combined into concepts never trained together (ebm/compose.hpp),
// measured exactly on the plane.
//
// Three concepts with known densities on the box [-4, 4]²: a ring (radius 2), a horizontal band
// (y near 1) and a mixture of four Gaussians. One conditional network E_θ(x | c), c ∈ {ring,
// band, mixture}, is trained by persistent CD on exact samples of each concept (a step per
// concept in turn). Then every operator composes the learned concepts and, beside it, the true
// ones, and the composites are compared on the grid: total variation between the true and the
// learned composite density, the NLL of exact composite samples under each, and the MMD² of
// Langevin and MALA samples against exact samples — for the learned composite and for the true
// one, so that the sampler's error is seen apart from the learning's. Exact samples of any
// density come from the grid: a cell drawn with its probability, a uniform point inside it.
//
// Output, in a new folder runs/compose/plane-seed<seed>: config.json, results.{json,md,csv},
// densities.csv and densities.png (one row per concept and composite, true beside learned).
#include <cmath>

#include "ebm/boltzmann.hpp"
#include "ebm/cd.hpp"
#include "ebm/compose.hpp"
#include "experiments/common/run.hpp"
#include "metrics/mmd.hpp"
#include "samplers/mala.hpp"
#include "samplers/targets.hpp"

using namespace ebl;
using namespace ebl::xp;
using T = float;

namespace {

struct Flags {
  long steps = 4000;  // CD steps per concept
  std::size_t batch = 256, hidden = 128, layers = 2;
  double lr = 1e-3, lr_final = 1e-4, step_size = 0.005, alpha = 0.01;
  int langevin_steps = 20, sample_steps = 500, threads = 2;
  std::size_t buffer = 10000, grid = 200, train_size = 50000, eval_samples = 1000;
  double box = 4;
  std::uint64_t seed = 0;
  std::string out = "runs";
  bool smoke = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Flags, steps, batch, hidden, layers, lr, lr_final, step_size,
                                   alpha, langevin_steps, sample_steps, threads, buffer, grid,
                                   train_size, eval_samples, box, seed, out, smoke)

// The concepts' true energies (each up to its constant; normalised on the box by quadrature).
EnergyPtr<T> ring_energy() {  // (|x| − 2)² / 2·0.2²
  return std::make_shared<FunctionEnergy<T>>([](Tape<T>&, Var<T> x) {
    Var<T> r = sqrt(sum(square(x), 1) + T(1e-6));
    return square(r - T(2)) * T(1 / (2 * 0.2 * 0.2));
  });
}
EnergyPtr<T> band_energy() {  // (y − 1)² / 2·0.4²
  return std::make_shared<FunctionEnergy<T>>([](Tape<T>&, Var<T> x) {
    const std::size_t one[] = {1};
    Var<T> y = reshape(cols(x, std::span<const std::size_t>(one)), {-1});
    return square(y - T(1)) * T(1 / (2 * 0.4 * 0.4));
  });
}
EnergyPtr<T> mixture_energy() {  // four Gaussians at (±1.5, ±1.5), sd 0.4
  GaussianMixture mix({{1.5, 1.5}, {-1.5, 1.5}, {-1.5, -1.5}, {1.5, -1.5}},
                      std::vector<double>(4, 0.4), std::vector<double>(4, 1.0));
  return std::make_shared<FunctionEnergy<T>>(mix.energy<T>());
}
const std::vector<std::string> kConcepts = {"ring", "band", "mixture"};

// A wall outside the box, added to every energy the samplers see: the densities compared live on
// the box, and the band (unbounded along x) or a learned energy must not carry chains off it.
EnergyFn<T> with_wall(EnergyPtr<T> e, double box) {
  return [e, box](Tape<T>& t, Var<T> x) {
    Var<T> out = relu(abs(x) - T(box));
    return (*e)(t, x) + sum(square(out), 1) * T(100);
  };
}

// n exact samples of the density p on the grid (normalised: Σ p · cell = 1): a cell with its
// probability, then a uniform point in it.
Array<T> sample_grid(const Array<T>& p, const Domain<T>& grid, double box, std::size_t cells,
                     std::size_t n, Rng& rng) {
  std::vector<double> cdf(p.size());
  double acc = 0;
  for (std::size_t i = 0; i < p.size(); ++i) cdf[i] = acc += double(p(i));
  const double h = 2 * box / double(cells);
  Array<T> x(Shape{n, 2});
  for (std::size_t r = 0; r < n; ++r) {
    const double u = rng.uniform() * acc;
    const std::size_t i = std::min(
        std::size_t(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin()), p.size() - 1);
    x(r, 0) = T(double(grid.points(i, 0)) + h * (rng.uniform() - 0.5));
    x(r, 1) = T(double(grid.points(i, 1)) + h * (rng.uniform() - 0.5));
  }
  return x;
}

// densities.csv holds x, y, then for each row its true and learned density: one picture per row.
std::string densities_script(const std::vector<std::string>& rows, double box) {
  std::string s = fmt::format(R"(set terminal pngcairo size 560,{} font ",9"
set output 'densities.png.tmp'
set datafile separator ','
set size ratio -1
set xrange [{}:{}]
set yrange [{}:{}]
unset colorbox
unset xtics
unset ytics
set palette defined (0 '#000004', 1 '#51127c', 2 '#b73779', 3 '#fc8961', 4 '#fcfdbf')
set multiplot layout {},2
)",
                              250 * rows.size(), -box, box, -box, box, rows.size());
  for (std::size_t k = 0; k < rows.size(); ++k)
    s += fmt::format(
        "set title '{0}: true'\nplot 'densities.csv' using 1:2:{1} with image notitle\n"
        "set title '{0}: learned'\nplot 'densities.csv' using 1:2:{2} with image notitle\n",
        rows[k], 3 + 2 * k, 4 + 2 * k);
  return s + "unset multiplot\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"compose: energies trained apart, composed by AND, OR, NOT, measured exactly",
               "compose"};
  Flags f;
  app.add_option("--steps", f.steps, "CD steps per concept")
      ->check(CLI::Range(1L, 100000000L))
      ->capture_default_str();
  app.add_option("--batch", f.batch, "data batch = chains per step")
      ->check(CLI::Range(2, 1 << 20))
      ->capture_default_str();
  app.add_option("--hidden", f.hidden, "width of the conditional network")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  app.add_option("--layers", f.layers, "hidden layers")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  app.add_option("--lr", f.lr, "Adam learning rate at the first step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--lr-final", f.lr_final, "learning rate at the last step")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--step-size", f.step_size, "Langevin / MALA step size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--alpha", f.alpha, "weight of alpha (E(x+)^2 + E(x-)^2)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  app.add_option("--langevin-steps", f.langevin_steps, "Langevin steps per CD step")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--sample-steps", f.sample_steps, "Langevin / MALA steps for composite samples")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--threads", f.threads, "threads for the chains and the CD gradient")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--buffer", f.buffer, "persistent chains per concept")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  app.add_option("--grid", f.grid, "quadrature cells per axis")
      ->check(CLI::Range(10, 4000))
      ->capture_default_str();
  app.add_option("--train-size", f.train_size, "exact samples per concept for training")
      ->check(CLI::Range(2, 1 << 26))
      ->capture_default_str();
  app.add_option("--eval-samples", f.eval_samples, "samples per composite for NLL and MMD")
      ->check(CLI::Range(2, 100000))
      ->capture_default_str();
  app.add_option("--seed", f.seed, "seed of data, initialisation and chains")
      ->capture_default_str();
  app.add_option("--out", f.out, "base folder of runs")->capture_default_str();
  app.add_flag("--smoke", f.smoke, "a few steps on a small model, for CI");
  if (auto code = parse_flags(app, argc, argv)) return *code;
  if (f.smoke) {
    f.steps = 20;
    f.hidden = 16;
    f.grid = 40;
    f.train_size = 2000;
    f.eval_samples = 100;
    f.sample_steps = 20;
    f.buffer = 500;
  }
  try {
    const Domain<T> grid = grid_2d<T>(-f.box, f.box, f.grid, -f.box, f.box, f.grid);
    const std::vector<EnergyPtr<T>> truth = {ring_energy(), band_energy(), mixture_energy()};

    // Training data: exact samples of each concept, drawn from its density on the grid.
    Rng data_rng(f.seed);
    std::vector<Array<T>> train;
    for (const auto& e : truth)
      train.push_back(sample_grid(density(*e, grid), grid, f.box, f.grid, f.train_size, data_rng));

    // One conditional network, one CD trainer per concept (each its own persistent chains),
    // sharing one optimizer: the concepts take turns.
    Rng init_rng(f.seed + 1);
    ConditionalMlpEnergy<T> model(2, std::vector<std::size_t>(f.layers, f.hidden), kConcepts.size(),
                                  Activation::Silu, init_rng);
    std::vector<EnergyPtr<T>> learned;
    for (std::size_t c = 0; c < kConcepts.size(); ++c)
      learned.push_back(std::make_shared<ConceptEnergy<T>>(model, c));
    Adam<T> opt(model.parameters(), {.lr = f.lr});
    CdOptions cdo;
    cdo.langevin = {.steps = f.langevin_steps,
                    .step_size = f.step_size,
                    .clamp = true,
                    .lo = -f.box,
                    .hi = f.box,
                    .threads = f.threads};
    cdo.alpha = f.alpha;
    cdo.noise_lo = -f.box;
    cdo.noise_hi = f.box;
    cdo.buffer_size = f.buffer;
    std::vector<std::unique_ptr<ContrastiveDivergence<T>>> cd;
    for (std::size_t c = 0; c < kConcepts.size(); ++c)
      cd.push_back(
          std::make_unique<ContrastiveDivergence<T>>(*learned[c], opt, cdo, f.seed + 10 + c, 2));

    const nlohmann::json config = f;
    fs::path dir = make_run_dir(f.out, "compose", fmt::format("plane-seed{}", f.seed));
    write_json(dir / "config.json", config);
    fmt::print("compose -> {}\n{}\n", dir.string(), config.dump());

    Progress bar("compose", f.steps);
    Array<T> batch(Shape{f.batch, 2});
    Rng batch_rng(f.seed + 2);
    for (long s = 0; s < f.steps; ++s) {
      opt.options().lr = f.lr + (f.lr_final - f.lr) * double(s) / double(std::max(1L, f.steps - 1));
      std::string info;
      for (std::size_t c = 0; c < kConcepts.size(); ++c) {
        for (std::size_t i = 0; i < f.batch; ++i) {
          const std::size_t r = batch_rng.below(f.train_size);
          batch(i, 0) = train[c](r, 0);
          batch(i, 1) = train[c](r, 1);
        }
        const CdStepStats st = cd[c]->step(batch);  // a divergence ends the run (exit 3)
        info += fmt::format("{} {:+.2f} ", kConcepts[c], st.loss);
      }
      bar.update(s + 1, info);
    }

    // The composites, each built twice: from the true concepts and from the learned ones. The
    // OR that mixes as asked needs each part's log Z: by quadrature on the box.
    auto log_z = [&](const EnergyPtr<T>& e) { return log_partition(*e, grid); };
    struct Composite {
      std::string name, formula;
      std::function<EnergyPtr<T>(const std::vector<EnergyPtr<T>>&)> build;
    };
    const std::vector<Composite> composites = {
        {"ring AND band", "E_ring + E_band",
         [](const auto& e) {
           return And<T>({e[0], e[1]});
         }},
        {"band OR mixture (½, ½)", "−log(½ p_band + ½ p_mixture), log Z by quadrature",
         [&](const auto& e) {
           return Mixture<T>({e[1], e[2]}, {0.5, 0.5}, {log_z(e[1]), log_z(e[2])});
         }},
        {"band OR mixture (s = 1)", "−log(e^−E_band + e^−E_mixture): weights Z_band : Z_mixture",
         [](const auto& e) {
           return Or<T>({e[1], e[2]});
         }},
        {"ring AND NOT mixture", "E_ring − E_mixture",
         [](const auto& e) { return Not<T>(e[0], e[2], T(1)); }},
        {"(ring AND band) AND NOT mixture", "E_ring + E_band − E_mixture",
         [](const auto& e) {
           return Not<T>(And<T>({e[0], e[1]}), e[2], T(1));
         }},
    };

    std::vector<std::string> rows = kConcepts;
    std::vector<Array<T>> p_true, p_learned;
    for (std::size_t c = 0; c < kConcepts.size(); ++c) {
      p_true.push_back(density(*truth[c], grid));
      p_learned.push_back(density(*learned[c], grid));
    }
    const double cell = std::exp(grid.log_cell);
    auto total_variation = [&](const Array<T>& p, const Array<T>& q) {
      double s = 0;
      for (std::size_t i = 0; i < p.size(); ++i) s += std::abs(double(p(i)) - double(q(i)));
      return 0.5 * s * cell;
    };
    const std::vector<double> bandwidths = {0.1, 0.3, 1.0};
    auto langevin_samples = [&](const EnergyPtr<T>& e, std::uint64_t seed) {
      Rng rng(seed);
      Array<T> x = rng.uniform_array<T>({f.eval_samples, 2}, -f.box, f.box);
      Langevin<T>(with_wall(e, f.box),
                  {.steps = f.sample_steps, .step_size = f.step_size, .threads = f.threads})
          .run(x, rng);
      return x;
    };
    auto mala_samples = [&](const EnergyPtr<T>& e, std::uint64_t seed, double& acceptance) {
      Rng rng(seed);
      Array<T> x = rng.uniform_array<T>({f.eval_samples, 2}, -f.box, f.box);
      acceptance = Mala<T>(with_wall(e, f.box), {.steps = f.sample_steps, .step_size = f.step_size})
                       .run(x, rng)
                       .acceptance;
      return x;
    };

    json results = json::array();
    Csv csv({"composite", "tv", "nll_true", "nll_learned", "mmd2_exact_vs_exact",
             "mmd2_langevin_true", "mmd2_mala_true", "mmd2_langevin_learned", "mmd2_mala_learned"});
    std::string md =
        "| composite | TV(true, learned) | NLL of exact samples: true / learned | MMD² exact vs "
        "exact (floor) | MMD² Langevin: true / learned | MMD² MALA: true / learned |\n"
        "|---|---:|---:|---:|---:|---:|\n";
    Rng eval_rng(f.seed + 3);
    for (std::size_t k = 0; k < kConcepts.size() + composites.size(); ++k) {
      const bool concept_row = k < kConcepts.size();
      const std::string name = concept_row ? kConcepts[k] : composites[k - kConcepts.size()].name;
      const EnergyPtr<T> et =
          concept_row ? truth[k] : composites[k - kConcepts.size()].build(truth);
      const EnergyPtr<T> el =
          concept_row ? learned[k] : composites[k - kConcepts.size()].build(learned);
      if (!concept_row) {
        rows.push_back(name);
        p_true.push_back(density(*et, grid));
        p_learned.push_back(density(*el, grid));
      }
      const Array<T>& pt = p_true[k];
      const Array<T>& pl = p_learned[k];
      const Array<T> exact = sample_grid(pt, grid, f.box, f.grid, f.eval_samples, eval_rng);
      const Array<T> exact2 = sample_grid(pt, grid, f.box, f.grid, f.eval_samples, eval_rng);
      const double tv = total_variation(pt, pl);
      const double nll_t = nll(*et, grid, exact), nll_l = nll(*el, grid, exact);
      const double floor = mmd2_unbiased(exact, exact2, bandwidths);
      double acc_t = 0, acc_l = 0;
      const double lt = mmd2_unbiased(langevin_samples(et, f.seed + 4), exact, bandwidths),
                   ll = mmd2_unbiased(langevin_samples(el, f.seed + 4), exact, bandwidths),
                   mt = mmd2_unbiased(mala_samples(et, f.seed + 5, acc_t), exact, bandwidths),
                   ml = mmd2_unbiased(mala_samples(el, f.seed + 5, acc_l), exact, bandwidths);
      csv.row(name, {tv, nll_t, nll_l, floor, lt, mt, ll, ml});
      results.push_back({{"composite", name},
                         {"formula", concept_row ? "a trained concept"
                                                 : composites[k - kConcepts.size()].formula},
                         {"total_variation", tv},
                         {"nll_exact_samples_true", nll_t},
                         {"nll_exact_samples_learned", nll_l},
                         {"mmd2_exact_vs_exact", floor},
                         {"mmd2_langevin_true", lt},
                         {"mmd2_langevin_learned", ll},
                         {"mmd2_mala_true", mt},
                         {"mmd2_mala_learned", ml},
                         {"mala_acceptance_true", acc_t},
                         {"mala_acceptance_learned", acc_l}});
      md += fmt::format(
          "| {} | {:.3f} | {:.3f} / {:.3f} | {:.4f} | {:.4f} / {:.4f} | {:.4f} / "
          "{:.4f} |\n",
          name, tv, nll_t, nll_l, floor, lt, ll, mt, ml);
    }
    md += fmt::format(
        "\nMMD² with Gaussian kernels of bandwidths 0.1, 0.3, 1 ({} samples each, "
        "{} Langevin / MALA steps of {} from uniform noise; a wall keeps chains on "
        "the box).\n",
        f.eval_samples, f.sample_steps, f.step_size);

    // densities.csv: x, y, then true and learned density of every row
    std::vector<std::string> header = {"x", "y"};
    for (const auto& r : rows) {
      header.push_back(r + " true");
      header.push_back(r + " learned");
    }
    Csv dens(header);
    for (std::size_t i = 0; i < grid.size(); ++i) {
      std::vector<double> v = {double(grid.points(i, 0)), double(grid.points(i, 1))};
      for (std::size_t k = 0; k < rows.size(); ++k) {
        v.push_back(double(p_true[k](i)));
        v.push_back(double(p_learned[k](i)));
      }
      dens.row(v);
    }
    dens.save(dir / "densities.csv");
    csv.save(dir / "results.csv");
    write_json(dir / "results.json", results);
    write_file_atomic(dir / "results.md", md);
    plot(dir, "densities.gp", densities_script(rows, f.box), {"densities.png"});
    fmt::print("\n{}\noutputs in {} ({:.0f} s)\n", md, dir.string(), bar.seconds());
    return 0;
  } catch (const DivergenceError& e) {
    fmt::print(stderr, "\ncompose: {}\n", e.what());
    return 3;
  } catch (const FlagError& e) {
    fmt::print(stderr, "compose: {}\n", e.what());
    return 2;
  } catch (const IoError& e) {
    fmt::print(stderr, "compose: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "compose: {}\n", e.what());
    return 1;
  }
}
