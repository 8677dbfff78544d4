// ising: recovering the couplings of an Ising model from its samples, with every learning method
// of ebm/discrete_training.hpp and every discrete sampler, judged exactly.
//
// Two true models: a ferromagnetic R × C periodic lattice (couplings uniform in [lo, hi], around
// the critical 0.44, where single-site Gibbs slows down; its data drawn by long Swendsen–Wang
// chains and checked against the transfer matrix's exact correlations) and a random sparse graph
// G(n, p) with couplings of both signs (exact samples by enumeration). Each method starts from
// zero couplings and learns from the same samples; every --eval-every steps the run records the
// couplings' RMSE against the truth and the exact held-out NLL (log Z by the transfer matrix or
// by enumeration) minus the true model's, against steps and against training seconds. In the
// spirit of Grathwohl et al.'s (2021) lattice-Ising recovery, where Gibbs-with-gradients is
// compared with Gibbs inside persistent CD.
//
// Output in runs/ising/seed<seed>: config.json, metrics.json (every unit), curves.csv,
// results.md, curves.png, checkpoint.bin (after every unit; --resume skips the finished units).
#include <chrono>
#include <cmath>

#include "autodiff/parallel.hpp"
#include "ebm/discrete_training.hpp"
#include "ebm/ising_samplers.hpp"
#include "experiments/common/mpi.hpp"
#include "experiments/common/run.hpp"
#include "experiments/common/units.hpp"

using namespace ebl;
using namespace ebl::xp;

namespace {

struct Flags {
  std::string graphs = "lattice,random";
  std::string methods = "mle,pl,rm,nce,pcd-gibbs,pcd-gwg,pcd-checkerboard,pcd-sw";
  std::size_t rows = 4, cols = 16, nodes = 16;
  double edge_prob = 0.2, coupling_lo = 0.2, coupling_hi = 0.5, coupling_sd = 0.5;
  std::size_t samples = 2000, test_samples = 2000, steps = 2000, batch = 100, eval_every = 100,
              seeds = 3, chains = 100, gwg_steps = 0;
  int burn_in = 200, thin = 10;
  double lr = 0.05, noise_ratio = 4;
  std::uint64_t seed = 0;
  bool smoke = false;
  std::string out = "runs", resume;
  std::size_t stop_after_units = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Flags, graphs, methods, rows, cols, nodes, edge_prob,
                                   coupling_lo, coupling_hi, coupling_sd, samples, test_samples,
                                   steps, batch, eval_every, seeds, chains, gwg_steps, burn_in,
                                   thin, lr, noise_ratio, seed, smoke, out, resume,
                                   stop_after_units)

const std::set<std::string> kMayDifferOnResume = {"out", "resume", "stop_after_units"};

struct Method {
  std::string name;
  DiscreteMethod method;
  DiscreteSampler sampler;
};

Method parse_method(const std::string& s) {
  if (s == "mle") return {s, DiscreteMethod::ExactMle, DiscreteSampler::Gibbs};
  if (s == "pl") return {s, DiscreteMethod::PseudoLikelihood, DiscreteSampler::Gibbs};
  if (s == "rm") return {s, DiscreteMethod::RatioMatching, DiscreteSampler::Gibbs};
  if (s == "nce") return {s, DiscreteMethod::Nce, DiscreteSampler::Gibbs};
  if (s == "pcd-gibbs") return {s, DiscreteMethod::Pcd, DiscreteSampler::Gibbs};
  if (s == "pcd-gwg") return {s, DiscreteMethod::Pcd, DiscreteSampler::Gwg};
  if (s == "pcd-checkerboard") return {s, DiscreteMethod::Pcd, DiscreteSampler::Checkerboard};
  if (s == "pcd-sw") return {s, DiscreteMethod::Pcd, DiscreteSampler::SwendsenWang};
  throw FlagError(
      fmt::format("--methods: unknown method '{}' (expected mle, pl, rm, nce, pcd-gibbs, pcd-gwg, "
                  "pcd-checkerboard or pcd-sw)",
                  s));
}

const char* method_label(const std::string& s) {
  if (s == "mle") return "exact maximum likelihood";
  if (s == "pl") return "pseudo-likelihood";
  if (s == "rm") return "ratio matching";
  if (s == "nce") return "noise-contrastive estimation";
  if (s == "pcd-gibbs") return "persistent CD, single-site Gibbs";
  if (s == "pcd-gwg") return "persistent CD, Gibbs-with-gradients";
  if (s == "pcd-checkerboard") return "persistent CD, checkerboard Gibbs";
  return "persistent CD, Swendsen–Wang";
}

double rmse(const Array<double>& a, const Array<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (a(i) - b(i)) * (a(i) - b(i));
  return std::sqrt(s / double(a.size()));
}

// Draws n samples of a ferromagnetic model by Swendsen–Wang: `chains` chains from random spins,
// `burn_in` sweeps, then one sample every `thin` sweeps from each chain in turn.
Array<double> swendsen_wang_samples(const Ising& m, std::size_t n, std::size_t chains, int burn_in,
                                    int thin, Rng& rng) {
  const std::size_t d = m.nodes();
  Array<double> s(Shape{chains, d});
  for (auto& x : s) x = rng.uniform() < 0.5 ? -1.0 : 1.0;
  swendsen_wang(m, s, burn_in, rng);
  Array<double> out(Shape{n, d});
  for (std::size_t r = 0; r < n;) {
    swendsen_wang(m, s, thin, rng);
    for (std::size_t c = 0; c < chains && r < n; ++c, ++r)
      std::copy_n(s.data() + c * d, d, out.data() + r * d);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<Comm> comm = start_comm("ising", argc, argv);
  if (!comm) return 1;
  CLI::App app{"ising: recovering an Ising model's couplings with every method and sampler",
               "ising"};
  Flags f;
  app.add_option("--graphs", f.graphs, "comma-separated: lattice, random")->capture_default_str();
  app.add_option("--methods", f.methods,
                 "comma-separated: mle, pl, rm, nce, pcd-gibbs, pcd-gwg, pcd-checkerboard, pcd-sw")
      ->capture_default_str();
  app.add_option("--rows", f.rows, "the lattice's rows (periodic; even, <= 8)")
      ->check(CLI::Range(4, 8))
      ->capture_default_str();
  app.add_option("--cols", f.cols, "the lattice's columns (periodic; even)")
      ->check(CLI::Range(4, 4096))
      ->capture_default_str();
  app.add_option("--nodes", f.nodes, "nodes of the random graph (<= 20: enumerated)")
      ->check(CLI::Range(2, 20))
      ->capture_default_str();
  app.add_option("--edge-prob", f.edge_prob, "edge probability of the random graph")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--coupling-lo", f.coupling_lo, "the lattice's couplings: lowest")
      ->check(CLI::Range(0.0, 5.0))
      ->capture_default_str();
  app.add_option("--coupling-hi", f.coupling_hi, "the lattice's couplings: highest")
      ->check(CLI::Range(0.0, 5.0))
      ->capture_default_str();
  app.add_option("--coupling-sd", f.coupling_sd, "the random graph's couplings: N(0, sd^2)")
      ->check(CLI::Range(0.0, 5.0))
      ->capture_default_str();
  app.add_option("--samples", f.samples, "training samples")
      ->check(CLI::Range(2, 1 << 24))
      ->capture_default_str();
  app.add_option("--test-samples", f.test_samples, "held-out samples (the NLL's)")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  app.add_option("--steps", f.steps, "training steps per run")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  app.add_option("--batch", f.batch, "mini-batch")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--eval-every", f.eval_every, "steps between evaluations")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  app.add_option("--seeds", f.seeds, "runs of each method (batches and samplers differ)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--chains", f.chains, "persistent chains (and Swendsen-Wang data chains)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--gwg-steps", f.gwg_steps,
                 "Gibbs-with-gradients steps per training step (0: as many as nodes, one "
                 "flip proposed per node like a Gibbs sweep)")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app.add_option("--burn-in", f.burn_in, "Swendsen-Wang sweeps before the lattice's data")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  app.add_option("--thin", f.thin, "Swendsen-Wang sweeps between data samples of a chain")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  app.add_option("--lr", f.lr, "Adam learning rate (decays linearly to 0)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--noise-ratio", f.noise_ratio, "NCE: noise samples per data sample")
      ->check(CLI::Range(0.01, 1000.0))
      ->capture_default_str();
  app.add_option("--seed", f.seed, "seed (the true models and their data)")->capture_default_str();
  app.add_option("--out", f.out, "base folder of runs")->capture_default_str();
  app.add_option("--resume", f.resume,
                 "continue the run whose checkpoint.bin this is, skipping its finished units")
      ->check(CLI::ExistingFile);
  app.add_option("--stop-after-units", f.stop_after_units,
                 "stop after this many units in this invocation, leaving a checkpoint to --resume "
                 "from (0: run to the end)")
      ->capture_default_str();
  app.add_flag("--smoke", f.smoke, "a few steps of everything, for CI");
  if (auto code = parse_flags(app, argc, argv)) return *code;
  if (f.smoke)
    SmokeSizes{app}("--cols", f.cols, 4)("--nodes", f.nodes, 8)("--samples", f.samples, 200)(
        "--test-samples", f.test_samples, 200)("--steps", f.steps, 20)(
        "--eval-every", f.eval_every, 10)("--seeds", f.seeds, 2)("--chains", f.chains, 20)(
        "--burn-in", f.burn_in, 10)("--batch", f.batch, 20);
  try {
    if (comm->size() > 1) throw FlagError("ising runs on one process");
    // the products here are small ([100, 64] by [64, 128]): OpenBLAS's threads would cost more in
    // waking up than they save (measured: 4.9 s of system time in 6.3 s of a GWG run)
    BlasSingleThreaded one_blas_thread;
    const std::vector<std::string> graphs = parse_list("--graphs", f.graphs);
    for (const auto& g : graphs)
      if (g != "lattice" && g != "random")
        throw FlagError(
            fmt::format("--graphs: unknown graph '{}' (expected lattice or random)", g));
    std::vector<Method> methods;
    for (const auto& m : parse_list("--methods", f.methods)) methods.push_back(parse_method(m));
    if (f.rows % 2 || f.cols % 2)
      throw FlagError(fmt::format(
          "--rows {} and --cols {} must be even (a periodic lattice with an odd side is not "
          "bipartite: no checkerboard)",
          f.rows, f.cols));
    if (f.coupling_lo > f.coupling_hi)
      throw FlagError(
          fmt::format("--coupling-lo {} is above --coupling-hi {}", f.coupling_lo, f.coupling_hi));
    const nlohmann::json config = f;
    Units units(config, f.stop_after_units);
    if (!f.resume.empty()) units.resume(f.resume, kMayDifferOnResume);
    const fs::path dir = make_run_dir(f.out, "ising", fmt::format("seed{}", f.seed));
    write_json(dir / "config.json", config);
    units.set_dir(dir);
    fmt::print("ising -> {}\n{}\n", dir.string(), config.dump());

    std::string md;
    Csv curves({"run", "seed", "step", "train_seconds", "coupling_rmse", "test_nll_gap"});
    for (const std::string& graph : graphs) {
      // the true model and its data (a function of --seed alone)
      Rng truth_rng(f.seed + (graph == "lattice" ? 1 : 2));
      const bool lattice = graph == "lattice";
      Ising truth(lattice ? ising_lattice(f.rows, f.cols, true)
                          : ising_random_graph(f.nodes, f.edge_prob, truth_rng));
      for (auto& j : truth.J.value)
        j = lattice ? f.coupling_lo + (f.coupling_hi - f.coupling_lo) * truth_rng.uniform()
                    : truth_rng.normal(0, f.coupling_sd);
      if (truth.graph().edges.empty())
        throw FlagError("--edge-prob: the random graph came out without edges");
      const IsingExact exact = ising_exact_any(truth);
      Array<double> train, test;
      if (lattice) {
        train = swendsen_wang_samples(truth, f.samples, f.chains, f.burn_in, f.thin, truth_rng);
        test = swendsen_wang_samples(truth, f.test_samples, f.chains, f.burn_in, f.thin, truth_rng);
      } else {
        train = ising_exact_samples(truth, f.samples, truth_rng);
        test = ising_exact_samples(truth, f.test_samples, truth_rng);
      }
      const std::size_t d = truth.nodes(), ne = truth.graph().edges.size();
      const double truth_nll = ising_average_nll(truth, test, exact.log_z);
      // the data against the exact correlations: each edge's mean s_i s_j in standard errors
      const json& data = units.run(fmt::format("{}/data", graph), [&] {
        double worst = 0, mean_abs = 0;
        for (std::size_t e = 0; e < ne; ++e) {
          const auto [i, j] = truth.graph().edges[e];
          double m = 0;
          for (std::size_t r = 0; r < train.shape()[0]; ++r) m += train(r, i) * train(r, j);
          m /= double(train.shape()[0]);
          const double c = exact.correlation[e];
          const double se = std::sqrt(std::max(1e-12, (1 - c * c) / double(train.shape()[0])));
          worst = std::max(worst, std::abs(m - c) / se);
          mean_abs += std::abs(m - c) / double(ne);
        }
        return json{{"nodes", d},
                    {"edges", ne},
                    {"log_z", exact.log_z},
                    {"truth_test_nll", truth_nll},
                    {"data_correlation_worst_z", worst},
                    {"data_correlation_mean_abs_error", mean_abs}};
      });
      md += fmt::format(
          "## {}\n\n{} nodes, {} edges; {}. {} training and {} held-out samples ({}); the true "
          "model's held-out NLL {:.4f} nats (log Z {:.4f}, {}). The data's edge correlations "
          "against the exact ones: worst {:.2f} standard errors, mean absolute error {:.4f}.\n\n",
          lattice ? fmt::format("A {} × {} periodic lattice", f.rows, f.cols)
                  : fmt::format("A random graph G({}, {})", f.nodes, f.edge_prob),
          d, ne,
          lattice
              ? fmt::format("couplings uniform in [{}, {}], no field", f.coupling_lo, f.coupling_hi)
              : fmt::format("couplings N(0, {}²), no field", f.coupling_sd),
          f.samples, f.test_samples,
          lattice ? fmt::format("Swendsen–Wang, {} chains, {} sweeps of burn-in, thinned by {}",
                                f.chains, f.burn_in, f.thin)
                  : std::string("exact, by enumeration"),
          truth_nll, exact.log_z, lattice ? "transfer matrix" : "enumeration",
          data["data_correlation_worst_z"].get<double>(),
          data["data_correlation_mean_abs_error"].get<double>());
      md += fmt::format(
          "| method | coupling RMSE | held-out NLL − truth's | training s | sampler "
          "evaluations per row |\n|---|---:|---:|---:|---:|\n");
      for (const Method& meth : methods) {
        const bool ising_only = meth.sampler == DiscreteSampler::Checkerboard ||
                                meth.sampler == DiscreteSampler::SwendsenWang;
        if (ising_only && !lattice) {
          md += fmt::format("| {} | n/a (needs {}) | | | |\n", method_label(meth.name),
                            meth.sampler == DiscreteSampler::Checkerboard
                                ? "a bipartite graph"
                                : "ferromagnetic couplings");
          continue;
        }
        std::vector<double> rm, gap, secs, evals;
        for (std::size_t s = 0; s < f.seeds; ++s) {
          const json& r = units.run(fmt::format("{}/{}/seed{}", graph, meth.name, s), [&] {
            Ising m(truth.graph());  // zero couplings and fields
            DiscreteTrainOptions o{.method = meth.method,
                                   .sampler = meth.sampler,
                                   .domain = BinaryDomain::Spins,
                                   .lr = f.lr,
                                   .chains = f.chains};
            o.sampler_steps =
                meth.sampler == DiscreteSampler::Gwg ? int(f.gwg_steps ? f.gwg_steps : d) : 1;
            o.noise_ratio = f.noise_ratio;
            o.noise_marginals = bit_marginals(train);
            DiscreteTrainer tr(m, o, f.seed + 100 + s, &m);
            Array<double> batch(Shape{f.batch, d});
            double seconds = 0;
            // (the timings apart from the numbers: a resumed run's numbers equal a straight one's)
            json curve = json::array(), curve_seconds = json::array();
            auto evaluate = [&](std::size_t step) {
              const double g = ising_average_nll(m, test, ising_exact_any(m).log_z) - truth_nll;
              curve.push_back({step, rmse(m.J.value, truth.J.value), g});
              curve_seconds.push_back(seconds);
            };
            evaluate(0);
            for (std::size_t st = 0; st < f.steps; ++st) {
              const auto t0 = std::chrono::steady_clock::now();
              for (std::size_t row = 0; row < f.batch; ++row)
                std::copy_n(train.data() + tr.rng().below(train.shape()[0]) * d, d,
                            batch.data() + row * d);
              tr.set_lr(f.lr * (1 - double(st) / double(f.steps)));
              tr.step(batch);
              seconds +=
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              if ((st + 1) % f.eval_every == 0 || st + 1 == f.steps) evaluate(st + 1);
            }
            const json& last = curve.back();
            return json{
                {"coupling_rmse", last[1]},
                {"test_nll_gap", last[2]},
                {"train_seconds", seconds},
                {"sampler_evaluations_per_row",
                 double(tr.sampler_evaluations()) / double(std::max<std::size_t>(1, f.chains))},
                {"curve", curve},
                {"curve_seconds", curve_seconds}};
          });
          rm.push_back(r["coupling_rmse"].get<double>());
          gap.push_back(r["test_nll_gap"].get<double>());
          secs.push_back(r["train_seconds"].get<double>());
          evals.push_back(r["sampler_evaluations_per_row"].get<double>());
          for (std::size_t k = 0; k < r["curve"].size(); ++k) {
            const json& row = r["curve"][k];
            curves.row(graph + "/" + meth.name,
                       {double(s), row[0].get<double>(), r["curve_seconds"][k].get<double>(),
                        row[1].get<double>(), row[2].get<double>()});
          }
        }
        md += fmt::format("| {} | {} | {} | {} | {} |\n", method_label(meth.name), mean_sd(rm, 4),
                          mean_sd(gap, 4), mean_sd(secs, 2),
                          meth.method == DiscreteMethod::Pcd ? fmt::format("{:.0f}", evals[0])
                                                             : std::string("—"));
      }
      md += "\n";
    }
    md = fmt::format(
             "# Recovering Ising couplings\n\nMean ± sd over {} runs of each method ({} steps of "
             "batch {}, Adam from {} decaying linearly to 0, zero initial couplings); RMSE over "
             "the edges' couplings; persistent CD with {} chains, one sweep (Gibbs, checkerboard, "
             "Swendsen–Wang) or {} Gibbs-with-gradients steps per training step.\n\n",
             f.seeds, f.steps, f.batch, f.lr, f.chains,
             f.gwg_steps ? std::to_string(f.gwg_steps) : std::string("one per node")) +
         md;
    json metrics = units.all();
    const int status = check_finite("ising", metrics);
    write_json(dir / "metrics.json", metrics);
    curves.save(dir / "curves.csv");
    write_file_atomic(dir / "results.md", md);
    std::string gp =
        "set datafile separator ','\nset terminal pngcairo size 1100,800 font ',10'\nset output "
        "'curves.png.tmp'\nset multiplot layout 2,2\nset logscale y\nset key top right font ',8'\n";
    for (const std::string& graph : graphs)
      for (const auto& [xcol, xlabel] : {std::pair{3, "step"}, std::pair{4, "training seconds"}}) {
        gp += fmt::format("set title '{}: coupling RMSE'\nset xlabel '{}'\nplot ", graph, xlabel);
        bool first = true;
        for (const Method& meth : methods) {
          gp += fmt::format(
              "{}'curves.csv' using (strcol(1) eq '{}/{}' && $2 == 0 ? ${} : NaN):5 with lines "
              "title '{}'",
              first ? "" : ", ", graph, meth.name, xcol, meth.name);
          first = false;
        }
        gp += "\n";
      }
    gp += "unset multiplot\n";
    plot(dir, "curves.gp", gp, {"curves.png"});
    fmt::print("\n{}\noutputs in {}\n", md, dir.string());
    return status;
  } catch (const StopAfterUnits&) {
    fmt::print("\nstopped after {} units; continue with --resume <run>/checkpoint.bin\n",
               f.stop_after_units);
    return 0;
  } catch (...) {
    return exit_on_error(*comm, "ising");
  }
}
