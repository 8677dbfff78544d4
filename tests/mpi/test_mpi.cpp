// Data-parallel training over MPI, run by CTest as `mpirun -np 2` and `mpirun -np 3 --oversubscribe`
// (every rank runs every test case, in the same order: the collectives inside line up).
//
// What it shows: an R-rank CD (and JEM, and RBM) step equals the serial step on the union of the
// ranks' batches, up to the order of the gradient's additions (tolerance below); parameters stay
// bit-identical across ranks over many stochastic steps, and the checksum catches a rank perturbed
// by one ulp; a divergence on one rank stops every rank at the same step with nothing changed, and
// the gathered checkpoint resumes every rank exactly; the split evaluations (quadrature, mean
// energy, AIS, held-out log-likelihood) equal the serial ones or the exact value.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <limits>
#include <memory>

#include "distributed/checkpoint.hpp"
#include "distributed/data_parallel.hpp"
#include "distributed/launch.hpp"
#include "ebm/boltzmann.hpp"
#include "ebm/cd.hpp"
#include "ebm/jem.hpp"
#include "ebm/rbm.hpp"
#include "tests/helpers.hpp"

namespace ebl::test {
extern Comm* g_comm;  // made by main() (tests/mpi/mpi_main.cpp)
}

using namespace ebl;
using namespace ebl::test;
using Catch::Matchers::Contains;

namespace {

Comm& comm() {
  return *ebl::test::g_comm;
}
int R() {
  return comm().size();
}

// Rows [rank's block] of x.
Array<double> my_rows(const Array<double>& x) {
  const RowBlock rb = row_block(x.shape()[0], comm());
  const std::size_t d = x.shape()[1];
  Array<double> out(Shape{rb.size(), d});
  std::copy_n(x.data() + rb.begin * d, rb.size() * d, out.data());
  return out;
}

// Largest |a - b| / (|b| + 1) over every parameter.
double max_param_diff(const std::vector<Parameter<double>*>& a,
                      const std::vector<Parameter<double>*>& b) {
  double d = 0;
  for (std::size_t k = 0; k < a.size(); ++k)
    for (std::size_t i = 0; i < a[k]->value.size(); ++i)
      d = std::max(d, std::abs(a[k]->value.data()[i] - b[k]->value.data()[i]) /
                          (std::abs(b[k]->value.data()[i]) + 1));
  return d;
}

// Does every rank hold the same bits? (the checksums, gathered)
bool replicas_identical(const std::vector<Parameter<double>*>& p) {
  const auto sums = comm().allgather(parameter_checksum(p));
  return std::all_of(sums.begin(), sums.end(), [&](auto s) { return s == sums[0]; });
}

// The merged checkpoint of every rank, on every rank.
Checkpoint everyones(const Checkpoint& local) {
  Checkpoint merged = gather_checkpoint(comm(), local);
  std::string bytes = comm().root() ? merged.bytes() : std::string();
  comm().broadcast(bytes);
  return Checkpoint::parse(bytes, "merged");
}

struct CdModel {
  Rng rng{5};
  MlpEnergy<double> energy{2, {16, 16}, Activation::Silu, rng};
  Adam<double> opt{energy.parameters(), {.lr = 1e-2}};
};

}  // namespace

// Tolerance of the equivalence tests: the reduced gradient is the serial one summed in another
// order, a relative difference of a few ulps (~1e-15) per step; Adam's update is a smooth function
// of it away from zero gradients; 5 steps of lr 1e-2 leave differences near 1e-14. 1e-10 leaves
// room for that and would still catch any wrong scaling or a missing rank (differences ~1e-3).
constexpr double kTol = 1e-10;

TEST_CASE("an R-rank CD step equals the serial step on the union of the batches", "[mpi][cd]") {
  const std::size_t B = 12;  // a multiple of 2 and 3
  CdOptions o;
  o.init = ChainInit::Data;  // CD-k from the data with T = 0: chains a function of their rows
  o.langevin = {.steps = 5, .step_size = 0.01, .temperature = 0};
  o.alpha = 0.1;
  CdModel serial, parallel;
  ContrastiveDivergence<double> cd_serial(serial.energy, serial.opt, o, 7, 2);
  ContrastiveDivergence<double> cd_par(parallel.energy, parallel.opt, o,
                                       rank_stream(7, comm().rank()), 2);
  cd_par.set_comm(&comm(), 1);  // checksums compared after every step
  for (int s = 0; s < 5; ++s) {
    const Array<double> x = randn({B, 2}, 100 + std::uint64_t(s));
    const CdStepStats a = cd_serial.step(x), b = cd_par.step(my_rows(x));
    CHECK(std::abs(a.loss - b.loss) < kTol);
    CHECK(std::abs(a.e_pos - b.e_pos) < kTol);
    CHECK(std::abs(a.e_neg - b.e_neg) < kTol);
    CHECK(std::abs(a.grad_norm - b.grad_norm) < kTol * (1 + a.grad_norm));
  }
  const double d = max_param_diff(parallel.energy.parameters(), serial.energy.parameters());
  INFO("max relative parameter difference " << d);
  CHECK(d < kTol);
  CHECK(d > 0.0 - 1);  // (a number, not NaN)
  CHECK(replicas_identical(parallel.energy.parameters()));
}

TEST_CASE("parameters stay bit-identical across ranks; a perturbed rank is caught", "[mpi][cd]") {
  CdOptions o;  // persistent chains, T = 1: every rank's chains and draws its own
  o.langevin = {.steps = 10, .step_size = 0.01};
  o.buffer_size = 64;
  CdModel m;
  ContrastiveDivergence<double> cd(m.energy, m.opt, o, rank_stream(9, comm().rank()), 2);
  cd.set_comm(&comm(), 25);
  Rng data(10 + std::uint64_t(comm().rank()));  // each rank its own data
  for (int s = 0; s < 100; ++s) {
    Array<double> x = data.normal_array<double>({8, 2});
    REQUIRE_NOTHROW(cd.step(x));  // the checksums are compared at steps 25, 50, 75, 100
  }
  CHECK(replicas_identical(m.energy.parameters()));
  // the chains, though, are each rank's own
  Parameter<double> chains_now("chains", cd.last_negatives());
  const auto chains = comm().allgather(parameter_checksum<double>({&chains_now}));
  CHECK(chains[0] != chains[std::size_t(R() - 1)]);

  // one ulp on the last rank: every rank raises the error, naming the step and that rank
  if (comm().rank() == R() - 1) {
    double& w = m.energy.parameters()[0]->value.data()[0];
    w = std::nextafter(w, 1e9);
  }
  try {
    check_replicas(comm(), m.energy.parameters(), cd.steps_done());
    FAIL("no drift reported");
  } catch (const ReplicaDriftError& e) {
    CHECK_THAT(e.what(),
               Contains("after step 100") && Contains(fmt::format("rank(s) {} (", R() - 1)));
  }
}

TEST_CASE("a divergence on one rank stops every rank; the checkpoint resumes every rank exactly",
          "[mpi][cd]") {
  CdOptions o;
  o.langevin = {.steps = 5, .step_size = 0.01};
  o.buffer_size = 32;
  auto batch = [](int s) {  // each rank's own batch at step s
    Rng r(1000 + 10 * std::uint64_t(s) + std::uint64_t(comm().rank()));
    return r.normal_array<double>({6, 2});
  };
  // the reference: 15 good steps straight
  CdModel ref;
  ContrastiveDivergence<double> cd_ref(ref.energy, ref.opt, o, rank_stream(3, comm().rank()), 2);
  cd_ref.set_comm(&comm());
  for (int s = 0; s < 15; ++s) cd_ref.step(batch(s));

  // 10 steps, a checkpoint, then a batch with a NaN on the last rank only
  CdModel m;
  ContrastiveDivergence<double> cd(m.energy, m.opt, o, rank_stream(3, comm().rank()), 2);
  cd.set_comm(&comm());
  for (int s = 0; s < 10; ++s) cd.step(batch(s));
  const Checkpoint saved = everyones(cd.checkpoint());
  CHECK(checkpoint_ranks(saved) == R());
  Array<double> bad = batch(10);
  if (comm().rank() == R() - 1) bad(0, 0) = std::numeric_limits<double>::quiet_NaN();
  bool stopped = false;
  try {
    cd.step(bad);
  } catch (const DivergenceError& e) {
    stopped = true;
    CHECK_THAT(e.what(), Contains("diverged at step 11"));
  }
  CHECK(stopped);  // on every rank, not only the one with the NaN
  CHECK(cd.steps_done() == 10);
  for (auto* p : m.energy.parameters())  // nothing changed
    CHECK(same(p->value, rank_view(saved, comm().rank(), R()).arrays.at("param/" + p->name)));

  // resume from the checkpoint (in a fresh trainer, as a new process would) and go on
  CdModel resumed;
  ContrastiveDivergence<double> cd2(resumed.energy, resumed.opt, o, Rng(12345), 2);
  cd2.set_comm(&comm());
  cd2.restore(rank_view(saved, comm().rank(), R()));
  for (int s = 10; s < 15; ++s) cd2.step(batch(s));
  CHECK(max_param_diff(resumed.energy.parameters(), ref.energy.parameters()) == 0.0);
  CHECK(same(cd2.last_negatives(), cd_ref.last_negatives()));  // this rank's chains, too

  // another number of ranks is refused, naming both
  CHECK_THROWS_WITH(rank_view(saved, 0, R() + 1),
                    Contains(fmt::format("written by {} ranks and this run has {}", R(), R() + 1)));
}

TEST_CASE("an R-rank JEM step equals the serial step on the union of the batches", "[mpi][jem]") {
  auto model = [] {
    Rng rng(4);
    return ClassifierEbm<double>(
        std::make_shared<MLP<double>>(std::vector<std::size_t>{5, 8, 3}, Activation::Tanh, rng), 3);
  };
  // the discriminative part (no SGLD, no data noise): deterministic, so comparable
  const JemOptions o{.generative = false, .lr = 1e-2, .warmup_steps = 1, .data_noise = 0};
  ClassifierEbm<double> ms = model(), mp = model();
  JemTrainer<double> serial(ms, o, 1, 5), par(mp, o, rank_stream(1, comm().rank()), 5);
  par.set_comm(&comm(), 1);
  const std::size_t B = 12;
  for (int s = 0; s < 5; ++s) {
    const Array<double> x = randn({B, 5}, 50 + std::uint64_t(s));
    std::vector<std::size_t> y(B);
    for (std::size_t i = 0; i < B; ++i) y[i] = (i * 7 + std::size_t(s)) % 3;
    const RowBlock rb = row_block(B, comm());
    const std::vector<std::size_t> my_y(y.begin() + long(rb.begin), y.begin() + long(rb.end));
    const JemStepStats a = serial.step(x, y), b = par.step(my_rows(x), my_y);
    CHECK(std::abs(a.loss - b.loss) < kTol);
    CHECK(std::abs(a.accuracy - b.accuracy) < kTol);
  }
  CHECK(max_param_diff(mp.parameters(), ms.parameters()) < kTol);
  CHECK(replicas_identical(mp.parameters()));

  // generative JEM (SGLD from each rank's buffer): the replicas stay identical
  JemOptions g{.lr = 1e-3, .sgld_steps = 3, .buffer_size = 30};
  ClassifierEbm<double> mg = model();
  JemTrainer<double> gen(mg, g, rank_stream(2, comm().rank()), 5);
  gen.set_comm(&comm(), 5);
  for (int s = 0; s < 20; ++s) {
    const Array<double> x =
        randn({4, 5}, 70 + std::uint64_t(s) * 10 + std::uint64_t(comm().rank()));
    REQUIRE_NOTHROW(gen.step(x, std::vector<std::size_t>{0, 1, 2, 0}));
  }
  CHECK(replicas_identical(mg.parameters()));
}

TEST_CASE("the RBM's averaged gradient is the serial gradient; PCD replicas stay identical",
          "[mpi][rbm]") {
  const std::size_t B = 12, V = 10, H = 6;
  auto binary = [&](std::uint64_t seed) {
    Array<double> v = uniform({B, V}, seed, 0, 1);
    for (double& x : v) x = x < 0.4 ? 1.0 : 0.0;
    return v;
  };
  Rng rng(8);
  Rbm<double> m(V, H, rng, 0.3);
  const Array<double> vp = binary(1), vn = binary(2);
  const std::vector<Array<double>> serial = rbm_loglik_gradient(m, vp, vn);
  RbmWorkspace<double> ws;
  rbm_loglik_gradient(m, my_rows(vp), my_rows(vn), {&m.W.grad, &m.b.grad, &m.c.grad}, ws);
  allreduce_gradients<double>(comm(), m.parameters(), {}, 1.0 / R());
  const auto params = m.parameters();
  for (std::size_t k = 0; k < 3; ++k) CHECK(max_rel_diff(params[k]->grad, serial[k]) < 1e-12);

  // PCD with each rank's chains and generator: the optimiser steps stay identical
  Rbm<double> pm(V, H, rng, 0.01);
  Rng mine = rank_stream(20, comm().rank());
  SGD<double> opt(pm.parameters(), {.lr = 0.05, .momentum = 0.5});
  GibbsChains<double> chains{.v = binary(3), .h = {}};
  for (int s = 0; s < 30; ++s)
    rbm_train_step(pm, opt, my_rows(binary(10 + std::uint64_t(s))), chains, {.persistent = true},
                   mine, ws, &comm());
  CHECK(replicas_identical(pm.parameters()));
}

TEST_CASE("split evaluations: quadrature, mean energy, AIS and held-out log-likelihood",
          "[mpi][eval]") {
  CdModel m;
  const Domain<double> grid = grid_2d<double>(-3, 3, 31, -3, 3, 29);  // rows not a multiple of R
  CHECK(std::abs(log_partition(comm(), m.energy, grid) - log_partition(m.energy, grid)) < 1e-12);
  const Array<double> x = randn({37, 2}, 6);
  CHECK(std::abs(mean_energy(comm(), m.energy, x) - mean_energy(m.energy, x)) < 1e-12);

  // AIS over the ranks against the exact log Z of an RBM small enough to enumerate; the tolerance
  // is 4 standard errors of the estimate (a fixed seed per rank: the test is deterministic).
  Rng rng(30);
  Rbm<double> rbm(8, 5, rng, 0.5);
  const double exact = rbm_exact_log_z(rbm);
  Array<double> base(Shape{8}, 0.0);
  Rng arng = rank_stream(31, comm().rank());
  const AisResult a = rbm_ais(comm(), rbm, base, 300, 500, arng);
  CHECK(a.runs == 300);
  INFO("AIS " << a.log_z << " ± " << a.std_err << ", exact " << exact);
  CHECK(std::abs(a.log_z - exact) < 4 * a.std_err);
  CHECK(a.std_err < 0.05);  // (the test has power)
  const auto bits = comm().allgather(std::bit_cast<std::uint64_t>(a.log_z));
  CHECK(std::all_of(bits.begin(), bits.end(), [&](auto b) { return b == bits[0]; }));
  const Array<double> starts = rbm_exact_samples(rbm, 200, rng);  // the same on every rank
  Rng rrng = rank_stream(32, comm().rank());
  const AisResult r = rbm_reverse_ais(comm(), rbm, base, starts, 500, rrng);
  INFO("reverse AIS " << r.log_z << " ± " << r.std_err);
  CHECK(std::abs(r.log_z - exact) < 4 * r.std_err);

  Array<double> v = uniform({23, 8}, 33, 0, 1);
  for (double& e : v) e = e < 0.5 ? 1.0 : 0.0;
  CHECK(std::abs(rbm_average_loglik(comm(), rbm, v, exact) - rbm_average_loglik(rbm, v, exact)) <
        1e-12);
}
