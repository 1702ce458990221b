// bijou/kernels/reference/context.hpp — a per-sample, per-channel bias on channel-major activations:
// how a context enters an image conditioner or prior (a learned projection of c, added per channel).
// y, g: (C, n·HW) channel-major (nn/conv2d.hpp's layout), element (c, i, p) at c·n·HW + i·HW + p;
// cb, dcb: (n, C) row-major, one row per sample.
//   context_bias       y[c, i, p] += cb[i, c], then ReLU when `relu` (in place; NaN passes through)
//   context_bias_grad  dcb[i, c] = Σ_p g[c, i, p]   (assigned; summed in double in p order)
// A per-sample Gaussian prior as a bijection (Glow's top prior conditioned on c), on NCHW src/dst
// (n, C, HW) with stats (n, 2C) row-major = [m_i | s_i] (mean and log-scale per sample and channel):
//   sample_prior_apply     forward: dst = (src − m)·exp(−s), ld[i] −= HW·Σ_c s[i, c];
//                          inverse: dst = m + src·exp(s),   ld[i] += HW·Σ_c s[i, c]
//   sample_prior_backward  after forward (eps its output): dz = deps·exp(−s) (assigned) and
//                          dstats (assigned) = [−Σ_p deps·exp(−s) | −Σ_p deps·eps − HW·dld[i]]
#pragma once

#include <cmath>
#include <cstddef>

#include "bijou/core/backend.hpp"

namespace bijou::kernels {

template <class T>
void context_bias(Reference, T* y, const T* cb, int n, int C, int HW, bool relu) {
    for (int c = 0; c < C; ++c)
        for (int i = 0; i < n; ++i)
            for (int p = 0; p < HW; ++p) {
                T& v = y[(std::size_t(c) * n + i) * HW + p];
                v += cb[std::size_t(i) * C + c];
                if (relu && v < T(0)) v = T(0);
            }
}

template <class T>
void context_bias_grad(Reference, const T* g, T* dcb, int n, int C, int HW) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C; ++c) {
            double acc = 0.0;
            for (int p = 0; p < HW; ++p) acc += double(g[(std::size_t(c) * n + i) * HW + p]);
            dcb[std::size_t(i) * C + c] = T(acc);
        }
}

namespace detail {
// Sample i of the per-sample prior (shared by the Reference loop and the Cpu backend's tasks).
template <class T>
void sample_prior_apply_row(int i, const T* src, T* dst, const T* stats, double* ld, int C, int HW, bool forward) {
    double total = 0.0;
    for (int c = 0; c < C; ++c) {
        const T m = stats[std::size_t(i) * 2 * C + c], s = stats[std::size_t(i) * 2 * C + C + c];
        const T e = std::exp(forward ? -s : s);
        total += double(s);
        for (int p = 0; p < HW; ++p) {
            const std::size_t k = (std::size_t(i) * C + c) * HW + p;
            dst[k] = forward ? (src[k] - m) * e : m + src[k] * e;
        }
    }
    ld[i] += (forward ? -1.0 : 1.0) * double(HW) * total;
}

template <class T>
void sample_prior_backward_row(int i, const T* eps, const T* deps, const T* dld, T* dz, const T* stats, T* dstats, int C,
                               int HW) {
    for (int c = 0; c < C; ++c) {
        const T e = std::exp(-stats[std::size_t(i) * 2 * C + C + c]);
        double gm = 0.0, gs = 0.0;
        for (int p = 0; p < HW; ++p) {
            const std::size_t k = (std::size_t(i) * C + c) * HW + p;
            dz[k] = deps[k] * e;
            gm -= double(deps[k] * e);
            gs -= double(deps[k]) * double(eps[k]);
        }
        dstats[std::size_t(i) * 2 * C + c] = T(gm);
        dstats[std::size_t(i) * 2 * C + C + c] = T(gs - double(HW) * double(dld[i]));
    }
}
}  // namespace detail

template <class T>
void sample_prior_apply(Reference, const T* src, T* dst, const T* stats, double* ld, int n, int C, int HW, bool forward) {
    for (int i = 0; i < n; ++i) detail::sample_prior_apply_row(i, src, dst, stats, ld, C, HW, forward);
}

template <class T>
void sample_prior_backward(Reference, const T* eps, const T* deps, const T* dld, T* dz, const T* stats, T* dstats, int n,
                           int C, int HW) {
    for (int i = 0; i < n; ++i) detail::sample_prior_backward_row(i, eps, deps, dld, dz, stats, dstats, C, HW);
}

}  // namespace bijou::kernels
