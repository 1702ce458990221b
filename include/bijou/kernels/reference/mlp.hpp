// bijou/kernels/reference/mlp.hpp — the elementwise parts of an MLP layer, plain loops.
// y, g, a: (n, m) row-major, one sample per row; b, db: (m).
//   mlp_bias_relu      y = relu(y + b)                (in place; fused bias and activation)
//   mlp_bias           y = y + b                      (in place; the output layer)
//   mlp_relu_backward  g = g ⊙ [a > 0]                (in place; a is the post-ReLU activation)
//   mlp_bias_grad      db += Σ_i g[i, :]              (accumulated in double, then added)
//   mlp_apply_mask     out = w ⊙ mask over `size` values (a masked layer's weights or gradient; out may be w)
// ReLU lets NaN through (relu(NaN) = NaN, as in PyTorch) so that a diverging run is noticed.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"

namespace bijou::kernels {

template <class T>
void mlp_bias_relu(Reference, T* y, const T* b, int n, int m) {
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < m; ++j) {
            T& v = y[std::size_t(i) * m + j];
            v += b[j];
            if (v < T(0)) v = T(0);
        }
}

template <class T>
void mlp_bias(Reference, T* y, const T* b, int n, int m) {
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < m; ++j) y[std::size_t(i) * m + j] += b[j];
}

template <class T>
void mlp_relu_backward(Reference, T* g, const T* a, int n, int m) {
    for (std::size_t k = 0; k < std::size_t(n) * m; ++k)
        if (!(a[k] > T(0))) g[k] = T(0);
}

template <class T>
void mlp_bias_grad(Reference, const T* g, T* db, int n, int m) {
    for (int j = 0; j < m; ++j) {
        double acc = 0.0;
        for (int i = 0; i < n; ++i) acc += double(g[std::size_t(i) * m + j]);
        db[j] += T(acc);
    }
}

template <class T>
void mlp_apply_mask(Reference, const T* w, const T* mask, T* out, std::size_t size) {
    for (std::size_t k = 0; k < size; ++k) out[k] = w[k] * mask[k];
}

}  // namespace bijou::kernels
