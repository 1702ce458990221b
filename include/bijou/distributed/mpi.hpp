// bijou/distributed/mpi.hpp — MPI_COMM_WORLD as a bijou Communicator (communicator.hpp). Needs MPI:
// CMake's find_package(MPI) and the target MPI::MPI_CXX (Debian: libopenmpi-dev, openmpi-bin).
//
// MpiWorld world(argc, argv) starts MPI when the program was started by an MPI launcher (mpirun or
// mpiexec: OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE in the environment) and is then the group of
// every process of the job. Started directly, it does not touch MPI and is the group of one, so one
// program runs with and without mpirun (and an OpenMPI singleton, which would start a daemon, is
// never made). One MpiWorld per process; its destructor finalises MPI.
// Errors: MPI calls return their errors (MPI_ERRORS_RETURN); a failed collective throws
// bijou::distributed_error with MPI's message and this rank. abort(message) ends the whole job: it
// prints "bijou: rank R of N: message" on stderr and calls MPI_Abort, so the launcher stops every
// other process (an exception on one rank must never leave the others waiting in a collective). A
// process that dies (a signal, a kill) is noticed by the launcher: OpenMPI's mpirun then ends the job
// and names the rank and the signal.
// Threads: MPI_THREAD_FUNNELED (the main thread calls MPI; OpenMP threads only compute). Counts above
// INT_MAX elements go in chunks.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "bijou/core/error.hpp"
#include "bijou/distributed/communicator.hpp"

namespace bijou::distributed {

namespace detail {
template <class T>
MPI_Datatype mpi_type() {
    if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
    else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
    else {
        static_assert(std::is_same_v<T, std::uint8_t>, "bijou::distributed: float, double or bytes");
        return MPI_UNSIGNED_CHAR;
    }
}
}  // namespace detail

/// Every process of an MPI job (MPI_COMM_WORLD), or this process alone when no launcher started it.
class MpiWorld {
public:
    MpiWorld(int& argc, char**& argv) {
        if (!launched_by_mpi()) return;
        int provided = 0;
        if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            throw distributed_error("MPI_Init_thread failed");
        active_ = true;
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &size_);
    }
    ~MpiWorld() {
        int finalized = 1;
        if (active_ && MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized) MPI_Finalize();
    }
    MpiWorld(const MpiWorld&) = delete;
    MpiWorld& operator=(const MpiWorld&) = delete;

    int rank() const { return rank_; }
    int size() const { return size_; }
    /// True when MPI was started (a launcher started this process), even for a job of one.
    bool active() const { return active_; }

    template <class T>
    void allreduce_sum(T* data, std::size_t n) {
        if (size_ == 1) return;
        for (std::size_t done = 0; done < n;) {
            const int part = int(std::min<std::size_t>(n - done, INT_MAX));
            check(MPI_Allreduce(MPI_IN_PLACE, data + done, part, detail::mpi_type<T>(), MPI_SUM, MPI_COMM_WORLD),
                  "MPI_Allreduce");
            done += std::size_t(part);
        }
    }
    template <class T>
    void broadcast(T* data, std::size_t n, int root) {
        if (size_ == 1) return;
        for (std::size_t done = 0; done < n;) {
            const int part = int(std::min<std::size_t>(n - done, INT_MAX));
            check(MPI_Bcast(data + done, part, detail::mpi_type<T>(), root, MPI_COMM_WORLD), "MPI_Bcast");
            done += std::size_t(part);
        }
    }
    void barrier() {
        if (size_ > 1) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
    }

    /// Ends the whole job: "bijou: rank R of N: message" on stderr, then MPI_Abort (every process
    /// stops), or exit(code) when MPI is not running. A leading "bijou: " of the message is dropped.
    [[noreturn]] void abort(const std::string& message, int code = 1) {
        report_failure(rank_, size_, message);
        if (active_) MPI_Abort(MPI_COMM_WORLD, code);
        std::_Exit(code);
    }

private:
    void check(int rc, const char* call) const {
        if (rc == MPI_SUCCESS) return;
        char text[MPI_MAX_ERROR_STRING] = "";
        int len = 0;
        MPI_Error_string(rc, text, &len);
        throw distributed_error("rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": " + call +
                                " failed: " + std::string(text, std::size_t(std::max(len, 0))));
    }

    bool active_ = false;
    int rank_ = 0, size_ = 1;
};

static_assert(Communicator<MpiWorld>);

}  // namespace bijou::distributed
