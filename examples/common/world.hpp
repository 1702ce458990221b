// examples/common/world.hpp — the examples' view of a data-parallel job: example::World is
// bijou::distributed::MpiWorld when the example is built with MPI (BIJOU_EXAMPLE_MPI; CMake defines it
// where bijou::distributed exists), else a group of one with the same interface. So `mpirun -np N
// <example> …` trains on N processes, and the same program started directly trains on one.
//   rank(), size(), the collectives of bijou::distributed::Communicator, active()
//   abort(message)  prints "bijou: rank R of N: message" and ends the whole job (one process: exit)
//   quiet_unless_root()  non-root ranks send stdout to /dev/null: rank 0 alone prints progress
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#if defined(BIJOU_EXAMPLE_MPI)
#include <bijou/distributed/mpi.hpp>
#else
#include <bijou/distributed/communicator.hpp>
#endif

namespace example {

#if defined(BIJOU_EXAMPLE_MPI)
using WorldBase = bijou::distributed::MpiWorld;
#else
/// Without MPI: the group of one process.
class WorldBase : public bijou::distributed::LocalCommunicator {
public:
    WorldBase(int&, char**&) {
        if (bijou::distributed::launched_by_mpi())
            std::fprintf(stderr, "bijou: note: started by an MPI launcher, but this program was built without MPI: each "
                                 "process trains alone (install libopenmpi-dev and rebuild for data-parallel training)\n");
    }
    bool active() const { return false; }
    [[noreturn]] void abort(const std::string& message, int code = 1) {
        bijou::distributed::report_failure(0, 1, message);
        std::exit(code);
    }
};
#endif

class World : public WorldBase {
public:
    using WorldBase::WorldBase;
    /// Rank 0 alone writes to stdout: the others' goes to /dev/null (stderr stays, for errors).
    void quiet_unless_root() {
        if (rank() != 0 && !std::freopen("/dev/null", "w", stdout))
            abort("cannot redirect stdout to /dev/null");
    }
};

}  // namespace example
