// bijou/kernels/cuda/linear1x1.hpp — per-position channel mixing for the Cuda backend (and CudaHost).
// The contracts of kernels/reference/linear1x1.hpp; pointers are the executor's (device pointers on
// Cuda; perm is an int array there too). Images: one strided batched product (a C×C by C×HW per sample)
// forward, one product per sample (n calls accumulating into dW) for the weight gradient, no scratch;
// vectors (HW = 1): one product each. permute_channels: one thread per element (permute_source gives
// the source index of y's element k of an (n, C, HW) batch). linear1x1_log_det_grad: Σ dld in one
// block (in double, left in executor memory: no host round trip), then one thread per entry of dW,
// which adds T(Σ·T(HW·W⁻ᵀ)) (W⁻ᵀ rounded to T first, as a T matrix uploaded would be).
#pragma once

#include <cstddef>

#include "bijou/core/memory.hpp"
#include "bijou/kernels/cuda/exec.hpp"

namespace bijou::kernels::cuda_body {

BIJOU_HD std::size_t permute_source(std::size_t k, const int* perm, int C, int HW) {
    const std::size_t p = k % std::size_t(HW), c = (k / std::size_t(HW)) % std::size_t(C);
    const std::size_t i = k / (std::size_t(HW) * std::size_t(C));
    return (i * std::size_t(C) + std::size_t(perm[c])) * std::size_t(HW) + p;
}

// ---- the kernels, on executor X (kernels/cuda/exec.hpp) ----

template <class X, class T>
void linear1x1(X, const T* W, bool transpose_w, const T* x, T* y, int n, int C, int HW) {
    if (HW == 1) {  // y (n×C) = x · op(W)ᵀ
        X::gemm(false, !transpose_w, n, C, C, T(1), x, C, W, C, T(0), y, C);
        return;
    }
    const long long plane = (long long)C * HW;  // y_i (C×HW) = op(W) · x_i
    X::gemm_strided_batched(transpose_w, false, C, HW, C, T(1), W, C, 0LL, x, HW, plane, T(0), y, HW, plane, n);
}

template <class X, class T>
void linear1x1_weight_grad(X, const T* dz, const T* x, T* dW, int n, int C, int HW) {
    if (HW == 1) {  // dW (C×C) += dzᵀ · x
        X::gemm(true, false, C, C, n, T(1), dz, C, x, C, T(1), dW, C);
        return;
    }
    const std::size_t plane = std::size_t(C) * std::size_t(HW);
    for (int i = 0; i < n; ++i)  // dW += dz_i · x_iᵀ
        X::gemm(false, true, C, C, HW, T(1), dz + i * plane, HW, x + i * plane, HW, T(1), dW, C);
}

template <class X, class T>
void permute_channels(X, const T* x, T* y, const int* perm, int n, int C, int HW) {
    X::for_each(std::size_t(n) * C * HW, [=] BIJOU_HD_LAMBDA(std::size_t k) { y[k] = x[permute_source(k, perm, C, HW)]; });
}

template <class X, class T>
void linear1x1_log_det_grad(X, const double* winv_t, T* dW, const T* dld, int n, int C, int HW) {
    const double* total = bijou::detail::total_into<X>(X::scalar_slot() + 1, std::size_t(n),
                                                       [=] BIJOU_HD_LAMBDA(std::size_t k) { return double(dld[k]); });
    const double hw = HW;
    X::for_each(std::size_t(C) * C,
                [=] BIJOU_HD_LAMBDA(std::size_t k) { dW[k] += T(double(T(hw * winv_t[k])) * *total); });
}

}  // namespace bijou::kernels::cuda_body

namespace bijou::kernels {

template <ExecutorBackend B, class T>
void linear1x1(B, const T* W, bool transpose_w, const T* x, T* y, int n, int C, int HW) {
    cuda_body::linear1x1(typename B::executor{}, W, transpose_w, x, y, n, C, HW);
}

/// Scalars of scratch linear1x1_weight_grad needs (none).
template <ExecutorBackend B>
std::size_t linear1x1_weight_grad_scratch(B, int, int) {
    return 0;
}

template <ExecutorBackend B, class T>
void linear1x1_weight_grad(B, const T* dz, const T* x, T* dW, int n, int C, int HW, T* /*scratch*/) {
    cuda_body::linear1x1_weight_grad(typename B::executor{}, dz, x, dW, n, C, HW);
}

template <ExecutorBackend B, class T>
void linear1x1_log_det_grad(B, const double* winv_t, T* dW, const T* dld, int n, int C, int HW) {
    cuda_body::linear1x1_log_det_grad(typename B::executor{}, winv_t, dW, dld, n, C, HW);
}

template <ExecutorBackend B, class T>
void permute_channels(B, const T* x, T* y, const int* perm, int n, int C, int HW) {
    cuda_body::permute_channels(typename B::executor{}, x, y, perm, n, C, HW);
}

}  // namespace bijou::kernels
