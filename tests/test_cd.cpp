// Contrastive divergence: the CD gradient against the exact maximum-likelihood gradient, the
// divergence guard, checkpoints and resuming.
#include <cmath>
#include <filesystem>

#include <xtensor/xview.hpp>

#include "ebm/boltzmann.hpp"
#include "ebm/cd.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;
using Catch::Matchers::Contains;

namespace {
// A non-Gaussian, confined energy whose exact gradient a grid can compute:
// E(x) = MLP(x) + ½ ||A(x - μ)||²
struct Model {
  Rng rng{21};
  MlpEnergy<double> mlp{2, {16}, Activation::Tanh, rng};
  GaussianEnergy<double> confine{Array<double>{0.2, -0.1}, Array<double>{{0.9, 0.2}, {0.0, 0.8}}};
  SumEnergy<double> energy{{&mlp, &confine}};
};
}  // namespace

TEST_CASE("the CD gradient with long chains matches the exact MLE gradient", "[cd]") {
  Model m;
  Array<double> data = randn({64, 2}, 22);
  Domain<double> grid = grid_2d<double>(-8, 8, 200, -8, 8, 200);
  auto exact = exact_mle_gradient(m.energy, grid, data).nll_gradient();

  // Long Langevin chains from noise: 4000 chains, 3000 steps of ε = 0.005 (ULA's bias on the
  // dream term is of order ε/2 relative, well under the Monte Carlo error below).
  Adam<double> opt(m.energy.parameters(), {});
  CdOptions o;
  o.init = ChainInit::Noise;
  o.noise_lo = -3;
  o.noise_hi = 3;
  o.langevin = {.steps = 3000, .step_size = 0.005};
  ContrastiveDivergence<double> cd(m.energy, opt, o, 23, 2);
  Array<double> x_neg, x_pos_big(Shape{4000, 2});
  cd.sample_negatives(x_pos_big, x_neg);  // x_pos only sets the batch size here
  TD t;
  auto cd_grad = param_gradients<double>(cd.loss(t, data, x_neg), m.energy.parameters());

  // Tolerance: 5 standard errors of the dream term, from the spread of per-chain gradients.
  auto params = m.energy.parameters();
  std::vector<Array<double>> s1, s2;
  for (auto* p : params) {
    s1.emplace_back(p->value.shape(), 0.0);
    s2.emplace_back(p->value.shape(), 0.0);
  }
  const std::size_t n = x_neg.shape()[0];
  for (std::size_t i = 0; i < n; ++i) {
    TD ti;
    Array<double> xi = xt::view(x_neg, xt::range(i, i + 1), xt::all());
    auto gi = param_gradients<double>(sum(m.energy(ti, ti.constant(xi))), params);
    for (std::size_t k = 0; k < params.size(); ++k) {
      s1[k] += gi[k];
      s2[k] += gi[k] * gi[k];
    }
  }
  std::size_t checked = 0;
  for (std::size_t k = 0; k < params.size(); ++k)
    for (std::size_t j = 0; j < exact[k].size(); ++j) {
      double mean = s1[k].data()[j] / n, var = s2[k].data()[j] / n - mean * mean;
      double se = std::sqrt(std::max(var, 0.0) / n);
      INFO(params[k]->name << "[" << j << "] CD " << cd_grad[k].data()[j] << " exact "
                           << exact[k].data()[j] << " SE " << se);
      CHECK(std::abs(cd_grad[k].data()[j] - exact[k].data()[j]) < 5 * se + 1e-9);
      ++checked;
    }
  CHECK(checked == 2 * 16 + 16 + 16 + 1 + 2 + 4);
}

TEST_CASE("persistent CD lowers the exact NLL of 2-D data", "[cd]") {
  Model m;
  Rng data_rng(31);
  Array<double> data = data_rng.normal_array<double>({512, 2}, 0.0, 0.7);
  for (std::size_t i = 0; i < 512; ++i) data(i, 0) += i % 2 ? 1.5 : -1.5;  // two blobs
  Domain<double> grid = grid_2d<double>(-8, 8, 120, -8, 8, 120);
  const double nll0 = nll(m.energy, grid, data);
  Adam<double> opt(m.energy.parameters(), {.lr = 1e-2});
  CdOptions o;
  o.langevin = {.steps = 20, .step_size = 0.05};
  o.noise_lo = -4;
  o.noise_hi = 4;
  o.buffer_size = 1000;
  ContrastiveDivergence<double> cd(m.energy, opt, o, 32, 2);
  Array<double> batch(Shape{64, 2});
  for (int s = 0; s < 300; ++s) {
    for (std::size_t i = 0; i < 64; ++i) {
      std::size_t r = cd.rng().below(512);
      batch(i, 0) = data(r, 0);
      batch(i, 1) = data(r, 1);
    }
    cd.step(batch);
  }
  const double nll1 = nll(m.energy, grid, data);
  INFO("NLL before " << nll0 << " after " << nll1);
  CHECK(nll1 < nll0 - 0.2);
}

TEST_CASE("the divergence guard stops a run whose energies blow up and changes nothing", "[cd]") {
  Model m;
  Adam<double> opt(m.energy.parameters(), {.lr = 1e-2});
  CdOptions o;
  o.langevin = {.steps = 5, .step_size = 0.05};
  o.buffer_size = 50;
  ContrastiveDivergence<double> cd(m.energy, opt, o, 41, 2);
  Array<double> batch = randn({16, 2}, 42);
  for (int s = 0; s < 3; ++s) cd.step(batch);
  Checkpoint good = cd.checkpoint();

  cd.sampler().options().step_size = 1e200;  // the chains fly off: energies overflow
  CHECK_THROWS_AS(cd.step(batch), DivergenceError);
  CHECK_THROWS_WITH(cd.step(batch), Contains("diverged at step 4") && Contains("non-finite"));
  Checkpoint after = cd.checkpoint();
  for (const auto& [name, a] : good.arrays) {
    if (name.rfind("rng/", 0) == 0) continue;  // the generator did advance
    INFO(name);
    CHECK(same(a, after.arrays.at(name)));
  }
  CHECK(cd.steps_done() == 3);

  cd.sampler().options().step_size = 0.05;
  cd.options().loss_bound = 1e-12;  // a bound any real loss exceeds
  CHECK_THROWS_WITH(cd.step(batch), Contains("|loss| >"));
}

TEST_CASE("resuming from a checkpoint file continues the same run bit for bit", "[cd]") {
  // with each dream sampler: Langevin, MALA, and parallel tempering (whose hot levels persist)
  for (DreamSampler sampler :
       {DreamSampler::Langevin, DreamSampler::Mala, DreamSampler::Tempering}) {
    INFO("sampler " << int(sampler));
    const auto path = std::filesystem::temp_directory_path() / "ebl_test_cd_resume.ckpt";
    auto run = [&](int steps, const Checkpoint* resume, Checkpoint* out) {
      Model m;  // same construction; parameters replaced on resume
      Adam<double> opt(m.energy.parameters(), {.lr = 1e-2});
      CdOptions o;
      o.langevin = {.steps = 5, .step_size = 0.05};
      o.buffer_size = 100;
      o.alpha = 0.1;
      o.sampler = sampler;
      o.tempering_ladder = {1.0, 2.0, 4.0};
      ContrastiveDivergence<double> cd(m.energy, opt, o, 51, 2);
      if (resume) cd.restore(*resume);
      Array<double> batch(Shape{16, 2});
      for (int s = 0; s < steps; ++s) {
        for (auto& v : batch) v = cd.rng().normal();
        cd.step(batch);
      }
      *out = cd.checkpoint();
    };
    Checkpoint straight, half, resumed;
    run(10, nullptr, &straight);
    run(5, nullptr, &half);
    half.save(path);
    Checkpoint loaded = Checkpoint::load(path);
    run(5, &loaded, &resumed);
    REQUIRE(resumed.integer("step") == 10);
    CHECK(straight.arrays.contains("dream/replicas") == (sampler == DreamSampler::Tempering));
    for (const auto& [name, a] : straight.arrays) {
      INFO(name);
      CHECK(same(a, resumed.arrays.at(name)));
    }
    CHECK(straight.integers == resumed.integers);
    std::filesystem::remove(path);
  }
}

TEST_CASE("the divergence guard leaves tempering's hot levels as they were", "[cd]") {
  Model m;
  Adam<double> opt(m.energy.parameters(), {.lr = 1e-2});
  CdOptions o;
  o.langevin = {.steps = 3, .step_size = 0.05};
  o.buffer_size = 50;
  o.sampler = DreamSampler::Tempering;
  o.tempering_ladder = {1.0, 3.0};
  ContrastiveDivergence<double> cd(m.energy, opt, o, 61, 2);
  Array<double> batch = randn({16, 2}, 62);
  for (int s = 0; s < 3; ++s) cd.step(batch);
  const Checkpoint good = cd.checkpoint();
  cd.options().loss_bound = 1e-12;  // a bound any real loss exceeds
  CHECK_THROWS_AS(cd.step(batch), DivergenceError);
  const Checkpoint after = cd.checkpoint();
  CHECK(same(good.arrays.at("dream/replicas"), after.arrays.at("dream/replicas")));
  CHECK(good.integer("dream/iteration") == after.integer("dream/iteration"));
  o.tempering_ladder = {1.0};
  CHECK_THROWS_WITH((ContrastiveDivergence<double>(m.energy, opt, o, 1, 2)),
                    Contains("at least 2 levels"));
  CHECK(parse_dream_sampler("pt") == DreamSampler::Tempering);
  CHECK_THROWS_WITH(parse_dream_sampler("gibbs"), Contains("expected langevin, mala, pt"));
}

TEST_CASE("a CD checkpoint with any single byte changed is refused as corrupt", "[cd][io]") {
  Model m;
  Adam<double> opt(m.energy.parameters(), {.lr = 1e-2});
  CdOptions o;
  o.langevin = {.steps = 2, .step_size = 0.05};
  o.buffer_size = 20;
  ContrastiveDivergence<double> cd(m.energy, opt, o, 61, 2);
  Array<double> batch = randn({8, 2}, 62);
  for (int s = 0; s < 2; ++s) cd.step(batch);
  Checkpoint c = cd.checkpoint();
  c.strings["config"] = R"({"lr": 0.01})";
  const std::string good = c.bytes();
  // every region is in the file: parameters, optimizer state, chains, generator, configuration
  for (const char* region : {"param/", "optim/", "chains", "rng/s0", "step", "config"})
    REQUIRE(good.find(region) != std::string::npos);
  std::size_t refused = 0;
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = char(bad[i] ^ 0x5a);
    try {
      Checkpoint::parse(bad, "cd.bin");
    } catch (const IoError& e) {
      refused += std::string(e.what()).find("corrupt") != std::string::npos;
    }
  }
  CHECK(refused == good.size());
  // and the intact file restores the same state
  ContrastiveDivergence<double> again(m.energy, opt, o, 99, 2);
  again.restore(Checkpoint::parse(good, "cd.bin"));
  CHECK(again.steps_done() == 2);
}

TEST_CASE("a CD step on threads computes the serial step's loss, gradient and update", "[cd]") {
  // Chains from the data at zero temperature are deterministic, so the serial and the threaded
  // steps see the same x⁻; the θ-pass splits x⁺ and x⁻ into blocks on separate tapes and sums
  // their gradients: every parameter after one SGD step must agree to rounding. 13 rows: uneven
  // blocks.
  Array<double> data = randn({13, 2}, 31);
  std::vector<std::vector<Array<double>>> after;
  std::vector<CdStepStats> stats;
  for (int threads : {1, 2, 3}) {
    Model m;
    SGD<double> opt(m.energy.parameters(), {.lr = 0.1});
    CdOptions o;
    o.init = ChainInit::Data;
    o.alpha = 0.3;
    o.langevin = {.steps = 5, .step_size = 0.05, .temperature = 0, .threads = threads};
    ContrastiveDivergence<double> cd(m.energy, opt, o, 32, 2);
    stats.push_back(cd.step(data));
    std::vector<Array<double>> values;
    for (auto* p : m.energy.parameters()) values.push_back(p->value);
    after.push_back(values);
  }
  for (std::size_t k = 1; k < after.size(); ++k) {
    INFO((k + 1) << " threads");
    CHECK(stats[k].loss == Approx(stats[0].loss).epsilon(1e-12));
    CHECK(stats[k].e_pos == Approx(stats[0].e_pos).epsilon(1e-12));
    CHECK(stats[k].e_neg == Approx(stats[0].e_neg).epsilon(1e-12));
    CHECK(stats[k].grad_norm == Approx(stats[0].grad_norm).epsilon(1e-12));
    CHECK(stats[k].grad_norm > 0);
    for (std::size_t p = 0; p < after[0].size(); ++p)
      for (std::size_t e = 0; e < after[0][p].size(); ++e)
        CHECK(after[k][p].data()[e] == Approx(after[0][p].data()[e]).margin(1e-12));
  }
}

TEST_CASE("the divergence guard also stops a threaded step before any state changes", "[cd]") {
  Model m;
  SGD<double> opt(m.energy.parameters(), {.lr = 0.1});
  CdOptions o;
  o.init = ChainInit::Data;
  o.loss_bound = 1e-12;  // any loss trips it
  o.langevin = {.steps = 2, .step_size = 0.05, .threads = 2};
  ContrastiveDivergence<double> cd(m.energy, opt, o, 33, 2);
  std::vector<Array<double>> before;
  for (auto* p : m.energy.parameters()) before.push_back(p->value);
  CHECK_THROWS_AS(cd.step(randn({8, 2}, 34)), DivergenceError);
  std::size_t k = 0;
  for (auto* p : m.energy.parameters()) CHECK(same(p->value, before[k++]));
  CHECK(cd.steps_done() == 0);
}
