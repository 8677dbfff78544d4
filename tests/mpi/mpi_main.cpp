// Catch2's runner for the MPI tests: MPI is initialised (make_comm) before the session, so that
// every rank runs every test case, and finalised after it. Compiled apart from the tests (as
// catch_main.cpp is), without the project's warning flags: Catch's implementation is not ours.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <memory>

#include "distributed/launch.hpp"

namespace ebl::test {
Comm* g_comm = nullptr;
}

int main(int argc, char** argv) {
  std::unique_ptr<ebl::Comm> c = ebl::make_comm(argc, argv);
  ebl::test::g_comm = c.get();
  if (c->size() < 2) {
    std::fprintf(stderr, "test_mpi: run it with mpirun -np 2 (or more); it has %d rank(s)\n",
                 c->size());
    return 1;
  }
  return Catch::Session().run(argc, argv);
}
