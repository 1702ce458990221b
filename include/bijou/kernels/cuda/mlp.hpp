// bijou/kernels/cuda/mlp.hpp — an MLP layer's elementwise parts for the Cuda backend (and CudaHost);
// mlp_linear, mlp_linear_input_grad_relu and a layer's backward (mlp_param_grads, mlp_layer_backward) are
// the executor's products followed by those parts.
// The contracts of kernels/reference/mlp.hpp, per element k of an (n, m) row-major batch (one thread
// each); the bias gradient is one block per column (column_sum_partial: a thread's share of Σ_i g[i, j],
// summed in double). ReLU lets NaN through, as the Reference kernel does.
#pragma once

#include <cstddef>

#include "bijou/kernels/cuda/exec.hpp"

namespace bijou::kernels::cuda_body {

template <class T>
BIJOU_HD T mlp_bias_relu_at(std::size_t k, const T* y, const T* b, int m) {
    const T v = y[k] + b[k % std::size_t(m)];
    return v < T(0) ? T(0) : v;  // NaN passes through, as in the Reference kernel
}

template <class T>
BIJOU_HD T mlp_bias_at(std::size_t k, const T* y, const T* b, int m) {
    return y[k] + b[k % std::size_t(m)];
}

template <class T>
BIJOU_HD T mlp_relu_backward_at(std::size_t k, const T* g, const T* a) {
    return a[k] > T(0) ? g[k] : T(0);
}

template <class T>
BIJOU_HD double column_sum_partial(const T* g, int col, int n, int m, std::size_t part, std::size_t parts) {
    double acc = 0.0;
    for (std::size_t i = part; i < std::size_t(n); i += parts) acc += double(g[i * std::size_t(m) + std::size_t(col)]);
    return acc;
}

// ---- the kernels, on executor X (kernels/cuda/exec.hpp) ----

template <class X, class T>
void mlp_apply_mask(X, const T* w, const T* mask, T* out, std::size_t size) {
    X::for_each(size, [=] BIJOU_HD_LAMBDA(std::size_t k) { out[k] = w[k] * mask[k]; });
}

template <class X, class T>
void mlp_bias_relu(X, T* y, const T* b, int n, int m) {
    X::for_each(std::size_t(n) * m, [=] BIJOU_HD_LAMBDA(std::size_t k) { y[k] = mlp_bias_relu_at(k, y, b, m); });
}

template <class X, class T>
void mlp_bias(X, T* y, const T* b, int n, int m) {
    X::for_each(std::size_t(n) * m, [=] BIJOU_HD_LAMBDA(std::size_t k) { y[k] = mlp_bias_at(k, y, b, m); });
}

template <class X, class T>
void mlp_relu_backward(X, T* g, const T* a, int n, int m) {
    X::for_each(std::size_t(n) * m, [=] BIJOU_HD_LAMBDA(std::size_t k) { g[k] = mlp_relu_backward_at(k, g, a); });
}

template <class X, class T>
void mlp_bias_grad(X, const T* g, T* db, int n, int m) {
    X::segment_reduce(
        m,
        [=] BIJOU_HD_LAMBDA(int j, std::size_t part, std::size_t parts, double& a, double&) {
            a += column_sum_partial(g, j, n, m, part, parts);
        },
        [=] BIJOU_HD_LAMBDA(int j, double a, double) { db[j] += T(a); });
}

}  // namespace bijou::kernels::cuda_body

namespace bijou::kernels {

template <ExecutorBackend B, class T>
void mlp_bias_relu(B, T* y, const T* b, int n, int m) {
    cuda_body::mlp_bias_relu(typename B::executor{}, y, b, n, m);
}

template <ExecutorBackend B, class T>
void mlp_bias(B, T* y, const T* b, int n, int m) {
    cuda_body::mlp_bias(typename B::executor{}, y, b, n, m);
}

template <ExecutorBackend B, class T>
void mlp_relu_backward(B, T* g, const T* a, int n, int m) {
    cuda_body::mlp_relu_backward(typename B::executor{}, g, a, n, m);
}

template <ExecutorBackend B, class T>
void mlp_bias_grad(B, const T* g, T* db, int n, int m) {
    cuda_body::mlp_bias_grad(typename B::executor{}, g, db, n, m);
}

template <ExecutorBackend B, class T>
void mlp_apply_mask(B, const T* w, const T* mask, T* out, std::size_t size) {
    cuda_body::mlp_apply_mask(typename B::executor{}, w, mask, out, size);
}

// A Linear layer: the product (cuBLAS), then the elementwise pass.
template <ExecutorBackend B, class T>
void mlp_linear(B, const T* x, int ldx, const T* w, int ldw, const T* b, T beta, T* y, int n, int in, int out,
                bool relu) {
    gemm(B{}, false, true, n, out, in, T(1), x, ldx, w, ldw, beta, y, out);
    if (relu) mlp_bias_relu(B{}, y, b, n, out);
    else mlp_bias(B{}, y, b, n, out);
}

// One after the other (one stream).
template <ExecutorBackend B, class Pre, class F, class G, class Post>
void mlp_concurrently(B, double, int n, Pre&& pre, F&& f, G&& g, Post&& post) {
    pre(0, n);
    f();
    g();
    post(0, n);
}

template <ExecutorBackend B, class T>
void mlp_linear_input_grad_relu(B, const T* g, const T* w, int ldw, const T* a, T* d, int n, int in, int out) {
    gemm(B{}, false, false, n, in, out, T(1), g, out, w, ldw, T(0), d, in);
    mlp_relu_backward(B{}, d, a, n, in);
}

// A layer's backward: the products and the bias gradients one after the other.
template <ExecutorBackend B, class T>
void mlp_param_grads(B, const T* g, const T* x, int ldx, T* dw, int ldw, T* db, int n, int in, int out) {
    gemm(B{}, true, false, out, in, n, T(1), g, out, x, ldx, T(1), dw, ldw);
    if (db != nullptr) mlp_bias_grad(B{}, g, db, n, out);
}

template <ExecutorBackend B, class T>
void mlp_layer_backward(B, const T* g, const T* a, const T* w, int ldw, T* dw, T* db, T* d, T* db_a, int n, int in,
                        int out) {
    mlp_param_grads(B{}, g, a, in, dw, ldw, db, n, in, out);
    mlp_linear_input_grad_relu(B{}, g, w, ldw, a, d, n, in, out);
    if (db_a != nullptr) mlp_bias_grad(B{}, d, db_a, n, in);
}

}  // namespace bijou::kernels
