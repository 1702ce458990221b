// bijou/kernels/cpu/gemm.hpp — matrix products for the Cpu backend.
//
// Same contract as kernels/reference/gemm.hpp. C is split across OpenMP threads along its longer
// side, rows in blocks of 16 or columns in blocks of 32 (static schedule, so no two threads write the
// same cache line of C), each block multiplied on its own thread. float on an x86-64 CPU with
// AVX-512F or AVX2 + FMA goes to kernels/cpu/sgemm.hpp's packed kernels, chosen at run time and in
// every build (they assign C directly when beta = 0: no memset pass); double, and float elsewhere,
// to Eigen's blocked GEMM; products with at most 4 columns, 4 rows or depth 4 (a vector flow's input
// and output layers) to kernels/cpu/gemm_thin.hpp's SIMD loops, in float and double. Results are
// bit-for-bit repeatable for a given thread count (and, on the packed and thin paths, the same for any
// thread count). Inside a conditioner pass's chunks (one thread each), a product is split only while
// another thread of the pass is idle, in blocks that thread may take (kernels/cpu/pass_help.hpp).
// Eigen never runs its own thread team here, and nothing allocates (see gemm_block).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "bijou/core/backend.hpp"
#include "bijou/core/eigen.hpp"
#include "bijou/kernels/cpu/gemm_thin.hpp"
#include "bijou/kernels/cpu/pass_help.hpp"
#include "bijou/kernels/cpu/sgemm.hpp"

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

// C[i0:i1, j0:j1] op= alpha * op(A)[i0:i1, :] * op(B)[:, j0:j1]. On the Eigen path in tiles of at
// most 96 × 96 × (96 KiB / 96 / sizeof T): Eigen packs an mc×kc block of A and a kc×nc block of B into
// buffers that it places on the stack only when each is at most EIGEN_STACK_ALLOCATION_LIMIT (128 KiB
// by default), on the heap otherwise; on these tiles both stay under 96 KiB, so a training step never
// touches the heap.
template <class T>
void gemm_block(bool ta, bool tb, int i0, int i1, int j0, int j1, int K, T alpha, const T* A, int lda, const T* B,
                int ldb, T beta, T* C, int ldc, const GemmEpilogue<T>& epilogue, ThinKind thin) {
    const GemmEpilogue<T> ep = epilogue.at(i0, j0);
    const int m = i1 - i0, n = j1 - j0;
    if (m <= 0 || n <= 0) return;
    const T* a0 = ta ? A + i0 : A + std::size_t(i0) * lda;
    const T* b0 = tb ? B + std::size_t(j0) * ldb : B + j0;
    T* c0 = C + std::size_t(i0) * ldc + j0;
    if (thin != ThinKind::none) {
        gemm_thin(thin, ta, tb, m, n, K, alpha, a0, lda, b0, ldb, beta, c0, ldc, ep);
        return;
    }
#if defined(BIJOU_SGEMM_SIMD)
    if constexpr (std::is_same_v<T, float>) {
        if (K > 0 && sgemm_simd_available()) {
            const bool assign = beta == T(0);
            if (!assign && beta != T(1)) MapR<T>(c0, m, n, Eigen::OuterStride<>(ldc)) *= beta;
            sgemm_simd(ta, tb, m, n, K, alpha, a0, lda, b0, ldb, c0, ldc, assign, ep);
            return;
        }
    }
#endif
    {
        MapR<T> c(c0, m, n, Eigen::OuterStride<>(ldc));
        if (beta == T(0)) c.setZero();
        else if (beta != T(1)) c *= beta;
    }
    if (K > 0) {
        constexpr int TMN = 96, TK = int(98304 / (TMN * sizeof(T)));  // 96×256 floats / 96×128 doubles = 96 KiB
        for (int r0 = 0; r0 < m; r0 += TMN) {
            const int mr = std::min(TMN, m - r0);
            for (int q0 = 0; q0 < n; q0 += TMN) {
                const int nc = std::min(TMN, n - q0);
                MapR<T> c(c0 + std::size_t(r0) * ldc + q0, mr, nc, Eigen::OuterStride<>(ldc));
                for (int k0 = 0; k0 < K; k0 += TK) {
                    const int kc = std::min(TK, K - k0);
                    auto run = [&](const auto& a) {
                        if (tb) {  // Bᵀ stored row-major N×K == col-major K×N
                            CMapC<T> b(b0 + std::size_t(q0) * ldb + k0, kc, nc, Eigen::OuterStride<>(ldb));
                            c.noalias() += alpha * a * b;
                        } else {
                            CMapR<T> b(b0 + std::size_t(k0) * ldb + q0, kc, nc, Eigen::OuterStride<>(ldb));
                            c.noalias() += alpha * a * b;
                        }
                    };
                    if (ta) run(CMapC<T>(a0 + std::size_t(k0) * lda + r0, mr, kc, Eigen::OuterStride<>(lda)));
                    else run(CMapR<T>(a0 + std::size_t(r0) * lda + k0, mr, kc, Eigen::OuterStride<>(lda)));
                }
            }
        }
    }
    if (!ep.empty()) ep.apply(c0, ldc, 0, 0, m, n);
}
}  // namespace detail

namespace detail {
/// f(s0, s1) for one contiguous run of `unit`-blocks of [0, len) per OpenMP thread (a static split,
/// so no two threads write the same cache line of C), when the product's flops pay for a parallel
/// region and none is running; inside a conditioner pass's chunks while one of its threads is idle,
/// f on up to 4 runs that this thread and the idle ones take (kernels/cpu/pass_help.hpp); false,
/// with nothing run, otherwise.
template <class F>
bool split_c(int len, int unit, double flops, F&& f) {
#if defined(_OPENMP)
    const int blocks = (len + unit - 1) / unit;
    const bool worth_splitting = flops > 2e5;
    if (blocks > 1 && worth_splitting && help_wanted()) {
        const int tasks = std::min(blocks, 4);
        help_offer(tasks, [&](int k) {
            f(std::min(len, int(std::int64_t(blocks) * k / tasks) * unit),
              std::min(len, int(std::int64_t(blocks) * (k + 1) / tasks) * unit));
        });
        return true;
    }
    const int threads = worth_splitting ? std::min(num_threads(), blocks) : 1;
    if (threads > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(threads)
        {
            const int t = omp_get_thread_num(), nt = omp_get_num_threads();
            f(std::min(len, int(std::int64_t(blocks) * t / nt) * unit),
              std::min(len, int(std::int64_t(blocks) * (t + 1) / nt) * unit));
        }
        return true;
    }
#else
    (void)len, (void)unit, (void)flops, (void)f;
#endif
    return false;
}
}  // namespace detail

/// kernels::gemm, then `ep` on every element of C (detail::GemmEpilogue: row bias, ReLU, ReLU
/// mask), fused into the product's last pass over each tile where the packed kernels run.
template <class T>
void gemm_ep(Cpu, bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb,
             T beta, T* C, int ldc, const detail::GemmEpilogue<T>& ep) {
    const detail::ThinKind thin = detail::gemm_thin_kind(trans_b, M, N, K);  // from the whole shape: see gemm_thin.hpp
    // Split the longer side of C: rows in blocks of 16, columns in blocks of 32 (128 bytes of floats).
    const bool by_cols = N > M;
    if (detail::split_c(by_cols ? N : M, by_cols ? 32 : 16, 2.0 * M * N * K, [&](int s0, int s1) {
            if (by_cols) detail::gemm_block(trans_a, trans_b, 0, M, s0, s1, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, thin);
            else detail::gemm_block(trans_a, trans_b, s0, s1, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, thin);
        }))
        return;
#if defined(_OPENMP)
    if (!omp_in_parallel() && omp_get_max_threads() > 1) {
        // Serial here by choice: stop Eigen from starting its own OpenMP team for this product (it
        // would fight ours and allocate per-thread bookkeeping on the heap). omp_set_num_threads
        // changes only this thread's setting, restored at once.
        const int saved = omp_get_max_threads();
        omp_set_num_threads(1);
        detail::gemm_block(trans_a, trans_b, 0, M, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, thin);
        omp_set_num_threads(saved);
        return;
    }
#endif
    detail::gemm_block(trans_a, trans_b, 0, M, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, thin);
}

#if defined(BIJOU_SGEMM_SIMD)
/// gemm_ep for float with op(A) (M × K) already packed (detail::sgemm_pack_a_blocks), for an op(A)
/// that many products share (a convolution's W or Wᵀ, once per pass instead of once per chunk). C is
/// split across threads by columns only (a row split would cut the packed panels); the same bits as
/// gemm_ep. `panels`: B and/or C in 32-column panels (as gemm_panels; a C in panels takes beta 0 or 1).
inline void gemm_ep_a_packed(Cpu, const float* a_packed, bool trans_b, int M, int N, int K, float alpha,
                             const float* B, int ldb, float beta, float* C, int ldc,
                             const detail::GemmEpilogue<float>& ep, detail::SgPanels panels = {}) {
    const bool assign = beta == 0.0f;
    if (!assign && beta != 1.0f) {
        if (panels.c != 0) throw std::logic_error("gemm_ep_a_packed: a C in panels takes beta 0 or 1");
        detail::MapR<float>(C, M, N, Eigen::OuterStride<>(ldc)) *= beta;
    }
    auto cols = [&](int j0, int j1) {  // j0: a multiple of 32, so at a panel's start
        if (j1 > j0)
            detail::sgemm_simd(false, trans_b, M, j1 - j0, K, alpha, nullptr, 0,
                               trans_b ? B + std::size_t(j0) * ldb : B + detail::panel_column(j0, panels.b), ldb,
                               C + detail::panel_column(j0, panels.c), ldc, assign, ep.at(0, j0), a_packed, panels);
    };
    if (!detail::split_c(N, 32, 2.0 * M * N * K, cols)) cols(0, N);
}

/// gemm_ep for float where detail::sgemm_simd_available(), beta 0 or 1, with B and/or C stored in
/// 32-column panels b_panels / c_panels floats apart (detail::sgemm_packed's `panels`; ldb / ldc are
/// then 32; 0: row-major), an untransposed A in panels a_panels apart (lda 32), and the epilogue's
/// mask possibly in panels too (no column bias with a C in panels). Split across threads as gemm_ep
/// splits C (columns in blocks of one panel); the same bits as gemm_ep on the row-major operands.
inline void gemm_panels(Cpu, bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                        const float* B, int ldb, std::size_t b_panels, float beta, float* C, int ldc,
                        std::size_t c_panels, const detail::GemmEpilogue<float>& ep = {}, std::size_t a_panels = 0) {
    if (a_panels != 0 && trans_a) throw std::logic_error("gemm_panels: an op(A) in panels must be untransposed");
    const detail::SgPanels panels{b_panels, c_panels, a_panels};
    auto block = [&](int i0, int i1, int j0, int j1) {
        if (i1 <= i0 || j1 <= j0) return;
        const float* a0 = trans_a ? A + i0 : A + std::size_t(i0) * lda;
        const float* b0 = trans_b ? B + std::size_t(j0) * ldb : B + detail::panel_column(j0, b_panels);
        detail::sgemm_simd(trans_a, trans_b, i1 - i0, j1 - j0, K, 1.0f, a0, lda, b0, ldb,
                           C + std::size_t(i0) * ldc + detail::panel_column(j0, c_panels), ldc, beta == 0.0f,
                           ep.at(i0, j0), nullptr, panels);
    };
    const bool by_cols = N > M;
    if (detail::split_c(by_cols ? N : M, by_cols ? detail::panel_width : 16, 2.0 * M * N * K, [&](int s0, int s1) {
            if (by_cols) block(0, M, s0, s1);
            else block(s0, s1, 0, N);
        }))
        return;
    block(0, M, 0, N);
}
#endif

template <class T>
void gemm(Cpu, bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb,
          T beta, T* C, int ldc) {
    gemm_ep(Cpu{}, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, detail::GemmEpilogue<T>{});
}

}  // namespace bijou::kernels
