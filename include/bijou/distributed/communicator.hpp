// bijou/distributed/communicator.hpp — what data-parallel training needs from a group of processes,
// and the one-process group.
//
// A Communicator is a group of `size()` processes, this one being `rank()` (0 … size − 1), with four
// collective operations that every process of the group calls in the same order:
//   allreduce_sum(p, n)    p[0..n) ← the element-wise sum over the processes (float or double),
//                          the same bytes on every process
//   broadcast(p, n, root)  p[0..n) ← root's p[0..n) (float, double or bytes)
//   barrier()              returns once every process has called it
// bijou::distributed::MpiWorld (mpi.hpp) is the MPI implementation; LocalCommunicator below is the
// group of one (every operation leaves the data as it is), what a program runs on without MPI.
// A collective that fails throws bijou::distributed_error.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace bijou::distributed {

/// True when an MPI launcher (mpirun, mpiexec) started this process: OMPI_COMM_WORLD_SIZE, PMIX_RANK,
/// PMI_SIZE or PMI_RANK is in its environment.
inline bool launched_by_mpi() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
        if (std::getenv(v) != nullptr) return true;
    return false;
}

template <class C>
concept Communicator = requires(C& c, float* f, double* d, std::uint8_t* b, std::size_t n, int root) {
    { c.rank() } -> std::convertible_to<int>;
    { c.size() } -> std::convertible_to<int>;
    c.allreduce_sum(f, n);
    c.allreduce_sum(d, n);
    c.broadcast(f, n, root);
    c.broadcast(d, n, root);
    c.broadcast(b, n, root);
    c.barrier();
};

/// How a failing rank reports before it ends the job: "bijou: rank R of N: message" on stderr (a
/// leading "bijou: " of the message dropped), both streams flushed.
inline void report_failure(int rank, int size, std::string message) {
    if (message.rfind("bijou: ", 0) == 0) message.erase(0, 7);
    std::fprintf(stderr, "bijou: rank %d of %d: %s\n", rank, size, message.c_str());
    std::fflush(stderr);
    std::fflush(stdout);
}

/// The group of one process: rank 0 of 1; the collectives leave the data unchanged.
class LocalCommunicator {
public:
    int rank() const { return 0; }
    int size() const { return 1; }
    template <class T>
    void allreduce_sum(T*, std::size_t) {}
    template <class T>
    void broadcast(T*, std::size_t, int) {}
    void barrier() {}
};

static_assert(Communicator<LocalCommunicator>);

}  // namespace bijou::distributed
