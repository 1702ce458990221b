// bijou/kernels/reference/mlp.hpp — the elementwise parts of an MLP layer, plain loops.
// y, g, a: (n, m) row-major, one sample per row; b, db: (m).
//   mlp_bias_relu      y = relu(y + b)                (in place; fused bias and activation)
//   mlp_bias           y = y + b                      (in place; the output layer)
//   mlp_relu_backward  g = g ⊙ [a > 0]                (in place; a is the post-ReLU activation)
//   mlp_bias_grad      db += Σ_i g[i, :]              (accumulated in double, then added)
//   mlp_apply_mask     out = w ⊙ mask over `size` values (a masked layer's weights or gradient; out may be w)
// and a Linear layer's products with the elementwise part that follows them (the Cpu backend runs it
// inside the product, while each tile is in registers):
//   mlp_linear         y (n, out) = relu?(beta·y + x·Wᵀ + b); x (n, in) row stride ldx, W (out, in) row
//                      stride ldw; the ReLU only when `relu`; beta 0 or 1 (1: add to y's earlier product)
//   mlp_linear_input_grad_relu   d (n, in) = (g·W) ⊙ [a > 0]; g (n, out), a (n, in) the layer's input,
//                      a ReLU's output (so this is ∂L/∂ of that ReLU's input)
// and a layer's whole backward, the sequence of the kernels above (the Cpu backend runs a thin layer's,
// one with at most mlp_thin_width = 4 inputs or outputs, in one pass over the activations):
//   mlp_param_grads    dW (out, ldw) += gᵀ·x, db += Σ_i g[i, :] (if db); g (n, out), x (n, in) row stride ldx
//   mlp_layer_backward dW (out, ldw) += gᵀ·a, db += Σ_i g[i, :] (if db), d (n, in) = (g·W) ⊙ [a > 0],
//                      db_a += Σ_i d[i, :] (if db_a: the bias gradient of the layer below, whose
//                      pre-activation gradient d is); a (n, in) the layer's input, a ReLU's output
//   (a net passes db_a to a thin-output layer's pass and leaves a thin-input layer's bias to its own
//   mlp_param_grads, each then one pass on Cpu; every backend gives the same sums either way)
// and mlp_concurrently(flops_each, n, pre, f, g, post): pre(0, n), then f() and g(), two independent passes
// of two nets (a coupling's shift and log-scale nets) of about flops_each each, then post(0, n); pre
// and post are row-wise work (pre(i0, i1), post(i0, i1): rows [i0, i1), any split giving the same
// result). The Cpu backend runs f and g at once on two threads, each thread pre and post on half the rows.
// ReLU lets NaN through (relu(NaN) = NaN, as in PyTorch) so that a diverging run is noticed.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/kernels/reference/gemm.hpp"

namespace bijou::kernels {

inline constexpr int mlp_thin_width = 4;

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

template <class T>
void mlp_linear(Reference, const T* x, int ldx, const T* w, int ldw, const T* b, T beta, T* y, int n, int in, int out,
                bool relu) {
    gemm(Reference{}, false, true, n, out, in, T(1), x, ldx, w, ldw, beta, y, out);
    if (relu) mlp_bias_relu(Reference{}, y, b, n, out);
    else mlp_bias(Reference{}, y, b, n, out);
}

template <class T>
void mlp_linear_input_grad_relu(Reference, const T* g, const T* w, int ldw, const T* a, T* d, int n, int in, int out) {
    gemm(Reference{}, false, false, n, in, out, T(1), g, out, w, ldw, T(0), d, in);
    mlp_relu_backward(Reference{}, d, a, n, in);
}

template <class T>
void mlp_param_grads(Reference, const T* g, const T* x, int ldx, T* dw, int ldw, T* db, int n, int in, int out) {
    gemm(Reference{}, true, false, out, in, n, T(1), g, out, x, ldx, T(1), dw, ldw);
    if (db != nullptr) mlp_bias_grad(Reference{}, g, db, n, out);
}

template <class T>
void mlp_layer_backward(Reference, const T* g, const T* a, const T* w, int ldw, T* dw, T* db, T* d, T* db_a, int n,
                        int in, int out) {
    mlp_param_grads(Reference{}, g, a, in, dw, ldw, db, n, in, out);
    mlp_linear_input_grad_relu(Reference{}, g, w, ldw, a, d, n, in, out);
    if (db_a != nullptr) mlp_bias_grad(Reference{}, d, db_a, n, in);
}

template <class Pre, class F, class G, class Post>
void mlp_concurrently(Reference, double, int n, Pre&& pre, F&& f, G&& g, Post&& post) {
    pre(0, n);
    f();
    g();
    post(0, n);
}

}  // namespace bijou::kernels
