// bijou/kernels/cpu/linear1x1.hpp — per-position channel mixing for the Cpu backend.
//
// Same contracts as kernels/reference/linear1x1.hpp; every product goes through kernels::gemm(Cpu).
//   Vectors (HW = 1): one product over the whole batch, Y (n×C) = X · op(W)ᵀ, which gemm threads
//     over rows of Y.
//   Images: one (C×C)·(C×HW) product per sample, OpenMP over samples when the batch is worth it.
//     gemm(Cpu) sees it runs inside a parallel region and stays single-threaded, so threads never
//     nest; when the loop runs serially each per-sample gemm may thread itself instead.
//   Weight gradient of images: the batch is cut into P = min(n, linear1x1_grad_chunks(C)) fixed
//     contiguous chunks (P depends on n and C only, never on the thread count); chunk p sums its
//     samples' dz_i·x_iᵀ into its own C×C slice of `scratch`, then the P slices are added to dW
//     in order p = 0..P−1 (in double). Results are therefore identical whatever the thread count,
//     apart from gemm's own row split when P = 1.
// No allocation: scratch comes from the caller (linear1x1_weight_grad_scratch(Cpu{}, C, HW) scalars,
// fixed for a bound bijector). Permutations are row copies, OpenMP over samples. The log-det
// gradient (O(n + C²)) is the Reference loop: too little work for threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/cpu/gemm.hpp"
#include "bijou/kernels/reference/linear1x1.hpp"

namespace bijou::kernels {

namespace detail {
/// Below this many flops an OpenMP region costs more than it saves (same threshold as gemm).
inline constexpr double linear1x1_parallel_flops = 2e5;
/// Chunks of the batch for the image weight gradient: up to 16, with at most 65536 scratch scalars.
inline int linear1x1_grad_chunks(int C) {
    const std::int64_t cc = std::max<std::int64_t>(1, std::int64_t(C) * C);
    return int(std::clamp<std::int64_t>(65536 / cc, 1, 16));
}
}  // namespace detail

template <class T>
void linear1x1(Cpu, const T* W, bool transpose_w, const T* x, T* y, int n, int C, int HW) {
    if (n <= 0) return;
    if (HW == 1) {  // Y[i, a] = Σ_b X[i, b]·op(W)[a, b]  ⇒  Y = X · op(W)ᵀ
        gemm(Cpu{}, false, !transpose_w, n, C, C, T(1), x, C, W, C, T(0), y, C);
        return;
    }
    const std::size_t stride = std::size_t(C) * HW;
    const bool par = n > 1 && 2.0 * n * C * C * HW > detail::linear1x1_parallel_flops;
    bijou::detail::parallel_for(int(n), par, [&](int i) {
        gemm(Cpu{}, transpose_w, false, C, HW, C, T(1), W, C, x + i * stride, HW, T(0), y + i * stride, HW);
    });
}

/// Scalars of scratch linear1x1_weight_grad needs for these sizes (0 for vectors).
inline std::size_t linear1x1_weight_grad_scratch(Cpu, int C, int HW) {
    if (HW == 1) return 0;
    return std::size_t(detail::linear1x1_grad_chunks(C)) * std::size_t(C) * std::size_t(C);
}

template <class T>
void linear1x1_weight_grad(Cpu, const T* dz, const T* x, T* dW, int n, int C, int HW, T* scratch) {
    if (n <= 0) return;
    if (HW == 1) {  // dW += dZᵀ·X, threaded (if at all) over rows of dW by gemm
        gemm(Cpu{}, true, false, C, C, n, T(1), dz, C, x, C, T(1), dW, C);
        return;
    }
    const int P = std::min(n, detail::linear1x1_grad_chunks(C));
    const std::size_t CC = std::size_t(C) * C, stride = std::size_t(C) * HW;
    const bool par = P > 1 && 2.0 * n * C * C * HW > detail::linear1x1_parallel_flops;
    bijou::detail::parallel_for(int(P), par, [&](int p) {
        const int i0 = int(std::int64_t(n) * p / P), i1 = int(std::int64_t(n) * (p + 1) / P);
        T* part = scratch + std::size_t(p) * CC;
        for (int i = i0; i < i1; ++i)  // part (C×C) (+)= dz_i (C×HW) · x_iᵀ (HW×C)
            gemm(Cpu{}, false, true, C, C, HW, T(1), dz + i * stride, HW, x + i * stride, HW, i == i0 ? T(0) : T(1),
                 part, C);
    });
    for (std::size_t k = 0; k < CC; ++k) {
        double s = 0.0;
        for (int p = 0; p < P; ++p) s += double(scratch[std::size_t(p) * CC + k]);
        dW[k] += T(s);
    }
}

template <class T>
void linear1x1_log_det_grad(Cpu, const double* winv_t, T* dW, const T* dld, int n, int C, int HW) {
    linear1x1_log_det_grad(Reference{}, winv_t, dW, dld, n, C, HW);
}

template <class T>
void permute_channels(Cpu, const T* x, T* y, const int* perm, int n, int C, int HW) {
    const std::size_t stride = std::size_t(C) * HW;
    bijou::detail::parallel_for(int(n), std::size_t(n) * stride > 16384, [&](int i) {
        const T* xi = x + i * stride;
        T* yi = y + i * stride;
        if (HW == 1)  // vectors: a plain gather (copy_n per element would cost a call each)
            for (int c = 0; c < C; ++c) yi[c] = xi[perm[c]];
        else
            for (int c = 0; c < C; ++c) std::copy_n(xi + std::size_t(perm[c]) * HW, HW, yi + std::size_t(c) * HW);
    });
}

}  // namespace bijou::kernels
