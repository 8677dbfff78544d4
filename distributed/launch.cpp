// make_comm() and, when the build has MPI, the MPI implementation of Comm. The only file of the
// project that includes <mpi.h>.
#include "distributed/launch.hpp"

#include <climits>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#ifdef EBL_HAVE_MPI
#include <mpi.h>
#endif

namespace ebl {

namespace {

// The number of processes an MPI launcher started, from the environment it sets (Open MPI, then
// the PMI/PMIx variables of MPICH and Slurm); 0 when no launcher started this process.
int launched_processes() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const char* v = std::getenv(var)) return std::max(1, std::atoi(v));
  return 0;
}

#ifdef EBL_HAVE_MPI
class MpiComm final : public Comm {
 public:
  MpiComm(int& argc, char**& argv) {
    MPI_Init(&argc, &argv);
    // A failed MPI call ends the job (MPI's default handler, set again here in case the
    // environment changed it): a rank that dies makes mpirun end every rank, never a hang.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiComm() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(double* data, std::size_t n) override {
    for (std::size_t at = 0; at < n;) {  // MPI counts are ints
      const int count = int(std::min<std::size_t>(n - at, INT_MAX));
      MPI_Allreduce(MPI_IN_PLACE, data + at, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      at += std::size_t(count);
    }
  }
  std::vector<std::uint64_t> allgather(std::uint64_t value) override {
    std::vector<std::uint64_t> all(std::size_t(size_), 0);
    MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
    return all;
  }
  std::vector<std::string> gather(const std::string& bytes) override {
    if (bytes.size() > std::size_t(INT_MAX))
      throw std::length_error(fmt::format("MPI gather: {} bytes on rank {}", bytes.size(), rank_));
    const int len = int(bytes.size());
    std::vector<int> lens(std::size_t(size_), 0), at(std::size_t(size_), 0);
    MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
    std::string all;
    if (rank_ == 0) {
      long total = 0;
      for (int r = 0; r < size_; ++r) {
        at[std::size_t(r)] = int(total);
        total += lens[std::size_t(r)];
      }
      if (total > INT_MAX) throw std::length_error("MPI gather: more than 2 GiB in all");
      all.resize(std::size_t(total));
    }
    MPI_Gatherv(bytes.data(), len, MPI_CHAR, all.data(), lens.data(), at.data(), MPI_CHAR, 0,
                MPI_COMM_WORLD);
    std::vector<std::string> parts;
    if (rank_ == 0)
      for (int r = 0; r < size_; ++r)
        parts.push_back(
            all.substr(std::size_t(at[std::size_t(r)]), std::size_t(lens[std::size_t(r)])));
    return parts;
  }
  void broadcast(std::string& bytes) override {
    std::uint64_t len = bytes.size();
    MPI_Bcast(&len, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (len > std::uint64_t(INT_MAX)) throw std::length_error("MPI broadcast: more than 2 GiB");
    bytes.resize(len);
    MPI_Bcast(bytes.data(), int(len), MPI_CHAR, 0, MPI_COMM_WORLD);
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
  [[noreturn]] void abort(int status) override {
    MPI_Abort(MPI_COMM_WORLD, status);
    std::exit(status);  // not reached
  }
  std::string describe() const override { return fmt::format("MPI ({} ranks)", size_); }

 private:
  int rank_ = 0, size_ = 1;
};
#endif

}  // namespace

bool mpi_built() {
#ifdef EBL_HAVE_MPI
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Comm> make_comm([[maybe_unused]] int& argc, [[maybe_unused]] char**& argv) {
  const int launched = launched_processes();
#ifdef EBL_HAVE_MPI
  if (launched > 0) return std::make_unique<MpiComm>(argc, argv);
#else
  if (launched > 1)
    throw std::runtime_error(fmt::format(
        "started as one of {} processes, but this build has no MPI (configure with "
        "-DEBL_WITH_MPI=ON and libopenmpi-dev installed): each would train the whole model",
        launched));
#endif
  return std::make_unique<SerialComm>();
}

}  // namespace ebl
