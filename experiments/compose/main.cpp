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

#include "datasets/images.hpp"
#include "ebm/boltzmann.hpp"
#include "ebm/cd.hpp"
#include "ebm/classify.hpp"
#include "ebm/compose.hpp"
#include "experiments/common/run.hpp"
#include "experiments/common/tiles.hpp"
#include "metrics/mmd.hpp"
#include "samplers/diagnostics.hpp"
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
  // the compositional digits
  std::string study = "plane,digits", data_dir, digits_class_net = "mlp";
  long digits_steps = 3000;  // CD steps per model
  std::size_t digits_hidden = 256, digits_batch = 64, digits_buffer = 1000, digits_samples = 20;
  double digits_step_size = 1.0, digits_noise = 0.01, digits_alpha = 0.1, digits_not_weight = 0.2;
  int digits_langevin_steps = 20, digits_sample_steps = 200;
  std::uint64_t seed = 0;
  std::string out = "runs";
  bool smoke = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Flags, steps, batch, hidden, layers, lr, lr_final, step_size,
                                   alpha, langevin_steps, sample_steps, threads, buffer, grid,
                                   train_size, eval_samples, box, study, data_dir, digits_class_net,
                                   digits_steps, digits_hidden, digits_batch, digits_buffer,
                                   digits_samples, digits_step_size, digits_noise, digits_alpha,
                                   digits_not_weight, digits_langevin_steps, digits_sample_steps,
                                   seed, out, smoke)

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

// ---- compositional digits ----------------------------------------------------------------------
// Scenes of 16×16 pixels: an 8×8 digit in one of four quadrants (position 0 top left, 1 top right,
// 2 bottom left, 3 bottom right), the rest black.
constexpr std::size_t kSide = 16, kDigit = 8, kPositions = 4, kClasses = 10;

void put_scene(const float* digit, std::size_t position, T* scene) {
  std::fill_n(scene, kSide * kSide, T(0));
  const std::size_t r0 = (position / 2) * kDigit, c0 = (position % 2) * kDigit;
  for (std::size_t r = 0; r < kDigit; ++r)
    for (std::size_t c = 0; c < kDigit; ++c)
      scene[(r0 + r) * kSide + c0 + c] = T(digit[r * kDigit + c]);
}

// A quarter of the (class, position) pairs never appear in the generative models' training: each
// class loses one position, (d, d mod 4), so every class and every position is still seen.
bool held_out(std::size_t d, std::size_t p) {
  return p == d % kPositions;
}

struct Scenes {
  Array<T> x;                         // [n, 256]
  std::vector<std::size_t> cls, pos;  // labels
};
Scenes make_scenes(const LabeledData& digits, bool include_held_out) {
  Scenes s;
  std::vector<std::pair<std::size_t, std::size_t>> items;
  for (std::size_t i = 0; i < digits.size(); ++i)
    for (std::size_t p = 0; p < kPositions; ++p)
      if (include_held_out || !held_out(digits.y[i], p)) items.push_back({i, p});
  s.x = Array<T>::from_shape({items.size(), kSide * kSide});
  for (std::size_t k = 0; k < items.size(); ++k) {
    put_scene(&digits.x(items[k].first, 0), items[k].second, &s.x(k, 0));
    s.cls.push_back(digits.y[items[k].first]);
    s.pos.push_back(items[k].second);
  }
  return s;
}

// A generative model over concept values, trained by PCD: one conditional network, one CD
// trainer (its own persistent chains) per concept value, one optimizer.
struct ConceptModel {
  std::string name;
  std::unique_ptr<ConditionalEnergy<T>> net;
  std::vector<EnergyPtr<T>> energy;  // one per concept value
  std::unique_ptr<Adam<T>> opt;
  std::vector<std::unique_ptr<ContrastiveDivergence<T>>> cd;
  std::vector<std::vector<std::size_t>> rows;  // training scenes of each concept value
};

// net: "mlp" (two hidden layers), or "cnn": two convolution blocks and global average pooling,
// so that the energies do not depend on where the digit is.
ConceptModel make_model(const std::string& name, std::size_t k, const std::string& net,
                        const Flags& f, Rng& init, std::uint64_t seed) {
  ConceptModel m;
  m.name = name;
  if (net == "cnn")
    m.net = std::make_unique<ConditionalCnnEnergy<T>>(
        CnnSpec{.channels = 1,
                .height = kSide,
                .width = kSide,
                .blocks = {{.channels = 8, .kernel = 3, .stride = 1, .padding = 1, .pool = 2},
                           {.channels = 16, .kernel = 3, .stride = 1, .padding = 1, .pool = 1}},
                .hidden = {64},
                .outputs = k,
                .global_pool = true},
        Activation::Silu, init);
  else
    m.net = std::make_unique<ConditionalMlpEnergy<T>>(
        kSide * kSide, std::vector<std::size_t>(2, f.digits_hidden), k, Activation::Silu, init);
  m.opt = std::make_unique<Adam<T>>(m.net->parameters(), typename Adam<T>::Options{.lr = f.lr});
  CdOptions o;
  // JEM's SGLD: step ε and noise of standard deviation σ set apart, i.e. T = σ² / 2ε
  o.langevin = {.steps = f.digits_langevin_steps,
                .step_size = f.digits_step_size,
                .temperature = f.digits_noise * f.digits_noise / (2 * f.digits_step_size),
                .clamp = true,
                .lo = 0,
                .hi = 1,
                .threads = f.threads};
  o.alpha = f.digits_alpha;
  o.noise_lo = 0;
  o.noise_hi = 1;
  o.buffer_size = f.digits_buffer;
  for (std::size_t c = 0; c < k; ++c) {
    m.energy.push_back(std::make_shared<ConceptEnergy<T>>(*m.net, c));
    m.cd.push_back(std::make_unique<ContrastiveDivergence<T>>(*m.energy[c], *m.opt, o, seed + c,
                                                              kSide * kSide));
  }
  m.rows.resize(k);
  return m;
}

// Samples of an energy from uniform noise, by the training's Langevin settings, longer. The
// split-R̂ of each composite's energy traces (second halves) goes into rhats: how far these
// short runs from noise are from mixed.
Array<T> sample_scenes(const EnergyPtr<T>& e, std::size_t n, const Flags& f, Rng& rng,
                       std::vector<double>* rhats = nullptr) {
  Array<T> x = rng.uniform_array<T>({n, kSide * kSide}, 0, 1);
  const ChainStats st =
      Langevin<T>([e](Tape<T>& t, Var<T> v) { return (*e)(t, v); },
                  {.steps = f.digits_sample_steps,
                   .step_size = f.digits_step_size,
                   .temperature = f.digits_noise * f.digits_noise / (2 * f.digits_step_size),
                   .clamp = true,
                   .lo = 0,
                   .hi = 1,
                   .threads = f.threads,
                   .trace_energies = rhats != nullptr})
          .run(x, rng);
  if (rhats && !st.energy_traces.empty() && st.energy_traces[0].size() >= 8) {
    const Traces half = second_halves(st.energy_traces);
    rhats->push_back(split_rhat(half));
  }
  return x;
}

std::vector<std::size_t> predict(DiscreteAnswerEnergy<T>& clf, const Array<T>& x) {
  Tape<T> t;
  return infer(clf(t, t.input(x)).value());
}

int digits_study(const Flags& f) {
  auto [train_digits, test_digits] = load_train_test(false, 500, f.seed, f.data_dir);
  const Scenes all_train = make_scenes(train_digits, true), test = make_scenes(test_digits, true);
  const Scenes gen_train = make_scenes(train_digits, false);

  const nlohmann::json config = f;
  fs::path dir = make_run_dir(f.out, "compose", fmt::format("digits-seed{}", f.seed));
  write_json(dir / "config.json", config);
  fmt::print("compose (digits) -> {}\n", dir.string());

  // 1. The judges: classifiers of class and of position, trained on every real scene (all 40
  //    pairs), and their accuracy on held-out real scenes.
  Rng clf_rng(f.seed + 20);
  DiscreteAnswerEnergy<T> clf_class(kSide * kSide, {128}, kClasses, Activation::Relu, clf_rng),
      clf_pos(kSide * kSide, {32}, kPositions, Activation::Relu, clf_rng);
  double acc_class = 0, acc_pos = 0;
  ClassifierTraining ct;
  ct.epochs = f.smoke ? 1 : 15;
  ct.batch = 64;
  Array<float> train_x = xt::cast<float>(all_train.x), test_x = xt::cast<float>(test.x);
  train_classifier<T>(clf_class, Loss::Nll, {train_x, all_train.cls}, {test_x, test.cls}, ct,
                      clf_rng,
                      [&](std::size_t, const ClassifierEval& e) { acc_class = 1 - e.error; });
  train_classifier<T>(clf_pos, Loss::Nll, {train_x, all_train.pos}, {test_x, test.pos}, ct, clf_rng,
                      [&](std::size_t, const ClassifierEval& e) { acc_pos = 1 - e.error; });
  fmt::print("judges on held-out real scenes: class accuracy {:.3f}, position accuracy {:.3f}\n",
             acc_class, acc_pos);
  // the samples are only as well judged as the judges judge real scenes
  constexpr double kJudgeFloor = 0.9;
  if (!f.smoke && (acc_class < kJudgeFloor || acc_pos < kJudgeFloor))
    throw std::runtime_error(fmt::format(
        "the judges reach {:.3f} (class) and {:.3f} (position) on real scenes, below {}: their "
        "verdicts on samples would mean little",
        acc_class, acc_pos, kJudgeFloor));

  // 2. The generative models, on the 30 pairs that are not held out: E(x | class),
  //    E(x | position), and the baseline E(x | class, position) (its 10 held-out outputs never
  //    see data).
  Rng init(f.seed + 21);
  std::vector<ConceptModel> models;
  models.push_back(make_model("class", kClasses, f.digits_class_net, f, init, f.seed + 100));
  models.push_back(make_model("position", kPositions, "mlp", f, init, f.seed + 200));
  const ConceptGrid pairs_grid(
      {kClasses, kPositions});  // the joint model's concept (class, position)
  models.push_back(make_model("joint", pairs_grid.size(), "mlp", f, init, f.seed + 300));
  for (std::size_t i = 0; i < gen_train.cls.size(); ++i) {
    models[0].rows[gen_train.cls[i]].push_back(i);
    models[1].rows[gen_train.pos[i]].push_back(i);
    models[2].rows[pairs_grid.index({gen_train.cls[i], gen_train.pos[i]})].push_back(i);
  }
  Progress bar("compose digits", f.digits_steps);
  Rng batch_rng(f.seed + 22);
  Array<T> batch(Shape{f.digits_batch, kSide * kSide});
  for (long s = 0; s < f.digits_steps; ++s) {
    const double lr =
        f.lr + (f.lr_final - f.lr) * double(s) / double(std::max(1L, f.digits_steps - 1));
    std::string info;
    for (auto& m : models) {
      m.opt->options().lr = lr;
      std::size_t c;
      do c = batch_rng.below(m.rows.size());
      while (m.rows[c].empty());  // the joint model's held-out pairs have no data
      for (std::size_t i = 0; i < f.digits_batch; ++i) {
        const std::size_t r = m.rows[c][batch_rng.below(m.rows[c].size())];
        std::copy_n(&gen_train.x(r, 0), kSide * kSide, &batch(i, 0));
      }
      const CdStepStats st = m.cd[c]->step(batch);
      info += fmt::format("{} {:+.3f} ", m.name, st.loss);
    }
    bar.update(s + 1, info);
  }

  // 3. Sampling every (class, position) pair two ways — composed, class AND position, and the
  //    joint model — and judging the samples.
  const std::size_t n = f.digits_samples;
  Rng srng(f.seed + 23);
  struct Tally {
    double both = 0, cls = 0, pos = 0, count = 0;
  };
  Tally composed_seen, composed_held, joint_seen, joint_held;
  json pairs = json::array();
  std::vector<double> rhats;  // of the composed AND samples' energies
  Array<T> show_and(Shape{kClasses, kSide * kSide}), show_class(Shape{kClasses, kSide * kSide}),
      show_not(Shape{kClasses, kSide * kSide}), show_held_composed(Shape{kClasses, kSide * kSide}),
      show_held_joint(Shape{kClasses, kSide * kSide});
  auto judge = [&](const Array<T>& x, std::size_t d, std::size_t p, Tally& t) {
    const auto pc = predict(clf_class, x), pp = predict(clf_pos, x);
    double both = 0;
    for (std::size_t i = 0; i < x.shape()[0]; ++i) {
      t.cls += pc[i] == d;
      t.pos += pp[i] == p;
      both += pc[i] == d && pp[i] == p;
      t.count += 1;
    }
    t.both += both;
    return both / double(x.shape()[0]);
  };
  for (std::size_t d = 0; d < kClasses; ++d)
    for (std::size_t p = 0; p < kPositions; ++p) {
      const bool held = held_out(d, p);
      const Array<T> xc =
          sample_scenes(And<T>({models[0].energy[d], models[1].energy[p]}), n, f, srng, &rhats);
      const Array<T> xj = sample_scenes(models[2].energy[pairs_grid.index({d, p})], n, f, srng);
      const double fc = judge(xc, d, p, held ? composed_held : composed_seen),
                   fj = judge(xj, d, p, held ? joint_held : joint_seen);
      pairs.push_back(
          {{"class", d}, {"position", p}, {"held_out", held}, {"composed", fc}, {"joint", fj}});
      if (p == (d + 1) % kPositions) std::copy_n(&xc(0, 0), kSide * kSide, &show_and(d, 0));
      if (held) {
        std::copy_n(&xc(0, 0), kSide * kSide, &show_held_composed(d, 0));
        std::copy_n(&xj(0, 0), kSide * kSide, &show_held_joint(d, 0));
      }
    }

  // 4. OR of two classes (at a position), and class AND position AND NOT another class.
  const std::vector<std::pair<std::size_t, std::size_t>> or_pairs = {
      {0, 1}, {2, 7}, {3, 8}, {4, 9}, {5, 6}};
  json ors = json::array();
  double or_balance = 0, or_inside = 0;
  for (std::size_t k = 0; k < or_pairs.size(); ++k) {
    const auto [a, b] = or_pairs[k];
    const std::size_t p = k % kPositions;
    const Array<T> x = sample_scenes(
        And<T>({Or<T>({models[0].energy[a], models[0].energy[b]}), models[1].energy[p]}), n, f,
        srng);
    const auto pc = predict(clf_class, x), pp = predict(clf_pos, x);
    double fa = 0, fb = 0, fpos = 0;
    for (std::size_t i = 0; i < n; ++i) {
      fa += (pc[i] == a) / double(n);
      fb += (pc[i] == b) / double(n);
      fpos += (pp[i] == p) / double(n);
    }
    const double balance = std::max(fa, fb) > 0 ? std::min(fa, fb) / std::max(fa, fb) : 0.0;
    or_balance += balance / double(or_pairs.size());
    or_inside += (fa + fb) / double(or_pairs.size());
    ors.push_back({{"classes", {a, b}},
                   {"position", p},
                   {"fraction_a", fa},
                   {"fraction_b", fb},
                   {"fraction_at_position", fpos},
                   {"balance", balance}});
  }
  Tally not_tally;
  double not_avoided = 0;
  for (std::size_t d = 0; d < kClasses; ++d) {
    const std::size_t p = (d + 1) % kPositions, other = (d + 1) % kClasses;
    const Array<T> x = sample_scenes(Not<T>(And<T>({models[0].energy[d], models[1].energy[p]}),
                                            models[0].energy[other], T(f.digits_not_weight)),
                                     n, f, srng);
    judge(x, d, p, not_tally);
    const auto pc = predict(clf_class, x);
    for (std::size_t i = 0; i < n; ++i) not_avoided += (pc[i] != other) / double(n * kClasses);
    std::copy_n(&x(0, 0), kSide * kSide, &show_not(d, 0));
    // the first row of the figure: the class alone
    const Array<T> xs = sample_scenes(models[0].energy[d], 1, f, srng);
    std::copy_n(&xs(0, 0), kSide * kSide, &show_class(d, 0));
  }

  auto frac = [](const Tally& t) { return t.count > 0 ? t.both / t.count : 0.0; };
  json res = {{"judge_accuracy_class", acc_class},
              {"judge_accuracy_position", acc_pos},
              {"and_composed_seen", frac(composed_seen)},
              {"and_composed_held_out", frac(composed_held)},
              {"and_joint_seen", frac(joint_seen)},
              {"and_joint_held_out", frac(joint_held)},
              {"or_mean_balance", or_balance},
              {"or_mean_fraction_either_class", or_inside},
              {"and_not_all_three", frac(not_tally)},
              {"and_not_avoids_negated_class", not_avoided},
              {"pairs", pairs},
              {"or", ors},
              {"samples_per_pair", n},
              {"and_samples_energy_rhat_median", rhats.empty() ? json(nullptr) : json([&] {
                 std::vector<double> r = rhats;
                 std::nth_element(r.begin(), r.begin() + std::ptrdiff_t(r.size() / 2), r.end());
                 return r[r.size() / 2];
               }())},
              {"sampler_acceptance", 1.0},
              {"seconds", bar.seconds()}};
  const int status = check_finite("compose", res);
  write_json(dir / "results.json", res);
  std::string md = fmt::format(
      "Judges (trained on real scenes, all 40 pairs): class accuracy {:.3f}, position accuracy "
      "{:.3f} on held-out real scenes.\n\n"
      "| samples showing both requested concepts | pairs seen in training (30) | pairs held out "
      "(10) |\n|---|---:|---:|\n"
      "| class AND position (two models, composed) | {:.3f} | {:.3f} |\n"
      "| joint model E(x \\| class, position) | {:.3f} | {:.3f} |\n\n"
      "OR of two classes at a position (5 pairs): {:.3f} of the samples show one of the two "
      "classes, balance min/max {:.2f}.\n"
      "class AND position AND NOT another class (w = {}): {:.3f} show class and position, "
      "{:.3f} avoid the negated class.\n",
      acc_class, acc_pos, frac(composed_seen), frac(composed_held), frac(joint_seen),
      frac(joint_held), or_inside, or_balance, f.digits_not_weight, frac(not_tally), not_avoided);
  write_file_atomic(dir / "results.md", md);
  // Figures: each row adds a concept (class d; AND position; AND NOT class d+1), and the held-out
  // pairs composed beside the joint model's attempt.
  Array<T> rows3(Shape{3 * kClasses, kSide * kSide}), held(Shape{2 * kClasses, kSide * kSide});
  std::copy(show_class.begin(), show_class.end(), rows3.begin());
  std::copy(show_and.begin(), show_and.end(),
            rows3.begin() + std::ptrdiff_t(kClasses * kSide * kSide));
  std::copy(show_not.begin(), show_not.end(),
            rows3.begin() + std::ptrdiff_t(2 * kClasses * kSide * kSide));
  std::copy(show_held_composed.begin(), show_held_composed.end(), held.begin());
  std::copy(show_held_joint.begin(), show_held_joint.end(),
            held.begin() + std::ptrdiff_t(kClasses * kSide * kSide));
  save_tiles(dir / "concepts.csv", rows3, kSide, kClasses, false);
  save_tiles(dir / "held_out.csv", held, kSide, kClasses, false);
  plot(dir, "pictures.gp",
       tiles_script({"concepts", "held_out"},
                    {"rows: class d; AND position (d+1) mod 4; AND NOT class d+1",
                     "held-out pairs (d, d mod 4): composed (top), joint model (bottom)"}),
       {"concepts.png", "held_out.png"});
  fmt::print("\n{}\noutputs in {} ({:.0f} s)\n", md, dir.string(), bar.seconds());
  return status;
}

// The exact study on the plane (see the file's comment).
int plane_study(const Flags& f) {
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
  // Samples with their diagnostics: acceptance, and ESS and split-R̂ of the energy traces'
  // second halves (how far the chains from noise are from mixed).
  struct Run {
    Array<T> x;
    double acceptance = 1, ess = NAN, rhat = NAN;
  };
  auto diagnose = [](Run& r, const Traces& traces) {
    const Traces half = second_halves(traces);
    if (!half.empty() && half[0].size() >= kMinDrawsForEss) {
      r.ess = effective_sample_size(half);
      r.rhat = split_rhat(half);
    }
  };
  auto langevin_samples = [&](const EnergyPtr<T>& e, std::uint64_t seed) {
    Rng rng(seed);
    Run r{rng.uniform_array<T>({f.eval_samples, 2}, -f.box, f.box)};
    const ChainStats st = Langevin<T>(with_wall(e, f.box), {.steps = f.sample_steps,
                                                            .step_size = f.step_size,
                                                            .threads = f.threads,
                                                            .trace_energies = true})
                              .run(r.x, rng);
    diagnose(r, st.energy_traces);
    return r;
  };
  auto mala_samples = [&](const EnergyPtr<T>& e, std::uint64_t seed) {
    Rng rng(seed);
    Run r{rng.uniform_array<T>({f.eval_samples, 2}, -f.box, f.box)};
    TraceRecorder<T> rec;
    r.acceptance = Mala<T>(with_wall(e, f.box), {.steps = f.sample_steps, .step_size = f.step_size})
                       .run(r.x, rng, rec.observer())
                       .acceptance;
    diagnose(r, rec.traces);
    return r;
  };
  std::string diag_md =
      "\nThe samplers' diagnostics (energy traces, second half of each chain):\n\n"
      "| composite | Langevin ESS / R̂: true, learned | MALA acceptance / ESS / R̂: true, learned "
      "|\n|---|---:|---:|\n";

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
    const EnergyPtr<T> et = concept_row ? truth[k] : composites[k - kConcepts.size()].build(truth);
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
    const Run rlt = langevin_samples(et, f.seed + 4), rll = langevin_samples(el, f.seed + 4),
              rmt = mala_samples(et, f.seed + 5), rml = mala_samples(el, f.seed + 5);
    const double lt = mmd2_unbiased(rlt.x, exact, bandwidths),
                 ll = mmd2_unbiased(rll.x, exact, bandwidths),
                 mt = mmd2_unbiased(rmt.x, exact, bandwidths),
                 ml = mmd2_unbiased(rml.x, exact, bandwidths);
    diag_md += fmt::format(
        "| {} | {:.0f} / {:.2f}, {:.0f} / {:.2f} | {:.2f} / {:.0f} / {:.2f}, {:.2f} / {:.0f} / "
        "{:.2f} |\n",
        name, rlt.ess, rlt.rhat, rll.ess, rll.rhat, rmt.acceptance, rmt.ess, rmt.rhat,
        rml.acceptance, rml.ess, rml.rhat);
    csv.row(name, {tv, nll_t, nll_l, floor, lt, mt, ll, ml});
    results.push_back(
        {{"composite", name},
         {"formula", concept_row ? "a trained concept" : composites[k - kConcepts.size()].formula},
         {"total_variation", tv},
         {"nll_exact_samples_true", nll_t},
         {"nll_exact_samples_learned", nll_l},
         {"mmd2_exact_vs_exact", floor},
         {"mmd2_langevin_true", lt},
         {"mmd2_langevin_learned", ll},
         {"mmd2_mala_true", mt},
         {"mmd2_mala_learned", ml},
         {"mala_acceptance_true", rmt.acceptance},
         {"mala_acceptance_learned", rml.acceptance},
         {"langevin_energy_ess_true", rlt.ess},
         {"langevin_energy_rhat_true", rlt.rhat},
         {"langevin_energy_ess_learned", rll.ess},
         {"langevin_energy_rhat_learned", rll.rhat},
         {"mala_energy_ess_true", rmt.ess},
         {"mala_energy_rhat_true", rmt.rhat},
         {"mala_energy_ess_learned", rml.ess},
         {"mala_energy_rhat_learned", rml.rhat}});
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
  md += diag_md;

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
  const int status = check_finite("compose", results);
  write_json(dir / "results.json", results);
  write_file_atomic(dir / "results.md", md);
  plot(dir, "densities.gp", densities_script(rows, f.box), {"densities.png"});
  fmt::print("\n{}\noutputs in {} ({:.0f} s)\n", md, dir.string(), bar.seconds());
  return status;
}

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
  app.add_option("--study", f.study, "comma-separated: plane (exact, 2-D), digits (scenes)")
      ->capture_default_str();
  app.add_option("--data-dir", f.data_dir, "where the digits are (default: the library's data)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--digits-class-net", f.digits_class_net,
                 "digits: the class model's network: mlp, or cnn (global average pooling: "
                 "position-invariant)")
      ->check(CLI::IsMember({"mlp", "cnn"}))
      ->capture_default_str();
  app.add_option("--digits-steps", f.digits_steps, "digits: CD steps per model")
      ->check(CLI::Range(1L, 100000000L))
      ->capture_default_str();
  app.add_option("--digits-hidden", f.digits_hidden, "digits: width of the networks")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  app.add_option("--digits-batch", f.digits_batch, "digits: scenes per CD step")
      ->check(CLI::Range(2, 1 << 20))
      ->capture_default_str();
  app.add_option("--digits-buffer", f.digits_buffer, "digits: persistent chains per concept value")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  app.add_option("--digits-samples", f.digits_samples, "digits: samples judged per composite")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--digits-step-size", f.digits_step_size, "digits: Langevin step (JEM: 1)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--digits-noise", f.digits_noise, "digits: Langevin noise sd (JEM: 0.01)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--digits-alpha", f.digits_alpha, "digits: weight of alpha (E+^2 + E-^2)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  app.add_option("--digits-not-weight", f.digits_not_weight,
                 "digits: w of class AND position AND NOT another class (E_a - w E_b)")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  app.add_option("--digits-langevin-steps", f.digits_langevin_steps,
                 "digits: Langevin steps per CD step")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--digits-sample-steps", f.digits_sample_steps,
                 "digits: Langevin steps from noise for judged samples")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_flag("--smoke", f.smoke, "a few steps on a small model, for CI");
  if (auto code = parse_flags(app, argc, argv)) return *code;
  if (f.smoke)
    SmokeSizes{app}("--steps", f.steps, 20)("--hidden", f.hidden, 16)("--grid", f.grid, 40)(
        "--train-size", f.train_size, 2000)("--eval-samples", f.eval_samples, 100)(
        "--sample-steps", f.sample_steps, 20)("--buffer", f.buffer, 500)(
        "--digits-steps", f.digits_steps, 10)("--digits-hidden", f.digits_hidden, 16)(
        "--digits-buffer", f.digits_buffer, 100)("--digits-samples", f.digits_samples, 2)(
        "--digits-sample-steps", f.digits_sample_steps, 5);
  try {
    // every input is accepted before the first run folder is made
    const std::vector<std::string> studies = parse_list("--study", f.study);
    for (const auto& study : studies)
      if (study != "plane" && study != "digits")
        throw FlagError(fmt::format("--study: unknown study '{}' (expected plane, digits)", study));
    {  // the largest arrays at once: each study's network in training or on its whole grid
      std::vector<double> plane{2}, digits{double(kSide * kSide)};
      for (std::size_t l = 0; l < f.layers; ++l) plane.push_back(double(f.hidden));
      plane.push_back(double(kConcepts.size()));
      digits.insert(digits.end(), {double(f.digits_hidden), double(f.digits_hidden), kClasses});
      const double rows = std::max({double(f.batch), double(f.grid) * double(f.grid),
                                    double(f.eval_samples), double(f.buffer)});
      require_fits_memory(
          std::max(mlp_bytes(plane, rows) + 8.0 * 3 * double(f.train_size + f.buffer),
                   mlp_bytes(digits, double(f.digits_batch)) +
                       4.0 * kSide * kSide * double(f.digits_buffer) * kClasses),
          "--hidden, --layers, --grid, --buffer, --train-size and the --digits-* sizes");
    }
    if (std::count(studies.begin(), studies.end(), "digits"))
      (void)default_digits_path(f.data_dir);  // the digits must be there before the plane runs
    int status = 0;
    for (const auto& study : studies) {
      status = std::max(status, study == "plane" ? plane_study(f) : digits_study(f));
    }
    return status;
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
    fmt::print(stderr, "compose: {}\n", error_line(e));
    return 1;
  }
}
