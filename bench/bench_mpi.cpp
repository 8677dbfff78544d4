// Data-parallel CD over MPI: where a step's time goes (compute, and the one allreduce of the
// gradients) and how the allreduce's cost grows with the message, on this machine. Run by
// bench/mpi_scaling.py, which runs it on 1 and 2 ranks and writes the scaling table and the
// cost model of bench/RESULTS.md.
//
//   bench_mpi --batch 256                      1 rank: the serial step
//   mpirun -np 2 bench_mpi --batch 128         2 ranks, the same global batch (strong scaling)
//   mpirun -np 2 bench_mpi --batch 256         2 ranks, twice the global batch (weak scaling)
//   mpirun -np 2 bench_mpi --allreduce-sweep   the allreduce alone, 8 B to 80 MB
//
// The workload is toy2d's: an MLP energy 2-128-128-1 (SiLU, 17,025 parameters), persistent CD
// with 20 Langevin steps per step, Adam; one thread per rank, OpenBLAS single-threaded, so that
// 2 ranks use the 2 cores and 1 rank one core. Prints one JSON object (rank 0).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "autodiff/blas.hpp"
#include "distributed/data_parallel.hpp"
#include "distributed/launch.hpp"
#include "ebm/cd.hpp"

using namespace ebl;
using Clock = std::chrono::steady_clock;

namespace {

// A Comm that times its allreduces (everything else passes through).
class TimedComm final : public Comm {
 public:
  explicit TimedComm(Comm& inner) : c_(inner) {}
  int rank() const override { return c_.rank(); }
  int size() const override { return c_.size(); }
  void allreduce_sum(double* data, std::size_t n) override {
    const auto t0 = Clock::now();
    c_.allreduce_sum(data, n);
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    ++calls;
  }
  std::vector<std::uint64_t> allgather(std::uint64_t v) override { return c_.allgather(v); }
  std::vector<std::string> gather(const std::string& b) override { return c_.gather(b); }
  void broadcast(std::string& b) override { c_.broadcast(b); }
  void barrier() override { c_.barrier(); }
  [[noreturn]] void abort(int status) override {
    c_.abort(status);
    std::abort();  // (not reached)
  }
  std::string describe() const override { return c_.describe(); }
  double seconds = 0;
  long calls = 0;

 private:
  Comm& c_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<Comm> comm = make_comm(argc, argv);
  CLI::App app{"bench_mpi: data-parallel CD step and allreduce timings", "bench_mpi"};
  std::size_t batch = 256;
  int steps = 200, warmup = 20, rounds = 5;
  bool sweep = false;
  app.add_option("--batch", batch, "rows per rank");
  app.add_option("--steps", steps, "timed CD steps per round");
  app.add_option("--warmup", warmup, "untimed steps first");
  app.add_option("--rounds", rounds, "rounds (the median is reported)");
  app.add_flag("--allreduce-sweep", sweep, "time the allreduce alone over message sizes");
  CLI11_PARSE(app, argc, argv);
  BlasSingleThreaded one_blas_thread;
  nlohmann::ordered_json out;
  out["ranks"] = comm->size();

  if (sweep) {  // the allreduce alone: the median of 50 (after 10) per size
    for (std::size_t n = 1; n <= 10'000'000; n *= 10) {
      std::vector<double> buf(n, 1.0), t;
      for (int k = 0; k < 60; ++k) {
        comm->barrier();
        const auto t0 = Clock::now();
        comm->allreduce_sum(buf.data(), n);
        if (k >= 10) t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      }
      out["allreduce"].push_back({{"doubles", n}, {"bytes", 8 * n}, {"seconds", median(t)}});
    }
    if (comm->root()) fmt::print("{}\n", out.dump());
    return 0;
  }

  TimedComm timed(*comm);
  Rng init(1);
  MlpEnergy<float> energy(2, {128, 128}, Activation::Silu, init);
  Adam<float> opt(energy.parameters(), {.lr = 1e-4});
  CdOptions o;
  o.langevin = {.steps = 20, .step_size = 0.005, .threads = 1};
  o.buffer_size = 10000 / std::size_t(comm->size());
  o.noise_lo = -4, o.noise_hi = 4;
  ContrastiveDivergence<float> cd(energy, opt, o, rank_stream(2, comm->rank()), 2);
  cd.set_comm(&timed, 0);
  Rng data(3 + std::uint64_t(comm->rank()));
  Array<float> x = data.normal_array<float>({batch, 2});
  std::size_t params = 0;
  for (auto* p : energy.parameters()) params += p->value.size();
  for (int s = 0; s < warmup; ++s) cd.step(x);
  std::vector<double> step_ms, allreduce_ms;
  for (int r = 0; r < rounds; ++r) {
    comm->barrier();
    timed.seconds = 0;
    const auto t0 = Clock::now();
    for (int s = 0; s < steps; ++s) cd.step(x);
    const double total = std::chrono::duration<double>(Clock::now() - t0).count();
    // every rank's numbers; the slowest rank sets the pace, so report rank 0's (they agree)
    step_ms.push_back(1e3 * total / steps);
    allreduce_ms.push_back(1e3 * timed.seconds / steps);
  }
  out["batch_per_rank"] = batch;
  out["global_batch"] = batch * std::size_t(comm->size());
  out["parameters"] = params;
  out["step_ms"] = median(step_ms);
  out["allreduce_ms"] = median(allreduce_ms);
  out["compute_ms"] = median(step_ms) - median(allreduce_ms);
  if (comm->root()) fmt::print("{}\n", out.dump());
  return 0;
}
