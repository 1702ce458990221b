// bijou/kernels/cuda/exec.cuh — bijou::cuda::Exec, the device executor of kernels/cuda/exec.hpp.
//   for_each        a grid-stride kernel, 256 threads per block, up to 65,536 blocks
//   segment_reduce  one block of 256 threads per segment (blocks loop past 65,536 segments); shared
//                   memory tree sums, the same order as HostExec's
//   gemm, gemm_strided_batched  cuBLAS (S or D), row-major through as_column_major
// Everything is queued on cuda::stream(); launch failures throw cuda_error.
#pragma once

#include <algorithm>
#include <cstddef>

#include "bijou/core/cuda.cuh"
#include "bijou/kernels/cuda/exec.hpp"

namespace bijou::cuda {

namespace detail {

inline constexpr unsigned threads_per_block = 256;

template <class F>
__global__ void for_each_kernel(std::size_t count, F f) {
    const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
    for (std::size_t k = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; k < count; k += stride) f(k);
}

template <class Partial, class Finish>
__global__ void segment_reduce_kernel(int segments, Partial partial, Finish finish) {
    __shared__ double sa[threads_per_block], sb[threads_per_block];
    const unsigned t = threadIdx.x;
    for (int seg = int(blockIdx.x); seg < segments; seg += int(gridDim.x)) {
        double a = 0.0, b = 0.0;
        partial(seg, std::size_t(t), std::size_t(threads_per_block), a, b);
        sa[t] = a;
        sb[t] = b;
        __syncthreads();
        for (unsigned w = threads_per_block / 2; w > 0; w /= 2) {
            if (t < w) {
                sa[t] += sa[t + w];
                sb[t] += sb[t + w];
            }
            __syncthreads();
        }
        if (t == 0) finish(seg, sa[0], sb[0]);
        __syncthreads();
    }
}

inline cublasOperation_t op(bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

inline cublasStatus_t gemm_call(const kernels::cuda_body::ColumnMajorGemm& g, const float* alpha, const float* first,
                                const float* second, const float* beta, float* C, int ldc) {
    return cublasSgemm(blas(), op(g.trans_first), op(g.trans_second), g.m, g.n, g.k, alpha, first, g.ld_first, second,
                       g.ld_second, beta, C, ldc);
}
inline cublasStatus_t gemm_call(const kernels::cuda_body::ColumnMajorGemm& g, const double* alpha,
                                const double* first, const double* second, const double* beta, double* C, int ldc) {
    return cublasDgemm(blas(), op(g.trans_first), op(g.trans_second), g.m, g.n, g.k, alpha, first, g.ld_first, second,
                       g.ld_second, beta, C, ldc);
}
inline cublasStatus_t gemm_batched_call(const kernels::cuda_body::ColumnMajorGemm& g, const float* alpha,
                                        const float* first, long long s1, const float* second, long long s2,
                                        const float* beta, float* C, int ldc, long long sc, int batch) {
    return cublasSgemmStridedBatched(blas(), op(g.trans_first), op(g.trans_second), g.m, g.n, g.k, alpha, first,
                                     g.ld_first, s1, second, g.ld_second, s2, beta, C, ldc, sc, batch);
}
inline cublasStatus_t gemm_batched_call(const kernels::cuda_body::ColumnMajorGemm& g, const double* alpha,
                                        const double* first, long long s1, const double* second, long long s2,
                                        const double* beta, double* C, int ldc, long long sc, int batch) {
    return cublasDgemmStridedBatched(blas(), op(g.trans_first), op(g.trans_second), g.m, g.n, g.k, alpha, first,
                                     g.ld_first, s1, second, g.ld_second, s2, beta, C, ldc, sc, batch);
}

}  // namespace detail

struct Exec {
    static constexpr std::size_t parts = detail::threads_per_block;

    /// n zeros in device memory.
    template <class U>
    static DeviceBuffer<U> make_buffer(std::size_t n) {
        DeviceBuffer<U> b(n);
        if (n) check(cudaMemsetAsync(b.data(), 0, n * sizeof(U), stream()), "cudaMemsetAsync");
        return b;
    }

    /// Two doubles of device memory for reductions that return a value to the host (one per host
    /// thread, allocated on first use).
    static double* scalar_slot() {
        thread_local DeviceBuffer<double> slot(2);
        return slot.data();
    }

    /// Copies n scalars from host memory (stream-ordered after the queued kernels; waits for the copy).
    template <class U>
    static void copy_to_device(U* dst, const U* host, std::size_t n) {
        cuda::copy_to_device(dst, host, n);
    }

    /// Waits for the queued kernels, then copies n scalars from device memory.
    template <class U>
    static void copy_to_host(U* host, const U* src, std::size_t n) {
        cuda::copy_to_host(host, src, n);
    }

    template <class F>
    static void for_each(std::size_t count, F f) {
        if (count == 0) return;
        const std::size_t blocks = std::min<std::size_t>((count + parts - 1) / parts, std::size_t(1) << 16);
        detail::for_each_kernel<<<unsigned(blocks), detail::threads_per_block, 0, stream()>>>(count, f);
        check(cudaGetLastError(), "an element kernel launch");
    }

    template <class Partial, class Finish>
    static void segment_reduce(int segments, Partial partial, Finish finish) {
        if (segments <= 0) return;
        const int blocks = std::min(segments, 1 << 16);
        detail::segment_reduce_kernel<<<unsigned(blocks), detail::threads_per_block, 0, stream()>>>(segments, partial,
                                                                                                     finish);
        check(cudaGetLastError(), "a reduction kernel launch");
    }

    template <class T>
    static void gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb, T beta,
                     T* C, int ldc) {
        if (M <= 0 || N <= 0) return;
        const auto g = kernels::cuda_body::as_column_major(ta, tb, M, N, K, lda, ldb);
        check(detail::gemm_call(g, &alpha, B, A, &beta, C, ldc), "cuBLAS gemm");
    }

    template <class T>
    static void gemm_strided_batched(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,
                                     long long sa, const T* B, int ldb, long long sb, T beta, T* C, int ldc,
                                     long long sc, int batch) {
        if (M <= 0 || N <= 0 || batch <= 0) return;
        const auto g = kernels::cuda_body::as_column_major(ta, tb, M, N, K, lda, ldb);
        check(detail::gemm_batched_call(g, &alpha, B, sb, A, sa, &beta, C, ldc, sc, batch), "cuBLAS batched gemm");
    }
};

}  // namespace bijou::cuda
