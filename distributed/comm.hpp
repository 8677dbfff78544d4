// The processes of a data-parallel run, and the few collective operations its trainers and
// evaluations need, behind one small interface: the library's trainers take a Comm and never
// include MPI. SerialComm is the run of one process (every operation is the identity); the MPI
// implementation lives in distributed/mpi_comm.cpp, compiled only when the build found MPI
// (EBL_WITH_MPI), and make_comm() (distributed/launch.hpp) picks one at start-up.
//
// Every operation is collective: every rank calls it, in the same order, or the run hangs (MPI's
// rule). The trainers keep to it by taking every decision that ends a loop (divergence, drift)
// from reduced values that every rank holds bit for bit.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace ebl {

/// The communicator of a data-parallel run: this process's rank among size() ranks, and the collectives the trainers use.
class Comm {
 public:
  virtual ~Comm() = default;
  /// This process's rank, 0 to size() − 1.
  virtual int rank() const = 0;
  /// The number of ranks.
  virtual int size() const = 0;
  /// Whether this is rank 0 (the one that writes files).
  bool root() const { return rank() == 0; }
  /// Element-wise sum over the ranks, in place, the same bits on every rank.
  virtual void allreduce_sum(double* data, std::size_t n) = 0;
  /// Every rank's value, in rank order, on every rank.
  virtual std::vector<std::uint64_t> allgather(std::uint64_t value) = 0;
  /// Every rank's bytes, in rank order, on rank 0 (an empty vector on the others).
  virtual std::vector<std::string> gather(const std::string& bytes) = 0;
  /// Rank 0's bytes, on every rank.
  virtual void broadcast(std::string& bytes) = 0;
  /// Waits until every rank has called it.
  virtual void barrier() = 0;
  /// Ends every process of the run with this status: for an error that one rank alone has met
  /// (an unwritable output file on rank 0, say), where returning would leave the others waiting.
  [[noreturn]] virtual void abort(int status) = 0;
  /// "serial", or "MPI (N ranks)".
  virtual std::string describe() const = 0;

  /// A buffer the collective helpers reuse, so that a steady training step allocates nothing.
  std::vector<double>& scratch() { return scratch_; }

 private:
  std::vector<double> scratch_;
};

/// One process: rank 0 of 1.
class SerialComm final : public Comm {
 public:
  /// 0.
  int rank() const override { return 0; }
  /// 1.
  int size() const override { return 1; }
  void allreduce_sum(double*, std::size_t) override {}
  std::vector<std::uint64_t> allgather(std::uint64_t value) override { return {value}; }
  std::vector<std::string> gather(const std::string& bytes) override { return {bytes}; }
  void broadcast(std::string&) override {}
  /// Returns at once.
  void barrier() override {}
  [[noreturn]] void abort(int status) override { std::exit(status); }
  std::string describe() const override { return "serial"; }
};

}  // namespace ebl
