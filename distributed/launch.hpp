// Start-up of a program that may run data-parallel: make_comm() returns the MPI communicator of
// the processes mpirun started (MPI is initialised here, and finalised when the Comm is destroyed)
// or, for a program started on its own, a SerialComm, without touching MPI at all, so that a
// serial run is exactly what it was before MPI existed in the build.
//
//   mpirun -np 4 build/experiments/toy2d ...          four ranks, one model
//   build/experiments/toy2d ...                       one process, no MPI involved
//
// A build without MPI (EBL_WITH_MPI=OFF, or no MPI found) that mpirun starts more than once
// refuses to run: N copies would each train the whole model and write the same outputs.
#pragma once

#include <memory>

#include "distributed/comm.hpp"

namespace ebl {

/// Whether this build has MPI (libebl_distributed compiled with it).
bool mpi_built();

/// The run's communicator: MPI's when started by mpirun (or another MPI launcher), serial
/// otherwise. Throws std::runtime_error for a multi-process launch of a build without MPI.
std::unique_ptr<Comm> make_comm(int& argc, char**& argv);

}  // namespace ebl
