// mixing: how well each sampler of the library mixes, on targets whose answers are known.
//
// Samplers: unadjusted Langevin (ULA), MALA and HMC with hand-set steps; adaptive MALA and NUTS,
// which tune their step and a diagonal metric in warm-up; parallel tempering (MALA moves on a
// geometric ladder of temperatures, with swaps). Targets: the eight Gaussians of toy2d and two
// separated modes of unequal weight (exact mode weights), the banana (exact Var x₂) and Neal's
// funnel (exact sd of v), and optionally a learned toy2d energy (--learned <checkpoint.bin>:
// mode weights by quadrature on the grid).
//
// Each sampler runs the same chains (started uniformly in the box, or N(0, 1) for the banana and
// funnel) for --warmup iterations (discarded) and --draws recorded ones. Reported per target and
// sampler: acceptance, gradient evaluations per chain (warm-up included: what the run cost),
// bulk-ESS (the smallest over x₁, x₂ and E; Vehtari et al. 2021, samplers/diagnostics.hpp), ESS
// per 1000 gradient evaluations and per second, tail-ESS (the smallest over the same scalars),
// split-R̂ (the largest; rank-normalised, bulk and folded), the error against the exact answer,
// and time.
//
// The discrete part: single-site Gibbs (random and systematic scan), checkerboard Gibbs,
// Swendsen–Wang and Gibbs-with-gradients on an L × L periodic Ising lattice at couplings K below,
// near (K_c = 0.4407) and above the critical one, where single-site moves slow down. Each runs
// --discrete-chains chains from random spins for --discrete-warmup sweeps and --discrete-draws
// recorded ones (a Gibbs-with-gradients "sweep" is L² proposed flips); per sampler and K: bulk-ESS
// (the smaller of the energy's and the magnetisation M's: in the ordered phase M changes sign only
// by crossing the barrier between the two ordered states), ESS per second and per 1000 site
// updates (Gibbs-type: local-field evaluations; GWG: energy-and-gradient evaluations), split-R̂,
// and the mean energy's error against the transfer matrix's exact value in standard errors (from
// the ESS).
//
// Output, in a new folder runs/mixing/seed<seed>: results.{csv,json,md}, samples_<sampler>.csv
// (draws on the eight Gaussians), samples.png, and discrete.{csv,json} (the discrete part, also
// in results.md).
#include <chrono>
#include <cmath>

#include "ebm/boltzmann.hpp"
#include "ebm/energy.hpp"
#include "ebm/ising_samplers.hpp"
#include "experiments/common/run.hpp"
#include "io/checkpoint.hpp"
#include "samplers/adaptive_mala.hpp"
#include "samplers/diagnostics.hpp"
#include "samplers/hmc.hpp"
#include "samplers/langevin.hpp"
#include "samplers/mala.hpp"
#include "samplers/nuts.hpp"
#include "samplers/targets.hpp"
#include "samplers/tempering.hpp"

using namespace ebl;
using namespace ebl::xp;
using T = double;

namespace {
struct Flags {
  std::string targets = "8gaussians,two-modes,banana,funnel";
  std::string samplers = "ula,mala,hmc,adaptive-mala,nuts,pt";
  std::string learned;
  std::size_t chains = 64;
  int warmup = 1000, draws = 4000;
  double step_size = 0.01, hmc_step_size = 0.05;
  int hmc_leapfrog = 10, max_depth = 10;
  std::size_t pt_levels = 8;
  double pt_max_temperature = 30;
  std::string discrete_samplers = "gibbs-random,gibbs-systematic,checkerboard,sw,gwg";
  std::string ising_couplings = "0.3,0.4407,0.6";
  std::size_t ising_side = 8, discrete_chains = 16;
  int discrete_warmup = 200, discrete_draws = 2000;
  std::uint64_t seed = 0;
  std::string out = "runs";
  bool smoke = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Flags, targets, samplers, learned, chains, warmup, draws,
                                   step_size, hmc_step_size, hmc_leapfrog, max_depth, pt_levels,
                                   pt_max_temperature, discrete_samplers, ising_couplings,
                                   ising_side, discrete_chains, discrete_warmup, discrete_draws,
                                   seed, out, smoke)

const std::vector<std::string> kDiscreteSamplers = {"gibbs-random", "gibbs-systematic",
                                                    "checkerboard", "sw", "gwg"};

// One discrete sampler at one coupling (see the top of this file).
struct DiscreteRow {
  double ess = 0, rhat = 0, seconds = 0, updates_per_chain = 0, mean_energy = 0, exact_energy = 0,
         error_se = 0, acceptance = 1;
};

DiscreteRow run_discrete(const Ising& m, const IsingExact& exact, const std::string& sampler,
                         const Flags& f, Rng& rng) {
  const std::size_t n = m.nodes(), C = f.discrete_chains;
  Array<double> s(Shape{C, n});
  for (auto& x : s) x = rng.uniform() < 0.5 ? -1.0 : 1.0;
  Ising& model = const_cast<Ising&>(m);  // (the tape's energy reads its parameters)
  EnergyFn<double> energy = [&model](Tape<double>& t, Var<double> x) { return model(t, x); };
  std::size_t proposed = 0, accepted = 0;
  auto sweep = [&](int k) {
    if (sampler == "gibbs-random") ising_gibbs(m, s, k, Scan::Random, rng);
    if (sampler == "gibbs-systematic") ising_gibbs(m, s, k, Scan::Systematic, rng);
    if (sampler == "checkerboard") ising_checkerboard(m, s, k, rng);
    if (sampler == "sw") swendsen_wang(m, s, k, rng);
    if (sampler == "gwg") {
      const GwgStats st = gibbs_with_gradients(energy, s, k * int(n), BinaryDomain::Spins, rng);
      proposed += st.proposed, accepted += st.accepted;
    }
  };
  Traces e(C), mag(C);
  const auto t0 = std::chrono::steady_clock::now();
  sweep(f.discrete_warmup);
  for (int d = 0; d < f.discrete_draws; ++d) {
    sweep(1);
    for (std::size_t c = 0; c < C; ++c) {
      const double* x = s.data() + c * n;
      double mm = 0;
      for (std::size_t i = 0; i < n; ++i) mm += x[i];
      e[c].push_back(m.energy(x) / double(n));
      mag[c].push_back(mm / double(n));
    }
  }
  DiscreteRow r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.updates_per_chain = double(n) * double(f.discrete_warmup + f.discrete_draws);
  r.ess = std::min(effective_sample_size(e), effective_sample_size(mag));
  r.rhat = std::max(split_rhat(e), split_rhat(mag));
  double sum = 0, sum2 = 0, count = 0;
  for (const auto& chain : e)
    for (double v : chain) sum += v, sum2 += v * v, ++count;
  r.mean_energy = sum / count;
  const double sd = std::sqrt(std::max(0.0, sum2 / count - r.mean_energy * r.mean_energy));
  r.exact_energy = 0;
  for (std::size_t k = 0; k < m.graph().edges.size(); ++k)
    r.exact_energy -= m.J.value(k) * exact.correlation[k] / double(n);
  r.error_se =
      std::abs(r.mean_energy - r.exact_energy) / (sd / std::sqrt(effective_sample_size(e)));
  if (proposed) r.acceptance = double(accepted) / double(proposed);
  return r;
}

// A target: its energy, where chains start, and the exact answer the draws are checked against.
struct Target {
  std::string name;
  EnergyFn<T> energy;
  double box = 4;  // chains start uniform in [-box, box]², or N(0, I) if gaussian_start
  bool gaussian_start = false;
  std::vector<double> mode_weights;  // exact, for mode targets (sectors or nearest mean)
  std::function<std::size_t(const T*)> mode_of;
  std::string error_kind;                                     // what "error" measures
  std::function<double(const Traces&, const Traces&)> error;  // of (x₁, x₂) traces
  std::shared_ptr<void> keep;  // owns what the energy refers to (the learned MLP)
};

// The mode of (x, y) among eight at angles kπ/4: the nearest sector.
std::size_t sector(const T* x) {
  const long k = std::lround(std::atan2(x[1], x[0]) / (std::numbers::pi / 4));
  return std::size_t((k % 8 + 8) % 8);
}

double mode_weight_error(const Traces& x1, const Traces& x2, const Target& t) {
  std::vector<double> w(t.mode_weights.size(), 0.0);
  double n = 0;
  for (std::size_t c = 0; c < x1.size(); ++c)
    for (std::size_t i = 0; i < x1[c].size(); ++i) {
      const T p[2] = {x1[c][i], x2[c][i]};
      w[t.mode_of(p)] += 1;
      n += 1;
    }
  double err = 0;
  for (std::size_t k = 0; k < w.size(); ++k)
    err = std::max(err, std::abs(w[k] / n - t.mode_weights[k]));
  return err;
}

double pooled_variance(const Traces& x) {
  double s = 0, s2 = 0, n = 0;
  for (const auto& c : x)
    for (double v : c) s += v, s2 += v * v, n += 1;
  const double m = s / n;
  return (s2 / n - m * m) * n / (n - 1);
}

std::vector<Target> make_targets(const Flags& f) {
  std::vector<Target> out;
  for (const std::string& name : parse_list("--targets", f.targets)) {
    Target t;
    t.name = name;
    if (name == "8gaussians") {
      std::vector<std::vector<double>> means;
      for (int k = 0; k < 8; ++k)
        means.push_back(
            {2 * std::cos(k * std::numbers::pi / 4), 2 * std::sin(k * std::numbers::pi / 4)});
      GaussianMixture mix(means, std::vector<double>(8, 0.25), std::vector<double>(8, 1.0));
      t.energy = mix.energy<T>();
      t.mode_weights.assign(8, 0.125);
      t.mode_of = sector;
    } else if (name == "two-modes") {
      auto mix = std::make_shared<GaussianMixture>(
          std::vector<std::vector<double>>{{-3.0, 0.0}, {3.0, 0.0}}, std::vector<double>{0.5, 0.5},
          std::vector<double>{0.3, 0.7});
      t.energy = mix->energy<T>();
      t.mode_weights = mix->weight;
      t.mode_of = [mix](const T* x) { return mix->nearest(x); };
    } else if (name == "banana") {
      t.energy = banana_energy<T>(1.0, 1.0);
      t.gaussian_start = true;
      t.error_kind = "|Var x2 - 3| / 3";
      t.error = [](const Traces&, const Traces& x2) {
        return std::abs(pooled_variance(x2) - 3) / 3;
      };
    } else if (name == "funnel") {
      t.energy = funnel_energy<T>(2);
      t.gaussian_start = true;
      t.error_kind = "|sd v - 3| / 3";
      t.error = [](const Traces& v, const Traces&) {
        return std::abs(std::sqrt(pooled_variance(v)) - 3) / 3;
      };
    } else {
      throw FlagError(
          fmt::format("--targets: unknown target '{}' (expected 8gaussians, two-modes, "
                      "banana, funnel)",
                      name));
    }
    if (!t.mode_weights.empty()) {
      t.error_kind = "max |mode weight - exact|";
      t.error = [tt = t](const Traces& a, const Traces& b) { return mode_weight_error(a, b, tt); };
    }
    out.push_back(std::move(t));
  }
  if (!f.learned.empty()) {
    // A toy2d energy from its checkpoint: the network its config describes, its parameters, and
    // the exact mode weights (eight sectors) by quadrature over its box.
    const Checkpoint c = Checkpoint::load(f.learned);
    const auto cfg = c.text("config");
    if (!cfg) throw FlagError(fmt::format("--learned {}: no config in the checkpoint", f.learned));
    std::size_t layers = 0, hidden = 0;
    std::string activation, dataset;
    double box = 0;
    try {
      const auto j = nlohmann::json::parse(*cfg);
      layers = j.at("layers").get<std::size_t>();
      hidden = j.at("hidden").get<std::size_t>();
      activation = j.at("activation").get<std::string>();
      dataset = j.at("dataset").get<std::string>();
      box = j.at("box").get<double>();
    } catch (const nlohmann::json::exception& e) {
      throw FlagError(
          fmt::format("--learned {}: not a toy2d checkpoint ({})", f.learned, e.what()));
    }
    // the ranges of toy2d's own flags: anything else was not written by toy2d
    if (layers < 1 || layers > 16 || hidden < 1 || hidden > 65536 || !(box >= 1e-3 && box <= 1e3))
      throw FlagError(
          fmt::format("--learned {}: not a toy2d checkpoint (layers {}, hidden {}, box {})",
                      f.learned, layers, hidden, box));
    Rng rng(0);
    auto mlp = std::make_shared<MlpEnergy<T>>(2, std::vector<std::size_t>(layers, hidden),
                                              parse_activation(activation), rng);
    for (auto* p : mlp->parameters()) c.get("param/" + p->name, p->value);
    Target t;
    t.name = "learned-" + dataset;
    t.energy = [mlp](Tape<T>& tp, Var<T> x) { return (*mlp)(tp, x); };
    t.keep = mlp;
    t.box = box;
    const Domain<T> grid = grid_2d<T>(-t.box, t.box, 200, -t.box, t.box, 200);
    const Array<T> p = density(*mlp, grid);
    t.mode_weights.assign(8, 0.0);
    for (std::size_t i = 0; i < grid.size(); ++i)
      t.mode_weights[sector(&grid.points(i, 0))] += p(i) * std::exp(grid.log_cell);
    t.mode_of = sector;
    t.error_kind = "max |mode weight - quadrature|";
    t.error = [tt = t](const Traces& a, const Traces& b) { return mode_weight_error(a, b, tt); };
    out.push_back(std::move(t));
  }
  return out;
}

struct Row {
  std::string target, sampler;
  double acceptance = 0, evals_per_chain = 0, ess = 0, tail_ess = 0, rhat = 0, error = 0,
         seconds = 0;
  bool diverged = false;  ///< some draw is not finite: ESS, R-hat and error are undefined
};

// Records x₁, x₂ and E of every chain at every draw.
struct Recorder {
  Traces x1, x2, e;
  Observer<T> observer() {
    return [this](const Array<T>& x, const Array<T>& en) {
      const std::size_t n = x.shape()[0], d = x.shape()[1];
      if (x1.size() != n) x1.assign(n, {}), x2.assign(n, {}), e.assign(n, {});
      for (std::size_t i = 0; i < n; ++i) {
        x1[i].push_back(x.data()[i * d]);
        x2[i].push_back(x.data()[i * d + 1]);
        e[i].push_back(en(i));
      }
    };
  }
};

const std::vector<std::string> kSamplers = {"ula", "mala", "hmc", "adaptive-mala", "nuts", "pt"};

Row run_one(const Target& t, const std::string& sampler, const Flags& f, Recorder& rec) {
  Rng rng(f.seed + 1);
  Array<T> x = t.gaussian_start ? rng.normal_array<T>({f.chains, 2})
                                : rng.uniform_array<T>({f.chains, 2}, -t.box, t.box);
  const auto t0 = std::chrono::steady_clock::now();
  ChainStats st;
  std::size_t evals = 0;
  if (sampler == "ula") {
    Langevin<T> s(t.energy, {.steps = f.warmup, .step_size = f.step_size});
    evals += s.run(x, rng).gradient_evals;
    s.options().steps = f.draws;
    st = s.run(x, rng, rec.observer());
    st.acceptance = 1;
  } else if (sampler == "mala") {
    evals +=
        Mala<T>(t.energy, {.steps = f.warmup, .step_size = f.step_size}).run(x, rng).gradient_evals;
    st =
        Mala<T>(t.energy, {.steps = f.draws, .step_size = f.step_size}).run(x, rng, rec.observer());
  } else if (sampler == "hmc") {
    const HmcOptions o{
        .steps = f.warmup, .leapfrog_steps = f.hmc_leapfrog, .step_size = f.hmc_step_size};
    evals += Hmc<T>(t.energy, o).run(x, rng).gradient_evals;
    HmcOptions od = o;
    od.steps = f.draws;
    st = Hmc<T>(t.energy, od).run(x, rng, rec.observer());
  } else if (sampler == "adaptive-mala") {
    st = AdaptiveMala<T>(
             t.energy, {.steps = f.draws, .step_size = f.step_size, .adapt = {.warmup = f.warmup}})
             .run(x, rng, rec.observer());
  } else if (sampler == "nuts") {
    st = Nuts<T>(t.energy, {.steps = f.draws,
                            .step_size = f.step_size,
                            .max_depth = f.max_depth,
                            .adapt = {.warmup = f.warmup, .target_accept = 0.8}})
             .run(x, rng, rec.observer());
  } else if (sampler == "pt") {
    ParallelTempering<T> s(t.energy,
                           {.steps = f.warmup,
                            .temperatures = geometric_ladder(f.pt_levels, f.pt_max_temperature),
                            .step_size = f.step_size});
    evals += s.run(x, rng).gradient_evals;
    // the draws continue from the warm-up's hot levels
    ParallelTempering<T> draws(
        t.energy, {.steps = f.draws, .temperatures = s.temperatures(), .step_size = f.step_size});
    draws.set_state(s.state());
    st = draws.run(x, rng, rec.observer());
  } else {
    throw FlagError(
        fmt::format("--samplers: unknown sampler '{}' (expected ula, mala, hmc, "
                    "adaptive-mala, nuts, pt)",
                    sampler));
  }
  evals += st.gradient_evals;
  Row r;
  r.target = t.name;
  r.sampler = sampler;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.acceptance = st.acceptance;
  r.evals_per_chain = double(evals);
  for (const Traces* tr : {&rec.x1, &rec.x2, &rec.e})
    for (const auto& chain : *tr)
      for (double v : chain) r.diverged = r.diverged || !std::isfinite(v);
  if (r.diverged) {
    r.ess = r.tail_ess = r.rhat = r.error = std::numeric_limits<double>::quiet_NaN();
    return r;
  }
  r.ess = std::min(
      {effective_sample_size(rec.x1), effective_sample_size(rec.x2), effective_sample_size(rec.e)});
  r.tail_ess = std::min({tail_ess(rec.x1), tail_ess(rec.x2), tail_ess(rec.e)});
  r.rhat = std::max({split_rhat(rec.x1), split_rhat(rec.x2), split_rhat(rec.e)});
  r.error = t.error(rec.x1, rec.x2);
  return r;
}

std::string samples_script(const std::vector<std::string>& samplers) {
  std::string s = fmt::format(R"(set terminal pngcairo size {},330 font ",10"
set output 'samples.png.tmp'
set datafile separator ','
set size ratio -1
set xrange [-3.2:3.2]
set yrange [-3.2:3.2]
set multiplot layout 1,{}
)",
                              300 * samplers.size(), samplers.size());
  for (const auto& name : samplers)
    s += fmt::format(
        "set title '{}'\nplot 'samples_{}.csv' using 1:2 with dots lc rgb '#1f77b4' "
        "notitle\n",
        name, name);
  return s + "unset multiplot\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "mixing: effective sample size, R-hat and mode weights of every sampler on targets "
      "with known answers",
      "mixing"};
  Flags f;
  app.add_option("--targets", f.targets, "comma-separated: 8gaussians, two-modes, banana, funnel")
      ->capture_default_str();
  app.add_option("--samplers", f.samplers,
                 "comma-separated: ula, mala, hmc, adaptive-mala, nuts, pt")
      ->capture_default_str();
  app.add_option("--learned", f.learned,
                 "also a learned energy: a toy2d checkpoint.bin (mode weights by quadrature)")
      ->check(CLI::ExistingFile);
  app.add_option("--chains", f.chains, "independent chains per sampler")
      ->check(CLI::Range(2, 100000))
      ->capture_default_str();
  app.add_option("--warmup", f.warmup, "iterations before the draws (adaptation, burn-in)")
      ->check(CLI::Range(0, 10000000))
      ->capture_default_str();
  app.add_option("--draws", f.draws, "recorded iterations per chain")
      ->check(CLI::Range(8, 10000000))
      ->capture_default_str();
  app.add_option("--step-size", f.step_size,
                 "step of ULA, MALA and tempering; the first step of the adaptive samplers")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--hmc-step-size", f.hmc_step_size, "HMC's leapfrog step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--hmc-leapfrog", f.hmc_leapfrog, "HMC's leapfrog steps per iteration")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--max-depth", f.max_depth, "NUTS's maximum tree depth")
      ->check(CLI::Range(1, 20))
      ->capture_default_str();
  app.add_option("--pt-levels", f.pt_levels, "temperatures in tempering's ladder")
      ->check(CLI::Range(2, 64))
      ->capture_default_str();
  app.add_option("--pt-max-temperature", f.pt_max_temperature,
                 "the hottest temperature (geometric ladder from 1)")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  app.add_option("--discrete-samplers", f.discrete_samplers,
                 "comma-separated: gibbs-random, gibbs-systematic, checkerboard, sw, gwg")
      ->capture_default_str();
  app.add_option("--ising-couplings", f.ising_couplings,
                 "comma-separated couplings K of the discrete part's Ising lattice")
      ->capture_default_str();
  app.add_option("--ising-side", f.ising_side, "the periodic Ising lattice's side L (even, <= 8)")
      ->check(CLI::Range(4, 8))
      ->capture_default_str();
  app.add_option("--discrete-chains", f.discrete_chains, "chains per discrete sampler")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--discrete-warmup", f.discrete_warmup, "sweeps before the discrete draws")
      ->check(CLI::Range(0, 10000000))
      ->capture_default_str();
  app.add_option("--discrete-draws", f.discrete_draws, "recorded sweeps per discrete chain")
      ->check(CLI::Range(8, 10000000))
      ->capture_default_str();
  app.add_option("--seed", f.seed, "seed of the chains")->capture_default_str();
  app.add_option("--out", f.out, "base folder of runs")->capture_default_str();
  app.add_flag("--smoke", f.smoke, "a few iterations of everything, for CI");
  if (auto code = parse_flags(app, argc, argv)) return *code;
  if (f.smoke)
    SmokeSizes{app}("--chains", f.chains, 4)("--warmup", f.warmup, 40)("--draws", f.draws, 40)(
        "--max-depth", f.max_depth, 6)("--ising-side", f.ising_side, 4)(
        "--discrete-chains", f.discrete_chains, 4)("--discrete-warmup", f.discrete_warmup, 10)(
        "--discrete-draws", f.discrete_draws, 40);
  try {
    // every input is accepted before the run folder is made
    const std::vector<std::string> samplers = parse_list("--samplers", f.samplers);
    for (const auto& s : samplers)
      if (std::find(kSamplers.begin(), kSamplers.end(), s) == kSamplers.end())
        throw FlagError(fmt::format(
            "--samplers: unknown sampler '{}' (expected ula, mala, hmc, adaptive-mala, nuts, pt)",
            s));
    const std::vector<std::string> discrete =
        parse_list("--discrete-samplers", f.discrete_samplers);
    for (const auto& s : discrete)
      if (std::find(kDiscreteSamplers.begin(), kDiscreteSamplers.end(), s) ==
          kDiscreteSamplers.end())
        throw FlagError(fmt::format(
            "--discrete-samplers: unknown sampler '{}' (expected gibbs-random, gibbs-systematic, "
            "checkerboard, sw, gwg)",
            s));
    std::vector<double> couplings;
    for (const auto& k : parse_list("--ising-couplings", f.ising_couplings)) {
      std::size_t used = 0;
      double v = NAN;
      try {
        v = std::stod(k, &used);
      } catch (const std::exception&) {
      }
      if (used != k.size() || !(v >= 0 && v <= 5))
        throw FlagError(fmt::format(
            "--ising-couplings: '{}' is not a coupling in [0, 5] (Swendsen-Wang needs K >= 0)", k));
      couplings.push_back(v);
    }
    if (f.ising_side % 2)
      throw FlagError(fmt::format("--ising-side {} must be even (checkerboard)", f.ising_side));
    // the recorded traces (x1, x2, E of every chain at every draw), twice over while they grow
    require_fits_memory(2.0 * 3 * 8 * double(f.chains) * double(f.draws), "--chains and --draws");
    const std::vector<Target> targets = make_targets(f);
    const nlohmann::json config = f;
    fs::path dir = make_run_dir(f.out, "mixing", fmt::format("seed{}", f.seed));
    write_json(dir / "config.json", config);
    fmt::print("mixing -> {}\n{}\n", dir.string(), config.dump());

    Csv csv({"target", "sampler", "acceptance", "grad_evals_per_chain", "ess", "ess_per_1k_evals",
             "ess_per_second", "tail_ess", "rhat", "error", "seconds"});
    json results = json::array();
    std::string md =
        "| target | sampler | acceptance | ∇E evals / chain | bulk-ESS | ESS / 1000 evals | ESS / "
        "s "
        "| tail-ESS | R̂ | error¹ | time "
        "|\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    std::string legend = "\n¹ error:";
    Progress bar("mixing", long(targets.size() * samplers.size()));
    int status = 0;
    long done = 0;
    for (const Target& t : targets) {
      for (const std::string& s : samplers) {
        Recorder rec;
        const Row r = run_one(t, s, f, rec);
        const double per_k = 1000 * r.ess / (r.evals_per_chain * double(f.chains)),
                     per_s = r.ess / std::max(r.seconds, 1e-9);
        csv.row(std::vector<std::string>{r.target, r.sampler},
                {r.acceptance, r.evals_per_chain, r.ess, per_k, per_s, r.tail_ess, r.rhat, r.error,
                 r.seconds});
        results.push_back({{"target", r.target},
                           {"sampler", r.sampler},
                           {"acceptance", r.acceptance},
                           {"grad_evals_per_chain", r.evals_per_chain},
                           {"ess", r.ess},
                           {"ess_per_1k_evals", per_k},
                           {"ess_per_second", per_s},
                           {"tail_ess", r.tail_ess},
                           {"rhat", r.rhat},
                           {"error", r.error},
                           {"error_kind", t.error_kind},
                           {"seconds", r.seconds}});
        if (r.diverged) {
          results.back()["status"] = "diverged";
          status = 3;
          fmt::print(stderr,
                     "\nmixing: {} on {} diverged (non-finite draws): its ESS, R-hat and error "
                     "are undefined; try a smaller --step-size\n",
                     s, t.name);
        }
        md += fmt::format(
            "| {} | {} | {:.2f} | {:.0f} | {:.0f} | {:.2f} | {:.0f} | {:.0f} | {:.2f} | {:.3f} | "
            "{:.2f} s |\n",
            r.target, r.sampler, r.acceptance, r.evals_per_chain, r.ess, per_k, per_s, r.tail_ess,
            r.rhat, r.error, r.seconds);
        if (t.name == "8gaussians") {  // the draws, for the picture (every 5th per chain)
          Csv smp({"x", "y"});
          for (std::size_t c = 0; c < rec.x1.size(); ++c)
            for (std::size_t i = 0; i < rec.x1[c].size(); i += 5)
              smp.row({rec.x1[c][i], rec.x2[c][i]});
          smp.save(dir / fmt::format("samples_{}.csv", s));
        }
        bar.update(++done,
                   fmt::format("{} {}: ESS {:.0f}, R-hat {:.2f}", t.name, s, r.ess, r.rhat));
      }
      legend += fmt::format(" {}: {};", t.name, t.error_kind);
    }
    legend.back() = '.';
    md += legend + "\n";
    // the discrete part
    Csv dcsv({"sampler", "coupling", "ess", "ess_per_1k_updates", "ess_per_second", "rhat",
              "mean_energy", "exact_energy", "error_se", "acceptance", "seconds"});
    json dres = json::array();
    md += fmt::format(
        "\n## Discrete samplers on a {0} × {0} periodic Ising lattice\n\n"
        "{1} chains from random spins, {2} sweeps of warm-up, {3} recorded (a Gibbs-with-gradients "
        "sweep: {4} proposed flips). ESS: the smaller bulk-ESS of the energy and of M (signed: the "
        "ordered phase flips it only across its barrier); updates: "
        "site updates (Gibbs-type) or energy-and-gradient evaluations (GWG); error: the mean "
        "energy's distance to the transfer matrix's exact value in standard errors.\n\n"
        "| K | sampler | bulk-ESS | ESS / 1000 updates | ESS / s | R̂ | mean energy / site "
        "(exact) | error (SE) | acceptance | time |\n"
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        f.ising_side, f.discrete_chains, f.discrete_warmup, f.discrete_draws,
        f.ising_side * f.ising_side);
    for (double K : couplings) {
      const Ising m(ising_lattice(f.ising_side, f.ising_side, true), K);
      const IsingExact exact = ising_transfer_matrix(m);
      for (std::size_t k = 0; k < discrete.size(); ++k) {
        Rng rng(f.seed + 1000 + k);
        const DiscreteRow r = run_discrete(m, exact, discrete[k], f, rng);
        const double per_k = 1000 * r.ess / (r.updates_per_chain * double(f.discrete_chains)),
                     per_s = r.ess / std::max(r.seconds, 1e-9);
        dcsv.row(std::vector<std::string>{discrete[k]},
                 {K, r.ess, per_k, per_s, r.rhat, r.mean_energy, r.exact_energy, r.error_se,
                  r.acceptance, r.seconds});
        dres.push_back({{"sampler", discrete[k]},
                        {"coupling", K},
                        {"ess", r.ess},
                        {"ess_per_1k_updates", per_k},
                        {"ess_per_second", per_s},
                        {"rhat", r.rhat},
                        {"mean_energy", r.mean_energy},
                        {"exact_energy", r.exact_energy},
                        {"error_se", r.error_se},
                        {"acceptance", r.acceptance},
                        {"seconds", r.seconds}});
        md += fmt::format(
            "| {} | {} | {:.0f} | {:.3f} | {:.0f} | {:.3f} | {:.4f} ({:.4f}) | {:.1f} | {:.2f} | "
            "{:.2f} s |\n",
            K, discrete[k], r.ess, per_k, per_s, r.rhat, r.mean_energy, r.exact_energy, r.error_se,
            r.acceptance, r.seconds);
        bar.update(done, fmt::format("Ising K {}: {} ESS {:.0f}", K, discrete[k], r.ess));
      }
    }
    dcsv.save(dir / "discrete.csv");
    if (status == 0) status = check_finite("mixing", dres);
    write_json(dir / "discrete.json", dres);
    csv.save(dir / "results.csv");
    if (status == 0) status = check_finite("mixing", results);
    write_json(dir / "results.json", results);
    write_file_atomic(dir / "results.md", md);
    if (std::find_if(targets.begin(), targets.end(),
                     [](const Target& t) { return t.name == "8gaussians"; }) != targets.end())
      plot(dir, "samples.gp", samples_script(samplers), {"samples.png"});
    fmt::print("\n{}\noutputs in {}\n", md, dir.string());
    return status;
  } catch (const FlagError& e) {
    fmt::print(stderr, "mixing: {}\n", e.what());
    return 2;
  } catch (const IoError& e) {
    fmt::print(stderr, "mixing: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "mixing: {}\n", error_line(e));
    return 1;
  }
}
