// bijou/kernels/cpu/sgemm_avx2.hpp — a packed single-precision GEMM for AVX2 + FMA, chosen at run time.
//
// A portable build (no -mavx2) gets SSE2 code from Eigen, about a quarter of what the core can do.
// These kernels are compiled with __attribute__((target("avx2,fma"))) / target("avx512f") and used
// only when the running CPU has those (sgemm_simd_level()), so the library still builds and runs
// for plain x86-64.
// When the translation unit itself is compiled with AVX2 and FMA enabled (e.g. -march=native),
// Eigen's own kernels are at least as fast and this file compiles to nothing.
//
// sgemm_avx2(ta, tb, M, N, K, alpha, A, lda, B, ldb, C, ldc, assign): C (M×N, row-major) (+)=
// alpha·op(A)·op(B), the same operand conventions as kernels::gemm. Goto/BLIS blocking: for each
// nc-block of columns and kc-block of depth, op(B) is packed into NR-column panels; for each mc-block
// of rows op(A) is packed into MR-row panels; a register micro-kernel runs over the panels: 6×16
// (12 ymm accumulators) with AVX2, 12×32 (24 zmm) with AVX-512F. The
// packing buffers (96×256 and 256×128 floats, 224 KiB) live on the stack: no allocation. Edge panels
// are zero-padded, so the micro-kernel always runs full tiles and stores only the valid part. Each
// element of C is accumulated in one fixed order, so results are repeatable.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !(defined(__AVX2__) && defined(__FMA__))
#define BIJOU_SGEMM_AVX2 1
#include <immintrin.h>

#include <algorithm>
#include <cstddef>

namespace bijou::kernels::detail {

/// 2: AVX-512F, 1: AVX2 + FMA, 0: neither (use Eigen). Read once from the running CPU.
inline int sgemm_simd_level() {
    static const int level = __builtin_cpu_supports("avx512f")                              ? 2
                             : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1
                                                                                                 : 0;
    return level;
}
inline bool sgemm_avx2_available() { return sgemm_simd_level() > 0; }

inline constexpr int sg_mc = 96, sg_kc = 256, sg_nc = 128;  // mc: a multiple of 6 and 12; nc: of 16 and 32

// Packs op(A)[0:m, 0:k] into ceil(m/MR) panels of k×MR (zero rows past m).
template <int MR>
void sg_pack_a(bool ta, int m, int k, const float* A, int lda, float* pa) {
    for (int i0 = 0; i0 < m; i0 += MR) {
        const int mr = std::min(MR, m - i0);
        if (ta) {  // op(A)(i, p) = A[p·lda + i]: the MR values of one p are contiguous
            for (int p = 0; p < k; ++p) {
                const float* s = A + std::size_t(p) * lda + i0;
                int r = 0;
                for (; r < mr; ++r) pa[r] = s[r];
                for (; r < MR; ++r) pa[r] = 0.0f;
                pa += MR;
            }
        } else {
            const float* rows[MR];
            for (int r = 0; r < MR; ++r) rows[r] = A + std::size_t(i0 + std::min(r, mr - 1)) * lda;
            for (int p = 0; p < k; ++p) {
                for (int r = 0; r < MR; ++r) pa[r] = r < mr ? rows[r][p] : 0.0f;
                pa += MR;
            }
        }
    }
}

// Packs op(B)[0:k, 0:n] into ceil(n/NR) panels of k×NR (zero columns past n).
template <int NR>
void sg_pack_b(bool tb, int k, int n, const float* B, int ldb, float* pb) {
    for (int j0 = 0; j0 < n; j0 += NR) {
        const int nr = std::min(NR, n - j0);
        if (!tb) {  // op(B)(p, j) = B[p·ldb + j]
            for (int p = 0; p < k; ++p) {
                const float* s = B + std::size_t(p) * ldb + j0;
                if (nr == NR) {
                    for (int j = 0; j < NR; ++j) pb[j] = s[j];
                } else {
                    int j = 0;
                    for (; j < nr; ++j) pb[j] = s[j];
                    for (; j < NR; ++j) pb[j] = 0.0f;
                }
                pb += NR;
            }
        } else {  // op(B)(p, j) = B[j·ldb + p]: walk NR rows of B side by side
            const float* cols[NR];
            for (int j = 0; j < NR; ++j) cols[j] = B + std::size_t(j0 + std::min(j, nr - 1)) * ldb;
            for (int p = 0; p < k; ++p) {
                for (int j = 0; j < NR; ++j) pb[j] = j < nr ? cols[j][p] : 0.0f;
                pb += NR;
            }
        }
    }
}

// Stores alpha·(MR×NR tile t) into C[0:mr, 0:nr] (= when assign, += otherwise).
template <int MR, int NR>
void sg_store_edge(const float (&t)[MR][NR], float* C, int ldc, int mr, int nr, bool assign) {
    for (int r = 0; r < mr; ++r)
        for (int j = 0; j < nr; ++j) {
            float& c = C[std::size_t(r) * ldc + j];
            c = assign ? t[r][j] : c + t[r][j];
        }
}

// 6×16 AVX2 micro-kernel: C[0:mr, 0:nr] (+)= alpha · (k×6 panel pa)ᵀ · (k×16 panel pb).
struct SgAvx2 {
    static constexpr int mr = 6, nr = 16;
    __attribute__((target("avx2,fma"))) static void run(int k, const float* pa, const float* pb, float* C, int ldc,
                                                        float alpha, int m, int n, bool assign) {
        __m256 acc[mr][2];
#pragma GCC unroll 6
        for (int r = 0; r < mr; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        for (int p = 0; p < k; ++p) {
            const __m256 b0 = _mm256_load_ps(pb), b1 = _mm256_load_ps(pb + 8);
#pragma GCC unroll 6
            for (int r = 0; r < mr; ++r) {
                const __m256 a = _mm256_broadcast_ss(pa + r);
                acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
            }
            pa += mr;
            pb += nr;
        }
        const __m256 va = _mm256_set1_ps(alpha);
        if (m == mr && n == nr) {
#pragma GCC unroll 6
            for (int r = 0; r < mr; ++r) {
                float* c = C + std::size_t(r) * ldc;
                if (assign) {
                    _mm256_storeu_ps(c, _mm256_mul_ps(va, acc[r][0]));
                    _mm256_storeu_ps(c + 8, _mm256_mul_ps(va, acc[r][1]));
                } else {
                    _mm256_storeu_ps(c, _mm256_fmadd_ps(va, acc[r][0], _mm256_loadu_ps(c)));
                    _mm256_storeu_ps(c + 8, _mm256_fmadd_ps(va, acc[r][1], _mm256_loadu_ps(c + 8)));
                }
            }
            return;
        }
        alignas(32) float t[mr][nr];
#pragma GCC unroll 6
        for (int r = 0; r < mr; ++r) {
            _mm256_store_ps(t[r], _mm256_mul_ps(va, acc[r][0]));
            _mm256_store_ps(t[r] + 8, _mm256_mul_ps(va, acc[r][1]));
        }
        sg_store_edge(t, C, ldc, m, n, assign);
    }
};

// 12×32 AVX-512 micro-kernel (24 zmm accumulators).
struct SgAvx512 {
    static constexpr int mr = 12, nr = 32;
    __attribute__((target("avx512f"))) static void run(int k, const float* pa, const float* pb, float* C, int ldc,
                                                      float alpha, int m, int n, bool assign) {
        __m512 acc[mr][2];
#pragma GCC unroll 12
        for (int r = 0; r < mr; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        for (int p = 0; p < k; ++p) {
            const __m512 b0 = _mm512_load_ps(pb), b1 = _mm512_load_ps(pb + 16);
#pragma GCC unroll 12
            for (int r = 0; r < mr; ++r) {
                const __m512 a = _mm512_set1_ps(pa[r]);
                acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
            }
            pa += mr;
            pb += nr;
        }
        const __m512 va = _mm512_set1_ps(alpha);
        if (m == mr && n == nr) {
#pragma GCC unroll 12
            for (int r = 0; r < mr; ++r) {
                float* c = C + std::size_t(r) * ldc;
                if (assign) {
                    _mm512_storeu_ps(c, _mm512_mul_ps(va, acc[r][0]));
                    _mm512_storeu_ps(c + 16, _mm512_mul_ps(va, acc[r][1]));
                } else {
                    _mm512_storeu_ps(c, _mm512_fmadd_ps(va, acc[r][0], _mm512_loadu_ps(c)));
                    _mm512_storeu_ps(c + 16, _mm512_fmadd_ps(va, acc[r][1], _mm512_loadu_ps(c + 16)));
                }
            }
            return;
        }
        alignas(64) float t[mr][nr];
#pragma GCC unroll 12
        for (int r = 0; r < mr; ++r) {
            _mm512_store_ps(t[r], _mm512_mul_ps(va, acc[r][0]));
            _mm512_store_ps(t[r] + 16, _mm512_mul_ps(va, acc[r][1]));
        }
        sg_store_edge(t, C, ldc, m, n, assign);
    }
};

/// C (M×N, row-major, ldc) += alpha·op(A)·op(B), or = when `assign` (C is then not read; K ≥ 1),
/// with micro-kernel Kern (SgAvx2 or SgAvx512; the CPU must support it).
template <class Kern>
void sgemm_packed(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                  int ldb, float* C, int ldc, bool assign) {
    constexpr int MR = Kern::mr, NR = Kern::nr;
    static_assert(sg_mc % MR == 0 && sg_nc % NR == 0);
    alignas(64) float pa[sg_mc * sg_kc];
    alignas(64) float pb[sg_kc * sg_nc];
    for (int jc = 0; jc < N; jc += sg_nc) {
        const int nc = std::min(sg_nc, N - jc);
        for (int pc = 0; pc < K; pc += sg_kc) {
            const int kc = std::min(sg_kc, K - pc);
            sg_pack_b<NR>(tb, kc, nc, tb ? B + std::size_t(jc) * ldb + pc : B + std::size_t(pc) * ldb + jc, ldb, pb);
            for (int ic = 0; ic < M; ic += sg_mc) {
                const int mc = std::min(sg_mc, M - ic);
                sg_pack_a<MR>(ta, mc, kc, ta ? A + std::size_t(pc) * lda + ic : A + std::size_t(ic) * lda + pc, lda,
                              pa);
                for (int jr = 0; jr < nc; jr += NR) {
                    const float* pbp = pb + std::size_t(jr) * kc;
                    for (int ir = 0; ir < mc; ir += MR)
                        Kern::run(kc, pa + std::size_t(ir) * kc, pbp, C + std::size_t(ic + ir) * ldc + jc + jr, ldc,
                                  alpha, std::min(MR, mc - ir), std::min(NR, nc - jr), assign && pc == 0);
                }
            }
        }
    }
}

/// sgemm_packed with the widest micro-kernel the CPU runs. Call only when sgemm_avx2_available().
inline void sgemm_avx2(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                       int ldb, float* C, int ldc, bool assign) {
    if (sgemm_simd_level() >= 2) sgemm_packed<SgAvx512>(ta, tb, M, N, K, alpha, A, lda, B, ldb, C, ldc, assign);
    else sgemm_packed<SgAvx2>(ta, tb, M, N, K, alpha, A, lda, B, ldb, C, ldc, assign);
}

}  // namespace bijou::kernels::detail
#endif
