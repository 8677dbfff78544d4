// jem: is a classifier secretly an energy-based model, and does training it as one help? The same
// network trained two ways — cross-entropy alone (the baseline) and JEM's hybrid objective
// (ebm/jem.hpp) — with the same optimiser, schedule and epochs, on the 8×8 digits and on
// Fashion-MNIST, measured on what the seed claims JEM improves:
//   accuracy; calibration (ECE and MCE over 15 bins, a reliability diagram); robustness (accuracy
//   under PGD, L∞ at ε = 0.01, 0.03, 0.1 and L2 at ε = 0.5 on the [0, 1] pixel scale, 20 steps
//   with a random start); out-of-distribution detection (AUROC of log p(x), max_y p(y | x) and
//   −‖∇ₓ log p(x)‖ against OOD sets made from data at hand). Mean ± sd over seeds.
// Pixels are mapped to [−1, 1] as in JEM, so every ε is doubled on the model's scale.
//
// Output, in a new folder runs/jem/seed<seed>: config.json, results.{md,csv,json}, per data set
// reliability_<data>.png, samples_<data>.png (JEM: buffer samples by predicted class, fresh
// class-conditional chains) and log_px_<data>.png (histograms of log p(x), in and out).
//
// Data-parallel under MPI (mpirun -np R build/experiments/jem ...): each rank trains on its shard
// of the training images (rows rank, rank + R, ...; ⌊n/R⌋ of them per epoch), with --batch / R
// images per step, its own SGLD buffer and generator; the gradients are averaged every step
// (JemTrainer::set_comm). Rank 0 evaluates and writes every output. One process: the serial run.
#include <cmath>

#include "autodiff/conv_layers.hpp"
#include "datasets/images.hpp"
#include "ebm/jem.hpp"
#include "experiments/common/mpi.hpp"
#include "experiments/common/run.hpp"
#include "experiments/common/tiles.hpp"
#include "metrics/classification.hpp"

using namespace ebl;
using namespace ebl::xp;
using T = float;

namespace {

struct Flags {
  std::string datasets = "digits,fashion", net = "mlp";
  std::size_t seeds = 2, hidden = 256, batch = 64, buffer = 10000, eval_size = 2000;
  std::size_t digits_epochs = 100, fashion_epochs = 10;
  double lr = 1e-3, alpha = 0, sgld_step = 1, sgld_noise = 0.01, reinit = 0.05, data_noise = 0.03;
  long warmup = 200;
  int sgld_steps = 20, sample_steps = 100, pgd_steps = 20, threads = 2;
  bool per_class_buffer = false;
  std::uint64_t seed = 0;
  std::string out = "runs", data_dir, resume;
  std::size_t stop_after_epochs = 0;
  bool smoke = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Flags, datasets, net, seeds, hidden, batch, buffer, eval_size,
                                   digits_epochs, fashion_epochs, lr, alpha, sgld_step, sgld_noise,
                                   reinit, data_noise, warmup, sgld_steps, sample_steps, pgd_steps,
                                   threads, per_class_buffer, seed, out, data_dir, resume,
                                   stop_after_epochs, smoke)

// What a resumed run may change: where its output goes, where it resumes from, when it stops.
const std::set<std::string> kMayDifferOnResume = {"out", "resume", "stop_after_epochs"};

// A data set on JEM's scale, [−1, 1], with its image side.
struct Data {
  std::string name;
  std::size_t side = 0;
  Array<T> train, test;
  std::vector<std::size_t> ytrain, ytest;
};
Array<T> to_signed(const Array<float>& x) {
  Array<T> y = Array<T>::from_shape({x.shape()[0], x.shape()[1]});
  for (std::size_t k = 0; k < x.size(); ++k) y.data()[k] = T(2 * x.data()[k] - 1);
  return y;
}

// Fashion's 28×28 to the digits' 8×8: the central 24×24 averaged over 3×3 blocks.
Array<T> down_to_8(const Array<T>& x) {
  const std::size_t n = x.shape()[0];
  Array<T> y = Array<T>::from_shape({n, 64});
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t r = 0; r < 8; ++r)
      for (std::size_t c = 0; c < 8; ++c) {
        double s = 0;
        for (std::size_t a = 0; a < 3; ++a)
          for (std::size_t b = 0; b < 3; ++b) s += x(i, (2 + 3 * r + a) * 28 + 2 + 3 * c + b);
        y(i, r * 8 + c) = T(s / 9);
      }
  return y;
}
// The digits' 8×8 to 28×28: each pixel a 3×3 block, a border of background (−1) around.
Array<T> up_to_28(const Array<T>& x) {
  const std::size_t n = x.shape()[0];
  Array<T> y(Shape{n, 784}, T(-1));
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t r = 0; r < 24; ++r)
      for (std::size_t c = 0; c < 24; ++c) y(i, (2 + r) * 28 + 2 + c) = x(i, (r / 3) * 8 + c / 3);
  return y;
}
Array<T> flip_vertical(const Array<T>& x, std::size_t side) {
  Array<T> y = x;
  for (std::size_t i = 0; i < x.shape()[0]; ++i)
    for (std::size_t r = 0; r < side; ++r)
      std::copy_n(&x(i, (side - 1 - r) * side), side, &y(i, r * side));
  return y;
}

struct Model {
  std::shared_ptr<ClassifierEbm<T>> ebm;
};
Model make_model(const Flags& f, std::size_t side, std::size_t classes, Rng& rng) {
  if (f.net == "cnn") {
    CnnSpec spec{.channels = 1,
                 .height = side,
                 .width = side,
                 .blocks = {{.channels = 32, .kernel = 3, .stride = 1, .padding = 1, .pool = 2},
                            {.channels = 64, .kernel = 3, .stride = 1, .padding = 1, .pool = 2}},
                 .hidden = {128},
                 .outputs = classes};
    return {std::make_shared<ClassifierEbm<T>>(
        std::make_shared<Cnn<T>>(spec, Activation::Silu, rng), classes)};
  }
  return {std::make_shared<ClassifierEbm<T>>(
      std::make_shared<MLP<T>>(std::vector<std::size_t>{side * side, f.hidden, f.hidden, classes},
                               Activation::Silu, rng),
      classes)};
}

// The results of one trained model on one data set.
struct Eval {
  double accuracy = 0, ece = 0, mce = 0;
  std::vector<double> robust;              // per attack
  std::vector<std::vector<double>> auroc;  // [ood set][score]
  Calibration cal;
  OodScores in_scores;
  std::vector<OodScores> out_scores;
};

struct Attack {
  std::string name;
  PgdNorm norm;
  double eps;  // on the [0, 1] pixel scale
};
const std::vector<Attack> kAttacks = {{"Linf 0.01", PgdNorm::Linf, 0.01},
                                      {"Linf 0.03", PgdNorm::Linf, 0.03},
                                      {"Linf 0.1", PgdNorm::Linf, 0.1},
                                      {"L2 0.5", PgdNorm::L2, 0.5}};
const std::vector<std::string> kScores = {"log p(x)", "max p(y|x)", "-|grad log p(x)|"};

double accuracy_of(ClassifierEbm<T>& m, const Array<T>& x, const std::vector<std::size_t>& y) {
  const Array<double> p = class_probabilities(m, x);
  double acc = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double* row = &p(i, 0);
    acc += std::size_t(std::max_element(row, row + p.shape()[1]) - row) == y[i];
  }
  return acc / double(y.size());
}

Eval evaluate(ClassifierEbm<T>& m, const Data& d,
              const std::vector<std::pair<std::string, Array<T>>>& ood, const Flags& f,
              std::uint64_t seed) {
  Eval e;
  const Array<double> p = class_probabilities(m, d.test);
  const std::size_t n = d.ytest.size(), k = p.shape()[1];
  std::vector<double> conf(n);
  std::vector<char> ok(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double* row = &p(i, 0);
    const std::size_t pred = std::size_t(std::max_element(row, row + k) - row);
    conf[i] = row[pred];
    ok[i] = pred == d.ytest[i];
    e.accuracy += ok[i] / double(n);
  }
  e.cal = calibration(conf, ok, 15);
  e.ece = e.cal.ece;
  e.mce = e.cal.mce;
  // robustness on the first eval_size test images
  const std::size_t na = std::min(n, f.eval_size);
  Array<T> xa = Array<T>::from_shape({na, d.test.shape()[1]});
  std::copy_n(d.test.data(), xa.size(), xa.data());
  const std::vector<std::size_t> ya(d.ytest.begin(), d.ytest.begin() + std::ptrdiff_t(na));
  Rng rng(seed);
  for (const Attack& a : kAttacks) {
    const Array<T> adv =
        pgd_attack(m, xa, ya, {.norm = a.norm, .eps = 2 * a.eps, .steps = f.pgd_steps}, rng);
    e.robust.push_back(accuracy_of(m, adv, ya));
  }
  e.in_scores = ood_scores(m, xa);
  for (const auto& [name, x] : ood) {
    e.out_scores.push_back(ood_scores(m, x));
    const OodScores& o = e.out_scores.back();
    e.auroc.push_back({auroc(e.in_scores.log_px, o.log_px).auroc,
                       auroc(e.in_scores.max_prob, o.max_prob).auroc,
                       auroc(e.in_scores.neg_grad_norm, o.neg_grad_norm).auroc});
  }
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<Comm> comm = start_comm("jem", argc, argv);
  if (!comm) return 1;
  const int rank = comm->rank(), ranks = comm->size();
  const bool root = comm->root();
  const std::size_t R = std::size_t(ranks);
  CLI::App app{
      "jem: a classifier trained as an EBM (JEM) against the same classifier trained "
      "with cross-entropy: accuracy, calibration, robustness, OOD detection",
      "jem"};
  Flags f;
  app.add_option("--datasets", f.datasets, "comma-separated: digits, fashion")
      ->capture_default_str();
  app.add_option("--net", f.net, "mlp (two hidden layers) or cnn")
      ->check(CLI::IsMember({"mlp", "cnn"}))
      ->capture_default_str();
  app.add_option("--seeds", f.seeds, "seeds per model (mean ± sd)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--hidden", f.hidden, "width of the MLP's hidden layers")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  app.add_option("--batch", f.batch, "mini-batch (and negative samples) per step")
      ->check(CLI::Range(2, 1 << 20))
      ->capture_default_str();
  app.add_option("--buffer", f.buffer, "replay buffer size")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  app.add_option("--eval-size", f.eval_size, "test images attacked and scored for OOD")
      ->check(CLI::Range(2, 1 << 24))
      ->capture_default_str();
  app.add_option("--digits-epochs", f.digits_epochs, "epochs on the digits")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--fashion-epochs", f.fashion_epochs, "epochs on Fashion-MNIST")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--lr", f.lr, "Adam's learning rate after warm-up")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", f.warmup, "steps of linear learning-rate warm-up")
      ->check(CLI::Range(0L, 100000000L))
      ->capture_default_str();
  app.add_option("--alpha", f.alpha, "weight of alpha (E+^2 + E-^2)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  app.add_option("--sgld-steps", f.sgld_steps, "SGLD steps per training step (JEM: 20)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--sgld-step", f.sgld_step, "SGLD step size (JEM: 1)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--sgld-noise", f.sgld_noise, "SGLD noise sd (JEM: 0.01)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--reinit", f.reinit, "chance a buffer chain restarts from noise (JEM: 0.05)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--data-noise", f.data_noise, "Gaussian noise on the data (JEM: 0.03)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_flag("--per-class-buffer", f.per_class_buffer, "one replay buffer per class");
  app.add_option("--sample-steps", f.sample_steps, "SGLD steps of the fresh chains pictured")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--pgd-steps", f.pgd_steps, "PGD steps")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--threads", f.threads, "threads for the SGLD chains")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--seed", f.seed, "first seed")->capture_default_str();
  app.add_option("--out", f.out, "base folder of runs")->capture_default_str();
  app.add_option("--data-dir", f.data_dir, "where the digits are (default: the library's data)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--resume", f.resume,
                 "continue an interrupted or diverged run from its folder: finished models are "
                 "loaded, the unfinished one continues from its last epoch (same flags)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--stop-after-epochs", f.stop_after_epochs,
                 "stop after this many epochs (over all models) in this invocation, leaving the "
                 "checkpoints to --resume from (0: run to the end)")
      ->capture_default_str();
  app.add_flag("--smoke", f.smoke, "a few steps on the digits, for CI");
  if (auto code = parse_flags(app, argc, argv)) return *code;
  fs::path run_dir;
  if (f.smoke)
    SmokeSizes{app}("--datasets", f.datasets, "digits")("--seeds", f.seeds, 1)(
        "--digits-epochs", f.digits_epochs, 1)("--hidden", f.hidden, 16)("--buffer", f.buffer, 200)(
        "--eval-size", f.eval_size, 50)("--sgld-steps", f.sgld_steps, 2)(
        "--sample-steps", f.sample_steps, 2)("--pgd-steps", f.pgd_steps, 2);
  try {
    if (f.batch % R != 0)
      throw FlagError(fmt::format("--batch {} must be a multiple of the {} ranks", f.batch, ranks));
    const std::size_t local_batch = f.batch / R;
    // Data, on JEM's scale.
    std::vector<Data> sets;
    std::optional<Array<T>> fashion_test_small;  // Fashion's test images, for the digits' OOD set
    const std::vector<std::string> names = parse_list("--datasets", f.datasets);
    for (const auto& name : names)
      if (name != "digits" && name != "fashion")
        throw FlagError(
            fmt::format("--datasets: unknown data set '{}' (expected digits, fashion)", name));
    {  // the largest arrays at once: the network in training and the replay buffer
      const double dim = std::count(names.begin(), names.end(), "fashion") ? 784 : 64;
      require_fits_memory(mlp_bytes({dim, double(f.hidden), double(f.hidden), 10},
                                    double(f.batch) * 2 + double(f.eval_size)) +
                              8.0 * dim * double(f.buffer),
                          "--hidden, --batch, --buffer and --eval-size");
    }
    if (!f.resume.empty()) {
      // models run in order, so a run that can be resumed has its first model's checkpoint
      const std::string first = fmt::format("ckpt_{}_baseline_seed{}.bin", names[0], f.seed);
      std::string found = root && fs::exists(fs::path(f.resume) / first) ? "1" : "0";
      comm->broadcast(found);
      if (found != "1")
        throw FlagError(fmt::format(
            "--resume {}: no checkpoint of this run there ({} is missing: a run with other "
            "--seed or --datasets, or one stopped before its first epoch)",
            f.resume, first));
    }
    {
      for (const std::string& name : names) {
        Data d;
        d.name = name;
        if (name == "digits") {
          auto [tr, te] = load_train_test(false, 500, f.seed, f.data_dir);
          d.side = 8, d.train = to_signed(tr.x), d.test = to_signed(te.x), d.ytrain = tr.y,
          d.ytest = te.y;
        } else if (name == "fashion") {
          auto [tr, te] = load_fashion_on_demand();
          d.side = 28, d.train = to_signed(tr.x), d.test = to_signed(te.x), d.ytrain = tr.y,
          d.ytest = te.y;
          fashion_test_small = down_to_8(d.test);
        } else {
          throw FlagError(
              fmt::format("--datasets: unknown data set '{}' (expected digits, fashion)", name));
        }
        sets.push_back(std::move(d));
      }
    }
    nlohmann::json config = f;
    if (!f.resume.empty()) {
      // every checkpoint of this run in the folder is read and checked now (configuration, data
      // order, epoch, generator), so that a refused one leaves no run folder behind
      // NOTE: each is read again when its model's turn comes; keeping them all (replay buffers
      // of up to 10,000 images each) would cost more memory than the second read costs time
      for (const Data& d : sets) {
        const std::size_t epochs = d.name == "digits" ? f.digits_epochs : f.fashion_epochs;
        for (const bool generative : {false, true})
          for (std::size_t si = 0; si < f.seeds; ++si) {
            const fs::path from =
                fs::path(f.resume) / fmt::format("ckpt_{}_{}_seed{}.bin", d.name,
                                                 generative ? "jem" : "baseline", f.seed + si);
            std::string found = root && fs::exists(from) ? "1" : "0";
            comm->broadcast(found);
            if (found != "1") continue;
            const Checkpoint all = load_checkpoint(*comm, from);
            check_resume_config(all, config, kMayDifferOnResume, from);
            require_same_ranks(all, *comm, from.string());
            const Checkpoint c = rank_view(all, rank, ranks, from.string());
            (void)c.permutation("perm", d.ytrain.size() / R);
            (void)c.integer_in("epoch", 0, epochs);
            Rng r0(1);
            get_rng(c, r0);
          }
      }
    }
    fs::path dir;  // made and written by rank 0 only
    if (root) {
      dir = make_run_dir(f.out, "jem", fmt::format("seed{}", f.seed));
      run_dir = dir;
      write_json(dir / "config.json", config);
      fmt::print("jem -> {}\n{}\n", dir.string(), config.dump());
      if (ranks > 1)
        fmt::print("data-parallel: {}, {} images per rank and step\n", comm->describe(),
                   local_batch);
    }

    json results = json::object();
    std::string md;
    Csv csv({"data", "model", "seed", "accuracy", "ece", "mce", "pgd_linf_0.01", "pgd_linf_0.03",
             "pgd_linf_0.1", "pgd_l2_0.5"});
    long total_steps = 0;
    for (const Data& d : sets) {
      const std::size_t epochs = d.name == "digits" ? f.digits_epochs : f.fashion_epochs;
      total_steps +=
          long(2 * f.seeds * epochs * ((d.ytrain.size() / R + local_batch - 1) / local_batch));
    }
    Progress bar("jem", total_steps);
    long done = 0;
    std::size_t epochs_here = 0;
    for (const Data& d : sets) {
      const std::size_t epochs = d.name == "digits" ? f.digits_epochs : f.fashion_epochs;
      // every rank's shard: rows rank, rank + R, ..., ⌊n/R⌋ of them (one rank: all n)
      const std::size_t n = d.ytrain.size(), shard = n / R,
                        per_epoch = (shard + local_batch - 1) / local_batch;
      const std::size_t dim = d.side * d.side, ne = std::min(d.test.shape()[0], f.eval_size);
      // OOD sets, each of ne images
      Rng ood_rng(f.seed + 1000);
      std::vector<std::pair<std::string, Array<T>>> ood;
      ood.push_back({"noise", ood_rng.uniform_array<T>({ne, dim}, -1, 1)});
      Array<T> constant = Array<T>::from_shape({ne, dim});
      for (std::size_t i = 0; i < ne; ++i)
        std::fill_n(&constant(i, 0), dim, T(ood_rng.uniform(-1, 1)));
      ood.push_back({"constant", constant});
      Array<T> first = Array<T>::from_shape({ne, dim});
      std::copy_n(d.test.data(), first.size(), first.data());
      ood.push_back({"flipped", flip_vertical(first, d.side)});
      if (d.name == "digits" && fashion_test_small) {
        Array<T> fs8 = Array<T>::from_shape({ne, 64});
        std::copy_n(fashion_test_small->data(), fs8.size(), fs8.data());
        ood.push_back({"fashion 8x8", fs8});
      }
      if (d.name == "fashion") {
        auto [tr, te] = load_train_test(false, 500, f.seed, f.data_dir);
        Array<T> up = up_to_28(to_signed(te.x));
        Array<T> upn = Array<T>::from_shape({std::min(ne, up.shape()[0]), 784});
        std::copy_n(up.data(), upn.size(), upn.data());
        ood.push_back({"digits 28x28", upn});
      }

      // per model (baseline first), one evaluation per seed
      std::vector<std::pair<std::string, std::vector<Eval>>> evals;
      for (const bool generative : {false, true}) {
        const std::string model_name = generative ? "JEM" : "baseline (CE)";
        evals.push_back({model_name, {}});
        for (std::size_t si = 0; si < f.seeds; ++si) {
          const std::uint64_t seed = f.seed + si;
          Rng init(seed + 1);
          Model m = make_model(f, d.side, 10, init);
          JemTrainer<T> tr(*m.ebm,
                           {.generative = generative,
                            .lr = f.lr,
                            .warmup_steps = f.warmup,
                            .sgld_steps = f.sgld_steps,
                            .sgld_step = f.sgld_step,
                            .sgld_noise = f.sgld_noise,
                            .buffer_size = f.buffer,
                            .reinit = f.reinit,
                            .per_class_buffer = f.per_class_buffer,
                            .data_noise = f.data_noise,
                            .alpha = f.alpha,
                            .threads = f.threads},
                           rank_stream(seed + 2, rank), dim);
          tr.set_comm(comm.get());
          std::vector<std::size_t> perm(shard), yb(local_batch);  // an order of the shard
          for (std::size_t i = 0; i < shard; ++i) perm[i] = i;
          Array<T> xb(Shape{local_batch, dim});
          // Each model's state after every epoch (atomically, in its own file): the trainer's
          // checkpoint, the data order and the epoch. --resume starts from these.
          const std::string ckpt_name =
              fmt::format("ckpt_{}_{}_seed{}.bin", d.name, generative ? "jem" : "baseline", seed);
          auto save = [&](std::size_t epochs_done) {  // collective: every rank's state
            Checkpoint c = tr.checkpoint();
            c.strings["config"] = config.dump();
            c.integers["epoch"] = epochs_done;
            Array<double> p(Shape{shard});
            for (std::size_t i = 0; i < shard; ++i) p(i) = double(perm[i]);
            c.put("perm", p);
            const Checkpoint all = gather_checkpoint(*comm, c);
            if (root) all.save(dir / ckpt_name);
          };
          std::size_t first_epoch = 0;
          // (rank 0 looks for the file and says whether it is there: the others may not see it)
          std::string found =
              !f.resume.empty() && root && fs::exists(fs::path(f.resume) / ckpt_name) ? "1" : "0";
          comm->broadcast(found);
          if (found == "1") {
            const fs::path from = fs::path(f.resume) / ckpt_name;
            const Checkpoint all = load_checkpoint(*comm, from);
            check_resume_config(all, config, kMayDifferOnResume, from);
            require_same_ranks(all, *comm, from.string());  // like other flags
            const Checkpoint c = rank_view(all, rank, ranks, from.string());
            tr.restore(c);
            perm = c.permutation("perm", shard);
            first_epoch = c.integer_in("epoch", 0, epochs);
            done += long(first_epoch * per_epoch);
            save(first_epoch);  // the new folder holds every model's state too
          }
          for (std::size_t ep = first_epoch; ep < epochs; ++ep) {
            for (std::size_t i = shard; i-- > 1;) std::swap(perm[i], perm[tr.rng().below(i + 1)]);
            for (std::size_t b = 0; b < per_epoch; ++b) {
              const std::size_t start = b * local_batch,
                                size = std::min(local_batch, shard - start);
              xb.resize(Shape{size, dim});
              yb.resize(size);
              for (std::size_t i = 0; i < size; ++i) {
                const std::size_t row = perm[start + i] * R + std::size_t(rank);
                std::copy_n(&d.train(row, 0), dim, &xb(i, 0));
                yb[i] = d.ytrain[row];
              }
              const JemStepStats st = tr.step(xb, yb);
              if (root)
                bar.update(++done,
                           fmt::format("{} {} seed {}: CE {:.3f} E+ {:+.2f} E- {:+.2f}", d.name,
                                       model_name, seed, st.ce, st.e_pos, st.e_neg));
            }
            save(ep + 1);
            if (f.stop_after_epochs > 0 && ++epochs_here == f.stop_after_epochs) {
              if (root)
                fmt::print("\nstopped after {} epochs; continue with --resume {}\n", epochs_here,
                           dir.string());
              return 0;
            }
          }
          if (!root) continue;  // rank 0 evaluates and draws
          evals.back().second.push_back(evaluate(*m.ebm, d, ood, f, seed + 3));
          const Eval& e = evals.back().second.back();
          csv.row(std::vector<std::string>{d.name, model_name},
                  {double(seed), e.accuracy, e.ece, e.mce, e.robust[0], e.robust[1], e.robust[2],
                   e.robust[3]});
          if (si == 0) {
            // pictures of the first seed: the reliability diagram's data, and for JEM samples
            Csv rel({"lo", "hi", "confidence", "accuracy", "count"});
            for (const auto& bin : e.cal.bins)
              rel.row({bin.lo, bin.hi, bin.confidence, bin.accuracy, double(bin.count)});
            rel.save(dir /
                     fmt::format("reliability_{}_{}.csv", d.name, generative ? "jem" : "baseline"));
            if (generative) {
              // buffer samples by predicted class (up to 8 each), then fresh chains per class
              const Array<T>& buf = tr.buffer().chains();
              const Array<double> pb = class_probabilities(*m.ebm, buf);
              Array<T> tiles(Shape{160, dim}, T(-1));
              std::vector<std::size_t> shown(10, 0);
              for (std::size_t i = 0; i < buf.shape()[0]; ++i) {
                const double* row = &pb(i, 0);
                const std::size_t c = std::size_t(std::max_element(row, row + 10) - row);
                if (shown[c] < 8) std::copy_n(&buf(i, 0), dim, &tiles(c * 8 + shown[c]++, 0));
              }
              Rng srng(seed + 4);
              for (std::size_t c = 0; c < 10; ++c) {
                const Array<T> fresh = tr.sample(8, f.sample_steps, c, srng);
                for (std::size_t j = 0; j < 8; ++j)
                  std::copy_n(&fresh(j, 0), dim, &tiles(80 + c * 8 + j, 0));
              }
              Array<T> shown01 = tiles;
              for (auto& v : shown01) v = std::clamp(T((v + 1) / 2), T(0), T(1));
              save_tiles(dir / fmt::format("samples_{}.csv", d.name), shown01, d.side, 16, false);
              // log p(x) + log Z of test images and of each OOD set
              Csv hist({"set", "log_px"});
              for (double v : e.in_scores.log_px) hist.row("test", {v});
              for (std::size_t o = 0; o < ood.size(); ++o)
                for (double v : e.out_scores[o].log_px) hist.row(ood[o].first, {v});
              hist.save(dir / fmt::format("log_px_{}.csv", d.name));
            }
          }
        }
      }
      if (!root) continue;
      // the table of this data set
      json jd = json::object();
      md += fmt::format("### {} ({} train / {} test, {} epochs, {} seeds, {})\n\n", d.name, n,
                        d.ytest.size(), epochs, f.seeds, f.net);
      md += "| model | accuracy | ECE | MCE |";
      for (const auto& a : kAttacks) md += fmt::format(" PGD {} |", a.name);
      md += "\n|---|---:|---:|---:|";
      for (std::size_t a = 0; a < kAttacks.size(); ++a) md += "---:|";
      md += "\n";
      for (const auto& [model_name, es] : evals) {
        auto col = [&](auto get) {
          std::vector<double> v;
          for (const Eval& e : es) v.push_back(get(e));
          return v;
        };
        md += fmt::format("| {} | {} | {} | {} |", model_name,
                          mean_sd(col([](const Eval& e) { return e.accuracy; })),
                          mean_sd(col([](const Eval& e) { return e.ece; })),
                          mean_sd(col([](const Eval& e) { return e.mce; })));
        json jm = {{"accuracy", col([](const Eval& e) { return e.accuracy; })},
                   {"ece", col([](const Eval& e) { return e.ece; })},
                   {"mce", col([](const Eval& e) { return e.mce; })}};
        for (std::size_t a = 0; a < kAttacks.size(); ++a) {
          const auto v = col([a](const Eval& e) { return e.robust[a]; });
          md += fmt::format(" {} |", mean_sd(v));
          jm["pgd"][kAttacks[a].name] = v;
        }
        md += "\n";
        for (std::size_t o = 0; o < ood.size(); ++o)
          for (std::size_t s = 0; s < kScores.size(); ++s)
            jm["ood_auroc"][ood[o].first][kScores[s]] =
                col([o, s](const Eval& e) { return e.auroc[o][s]; });
        jd[model_name] = jm;
      }
      md +=
          "\nOut-of-distribution detection, AUROC (in: test images; higher is better):\n\n| model "
          "| "
          "score |";
      for (const auto& [name, x] : ood) md += fmt::format(" {} |", name);
      md += "\n|---|---|";
      for (std::size_t o = 0; o < ood.size(); ++o) md += "---:|";
      md += "\n";
      for (const auto& [model_name, es] : evals)
        for (std::size_t s = 0; s < kScores.size(); ++s) {
          std::string score = kScores[s];  // (a '|' inside a Markdown table cell is escaped)
          for (std::size_t at = score.find('|'); at != std::string::npos;
               at = score.find('|', at + 2))
            score.replace(at, 1, "\\|");
          md += fmt::format("| {} | {} |", model_name, score);
          for (std::size_t o = 0; o < ood.size(); ++o) {
            std::vector<double> v;
            for (const Eval& e : es) v.push_back(e.auroc[o][s]);
            md += fmt::format(" {} |", mean_sd(v));
          }
          md += "\n";
        }
      md += "\n";
      results[d.name] = jd;
      // pictures of this data set
      plot(dir, fmt::format("pictures_{}.gp", d.name),
           fmt::format(R"(set datafile separator ','
set terminal pngcairo size 520,480 font ',10'
set output 'reliability_{0}.png.tmp'
set title 'reliability ({0}, first seed): accuracy against confidence'
set xrange [0:1]
set yrange [0:1]
set key top left
set xlabel 'confidence'
set ylabel 'accuracy'
plot x with lines dt 2 lc rgb '#808080' title 'calibrated', \
     'reliability_{0}_baseline.csv' using 3:($5 > 0 ? $4 : 1/0) with linespoints pt 7 title 'baseline (CE)', \
     'reliability_{0}_jem.csv' using 3:($5 > 0 ? $4 : 1/0) with linespoints pt 5 title 'JEM'
set terminal pngcairo size 640,480 font ',10'
set output 'log_px_{0}.png.tmp'
set title 'JEM: log p(x) + log Z of test and out-of-distribution images ({0})'
set autoscale
set xlabel 'log p(x) + log Z'
set ylabel 'count'
set style fill transparent solid 0.4
binwidth = 0.5
bin(x) = binwidth * floor(x / binwidth)
plot for [s in "test {1}"] 'log_px_{0}.csv' using (strcol(1) eq s ? bin($2) : 1/0):(1) smooth frequency with boxes title s
)",
                       d.name,
                       [&] {
                         std::string s;
                         for (const auto& [name, x] : ood)
                           if (name.find(' ') == std::string::npos)
                             s += (s.empty() ? "" : " ") + name;
                         return s;
                       }()),
           {fmt::format("reliability_{}.png", d.name), fmt::format("log_px_{}.png", d.name)});
      plot(dir, fmt::format("samples_{}.gp", d.name),
           tiles_script(
               {fmt::format("samples_{}", d.name)},
               {fmt::format("JEM, {}: buffer by predicted class; fresh chains of E(x|y)", d.name)}),
           {fmt::format("samples_{}.png", d.name)});
    }
    if (!root) return 0;
    results["seconds"] = bar.seconds();
    const int status = check_finite("jem", results);
    write_json(dir / "results.json", results);
    csv.save(dir / "results.csv");
    write_file_atomic(dir / "results.md", md);
    fmt::print("\n{}\noutputs in {} ({:.0f} s)\n", md, dir.string(), bar.seconds());
    return status;
  } catch (const DivergenceError& e) {  // raised on every rank at the same step
    if (!root) return 3;
    fmt::print(stderr, "\njem: {}\n", e.what());
    if (!run_dir.empty())
      fmt::print(stderr,
                 "jem: every model's last good epoch is in {} (ckpt_*.bin); continue with "
                 "--resume {}\n",
                 run_dir.string(), run_dir.string());
    return 3;
  } catch (...) {
    return exit_on_error(*comm, "jem");
  }
}
