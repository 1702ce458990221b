// bijou/kernels/reference/linear1x1.hpp — per-position channel mixing, plain loops (the ground truth).
//
// x, y, dz: (n, C, HW) with HW = 1 for vectors (Shape<D>: C = D); W, dW: (C, C) row-major.
//   linear1x1              y[i, :, p] = op(W) · x[i, :, p],  op(W) = W, or Wᵀ when transpose_w
//   linear1x1_weight_grad  dW += Σ_{i,p} dz[i, :, p] · x[i, :, p]ᵀ          (+=, like every param grad)
//   permute_channels       y[i, c, p] = x[i, perm[c], p]                     (perm: a permutation of 0..C-1)
//   linear1x1_log_det_grad dW += HW·(Σ_i dld[i])·W⁻ᵀ    (winv_t: W⁻ᵀ, C×C row-major, in double)
//     the log-det term of an invertible 1×1 convolution's weight gradient: ld_i = HW·log|det W| and
//     ∂ log|det W| / ∂W = W⁻ᵀ (Jacobi's formula); dld: (n). O(n + C²).
// Inputs and outputs never alias. Products accumulate in double. O(n·C²·HW) (permute: O(n·C·HW)).
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"

namespace bijou::kernels {

template <class T>
void linear1x1(Reference, const T* W, bool transpose_w, const T* x, T* y, int n, int C, int HW) {
    for (int i = 0; i < n; ++i)
        for (int a = 0; a < C; ++a)
            for (int p = 0; p < HW; ++p) {
                double acc = 0.0;
                for (int b = 0; b < C; ++b) {
                    const T w = transpose_w ? W[std::size_t(b) * C + a] : W[std::size_t(a) * C + b];
                    acc += double(w) * double(x[(std::size_t(i) * C + b) * HW + p]);
                }
                y[(std::size_t(i) * C + a) * HW + p] = T(acc);
            }
}

/// Scalars of scratch linear1x1_weight_grad needs (none here; the signature matches the Cpu one).
inline std::size_t linear1x1_weight_grad_scratch(Reference, int, int) { return 0; }

template <class T>
void linear1x1_weight_grad(Reference, const T* dz, const T* x, T* dW, int n, int C, int HW, T* /*scratch*/) {
    for (int a = 0; a < C; ++a)
        for (int b = 0; b < C; ++b) {
            double acc = 0.0;
            for (int i = 0; i < n; ++i)
                for (int p = 0; p < HW; ++p)
                    acc += double(dz[(std::size_t(i) * C + a) * HW + p]) * double(x[(std::size_t(i) * C + b) * HW + p]);
            dW[std::size_t(a) * C + b] += T(acc);
        }
}

template <class T>
void linear1x1_log_det_grad(Reference, const double* winv_t, T* dW, const T* dld, int n, int C, int HW) {
    double g = 0.0;
    for (int i = 0; i < n; ++i) g += double(dld[i]);
    g *= HW;
    for (std::size_t k = 0; k < std::size_t(C) * C; ++k) dW[k] += T(g * winv_t[k]);
}

template <class T>
void permute_channels(Reference, const T* x, T* y, const int* perm, int n, int C, int HW) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C; ++c)
            for (int p = 0; p < HW; ++p)
                y[(std::size_t(i) * C + c) * HW + p] = x[(std::size_t(i) * C + std::size_t(perm[c])) * HW + p];
}

}  // namespace bijou::kernels
