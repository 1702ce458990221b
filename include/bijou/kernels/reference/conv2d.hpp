// bijou/kernels/reference/conv2d.hpp — 2-D convolution and the channel-major layout, plain loops.
//
// Convolution: stride 1, zero "same" padding (pad = k/2, k odd), with bias; the cross-correlation
// of PyTorch's nn.Conv2d. Activations are CHANNEL-MAJOR: a batch of n images with C channels of
// H×W is a (C, n·HW) row-major matrix, element (c, i, p) at c·(n·HW) + i·HW + p (p = y·W + x).
//   x: (in, n·HW)   w: (out, in, k, k) as nn.Conv2d stores it   b: (out)   y: (out, n·HW)
//   y(o, i, y, x) = b(o) + Σ_c Σ_ky Σ_kx w(o, c, ky, kx) · x(c, i, y + ky − pad, x + kx − pad)
// conv2d_forward assigns y, then y = max(y, 0) when `relu` (a conv net's ReLU, fused on the Cpu
// backend). conv2d_backward, for ∂L/∂y = dy: dw += Σ dy·x (shifted), db += Σ dy, dx = the adjoint
// (assigned; skipped when dx is null), then dx ⊙= [relu_mask > 0] when relu_mask is not null (the
// ReLU before this layer: relu_mask is its output, (in, n·HW)). Accumulates in double. `chunk` and
// `scratch` are the Cpu kernel's (samples per im2col block, its buffer); these loops ignore them.
// Cost: 2·n·HW·out·in·k² flops per pass, O(out·in·k²) per output element, serial.
//
// Layout helpers between NCHW batches (n, C, HW) and channel-major blocks (cn, n·HW) holding the
// channels [c0, c0 + cn):
//   nchw_to_channel_major      cm(c, i, p) = x(i, c0 + c, p)            (assigned)
//   channel_major_to_nchw      x(i, c0 + c, p) = cm(c, i, p)            (assigned; other channels untouched)
//   channel_major_add_to_nchw  x(i, c0 + c, p) += cm(c, i, p)
#pragma once

#include <cstddef>
#include <stdexcept>

#include "bijou/core/backend.hpp"

namespace bijou::kernels {

/// Sizes of one convolution layer.
struct ConvDims {
    int in = 0, out = 0, k = 1, H = 1, W = 1;
    int pad() const { return k / 2; }
    int hw() const { return H * W; }
};

/// Bytes of im2col buffer a backend takes per chunk of samples (nn/conv2d.hpp sizes its chunks with
/// it): the Reference kernels need no buffer; their chunks are the Cpu backend's, 8 MiB.
constexpr std::size_t conv2d_chunk_bytes(Reference) { return std::size_t(8) << 20; }

/// Scratch scalars the Reference convolution needs: none (it works on the whole batch).
inline std::size_t conv2d_scratch_size(Reference, const ConvDims&, int) { return 0; }

/// A conditioner's passes in chunks of samples (nn/convnet.hpp runs its three layers chunk by chunk,
/// each chunk in a scratch slot of its own): net_chunk(bytes_per_sample, n, max_chunk) samples per
/// chunk, net_slots(n, chunk) slots a pass uses at the current thread count, net_max_slots(n) slots
/// scratch for batches of up to n provides (at least net_slots, non-decreasing in n),
/// for_net_chunks(n, chunk, f, order) calls f(slot, i0, m) for the chunks [i0, i0 + m) of [0, n): with
/// NetChunks::fixed, a slot's chunks are a fixed run, in order (what a slot accumulates, say a weight
/// gradient, is then the same on every run); with NetChunks::balanced, for passes whose chunks' results
/// do not depend on the slot that runs them (a forward pass), a thread takes the next chunk as it
/// finishes one, so that a slower thread does not leave the others waiting. The Reference backend runs
/// the whole batch as one chunk in slot 0 (the Cpu backend's chunks are what it checks).
/// for_net_chunks(n, chunk, f, order, before, after) runs a pass's work around its chunks on the same
/// threads: before(team) on every thread of the pass, each doing its share (NetTeam), then, once all
/// have finished, the chunks, then, once every chunk is done, after(team) likewise (a pass's weights
/// prepared and its slots' gradients zeroed before, summed after: without a parallel region, and the
/// serial stretches between regions, of their own). A backend that runs the chunks on one thread
/// calls both with NetTeam{} (t = 0 of 1). after is skipped when a chunk threw.
enum class NetChunks { fixed, balanced };
/// No backend's net_max_slots exceeds this.
inline constexpr int max_net_slots = 64;

/// The threads of a pass as before/after see them: this one is t of nt. share(count) is its
/// contiguous run [first, last) of count items (the same on every run); sync() waits until every
/// thread of the pass has reached it (all must call it equally often; nothing for a team of one).
struct NetTeam {
    int t = 0, nt = 1;
    struct Range {
        int first, last;
    };
    Range share(int count) const {
        return {int(static_cast<long long>(count) * t / nt), int(static_cast<long long>(count) * (t + 1) / nt)};
    }
    void sync() const {
#if defined(_OPENMP)
        if (nt > 1) {
#pragma omp barrier
        }
#endif
    }
};
/// for_net_chunks' before or after when a pass has nothing to run there.
struct NoTeamWork {
    void operator()(const NetTeam&) const {}
};
inline int net_chunk(Reference, std::size_t, int n, int) { return n; }
inline int net_slots(Reference, int, int) { return 1; }
inline int net_max_slots(Reference, int) { return 1; }
template <class F>
void for_net_chunks(Reference, int n, int chunk, F&& f, NetChunks = NetChunks::fixed) {
    for (int i0 = 0; i0 < n; i0 += chunk) f(0, i0, n - i0 < chunk ? n - i0 : chunk);
}
template <class F, class Before, class After>
void for_net_chunks(Reference, int n, int chunk, F&& f, NetChunks order, Before&& before, After&& after) {
    before(NetTeam{});
    for_net_chunks(Reference{}, n, chunk, f, order);
    after(NetTeam{});
}

/// A conditioner's hidden activations in 32-column panels (kernels/cpu/sgemm.hpp's panel_column) with
/// panel stride `x` / `y` for a layer's input / output (0: the row-major channel-major layout), and in
/// backward for their gradients (dx like x, dy like y): the Cpu backend's layout for them where
/// kernels/cpu/conv2d.hpp's net_panels allows it (its conv2d_forward and conv2d_backward take the
/// strides as their last argument). Every other backend keeps the
/// row-major layout: net_panels is 0 for it, and the overloads below, which take the strides, pass the
/// call on to its row-major convolution (and throw for planes in panels, which it never gets).
struct ConvPanels {
    std::size_t x = 0, y = 0;
    bool any() const { return x != 0 || y != 0; }
};
template <class T, class Bk>
std::size_t net_panels(Bk, const ConvDims&, int, const ConvDims&, int, int) {
    return 0;
}
template <class Bk, class T>
void conv2d_forward(Bk bk, const T* x, T* y, const T* w, const T* b, int n, const ConvDims& d, int chunk, T* scratch,
                    bool relu, const T* prepared, ConvPanels p) {
    if (p.any()) throw std::logic_error("conv2d_forward: this backend keeps activations row-major (net_panels is 0)");
    conv2d_forward(bk, x, y, w, b, n, d, chunk, scratch, relu, prepared);
}
template <class Bk, class T>
void conv2d_backward(Bk bk, const T* x, const T* dy, T* dx, const T* w, T* dw, T* db, int n, const ConvDims& d,
                     int chunk, T* scratch, const T* relu_mask, const T* prepared, T* dprepared, ConvPanels p) {
    if (p.any())
        throw std::logic_error("conv2d_backward: this backend keeps activations row-major (net_panels is 0)");
    conv2d_backward(bk, x, dy, dx, w, dw, db, n, d, chunk, scratch, relu_mask, prepared, dprepared);
}

/// Weights a pass may prepare once per layer and pass to every chunk's call (the Cpu backend's narrow
/// path: a rearranged copy, its gradient (conv2d_prepared_grad_size scalars) folded back with
/// conv2d_fold_prepared_grad; packed transposes for the data gradients); these loops need none, so the
/// sizes are 0 and the calls do nothing.
template <class T>
std::size_t conv2d_prepared_size(Reference, const ConvDims&) {
    return 0;
}
template <class T>
std::size_t conv2d_prepared_grad_size(Reference, const ConvDims&) {
    return 0;
}
template <class T>
void conv2d_prepare(Reference, const T*, T*, const ConvDims&, bool, const NetTeam& = {}) {}
template <class T>
void conv2d_fold_prepared_grad(Reference, const T*, T*, const ConvDims&) {}

template <class T>
void conv2d_forward(Reference, const T* x, T* y, const T* w, const T* b, int n, const ConvDims& d, int chunk,
                    T* scratch, bool relu = false, const T* prepared = nullptr) {
    (void)chunk, (void)scratch, (void)prepared;
    const std::size_t HW = std::size_t(d.hw()), ld = std::size_t(n) * HW;
    const int k = d.k, pad = d.pad();
    for (int o = 0; o < d.out; ++o)
        for (int i = 0; i < n; ++i)
            for (int yy = 0; yy < d.H; ++yy)
                for (int xx = 0; xx < d.W; ++xx) {
                    double acc = double(b[o]);
                    for (int c = 0; c < d.in; ++c)
                        for (int ky = 0; ky < k; ++ky)
                            for (int kx = 0; kx < k; ++kx) {
                                const int sy = yy + ky - pad, sx = xx + kx - pad;
                                if (sy < 0 || sy >= d.H || sx < 0 || sx >= d.W) continue;
                                const T wv = w[((std::size_t(o) * d.in + c) * k + ky) * k + kx];
                                const T xv = x[std::size_t(c) * ld + i * HW + std::size_t(sy) * d.W + sx];
                                acc += double(wv) * double(xv);
                            }
                    const T v = T(acc);
                    y[std::size_t(o) * ld + i * HW + std::size_t(yy) * d.W + xx] = relu && v < T(0) ? T(0) : v;
                }
}

template <class T>
void conv2d_backward(Reference, const T* x, const T* dy, T* dx, const T* w, T* dw, T* db, int n, const ConvDims& d,
                     int chunk, T* scratch, const T* relu_mask = nullptr, const T* prepared = nullptr,
                     T* dprepared = nullptr) {
    (void)chunk, (void)scratch, (void)prepared, (void)dprepared;
    const std::size_t HW = std::size_t(d.hw()), ld = std::size_t(n) * HW;
    const int k = d.k, pad = d.pad();
    auto X = [&](int c, int i, int sy, int sx) { return x[std::size_t(c) * ld + i * HW + std::size_t(sy) * d.W + sx]; };
    auto DY = [&](int o, int i, int yy, int xx) {
        return dy[std::size_t(o) * ld + i * HW + std::size_t(yy) * d.W + xx];
    };
    // dw(o, c, ky, kx) += Σ_i,y,x dy(o, i, y, x) · x(c, i, y + ky − pad, x + kx − pad)
    for (int o = 0; o < d.out; ++o)
        for (int c = 0; c < d.in; ++c)
            for (int ky = 0; ky < k; ++ky)
                for (int kx = 0; kx < k; ++kx) {
                    double acc = 0.0;
                    for (int i = 0; i < n; ++i)
                        for (int yy = 0; yy < d.H; ++yy)
                            for (int xx = 0; xx < d.W; ++xx) {
                                const int sy = yy + ky - pad, sx = xx + kx - pad;
                                if (sy < 0 || sy >= d.H || sx < 0 || sx >= d.W) continue;
                                acc += double(DY(o, i, yy, xx)) * double(X(c, i, sy, sx));
                            }
                    dw[((std::size_t(o) * d.in + c) * k + ky) * k + kx] += T(acc);
                }
    // db(o) += Σ dy(o, ·)
    for (int o = 0; o < d.out; ++o) {
        double acc = 0.0;
        for (std::size_t j = 0; j < ld; ++j) acc += double(dy[std::size_t(o) * ld + j]);
        db[o] += T(acc);
    }
    if (dx == nullptr) return;
    // dx(c, i, sy, sx) = Σ_o,ky,kx w(o, c, ky, kx) · dy(o, i, sy − ky + pad, sx − kx + pad)
    for (int c = 0; c < d.in; ++c)
        for (int i = 0; i < n; ++i)
            for (int sy = 0; sy < d.H; ++sy)
                for (int sx = 0; sx < d.W; ++sx) {
                    double acc = 0.0;
                    for (int o = 0; o < d.out; ++o)
                        for (int ky = 0; ky < k; ++ky)
                            for (int kx = 0; kx < k; ++kx) {
                                const int yy = sy - ky + pad, xx = sx - kx + pad;
                                if (yy < 0 || yy >= d.H || xx < 0 || xx >= d.W) continue;
                                acc += double(w[((std::size_t(o) * d.in + c) * k + ky) * k + kx]) *
                                       double(DY(o, i, yy, xx));
                            }
                    const std::size_t at = std::size_t(c) * ld + i * HW + std::size_t(sy) * d.W + sx;
                    dx[at] = relu_mask == nullptr || relu_mask[at] > T(0) ? T(acc) : T(0);
                }
}

template <class T>
void nchw_to_channel_major(Reference, const T* x, T* cm, int n, int C, int HW, int c0, int cn) {
    for (int c = 0; c < cn; ++c)
        for (int i = 0; i < n; ++i)
            for (int p = 0; p < HW; ++p)
                cm[(std::size_t(c) * n + i) * HW + p] = x[(std::size_t(i) * C + c0 + c) * HW + p];
}

template <class T>
void channel_major_to_nchw(Reference, const T* cm, T* x, int n, int C, int HW, int c0, int cn) {
    for (int c = 0; c < cn; ++c)
        for (int i = 0; i < n; ++i)
            for (int p = 0; p < HW; ++p)
                x[(std::size_t(i) * C + c0 + c) * HW + p] = cm[(std::size_t(c) * n + i) * HW + p];
}

template <class T>
void channel_major_add_to_nchw(Reference, const T* cm, T* x, int n, int C, int HW, int c0, int cn) {
    for (int c = 0; c < cn; ++c)
        for (int i = 0; i < n; ++i)
            for (int p = 0; p < HW; ++p)
                x[(std::size_t(i) * C + c0 + c) * HW + p] += cm[(std::size_t(c) * n + i) * HW + p];
}

}  // namespace bijou::kernels
