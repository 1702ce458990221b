// bijou/kernels/reference/priors.hpp — Glow's learned priors (bijectors/top_prior.hpp,
// bijectors/split.hpp), plain loops.
// Batches are NCHW (n, C, HW), element k = (i·C + c)·HW + p; mean, log_scale: (C). A Split's
// statistics are channel-major (C, m), m = n·HW: μ in rows [0, h), log σ in rows [h, C), h = C/2.
//   top_prior_apply      forward ε = (z − mean)·exp(−log_scale), inverse z = mean + ε·exp(log_scale)
//                        (the constant log-det is kernels::add_total, kernels/*/totals.hpp)
//   top_prior_backward   dz = dε·exp(−log_scale) (assigned); dmean += −Σ dε·exp(−log_scale);
//                        dlog_scale += −Σ dε·ε − HW·Σ_i dld_i
//   split_standardize    forward dst = [z1 | (z2 − μ)·exp(−log σ)], ld −= Σ log σ; inverse
//                        dst = [z1 | μ + ε·exp(log σ)], ld += Σ log σ (per sample, summed in double)
//   split_backward_stats for c ≥ h: dx = dout·exp(−log σ), dμ = −dout·exp(−log σ),
//                        dlog σ = −dout·out − dld (dx and the channel-major dstats assigned)
//   split_backward_pass  for c < h: dx = dout + dz1 (dz1 channel-major, the conv's input gradient)
// Exponentials are taken in double and rounded to T. Each kernel is a loop over a per-row body in
// `detail` (a (sample, channel) row, a channel, a sample); the Cpu backend (kernels/cpu/priors.hpp)
// runs the same bodies as OpenMP tasks, so the two agree bit for bit at every thread count.
#pragma once

#include <cmath>
#include <cstddef>

#include "bijou/core/backend.hpp"

namespace bijou::kernels {

namespace detail {

/// Row (sample i, channel c) of top_prior_apply: HW elements from k0 = (i·C + c)·HW.
template <class T>
void top_prior_apply_row(std::size_t k0, int c, const T* in, T* out, const T* mean, const T* log_scale, int HW,
                         bool forward) {
    if (forward) {
        const T inv = T(std::exp(-double(log_scale[c])));
        for (std::size_t k = k0; k < k0 + std::size_t(HW); ++k) out[k] = (in[k] - mean[c]) * inv;
    } else {
        const T sc = T(std::exp(double(log_scale[c])));
        for (std::size_t k = k0; k < k0 + std::size_t(HW); ++k) out[k] = mean[c] + in[k] * sc;
    }
}

/// Channel c of top_prior_backward (sum_dld = Σ_i dld_i).
template <class T>
void top_prior_backward_channel(int c, double sum_dld, const T* eps, const T* deps, T* dz, const T* log_scale,
                                T* dmean, T* dlog_scale, int n, int C, int HW) {
    const double inv = std::exp(-double(log_scale[c]));
    double gm = 0.0, gs = 0.0;
    for (int i = 0; i < n; ++i) {
        const std::size_t k0 = (std::size_t(i) * C + std::size_t(c)) * HW;
        for (std::size_t k = k0; k < k0 + std::size_t(HW); ++k) {
            dz[k] = T(double(deps[k]) * inv);
            gm -= double(deps[k]) * inv;
            gs -= double(deps[k]) * double(eps[k]);
        }
    }
    dmean[c] += T(gm);
    dlog_scale[c] += T(gs - sum_dld * HW);
}

/// Sample i of split_standardize: the first C/2 channels copied, the others standardised.
template <class T>
void split_standardize_sample(int i, const T* src, T* dst, const T* stats, double* ld, int n, int C, int HW,
                              bool forward) {
    const int Ch = C / 2;
    const std::size_t m = std::size_t(n) * HW, base = std::size_t(i) * C * HW;
    for (std::size_t k = base; k < base + std::size_t(Ch) * HW; ++k) dst[k] = src[k];
    double s = 0.0;
    for (int c = Ch; c < C; ++c) {
        const std::size_t k0 = base + std::size_t(c) * HW, q0 = std::size_t(c - Ch) * m + std::size_t(i) * HW;
        const T* mu = stats + q0;
        const T* ls = stats + Ch * m + q0;
        for (int p = 0; p < HW; ++p) {
            const std::size_t k = k0 + p;
            if (forward) dst[k] = (src[k] - mu[p]) * T(std::exp(-double(ls[p])));
            else dst[k] = mu[p] + src[k] * T(std::exp(double(ls[p])));
            s += double(ls[p]);
        }
    }
    ld[i] += forward ? -s : s;
}

/// Row (sample i, channel c ≥ C/2) of split_backward_stats.
template <class T>
void split_backward_stats_row(int i, int c, const T* out, const T* dout, const T* dld, const T* stats, T* dx,
                              T* dstats, int n, int C, int HW) {
    const int Ch = C / 2;
    const std::size_t m = std::size_t(n) * HW;
    for (int p = 0; p < HW; ++p) {
        const std::size_t k = (std::size_t(i) * C + c) * HW + p;
        const std::size_t q = std::size_t(c - Ch) * m + std::size_t(i) * HW + p;
        const T inv = T(std::exp(-double(stats[Ch * m + q])));
        dx[k] = dout[k] * inv;
        dstats[q] = -dout[k] * inv;
        dstats[Ch * m + q] = -dout[k] * out[k] - dld[i];
    }
}

/// Row (sample i, channel c < C/2) of split_backward_pass.
template <class T>
void split_backward_pass_row(int i, int c, const T* dout, const T* dz1, T* dx, int n, int C, int HW) {
    const std::size_t k0 = (std::size_t(i) * C + c) * HW;
    const T* d1 = dz1 + std::size_t(c) * (std::size_t(n) * HW) + std::size_t(i) * HW;
#pragma omp simd
    for (int p = 0; p < HW; ++p) dx[k0 + p] = dout[k0 + p] + d1[p];
}

}  // namespace detail

template <class T>
void top_prior_apply(Reference, const T* in, T* out, const T* mean, const T* log_scale, int n, int C, int HW,
                     bool forward) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C; ++c)
            detail::top_prior_apply_row((std::size_t(i) * C + std::size_t(c)) * HW, c, in, out, mean, log_scale, HW,
                                        forward);
}

template <class T>
void top_prior_backward(Reference, const T* eps, const T* deps, const T* dld, T* dz, const T* log_scale, T* dmean,
                        T* dlog_scale, int n, int C, int HW) {
    double sum_dld = 0.0;
    for (int i = 0; i < n; ++i) sum_dld += double(dld[i]);
    for (int c = 0; c < C; ++c)
        detail::top_prior_backward_channel(c, sum_dld, eps, deps, dz, log_scale, dmean, dlog_scale, n, C, HW);
}

template <class T>
void split_standardize(Reference, const T* src, T* dst, const T* stats, double* ld, int n, int C, int HW,
                       bool forward) {
    for (int i = 0; i < n; ++i) detail::split_standardize_sample(i, src, dst, stats, ld, n, C, HW, forward);
}

template <class T>
void split_backward_stats(Reference, const T* out, const T* dout, const T* dld, const T* stats, T* dx, T* dstats,
                          int n, int C, int HW) {
    for (int i = 0; i < n; ++i)
        for (int c = C / 2; c < C; ++c) detail::split_backward_stats_row(i, c, out, dout, dld, stats, dx, dstats, n, C, HW);
}

template <class T>
void split_backward_pass(Reference, const T* dout, const T* dz1, T* dx, int n, int C, int HW) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C / 2; ++c) detail::split_backward_pass_row(i, c, dout, dz1, dx, n, C, HW);
}

}  // namespace bijou::kernels
