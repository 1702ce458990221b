// bijou/kernels/cpu/gemm_thin.hpp — Cpu products with a thin side, as register-blocked SIMD loops.
//
// A vector flow's conditioners (D = 2 inputs, 2–4 outputs, 128 hidden) make products with 2–4 on one
// side: C with ≤ 4 columns (output layers, input-layer weight gradients), C with ≤ 4 rows (output-layer
// weight gradients) and depth K ≤ 4 (input layers, output-layer input gradients). The packed kernels
// pad such a side to a whole register tile and pack both operands for a few multiply-adds (a
// 512 × 2 × 128 product ran at 7 GFLOP/s), so these run here instead, in GCC vectors: 64-byte ones
// (16 floats, 8 doubles) in a copy compiled for AVX-512F, 32-byte ones in a copy for AVX2 + FMA, each
// chosen at run time where the CPU has them (as the packed kernels are), 16-byte ones otherwise:
//   cols   (N ≤ 4):  !ta: per row of op(A), dot products with op(B)'s columns, k in vectors, up to
//                     four independent sums per column, lane sums by a shuffle tree;
//                     ta: 64 rows of C (AVX-512: 4 vectors) at once, then 16, k by k (op(A)'s columns
//                     are contiguous);
//   rows   (M ≤ 4, op(B) = B): 4 vectors of columns of C at once (2 on AVX2 with M > 2), then 2, k by k.
//                     (Both hold 8–16 sums: with 2–4 the multiply-add latency bound them, MlpThinProducts:
//                     the 512-row weight gradients 19.1 → 8.1 µs and 16.4 → 4.9 µs.)
//   depth  (K ≤ 4):  one row of C at a time, SIMD over its columns, with the epilogue's column bias,
//                     ReLU and mask in the same pass (bench_vector MlpThinProducts: the input layer's
//                     512 × 256 forward 26–28 → 14–15 µs, the output layer's input gradient 28–29 → 20–22).
// The other kinds apply the epilogue (GemmEpilogue, sgemm.hpp) to their block afterwards.
// op(B)'s columns (cols) or rows (depth, tb) are first copied to a 4096-value stack buffer.
// gemm_thin_kind chooses from the whole product's shape, and each kernel gives every element of C a
// sum in one fixed order whichever block of rows or columns it is called on, so a product's result
// does not depend on how the caller splits C (nor, therefore, on the thread count).
// C (+)= alpha·op(A)·op(B) with beta as in kernels::gemm; nothing allocates.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "bijou/kernels/cpu/sgemm.hpp"

namespace bijou::kernels::detail {

inline constexpr int gemm_thin_max = 4;
inline constexpr int gemm_thin_buf = 4096;  // the stack copy of op(B), in values

enum class ThinKind { none, cols, rows, depth };

/// The thin kernel for a product of this shape, or none.
inline ThinKind gemm_thin_kind(bool tb, int M, int N, int K) {
    if (M <= 0 || N <= 0 || K <= 0) return ThinKind::none;
    if (N <= gemm_thin_max && K * N <= gemm_thin_buf) return ThinKind::cols;
    if (M <= gemm_thin_max && !tb) return ThinKind::rows;
    if (K <= gemm_thin_max && (!tb || K * N <= gemm_thin_buf)) return ThinKind::depth;
    return ThinKind::none;
}

// W-byte GCC vectors of T: 32 in the AVX2 kernels, 16 (SSE2, NEON) otherwise.
template <class T, int W>
struct ThinVec {
    static constexpr int lanes = W / int(sizeof(T));
    typedef T type __attribute__((vector_size(W)));
    typedef T unaligned __attribute__((vector_size(W), aligned(alignof(T)), may_alias));
    // By reference only: a 32-byte vector passed by value changes the ABI between AVX and plain builds.
    [[gnu::always_inline]] static void load(type& v, const T* p) { v = *reinterpret_cast<const unaligned*>(p); }
    [[gnu::always_inline]] static void store(T* p, const type& v) { *reinterpret_cast<unaligned*>(p) = v; }
    /// Lane q < NV of v[0] := Σ_l v[q][l] for the first NV vectors (the other lanes: unspecified):
    /// log2(lanes) rounds, each adding the even and odd lanes of neighbouring vectors (a fixed order:
    /// the same sums on every call); a vector without a neighbour is paired with itself.
    template <int NV>
    [[gnu::always_inline]] static void lane_sums(type (&v)[lanes]) {
        int active = NV;
        for (int n = lanes; n > 1; n /= 2) {
            const int next = (active + 1) / 2;
            for (int q = 0; q < next; ++q) {
                const type &x = v[2 * q], &y = 2 * q + 1 < active ? v[2 * q + 1] : v[2 * q];
                if constexpr (lanes == 16)
                    v[q] = __builtin_shufflevector(x, y, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) +
                           __builtin_shufflevector(x, y, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
                else if constexpr (lanes == 8)
                    v[q] = __builtin_shufflevector(x, y, 0, 2, 4, 6, 8, 10, 12, 14) +
                           __builtin_shufflevector(x, y, 1, 3, 5, 7, 9, 11, 13, 15);
                else if constexpr (lanes == 4)
                    v[q] = __builtin_shufflevector(x, y, 0, 2, 4, 6) + __builtin_shufflevector(x, y, 1, 3, 5, 7);
                else
                    v[q] = __builtin_shufflevector(x, y, 0, 2) + __builtin_shufflevector(x, y, 1, 3);
            }
            active = next;
        }
    }
};

template <class T>
struct ThinOut {  // c = alpha·v (beta = 0) or beta·c + alpha·v
    T alpha, beta;
    [[gnu::always_inline]] void operator()(T* c, T v) const { *c = beta == T(0) ? alpha * v : beta * *c + alpha * v; }
    [[gnu::always_inline]] void row(T* c, const T* v, int n) const {
        if (beta == T(0))
            for (int j = 0; j < n; ++j) c[j] = alpha * v[j];
        else
            for (int j = 0; j < n; ++j) c[j] = beta * c[j] + alpha * v[j];
    }
};

// cols, !ta: C[0:m, 0:NC] from rows of A (stride lda) and op(B)'s columns bt + j·K: per row, NC
// vector dot products, their lane sums by a shuffle tree, then the ragged k. (Two or four rows at
// once measured no faster.)
template <int W, int NC, class T>
[[gnu::always_inline]] inline void thin_cols_dot(int m, int K, const T* A, int lda, const T* bt, ThinOut<T> out,
                                                 T* C, int ldc) {
    using Vt = ThinVec<T, W>;
    using V = typename Vt::type;
    constexpr int L = Vt::lanes;
    const int K0 = K - K % L;
    constexpr int U = L / NC >= 4 ? 4 : L / NC;  // independent sums per column: one would wait on the FMA latency
    for (int i = 0; i < m; ++i) {
        const T* a = A + std::size_t(i) * lda;
        V v[L] = {};  // v[u·NC + j]: row i · column j over the chunks k/L ≡ u (mod U), in lanes
        int k = 0;
        for (; k + U * L <= K0; k += U * L)
            for (int u = 0; u < U; ++u) {
                V ak, bk;
                Vt::load(ak, a + k + u * L);
                for (int j = 0; j < NC; ++j) {
                    Vt::load(bk, bt + std::size_t(j) * K + k + u * L);
                    v[u * NC + j] += ak * bk;
                }
            }
        for (; k < K0; k += L) {
            V ak, bk;
            Vt::load(ak, a + k);
            for (int j = 0; j < NC; ++j) {
                Vt::load(bk, bt + std::size_t(j) * K + k);
                v[j] += ak * bk;
            }
        }
        for (int u = 1; u < U; ++u)
            for (int j = 0; j < NC; ++j) v[j] += v[u * NC + j];
        Vt::template lane_sums<NC>(v);
        alignas(W) T sum[L];
        Vt::store(sum, v[0]);
        for (int k = K0; k < K; ++k)
            for (int j = 0; j < NC; ++j) sum[j] += a[k] * bt[std::size_t(j) * K + k];
        out.row(C + std::size_t(i) * ldc, sum, NC);
    }
}

// cols, ta: op(A)(i, k) = A[k·lda + i]. Rows of C in blocks of 64 (AVX-512: 4 vectors, 4·NC sums in
// flight; fewer would wait on the multiply-add latency), then of 16 (callers split rows in multiples of
// 16), the rest one by one. A row's lane runs the same multiply-adds in k order in every block, so
// its value does not depend on which block it falls in.
template <int W, int NC, class T>
[[gnu::always_inline]] inline void thin_cols_axpy(int m, int K, const T* A, int lda, const T* bt, ThinOut<T> out, T* C, int ldc) {
    using Vt = ThinVec<T, W>;
    using V = typename Vt::type;
    constexpr int L = Vt::lanes, VS = 16 / L >= 2 ? 2 : 1;
    constexpr int VB = L == 16 && NC <= 4 ? 4 : VS;  // 16 accumulators at most (32 registers with AVX-512)
    auto block = [&]<int NV>(int i) __attribute__((always_inline)) {
        V acc[NV][NC] = {};
        for (int k = 0; k < K; ++k) {
            V a[NV];
            for (int v = 0; v < NV; ++v) Vt::load(a[v], A + std::size_t(k) * lda + i + v * L);
            for (int j = 0; j < NC; ++j) {
                const T b = bt[std::size_t(j) * K + k];
                for (int v = 0; v < NV; ++v) acc[v][j] += a[v] * b;
            }
        }
        for (int v = 0; v < NV; ++v)
            for (int l = 0; l < L; ++l)
                for (int j = 0; j < NC; ++j) out(C + std::size_t(i + v * L + l) * ldc + j, acc[v][j][l]);
    };
    int i = 0;
    for (; i + VB * L <= m; i += VB * L) block.template operator()<VB>(i);
    for (; i + VS * L <= m; i += VS * L) block.template operator()<VS>(i);
    for (; i < m; ++i)
        for (int j = 0; j < NC; ++j) {
            T s = T(0);
            for (int k = 0; k < K; ++k) s += A[std::size_t(k) * lda + i] * bt[std::size_t(j) * K + k];
            out(C + std::size_t(i) * ldc + j, s);
        }
}

// rows (op(B) = B, rows contiguous): C[0:MR, 0:n], columns in blocks of 4 vectors where 4·MR sums fit
// the registers (fewer in flight would wait on the multiply-add latency), then of 2 (callers split
// columns in multiples of 32), the rest one by one. Each column's lane runs the same multiply-adds in
// k order in every block, so its value does not depend on which block it falls in.
template <int W, int MR, class T>
[[gnu::always_inline]] inline void thin_rows(bool ta, int n, int K, const T* A, int lda, const T* B, int ldb, ThinOut<T> out, T* C, int ldc) {
    using Vt = ThinVec<T, W>;
    using V = typename Vt::type;
    constexpr int L = Vt::lanes;
    constexpr int VB = L == 16 || MR <= 2 ? 4 : 2;
    auto a_at = [&](int i, int k) { return ta ? A[std::size_t(k) * lda + i] : A[std::size_t(i) * lda + k]; };
    auto block = [&]<int NV>(int j) __attribute__((always_inline)) {
        V acc[MR][NV] = {};
        for (int k = 0; k < K; ++k) {
            V b[NV];
            for (int v = 0; v < NV; ++v) Vt::load(b[v], B + std::size_t(k) * ldb + j + v * L);
            for (int i = 0; i < MR; ++i) {
                const T a = a_at(i, k);
                for (int v = 0; v < NV; ++v) acc[i][v] += a * b[v];
            }
        }
        for (int i = 0; i < MR; ++i)
            for (int v = 0; v < NV; ++v)
                for (int l = 0; l < L; ++l) out(C + std::size_t(i) * ldc + j + v * L + l, acc[i][v][l]);
    };
    int j = 0;
    for (; j + VB * L <= n; j += VB * L) block.template operator()<VB>(j);
    for (; j + 2 * L <= n; j += 2 * L) block.template operator()<2>(j);
    for (; j < n; ++j)
        for (int i = 0; i < MR; ++i) {
            T s = T(0);
            for (int k = 0; k < K; ++k) s += a_at(i, k) * B[std::size_t(k) * ldb + j];
            out(C + std::size_t(i) * ldc + j, s);
        }
}

// depth (K = KD ≤ 4): row by row, SIMD over the columns; op(B)'s row k at b[k]. The epilogue's column
// bias, ReLU and mask (F: their bits, depth_col_bias / depth_relu / depth_mask) are applied in the same
// pass, the same operations in GemmEpilogue::apply's order (the bias and mask must not alias C, as for
// the packed kernels' fused epilogue). The result equals a separate apply's up to the rounding of a
// multiply-add that GCC contracts (-ffp-contract=fast, from -O2) differently in the two code paths;
// every row is computed by the same code whatever the split, so the thread count never changes it.
inline constexpr int depth_col_bias = 1, depth_relu = 2, depth_mask = 4;
/// thin_depth asks for C's cache lines this many rows ahead, for writing: a vector flow's input layer
/// writes a (512 × 256) activation that training left in L3 since the last step, and its stores
/// waited on each line (bench_models two_moons b512, with thin_prefetch_rows in mlp_thin.hpp:
/// 1 thread 36.6 → 38.5, 2 threads 75.3 → 78.6 steps/s, medians of 6 interleaved runs; 4 or 16 rows,
/// 12 or 48 there, within noise of these).
inline constexpr int thin_depth_prefetch_rows = 8;
template <int KD, int F, class T>
[[gnu::always_inline]] inline void thin_depth(bool ta, int m, int n, const T* A, int lda, const T* const* b,
                                              ThinOut<T> out, T* C, int ldc, const GemmEpilogue<T>& ep) {
    const T* cb = ep.col_bias;
    for (int i = 0; i < m; ++i) {
        T a[KD];
        for (int k = 0; k < KD; ++k) a[k] = ta ? A[std::size_t(k) * lda + i] : A[std::size_t(i) * lda + k];
        T* c = C + std::size_t(i) * ldc;
        if (i + thin_depth_prefetch_rows < m)
            for (int j = 0; j < n; j += 64 / int(sizeof(T)))
                __builtin_prefetch(c + std::size_t(thin_depth_prefetch_rows) * ldc + j, 1, 3);
        const T* mr = (F & depth_mask) ? ep.mask + std::size_t(i) * ep.ldm : nullptr;
        auto finish = [&](T v, int j) {
            if constexpr ((F & depth_col_bias) != 0) v += cb[j];
            if constexpr ((F & depth_relu) != 0) v = v < T(0) ? T(0) : v;
            if constexpr ((F & depth_mask) != 0) v = mr[j] > T(0) ? v : T(0);
            return v;
        };
        if (out.beta == T(0)) {
#pragma omp simd
            for (int j = 0; j < n; ++j) {
                T s = a[0] * b[0][j];
                for (int k = 1; k < KD; ++k) s += a[k] * b[k][j];
                c[j] = finish(out.alpha * s, j);
            }
        } else {
#pragma omp simd
            for (int j = 0; j < n; ++j) {
                T s = a[0] * b[0][j];
                for (int k = 1; k < KD; ++k) s += a[k] * b[k][j];
                c[j] = finish(out.beta * c[j] + out.alpha * s, j);
            }
        }
    }
}

/// The fused-epilogue variant of thin_depth for ep (its bits), or -1 when ep has a row bias.
template <class T>
int thin_depth_fusion(const GemmEpilogue<T>& ep) {
    if (ep.bias != nullptr) return -1;
    return (ep.col_bias ? depth_col_bias : 0) | (ep.relu ? depth_relu : 0) | (ep.mask ? depth_mask : 0);
}

template <int KD, class T>
[[gnu::always_inline]] inline void thin_depth_fused(bool ta, int m, int n, const T* A, int lda, const T* const* b,
                                                    ThinOut<T> out, T* C, int ldc, const GemmEpilogue<T>& ep) {
    switch (thin_depth_fusion(ep)) {
        case 0: thin_depth<KD, 0>(ta, m, n, A, lda, b, out, C, ldc, ep); break;
        case depth_col_bias: thin_depth<KD, depth_col_bias>(ta, m, n, A, lda, b, out, C, ldc, ep); break;
        case depth_col_bias | depth_relu:
            thin_depth<KD, depth_col_bias | depth_relu>(ta, m, n, A, lda, b, out, C, ldc, ep);
            break;
        case depth_mask: thin_depth<KD, depth_mask>(ta, m, n, A, lda, b, out, C, ldc, ep); break;
        default:  // a combination no layer uses (or a row bias): the product, then the whole epilogue
            thin_depth<KD, 0>(ta, m, n, A, lda, b, out, C, ldc, ep);
            ep.apply(C, ldc, 0, 0, m, n);
    }
}

// The kernel for `kind` on W-byte vectors; bt: op(B)'s columns (cols), rows: op(B)'s rows (depth).
template <int W, class T>
[[gnu::always_inline]] inline void thin_run(ThinKind kind, bool ta, int m, int n, int K, const T* A, int lda,
                                            const T* B, int ldb, const T* bt, const T* const* rows, ThinOut<T> out,
                                            T* C, int ldc, const GemmEpilogue<T>& ep) {
    auto apply = [&] {
        if (!ep.empty()) ep.apply(C, ldc, 0, 0, m, n);
    };
    if (kind == ThinKind::cols) {
        if (ta) {
            switch (n) {
                case 1: thin_cols_axpy<W, 1>(m, K, A, lda, bt, out, C, ldc); break;
                case 2: thin_cols_axpy<W, 2>(m, K, A, lda, bt, out, C, ldc); break;
                case 3: thin_cols_axpy<W, 3>(m, K, A, lda, bt, out, C, ldc); break;
                default: thin_cols_axpy<W, 4>(m, K, A, lda, bt, out, C, ldc); break;
            }
        } else if constexpr (W / int(sizeof(T)) >= gemm_thin_max) {
            switch (n) {
                case 1: thin_cols_dot<W, 1>(m, K, A, lda, bt, out, C, ldc); break;
                case 2: thin_cols_dot<W, 2>(m, K, A, lda, bt, out, C, ldc); break;
                case 3: thin_cols_dot<W, 3>(m, K, A, lda, bt, out, C, ldc); break;
                default: thin_cols_dot<W, 4>(m, K, A, lda, bt, out, C, ldc); break;
            }
        } else {  // 16-byte vectors of double have 2 lanes: fewer than the columns' sums need
            thin_run<32>(kind, ta, m, n, K, A, lda, B, ldb, bt, rows, out, C, ldc, ep);
            return;
        }
        apply();
    } else if (kind == ThinKind::rows) {
        switch (m) {
            case 1: thin_rows<W, 1>(ta, n, K, A, lda, B, ldb, out, C, ldc); break;
            case 2: thin_rows<W, 2>(ta, n, K, A, lda, B, ldb, out, C, ldc); break;
            case 3: thin_rows<W, 3>(ta, n, K, A, lda, B, ldb, out, C, ldc); break;
            default: thin_rows<W, 4>(ta, n, K, A, lda, B, ldb, out, C, ldc); break;
        }
        apply();
    } else {
        switch (K) {
            case 1: thin_depth_fused<1>(ta, m, n, A, lda, rows, out, C, ldc, ep); break;
            case 2: thin_depth_fused<2>(ta, m, n, A, lda, rows, out, C, ldc, ep); break;
            case 3: thin_depth_fused<3>(ta, m, n, A, lda, rows, out, C, ldc, ep); break;
            default: thin_depth_fused<4>(ta, m, n, A, lda, rows, out, C, ldc, ep); break;
        }
    }
}

#if defined(BIJOU_SGEMM_SIMD)
// The same compiled for AVX2 + FMA and for AVX-512F, for CPUs that have them (sgemm_simd_level() ≥ 1,
// 2) in any build.
template <class T>
__attribute__((target("avx2,fma"))) void thin_run_avx2(ThinKind kind, bool ta, int m, int n, int K, const T* A,
                                                       int lda, const T* B, int ldb, const T* bt,
                                                       const T* const* rows, ThinOut<T> out, T* C, int ldc,
                                                       const GemmEpilogue<T>& ep) {
    thin_run<32>(kind, ta, m, n, K, A, lda, B, ldb, bt, rows, out, C, ldc, ep);
}
template <class T>
__attribute__((target("avx512f"))) void thin_run_avx512(ThinKind kind, bool ta, int m, int n, int K, const T* A,
                                                        int lda, const T* B, int ldb, const T* bt,
                                                        const T* const* rows, ThinOut<T> out, T* C, int ldc,
                                                        const GemmEpilogue<T>& ep) {
    thin_run<64>(kind, ta, m, n, K, A, lda, B, ldb, bt, rows, out, C, ldc, ep);
}
#endif

/// C[0:m, 0:n] (+)= alpha·op(A)·op(B) with the kernel `kind` (A, B, C and ep already offset to the
/// block), then the epilogue ep (fused into the depth kernel's pass).
template <class T>
void gemm_thin(ThinKind kind, bool ta, bool tb, int m, int n, int K, T alpha, const T* A, int lda, const T* B, int ldb,
               T beta, T* C, int ldc, const GemmEpilogue<T>& ep) {
    const ThinOut<T> out{alpha, beta};
    alignas(64) T buf[gemm_thin_buf];
    const T* rows[gemm_thin_max] = {};
    if (kind == ThinKind::cols) {
        for (int j = 0; j < n; ++j)  // op(B)'s column j at buf + j·K
            for (int k = 0; k < K; ++k)
                buf[j * K + k] = tb ? B[std::size_t(j) * ldb + k] : B[std::size_t(k) * ldb + j];
    } else if (kind == ThinKind::depth) {
        for (int k = 0; k < K; ++k) {  // op(B)'s row k at rows[k]
            if (!tb) {
                rows[k] = B + std::size_t(k) * ldb;
                continue;
            }
            for (int j = 0; j < n; ++j) buf[k * n + j] = B[std::size_t(j) * ldb + k];
            rows[k] = buf + k * n;
        }
    }
#if defined(BIJOU_SGEMM_SIMD)
    if (sgemm_simd_level() >= 2) {
        thin_run_avx512(kind, ta, m, n, K, A, lda, B, ldb, buf, rows, out, C, ldc, ep);
        return;
    }
    if (sgemm_simd_level() >= 1) {
        thin_run_avx2(kind, ta, m, n, K, A, lda, B, ldb, buf, rows, out, C, ldc, ep);
        return;
    }
#endif
    thin_run<16>(kind, ta, m, n, K, A, lda, B, ldb, buf, rows, out, C, ldc, ep);
}

}  // namespace bijou::kernels::detail
