// bijou/core/backend.hpp — backends are policy types.
//
// A backend is an empty tag type passed as a template argument; kernels are free functions
// overloaded on the tag (kernels/reference/*.hpp, kernels/cpu/*.hpp), so a new bijector adds
// its own kernels without editing a central list.
//   Reference: serial plain loops, obviously correct; the ground truth of every test.
//   Cpu:       OpenMP across the batch + SIMD inner loops; the default.
//   Cuda:      optional, declared in <bijou/cuda.cuh> only when built with nvcc.
//   CudaHost:  the Cuda backend's kernels run serially on the host (kernels/cuda/exec.hpp), for tests.
#pragma once

#include <concepts>
#include <string_view>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace bijou {

struct Reference {
    static constexpr std::string_view name = "reference";
};

struct Cpu {
    static constexpr std::string_view name = "cpu";
};

template <class B>
concept Backend = requires {
    { B::name } -> std::convertible_to<std::string_view>;
};

/// A backend whose kernels are algorithms run by an executor type B::executor (kernels/cuda/exec.hpp):
/// Cuda (the GPU) and CudaHost (the same code serially on the host). Its kernels read and write
/// memory the executor owns (core/memory.hpp), not the host's.
template <class B>
concept ExecutorBackend = Backend<B> && requires { typename B::executor; };

/// Scalars bijou computes in.
template <class T>
concept Scalar = std::same_as<T, float> || std::same_as<T, double>;

/// Threads the Cpu backend uses (OpenMP's max threads; 1 without OpenMP).
inline int num_threads() {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/// Sets the Cpu backend's thread count for the calling thread's subsequent parallel regions.
inline void set_num_threads(int n) {
#if defined(_OPENMP)
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

}  // namespace bijou
