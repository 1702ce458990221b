// bijou/kernels/cuda/conv2d.hpp — 2-D convolution and the channel-major layout helpers for the Cuda
// backend (and CudaHost): the contracts of kernels/reference/conv2d.hpp with the executor's pointers.
// A 1×1 convolution is one product (cuBLAS on Cuda); a k×k one is, per chunk of `chunk` samples, im2col
// into `scratch` and one product (the backward reuses the scratch for the columns' gradient, then
// col2im). Bias and ReLU are one elementwise pass; the bias gradient is one block per output channel.
//   scratch: conv2d_scratch_size(B{}, d, chunk) scalars (in·k²·chunk·HW for k > 1, 0 for k = 1).
//
// Layouts as kernels/reference/conv2d.hpp: activations are channel-major (C, n·HW), element
// (c, i, p) at c·(n·HW) + i·HW + p; weights (out, in, k, k); stride 1, "same" zero padding k/2.
// The index bodies, for the chunk of samples [i0, i0 + cn):
//   im2col_at     col(r, j) for r = (c·k + ky)·k + kx < in·k², j = il·HW + p < cn·HW (element
//                 q = r·cn·HW + j): x(c, i0 + il, y + ky − pad, x + kx − pad), 0 outside the image
//   col2im_at     dx(c, i0 + il, p) = Σ_ky,kx dcol((c·k + ky)·k + kx, il·HW + p') over the taps that
//                 read pixel p (the adjoint of im2col), times [relu_mask > 0] when a mask is given;
//                 q = c·cn·HW + il·HW + p indexes the chunk's dx elements
//   bias_act_at   y(o, j) + b(o), then max(·, 0) when relu, for y's element q (row o = q / (n·HW))
//   row_sum_partial  a thread's share of Σ_j g(o, j) (the bias gradient)
// Layout helpers between NCHW (n, C, HW) and channel-major blocks (cn, n·HW) of channels [c0, c0 + cn):
//   nchw_index_of_cm  the NCHW index of the block's element q = (c·n + i)·HW + p
#pragma once

#include <cstddef>

#include "bijou/kernels/cuda/exec.hpp"
#include "bijou/kernels/reference/conv2d.hpp"

namespace bijou::kernels::cuda_body {

template <class T>
BIJOU_HD T im2col_at(std::size_t q, const T* x, int n, int in, int k, int H, int W, int i0, int cn) {
    const std::size_t HW = std::size_t(H) * std::size_t(W), cols = std::size_t(cn) * HW;
    const std::size_t r = q / cols, j = q % cols;
    const int kx = int(r % std::size_t(k)), ky = int((r / std::size_t(k)) % std::size_t(k));
    const std::size_t c = r / (std::size_t(k) * std::size_t(k));
    (void)in;
    const std::size_t il = j / HW, p = j % HW;
    const int pad = k / 2, sy = int(p / std::size_t(W)) + ky - pad, sx = int(p % std::size_t(W)) + kx - pad;
    if (sy < 0 || sy >= H || sx < 0 || sx >= W) return T(0);
    return x[c * std::size_t(n) * HW + (std::size_t(i0) + il) * HW + std::size_t(sy) * std::size_t(W) + std::size_t(sx)];
}

/// Writes dx's element for chunk-local q (see above).
template <class T>
BIJOU_HD void col2im_at(std::size_t q, const T* dcol, T* dx, const T* relu_mask, int n, int k, int H, int W, int i0,
                        int cn) {
    const std::size_t HW = std::size_t(H) * std::size_t(W), cols = std::size_t(cn) * HW;
    const std::size_t c = q / cols, j = q % cols, il = j / HW, p = j % HW;
    const int pad = k / 2, sy = int(p / std::size_t(W)), sx = int(p % std::size_t(W));
    T acc = T(0);
    for (int ky = 0; ky < k; ++ky)
        for (int kx = 0; kx < k; ++kx) {
            const int yy = sy - ky + pad, xx = sx - kx + pad;
            if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
            const std::size_t r = (c * std::size_t(k) + std::size_t(ky)) * std::size_t(k) + std::size_t(kx);
            acc += dcol[r * cols + il * HW + std::size_t(yy) * std::size_t(W) + std::size_t(xx)];
        }
    const std::size_t at = c * std::size_t(n) * HW + (std::size_t(i0) + il) * HW + p;
    dx[at] = relu_mask == nullptr || relu_mask[at] > T(0) ? acc : T(0);
}

template <class T>
BIJOU_HD T bias_act_at(std::size_t q, const T* y, const T* b, std::size_t row_len, bool relu) {
    const T v = y[q] + b[q / row_len];
    return relu && v < T(0) ? T(0) : v;
}

template <class T>
BIJOU_HD double row_sum_partial(const T* g, int row, std::size_t row_len, std::size_t part, std::size_t parts) {
    double acc = 0.0;
    for (std::size_t j = part; j < row_len; j += parts) acc += double(g[std::size_t(row) * row_len + j]);
    return acc;
}

BIJOU_HD std::size_t nchw_index_of_cm(std::size_t q, int n, int C, int HW, int c0) {
    const std::size_t p = q % std::size_t(HW), i = (q / std::size_t(HW)) % std::size_t(n);
    const std::size_t c = q / (std::size_t(HW) * std::size_t(n));
    return (i * std::size_t(C) + std::size_t(c0) + c) * std::size_t(HW) + p;
}

// ---- the kernels, on executor X (kernels/cuda/exec.hpp) ----

/// Scalars of scratch the convolutions below need: in·k²·chunk·HW for k > 1, none for k = 1.
inline std::size_t conv2d_scratch_size(int in, int k, int HW, int chunk) {
    return k == 1 ? 0 : std::size_t(in) * std::size_t(k) * std::size_t(k) * std::size_t(chunk) * std::size_t(HW);
}

template <class X, class T>
void conv2d_forward(X, const T* x, T* y, const T* w, const T* b, int n, int in, int out, int k, int H, int W,
                    int chunk, T* scratch, bool relu) {
    const int HW = H * W, kk = in * k * k, ld = n * HW;
    if (k == 1) {
        X::gemm(false, false, out, ld, in, T(1), w, in, x, ld, T(0), y, ld);
    } else {
        chunk = chunk < 1 ? 1 : (chunk > n ? n : chunk);
        for (int i0 = 0; i0 < n; i0 += chunk) {
            const int cn = chunk < n - i0 ? chunk : n - i0, cols = cn * HW;
            X::for_each(std::size_t(kk) * cols, [=] BIJOU_HD_LAMBDA(std::size_t q) {
                scratch[q] = im2col_at(q, x, n, in, k, H, W, i0, cn);
            });
            X::gemm(false, false, out, cols, kk, T(1), w, kk, scratch, cols, T(0), y + std::size_t(i0) * HW, ld);
        }
    }
    const std::size_t row = std::size_t(ld);
    X::for_each(std::size_t(out) * row, [=] BIJOU_HD_LAMBDA(std::size_t q) { y[q] = bias_act_at(q, y, b, row, relu); });
}

template <class X, class T>
void conv2d_backward(X, const T* x, const T* dy, T* dx, const T* w, T* dw, T* db, int n, int in, int out, int k, int H,
                     int W, int chunk, T* scratch, const T* relu_mask) {
    const int HW = H * W, kk = in * k * k, ld = n * HW;
    const std::size_t row = std::size_t(ld);
    X::segment_reduce(
        out,
        [=] BIJOU_HD_LAMBDA(int o, std::size_t part, std::size_t parts, double& a, double&) {
            a += row_sum_partial(dy, o, row, part, parts);
        },
        [=] BIJOU_HD_LAMBDA(int o, double a, double) { db[o] += T(a); });
    if (k == 1) {
        X::gemm(false, true, out, in, ld, T(1), dy, ld, x, ld, T(1), dw, in);
        if (dx == nullptr) return;
        X::gemm(true, false, in, ld, out, T(1), w, in, dy, ld, T(0), dx, ld);
        if (relu_mask != nullptr)
            X::for_each(std::size_t(in) * row, [=] BIJOU_HD_LAMBDA(std::size_t q) {
                if (!(relu_mask[q] > T(0))) dx[q] = T(0);
            });
        return;
    }
    chunk = chunk < 1 ? 1 : (chunk > n ? n : chunk);
    for (int i0 = 0; i0 < n; i0 += chunk) {
        const int cn = chunk < n - i0 ? chunk : n - i0, cols = cn * HW;
        X::for_each(std::size_t(kk) * cols, [=] BIJOU_HD_LAMBDA(std::size_t q) {
            scratch[q] = im2col_at(q, x, n, in, k, H, W, i0, cn);
        });
        X::gemm(false, true, out, kk, cols, T(1), dy + std::size_t(i0) * HW, ld, scratch, cols, T(1), dw, kk);
        if (dx == nullptr) continue;
        X::gemm(true, false, kk, cols, out, T(1), w, kk, dy + std::size_t(i0) * HW, ld, T(0), scratch, cols);
        X::for_each(std::size_t(in) * cols, [=] BIJOU_HD_LAMBDA(std::size_t q) {
            col2im_at(q, scratch, dx, relu_mask, n, k, H, W, i0, cn);
        });
    }
}

/// Channel-major block (cn, n·HW) ← NCHW (mode 0), NCHW ← block (mode 1), NCHW += block (mode 2).
template <class X, class T>
void channel_major_copy(X, const T* src, T* dst, int n, int C, int HW, int c0, int cn, int mode) {
    X::for_each(std::size_t(cn) * n * HW, [=] BIJOU_HD_LAMBDA(std::size_t q) {
        const std::size_t e = nchw_index_of_cm(q, n, C, HW, c0);
        if (mode == 0) dst[q] = src[e];
        else if (mode == 1) dst[e] = src[q];
        else dst[e] += src[q];
    });
}

}  // namespace bijou::kernels::cuda_body

namespace bijou::kernels {

/// Bytes the im2col buffer may take per chunk of samples: 256 MiB (a GPU wants few, large products).
template <ExecutorBackend B>
constexpr std::size_t conv2d_chunk_bytes(B) {
    return std::size_t(256) << 20;
}

template <ExecutorBackend B>
std::size_t conv2d_scratch_size(B, const ConvDims& d, int chunk) {
    return cuda_body::conv2d_scratch_size(d.in, d.k, d.hw(), chunk);
}

/// A conditioner's chunks (kernels/reference/conv2d.hpp): the whole batch, one chunk, slot 0.
template <ExecutorBackend B>
int net_chunk(B, std::size_t, int n, int) {
    return n;
}
template <ExecutorBackend B>
int net_slots(B, int, int) {
    return 1;
}
template <ExecutorBackend B>
int net_max_slots(B, int) {
    return 1;
}
template <ExecutorBackend B, class F>
void for_net_chunks(B, int n, int chunk, F&& f, NetChunks = NetChunks::fixed) {
    for (int i0 = 0; i0 < n; i0 += chunk) f(0, i0, n - i0 < chunk ? n - i0 : chunk);
}
template <ExecutorBackend B, class F, class Before, class After>
void for_net_chunks(B, int n, int chunk, F&& f, NetChunks order, Before&& before, After&& after) {
    before(NetTeam{});
    for_net_chunks(B{}, n, chunk, f, order);
    after(NetTeam{});
}

/// No prepared weights on a GPU (kernels/reference/conv2d.hpp has the contract).
template <class T, ExecutorBackend B>
std::size_t conv2d_prepared_size(B, const ConvDims&) {
    return 0;
}
template <class T, ExecutorBackend B>
std::size_t conv2d_prepared_grad_size(B, const ConvDims&) {
    return 0;
}
template <ExecutorBackend B, class T>
void conv2d_prepare(B, const T*, T*, const ConvDims&, bool, const NetTeam& = {}) {}
template <ExecutorBackend B, class T>
void conv2d_fold_prepared_grad(B, const T*, T*, const ConvDims&) {}

template <ExecutorBackend B, class T>
void conv2d_forward(B, const T* x, T* y, const T* w, const T* b, int n, const ConvDims& d, int chunk, T* scratch,
                    bool relu = false, [[maybe_unused]] const T* prepared = nullptr) {
    cuda_body::conv2d_forward(typename B::executor{}, x, y, w, b, n, d.in, d.out, d.k, d.H, d.W, chunk, scratch, relu);
}

template <ExecutorBackend B, class T>
void conv2d_backward(B, const T* x, const T* dy, T* dx, const T* w, T* dw, T* db, int n, const ConvDims& d,
                     int chunk, T* scratch, const T* relu_mask = nullptr, [[maybe_unused]] const T* prepared = nullptr,
                     [[maybe_unused]] T* dprepared = nullptr) {
    cuda_body::conv2d_backward(typename B::executor{}, x, dy, dx, w, dw, db, n, d.in, d.out, d.k, d.H, d.W, chunk, scratch,
                               relu_mask);
}

template <ExecutorBackend B, class T>
void nchw_to_channel_major(B, const T* x, T* cm, int n, int C, int HW, int c0, int cn) {
    cuda_body::channel_major_copy(typename B::executor{}, x, cm, n, C, HW, c0, cn, 0);
}

template <ExecutorBackend B, class T>
void channel_major_to_nchw(B, const T* cm, T* x, int n, int C, int HW, int c0, int cn) {
    cuda_body::channel_major_copy(typename B::executor{}, cm, x, n, C, HW, c0, cn, 1);
}

template <ExecutorBackend B, class T>
void channel_major_add_to_nchw(B, const T* cm, T* x, int n, int C, int HW, int c0, int cn) {
    cuda_body::channel_major_copy(typename B::executor{}, cm, x, n, C, HW, c0, cn, 2);
}

}  // namespace bijou::kernels
