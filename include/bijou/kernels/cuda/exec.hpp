// bijou/kernels/cuda/exec.hpp — how the Cuda backend's kernels are written, and the host executor
// that runs them without a GPU.
//
// Every Cuda kernel is an algorithm in a CUDA-free header (kernels/cuda/*.hpp), templated on an
// EXECUTOR X that supplies four primitives:
//   X::for_each(count, f)                       f(k) for k in [0, count), in any order
//   X::segment_reduce(segments, partial, finish) per segment s: partial(s, part, parts, a, b) adds
//                                               thread `part`'s share of two double sums (parts =
//                                               X::parts of them, in a fixed tree order), then
//                                               finish(s, a, b) once
//   X::gemm(...), X::gemm_strided_batched(...)   row-major products (kernels/reference/gemm.hpp)
// and memory: X::make_buffer<U>(n) (n zeros), X::copy_to_device, X::copy_to_host, X::scalar_slot().
// Lambdas given to them are BIJOU_HD_LAMBDA (`__host__ __device__` under nvcc; core/hd.hpp). bijou::cuda::Exec
// (kernels/cuda/exec.cuh) launches them on the device with cuBLAS products; HostExec below runs the
// very same code serially on the host with the Reference products, so the test suite checks every
// Cuda kernel's indexing, reductions and chunking against Reference even without a GPU or nvcc.
// Only the launches and cuBLAS's row-/column-major call mapping (tested separately) are device-only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "bijou/core/backend.hpp"
#include "bijou/core/hd.hpp"
#include "bijou/kernels/cuda/host_memory.hpp"
#include "bijou/kernels/reference/gemm.hpp"

namespace bijou::kernels::cuda_body {

/// The C math functions the bodies use, on host and device (core/hd.hpp).
namespace math = ::bijou::hd_math;

/// Serial host executor with the device's semantics (a fixed 256-way split of every reduction). Its
/// memory is guarded host pages (kernels/cuda/host_memory.hpp) that only its primitives may touch.
struct HostExec {
    static constexpr std::size_t parts = 256;

    template <class F>
    static void for_each(std::size_t count, F f) {
        const KernelScope open;
        for (std::size_t k = 0; k < count; ++k) f(k);
    }

    template <class Partial, class Finish>
    static void segment_reduce(int segments, Partial partial, Finish finish) {
        const KernelScope open;
        double a[parts], b[parts];
        for (int s = 0; s < segments; ++s) {
            for (std::size_t t = 0; t < parts; ++t) {
                a[t] = b[t] = 0.0;
                partial(s, t, parts, a[t], b[t]);
            }
            for (std::size_t w = parts / 2; w > 0; w /= 2)
                for (std::size_t t = 0; t < w; ++t) {
                    a[t] += a[t + w];
                    b[t] += b[t + w];
                }
            finish(s, a[0], b[0]);
        }
    }

    /// n zeros.
    template <class U>
    static GuardedBuffer<U> make_buffer(std::size_t n) {
        return GuardedBuffer<U>(n);
    }

    template <class U>
    static void copy_to_device(U* dst, const U* host, std::size_t n) {
        const KernelScope open;
        std::copy_n(host, n, dst);
    }

    /// Two doubles of executor memory that reductions returning a value to the host pass through
    /// (one per thread, allocated once).
    static double* scalar_slot() {
        thread_local double slot[2] = {0.0, 0.0};
        return slot;
    }

    template <class U>
    static void copy_to_host(U* host, const U* src, std::size_t n) {
        const KernelScope open;
        std::copy_n(src, n, host);
    }

    template <class T>
    static void gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb, T beta,
                     T* C, int ldc) {
        const KernelScope open;
        kernels::gemm(Reference{}, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }

    template <class T>
    static void gemm_strided_batched(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,
                                     long long sa, const T* B, int ldb, long long sb, T beta, T* C, int ldc,
                                     long long sc, int batch) {
        const KernelScope open;
        for (int i = 0; i < batch; ++i)
            kernels::gemm(Reference{}, ta, tb, M, N, K, alpha, A + sa * i, lda, B + sb * i, ldb, beta, C + sc * i, ldc);
    }
};

/// ld[i] += sign·Σ_e term(i·per + e) for each sample i of `per` elements (one block per sample, in
/// double); term(k) may also write element k (a coupling or a prior writes its output as it goes).
/// ld may be null: the terms run for their writes only.
template <class X, class Term>
void per_sample_log_det(X, int n, std::size_t per, double* ld, double sign, Term term) {
    X::segment_reduce(
        n,
        [=] BIJOU_HD_LAMBDA(int i, std::size_t part, std::size_t parts, double& a, double&) {
            for (std::size_t e = part; e < per; e += parts) a += double(term(std::size_t(i) * per + e));
        },
        [=] BIJOU_HD_LAMBDA(int i, double a, double) {
            if (ld != nullptr) ld[i] += sign * a;
        });
}

/// The column-major call (cuBLAS's convention) that computes a row-major product: Cᵀ = op(B)ᵀ·op(A)ᵀ.
/// The first operand of the column-major call is B (leading dimension ldb), the second is A; C keeps ldc.
struct ColumnMajorGemm {
    bool trans_first, trans_second;
    int m, n, k;
    int ld_first, ld_second;
};

BIJOU_HD ColumnMajorGemm as_column_major(bool trans_a, bool trans_b, int M, int N, int K, int lda, int ldb) {
    return {trans_b, trans_a, N, M, K, ldb, lda};
}

}  // namespace bijou::kernels::cuda_body

namespace bijou {

/// The Cuda backend's kernels, run on the host by HostExec: ordinary host pointers, no GPU, no nvcc.
/// The tests use it to check the device code's indexing and reductions against Reference in CI.
struct CudaHost {
    static constexpr std::string_view name = "cuda-host";
    using executor = kernels::cuda_body::HostExec;
};

namespace kernels {

/// kernels/reference/gemm.hpp's contract, on the backend's executor (cuBLAS for Cuda).
template <ExecutorBackend Bk, class T>
void gemm(Bk, bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb,
          T beta, T* C, int ldc) {
    Bk::executor::gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace kernels
}  // namespace bijou
