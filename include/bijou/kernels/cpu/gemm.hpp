// bijou/kernels/cpu/gemm.hpp — matrix products for the Cpu backend.
//
// Same contract as kernels/reference/gemm.hpp. Rows of C are split across OpenMP threads in
// fixed contiguous blocks (static schedule), each block multiplied by Eigen's blocked GEMM on
// its own thread, so results are bit-for-bit repeatable for a given thread count and no two
// threads write the same cache line of C (blocks are multiples of 16 rows).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <Eigen/Core>

#include "bijou/core/backend.hpp"

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

// C[i0:i1, :] op= alpha * op(A)[i0:i1, :] * op(B)
template <class T>
void gemm_rows(bool ta, bool tb, int i0, int i1, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb,
               T beta, T* C, int ldc) {
    const int m = i1 - i0;
    if (m <= 0 || N <= 0) return;
    MapR<T> c(C + std::size_t(i0) * ldc, m, N, Eigen::OuterStride<>(ldc));
    if (beta == T(0)) c.setZero();
    else if (beta != T(1)) c *= beta;
    if (K <= 0) return;
    auto run = [&](const auto& a) {
        if (tb) {
            CMapC<T> b(B, K, N, Eigen::OuterStride<>(ldb));  // Bᵀ stored row-major N×K == col-major K×N
            c.noalias() += alpha * a * b;
        } else {
            CMapR<T> b(B, K, N, Eigen::OuterStride<>(ldb));
            c.noalias() += alpha * a * b;
        }
    };
    if (ta) run(CMapC<T>(A + i0, m, K, Eigen::OuterStride<>(lda)));
    else run(CMapR<T>(A + std::size_t(i0) * lda, m, K, Eigen::OuterStride<>(lda)));
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
#endif
    (void)flops;
    detail::gemm_rows(trans_a, trans_b, 0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace bijou::kernels
