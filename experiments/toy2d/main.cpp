// toy2d: learn a 2-D density with an MLP energy by persistent contrastive divergence and Langevin
// dynamics (the seed's Algorithm 1), and measure it exactly: the test NLL of the learned model
// with log Z by quadrature on a grid, next to the data's own NLL where its density is known, and
// the MMD between model samples and held-out data.
//
// Output, in a new folder runs/toy2d/<dataset>-seed<seed>[-k]:
//   config.json, metrics.json        flags; final metrics (byte-identical for the same flags)
//   train.csv, eval.csv              curves: loss, E(x+), E(x-), |grad|; test NLL and MMD
//   density.csv, samples.csv, ...    the data behind the pictures
//   density.png, energy.png, samples.png, curves.png   (drawn by gnuplot)
//   checkpoint.bin                   the last good state; --resume continues from it
//   eval_time.csv                    training seconds at each evaluation (not reproducible: a clock)
//
// --method chooses how the energy is trained: cd (the seed's), cd-kl (improved CD: + the KL term
// through the last Langevin step), sm (exact score matching), dsm (denoising), ssm (sliced), ed
// (energy discrepancy), nce (noise-contrastive estimation against a Gaussian with the training
// data's moments; its learned log Z is reported beside the quadrature's) — ebm/objectives.hpp; --time-budget stops training after that many seconds
// (evaluations not counted), for comparisons at equal cost.
//
// Data-parallel under MPI (mpirun -np R build/experiments/toy2d ...): every rank draws its
// --batch / R rows from its shard of the training set, runs its --buffer / R persistent chains with
// its own generator, and the ranks average their gradients (ebm/cd.hpp, set_comm); the quadrature
// grid and the test set are split by rows; rank 0 writes every output. With one process the run
// is the serial run, byte for byte.
#include <chrono>
#include <cmath>

#include <xtensor/xview.hpp>

#include "datasets/toy2d.hpp"
#include "ebm/boltzmann.hpp"
#include "ebm/cd.hpp"
#include "ebm/objectives.hpp"
#include "experiments/common/mpi.hpp"
#include "experiments/common/run.hpp"
#include "io/checkpoint.hpp"
#include "metrics/mmd.hpp"
#include "samplers/diagnostics.hpp"

using namespace ebl;
using namespace ebl::xp;
using T = float;

namespace {

struct Flags {
  std::string dataset = "8gaussians";
  long steps = 12000;
  std::size_t batch = 256, hidden = 128, layers = 2;
  std::string activation = "silu";
  double lr = 1e-3, lr_final = 1e-4;
  int langevin_steps = 20;
  double step_size = 0.005, temperature = 1.0, alpha = -1, grad_clip = 0;
  std::string init = "persistent", sampler = "langevin", method = "cd";
  double dsm_sigma = 0.1, ed_t = 1.0, ed_w = 1.0, kl_weight = 1.0, time_budget = 0, nce_ratio = 4;
  std::size_t ssm_projections = 1, ed_m = 4;
  std::size_t pt_levels = 6;
  double pt_max_temperature = 10;
  std::size_t buffer = 10000;
  double restart = 0.05, noise_box = 4.0, box = 4.0;
  std::size_t grid = 200, train_size = 50000, test_size = 5000, eval_samples = 1000;
  int sample_steps = 1000;
  long eval_every = 500;
  std::uint64_t seed = 0;
  int threads = 2;
  std::string out = "runs", resume, resume_from_weights;
  bool smoke = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Flags, dataset, steps, batch, hidden, layers, activation, lr,
                                   lr_final, langevin_steps, step_size, temperature, alpha,
                                   grad_clip, init, sampler, method, dsm_sigma, ed_t, ed_w,
                                   kl_weight, time_budget, ssm_projections, ed_m, pt_levels,
                                   pt_max_temperature, buffer, restart, noise_box, box, grid,
                                   train_size, test_size, eval_samples, sample_steps, eval_every,
                                   seed, threads, out, resume, resume_from_weights, smoke,
                                   nce_ratio)

void add_flags(CLI::App& app, Flags& f) {
  app.add_option("--dataset", f.dataset,
                 "8gaussians, 2spirals, checkerboard, rings, moons, pinwheel")
      ->check(CLI::IsMember(toy2d::dataset_names()))
      ->capture_default_str();
  app.add_option("--steps", f.steps, "training steps")
      ->check(CLI::Range(1L, 100000000L))
      ->capture_default_str();
  app.add_option("--batch", f.batch, "data batch = number of chains per step")
      ->check(CLI::Range(2, 1 << 20))
      ->capture_default_str();
  app.add_option("--hidden", f.hidden, "width of the energy MLP")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  app.add_option("--layers", f.layers, "hidden layers of the energy MLP")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  app.add_option("--activation", f.activation, "relu, leaky_relu, tanh, sigmoid, softplus, silu")
      ->check(CLI::IsMember({"relu", "leaky_relu", "tanh", "sigmoid", "softplus", "silu", "swish"}))
      ->capture_default_str();
  app.add_option("--lr", f.lr, "Adam learning rate at the first step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--lr-final", f.lr_final, "learning rate at the last step (linear decay)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--threads", f.threads,
                 "threads for the chains and the CD gradient (results depend on it, as on --seed)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--langevin-steps", f.langevin_steps, "k: Langevin steps per training step")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--step-size", f.step_size, "Langevin step size epsilon")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--temperature", f.temperature, "Langevin temperature T (noise variance 2 eps T)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--alpha", f.alpha,
                 "weight of alpha (E(x+)^2 + E(x-)^2); -1: the dataset's own (0.1 for the thin "
                 "rings, moons, 2spirals, "
                 "0.01 otherwise)")
      ->check(CLI::Range(-1.0, 1e6))
      ->capture_default_str();
  app.add_option("--grad-clip", f.grad_clip, "clip each component of grad_x E (0 = off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--init", f.init, "chain start: persistent, data (CD-k), noise")
      ->check(CLI::IsMember({"persistent", "data", "noise"}))
      ->capture_default_str();
  app.add_option("--sampler", f.sampler,
                 "dream sampler: langevin (unadjusted), mala (Metropolis-adjusted, same step), pt "
                 "(parallel tempering: MALA moves on a ladder of temperatures, with swaps)")
      ->check(CLI::IsMember({"langevin", "mala", "pt"}))
      ->capture_default_str();
  app.add_option("--method", f.method,
                 "training method: cd, cd-kl (CD + the KL term through the last Langevin step), "
                 "sm (exact score matching), dsm (denoising score matching), ssm (sliced score "
                 "matching), ed (energy discrepancy), nce (noise-contrastive estimation)")
      ->check(CLI::IsMember({"cd", "cd-kl", "sm", "dsm", "ssm", "ed", "nce"}))
      ->capture_default_str();
  app.add_option("--nce-ratio", f.nce_ratio,
                 "nce: noise points per data point (the noise: a Gaussian with the training "
                 "data's means and standard deviations)")
      ->check(CLI::Range(0.01, 1000.0))
      ->capture_default_str();
  app.add_option("--dsm-sigma", f.dsm_sigma, "dsm: noise level sigma")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--ssm-projections", f.ssm_projections, "ssm: Rademacher projections per point")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--ed-t", f.ed_t, "ed: perturbation variance t")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--ed-m", f.ed_m, "ed: contrastive samples per point")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--ed-w", f.ed_w, "ed: stabiliser w (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--kl-weight", f.kl_weight, "cd-kl: weight of the KL term")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--time-budget", f.time_budget,
                 "stop training after this many seconds of training (0: run --steps); the run "
                 "then depends on the machine's speed")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--pt-levels", f.pt_levels, "pt: temperatures in the ladder")
      ->check(CLI::Range(2, 64))
      ->capture_default_str();
  app.add_option("--pt-max-temperature", f.pt_max_temperature,
                 "pt: the hottest temperature, as a multiple of --temperature (geometric ladder)")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  app.add_option("--buffer", f.buffer, "persistent chains kept")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  app.add_option("--restart", f.restart, "probability a persistent chain restarts from noise")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  // NOTE: the 2-D sets live within |x| < 5; a box of 1e30 is finite in float but its quadrature
  // cells are not meaningful, so both boxes are bounded.
  app.add_option("--noise-box", f.noise_box, "noise is uniform on [-b, b]^2")
      ->check(CLI::Range(1e-3, 1e3))
      ->capture_default_str();
  app.add_option("--box", f.box, "quadrature box [-b, b]^2 for log Z")
      ->check(CLI::Range(1e-3, 1e3))
      ->capture_default_str();
  app.add_option("--grid", f.grid, "quadrature cells per axis")
      ->check(CLI::Range(10, 4000))
      ->capture_default_str();
  app.add_option("--train-size", f.train_size, "training set size")
      ->check(CLI::Range(2, 1 << 26))
      ->capture_default_str();
  app.add_option("--test-size", f.test_size, "held-out set size")
      ->check(CLI::Range(2, 1 << 26))
      ->capture_default_str();
  app.add_option("--eval-samples", f.eval_samples, "model samples (and test points) for the MMD")
      ->check(CLI::Range(2, 100000))
      ->capture_default_str();
  app.add_option("--sample-steps", f.sample_steps,
                 "Langevin steps from noise for the final model samples")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--eval-every", f.eval_every, "steps between evaluations and checkpoints")
      ->check(CLI::Range(1L, 100000000L))
      ->capture_default_str();
  app.add_option("--seed", f.seed, "seed of data, initialisation and chains")
      ->capture_default_str();
  app.add_option("--out", f.out, "base folder of runs")->capture_default_str();
  auto* resume = app.add_option("--resume", f.resume,
                                "continue from a checkpoint.bin of an earlier run with the same "
                                "flags (only --steps and the evaluation flags may change)")
                     ->check(CLI::ExistingFile);
  app.add_option("--resume-from-weights", f.resume_from_weights,
                 "start a new run from the parameters of a checkpoint.bin (any flags; the "
                 "optimizer, chains and step count start afresh)")
      ->check(CLI::ExistingFile)
      ->excludes(resume);
  app.add_flag("--smoke", f.smoke, "a few steps on a small model, for CI");
}

// What a resumed run may change: its length, where its output goes, and its evaluation (the
// evaluation draws from its own generators, so the training trajectory is the same). Everything
// else defines the model, the data or the training and must match the checkpoint's.
// NOTE: --steps also sets the end of the linear learning-rate decay, so a run extended by --steps
// decays more slowly from the resume on than the original run would have.
const std::set<std::string> kMayDifferOnResume = {
    "steps", "eval_every", "eval_samples", "sample_steps",        "grid", "time_budget",
    "box",   "out",        "resume",       "resume_from_weights", "smoke"};

// Exact evaluation on the grid: test NLL with log Z by quadrature over the box.
struct Eval {
  double test_nll = 0, log_z = 0, mmd2 = 0;
};

std::string curves_script(const std::string& dataset, bool has_data_nll, double data_nll) {
  std::string s = R"(set terminal pngcairo size 1200,380 font ",10"
set output 'curves.png.tmp'
set datafile separator ','
set key autotitle columnhead
set multiplot layout 1,3
set xlabel 'step'
set title 'CD loss'
plot 'train.csv' using 1:2 with lines lw 1 notitle
set title 'energies'
plot 'train.csv' using 1:3 with lines title 'E(x+)', '' using 1:4 with lines title 'E(x-)'
set title 'test NLL (exact, quadrature)'
)";
  if (has_data_nll)
    s += fmt::format(
        "plot 'eval.csv' using 1:2 with linespoints title 'model', {:.9g} with lines dt 2 title "
        "'data density ({})'\n",
        data_nll, dataset);
  else
    s += "plot 'eval.csv' using 1:2 with linespoints title 'model'\n";
  s += "unset multiplot\n";
  return s;
}

std::string maps_script(double box) {
  return fmt::format(R"(set datafile separator ','
set terminal pngcairo size 560,500 font ",10"
set size ratio -1
set xrange [{0}:{1}]
set yrange [{0}:{1}]
set palette defined (0 '#000004', 1 '#51127c', 2 '#b73779', 3 '#fc8961', 4 '#fcfdbf')
set output 'density.png.tmp'
set title 'learned density p(x) = exp(-E(x)) / Z'
plot 'density.csv' using 1:2:3 with image notitle
set output 'energy.png.tmp'
set title 'energy E(x)'
plot 'density.csv' using 1:2:4 with image notitle
set output 'samples.png.tmp'
set title 'model samples (red) over held-out data (grey)'
plot 'test_points.csv' using 1:2 with dots lc rgb '#808080' notitle, 'samples.csv' using 1:2 with points pt 7 ps 0.3 lc rgb '#d62728' notitle
)",
                     -box, box);
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<Comm> comm = start_comm("toy2d", argc, argv);
  if (!comm) return 1;
  const int rank = comm->rank(), ranks = comm->size();
  const bool root = comm->root();
  CLI::App app{
      "toy2d: learn a 2-D density with an MLP energy by persistent CD + Langevin, measured exactly",
      "toy2d"};
  Flags f;
  add_flags(app, f);
  if (auto code = parse_flags(app, argc, argv)) return *code;  // the same on every rank
  // NOTE: with α = 0.01 the thin sets (noise 0.08-0.1) run away: ULA steps of ε = 0.005 overshoot
  // their narrow wells, negatives never reach them and E(x+) keeps falling. α = 0.1 holds the
  // energies near 0 there; on 8 gaussians it costs ~0.05 nats of test NLL, so each set has its own.
  if (f.alpha < 0)
    f.alpha =
        (f.dataset == "rings" || f.dataset == "moons" || f.dataset == "2spirals") ? 0.1 : 0.01;
  if (f.smoke)
    SmokeSizes{app}("--steps", f.steps, 30)("--hidden", f.hidden, 32)(
        "--eval-every", f.eval_every, 15)("--grid", f.grid, 40)("--train-size", f.train_size, 2000)(
        "--test-size", f.test_size, 500)("--eval-samples", f.eval_samples, 200)(
        "--sample-steps", f.sample_steps, 50)("--buffer", f.buffer, 500);

  try {
    if (f.batch % std::size_t(ranks) != 0 || f.buffer < std::size_t(ranks))
      throw FlagError(fmt::format(
          "--batch {} must be a multiple of the {} ranks and --buffer {} at least that (each rank "
          "takes an equal share of the batch and of the chains)",
          f.batch, ranks, f.buffer));
    const std::size_t local_batch = f.batch / std::size_t(ranks);
    {  // the largest arrays at once: the MLP training, or evaluating it on the whole grid
      std::vector<double> widths{2};
      for (std::size_t l = 0; l < f.layers; ++l) widths.push_back(double(f.hidden));
      widths.push_back(1);
      const double rows = std::max({double(f.batch), double(f.grid) * double(f.grid),
                                    double(f.eval_samples), double(f.test_size), double(f.buffer)});
      require_fits_memory(
          mlp_bytes(widths, rows) + 8.0 * double(f.train_size + f.test_size + f.buffer),
          "--hidden, --layers, --grid, --batch, --buffer and the set sizes");
    }
    const toy2d::Dataset data_law = toy2d::dataset(f.dataset);
    // Data: a training set and a held-out set, both drawn from the dataset's generator.
    Rng data_rng(f.seed);
    Array<T> train = toy2d::sample<T>(data_law, f.train_size, data_rng);
    Array<T> test = toy2d::sample<T>(data_law, f.test_size, data_rng);
    std::optional<double> data_nll = toy2d::true_nll(data_law, test);

    // Model, optimizer, trainer.
    Rng init_rng(f.seed + 1);
    MlpEnergy<T> energy(2, std::vector<std::size_t>(f.layers, f.hidden),
                        parse_activation(f.activation), init_rng);
    Adam<T> opt(energy.parameters(), {.lr = f.lr});
    CdOptions cdo;
    cdo.init = parse_chain_init(f.init);
    cdo.langevin = {.steps = f.langevin_steps,
                    .step_size = f.step_size,
                    .temperature = f.temperature,
                    .grad_clip = f.grad_clip,
                    .threads = f.threads};
    cdo.sampler = parse_dream_sampler(f.sampler);
    if (cdo.sampler == DreamSampler::Tempering)
      cdo.tempering_ladder = geometric_ladder(f.pt_levels, f.pt_max_temperature);
    cdo.alpha = f.alpha;
    cdo.noise_lo = -f.noise_box;
    cdo.noise_hi = f.noise_box;
    cdo.buffer_size = f.buffer / std::size_t(ranks);  // this rank's share of the chains
    cdo.restart_prob = f.restart;
    // rank r's generator: the serial run's stream advanced by r jumps of 2^128
    const bool by_cd = f.method == "cd" || f.method == "cd-kl";
    if (f.method == "cd-kl") cdo.kl_weight = f.kl_weight;
    if (!by_cd && ranks > 1)
      throw FlagError(
          fmt::format("--method {} runs on one process (only cd and cd-kl are "
                      "data-parallel)",
                      f.method));
    ContrastiveDivergence<T> cd(energy, opt, cdo, rank_stream(f.seed + 2, rank), 2);
    cd.set_comm(comm.get(), f.eval_every);  // parameter checksums compared at every evaluation
    // the MCMC-free methods: their own trainer, with the generator CD would have had
    ObjectiveOptions oo;
    oo.kind = f.method == "sm"    ? ObjectiveKind::ScoreMatching
              : f.method == "dsm" ? ObjectiveKind::Denoising
              : f.method == "ssm" ? ObjectiveKind::Sliced
              : f.method == "nce" ? ObjectiveKind::Nce
                                  : ObjectiveKind::EnergyDiscrepancy;
    oo.dsm_sigmas = {f.dsm_sigma};
    oo.ssm_projections = f.ssm_projections;
    oo.ed = {.t = f.ed_t, .m = f.ed_m, .w = f.ed_w};
    if (f.method == "nce") {
      oo.nce_ratio = f.nce_ratio;
      for (std::size_t i = 0; i < 2; ++i) {
        double m = 0, v = 0;
        for (std::size_t r = 0; r < train.shape()[0]; ++r) m += double(train(r, i));
        m /= double(train.shape()[0]);
        for (std::size_t r = 0; r < train.shape()[0]; ++r)
          v += (double(train(r, i)) - m) * (double(train(r, i)) - m);
        oo.nce_mean.push_back(m);
        oo.nce_std.push_back(std::sqrt(v / double(train.shape()[0] - 1)));
      }
      oo.nce_lr = f.lr;
    }
    ObjectiveTrainer<T> obj(energy, opt, oo, f.seed + 2);
    auto steps_done = [&] { return by_cd ? cd.steps_done() : obj.steps_done(); };
    Rng& trainer_rng = by_cd ? cd.rng() : obj.rng();
    const nlohmann::json config = f;  // the effective values, after --smoke
    if (!f.resume.empty()) {
      // read by rank 0, refused if corrupt or truncated, written by as many ranks as this run
      const Checkpoint c = load_checkpoint(*comm, f.resume);
      check_resume_config(c, config, kMayDifferOnResume, f.resume, "--resume-from-weights");
      require_same_ranks(c, *comm, f.resume);  // like a resume under other flags
      if (by_cd)
        cd.restore(rank_view(c, rank, ranks, f.resume));
      else
        obj.restore(c);
      if (root) fmt::print("resumed from {} at step {}\n", f.resume, steps_done());
    }
    if (!f.resume_from_weights.empty()) {
      const Checkpoint c = load_checkpoint(*comm, f.resume_from_weights);
      if (by_cd)
        cd.restore_parameters(c);
      else
        obj.restore_parameters(c);
      if (root) fmt::print("a new run from the parameters in {}\n", f.resume_from_weights);
    }
    auto save_checkpoint = [&](const fs::path& path) {  // collective: every rank's state
      Checkpoint c = gather_checkpoint(*comm, by_cd ? cd.checkpoint() : obj.checkpoint());
      if (!root) return;
      c.strings["config"] = config.dump();  // what a resume must match
      c.save(path);
    };

    // Only now, with the inputs known to be good, is the run folder made (by rank 0).
    fs::path dir;
    if (root) {
      dir = make_run_dir(f.out, "toy2d", fmt::format("{}-seed{}", f.dataset, f.seed));
      write_json(dir / "config.json", config);
      fmt::print("toy2d: {} -> {}\n{}\n", f.dataset, dir.string(), config.dump());
      if (ranks > 1)
        fmt::print("data-parallel: {}, {} rows per rank\n", comm->describe(), local_batch);
    }

    const Domain<T> grid = grid_2d<T>(-f.box, f.box, f.grid, -f.box, f.box, f.grid);
    Array<T> eval_test =
        xt::view(test, xt::range(0, std::min(f.eval_samples, f.test_size)), xt::all());
    ChainStats sample_stats;
    auto model_samples = [&](std::size_t n, int steps) {
      // fresh chains from noise, run long: samples of the model as its own sampler sees it
      Rng srng(f.seed + 3);
      Array<T> x = srng.uniform_array<T>({n, 2}, -f.noise_box, f.noise_box);
      sample_stats = Langevin<T>([&](Tape<T>& t, Var<T> v) { return energy(t, v); },
                                 {.steps = steps,
                                  .step_size = f.step_size,
                                  .temperature = f.temperature,
                                  .grad_clip = f.grad_clip,
                                  .threads = f.threads,
                                  .trace_energies = true})
                         .run(x, srng);
      return x;
    };

    Csv train_csv({"step", "loss", "e_pos", "e_neg", "grad_norm", "chain_grad_norm"});
    Csv eval_csv({"step", "test_nll", "log_z"});
    Csv eval_time_csv({"step", "train_seconds", "test_nll"});
    double train_seconds = 0;
    long last_eval_step = -1;
    Progress bar("toy2d", f.steps);
    Array<T> batch(Shape{local_batch, 2});
    // this rank's shard of the training set: rows rank, rank + R, rank + 2R, ...
    const std::size_t shard =
        (f.train_size - std::size_t(rank) + std::size_t(ranks) - 1) / std::size_t(ranks);
    double last_nll = NAN, acceptance_sum = 0;
    long acceptance_steps = 0;
    CdStepStats last{};
    std::string status = "ok", divergence;
    save_checkpoint(dir / "checkpoint.bin");  // there is always a good state to go back to
    try {
      for (long s = steps_done(); s < f.steps; ++s) {
        if (f.time_budget > 0 && train_seconds >= f.time_budget) break;
        for (std::size_t i = 0; i < local_batch; ++i) {
          std::size_t r = trainer_rng.below(shard) * std::size_t(ranks) + std::size_t(rank);
          batch(i, 0) = train(r, 0);
          batch(i, 1) = train(r, 1);
        }
        opt.options().lr =
            f.lr + (f.lr_final - f.lr) * double(s) / double(std::max(1L, f.steps - 1));
        const auto t0 = std::chrono::steady_clock::now();
        if (by_cd) {
          last = cd.step(batch);
          acceptance_sum += last.chain.acceptance;
          ++acceptance_steps;
        } else {
          const ObjectiveStepStats os = obj.step(batch);
          last = {};
          last.loss = os.loss, last.grad_norm = os.grad_norm;
          last.e_pos = last.e_neg = NAN;  // (no negatives)
        }
        train_seconds +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if ((s + 1) % 10 == 0 || s + 1 == f.steps)
          train_csv.row(
              {double(s + 1), last.loss, last.e_pos, last.e_neg, last.grad_norm,
               last.chain.mean_grad_norm.empty() ? 0.0 : last.chain.mean_grad_norm.back()});
        if ((s + 1) % f.eval_every == 0 || s + 1 == f.steps) {
          // β = 1: NLL = mean E(test) + log Z (grid and test rows split across the ranks)
          const double lz = log_partition(*comm, energy, grid);
          last_nll = mean_energy(*comm, energy, test) + lz;
          eval_csv.row({double(s + 1), last_nll, lz});
          eval_time_csv.row({double(s + 1), train_seconds, last_nll});
          last_eval_step = s + 1;
          save_checkpoint(dir / "checkpoint.bin");
          if (root) {
            train_csv.save(dir / "train.csv");
            eval_csv.save(dir / "eval.csv");
            eval_time_csv.save(dir / "eval_time.csv");
          }
        }
        if (root)
          bar.update(s + 1,
                     fmt::format("loss {:+.3f} E+ {:+.2f} E- {:+.2f} test NLL {}", last.loss,
                                 last.e_pos, last.e_neg,
                                 std::isnan(last_nll) ? "-" : fmt::format("{:.3f}", last_nll)));
      }
    } catch (const DivergenceError& e) {  // raised on every rank at the same step
      divergence = e.what();
      if (root) {
        fmt::print(stderr, "\ntoy2d: {}\n", e.what());
        fmt::print(stderr, "toy2d: the last good state is {} (resume with --resume)\n",
                   (dir / "checkpoint.bin").string());
      }
      status = "diverged";
    }
    // The final energies on the grid and the test NLL, every rank taking its share of the rows.
    Array<T> e_grid;
    double final_log_z = 0, final_test_nll = 0;
    if (status == "ok") {
      e_grid = energies_on(*comm, energy, grid);  // one pass over the grid for E, p and Z
      final_log_z = log_partition(e_grid, grid);
      final_test_nll = mean_energy(*comm, energy, test) + final_log_z;
      if (steps_done() != last_eval_step)  // (a run the time budget stopped between evaluations)
        eval_time_csv.row({double(steps_done()), train_seconds, final_test_nll});
    }
    if (!root) return status == "ok" ? 0 : 3;
    train_csv.save(dir / "train.csv");
    eval_csv.save(dir / "eval.csv");
    eval_time_csv.save(dir / "eval_time.csv");

    json metrics;
    metrics["status"] = status;
    metrics["dataset"] = f.dataset;
    metrics["steps"] = steps_done();
    if (f.method != "cd") {  // (kept out of the default run's metrics, which stay as they were)
      metrics["method"] = f.method;  // (training seconds: eval_time.csv, a clock, not here)
    }
    if (!divergence.empty()) metrics["message"] = divergence;
    if (ranks > 1) metrics["ranks"] = ranks;
    if (status == "ok") {
      // Final exact evaluation and pictures.
      Array<T> p_grid = density(e_grid, grid);
      const double log_z = final_log_z, test_nll = final_test_nll;
      Array<T> samples = model_samples(f.eval_samples, f.sample_steps);
      const double mmd2 = mmd2_unbiased(samples, eval_test, {0.1, 0.3, 1.0});
      metrics["test_nll_model"] = test_nll;
      metrics["test_nll_data"] = data_nll ? json(*data_nll) : json(nullptr);
      metrics["nll_gap"] = data_nll ? json(test_nll - *data_nll) : json(nullptr);
      metrics["log_z"] = log_z;
      if (f.method == "nce") metrics["nce_log_z"] = obj.nce_log_z();  // c, beside quadrature's
      metrics["mmd2_samples_vs_test"] = mmd2;
      metrics["final_loss"] = last.loss;
      // (the MCMC-free methods have no negatives: their E(x-) is undefined, written null)
      metrics["final_e_pos"] = by_cd ? json(last.e_pos) : json(nullptr);
      metrics["final_e_neg"] = by_cd ? json(last.e_neg) : json(nullptr);
      metrics["quadrature"] = {{"box", f.box}, {"cells_per_axis", f.grid}};
      // How the chains mixed: the dream sampler's acceptance over this run's steps (1 for
      // unadjusted Langevin) and tempering's swap rates; the final samples' energy traces, second
      // half of each chain, through the diagnostics: effective sample size and split-R̂.
      json mixing = {
          {"dream_sampler", by_cd ? f.sampler : "none"},
          {"dream_acceptance",
           acceptance_steps ? json(acceptance_sum / double(acceptance_steps)) : json(nullptr)}};
      if (const auto* pt = cd.tempering()) mixing["dream_swap_rates"] = pt->swap_rates();
      const Traces half = second_halves(sample_stats.energy_traces);
      if (!half.empty() && half[0].size() >= kMinDrawsForEss) {
        mixing["samples_energy_ess"] = effective_sample_size(half);
        mixing["samples_energy_rhat"] = split_rhat(half);
        mixing["samples_draws_per_chain"] = half[0].size();
      }
      metrics["mixing"] = mixing;
      if (f.dataset == "8gaussians") {
        // The learned density's mass around each of the eight modes (the sector of angles
        // nearest to it), against 1/8 each; and the final samples' share of each sector.
        std::vector<double> w(8, 0.0), ws(8, 0.0);
        auto sector = [](double x, double y) {
          const long k = std::lround(std::atan2(y, x) / (toy2d::kPi / 4));
          return std::size_t((k % 8 + 8) % 8);
        };
        const double cell = std::exp(grid.log_cell);
        for (std::size_t i = 0; i < grid.size(); ++i)
          w[sector(grid.points(i, 0), grid.points(i, 1))] += double(p_grid(i)) * cell;
        for (std::size_t i = 0; i < samples.shape()[0]; ++i)
          ws[sector(samples(i, 0), samples(i, 1))] += 1.0 / double(samples.shape()[0]);
        double err = 0, err_s = 0;
        for (std::size_t k = 0; k < 8; ++k) {
          err = std::max(err, std::abs(w[k] - 0.125));
          err_s = std::max(err_s, std::abs(ws[k] - 0.125));
        }
        metrics["mode_weights"] = w;
        metrics["mode_weight_max_error"] = err;
        metrics["sample_mode_weights"] = ws;
        metrics["sample_mode_weight_max_error"] = err_s;
      }

      Csv dens({"x", "y", "p", "energy"});
      for (std::size_t i = 0; i < grid.size(); ++i)
        dens.row({double(grid.points(i, 0)), double(grid.points(i, 1)), double(p_grid(i)),
                  double(e_grid(i))});
      dens.save(dir / "density.csv");
      Csv smp({"x", "y"}), tst({"x", "y"});
      for (std::size_t i = 0; i < samples.shape()[0]; ++i)
        smp.row({double(samples(i, 0)), double(samples(i, 1))});
      for (std::size_t i = 0; i < test.shape()[0]; ++i)
        tst.row({double(test(i, 0)), double(test(i, 1))});
      smp.save(dir / "samples.csv");
      tst.save(dir / "test_points.csv");
      plot(dir, "maps.gp", maps_script(f.box), {"density.png", "energy.png", "samples.png"});
      if (train_csv.rows() > 0 && eval_csv.rows() > 0)
        plot(dir, "curves.gp", curves_script(f.dataset, data_nll.has_value(), data_nll.value_or(0)),
             {"curves.png"});
    }
    const int exit_status = check_finite("toy2d", metrics, status == "ok" ? 0 : 3);
    write_json(dir / "metrics.json", metrics);

    fmt::print("\n{:<14} {:>8} {:>14} {:>14} {:>10} {:>12} {:>8}\n", "dataset", "steps",
               "test NLL model", "test NLL data", "gap", "MMD^2", "time");
    auto num = [&](const char* k) {
      return metrics.contains(k) && metrics[k].is_number()
                 ? fmt::format("{:.4f}", metrics[k].get<double>())
                 : std::string("n/a");
    };
    fmt::print("{:<14} {:>8} {:>14} {:>14} {:>10} {:>12} {:>7.0f}s\n", f.dataset, steps_done(),
               num("test_nll_model"), num("test_nll_data"), num("nll_gap"),
               num("mmd2_samples_vs_test"), bar.seconds());
    fmt::print("outputs in {}\n", dir.string());
    return exit_status;
  } catch (...) {
    return exit_on_error(*comm, "toy2d");
  }
}
