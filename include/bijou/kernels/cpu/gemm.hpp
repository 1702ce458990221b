// bijou/kernels/cpu/gemm.hpp — matrix products for the Cpu backend.
//
// Same contract as kernels/reference/gemm.hpp. Rows of C are split across OpenMP threads in
// fixed contiguous blocks (static schedule), each block multiplied by Eigen's blocked GEMM on
// its own thread, so results are bit-for-bit repeatable for a given thread count and no two
// threads write the same cache line of C (blocks are multiples of 16 rows). Eigen never runs its
// own thread team here, and never allocates (see gemm_rows). For float in a build without AVX2
// (portable x86-64), a CPU with AVX2 + FMA or AVX-512F gets kernels/cpu/sgemm_avx2.hpp's packed
// kernels instead of Eigen's SSE code (2-4× faster), chosen at run time; they assign C directly
// when beta = 0 (no memset pass). Builds with AVX2 enabled keep Eigen (as fast there).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <Eigen/Core>

#include "bijou/core/backend.hpp"
#include "bijou/kernels/cpu/sgemm_avx2.hpp"

namespace bijou::kernels {

namespace detail {
template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ColMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
template <class T>
using CMapR = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using CMapC = Eigen::Map<const ColMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using MapR = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;

// C[i0:i1, :] op= alpha * op(A)[i0:i1, :] * op(B), in tiles of at most 96 × 96 × (96 KiB / 96 / sizeof T).
// Eigen packs an mc×kc block of A and a kc×nc block of B into buffers that it places on the stack
// only when each is at most EIGEN_STACK_ALLOCATION_LIMIT (128 KiB by default), on the heap otherwise;
// on these tiles both stay under 96 KiB, so a training step never touches the heap.
template <class T>
void gemm_rows(bool ta, bool tb, int i0, int i1, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb,
               T beta, T* C, int ldc) {
    const int m = i1 - i0;
    if (m <= 0 || N <= 0) return;
#if defined(BIJOU_SGEMM_AVX2)
    if constexpr (std::is_same_v<T, float>) {
        if (K > 0 && sgemm_avx2_available()) {
            const bool assign = beta == T(0);
            if (!assign && beta != T(1)) MapR<T>(C + std::size_t(i0) * ldc, m, N, Eigen::OuterStride<>(ldc)) *= beta;
            sgemm_avx2(ta, tb, m, N, K, alpha, ta ? A + i0 : A + std::size_t(i0) * lda, lda, B, ldb,
                       C + std::size_t(i0) * ldc, ldc, assign);
            return;
        }
    }
#endif
    {
        MapR<T> c(C + std::size_t(i0) * ldc, m, N, Eigen::OuterStride<>(ldc));
        if (beta == T(0)) c.setZero();
        else if (beta != T(1)) c *= beta;
    }
    if (K <= 0) return;
    constexpr int TMN = 96, TK = int(98304 / (TMN * sizeof(T)));  // 96×256 floats / 96×128 doubles = 96 KiB
    for (int r0 = i0; r0 < i1; r0 += TMN) {
        const int mr = std::min(TMN, i1 - r0);
        for (int c0 = 0; c0 < N; c0 += TMN) {
            const int nc = std::min(TMN, N - c0);
            MapR<T> c(C + std::size_t(r0) * ldc + c0, mr, nc, Eigen::OuterStride<>(ldc));
            for (int k0 = 0; k0 < K; k0 += TK) {
                const int kc = std::min(TK, K - k0);
                auto run = [&](const auto& a) {
                    if (tb) {  // Bᵀ stored row-major N×K == col-major K×N
                        CMapC<T> b(B + std::size_t(c0) * ldb + k0, kc, nc, Eigen::OuterStride<>(ldb));
                        c.noalias() += alpha * a * b;
                    } else {
                        CMapR<T> b(B + std::size_t(k0) * ldb + c0, kc, nc, Eigen::OuterStride<>(ldb));
                        c.noalias() += alpha * a * b;
                    }
                };
                if (ta) run(CMapC<T>(A + std::size_t(k0) * lda + r0, mr, kc, Eigen::OuterStride<>(lda)));
                else run(CMapR<T>(A + std::size_t(r0) * lda + k0, mr, kc, Eigen::OuterStride<>(lda)));
            }
        }
    }
}
}  // namespace detail

template <class T>
void gemm(Cpu, bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb,
          T beta, T* C, int ldc) {
    const double flops = 2.0 * M * N * K;
#if defined(_OPENMP)
    const int threads = (flops > 2e5 && M >= 32) ? std::min(num_threads(), M / 16) : 1;
    if (threads > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(threads)
        {
            const int t = omp_get_thread_num(), nt = omp_get_num_threads();
            const int blocks = (M + 15) / 16;
            const int b0 = int(std::int64_t(blocks) * t / nt), b1 = int(std::int64_t(blocks) * (t + 1) / nt);
            detail::gemm_rows(trans_a, trans_b, std::min(M, b0 * 16), std::min(M, b1 * 16), N, K, alpha, A, lda,
                              B, ldb, beta, C, ldc);
        }
        return;
    }
    if (!omp_in_parallel() && omp_get_max_threads() > 1) {
        // Serial here by choice: stop Eigen from starting its own OpenMP team for this product (it
        // would fight ours and allocate per-thread bookkeeping on the heap). omp_set_num_threads
        // changes only this thread's setting, restored at once.
        const int saved = omp_get_max_threads();
        omp_set_num_threads(1);
        detail::gemm_rows(trans_a, trans_b, 0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        omp_set_num_threads(saved);
        return;
    }
#endif
    (void)flops;
    detail::gemm_rows(trans_a, trans_b, 0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace bijou::kernels
