// latent: latent variables in Boltzmann machines, with exact likelihoods wherever they exist.
//
//   --parts toy2d   Gaussian–Bernoulli RBMs (ebm/gbrbm.hpp; 12 hidden units: a mixture of 4096
//                   Gaussians) on the toy 2-D sets, trained by CD-1 and PCD-10, exact test NLL
//                   (log Z summed over the 2^H hidden states) on the very test set the toy2d
//                   experiment scores its MLP energy on (same generator, same seed).
//   --parts digits  GB-RBMs on the real-valued 8×8 digits (grey levels dequantised: (16p + u)/17,
//                   u ~ U(0,1), then standardised per pixel), exact test log-likelihood for 16
//                   hidden units and AIS (checked against exact at 16) for 64, beside a diagonal
//                   and a full-covariance Gaussian fitted to the training images.
//   --parts dbm     A two-layer DBM (ebm/dbm.hpp) against an RBM of the same number of parameters
//                   on the binarised digits: both small enough for exact held-out log-likelihood
//                   (the DBM's log Z by enumerating h¹, its log p(v) by enumerating h²), over
//                   several seeds; the DBM with and without greedy pre-training, its mean-field
//                   bound and its AIS estimate of log Z beside the exact values, and the cost of a
//                   Gibbs sweep of each model.
//
// Output in runs/latent/seed<seed>: config.json, metrics.json (one object per unit: a model on a
// data set with one seed), results.md, and checkpoint.bin, rewritten after every unit:
// --resume skips the units done and writes the same outputs (timings aside).
#include <chrono>
#include <cmath>
#include <numbers>

#include "datasets/toy2d.hpp"
#include "ebm/dbm.hpp"
#include "ebm/gbrbm.hpp"
#include "ebm/rbm.hpp"
#include "experiments/common/mpi.hpp"
#include "experiments/common/run.hpp"
#include "experiments/common/units.hpp"

using namespace ebl;
using namespace ebl::xp;

namespace {

struct Flags {
  std::string parts = "toy2d,digits,dbm";
  std::string datasets = "8gaussians,checkerboard,rings,moons,2spirals,pinwheel";
  std::size_t toy_hidden = 12, toy_steps = 20000, toy_batch = 100, train_size = 50000,
              toy_test_size = 5000;
  double toy_lr = 0.01;
  std::size_t digits_hidden = 16, digits_hidden_ais = 64, digits_epochs = 100;
  double digits_lr = 0.003;
  std::size_t rbm_hidden = 18, dbm_hidden1 = 16, dbm_hidden2 = 8, large_rbm_hidden = 40,
              large_dbm_hidden1 = 32, large_dbm_hidden2 = 16, seeds = 5, epochs = 500,
              pretrain_epochs = 20, batch = 20, chains = 100, test_size = 500, ais_runs = 100,
              ais_temps = 3000;
  double lr = 0.05;
  std::uint64_t seed = 0;
  bool smoke = false;
  std::string out = "runs", resume, data_dir;
  std::size_t stop_after_units = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Flags, parts, datasets, toy_hidden, toy_steps, toy_batch,
                                   train_size, toy_test_size, toy_lr, digits_hidden,
                                   digits_hidden_ais, digits_epochs, digits_lr, rbm_hidden,
                                   dbm_hidden1, dbm_hidden2, large_rbm_hidden, large_dbm_hidden1,
                                   large_dbm_hidden2, seeds, epochs, pretrain_epochs, batch, chains,
                                   test_size, ais_runs, ais_temps, lr, seed, smoke, out, resume,
                                   data_dir)

const std::set<std::string> kMayDifferOnResume = {"out", "resume", "stop_after_units"};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Rows i of x into batch, i drawn uniformly.
void draw_batch(const Array<double>& x, Array<double>& batch, Rng& rng) {
  const std::size_t n = x.shape()[0], d = x.shape()[1];
  for (std::size_t r = 0; r < batch.shape()[0]; ++r)
    std::copy_n(x.data() + rng.below(n) * d, d, batch.data() + r * d);
}

// A GB-RBM started at the data's moments (b = mean, σ² = variance), W ~ N(0, w_std²), trained by
// Adam on CD-k (persistent: PCD-k, chains started at data rows; tempered: persistent tempering
// over 5 levels, β = 1, ¾, ½, ¼, 0, from the data's moments) with a linearly decaying rate.
struct GbMethod {
  const char* name;
  int k;
  bool persistent, tempered;
};
const GbMethod kGbMethods[] = {
    {"cd1", 1, false, false}, {"pcd10", 10, true, false}, {"ppt1", 1, true, true}};

GaussianRbm<double> train_gbrbm(const Array<double>& train, std::size_t hidden, double w_std,
                                const GbMethod& method, std::size_t steps, std::size_t batch_size,
                                double lr, std::uint64_t seed) {
  const int k = method.k;
  const bool persistent = method.persistent;
  Rng rng(seed);
  const std::size_t d = train.shape()[1];
  GaussianRbm<double> m(d, hidden, rng, w_std);
  const auto [mean, var] = base_moments(train);
  for (std::size_t i = 0; i < d; ++i) m.b.value(i) = mean[i], m.z.value(i) = std::log(var[i]);
  Adam<double> opt(m.parameters(), {.lr = lr});
  GbrbmChains<double> chains;
  Array<double> batch(Shape{batch_size, d});
  if (persistent) {
    chains.v = Array<double>(Shape{batch_size, d});
    draw_batch(train, chains.v, rng);
  }
  const GbrbmTempering ladder{{1.0, 0.75, 0.5, 0.25, 0.0}, mean, var};
  Tape<double> tape;
  for (std::size_t s = 0; s < steps; ++s) {
    draw_batch(train, batch, rng);
    opt.options().lr = lr * (1 - double(s) / double(steps));
    gbrbm_train_step(m, opt, batch, chains, k, persistent, rng, tape,
                     method.tempered ? &ladder : nullptr);
  }
  return m;
}

// Exact log-likelihood of a Gaussian N(mean, Σ) fitted to train (Σ: the sample covariance, or its
// diagonal), averaged over the rows of test.
double gaussian_loglik(const Array<double>& train, const Array<double>& test, bool full) {
  const std::size_t n = train.shape()[0], d = train.shape()[1];
  const auto [mean, var] = base_moments(train);
  Array<double> cov(Shape{d, d}, 0.0);
  for (std::size_t i = 0; i < d; ++i) cov(i, i) = var[i];
  if (full)
    for (std::size_t i = 0; i < d; ++i)
      for (std::size_t j = 0; j < d; ++j)
        if (i != j) {
          double s = 0;
          for (std::size_t r = 0; r < n; ++r)
            s += (train(r, i) - mean[i]) * (train(r, j) - mean[j]);
          cov(i, j) = s / double(n - 1);
        }
  // Cholesky Σ = LLᵀ: log N(x) = −½|L⁻¹(x − μ)|² − Σ log L_ii − (d/2) log 2π
  Array<double> L(Shape{d, d}, 0.0);
  for (std::size_t j = 0; j < d; ++j) {
    double s = cov(j, j);
    for (std::size_t k = 0; k < j; ++k) s -= L(j, k) * L(j, k);
    if (!(s > 0)) throw std::runtime_error("gaussian_loglik: covariance not positive definite");
    L(j, j) = std::sqrt(s);
    for (std::size_t i = j + 1; i < d; ++i) {
      double t = cov(i, j);
      for (std::size_t k = 0; k < j; ++k) t -= L(i, k) * L(j, k);
      L(i, j) = t / L(j, j);
    }
  }
  double logdet = 0;
  for (std::size_t i = 0; i < d; ++i) logdet += std::log(L(i, i));
  double total = 0;
  std::vector<double> y(d);
  for (std::size_t r = 0; r < test.shape()[0]; ++r) {
    double q = 0;
    for (std::size_t i = 0; i < d; ++i) {  // forward substitution L y = x − μ
      double t = test(r, i) - mean[i];
      for (std::size_t k = 0; k < i; ++k) t -= L(i, k) * y[k];
      y[i] = t / L(i, i);
      q += y[i] * y[i];
    }
    total += -0.5 * q - logdet - 0.5 * double(d) * std::log(2 * std::numbers::pi);
  }
  return total / double(test.shape()[0]);
}

// Microseconds per Gibbs sweep per chain, over `sweeps` sweeps of `chains` chains.
template <class Sweep>
double sweep_cost_us(Sweep&& sweep, std::size_t chains, int sweeps) {
  const auto t0 = std::chrono::steady_clock::now();
  sweep(sweeps);
  return 1e6 * seconds_since(t0) / double(sweeps) / double(chains);
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<Comm> comm = start_comm("latent", argc, argv);
  if (!comm) return 1;
  CLI::App app{
      "latent: Gaussian-Bernoulli RBMs and deep Boltzmann machines, with exact likelihoods",
      "latent"};
  Flags f;
  app.add_option("--parts", f.parts, "comma-separated: toy2d, digits, dbm")->capture_default_str();
  app.add_option("--datasets", f.datasets, "toy 2-D sets of the toy2d part")->capture_default_str();
  app.add_option("--toy-hidden", f.toy_hidden, "hidden units of the toy2d GB-RBMs (exact: <= 20)")
      ->check(CLI::Range(1, 20))
      ->capture_default_str();
  app.add_option("--toy-steps", f.toy_steps, "training steps per toy2d model")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  app.add_option("--toy-batch", f.toy_batch, "toy2d mini-batch")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--train-size", f.train_size, "toy2d training points (as in toy2d)")
      ->check(CLI::Range(2, 1 << 26))
      ->capture_default_str();
  app.add_option("--toy-test-size", f.toy_test_size, "toy2d test points (as in toy2d)")
      ->check(CLI::Range(1, 1 << 26))
      ->capture_default_str();
  app.add_option("--toy-lr", f.toy_lr, "toy2d Adam learning rate (decays linearly to 0)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--digits-hidden", f.digits_hidden,
                 "hidden units of the digits GB-RBM scored exactly (<= 20)")
      ->check(CLI::Range(1, 20))
      ->capture_default_str();
  app.add_option("--digits-hidden-ais", f.digits_hidden_ais,
                 "hidden units of the digits GB-RBM scored by AIS")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--digits-epochs", f.digits_epochs, "epochs of the digits GB-RBMs")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--digits-lr", f.digits_lr, "digits GB-RBM Adam learning rate")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--rbm-hidden", f.rbm_hidden, "hidden units of the RBM of the dbm part (<= 24)")
      ->check(CLI::Range(1, 24))
      ->capture_default_str();
  app.add_option("--dbm-hidden1", f.dbm_hidden1, "the DBM's first hidden layer (<= 24: exact)")
      ->check(CLI::Range(1, 24))
      ->capture_default_str();
  app.add_option("--dbm-hidden2", f.dbm_hidden2, "the DBM's second hidden layer (<= 24: exact)")
      ->check(CLI::Range(1, 24))
      ->capture_default_str();
  app.add_option("--large-rbm-hidden", f.large_rbm_hidden,
                 "hidden units of the larger RBM, scored by AIS (0: no larger pair)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  app.add_option("--large-dbm-hidden1", f.large_dbm_hidden1, "the larger DBM's first layer")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--large-dbm-hidden2", f.large_dbm_hidden2,
                 "the larger DBM's second layer (its mean field runs over both)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--seeds", f.seeds, "seeds of each model of the dbm part (error bars)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--epochs", f.epochs, "joint-training epochs of the dbm part's models")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--pretrain-epochs", f.pretrain_epochs,
                 "epochs of each RBM of the DBM's greedy pre-training")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--batch", f.batch, "mini-batch of the digits and dbm parts")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--chains", f.chains, "the DBM's persistent chains")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--test-size", f.test_size, "held-out digits")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--ais-runs", f.ais_runs, "AIS runs")
      ->check(CLI::Range(2, 1000000))
      ->capture_default_str();
  app.add_option("--ais-temps", f.ais_temps, "AIS intermediate temperatures")
      ->check(CLI::Range(2, 10000000))
      ->capture_default_str();
  app.add_option("--lr", f.lr, "SGD learning rate of the dbm part (decays linearly to 0)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seed", f.seed, "seed")->capture_default_str();
  app.add_option("--out", f.out, "base folder of runs")->capture_default_str();
  app.add_option("--data-dir", f.data_dir,
                 "where the digits are (default: $EBL_DATA_DIR, then the installed or source copy)")
      ->check(CLI::ExistingDirectory);
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
    SmokeSizes{app}("--datasets", f.datasets, "8gaussians")("--toy-steps", f.toy_steps, 200)(
        "--train-size", f.train_size, 2000)("--toy-test-size", f.toy_test_size, 500)(
        "--digits-hidden", f.digits_hidden, 6)("--digits-hidden-ais", f.digits_hidden_ais, 8)(
        "--digits-epochs", f.digits_epochs, 1)("--rbm-hidden", f.rbm_hidden, 8)(
        "--dbm-hidden1", f.dbm_hidden1, 6)("--dbm-hidden2", f.dbm_hidden2, 4)(
        "--large-rbm-hidden", f.large_rbm_hidden, 10)("--large-dbm-hidden1", f.large_dbm_hidden1,
                                                      8)("--large-dbm-hidden2", f.large_dbm_hidden2,
                                                         4)("--seeds", f.seeds, 2)(
        "--epochs", f.epochs, 1)("--pretrain-epochs", f.pretrain_epochs, 1)(
        "--ais-runs", f.ais_runs, 10)("--ais-temps", f.ais_temps, 50);
  try {
    if (comm->size() > 1) throw FlagError("latent runs on one process");
    const std::vector<std::string> parts = parse_list("--parts", f.parts);
    for (const auto& p : parts)
      if (p != "toy2d" && p != "digits" && p != "dbm")
        throw FlagError(
            fmt::format("--parts: unknown part '{}' (expected toy2d, digits or dbm)", p));
    auto has = [&](const char* p) {
      return std::find(parts.begin(), parts.end(), p) != parts.end();
    };
    const std::vector<std::string> sets = parse_list("--datasets", f.datasets);
    for (const auto& s : sets) (void)toy2d::dataset(s);  // an unknown name: one line, exit 2
    const nlohmann::json config = f;
    Units units(config, f.stop_after_units);
    if (!f.resume.empty()) units.resume(f.resume, kMayDifferOnResume);
    // the digits, loaded before the run folder exists: a missing file is one line, no folder
    std::optional<std::pair<LabeledData, LabeledData>> digits;
    if (has("digits") || has("dbm"))
      digits = load_train_test(false, f.test_size, f.seed, f.data_dir);

    const fs::path dir = make_run_dir(f.out, "latent", fmt::format("seed{}", f.seed));
    write_json(dir / "config.json", config);
    fmt::print("latent -> {}\n{}\n", dir.string(), config.dump());
    units.set_dir(dir);
    auto unit = [&](const std::string& name, auto&& body) -> const json& {
      return units.run(name, body);
    };
    std::string md;

    if (has("toy2d")) {
      md +=
          "## Gaussian–Bernoulli RBMs on the toy 2-D sets\n\n"
          "Test NLL in nats (exact: log Z over the 2^" +
          std::to_string(f.toy_hidden) +
          " hidden states), the toy2d experiment's test set.\n\n"
          "| dataset | GB-RBM, CD-1 | GB-RBM, PCD-10 | GB-RBM, PCD-1 with tempering | data's own "
          "NLL |\n|---|---:|---:|---:|---:|\n";
      for (const auto& s : sets) {
        const toy2d::Dataset law = toy2d::dataset(s);
        // the toy2d experiment's draws: train_size training points, then the test set, in float
        Rng data_rng(f.seed);
        const Array<double> train =
            xt::cast<double>(toy2d::sample<float>(law, f.train_size, data_rng));
        const Array<double> test =
            xt::cast<double>(toy2d::sample<float>(law, f.toy_test_size, data_rng));
        const std::optional<double> data_nll = toy2d::true_nll(law, test);
        std::string row = fmt::format("| {} |", s);
        for (const GbMethod& method : kGbMethods) {
          const json& r = unit(fmt::format("toy2d/{}/{}", s, method.name), [&] {
            const GaussianRbm<double> m = train_gbrbm(train, f.toy_hidden, 0.5, method, f.toy_steps,
                                                      f.toy_batch, f.toy_lr, f.seed + 1);
            const double lz = gbrbm_exact_log_z(m);
            json out = {{"test_nll", -gbrbm_average_loglik(m, test, lz)},
                        {"train_nll", -gbrbm_average_loglik(m, train, lz)},
                        {"log_z", lz}};
            if (data_nll) out["data_nll"] = *data_nll;
            return out;
          });
          row += fmt::format(" {:.4f} |", r["test_nll"].get<double>());
        }
        row += data_nll ? fmt::format(" {:.4f} |", *data_nll) : std::string(" n/a |");
        md += row + "\n";
      }
      md += "\n";
    }

    if (has("digits")) {
      // dequantised grey levels x = (16p + u) / 17, then standardised with the training moments;
      // the log-likelihoods are given back in the units of x (− Σ log sd_i)
      Rng drng(f.seed + 100);
      auto dequantise = [&](const Array<float>& x) {
        Array<double> y(x.shape());
        for (std::size_t i = 0; i < x.size(); ++i)
          y.data()[i] = (16.0 * double(x.data()[i]) + drng.uniform()) / 17.0;
        return y;
      };
      Array<double> train = dequantise(digits->first.x), test = dequantise(digits->second.x);
      const std::size_t d = train.shape()[1];
      const auto [mu, var] = base_moments(train);
      double log_sd = 0;
      for (std::size_t i = 0; i < d; ++i) {
        const double sd = std::sqrt(var[i]);
        log_sd += std::log(sd);
        for (auto* a : {&train, &test})
          for (std::size_t r = 0; r < a->shape()[0]; ++r) (*a)(r, i) = ((*a)(r, i) - mu[i]) / sd;
      }
      // a bound on the discrete grey levels' log-probability: log P(k) ≥ E_u log p(x) − d log 17
      const double to_bits = 1 / (double(d) * std::log(2.0));
      const double disc = double(d) * std::log(17.0);
      md += fmt::format(
          "## Gaussian–Bernoulli RBMs on the real-valued digits\n\n"
          "Test log-likelihood of the dequantised grey levels (nats per image; higher is better), "
          "and the bound it gives on the 17 grey levels' log-probability in bits per pixel (lower "
          "is better). {} training, {} test images.\n\n"
          "| model | test log-lik. (nats) | bits/pixel (bound) | log Z |\n|---|---:|---:|---:|\n",
          train.shape()[0], test.shape()[0]);
      auto add_row = [&](const std::string& label, double ll, const std::string& lz) {
        md += fmt::format("| {} | {:.2f} | {:.4f} | {} |\n", label, ll, -(ll - disc) * to_bits, lz);
      };
      for (const bool full : {false, true}) {
        const json& r = unit(full ? "digits/gaussian_full" : "digits/gaussian_diagonal", [&] {
          return json{{"test_loglik", gaussian_loglik(train, test, full) - log_sd}};
        });
        add_row(full ? "Gaussian, full covariance" : "Gaussian, diagonal",
                r["test_loglik"].get<double>(), "");
      }
      const std::size_t steps = f.digits_epochs * (train.shape()[0] / f.batch);
      const auto [bm, bv] = base_moments(train);
      for (const std::size_t hidden : {f.digits_hidden, f.digits_hidden_ais})
        for (const GbMethod& method : kGbMethods) {
          const bool exact = hidden <= 20;
          const json& r = unit(fmt::format("digits/gbrbm{}/{}", hidden, method.name), [&] {
            const GaussianRbm<double> m =
                train_gbrbm(train, hidden, 0.01, method, steps, f.batch, f.digits_lr, f.seed + 2);
            Rng arng(f.seed + 3);
            const GbrbmAis a = gbrbm_ais(m, bm, bv, f.ais_runs, f.ais_temps, arng);
            json out = {
                {"hidden", hidden}, {"ais_log_z", a.log_z}, {"ais_log_z_std_err", a.std_err}};
            const double lz = exact ? gbrbm_exact_log_z(m) : a.log_z;
            if (exact) out["exact_log_z"] = lz;
            out["test_loglik"] = gbrbm_average_loglik(m, test, lz) - log_sd;
            out["train_loglik"] = gbrbm_average_loglik(m, train, lz) - log_sd;
            return out;
          });
          add_row(fmt::format("GB-RBM, {} hidden, {}", hidden, method.name),
                  r["test_loglik"].get<double>(),
                  exact ? fmt::format("{:.3f} exact (AIS {:.3f} ± {:.3f})",
                                      r["exact_log_z"].get<double>(), r["ais_log_z"].get<double>(),
                                      r["ais_log_z_std_err"].get<double>())
                        : fmt::format("{:.3f} ± {:.3f} (AIS)", r["ais_log_z"].get<double>(),
                                      r["ais_log_z_std_err"].get<double>()));
        }
      md += "\n";
    }

    if (has("dbm")) {
      const Array<double> train = xt::cast<double>(binarize_threshold(digits->first.x)),
                          test = xt::cast<double>(binarize_threshold(digits->second.x));
      const std::size_t nv = train.shape()[1], n = train.shape()[0];
      const std::size_t steps = f.epochs * (n / f.batch);
      const Array<double> base = base_rate_bias(train);
      // One comparison: an RBM with `rh` hidden units against DBMs V-h1-h2 of about as many
      // parameters; `exact`: log Z and log p(v) enumerated, else log Z by AIS and, for the DBM,
      // log p(v) bounded below by mean field (its stochastic lower bound, as in the paper).
      auto compare = [&](const std::string& tag, std::size_t rh, std::size_t h1, std::size_t h2,
                         bool exact) {
        struct Model {
          std::string key, name;
          std::size_t params;
        };
        const std::size_t rbm_params = nv * rh + nv + rh;
        const std::size_t dbm_params = nv * h1 + h1 * h2 + nv + h1 + h2;
        std::vector<Model> models = {
            {"rbm", fmt::format("RBM {}-{}, PCD-1", nv, rh), rbm_params},
            {"dbm", fmt::format("DBM {}-{}-{}, pre-trained, then mean field + PCD", nv, h1, h2),
             dbm_params}};
        if (exact)
          models.push_back({"dbm-random",
                            fmt::format("DBM {}-{}-{}, from random weights", nv, h1, h2),
                            dbm_params});
        std::vector<std::vector<json>> results(models.size());
        for (std::size_t s = 0; s < f.seeds; ++s) {
          const std::uint64_t ms = f.seed + 10 + s;
          results[0].push_back(unit(fmt::format("dbm/{}/rbm/seed{}", tag, s), [&] {
            Rng rng(ms);
            Rbm<double> m(nv, rh, rng);
            SGD<double> opt(m.parameters(), {.lr = f.lr, .momentum = 0.5, .weight_decay = 1e-4});
            GibbsChains<double> chains{.v = rng.uniform_array<double>({f.batch, nv}), .h = {}};
            sample_bernoulli(chains.v, rng);
            Array<double> batch(Shape{f.batch, nv});
            RbmWorkspace<double> ws;
            const auto t0 = std::chrono::steady_clock::now();
            for (std::size_t st = 0; st < steps; ++st) {
              draw_batch(train, batch, rng);
              opt.options().lr = f.lr * (1 - double(st) / double(steps));
              rbm_train_step(m, opt, batch, chains, {.k = 1, .persistent = true}, rng, ws);
            }
            json out = {{"train_seconds", seconds_since(t0)}};
            Rng arng(ms + 1000);
            const AisResult a = rbm_ais(m, base, f.ais_runs, f.ais_temps, arng);
            out["ais_log_z"] = a.log_z;
            out["ais_log_z_std_err"] = a.std_err;
            const double lz = exact ? rbm_exact_log_z(m) : a.log_z;
            out["log_z"] = lz;
            out["test_loglik"] = rbm_average_loglik(m, test, lz);
            out["train_loglik"] = rbm_average_loglik(m, train, lz);
            Array<double> v = rng.uniform_array<double>({f.chains, nv}), h;
            sample_bernoulli(v, rng);
            out["gibbs_us_per_sweep_per_chain"] =
                sweep_cost_us([&](int k) { block_gibbs(m, v, h, k, rng); }, f.chains, 200);
            return out;
          }));
          for (std::size_t k = 1; k < models.size(); ++k) {
            const bool pretrain = models[k].key == "dbm";
            results[k].push_back(unit(fmt::format("dbm/{}/{}/seed{}", tag, models[k].key, s), [&] {
              Rng rng(ms);
              Dbm m(nv, h1, h2, rng);
              const auto t0 = std::chrono::steady_clock::now();
              json out = json::object();
              if (pretrain) {
                dbm_pretrain(m, train, {.epochs = f.pretrain_epochs, .batch = f.batch, .lr = f.lr},
                             rng);
                if (exact)
                  out["pretrained_test_loglik"] = dbm_average_loglik(m, test, dbm_exact_log_z(m));
              }
              SGD<double> opt(m.parameters(), {.lr = f.lr, .momentum = 0.5, .weight_decay = 1e-4});
              DbmChains chains = dbm_chains(m, f.chains, rng);
              Array<double> batch(Shape{f.batch, nv});
              for (std::size_t st = 0; st < steps; ++st) {
                draw_batch(train, batch, rng);
                opt.options().lr = f.lr * (1 - double(st) / double(steps));
                dbm_train_step(m, opt, batch, chains, 1, rng);
              }
              out["train_seconds"] = seconds_since(t0);
              Rng arng(ms + 1000);
              const AisResult a = dbm_ais(m, base, f.ais_runs, f.ais_temps, arng);
              out["ais_log_z"] = a.log_z;
              out["ais_log_z_std_err"] = a.std_err;
              const double lz = exact ? dbm_exact_log_z(m) : a.log_z;
              out["log_z"] = lz;
              if (exact) {
                out["test_loglik"] = dbm_average_loglik(m, test, lz);
                out["train_loglik"] = dbm_average_loglik(m, train, lz);
              }
              out["test_mean_field_bound"] = dbm_average_lower_bound(m, test, lz);
              out["train_mean_field_bound"] = dbm_average_lower_bound(m, train, lz);
              DbmChains c = dbm_chains(m, f.chains, rng);
              out["gibbs_us_per_sweep_per_chain"] =
                  sweep_cost_us([&](int sw) { dbm_gibbs(m, c, sw, rng); }, f.chains, 200);
              return out;
            }));
          }
        }
        md += fmt::format(
            "### {} (log Z {})\n\n"
            "| model | parameters | test log-lik. | train log-lik. | test mean-field bound | "
            "log Z {} | training s | multiply-adds per Gibbs sweep | µs per sweep per chain |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            exact ? "Small enough to enumerate" : "Larger models",
            exact ? "and log p(v) exact; AIS beside it"
                  : "by AIS; the DBM's log p(v) by its "
                    "mean-field bound",
            exact ? "exact − AIS" : "(AIS)");
        for (std::size_t k = 0; k < models.size(); ++k) {
          auto col = [&](const char* key) {
            std::vector<double> x;
            for (const auto& r : results[k]) x.push_back(r[key].get<double>());
            return x;
          };
          const bool dbm = k > 0;
          std::vector<double> gap;
          for (const auto& r : results[k])
            gap.push_back(r["log_z"].get<double>() - r["ais_log_z"].get<double>());
          const bool have_ll = !dbm || exact;
          md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", models[k].name,
                            models[k].params, have_ll ? mean_sd(col("test_loglik")) : "",
                            have_ll ? mean_sd(col("train_loglik")) : "",
                            dbm ? mean_sd(col("test_mean_field_bound")) : std::string("—"),
                            exact ? mean_sd(gap) : mean_sd(col("ais_log_z")),
                            mean_sd(col("train_seconds"), 2),
                            dbm ? 2 * (nv * h1 + h1 * h2) : 2 * nv * rh,
                            mean_sd(col("gibbs_us_per_sweep_per_chain"), 2));
        }
        if (exact) {
          std::vector<double> pre;
          for (const auto& r : results[1]) pre.push_back(r["pretrained_test_loglik"].get<double>());
          md += fmt::format(
              "\nThe pre-trained DBM's test log-likelihood before any joint training: {}.\n",
              mean_sd(pre));
        }
        md += "\n";
      };
      md += fmt::format(
          "## A deep Boltzmann machine against an RBM of as many parameters (binarised digits)\n\n"
          "Log-likelihoods in nats per image, mean ± sd over {} seeds; {} training, {} test "
          "images; {} pre-training epochs per layer, {} epochs of joint training at batch {}, "
          "{} persistent chains; AIS with {} runs of {} temperatures.\n\n",
          f.seeds, n, test.shape()[0], f.pretrain_epochs, f.epochs, f.batch, f.chains, f.ais_runs,
          f.ais_temps);
      compare("exact", f.rbm_hidden, f.dbm_hidden1, f.dbm_hidden2, true);
      if (f.large_rbm_hidden > 0)
        compare("ais", f.large_rbm_hidden, f.large_dbm_hidden1, f.large_dbm_hidden2, false);
    }

    json metrics = units.all();
    const int status = check_finite("latent", metrics);
    write_json(dir / "metrics.json", metrics);
    write_file_atomic(dir / "results.md", md);
    fmt::print("\n{}\noutputs in {}\n", md, dir.string());
    return status;
  } catch (const StopAfterUnits&) {
    fmt::print("\nstopped after {} units; continue with --resume <run>/checkpoint.bin\n",
               f.stop_after_units);
    return 0;
  } catch (...) {
    return exit_on_error(*comm, "latent");
  }
}
