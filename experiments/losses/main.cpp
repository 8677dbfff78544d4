// losses: LeCun et al.'s table of losses (2006, Table 1) through the same models.
//
// Study 1, the tutorial's own (section 2.2, fig. 6): learn Y = X² from 200 samples, X ~ U[-1, 1],
// with (A) E = |G_W(X) - Y|, G_W a 1-20-1 network, and (B) E = ||G_W1(X) - G_W2(Y)||_1, each
// branch 1-10-10. Integrals over y and the most offending answer Ȳ use a grid of candidate
// answers. After training: is the energy surface flat in y (collapsed), and does its minimum in y
// follow x²?
//
// Study 2: classification with E(W, Y, X) on the 8×8 digits (Fashion-MNIST with --fashion): one
// MLP with one energy per class, the same for every loss; test error, mean energy gap
// E(Ȳ) - E(Yⁱ), fraction of collapsed samples; training curves over several seeds, mean ± std.
//
// Output in runs/losses/seed<seed>[-k]: config.json, results.{md,csv,json}, curves_*.csv,
// surfaces_A.png, surfaces_B.png, curves.png.
#include <cmath>
#include <cstdlib>

#include "ebm/classify.hpp"
#include "ebm/inference.hpp"
#include "experiments/common/run.hpp"

using namespace ebl;
using namespace ebl::xp;
using T = float;

namespace {

struct Flags {
  std::size_t seeds = 5, epochs = 60, batch = 32, hidden = 64, test_size = 500;
  double lr = 1e-3, margin = 1.0, saturation = 1.0, gamma = 1.0, beta = 1.0;
  // study 1
  std::size_t study_steps = 20000, grid = 61, infer_steps = 2000;
  double infer_step_size = 0.005;
  double study_lr = 3e-3, study_margin = 0.5, study_beta = 5.0, flat_tol = 0.1;
  std::size_t exclude = 2;
  std::uint64_t seed = 0;
  bool fashion = false, smoke = false;
  std::string out = "runs", data_dir;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Flags, seeds, epochs, batch, hidden, test_size, lr, margin,
                                   saturation, gamma, beta, study_steps, grid, study_lr,
                                   study_margin, study_beta, flat_tol, exclude, infer_steps,
                                   infer_step_size, seed, fashion, smoke, out, data_dir)

// ---- study 1 -------------------------------------------------------------------------------

/// y* by gradient descent on E(x, ·) (ebm/inference.hpp) against the grid's argmin.
struct GradientInference {
  double agreement = 0;    ///< fraction of test x where |y*_grad - y*_grid| <= one grid cell
  double error = 0;        ///< mean |y*_grad - x²|
  double energy_gap = 0;   ///< mean E(x, y*_grad) - min over the grid (< 0: below the grid)
  double evaluations = 0;  ///< mean energy evaluations per x
};

struct StudyResult {
  std::string arch, loss;
  double final_loss = 0, argmin_error = 0;  ///< mean |argmin_y E(x, y) - x²| over test x
  CollapseReport collapse;
  Array<T> surface;                    ///< E over the picture grid [nx, m]
  GradientInference single, restarts;  ///< one start at y = 0.5; 8 starts
};

StudyResult run_study(char arch, Loss loss, const Flags& f, const Array<T>& x, const Array<T>& y,
                      const Array<T>& grid) {
  Rng rng(f.seed + 100);
  std::unique_ptr<ScalarAnswerEnergy<T>> e;
  if (arch == 'A')
    e = std::make_unique<OneBranchEnergy<T>>(std::vector<std::size_t>{1, 20, 1}, Activation::Tanh,
                                             rng);
  else
    e = std::make_unique<TwoBranchEnergy<T>>(std::vector<std::size_t>{1, 10, 10},
                                             std::vector<std::size_t>{1, 10, 10}, Activation::Tanh,
                                             rng);
  Adam<T> opt(e->parameters(), {.lr = f.study_lr});
  const std::vector<std::size_t> labels = snap_to_grid(y, grid);
  const double log_cell = std::log(double(grid(1) - grid(0)));
  LossOptions lo{
      .margin = f.study_margin, .saturation = f.saturation, .gamma = f.gamma, .beta = f.study_beta};
  Tape<T> t;
  StudyResult r{arch == 'A' ? "A: |G(X) - Y|" : "B: |G1(X) - G2(Y)|_1",
                loss_info(loss).name,
                0,
                0,
                {},
                {},
                {},
                {}};
  for (std::size_t s = 0; s < f.study_steps; ++s) {
    t.clear();
    opt.zero_grad();
    Var<T> en = e->on_grid(t, t.input(x), t.constant(grid));
    Var<T> l = batch_loss(loss, answers(en, std::span(labels), f.exclude, log_cell), lo);
    r.final_loss = double(l.item());
    if (!std::isfinite(r.final_loss)) break;
    t.backward(l);
    opt.step();
  }
  // the surface over x in [-1, 1] and the grid of answers
  const std::size_t nx = 41;
  Array<T> xs = Array<T>::from_shape({nx, 1});
  for (std::size_t i = 0; i < nx; ++i) xs(i, 0) = T(-1 + 2.0 * double(i) / double(nx - 1));
  t.clear();
  r.surface = e->on_grid(t, t.input(xs), t.constant(grid)).value();
  std::vector<std::size_t> ystar = infer(r.surface);
  for (std::size_t i = 0; i < nx; ++i)
    r.argmin_error += std::abs(double(grid(ystar[i])) - double(xs(i, 0) * xs(i, 0))) / double(nx);
  r.collapse = detect_collapse(r.surface, f.flat_tol);
  // Inference by local search on the same x (ebm/inference.hpp): from y = 0.5, the middle of the
  // answers' range, and with 8 starts; boxed to the grid's range [-0.5, 1.5]. Its own generator,
  // so that nothing above changes.
  Rng irng(f.seed + 200);
  PairEnergyFn<T> pair = [&e](Tape<T>& tt, Var<T> xv, Var<T> yv) { return e->pairs(tt, xv, yv); };
  const double cell = double(grid(1) - grid(0));
  for (std::size_t starts : {std::size_t(1), std::size_t(8)}) {
    InferenceOptions o{.steps = f.infer_steps,
                       .step_size = f.infer_step_size,
                       .tol = 1e-6,
                       .restarts = starts,
                       .box = true,
                       .lo = -0.5,
                       .hi = 1.5};
    Array<T> y0(Shape{nx}, T(0.5));
    InferenceResult<T> res = minimize_energy<T>(pair, xs, y0, o, irng);
    GradientInference& gi = starts == 1 ? r.single : r.restarts;
    for (std::size_t i = 0; i < nx; ++i) {
      const double yg = double(res.y(i)), yb = double(grid(ystar[i]));
      gi.agreement += (std::abs(yg - yb) <= cell * (1 + 1e-6)) / double(nx);
      gi.error += std::abs(yg - double(xs(i, 0) * xs(i, 0))) / double(nx);
      gi.energy_gap += (res.energy[i] - double(r.surface(i, ystar[i]))) / double(nx);
      gi.evaluations += double(res.evaluations[i]) / double(nx);
    }
  }
  return r;
}

std::string surfaces_script(char arch, const std::vector<std::string>& losses) {
  std::string s = fmt::format(R"(set datafile separator ','
set terminal pngcairo size 1500,620 font ",9"
set output 'surfaces_{0}.png.tmp'
set multiplot layout 2,5 title 'architecture {0}: E(x, y) after training (dark = low energy; white curve y = x^2)'
set xrange [-1:1]
set yrange [-0.5:1.5]
unset colorbox
set palette defined (0 '#000004', 1 '#51127c', 2 '#b73779', 3 '#fc8961', 4 '#fcfdbf')
)",
                              arch);
  for (const auto& l : losses)
    s += fmt::format(
        "set title '{0}'\nplot 'surface_{0}_{1}.csv' using 1:2:3 with image notitle, x*x with "
        "lines lc rgb 'white' notitle\n",
        l, arch);
  return s + "unset multiplot\n";
}

// ---- study 2 -------------------------------------------------------------------------------

struct Curve {
  std::vector<std::vector<double>> error, gap, flat;  // [seed][epoch]
};

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? NAN : s / double(v.size());
}
double std_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double m = mean_of(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "losses: the ten losses of LeCun et al. (2006) on the tutorial's collapse study and on digit "
      "classification",
      "losses"};
  Flags f;
  app.add_option("--seeds", f.seeds, "seeds per loss in the classification study")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--epochs", f.epochs, "classification epochs")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--batch", f.batch, "classification batch size")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--hidden", f.hidden, "hidden units of the classifier MLP")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  app.add_option("--test-size", f.test_size,
                 "held-out digits (Fashion-MNIST uses its own 10000-image test set)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--lr", f.lr, "Adam learning rate (classification)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--margin", f.margin, "m of hinge and square-square (classification)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--saturation", f.saturation, "M of LVQ2")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--gamma", f.gamma, "gamma of square-exp")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--beta", f.beta, "beta of NLL and MEE (classification)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--study-steps", f.study_steps, "full-batch steps per loss in the Y = X^2 study")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--grid", f.grid, "candidate answers y on [-0.5, 1.5] in the study")
      ->check(CLI::Range(8, 10000))
      ->capture_default_str();
  app.add_option("--study-lr", f.study_lr, "Adam learning rate in the study")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--study-margin", f.study_margin, "m of hinge and square-square in the study")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--study-beta", f.study_beta, "beta of NLL and MEE in the study")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--flat-tol", f.flat_tol,
                 "study: E(x, .) is flat (collapsed) when max_y E - min_y E is below this")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--exclude", f.exclude,
                 "grid cells around Y excluded from the most offending answer")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  app.add_option("--infer-steps", f.infer_steps,
                 "study: gradient steps per start of inference by energy minimisation")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--infer-step-size", f.infer_step_size, "study: its step size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seed", f.seed, "base seed")->capture_default_str();
  app.add_option("--out", f.out, "base folder of runs")->capture_default_str();
  app.add_option("--data-dir", f.data_dir,
                 "where the digits are (default: $EBL_DATA_DIR, then the installed or source copy)")
      ->check(CLI::ExistingDirectory);
  app.add_flag("--fashion", f.fashion, "classify Fashion-MNIST (28x28) instead of the 8x8 digits");
  app.add_flag("--smoke", f.smoke, "a few steps of everything, for CI");
  if (auto code = parse_flags(app, argc, argv)) return *code;
  if (f.smoke)
    SmokeSizes{app}("--seeds", f.seeds, 2)("--epochs", f.epochs, 2)(
        "--study-steps", f.study_steps, 20)("--infer-steps", f.infer_steps, 50);
  if (f.grid < 2 * f.exclude + 2) {
    fmt::print(
        stderr,
        "losses: --grid {} leaves no incorrect answer once {} cells each side are excluded\n",
        f.grid, f.exclude);
    return 2;
  }

  try {
    {  // the classifier training on a batch, or evaluated on the whole test set
      const double dim = f.fashion ? 784 : 64;
      require_fits_memory(
          mlp_bytes({dim, double(f.hidden), 10}, double(std::max(f.batch, f.test_size)), 8),
          "--hidden, --batch and --test-size");
    }
    auto [train, test] = load_train_test(f.fashion, f.test_size, f.seed, f.data_dir);

    fs::path dir =
        make_run_dir(f.out, "losses", fmt::format("{}seed{}", f.fashion ? "fashion-" : "", f.seed));
    nlohmann::json config = f;
    write_json(dir / "config.json", config);
    fmt::print("losses -> {}\n{}\n", dir.string(), config.dump());
    const long total_runs = long(2 * std::size(kLossTable) + f.seeds * std::size(kLossTable));
    Progress bar("losses", total_runs);
    long done = 0;

    // Study 1: Y = X², both architectures, every loss.
    Rng data_rng(f.seed);
    Array<T> x = data_rng.uniform_array<T>({200, 1}, -1, 1), y = xt::square(x);
    y.reshape({200});
    Array<T> grid = Array<T>::from_shape({f.grid});
    for (std::size_t j = 0; j < f.grid; ++j)
      grid(j) = T(-0.5 + 2.0 * double(j) / double(f.grid - 1));
    std::vector<StudyResult> study;
    std::vector<std::string> names;
    for (const LossInfo& l : kLossTable) names.push_back(l.name);
    for (char arch : {'A', 'B'})
      for (const LossInfo& l : kLossTable) {
        study.push_back(run_study(arch, l.kind, f, x, y, grid));
        const StudyResult& r = study.back();
        Csv surf({"x", "y", "energy"});
        for (std::size_t i = 0; i < r.surface.shape()[0]; ++i)
          for (std::size_t j = 0; j < f.grid; ++j)
            surf.row({-1 + 2.0 * double(i) / double(r.surface.shape()[0] - 1), double(grid(j)),
                      double(r.surface(i, j))});
        surf.save(dir / fmt::format("surface_{}_{}.csv", l.name, arch));
        bar.update(++done, fmt::format("study {} {}", arch, l.name));
      }
    plot(dir, "surfaces_A.gp", surfaces_script('A', names), {"surfaces_A.png"});
    plot(dir, "surfaces_B.gp", surfaces_script('B', names), {"surfaces_B.png"});

    // Study 2: classification, every loss, several seeds.
    ClassifierTraining ct;
    ct.epochs = f.epochs;
    ct.batch = f.batch;
    ct.lr = f.lr;
    ct.loss = {.margin = f.margin, .saturation = f.saturation, .gamma = f.gamma, .beta = f.beta};
    std::vector<Curve> curves(std::size(kLossTable));
    std::vector<std::vector<int>> finished(std::size(kLossTable));
    for (std::size_t li = 0; li < std::size(kLossTable); ++li) {
      for (std::size_t s = 0; s < f.seeds; ++s) {
        Rng rng(f.seed + 1000 + s);
        DiscreteAnswerEnergy<T> model(train.x.shape()[1], {f.hidden}, train.classes,
                                      Activation::Relu, rng);
        std::vector<double> err, gap, flat;
        bool ok = train_classifier(model, kLossTable[li].kind, {train.x, train.y}, {test.x, test.y},
                                   ct, rng, [&](std::size_t, const ClassifierEval& ev) {
                                     err.push_back(ev.error);
                                     gap.push_back(ev.mean_gap);
                                     flat.push_back(ev.collapse.flat_fraction);
                                   });
        finished[li].push_back(ok);
        // a run stopped by a non-finite loss keeps its last evaluation for the remaining epochs
        while (err.size() < f.epochs) {
          err.push_back(err.empty() ? NAN : err.back());
          gap.push_back(gap.empty() ? NAN : gap.back());
          flat.push_back(flat.empty() ? NAN : flat.back());
        }
        curves[li].error.push_back(err);
        curves[li].gap.push_back(gap);
        curves[li].flat.push_back(flat);
        bar.update(++done, fmt::format("classify {} seed {}", kLossTable[li].name, s));
      }
    }

    // Tables.
    json results = json::array();
    Csv table({"loss", "test_error_mean", "test_error_std", "gap_mean", "gap_std", "flat_fraction",
               "A_energy_range", "A_collapsed", "A_argmin_error", "B_energy_range", "B_collapsed",
               "B_argmin_error"});
    std::string md = fmt::format(
        "| loss | eq. | margin | test error (mean ± std, {} seeds) | E(Ȳ) − E(Yⁱ) | collapsed "
        "samples | A: E range in y | A: mean abs(y* − x²) | B: E range in y | B: mean abs(y* − x²) "
        "|\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        f.seeds);
    for (std::size_t li = 0; li < std::size(kLossTable); ++li) {
      const LossInfo& l = kLossTable[li];
      std::vector<double> fe, fg, ff;
      for (std::size_t s = 0; s < f.seeds; ++s) {
        fe.push_back(curves[li].error[s].back());
        fg.push_back(curves[li].gap[s].back());
        ff.push_back(curves[li].flat[s].back());
      }
      const StudyResult &a = study[li], &b = study[std::size(kLossTable) + li];
      int diverged = 0;
      for (int ok : finished[li]) diverged += !ok;
      auto range = [](const StudyResult& r) {
        return fmt::format("{:.3g}{}", r.collapse.mean_range,
                           r.collapse.collapsed ? " (collapsed)" : "");
      };
      md += fmt::format(
          "| {} | {} | {} | {:.3f} ± {:.3f}{} | {:.3f} ± {:.3f} | {:.2f} | {} | {:.3f} | {} | "
          "{:.3f} |\n",
          l.name, l.equation, l.margin, mean_of(fe), std_of(fe),
          diverged ? fmt::format(" ({} stopped: loss not finite)", diverged) : "", mean_of(fg),
          std_of(fg), mean_of(ff), range(a), a.argmin_error, range(b), b.argmin_error);
      table.row(l.name, {mean_of(fe), std_of(fe), mean_of(fg), std_of(fg), mean_of(ff),
                         a.collapse.mean_range, double(a.collapse.collapsed), a.argmin_error,
                         b.collapse.mean_range, double(b.collapse.collapsed), b.argmin_error});
      results.push_back({{"loss", l.name},
                         {"equation", l.equation},
                         {"margin", l.margin},
                         {"test_error_mean", mean_of(fe)},
                         {"test_error_std", std_of(fe)},
                         {"gap_mean", mean_of(fg)},
                         {"gap_std", std_of(fg)},
                         {"flat_fraction", mean_of(ff)},
                         {"runs_stopped_nonfinite", diverged},
                         {"study_A",
                          {{"collapsed", a.collapse.collapsed},
                           {"energy_range", a.collapse.mean_range},
                           {"argmin_error", a.argmin_error},
                           {"final_loss", a.final_loss}}},
                         {"study_B",
                          {{"collapsed", b.collapse.collapsed},
                           {"energy_range", b.collapse.mean_range},
                           {"argmin_error", b.argmin_error},
                           {"final_loss", b.final_loss}}}});
      Csv c({"epoch", "error_mean", "error_std", "gap_mean", "gap_std"});
      for (std::size_t ep = 0; ep < f.epochs; ++ep) {
        std::vector<double> e, g;
        for (std::size_t s = 0; s < f.seeds; ++s) {
          e.push_back(curves[li].error[s][ep]);
          g.push_back(curves[li].gap[s][ep]);
        }
        c.row({double(ep + 1), mean_of(e), std_of(e), mean_of(g), std_of(g)});
      }
      c.save(dir / fmt::format("curves_{}.csv", l.name));
    }
    // Inference by energy minimisation on the trained Y = X² energies, against the grid's argmin.
    std::string imd = fmt::format(
        "\n| loss | arch. | grid argmin: mean abs(y* − x²) | gradient, 1 start: agrees with grid | "
        "abs(y* − x²) | E − grid min | evaluations | gradient, 8 starts: agrees | abs(y* − x²) | "
        "E − grid min | evaluations |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    Csv inf({"model", "grid_error", "single_agreement", "single_error", "single_energy_gap",
             "single_evaluations", "restarts_agreement", "restarts_error", "restarts_energy_gap",
             "restarts_evaluations"});
    json inference = json::array();
    for (std::size_t k = 0; k < study.size(); ++k) {
      const StudyResult& r = study[k];
      const std::string arch = k < std::size(kLossTable) ? "A" : "B";
      imd += fmt::format(
          "| {} | {}{} | {:.3f} | {:.0f}% | {:.3f} | {:+.3g} | {:.0f} | {:.0f}% | {:.3f} | {:+.3g} "
          "| "
          "{:.0f} |\n",
          r.loss, arch, r.collapse.collapsed ? " (collapsed)" : "", r.argmin_error,
          100 * r.single.agreement, r.single.error, r.single.energy_gap, r.single.evaluations,
          100 * r.restarts.agreement, r.restarts.error, r.restarts.energy_gap,
          r.restarts.evaluations);
      inf.row(r.loss + "/" + arch,
              {r.argmin_error, r.single.agreement, r.single.error, r.single.energy_gap,
               r.single.evaluations, r.restarts.agreement, r.restarts.error, r.restarts.energy_gap,
               r.restarts.evaluations});
      auto gi = [](const GradientInference& g) {
        return json{{"agreement_with_grid", g.agreement},
                    {"mean_abs_error", g.error},
                    {"energy_minus_grid_min", g.energy_gap},
                    {"evaluations_per_x", g.evaluations}};
      };
      inference.push_back({{"loss", r.loss},
                           {"arch", arch},
                           {"collapsed", r.collapse.collapsed},
                           {"grid_argmin_error", r.argmin_error},
                           {"one_start", gi(r.single)},
                           {"eight_starts", gi(r.restarts)}});
    }
    write_file_atomic(dir / "results.md", md);
    write_file_atomic(dir / "inference.md", imd);
    inf.save(dir / "inference.csv");
    const int status = std::max(check_finite("losses", inference), check_finite("losses", results));
    write_json(dir / "inference.json", inference);
    table.save(dir / "results.csv");
    write_json(dir / "results.json", results);

    std::string cs = R"(set datafile separator ','
set terminal pngcairo size 1200,500 font ",10"
set output 'curves.png.tmp'
set multiplot layout 1,2
set xlabel 'epoch'
set key outside right
set title 'test error (mean ± std over seeds)'
set yrange [0:1]
)";
    std::string
        plot_err = "plot ",
        plot_gap =
            "set title 'mean energy gap E(Ybar) - E(Yi)'\nset autoscale y\nset key off\nplot ";
    for (std::size_t li = 0; li < std::size(kLossTable); ++li) {
      const char* n = kLossTable[li].name;
      plot_err += fmt::format("{}'curves_{}.csv' using 1:2:3 with yerrorlines title '{}'",
                              li ? ", " : "", n, n);
      plot_gap +=
          fmt::format("{}'curves_{}.csv' using 1:4 with lines title '{}'", li ? ", " : "", n, n);
    }
    plot(dir, "curves.gp", cs + plot_err + "\n" + plot_gap + "\nunset multiplot\n", {"curves.png"});

    fmt::print("\n{}\noutputs in {} ({:.0f}s)\n", md, dir.string(), bar.seconds());
    return status;
  } catch (const std::exception& e) {
    fmt::print(stderr, "losses: {}\n", error_line(e));
    return 1;
  }
}
