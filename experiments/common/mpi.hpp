// What the experiments share to run data-parallel under mpirun (distributed/): the communicator
// made before the flags are parsed, and one way to end on an error that every rank may or may
// not have met.
#pragma once

#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "distributed/checkpoint.hpp"
#include "distributed/data_parallel.hpp"
#include "distributed/launch.hpp"
#include "experiments/common/run.hpp"

namespace ebl::xp {

/// The run's communicator (serial without mpirun), or nullopt after printing why it cannot be
/// made (a multi-process launch of a build without MPI): main then exits with status 1.
inline std::unique_ptr<Comm> start_comm(const std::string& program, int& argc, char**& argv) {
  try {
    return make_comm(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: {}\n", program, e.what());
    return nullptr;
  }
}

/// Call from a catch (...) around an experiment's body: the exit status for the exception being
/// handled, with its one line on stderr. Errors every rank raises alike (a bad flag, a drift
/// between ranks, an unreadable checkpoint) are printed by rank 0 and end each rank normally;
/// any other error may be this rank's alone (an unwritable output on rank 0), so it is printed
/// with the rank and, with more than one rank, ends every rank (MPI_Abort) rather than leave the
/// others waiting in the next collective.
inline int exit_on_error(Comm& comm, const std::string& program) {
  try {
    throw;
  } catch (const FlagError& e) {
    if (comm.root()) fmt::print(stderr, "{}: {}\n", program, e.what());
    return 2;
  } catch (const ReplicaDriftError& e) {
    if (comm.root()) fmt::print(stderr, "{}: {}\n", program, e.what());
    return 1;
  } catch (const CollectiveIoError& e) {
    if (comm.root()) fmt::print(stderr, "{}: {}\n", program, e.what());
    return 1;
  } catch (const std::exception& e) {
    const bool many = comm.size() > 1;
    fmt::print(stderr, "{}: {}{}\n", program, many ? fmt::format("rank {}: ", comm.rank()) : "",
               error_line(e));
    if (many) comm.abort(1);
    return 1;
  }
}

/// A resume from a checkpoint written by another number of ranks is refused like a resume under
/// other flags (exit 2, one line).
inline void require_same_ranks(const Checkpoint& c, const Comm& comm, const std::string& source) {
  if (checkpoint_ranks(c) != comm.size())
    throw FlagError(fmt::format(
        "cannot resume from {}: it was written by {} rank(s) and this run has {}; resume with "
        "mpirun -np {}, or start a new run from its parameters",
        source, checkpoint_ranks(c), comm.size(), checkpoint_ranks(c)));
}

}  // namespace ebl::xp
