// bijou/kernels/cpu/sgemm.hpp — bijou's packed single-precision GEMM (AVX-512F or AVX2 + FMA),
// chosen at run time.
//
// The kernels are compiled with __attribute__((target("avx512f"))) / target("avx2,fma") and used only
// when the running CPU has those (sgemm_simd_level()), so the library still builds and runs for plain
// x86-64 (no -march); with -march=native they replace Eigen's float GEMM as well, which reaches about
// half of this core's FMA peak on Glow's shapes (its 48×4 AVX-512 kernel, repacking and a memset pass
// for beta = 0), where these reach 55–65% (`bench_image --benchmark_filter=GlowGemm`).
//
// sgemm_simd(ta, tb, M, N, K, alpha, A, lda, B, ldb, C, ldc, assign): C (M×N, row-major) (+)=
// alpha·op(A)·op(B), the same operand conventions as kernels::gemm. Goto/BLIS blocking (kc = 256 deep,
// mc = 144 rows, nc = 128 columns): op(A) is packed into MR-row panels once per (kc, mc) block, op(B)
// into NR-column panels once per (kc, mc, nc) block (once per kc block when N ≤ nc), and a register
// micro-kernel runs over the panels: 12×32 (24 zmm accumulators) with AVX-512F, 6×16 (12 ymm) with
// AVX2. Both read an untransposed A (op(A) = A) in place, MR rows at a time (AVX-512: from a depth
// block of 64 on; also from 32-column panels, SgPanels::a), and pack only a ragged last panel:
// transposing A into panels cost more than it saved (the row streams stay in L1 across the block's
// column panels). Both apply a GemmEpilogue in registers before storing a full tile. While a column
// block computes, the next block's rows of an untransposed op(B) are prefetched into L2, ready for
// packing. Where op(A) is packed and N ≤ 256, op(B)'s depth block is packed once, all its columns, and
// kept across the row blocks (sg_nc_wide). Where op(A) has at most 72 rows (AVX-512), an untransposed
// op(B) is not packed at all: the micro-kernel reads its panels in place, rows ldb apart (each panel
// would serve at most 6 row panels: Glow's narrow last layer). The packing buffers (144×256 and 256×256
// floats, 400 KiB) live on the stack: no allocation. An op(B) = Bᵀ is transposed in 16×16 AVX-512
// blocks for the AVX-512 kernel (sg_transpose_panel32), in 8×8 AVX blocks otherwise. Edge panels are
// zero-padded, so the micro-kernel always runs full tiles and stores only the valid part. Each element
// of C is accumulated in one fixed order that does not depend on how the caller splits C, so results
// are repeatable and the same for any thread count.
#pragma once

#include <cstddef>

// GCC's unroll pragma; nvcc's front end does not know it, so translation units that nvcc compiles
// get these loops without the hint (same results, the Cpu GEMM possibly a little slower there).
#if defined(__CUDACC__)
#define BIJOU_UNROLL(n)
#else
#define BIJOU_PRAGMA_(x) _Pragma(#x)
#define BIJOU_UNROLL(n) BIJOU_PRAGMA_(GCC unroll n)
#endif

namespace bijou::kernels::detail {

/// Where the columns of an operand stored in panels lie (sgemm_packed's op(B) and C, and the Cpu
/// conditioner's hidden activations, kernels/cpu/conv2d.hpp): a matrix of R rows is
/// ⌈N/32⌉ panels of R × 32, each row-major (row stride 32), panel q at q·stride; element (r, j) at
/// (j / 32)·stride + r·32 + j % 32. The columns past N in the last panel are padding. stride 0 means
/// the plain row-major layout: element (r, j) at r·ld + j.
inline constexpr int panel_width = 32;
inline std::size_t panel_column(int j, std::size_t stride) {
    return stride == 0 ? std::size_t(j) : std::size_t(j / panel_width) * stride + std::size_t(j % panel_width);
}

/// What to do to each finished element C(i, j) of a product, while its tile is still in L1: add
/// bias[i] (a row bias: a convolution's output channel), then col_bias[j] (a column bias: a linear
/// layer's output feature), then ReLU (max(c, 0), NaN passes), then keep it only where mask(i, j) > 0
/// (the ReLU's backward: mask is the post-ReLU activation, row stride ldm; in 32-column panels
/// mask_panels apart where that is not 0, panel_column: a tile of C then lies within one panel of
/// the mask). Every part is optional.
template <class T>
struct GemmEpilogue {
    const T* bias = nullptr;
    const T* col_bias = nullptr;
    bool relu = false;
    const T* mask = nullptr;
    int ldm = 0;
    std::size_t mask_panels = 0;
    bool empty() const { return bias == nullptr && col_bias == nullptr && !relu && mask == nullptr; }
    /// The same epilogue for the block of C starting at (i0, j0) (j0 at a panel's start where the
    /// mask is in panels).
    GemmEpilogue at(int i0, int j0) const {
        return {bias ? bias + i0 : nullptr, col_bias ? col_bias + j0 : nullptr, relu,
                mask ? mask + std::size_t(i0) * ldm + panel_column(j0, mask_panels) : nullptr, ldm, mask_panels};
    }
    /// Applies it to C[0:m, 0:n] (row stride ldc), whose top-left element is C(i0, j0).
    void apply(T* c, int ldc, int i0, int j0, int m, int n) const {
        for (int r = 0; r < m; ++r) {
            T* row = c + std::size_t(r) * ldc;
            if (bias) {
                const T b = bias[i0 + r];
#pragma omp simd
                for (int j = 0; j < n; ++j) row[j] += b;
            }
            if (col_bias) {
                const T* cb = col_bias + j0;
#pragma omp simd
                for (int j = 0; j < n; ++j) row[j] += cb[j];
            }
            if (relu) {
#pragma omp simd
                for (int j = 0; j < n; ++j) row[j] = row[j] < T(0) ? T(0) : row[j];
            }
            if (mask) {
                const T* mr = mask + std::size_t(i0 + r) * ldm + panel_column(j0, mask_panels);
#pragma omp simd
                for (int j = 0; j < n; ++j) row[j] = mr[j] > T(0) ? row[j] : T(0);
            }
        }
    }
};

}  // namespace bijou::kernels::detail

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BIJOU_SGEMM_SIMD 1
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "bijou/core/parallel.hpp"

namespace bijou::kernels::detail {

/// 2: AVX-512F, 1: AVX2 + FMA, 0: neither (use Eigen). Read once from the running CPU.
inline int sgemm_simd_level() {
    static const int level = __builtin_cpu_supports("avx512f")                              ? 2
                             : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1
                                                                                                 : 0;
    return level;
}
inline bool sgemm_simd_available() { return sgemm_simd_level() > 0; }

inline constexpr int sg_mc = 144, sg_kc = 256, sg_nc = 128;  // mc: a multiple of 6 and 12; nc: of 16 and 32
/// Where op(A) is packed and N ≤ sg_nc_wide, op(B)'s whole depth block is one column block, packed
/// once and kept across the row blocks (config c's 512-row data gradient Wᵀ·dY, 256 columns per
/// chunk: op(B) packed once instead of once per 144-row block, 4 times).
inline constexpr int sg_nc_wide = 256;
inline constexpr std::size_t sg_direct_cols_max = 98304;     // op(A) = Aᵀ read in place up to this block (384 KiB)

// Transposes for packing operands whose depth index is the contiguous one, with AVX (every CPU that
// runs either micro-kernel has it). sg_transpose(s, lds, R, k, d, ldd): d[p·ldd + i] = s[i·lds + p]
// for i < R, p < k, in 8×8, 4×8 and 2×8 register blocks, the ragged rest element by element.
template <int rows>  // 8 or 4
__attribute__((target("avx2"))) void sg_transpose_block(const float* s, int lds, float* d, int ldd) {
    __m256 r[rows], t[rows], u[rows];
    for (int i = 0; i < rows; ++i) r[i] = _mm256_loadu_ps(s + std::size_t(i) * lds);
    for (int i = 0; i < rows; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int h = 0; h < rows; h += 4) {  // rows h..h+3: u[h + q] holds p = q (low half) and q + 4 (high)
        u[h + 0] = _mm256_shuffle_ps(t[h], t[h + 2], 0x44);
        u[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], 0xEE);
        u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44);
        u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xEE);
    }
    for (int q = 0; q < 4; ++q) {
        if constexpr (rows == 8) {
            _mm256_storeu_ps(d + std::size_t(q) * ldd, _mm256_permute2f128_ps(u[q], u[q + 4], 0x20));
            _mm256_storeu_ps(d + std::size_t(q + 4) * ldd, _mm256_permute2f128_ps(u[q], u[q + 4], 0x31));
        } else {
            _mm_storeu_ps(d + std::size_t(q) * ldd, _mm256_castps256_ps128(u[q]));
            _mm_storeu_ps(d + std::size_t(q + 4) * ldd, _mm256_extractf128_ps(u[q], 1));
        }
    }
}

/// Two rows: d[p·ldd + i] = s[i·lds + p] for i < 2, p < 8, as pairs (the last two rows of a 6-row panel).
__attribute__((target("avx2"))) inline void sg_transpose_pair(const float* s, int lds, float* d, int ldd) {
    const __m256 a = _mm256_loadu_ps(s), b = _mm256_loadu_ps(s + lds);
    const __m256 lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b);  // (a0 b0 a1 b1 | a4 b4 a5 b5), …
    const __m128 q[4] = {_mm256_castps256_ps128(lo), _mm256_castps256_ps128(hi), _mm256_extractf128_ps(lo, 1),
                         _mm256_extractf128_ps(hi, 1)};
    for (int h = 0; h < 4; ++h) {  // q[h] holds p = 2h and 2h + 1
        _mm_storel_pi(reinterpret_cast<__m64*>(d + std::size_t(2 * h) * ldd), q[h]);
        _mm_storeh_pi(reinterpret_cast<__m64*>(d + std::size_t(2 * h + 1) * ldd), q[h]);
    }
}

inline void sg_transpose(const float* s, int lds, int R, int k, float* d, int ldd) {
    const int k8 = k - k % 8;
    int i = 0;
    for (; i + 8 <= R; i += 8)
        for (int p = 0; p < k8; p += 8)
            sg_transpose_block<8>(s + std::size_t(i) * lds + p, lds, d + std::size_t(p) * ldd + i, ldd);
    for (; i + 4 <= R; i += 4)
        for (int p = 0; p < k8; p += 8)
            sg_transpose_block<4>(s + std::size_t(i) * lds + p, lds, d + std::size_t(p) * ldd + i, ldd);
    for (; i + 2 <= R; i += 2)
        for (int p = 0; p < k8; p += 8)
            sg_transpose_pair(s + std::size_t(i) * lds + p, lds, d + std::size_t(p) * ldd + i, ldd);
    for (int r = 0; r < R; ++r)
        for (int p = r < i ? k8 : 0; p < k; ++p) d[std::size_t(p) * ldd + r] = s[std::size_t(r) * lds + p];
}

// A full 32-column panel of an op(B) = Bᵀ for the AVX-512 kernel: d[p·32 + i] = s[i·lds + p] for i < 32,
// p < k, in 16×16 register blocks (four shuffle stages, 16-float loads and stores: fewer shuffles and
// stores per element than the 8×8 AVX blocks), the depth past the last multiple of 16 by sg_transpose.
__attribute__((target("avx512f"))) inline void sg_transpose_panel32(const float* s, int lds, int k, float* d) {
    const int k16 = k - k % 16;
    const __mmask16 all = 0xffff;  // the zero-masked forms: GCC 12 warns falsely inside the plain ones
    for (int h = 0; h < 32; h += 16) {
        for (int p = 0; p < k16; p += 16) {
            __m512 r[16], t[16];
            for (int i = 0; i < 16; ++i) {
                const float* row = s + std::size_t(h + i) * lds + p;
                r[i] = _mm512_loadu_ps(row);
                _mm_prefetch(reinterpret_cast<const char*>(row + 32), _MM_HINT_T0);  // two blocks ahead
            }
            for (int i = 0; i < 16; i += 2) {  // per 128-bit lane: (a0 b0 a1 b1), (a2 b2 a3 b3)
                t[i] = _mm512_maskz_unpacklo_ps(all, r[i], r[i + 1]);
                t[i + 1] = _mm512_maskz_unpackhi_ps(all, r[i], r[i + 1]);
            }
            for (int g = 0; g < 16; g += 4) {  // r[g + q], lane L: rows g..g+3 at depth 4L + q
                r[g + 0] = _mm512_maskz_shuffle_ps(all, t[g], t[g + 2], 0x44);
                r[g + 1] = _mm512_maskz_shuffle_ps(all, t[g], t[g + 2], 0xEE);
                r[g + 2] = _mm512_maskz_shuffle_ps(all, t[g + 1], t[g + 3], 0x44);
                r[g + 3] = _mm512_maskz_shuffle_ps(all, t[g + 1], t[g + 3], 0xEE);
            }
            float* dp = d + std::size_t(p) * 32 + h;
            for (int q = 0; q < 4; ++q) {  // depth 4L + q: lane L of r[q], r[4 + q], r[8 + q], r[12 + q]
                const __m512 lo0 = _mm512_maskz_shuffle_f32x4(all, r[q], r[4 + q], 0x44);  // lanes 0, 1 of each
                const __m512 hi0 = _mm512_maskz_shuffle_f32x4(all, r[q], r[4 + q], 0xEE);  // lanes 2, 3
                const __m512 lo1 = _mm512_maskz_shuffle_f32x4(all, r[8 + q], r[12 + q], 0x44);
                const __m512 hi1 = _mm512_maskz_shuffle_f32x4(all, r[8 + q], r[12 + q], 0xEE);
                _mm512_store_ps(dp + std::size_t(q) * 32, _mm512_maskz_shuffle_f32x4(all, lo0, lo1, 0x88));
                _mm512_store_ps(dp + std::size_t(4 + q) * 32, _mm512_maskz_shuffle_f32x4(all, lo0, lo1, 0xDD));
                _mm512_store_ps(dp + std::size_t(8 + q) * 32, _mm512_maskz_shuffle_f32x4(all, hi0, hi1, 0x88));
                _mm512_store_ps(dp + std::size_t(12 + q) * 32, _mm512_maskz_shuffle_f32x4(all, hi0, hi1, 0xDD));
            }
        }
    }
    if (k16 < k) sg_transpose(s + k16, lds, 32, k - k16, d + std::size_t(k16) * 32, 32);
}

// Packs op(A)[0:m, 0:k] into ceil(m/MR) panels of k×MR (zero rows past m). Each source row is read
// contiguously: with ta, 16 rows of A at a time feed every panel (one pass over A, not one per panel);
// without, each panel's MR rows are transposed in registers.
template <int MR>
void sg_pack_a(bool ta, int m, int k, const float* A, int lda, float* pa) {
    if (ta) {  // op(A)(i, p) = A[p·lda + i]: rows p of A hold op(A)(·, p) for every panel, contiguously
        constexpr int pb = 16;  // 16 rows of A at a time (in L1), written panel by panel (contiguous runs)
        const int full = m / MR, mr = m % MR;
        for (int p0 = 0; p0 < k; p0 += pb) {
            const int p1 = std::min(k, p0 + pb);
            for (int q = 0; q <= full; ++q) {
                const int w = q < full ? MR : mr;
                if (w == 0) break;
                float* d = pa + std::size_t(q) * k * MR;
                for (int p = p0; p < p1; ++p) {
                    const float* s = A + std::size_t(p) * lda + q * MR;
                    float* dp = d + std::size_t(p) * MR;
                    if (w == MR) {
                        std::memcpy(dp, s, sizeof(float) * MR);  // vector moves, not MR scalar ones
                    } else {
                        BIJOU_UNROLL(12)
                        for (int r = 0; r < MR; ++r) dp[r] = r < w ? s[r] : 0.0f;  // no memset call per row
                    }
                }
            }
        }
        return;
    }
    for (int i0 = 0; i0 < m; i0 += MR, pa += std::size_t(k) * MR) {
        const int mr = std::min(MR, m - i0);
        // op(A)(i, p) = A[i·lda + p]: transpose the rows, zero the padding
        sg_transpose(A + std::size_t(i0) * lda, lda, mr, k, pa, MR);
        for (int r = mr; r < MR; ++r)
            for (int p = 0; p < k; ++p) pa[std::size_t(p) * MR + r] = 0.0f;
    }
}

// sg_pack_a's op(A) = A (no transpose) from 32-column panels aps apart (panel_column; A at the start of
// a panel, row i at A + i·32): each panel's MR rows transposed 32 depths at a time.
template <int MR>
void sg_pack_a_panels(int m, int k, const float* A, std::size_t aps, float* pa) {
    for (int i0 = 0; i0 < m; i0 += MR, pa += std::size_t(k) * MR) {
        const int mr = std::min(MR, m - i0);
        for (int p0 = 0; p0 < k; p0 += panel_width)
            sg_transpose(A + std::size_t(p0 / panel_width) * aps + std::size_t(i0) * panel_width, panel_width, mr,
                         std::min(panel_width, k - p0), pa + std::size_t(p0) * MR, MR);
        for (int r = mr; r < MR; ++r)
            for (int p = 0; p < k; ++p) pa[std::size_t(p) * MR + r] = 0.0f;
    }
}

// One k×NR panel of op(B) = Bᵀ from nr ≤ NR rows of B (ldb apart, k values each): op(B)(p, j) =
// B[j·ldb + p], columns past nr zero. A full panel of the AVX-512 kernel (which runs only where the CPU
// has AVX-512F) goes through sg_transpose_panel32's 16×16 register blocks.
template <int NR>
void sg_pack_b_transposed(int nr, int k, const float* B, int ldb, float* pb) {
    if constexpr (NR == 32) {
        if (nr == NR) {
            sg_transpose_panel32(B, ldb, k, pb);
            return;
        }
    }
    sg_transpose(B, ldb, nr, k, pb, NR);
    for (int j = nr; j < NR; ++j)
        for (int p = 0; p < k; ++p) pb[std::size_t(p) * NR + j] = 0.0f;
}

// Packs op(B)[0:k, 0:n] into ceil(n/NR) panels of k×NR (zero columns past n), reading contiguously.
template <int NR>
void sg_pack_b(bool tb, int k, int n, const float* B, int ldb, float* pb) {
    if (!tb) {  // op(B)(p, j) = B[p·ldb + j]: row p's n values go to every panel's row p
        // Row by row, each row read once from start to end. (Panel by panel, the k rows' NR-value
        // pieces are ldb apart: with the activations' power-of-two ldb (n·HW) they all fall into one
        // L1 set, and every panel fetched its rows again: 12% of a training step.)
        const int full = n / NR, nr = n % NR;
        for (int p = 0; p < k; ++p) {
            const float* s = B + std::size_t(p) * ldb;
            float* d = pb + std::size_t(p) * NR;
            for (int q = 0; q < full; ++q) {
                BIJOU_UNROLL(4)
                for (int j = 0; j < NR; ++j) d[std::size_t(q) * k * NR + j] = s[q * NR + j];
            }
            if (nr > 0) {
                float* dq = d + std::size_t(full) * k * NR;
                const float* sq = s + full * NR;
                BIJOU_UNROLL(32)
                for (int j = 0; j < NR; ++j) dq[j] = j < nr ? sq[j] : 0.0f;  // no memcpy/memset call per row
            }
        }
        return;
    }
    for (int j0 = 0; j0 < n; j0 += NR, pb += std::size_t(k) * NR)
        sg_pack_b_transposed<NR>(std::min(NR, n - j0), k, B + std::size_t(j0) * ldb, ldb, pb);
}

// sg_pack_b's op(B) = Bᵀ where B (n × k, its rows the columns of op(B)) is stored in 32-column
// panels bps apart (panel_column; B at the start of a panel): each 32 × 32 block, contiguous, is
// transposed on its own (the AVX-512 kernel's full panels in 16×16 register blocks).
template <int NR>
void sg_pack_b_panels(int k, int n, const float* B, std::size_t bps, float* pb) {
    for (int j0 = 0; j0 < n; j0 += NR, pb += std::size_t(k) * NR) {
        const int nr = std::min(NR, n - j0);
        for (int p0 = 0; p0 < k; p0 += panel_width) {
            const int kp = std::min(panel_width, k - p0);
            const float* s = B + std::size_t(p0 / panel_width) * bps + std::size_t(j0) * panel_width;
            sg_pack_b_transposed<NR>(nr, kp, s, panel_width, pb + std::size_t(p0) * NR);
        }
    }
}

// op(A)'s block of rows [i0, i0 + m) and depths [p0, p0 + k) packed as sg_pack_a packs it: the one
// addressing that sgemm_packed's per-call packing and sg_pack_a_block_of's once-per-pass packing share
// (their panels must match bit for bit).
// An op(A) = A in panels aps apart (aps ≠ 0: lda is then 32, p0 a multiple of 32) is packed from them.
template <int MR>
void sg_pack_a_block(bool ta, int i0, int m, int p0, int k, const float* A, int lda, float* pa, std::size_t aps = 0) {
    if (aps != 0) {
        sg_pack_a_panels<MR>(m, k, A + std::size_t(i0) * panel_width + panel_column(p0, aps), aps, pa);
        return;
    }
    sg_pack_a<MR>(ta, m, k, ta ? A + std::size_t(p0) * lda + i0 : A + std::size_t(i0) * lda + p0, lda, pa);
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

/// Where a micro-kernel reads its MR rows of op(A): a packed k×MR panel; A's rows in place (op(A) = A,
/// row r at pa + r·lda); A's columns in place (op(A) = Aᵀ: element (r, p) at pa[p·lda + r], the MR
/// values of one p contiguous, as in a packed panel but lda apart); or A's rows in place from
/// 32-column panels lda apart (op(A) = A stored as panel_column describes, pa at the start of a
/// panel: element (r, p) at pa[(p / 32)·lda + r·32 + p % 32]).
enum class SgA { packed, rows, cols, panel_rows };

// A micro-kernel's first step: the rows × width floats of its tile's ReLU mask (ep's, if any), which
// the epilogue reads after the depth loop, prefetched into L1 so that they arrive during it. The mask
// is a stored plane a data gradient reads cold (conv2d_backward runs it before the weight gradient).
inline void sg_prefetch_mask(const GemmEpilogue<float>* ep, int rows, int width) {
    if (ep == nullptr || ep->mask == nullptr) return;
    for (int r = 0; r < rows; ++r)
        for (int j = 0; j < width; j += 16) __builtin_prefetch(ep->mask + std::size_t(r) * ep->ldm + j, 0, 3);
}

// 6×16 AVX2 micro-kernel: C[0:mr, 0:nr] (+)= alpha · (k×6 panel pa)ᵀ · (k×16 panel pb).
// A: SgA (a full panel of MR rows when read in place; lda unused when packed). B: the panel's k rows
// ldb apart (nr when packed; op(B)'s ldb where sgemm_packed reads it in place).
// ep (full tiles only, null otherwise): this tile's epilogue (GemmEpilogue::at), applied in registers
// before the store, in the same order and with the same results as GemmEpilogue::apply afterwards
// (which, for K = 18, took as long as the product: a second pass over C through scalar-trip loops).
struct SgAvx2 {
    static constexpr int mr = 6, nr = 16;
    static constexpr bool fuses(int m) { return m == mr; }  // see SgAvx512::fuses
    static constexpr int direct_min_depth = 1;  // A's rows read in place from this depth block on
    static constexpr int direct_cols_min_depth = 1 << 30;  // A's columns: never (not measured on AVX2)
    static constexpr bool prefetch_b = true;  // the next op(B) block into L2: see sgemm_packed
    static constexpr int b_direct_rows_max = 0;  // op(B) always packed (reading it in place: not measured on AVX2)
    static constexpr bool panel_rows = false;     // an op(A) in panels is packed (sg_pack_a_panels)
    template <SgA Mode>
    __attribute__((target("avx2,fma"))) static void run(int k, const float* pa, int lda, const float* pb, int ldb,
                                                        float* C, int ldc, float alpha, int m, int n, bool assign,
                                                        const GemmEpilogue<float>* ep = nullptr) {
        __m256 acc[mr][2];
        BIJOU_UNROLL(6)
        for (int r = 0; r < mr; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        sg_prefetch_mask(ep, mr, nr);
        // A(r, p) at pa[r·rs + p·ps]
        const std::size_t rs = Mode == SgA::rows ? std::size_t(lda) : 1;
        const std::size_t ps = Mode == SgA::rows ? 1 : Mode == SgA::cols ? std::size_t(lda) : std::size_t(mr);
        for (int p = 0; p < k; ++p) {
            const __m256 b0 = _mm256_loadu_ps(pb), b1 = _mm256_loadu_ps(pb + 8);
            BIJOU_UNROLL(6)
            for (int r = 0; r < mr; ++r) {
                const __m256 a = _mm256_broadcast_ss(pa + r * rs);
                acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
            }
            pa += ps;
            pb += ldb;
        }
        const __m256 va = _mm256_set1_ps(alpha);
        if (m == mr && n == nr) {
            const __m256 zero = _mm256_setzero_ps();
            BIJOU_UNROLL(6)
            for (int r = 0; r < mr; ++r) {
                float* c = C + std::size_t(r) * ldc;
                __m256 v[2];
                for (int h = 0; h < 2; ++h)
                    v[h] = assign ? _mm256_mul_ps(va, acc[r][h]) : _mm256_fmadd_ps(va, acc[r][h], _mm256_loadu_ps(c + 8 * h));
                if (ep != nullptr) {
                    for (int h = 0; h < 2; ++h) {
                        if (ep->bias) v[h] = _mm256_add_ps(v[h], _mm256_set1_ps(ep->bias[r]));
                        if (ep->col_bias) v[h] = _mm256_add_ps(v[h], _mm256_loadu_ps(ep->col_bias + 8 * h));
                        if (ep->relu) v[h] = _mm256_max_ps(zero, v[h]);  // max(0, NaN) = NaN, max(0, −0) = −0: as c < 0 ? 0 : c
                        if (ep->mask) {
                            const __m256 mk = _mm256_loadu_ps(ep->mask + std::size_t(r) * ep->ldm + 8 * h);
                            v[h] = _mm256_and_ps(v[h], _mm256_cmp_ps(mk, zero, _CMP_GT_OQ));  // mask > 0 ? c : +0
                        }
                    }
                }
                _mm256_storeu_ps(c, v[0]);
                _mm256_storeu_ps(c + 8, v[1]);
            }
            return;
        }
        alignas(32) float t[mr][nr];
        BIJOU_UNROLL(6)
        for (int r = 0; r < mr; ++r) {
            _mm256_store_ps(t[r], _mm256_mul_ps(va, acc[r][0]));
            _mm256_store_ps(t[r] + 8, _mm256_mul_ps(va, acc[r][1]));
        }
        sg_store_edge(t, C, ldc, m, n, assign);
    }
};

// 12×32 AVX-512 micro-kernel (24 zmm accumulators), the AVX2 kernel's contract (SgA, ep). Reading A's
// rows in place pays from a depth block of 64 on (two moons' 256-deep products, 1 thread: 4–5% faster
// than packing; Glow's 18-deep first layer: 5% slower, so shallower blocks are still packed); reading
// its columns in place (a weight gradient gᵀ·x), from 64 too: see sgemm_packed.
// run<Mode, R> computes only the first R ≤ 12 rows (a ragged last panel of m ≤ R rows: 4 or 8 instead
// of 12 rows of multiply-adds; each row's sums are the same whatever R).
struct SgAvx512 {
    static constexpr int mr = 12, nr = 32;
    /// Whether run's epilogue can work in the registers on a tile of m rows and nr columns (run<…, R>
    /// for R = m: a full panel, or the 4- and 8-row ragged ones; see sgemm_packed's `packed`).
    static constexpr bool fuses(int m) { return m == 12 || m == 8 || m == 4; }
    static constexpr int direct_min_depth = 64;
    static constexpr int direct_cols_min_depth = 64;
    static constexpr bool prefetch_b = false;  // see sgemm_packed
    static constexpr int b_direct_rows_max = 72;  // see sgemm_packed
    static constexpr bool panel_rows = true;      // run<SgA::panel_rows> exists
    template <SgA Mode, int R = mr>
    __attribute__((target("avx512f"))) static void run(int k, const float* pa, int lda, const float* pb, int ldb,
                                                      float* C, int ldc, float alpha, int m, int n, bool assign,
                                                      const GemmEpilogue<float>* ep = nullptr) {
        static_assert(R >= 1 && R <= mr);
        __m512 acc[mr][2];
        BIJOU_UNROLL(12)
        for (int r = 0; r < mr; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        sg_prefetch_mask(ep, R, nr);
        if constexpr (Mode == SgA::panel_rows) {
            // A(r, p) at pa[(p / 32)·lda + r·32 + p % 32]: the rows mode below, 32 depths per panel (one
            // loop for both, stepping the pointers and jumping between segments, ran this mode at a best
            // of 69.2–69.4 flop per cycle against 69.9–70.0 so: 256³ weight gradient, warm)
            constexpr std::ptrdiff_t l1 = panel_width;
            const float* q[3] = {pa, R > 4 ? pa + 4 * l1 : pa, R > 8 ? pa + 8 * l1 : pa};  // only rows < R
            for (int p0 = 0; p0 < k; p0 += panel_width) {
                const int p1 = std::min(k, p0 + panel_width);
                for (int p = p0; p < p1; ++p) {
                    const __m512 b0 = _mm512_loadu_ps(pb), b1 = _mm512_loadu_ps(pb + 16);
                    BIJOU_UNROLL(12)
                    for (int r = 0; r < R; ++r) {
                        const __m512 a = _mm512_set1_ps(q[r / 4][(r % 4) * l1 + (p - p0)]);
                        acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
                        acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
                    }
                    pb += ldb;
                }
                for (int g = 0; g < 3; ++g) q[g] += lda;
            }
        } else if constexpr (Mode == SgA::rows) {
            // A(r, p) at pa[r·lda + p]. Twelve rows each at its own address took more registers than
            // x86-64 has beside the loop's others (GCC kept two of them in memory and in a vector
            // register, moved back on the FMA port each step); rows 4 apart from three pointers, the
            // others at + lda, 2·lda, 3·lda, need five.
            const std::ptrdiff_t l1 = lda;
            const float* q[3] = {pa, R > 4 ? pa + 4 * l1 : pa, R > 8 ? pa + 8 * l1 : pa};  // only rows < R
            for (int p = 0; p < k; ++p) {
                const __m512 b0 = _mm512_loadu_ps(pb), b1 = _mm512_loadu_ps(pb + 16);
                BIJOU_UNROLL(12)
                for (int r = 0; r < R; ++r) {
                    const __m512 a = _mm512_set1_ps(q[r / 4][(r % 4) * l1]);
                    acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
                }
                for (int g = 0; g < 3; ++g) ++q[g];
                pb += ldb;
            }
        } else {
            // A(r, p) at pa[r + p·ps]
            const std::size_t ps = Mode == SgA::cols ? std::size_t(lda) : std::size_t(mr);
            for (int p = 0; p < k; ++p) {
                const __m512 b0 = _mm512_loadu_ps(pb), b1 = _mm512_loadu_ps(pb + 16);
                BIJOU_UNROLL(12)
                for (int r = 0; r < R; ++r) {
                    const __m512 a = _mm512_set1_ps(pa[r]);
                    acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
                }
                pa += ps;
                pb += ldb;
            }
        }
        const __m512 va = _mm512_set1_ps(alpha);
        if (m == R && n == nr) {  // a full tile of R rows: stored, with the epilogue, from the registers
            const __m512 zero = _mm512_setzero_ps();
            BIJOU_UNROLL(12)
            for (int r = 0; r < R; ++r) {
                float* c = C + std::size_t(r) * ldc;
                __m512 v[2];
                for (int h = 0; h < 2; ++h)
                    v[h] = assign ? _mm512_mul_ps(va, acc[r][h]) : _mm512_fmadd_ps(va, acc[r][h], _mm512_loadu_ps(c + 16 * h));
                if (ep != nullptr) {
                    for (int h = 0; h < 2; ++h) {
                        if (ep->bias) v[h] = _mm512_add_ps(v[h], _mm512_set1_ps(ep->bias[r]));
                        if (ep->col_bias) v[h] = _mm512_add_ps(v[h], _mm512_loadu_ps(ep->col_bias + 16 * h));
                        if (ep->relu)  // zero where v < 0: NaN passes, −0 stays, as c < 0 ? 0 : c (GCC 12 warns
                                       // falsely inside _mm512_max_ps)
                            v[h] = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v[h], zero, _CMP_NLT_UQ), v[h]);
                        if (ep->mask) {
                            const __m512 mk = _mm512_loadu_ps(ep->mask + std::size_t(r) * ep->ldm + 16 * h);
                            v[h] = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(mk, zero, _CMP_GT_OQ), v[h]);
                        }
                    }
                }
                _mm512_storeu_ps(c, v[0]);
                _mm512_storeu_ps(c + 16, v[1]);
            }
            return;
        }
        alignas(64) float t[mr][nr];
        BIJOU_UNROLL(12)
        for (int r = 0; r < R; ++r) {
            _mm512_store_ps(t[r], _mm512_mul_ps(va, acc[r][0]));
            _mm512_store_ps(t[r] + 16, _mm512_mul_ps(va, acc[r][1]));
        }
        sg_store_edge(t, C, ldc, m, n, assign);
    }
};

/// Whether sgemm_packed<Kern> reads op(A) (M rows) in place in a depth block of kc, rather than packing it.
/// op(A) = A with a kernel that reads it in place: only the ragged last panel is packed (once per depth
/// block), and the column blocks go outside the row blocks, so that each block of op(B) is packed once.
/// The same for op(A) = Aᵀ (a weight gradient gᵀ·x): MR columns of A are a packed panel's layout with
/// lda for MR, so they too are read in place, and op(B) is packed once instead of once per row block
/// (two moons' 256×256×512 weight gradient, 1 thread: 477–492 → 443–456 µs, 136–141 → 147–151
/// GFLOP/s, 2 interleaved runs). Only where there are several row blocks (M > mc: with one, op(B) is
/// packed once anyway, and reading A's columns lda apart instead of a packed panel made Glow's weight
/// gradients slower, config a training on 1 thread 189–191 → 183–188 images/s) and A's depth block
/// stays in L2 (M·kc ≤ sg_direct_cols_max: config c's 512-row gradients, read in place from a 512 KiB
/// block, trained 1.5% slower on 2 threads).
template <class Kern>
bool sg_direct(bool ta, int M, int kc) {
    if (!ta) return kc >= Kern::direct_min_depth;
    return kc >= Kern::direct_cols_min_depth && M > sg_mc && std::size_t(M) * std::size_t(kc) <= sg_direct_cols_max;
}

/// op(A) (M × K) packed whole, as sgemm_packed<Kern> packs it block by block: per depth block of sg_kc
/// (from pc on), ⌈M/MR⌉ panels of kc × MR at pc·Mp (Mp = ⌈M/MR⌉·MR), row block ic's first at + ic·kc.
template <class Kern>
std::size_t sg_a_packed_size(int M, int K) {
    const std::size_t Mp = std::size_t((M + Kern::mr - 1) / Kern::mr) * Kern::mr;  // rows padded to panels
    return Mp * std::size_t(K);
}
/// It is packed in sg_pack_a_blocks (depth, row) blocks of at most sg_kc × sg_mc, each on its own
/// (sg_pack_a_block_of: block b), so that a caller may share them out (conv2d_prepare: among the
/// threads of a pass).
inline int sg_pack_a_blocks(int M, int K) { return (K + sg_kc - 1) / sg_kc * ((M + sg_mc - 1) / sg_mc); }
template <class Kern>
void sg_pack_a_block_of(bool ta, int M, int K, const float* A, int lda, float* out, int b) {
    const std::size_t Mp = sg_a_packed_size<Kern>(M, 1);
    const int row_blocks = (M + sg_mc - 1) / sg_mc;
    const int pc = b / row_blocks * sg_kc, ic = b % row_blocks * sg_mc, kc = std::min(sg_kc, K - pc);
    sg_pack_a_block<Kern::mr>(ta, ic, std::min(sg_mc, M - ic), pc, kc, A, lda,
                              out + std::size_t(pc) * Mp + std::size_t(ic) * kc);
}

/// C (M×N, row-major, ldc) += alpha·op(A)·op(B), or = when `assign` (C is then not read; K ≥ 1),
/// with micro-kernel Kern (SgAvx2 or SgAvx512; the CPU must support it). Loop order: depth blocks
/// (kc), then, where op(A) is packed, row blocks (mc), whose op(A) block is packed once, then column
/// blocks (nc), whose op(B) block is packed once per row block, or once per depth block where N ≤
/// sg_nc_wide (then, and with M ≤ mc, each operand is packed exactly once); where op(A) is read in
/// place, column blocks, each packed once, then row blocks. An untransposed op(B) with M ≤
/// Kern::b_direct_rows_max is read in place (only its ragged last panel packed). `ep` runs on each
/// tile after its last depth block. `a_packed`: op(A) already packed whole (sgemm_pack_a_blocks; A, lda
/// and ta are then not read), for a caller that multiplies the same op(A) many times; the products are
/// the same, bit for bit. `panels`: B (ldb = 32) and/or C (ldc = 32) stored in 32-column panels
/// `panels.b` / `panels.c` floats apart (panel_column). An untransposed op(B) in panels is read in
/// place, padding included (a padding column of op(B) reaches only the same padding column of C); an
/// op(B) = Bᵀ is packed from B's contiguous 32 × 32 blocks (sg_pack_b_panels; its depth blocks then
/// start at panels). A C in panels takes no column bias; a mask in panels is GemmEpilogue's. The
/// same products, bit for bit, as in the row-major layout. `panels.a`: an untransposed op(A) in 32-column
/// panels (lda = 32, its depth blocks starting at panels): read in place where A's rows would be
/// (SgA::panel_rows), packed from its panels (sg_pack_a_panels) where they would be packed.
struct SgPanels {
    std::size_t b = 0, c = 0, a = 0;
};
template <class Kern>
void sgemm_packed(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                  int ldb, float* C, int ldc, bool assign, const GemmEpilogue<float>& ep = {},
                  const float* a_packed = nullptr, SgPanels panels = {}) {
    constexpr int MR = Kern::mr, NR = Kern::nr;
    static_assert(sg_mc % MR == 0 && sg_nc % NR == 0 && panel_width % NR == 0 && sg_nc % panel_width == 0);
    alignas(64) float pa[sg_mc * sg_kc];
    alignas(64) float pb[sg_kc * sg_nc_wide];
    for (int pc = 0; pc < K; pc += sg_kc) {
        const int kc = std::min(sg_kc, K - pc);
        // op(A) read in place (sg_direct), or each row block of op(A) packed once (or taken from
        // a_packed), the column blocks inside
        const bool direct = a_packed == nullptr && (panels.a == 0 ? sg_direct<Kern>(ta, M, kc)
                                                                   : Kern::panel_rows && sg_direct<Kern>(false, M, kc));
        const int direct_rows = direct ? M - M % MR : 0;  // rows of op(A) read in place
        if (direct && direct_rows < M)
            sg_pack_a_block<MR>(ta, direct_rows, M - direct_rows, pc, kc, A, lda, pa, panels.a);
        // An untransposed op(B) is packed from kc rows ldb apart, too short for the hardware
        // prefetcher: with the AVX2 kernel, while a column block computes, its micro-kernel calls
        // prefetch the next column block's cache lines into L2 in equal shares (the AVX2 VM, Glow's 1×1
        // forward product in isolation: 8.35 → 7.9 ms, medians of 4 interleaved runs). `calls`: the
        // kernel calls that share them. Not with the AVX-512 kernel: on the AVX-512 Xeon (2 MiB L2) the
        // prefetches cost more than they saved (interleaved runs, medians of 5: config a log_prob
        // 1 thread 712 → 756 images/s, training 198 → 206; config d log_prob 192 → 202, medians of 3).
        // op(B) = B read in place, its full panels' kc rows ldb apart, where op(A) has at most
        // Kern::b_direct_rows_max rows: each op(B) panel then serves at most 6 row panels, too few to pay
        // for packing it (Glow's narrow last layer Wf·x, 36 × 128 × 512, 1 thread: 118–135 → 164–167
        // GFLOP/s; its first layer's data gradient Wᵀ·dY, M = in·9). The same products, bit for bit.
        const bool b_direct = !tb && (M <= Kern::b_direct_rows_max || panels.b != 0);
        constexpr int line_floats = 16;  // one 64-byte cache line
        int jn = 0, row_lines = 1, lines = 0, per_call = 0, next_line = 0, pf_row = 0, pf_col = 0;
        auto pack_b = [&](int jc, int nc, int calls) {
            if (b_direct) {  // only a ragged last panel of a row-major op(B)
                if (const int full = nc - nc % NR; full < nc && panels.b == 0)
                    sg_pack_b<NR>(false, kc, nc - full, B + std::size_t(pc) * ldb + jc + full, ldb, pb);
            } else if (tb && panels.b != 0) {
                sg_pack_b_panels<NR>(kc, nc, B + std::size_t(jc) * ldb + panel_column(pc, panels.b), panels.b, pb);
            } else {
                sg_pack_b<NR>(tb, kc, nc, tb ? B + std::size_t(jc) * ldb + pc : B + std::size_t(pc) * ldb + jc, ldb,
                              pb);
            }
            jn = jc + nc;
            row_lines = (std::min(sg_nc, N - jn) + line_floats - 1) / line_floats;
            lines = Kern::prefetch_b && !tb && !b_direct && jn < N ? kc * row_lines : 0;
            per_call = (lines + calls - 1) / calls;
            next_line = pf_row = pf_col = 0;
        };
        // A packed panel of m rows: the 12-row kernel multiplies only 4 or 8 rows of a ragged last panel.
        auto packed = [&](int m, int n, const float* pap, const float* pbp, int pbs, float* c, bool first,
                          const GemmEpilogue<float>* e) {
            auto rows = [&]<int R>() {
                Kern::template run<SgA::packed, R>(kc, pap, 0, pbp, pbs, c, ldc, alpha, m, n, first, e);
            };
            if constexpr (MR == 12) {
                if (m <= 4) rows.template operator()<4>();
                else if (m <= 8) rows.template operator()<8>();
                else rows.template operator()<MR>();
            } else {
                Kern::template run<SgA::packed>(kc, pap, 0, pbp, pbs, c, ldc, alpha, m, n, first, e);
            }
        };
        // The micro-kernel over C[ic:ic+mc, jc:jc+nc], op(B)'s block in pb, op(A)'s rows in place or,
        // packed, in pap (whose first panel holds row pap_row).
        auto tiles = [&](int ic, int mc, int jc, int nc, const float* pap, int pap_row) {
            const bool first = assign && pc == 0;
            // the epilogue after the last depth block: in the kernel's registers for a full tile
            // where it can, else over the stored tile
            const bool with_ep = !ep.empty() && pc + kc == K;
            // op(A) read in place: row i at a_rows + i·lda (op(A) = A; in panels, lda = 32), at a_cols + i
            // (op(A) = Aᵀ)
            const float* const a_rows = direct_rows > 0 ? A + panel_column(pc, panels.a) : nullptr;
            const float* const a_cols = direct_rows > 0 ? A + std::size_t(pc) * lda : nullptr;
            for (int jr = 0; jr < nc; jr += NR) {
                // op(B)'s panel: in place (b_direct's full panels, every panel of a paneled op(B)),
                // else packed in pb (b_direct: the ragged last panel alone)
                const bool in_place = b_direct && (jr + NR <= nc || panels.b != 0);
                const float* pbp = in_place   ? B + std::size_t(pc) * ldb + panel_column(jc + jr, panels.b)
                                   : b_direct ? pb
                                              : pb + std::size_t(jr) * kc;
                const int pbs = in_place ? ldb : NR, n = std::min(NR, nc - jr);
                float* const c_col = C + panel_column(jc + jr, panels.c);
                for (int ir = 0; ir < mc; ir += MR) {
                    if constexpr (Kern::prefetch_b) {
                        for (const int end = std::min(lines, next_line + per_call); next_line < end; ++next_line) {
                            __builtin_prefetch(B + std::size_t(pc + pf_row) * ldb + jn + pf_col * line_floats, 0, 2);
                            if (++pf_col == row_lines) pf_col = 0, ++pf_row;
                        }
                    }
                    const int i = ic + ir, m = std::min(MR, mc - ir);
                    float* c = c_col + std::size_t(i) * ldc;
                    const bool fused = with_ep && Kern::fuses(m) && n == NR;
                    GemmEpilogue<float> tile_ep;
                    if (fused) tile_ep = ep.at(i, jc + jr);
                    const GemmEpilogue<float>* e = fused ? &tile_ep : nullptr;
                    if (i < direct_rows && ta)
                        Kern::template run<SgA::cols>(kc, a_cols + i, lda, pbp, pbs, c, ldc, alpha, m, n, first, e);
                    else if (i < direct_rows && panels.a != 0) {
                        if constexpr (Kern::panel_rows)
                            Kern::template run<SgA::panel_rows>(kc, a_rows + std::size_t(i) * panel_width,
                                                                int(panels.a), pbp, pbs, c, ldc, alpha, m, n, first, e);
                    } else if (i < direct_rows)
                        Kern::template run<SgA::rows>(kc, a_rows + std::size_t(i) * lda, lda, pbp, pbs, c, ldc, alpha,
                                                      m, n, first, e);
                    else
                        packed(m, n, pap + std::size_t(i - pap_row) * kc, pbp, pbs, c, first, e);
                    if (with_ep && !fused) ep.apply(c, ldc, i, jc + jr, m, n);
                }
            }
        };
        if (direct) {
            for (int jc = 0; jc < N; jc += sg_nc) {
                const int nc = std::min(sg_nc, N - jc);
                pack_b(jc, nc, (nc + NR - 1) / NR * ((M + MR - 1) / MR));
                for (int ic = 0; ic < M; ic += sg_mc) tiles(ic, std::min(sg_mc, M - ic), jc, nc, pa, direct_rows);
            }
            continue;
        }
        for (int ic = 0; ic < M; ic += sg_mc) {
            const int mc = std::min(sg_mc, M - ic);
            const float* pap = pa;
            if (a_packed != nullptr)
                pap = a_packed + std::size_t(pc) * sg_a_packed_size<Kern>(M, 1) + std::size_t(ic) * kc;
            else
                sg_pack_a_block<MR>(ta, ic, mc, pc, kc, A, lda, pa, panels.a);
            const int nc_block = N <= sg_nc_wide ? N : sg_nc;
            for (int jc = 0; jc < N; jc += nc_block) {
                const int nc = std::min(nc_block, N - jc);
                if (N > nc_block || ic == 0)  // one column block: packed once per depth block, kept across row blocks
                    pack_b(jc, nc, (nc + NR - 1) / NR * ((mc + MR - 1) / MR));
                tiles(ic, mc, jc, nc, pap, ic);
            }
        }
    }
}

/// sgemm_packed with the widest micro-kernel the CPU runs. Call only when sgemm_simd_available().
/// a_packed: op(A) from sgemm_pack_a (then A, lda and ta are not read).
inline void sgemm_simd(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                       int ldb, float* C, int ldc, bool assign, const GemmEpilogue<float>& ep = {},
                       const float* a_packed = nullptr, SgPanels panels = {}) {
    if (sgemm_simd_level() >= 2)
        sgemm_packed<SgAvx512>(ta, tb, M, N, K, alpha, A, lda, B, ldb, C, ldc, assign, ep, a_packed, panels);
    else
        sgemm_packed<SgAvx2>(ta, tb, M, N, K, alpha, A, lda, B, ldb, C, ldc, assign, ep, a_packed, panels);
}

/// Scalars of op(A) (M × K) packed once for many products (sgemm_pack_a, then sgemm_simd's a_packed);
/// 0 where no SIMD kernel runs. Packed panels serve the kernel better than an op(A) it would read in
/// place, and most of all than Aᵀ's columns (SgA::cols: rows lda apart, a power of two for a
/// convolution's weights, share a few L1 sets; config c's level-3 narrow data gradient, Wfᵀ with lda
/// = 512 and depth 144, ran at 22% of the peak that way, config d's 1×1 data gradient at 80% against
/// 89% packed: the per-GEMM cycle counts of one training run).
inline std::size_t sgemm_a_packed_size(int M, int K) {
    if (M < 1 || K < 1) return 0;
    if (sgemm_simd_level() >= 2) return sg_a_packed_size<SgAvx512>(M, K);
    if (sgemm_simd_level() == 1) return sg_a_packed_size<SgAvx2>(M, K);
    return 0;
}

/// Blocks [b0, b1) of sg_pack_a_blocks(M, K) of op(A) packed for sgemm_simd's a_packed, into out
/// (sgemm_a_packed_size(M, K) scalars), for a caller that shares the blocks out; sgemm_pack_a packs
/// them all.
inline void sgemm_pack_a_blocks(bool ta, int M, int K, const float* A, int lda, float* out, int b0, int b1) {
    auto blocks = [&](auto kern) {
        for (int b = b0; b < b1; ++b) sg_pack_a_block_of<decltype(kern)>(ta, M, K, A, lda, out, b);
    };
    if (sgemm_simd_level() >= 2) blocks(SgAvx512{});
    else blocks(SgAvx2{});
}
inline void sgemm_pack_a(bool ta, int M, int K, const float* A, int lda, float* out) {
    sgemm_pack_a_blocks(ta, M, K, A, lda, out, 0, sg_pack_a_blocks(M, K));
}

}  // namespace bijou::kernels::detail
#endif
