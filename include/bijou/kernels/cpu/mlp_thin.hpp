// bijou/kernels/cpu/mlp_thin.hpp — one pass over the activations for a vector flow's thin MLP layers.
//
// A coupling conditioner on vectors (D = 2 inputs, 2–4 outputs, 128–256 hidden) has an input layer
// with at most 4 inputs and an output layer with at most 4 outputs. Their backward, as separate
// products, reads the same (n, hidden) matrix two or three times (one weight-gradient product, the
// bias gradient, the input gradient); these loops read it once, in column tiles (all rows of a few
// vectors of columns, the sums held in registers):
//   thin_in_param_grads   (in ≤ 4)   dW (out × ldw) += gᵀ·x,  db += Σ_i g[i, :]        one pass over g
//   thin_out_backward     (out ≤ 4)  dW (out × ldw) += gᵀ·a,  d = (g·W) ⊙ [a > 0],
//                                    db_a += Σ_i d[i, :]                           one pass over a and d
// The gradients of W and b are computed with the operations, in the order, of the separate kernels
// they replace (gemm_thin.hpp's rows / cols kernels: one multiply-add chain over the rows in order;
// mlp_bias_grad: a double sum over the rows in order): the same bits, where the separate product took
// the thin path (the input layer's weight gradient does up to n·in = 4096 values; beyond that it was
// the packed GEMM, equal to rounding). d is Σ_k g[i, k]·W[k, j], k in
// order, then the mask, as the depth kernel computes it, equal to rounding: GCC contracts the two
// products' sum into one multiply-add, and may pick a different product in the two code paths (so
// db_a too is equal to rounding). Every column's value is the same whichever tile or thread it falls
// in, so the thread count never changes a result. float only, in a
// copy for AVX-512F and one for AVX2 + FMA chosen at run time (sgemm_simd_level); the callers
// (kernels/cpu/mlp.hpp) run the separate kernels where these do not apply.
#pragma once

#include <cstddef>

#include "bijou/kernels/cpu/gemm_thin.hpp"

namespace bijou::kernels::detail {

#if defined(BIJOU_SGEMM_SIMD)

/// thin_out_backward asks for a's and d's lines this many rows ahead (a: the output layer's input,
/// stored by the forward and long out of L2; its tile reads two lines 1 KiB apart per row, a stride
/// the hardware prefetcher did not follow). Measured with gemm_thin.hpp's thin_depth_prefetch_rows.
inline constexpr int thin_prefetch_rows = 24;

// lo, hi += the first and second halves of x's floats, widened to double (exact). Converting the whole
// vector to a 2W-byte one and taking its halves compiles to one vcvtps2pd per half (GCC 12 splits a
// W/2-byte source into quarters and inserts). By reference, as ThinVec passes its vectors.
template <int W>
[[gnu::always_inline]] inline void thin_widen_add(typename ThinVec<double, W>::type& lo,
                                                  typename ThinVec<double, W>::type& hi,
                                                  const typename ThinVec<float, W>::type& x) {
    using Wide = typename ThinVec<double, 2 * W>::type;
    const Wide d = __builtin_convertvector(x, Wide);
    if constexpr (W == 64) {
        lo += __builtin_shufflevector(d, d, 0, 1, 2, 3, 4, 5, 6, 7);
        hi += __builtin_shufflevector(d, d, 8, 9, 10, 11, 12, 13, 14, 15);
    } else if constexpr (W == 32) {
        lo += __builtin_shufflevector(d, d, 0, 1, 2, 3);
        hi += __builtin_shufflevector(d, d, 4, 5, 6, 7);
    } else {
        lo += __builtin_shufflevector(d, d, 0, 1);
        hi += __builtin_shufflevector(d, d, 2, 3);
    }
}

// dst[0 : NS·L/2) += the double sums, rounded to float (the bias sums of a tile of NS/2 vectors of columns).
template <int W, int NS>
[[gnu::always_inline]] inline void thin_add_sums(const typename ThinVec<double, W>::type (&sum)[NS], float* dst) {
    constexpr int H = ThinVec<float, W>::lanes / 2;
    for (int h = 0; h < NS; ++h)
        for (int l = 0; l < H; ++l) dst[h * H + l] += float(sum[h][l]);
}

// f.template operator()<K>() for the thin width k (1 to 4).
template <class F>
[[gnu::always_inline]] inline void thin_width(int k, F&& f) {
    switch (k) {
        case 1: f.template operator()<1>(); break;
        case 2: f.template operator()<2>(); break;
        case 3: f.template operator()<3>(); break;
        default: f.template operator()<4>(); break;
    }
}

// Columns [j0, j1) of g (n × out, row stride out): dW[j, k] += Σ_i g[i, j]·x[i, k] (k < KI, x row stride
// ldx), and db[j] += Σ_i g[i, j] when DB.
template <int W, int KI, bool DB>
[[gnu::always_inline]] inline void thin_in_param_grads(const float* g, int out, const float* x, int ldx, float* dw,
                                                       int ldw, float* db, int n, int j0, int j1) {
    using Vt = ThinVec<float, W>;
    using V = typename Vt::type;
    using Dv = typename ThinVec<double, W>::type;
    constexpr int L = Vt::lanes;
    constexpr int NV = W == 64 ? (KI <= 2 ? 4 : 2) : (KI <= 2 ? 2 : 1);  // sums in flight that fit the registers
    auto tile = [&]<int NT>(int j) __attribute__((always_inline)) {
        V acc[NT][KI] = {};
        [[maybe_unused]] Dv sum[2 * NT] = {};  // the bias sums (DB)
        for (int i = 0; i < n; ++i) {
            const float* gr = g + std::size_t(i) * out + j;
            V gv[NT];
            for (int v = 0; v < NT; ++v) Vt::load(gv[v], gr + v * L);
            for (int k = 0; k < KI; ++k) {
                const float xk = x[std::size_t(i) * ldx + k];
                for (int v = 0; v < NT; ++v) acc[v][k] += gv[v] * xk;
            }
            if constexpr (DB)
                for (int v = 0; v < NT; ++v) thin_widen_add<W>(sum[2 * v], sum[2 * v + 1], gv[v]);
        }
        for (int v = 0; v < NT; ++v)
            for (int l = 0; l < L; ++l)
                for (int k = 0; k < KI; ++k) dw[std::size_t(j + v * L + l) * ldw + k] += acc[v][k][l];
        if constexpr (DB) thin_add_sums<W>(sum, db + j);
    };
    int j = j0;
    for (; j + NV * L <= j1; j += NV * L) tile.template operator()<NV>(j);
    for (; j + L <= j1; j += L) tile.template operator()<1>(j);
    for (; j < j1; ++j) {  // one scalar chain at a time, as the cols kernel's tail
        for (int k = 0; k < KI; ++k) {
            float s = 0.0f;
            for (int i = 0; i < n; ++i) s += g[std::size_t(i) * out + j] * x[std::size_t(i) * ldx + k];
            dw[std::size_t(j) * ldw + k] += s;
        }
        if constexpr (DB) {
            double b = 0.0;
            for (int i = 0; i < n; ++i) b += double(g[std::size_t(i) * out + j]);
            db[j] += float(b);
        }
    }
}

// Columns [j0, j1) of a and d (n × in, row stride in): dW[k, j] += Σ_i g[i, k]·a[i, j] (k < KO, g row stride
// KO), d[i, j] = (Σ_k g[i, k]·W[k, j]) ⊙ [a[i, j] > 0], and db_a[j] += Σ_i d[i, j] when DB.
template <int W, int KO, bool DB>
[[gnu::always_inline]] inline void thin_out_backward(const float* g, const float* a, const float* w, int ldw, float* dw,
                                                     float* d, float* db_a, int n, int in, int j0, int j1) {
    using Vt = ThinVec<float, W>;
    using V = typename Vt::type;
    using Dv = typename ThinVec<double, W>::type;
    constexpr int L = Vt::lanes;
    constexpr int NV = W == 64 && KO <= 2 ? 2 : 1;
    auto tile = [&]<int NT>(int j) __attribute__((always_inline)) {
        V acc[KO][NT] = {}, wv[KO][NT];
        [[maybe_unused]] Dv sum[2 * NT] = {};  // the bias sums (DB)
        for (int k = 0; k < KO; ++k)
            for (int v = 0; v < NT; ++v) Vt::load(wv[k][v], w + std::size_t(k) * ldw + j + v * L);
        for (int i = 0; i < n; ++i) {
            const float* gr = g + std::size_t(i) * KO;
            const float* ar = a + std::size_t(i) * in + j;
            float* dr = d + std::size_t(i) * in + j;
            if (i + thin_prefetch_rows < n)
                for (int v = 0; v < NT; ++v) {
                    __builtin_prefetch(ar + std::size_t(thin_prefetch_rows) * in + v * L, 0, 3);
                    __builtin_prefetch(dr + std::size_t(thin_prefetch_rows) * in + v * L, 1, 3);
                }
            for (int v = 0; v < NT; ++v) {
                V av;
                Vt::load(av, ar + v * L);
                for (int k = 0; k < KO; ++k) acc[k][v] += gr[k] * av;
                V s = gr[0] * wv[0][v];
                for (int k = 1; k < KO; ++k) s += gr[k] * wv[k][v];
                const V r = av > V{} ? s : V{};
                Vt::store(dr + v * L, r);
                if constexpr (DB) thin_widen_add<W>(sum[2 * v], sum[2 * v + 1], r);
            }
        }
        for (int k = 0; k < KO; ++k)
            for (int v = 0; v < NT; ++v) {
                float* p = dw + std::size_t(k) * ldw + j + v * L;
                V c;
                Vt::load(c, p);
                Vt::store(p, c + acc[k][v]);
            }
        if constexpr (DB) thin_add_sums<W>(sum, db_a + j);
    };
    int j = j0;
    for (; j + NV * L <= j1; j += NV * L) tile.template operator()<NV>(j);
    for (; j + L <= j1; j += L) tile.template operator()<1>(j);
    for (; j < j1; ++j) {  // one scalar chain at a time, as the rows kernel's tail
        for (int k = 0; k < KO; ++k) {
            float s = 0.0f;
            for (int i = 0; i < n; ++i) s += g[std::size_t(i) * KO + k] * a[std::size_t(i) * in + j];
            dw[std::size_t(k) * ldw + j] += s;
        }
        double b = 0.0;
        for (int i = 0; i < n; ++i) {
            const float* gr = g + std::size_t(i) * KO;
            float t = gr[0] * w[j];
            for (int k = 1; k < KO; ++k) t += gr[k] * w[std::size_t(k) * ldw + j];
            const float r = a[std::size_t(i) * in + j] > 0.0f ? t : 0.0f;
            d[std::size_t(i) * in + j] = r;
            if constexpr (DB) b += double(r);
        }
        if constexpr (DB) db_a[j] += float(b);
    }
}

// The two loops for each thin size and with or without the bias sums, on W-byte vectors.
template <int W>
[[gnu::always_inline]] inline void thin_in_param_grads_any(int in, const float* g, int out, const float* x, int ldx,
                                                           float* dw, int ldw, float* db, int n, int j0, int j1) {
    thin_width(in, [&]<int KI>() __attribute__((always_inline)) {
        if (db) thin_in_param_grads<W, KI, true>(g, out, x, ldx, dw, ldw, db, n, j0, j1);
        else thin_in_param_grads<W, KI, false>(g, out, x, ldx, dw, ldw, db, n, j0, j1);
    });
}
template <int W>
[[gnu::always_inline]] inline void thin_out_backward_any(int out, const float* g, const float* a, const float* w,
                                                         int ldw, float* dw, float* d, float* db_a, int n, int in,
                                                         int j0, int j1) {
    thin_width(out, [&]<int KO>() __attribute__((always_inline)) {
        if (db_a) thin_out_backward<W, KO, true>(g, a, w, ldw, dw, d, db_a, n, in, j0, j1);
        else thin_out_backward<W, KO, false>(g, a, w, ldw, dw, d, db_a, n, in, j0, j1);
    });
}

__attribute__((target("avx512f"))) inline void thin_in_param_grads_avx512(int in, const float* g, int out,
                                                                          const float* x, int ldx, float* dw, int ldw,
                                                                          float* db, int n, int j0, int j1) {
    thin_in_param_grads_any<64>(in, g, out, x, ldx, dw, ldw, db, n, j0, j1);
}
__attribute__((target("avx2,fma"))) inline void thin_in_param_grads_avx2(int in, const float* g, int out,
                                                                         const float* x, int ldx, float* dw, int ldw,
                                                                         float* db, int n, int j0, int j1) {
    thin_in_param_grads_any<32>(in, g, out, x, ldx, dw, ldw, db, n, j0, j1);
}
__attribute__((target("avx512f"))) inline void thin_out_backward_avx512(int out, const float* g, const float* a,
                                                                        const float* w, int ldw, float* dw, float* d,
                                                                        float* db_a, int n, int in, int j0, int j1) {
    thin_out_backward_any<64>(out, g, a, w, ldw, dw, d, db_a, n, in, j0, j1);
}
__attribute__((target("avx2,fma"))) inline void thin_out_backward_avx2(int out, const float* g, const float* a,
                                                                       const float* w, int ldw, float* dw, float* d,
                                                                       float* db_a, int n, int in, int j0, int j1) {
    thin_out_backward_any<32>(out, g, a, w, ldw, dw, d, db_a, n, in, j0, j1);
}

#endif  // BIJOU_SGEMM_SIMD

}  // namespace bijou::kernels::detail
