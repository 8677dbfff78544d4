// rbm: binary RBMs on the 8×8 digits (Fashion-MNIST with --fashion), trained by CD-1, CD-k and
// persistent CD, compared by their train and test log-likelihood — exact (log Z by enumerating
// the hidden layer) when it has at most --exact-max units, AIS otherwise — and pseudo-likelihood.
//
// Output in runs/rbm/<data>-seed<seed>[-k]: config.json, metrics.json, results.md, curves.csv,
// curves.png, filters_<method>.png (each hidden unit's weights as an image), samples_<method>.png
// (Gibbs chains run from noise), and checkpoint.bin, written after every epoch: --resume continues
// from it to the same outputs byte for byte (--stop-after-epochs ends a run early on purpose).
//
// Data-parallel under MPI (mpirun -np R build/experiments/rbm ...): the same initial weights on
// every rank; each rank owns a shard of the training images (rows rank, rank + R, ...), its
// --batch / R persistent chains and its own generator; the gradients are averaged every step
// (rbm_train_step's Comm); AIS runs and the log-likelihoods' rows are split across the ranks;
// rank 0 writes every output. One process is the serial run, byte for byte.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "datasets/images.hpp"
#include "ebm/cd.hpp"
#include "ebm/energy.hpp"
#include "ebm/inference.hpp"
#include "ebm/rbm.hpp"
#include "experiments/common/mpi.hpp"
#include "experiments/common/run.hpp"
#include "experiments/common/tiles.hpp"
#include "samplers/diagnostics.hpp"

using namespace ebl;
using namespace ebl::xp;
using T = double;

namespace {

struct Flags {
  std::string methods = "cd1,cd10,pcd";
  std::size_t hidden = 16, epochs = 30, batch = 20, test_size = 500, exact_max = 20, ais_runs = 100,
              ais_temps = 3000;
  int sample_sweeps = 1000;
  double lr = 0.05, momentum = 0.5, weight_decay = 1e-4;
  std::string binarize = "threshold";
  std::uint64_t seed = 0;
  bool fashion = false, smoke = false;
  std::string out = "runs", resume, data_dir;
  std::size_t stop_after_epochs = 0;
  std::size_t pt_levels = 10;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Flags, methods, hidden, epochs, batch, test_size, exact_max,
                                   ais_runs, ais_temps, sample_sweeps, lr, momentum, weight_decay,
                                   binarize, seed, fashion, smoke, out, resume, stop_after_epochs,
                                   data_dir, pt_levels)

// What a resumed run may change: its length (--epochs also sets the end of the linear
// learning-rate decay), where its output goes, when it stops, and its evaluation. Everything else
// defines the models, the data or the training and must match the checkpoint's.
const std::set<std::string> kMayDifferOnResume = {
    "epochs", "out",           "resume",   "stop_after_epochs", "exact_max",
    "smoke",  "sample_sweeps", "ais_runs", "ais_temps"};

struct Method {
  std::string name;
  RbmTrainOptions train;
};

// cd<k>: CD-k from the data; pcd[<k>]: persistent chains; ppt[<k>]: persistent parallel
// tempering, `pt_levels` inverse temperatures evenly spaced from 1 down to 0.
Method parse_method(const std::string& s, std::size_t pt_levels) {
  const bool tempered = s.rfind("ppt", 0) == 0, persistent = tempered || s.rfind("pcd", 0) == 0;
  const std::size_t prefix = persistent ? 3 : 2;
  const std::string digits = s.size() >= prefix ? s.substr(prefix) : std::string();
  const bool ok =
      (persistent || (s.rfind("cd", 0) == 0 && !digits.empty())) && digits.size() <= 4 &&
      std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  const int k = ok && !digits.empty() ? std::stoi(digits) : 1;
  if (!ok || k < 1)
    throw FlagError(fmt::format(
        "--methods: unknown method '{}' (expected cd<k>, pcd[<k>] or ppt[<k>], k >= 1)", s));
  std::vector<double> betas;
  if (tempered)
    for (std::size_t l = 0; l < pt_levels; ++l)
      betas.push_back(1 - double(l) / double(pt_levels - 1));
  return {s, {.k = k, .persistent = persistent, .tempering_betas = betas}};
}

// Inpainting (issue 23): the bottom half of each test image hidden and restored, scored by the
// fraction of wrong binary pixels in the hidden half.
//   free energy: argmin of F(v) over the hidden pixels relaxed to [0, 1] (ebm/inference.hpp,
//                gradient descent on the tape from 0.5), then thresholded at 0.5;
//   Gibbs:       the visible half clamped, block Gibbs on the rest, p(v | h) averaged over the
//                sweeps after a burn-in (the conditional's mean), thresholded;
//   nearest neighbour (the baseline): the bottom half of the training image closest on the top.
struct InpaintResult {
  double free_energy = 0, gibbs = 0;  ///< error per hidden pixel
  Array<T> fe_restored, gibbs_restored;
};

std::vector<bool> hidden_half(std::size_t side) {
  std::vector<bool> free(side * side, false);
  for (std::size_t i = side / 2 * side; i < side * side; ++i) free[i] = true;
  return free;
}

// The test images with their hidden pixels at 0.5: where the relaxed searches start.
Array<T> half_grey(const Array<T>& test, const std::vector<bool>& free) {
  Array<T> start = test;
  const std::size_t d = test.shape()[1];
  for (std::size_t i = 0; i < test.shape()[0]; ++i)
    for (std::size_t c = 0; c < d; ++c)
      if (free[c]) start(i, c) = T(0.5);
  return start;
}

double pixel_error(const Array<T>& restored, const Array<T>& truth, const std::vector<bool>& free) {
  const std::size_t n = truth.shape()[0], d = truth.shape()[1];
  double wrong = 0, count = 0;
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t c = 0; c < d; ++c)
      if (free[c]) {
        wrong += (restored(r, c) > 0.5) != (truth(r, c) > 0.5);
        ++count;
      }
  return wrong / count;
}

InpaintResult inpaint(Rbm<T>& m, const Array<T>& test, std::size_t side, Rng& rng, int sweeps) {
  const std::vector<bool> free = hidden_half(side);
  const std::size_t n = test.shape()[0], d = test.shape()[1];
  InpaintResult r;
  const Array<T> start = half_grey(test, free);
  BatchEnergyFn<T> f = [&m](Tape<T>& t, Var<T> v) { return m.free_energy(t, v); };
  r.fe_restored =
      minimize_energy_given<T>(
          f, start, free, {.steps = 500, .step_size = 0.05, .box = true, .lo = 0, .hi = 1}, rng)
          .y;
  r.free_energy = pixel_error(r.fe_restored, test, free);
  // conditional Gibbs: clamp the top half, average p(v | h) on the bottom after sweeps / 4
  Array<T> v = start, h, pv;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < d; ++c)
      if (free[c]) v(i, c) = rng.bernoulli(0.5) ? T(1) : T(0);
  r.gibbs_restored = Array<T>(test.shape(), T(0));
  const int burn_in = sweeps / 4;
  for (int s = 0; s < sweeps; ++s) {
    m.hidden_probs(v, h);
    sample_bernoulli(h, rng);
    m.visible_probs(h, pv);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t c = 0; c < d; ++c)
        if (free[c]) {
          if (s >= burn_in) r.gibbs_restored(i, c) += pv(i, c) / T(sweeps - burn_in);
          v(i, c) = rng.bernoulli(double(pv(i, c))) ? T(1) : T(0);
        }
  }
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < d; ++c)
      if (!free[c]) r.gibbs_restored(i, c) = test(i, c);
  r.gibbs = pixel_error(r.gibbs_restored, test, free);
  return r;
}

// An MLP energy on the same binarised digits for comparison: E_θ(v) = MLP(v), 64-128-128-1 SiLU,
// trained by persistent CD with Langevin (ebm/cd.hpp), then the hidden half restored by
// minimising E over the relaxed pixels. Returns the restored images.
Array<T> mlp_inpaint(const Array<T>& train, const Array<T>& test, std::size_t side,
                     std::uint64_t seed, long steps) {
  Rng rng(seed);
  MlpEnergy<T> energy(train.shape()[1], {128, 128}, Activation::Silu, rng);
  Adam<T> opt(energy.parameters(), {.lr = 1e-3});
  CdOptions o;
  o.langevin = {.steps = 20, .step_size = 0.005, .clamp = true, .lo = 0, .hi = 1, .threads = 2};
  o.noise_lo = 0;
  o.noise_hi = 1;
  o.buffer_size = 2000;
  o.alpha = 0.1;
  ContrastiveDivergence<T> cd(energy, opt, o, seed + 1, train.shape()[1]);
  const std::size_t n = train.shape()[0], d = train.shape()[1], b = 64;
  Array<T> batch(Shape{b, d});
  for (long s = 0; s < steps; ++s) {
    for (std::size_t r = 0; r < b; ++r) std::copy_n(&train(cd.rng().below(n), 0), d, &batch(r, 0));
    cd.step(batch);
  }
  const std::vector<bool> free = hidden_half(side);
  BatchEnergyFn<T> f = [&energy](Tape<T>& t, Var<T> v) { return energy(t, v); };
  return minimize_energy_given<T>(f, half_grey(test, free), free,
                                  {.steps = 500, .step_size = 0.05, .box = true, .lo = 0, .hi = 1},
                                  rng)
      .y;
}

// The baseline: each test image's hidden half from the training image nearest on the visible half.
Array<T> nearest_neighbour_inpaint(const Array<T>& train, const Array<T>& test, std::size_t side) {
  const std::vector<bool> free = hidden_half(side);
  const std::size_t n = test.shape()[0], d = test.shape()[1];
  Array<T> out = test;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t best = 0;
    double best_d = std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < train.shape()[0]; ++j) {
      double dist = 0;
      for (std::size_t c = 0; c < d; ++c)
        if (!free[c]) dist += std::abs(double(train(j, c)) - double(test(i, c)));
      if (dist < best_d) best_d = dist, best = j;
    }
    for (std::size_t c = 0; c < d; ++c)
      if (free[c]) out(i, c) = train(best, c);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<Comm> comm = start_comm("rbm", argc, argv);
  if (!comm) return 1;
  const int rank = comm->rank(), ranks = comm->size();
  const bool root = comm->root();
  CLI::App app{
      "rbm: binary RBMs by CD-1, CD-k and PCD on the digits, with exact or AIS likelihoods", "rbm"};
  Flags f;
  app.add_option("--methods", f.methods,
                 "comma-separated: cd<k> (CD-k from the data), pcd[<k>] (persistent), ppt[<k>] "
                 "(persistent parallel tempering)")
      ->capture_default_str();
  app.add_option("--pt-levels", f.pt_levels,
                 "inverse temperatures of ppt's ladder, evenly spaced from 1 to 0")
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  app.add_option("--hidden", f.hidden, "hidden units")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--epochs", f.epochs, "epochs")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--batch", f.batch, "mini-batch size")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--test-size", f.test_size,
                 "held-out digits (Fashion-MNIST uses its own 10000-image test set)")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  app.add_option("--exact-max", f.exact_max, "exact log Z up to this many hidden units, AIS above")
      ->check(CLI::Range(1, 24))
      ->capture_default_str();
  app.add_option("--ais-runs", f.ais_runs, "AIS runs")
      ->check(CLI::Range(2, 1000000))
      ->capture_default_str();
  app.add_option("--ais-temps", f.ais_temps, "AIS intermediate temperatures")
      ->check(CLI::Range(2, 10000000))
      ->capture_default_str();
  app.add_option("--sample-sweeps", f.sample_sweeps,
                 "Gibbs sweeps from noise for the sample pictures")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--lr", f.lr, "learning rate (decays linearly to 0)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--momentum", f.momentum, "SGD momentum")
      ->check(CLI::Range(0.0, 0.999))
      ->capture_default_str();
  app.add_option("--weight-decay", f.weight_decay, "L2 weight decay")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--binarize", f.binarize,
                 "threshold (at 0.5) or sample (Bernoulli of the grey level)")
      ->check(CLI::IsMember({"threshold", "sample"}))
      ->capture_default_str();
  app.add_option("--seed", f.seed, "seed")->capture_default_str();
  app.add_option("--out", f.out, "base folder of runs")->capture_default_str();
  app.add_option("--data-dir", f.data_dir,
                 "where the digits are (default: $EBL_DATA_DIR, then the installed or source copy)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--resume", f.resume,
                 "continue from the checkpoint.bin of an earlier run with the same flags (only "
                 "--epochs and the evaluation flags may change)")
      ->check(CLI::ExistingFile);
  app.add_option("--stop-after-epochs", f.stop_after_epochs,
                 "stop after this many epochs (over all methods) in this invocation, leaving a "
                 "checkpoint to --resume from (0: run to the end)")
      ->capture_default_str();
  app.add_flag("--fashion", f.fashion,
               "Fashion-MNIST (28x28, installed on demand) instead of the digits");
  app.add_flag("--smoke", f.smoke, "a few steps of everything, for CI");
  if (auto code = parse_flags(app, argc, argv)) return *code;  // the same on every rank
  if (f.smoke)
    SmokeSizes{app}("--epochs", f.epochs, 2)("--ais-runs", f.ais_runs, 10)(
        "--ais-temps", f.ais_temps, 50)("--sample-sweeps", f.sample_sweeps, 10);
  try {
    if (f.batch % std::size_t(ranks) != 0)
      throw FlagError(fmt::format("--batch {} must be a multiple of the {} ranks", f.batch, ranks));
    const std::size_t local_batch = f.batch / std::size_t(ranks);
    std::vector<Method> methods;
    for (const auto& m : parse_list("--methods", f.methods))
      methods.push_back(parse_method(m, f.pt_levels));
    auto [train_set, test_set] = load_train_test(f.fashion, f.test_size, f.seed, f.data_dir);
    Rng data_rng(f.seed);
    Array<float> trf = f.binarize == "threshold" ? binarize_threshold(train_set.x)
                                                 : binarize_sample(train_set.x, data_rng);
    Array<float> tef = f.binarize == "threshold" ? binarize_threshold(test_set.x)
                                                 : binarize_sample(test_set.x, data_rng);
    Array<T> train = xt::cast<T>(trf), test = xt::cast<T>(tef);
    const std::size_t nv = train.shape()[1], n = train.shape()[0],
                      side = std::size_t(std::lround(std::sqrt(double(nv))));
    require_fits_memory(mlp_bytes({double(nv), double(f.hidden)},
                                  double(std::max({f.batch, f.ais_runs, n, test.shape()[0]}))),
                        "--hidden, --batch and --ais-runs");
    const bool exact = f.hidden <= f.exact_max;
    // pseudo-likelihood costs V free energies per image: it is taken on the first 500 test images
    const std::size_t n_pl = std::min<std::size_t>(500, test.shape()[0]);
    Array<T> pl_rows = Array<T>::from_shape({n_pl, nv});
    std::copy_n(test.data(), n_pl * nv, pl_rows.data());

    // this rank's shard of the training images: rows rank, rank + R, rank + 2R, ...
    const std::size_t shard = (n - std::size_t(rank) + std::size_t(ranks) - 1) / std::size_t(ranks);
    const nlohmann::json config = f;
    // Where a resumed run starts: method `first_method`, after `first_epoch` of its epochs.
    std::optional<Checkpoint> resumed;
    std::size_t first_method = 0, first_epoch = 0;
    if (!f.resume.empty()) {
      resumed = load_checkpoint(*comm, f.resume);  // refuses a corrupt or truncated file
      check_resume_config(*resumed, config, kMayDifferOnResume, f.resume);
      require_same_ranks(*resumed, *comm, f.resume);         // like a resume under other flags
      resumed = rank_view(*resumed, rank, ranks, f.resume);  // this rank's chains and generator
      first_method = resumed->integer_in("method_index", 0, methods.size() - 1);
      first_epoch = resumed->integer_in("epoch", 0, f.epochs);
      (void)resumed->required_text("curves");
      {  // everything the training loop will read, read once now into throwaway objects: a
         // CRC-valid file with impossible contents is refused before the run folder is made
        Rng r0(1);
        Rbm<T> m0(nv, f.hidden, r0);
        SGD<T> o0(m0.parameters(), {.lr = f.lr, .momentum = f.momentum});
        GibbsChains<T> c0;
        rbm_restore_state(*resumed, m0, o0, c0, r0, "current/");
        (void)resumed->permutation("current/perm", shard);
        for (std::size_t k = 0; k < first_method; ++k)
          for (auto* p : m0.parameters())
            resumed->get(fmt::format("final/{}/param/{}", k, p->name), p->value);
      }
      if (root)
        fmt::print("resuming {} at method {} epoch {}\n", f.resume, methods[first_method].name,
                   first_epoch);
    }

    fs::path dir;  // made and written by rank 0 only
    if (root) {
      dir = make_run_dir(f.out, "rbm",
                         fmt::format("{}-seed{}", f.fashion ? "fashion" : "digits", f.seed));
      write_json(dir / "config.json", config);
      fmt::print("rbm -> {}\n{}\n", dir.string(), config.dump());
      if (ranks > 1)
        fmt::print("data-parallel: {}, {} rows per rank\n", comm->describe(), local_batch);
    }

    Csv curves({"method_index", "epoch", "train_ll", "test_ll", "test_pll"});
    if (resumed) curves.restore(resumed->required_text("curves"));
    json metrics = json::object();
    std::string md = fmt::format(
        "| method | train log-lik. | test log-lik. | test pseudo-log-lik. (500 images) | log Z "
        "({}) |{}\n|---|---:|---:|---:|---:|{}\n",
        exact ? "exact" : "AIS", exact ? "" : " log Z (reverse AIS from the test images) |",
        exact ? "" : "---:|");
    Progress bar("rbm", long(methods.size() * f.epochs));
    long done = 0, done_here = 0;
    std::vector<std::string> pictures, titles;
    Checkpoint finals;  // the final weights of each finished method, for later checkpoints
    json inpainting = json::object();
    std::string imd =
        "| method | min free energy: wrong pixels | Gibbs (conditional mean): wrong pixels |\n"
        "|---|---:|---:|\n";
    const Array<double> base = base_rate_bias(train);
    for (std::size_t mi = 0; mi < methods.size(); ++mi) {
      const Method& meth = methods[mi];
      Rng rng(f.seed + 1);          // the same initialisation and batches for every method
      Rbm<T> m(nv, f.hidden, rng);  // the same weights on every rank
      for (int r = 0; r < rank; ++r) rng.jump();  // then each rank's own stream (rank 0: serial)
      SGD<T> opt(m.parameters(),
                 {.lr = f.lr, .momentum = f.momentum, .weight_decay = f.weight_decay});
      GibbsChains<T> chains{.v = rng.uniform_array<T>({local_batch, nv}), .h = {}};
      Array<T> batch(Shape{local_batch, nv});
      sample_bernoulli(chains.v, rng);
      std::vector<std::size_t> perm(shard);  // an order of the shard's rows
      for (std::size_t i = 0; i < shard; ++i) perm[i] = i;
      // (the global batch count: every rank takes as many steps, each from its own shard)
      const std::size_t batches = n / f.batch, total = f.epochs * batches;
      std::size_t epoch_start = 1;
      if (resumed && mi < first_method) {  // finished before the checkpoint: its final weights
        for (auto* p : m.parameters())
          resumed->get(fmt::format("final/{}/param/{}", mi, p->name), p->value);
        epoch_start = f.epochs + 1;
        done += long(f.epochs);
      } else if (resumed && mi == first_method) {
        rbm_restore_state(*resumed, m, opt, chains, rng, "current/");
        perm = resumed->permutation("current/perm", shard);
        epoch_start = first_epoch + 1;
        done += long(first_epoch);
      }
      std::size_t step = (epoch_start - 1) * batches;
      RbmWorkspace<T> ws;
      AisResult last_z, last_reverse;
      auto log_z = [&](bool final_eval) {
        if (exact) return rbm_exact_log_z(m);
        if (!final_eval)
          return std::numeric_limits<
              double>::quiet_NaN();                // AIS only at the end: it is the expensive part
        Rng arng = rank_stream(f.seed + 2, rank);  // the runs split across the ranks
        last_z = rbm_ais(*comm, m, base, f.ais_runs, f.ais_temps, arng);
        // Reverse AIS from test images (RAISE): an upper estimate of log Z as far as the images
        // look like the model's own samples; the forward estimate is a lower one.
        Array<double> starts(Shape{std::min(f.ais_runs, test.shape()[0]), nv});
        for (std::size_t r = 0; r < starts.shape()[0]; ++r)
          for (std::size_t i = 0; i < nv; ++i) starts(r, i) = double(test(r, i));
        last_reverse = rbm_reverse_ais(*comm, m, base, starts, f.ais_temps, arng);
        return last_z.log_z;
      };
      // Everything needed to continue: the finished methods' weights, this method's trainer
      // state and data order, the curves so far, and the flags to check a resume against.
      auto save_checkpoint = [&](std::size_t epochs_done) {
        Checkpoint c;
        c.strings["config"] = config.dump();
        c.strings["curves"] = curves.text();
        c.integers["method_index"] = mi;
        c.integers["epoch"] = epochs_done;
        for (std::size_t k = 0; k < mi; ++k)
          for (const auto& name : {"W", "b", "c"}) {
            const std::string key = fmt::format("final/{}/param/{}", k, name);
            c.arrays[key] = finals.arrays.at(key);
          }
        rbm_save_state(c, m, opt, chains, rng, "current/");
        Array<double> p(Shape{shard});
        for (std::size_t i = 0; i < shard; ++i) p(i) = double(perm[i]);
        c.put("current/perm", p);
        const Checkpoint all = gather_checkpoint(*comm, c);  // collective: every rank's state
        if (root) all.save(dir / "checkpoint.bin");
      };
      double tr_ll = NAN, te_ll = NAN, pll = NAN, lz = NAN;
      for (std::size_t epoch = epoch_start; epoch <= f.epochs; ++epoch) {
        for (std::size_t i = shard; i-- > 1;) std::swap(perm[i], perm[rng.below(i + 1)]);
        for (std::size_t bi = 0; bi < batches; ++bi, ++step) {
          for (std::size_t r = 0; r < local_batch; ++r)
            std::copy_n(
                &train(perm[bi * local_batch + r] * std::size_t(ranks) + std::size_t(rank), 0), nv,
                &batch(r, 0));
          opt.options().lr = f.lr * (1 - double(step) / double(total));
          rbm_train_step(m, opt, batch, chains, meth.train, rng, ws, comm.get());
        }
        check_replicas(*comm, m.parameters(), long(step));  // the ranks still train one model
        lz = log_z(epoch == f.epochs);
        tr_ll = rbm_average_loglik(*comm, m, train, lz);
        te_ll = rbm_average_loglik(*comm, m, test, lz);
        pll = rbm_pseudo_loglik(m, pl_rows);
        curves.row({double(mi), double(epoch), tr_ll, te_ll, pll});
        if (root)
          bar.update(++done, fmt::format("{} epoch {} test LL {:.3f} PLL {:.3f}", meth.name, epoch,
                                         te_ll, pll));
        save_checkpoint(epoch);
        if (f.stop_after_epochs > 0 && ++done_here == long(f.stop_after_epochs)) {
          if (root) {
            curves.save(dir / "curves.csv");
            fmt::print("\nstopped after {} epochs; continue with --resume {}\n", done_here,
                       (dir / "checkpoint.bin").string());
          }
          return 0;
        }
      }
      if (epoch_start > f.epochs) {  // nothing trained here: evaluate the weights as they are
        lz = log_z(true);
        tr_ll = rbm_average_loglik(*comm, m, train, lz);
        te_ll = rbm_average_loglik(*comm, m, test, lz);
        pll = rbm_pseudo_loglik(m, pl_rows);
      }
      for (auto* p : m.parameters())
        finals.put(fmt::format("final/{}/param/{}", mi, p->name), p->value);
      metrics[meth.name] = {{"train_loglik", tr_ll},
                            {"test_loglik", te_ll},
                            {"test_pseudo_loglik", pll},
                            {"log_z", lz},
                            {"log_z_method", exact ? "exact" : "ais"}};
      if (!chains.swaps_proposed.empty()) {  // persistent parallel tempering: swap rates
        std::vector<double> rates;
        for (std::size_t k = 0; k < chains.swaps_proposed.size(); ++k)
          rates.push_back(double(chains.swaps_accepted[k]) / double(chains.swaps_proposed[k]));
        metrics[meth.name]["swap_rates"] = rates;
      }
      if (!exact) {
        metrics[meth.name]["log_z_std_err"] = last_z.std_err;
        metrics[meth.name]["log_z_reverse"] = last_reverse.log_z;
        metrics[meth.name]["log_z_reverse_std_err"] = last_reverse.std_err;
      }
      md += fmt::format(
          "| {} | {:.3f} | {:.3f} | {:.3f} | {:.3f}{} |{}\n", meth.name, tr_ll, te_ll, pll, lz,
          exact ? "" : fmt::format(" ± {:.3f}", last_z.std_err),
          exact ? "" : fmt::format(" {:.3f} ± {:.3f} |", last_reverse.log_z, last_reverse.std_err));
      // pictures: filters (up to 64 hidden units) and samples (64 chains from noise); rank 0
      if (side * side == nv && root) {
        const std::size_t shown = std::min<std::size_t>(64, f.hidden);
        Array<T> filters(Shape{shown, nv});
        for (std::size_t j = 0; j < shown; ++j)
          for (std::size_t i = 0; i < nv; ++i) filters(j, i) = m.W.value(i, j);
        save_tiles(dir / fmt::format("filters_{}.csv", meth.name), filters, side, 8, true);
        Rng srng(f.seed + 3);
        Array<T> v = srng.uniform_array<T>({64, nv}), h;
        sample_bernoulli(v, srng);
        // one sweep at a time (the same draws as all at once), following F(v) of every chain:
        // the second half's effective sample size and split-R̂ say whether the pictures' chains
        // have mixed (Gibbs accepts every move: its acceptance is 1)
        Traces free_energy(64);
        for (int sweep = 0; sweep < f.sample_sweeps; ++sweep) {
          block_gibbs(m, v, h, 1, srng);
          if (2 * sweep < f.sample_sweeps) continue;
          const std::vector<double> fe = rbm_free_energies(m, v);
          for (std::size_t c = 0; c < 64; ++c) free_energy[c].push_back(fe[c]);
        }
        if (free_energy[0].size() >= kMinDrawsForEss) {
          metrics[meth.name]["samples_free_energy_ess"] = effective_sample_size(free_energy);
          metrics[meth.name]["samples_free_energy_rhat"] = split_rhat(free_energy);
          metrics[meth.name]["samples_gibbs_acceptance"] = 1.0;
        }
        save_tiles(dir / fmt::format("samples_{}.csv", meth.name), v, side, 8, false);
        pictures.push_back(fmt::format("filters_{}", meth.name));
        titles.push_back(fmt::format("{}: weights of the hidden units", meth.name));
        pictures.push_back(fmt::format("samples_{}", meth.name));
        titles.push_back(fmt::format("{}: samples after {} Gibbs sweeps from noise", meth.name,
                                     f.sample_sweeps));
        // inpainting the test images' bottom halves (its own generator: nothing above changes)
        Rng irng(f.seed + 4);
        InpaintResult ip = inpaint(m, test, side, irng, std::max(8, f.sample_sweeps / 5));
        inpainting[meth.name] = {{"free_energy_error", ip.free_energy}, {"gibbs_error", ip.gibbs}};
        imd += fmt::format("| {} | {:.3f} | {:.3f} |\n", meth.name, ip.free_energy, ip.gibbs);
        // up to 8 images: truth, masked, free-energy restoration, Gibbs restoration (one row each)
        const std::vector<bool> hid = hidden_half(side);
        const std::size_t ni = std::min<std::size_t>(8, test.shape()[0]);
        Array<T> show(Shape{4 * ni, nv});
        for (std::size_t k = 0; k < ni; ++k)
          for (std::size_t c = 0; c < nv; ++c) {
            show(k, c) = test(k, c);
            show(ni + k, c) = hid[c] ? T(0.5) : test(k, c);
            show(2 * ni + k, c) = ip.fe_restored(k, c);
            show(3 * ni + k, c) = ip.gibbs_restored(k, c);
          }
        save_tiles(dir / fmt::format("inpaint_{}.csv", meth.name), show, side, ni, false);
        pictures.push_back(fmt::format("inpaint_{}", meth.name));
        titles.push_back(fmt::format(
            "{}: truth, bottom half hidden, restored by min F, by Gibbs (rows)", meth.name));
      }
    }
    if (!root) return 0;
    curves.save(dir / "curves.csv");
    const int status = check_finite("rbm", metrics);
    write_json(dir / "metrics.json", metrics);
    write_file_atomic(dir / "results.md", md);
    if (side * side == nv) {  // inpainting: the nearest-neighbour baseline, then the table
      const double nn =
          pixel_error(nearest_neighbour_inpaint(train, test, side), test, hidden_half(side));
      inpainting["nearest_neighbour_error"] = nn;
      const double mlp = pixel_error(
          mlp_inpaint(train, test, side, f.seed + 5, f.smoke ? 20 : 3000), test, hidden_half(side));
      inpainting["mlp_energy_error"] = mlp;
      imd += fmt::format("| MLP energy (PCD, Langevin), min E | {:.3f} | |\n", mlp);
      imd += fmt::format("| nearest neighbour (baseline) | {:.3f} | |\n", nn);
      write_json(dir / "inpainting.json", inpainting);
      write_file_atomic(dir / "inpainting.md", imd);
    }
    std::vector<std::string> outs;
    for (const auto& p : pictures) outs.push_back(p + ".png");
    plot(dir, "pictures.gp", tiles_script(pictures, titles), outs);
    std::string cs =
        "set datafile separator ','\nset terminal pngcairo size 1000,400 font ',10'\nset output "
        "'curves.png.tmp'\n"
        "set multiplot layout 1,2\nset xlabel 'epoch'\nset key bottom right\n";
    std::string ll = fmt::format("set title 'test log-likelihood ({})'\nplot ",
                                 exact ? "exact" : "AIS at the end only");
    std::string pl = "set title 'test pseudo-log-likelihood'\nplot ";
    for (std::size_t mi = 0; mi < methods.size(); ++mi) {
      ll += fmt::format("{}'curves.csv' using ($1=={} ? $2 : NaN):4 with lines title '{}'",
                        mi ? ", " : "", mi, methods[mi].name);
      pl += fmt::format("{}'curves.csv' using ($1=={} ? $2 : NaN):5 with lines title '{}'",
                        mi ? ", " : "", mi, methods[mi].name);
    }
    plot(dir, "curves.gp", cs + ll + "\n" + pl + "\nunset multiplot\n", {"curves.png"});
    fmt::print("\n{}\noutputs in {} ({:.0f}s)\n", md, dir.string(), bar.seconds());
    return status;
  } catch (...) {
    return exit_on_error(*comm, "rbm");
  }
}
