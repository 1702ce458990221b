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
// Exponentials are taken in double and rounded to T.
#pragma once

#include <cmath>
#include <cstddef>

#include "bijou/core/backend.hpp"

namespace bijou::kernels {

template <class T>
void top_prior_apply(Reference, const T* in, T* out, const T* mean, const T* log_scale, int n, int C, int HW,
                     bool forward) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C; ++c) {
            const std::size_t k0 = (std::size_t(i) * C + std::size_t(c)) * HW;
            for (std::size_t k = k0; k < k0 + HW; ++k) {
                if (forward) out[k] = (in[k] - mean[c]) * T(std::exp(-double(log_scale[c])));
                else out[k] = mean[c] + in[k] * T(std::exp(double(log_scale[c])));
            }
        }
}

template <class T>
void top_prior_backward(Reference, const T* eps, const T* deps, const T* dld, T* dz, const T* log_scale, T* dmean,
                        T* dlog_scale, int n, int C, int HW) {
    double sum_dld = 0.0;
    for (int i = 0; i < n; ++i) sum_dld += double(dld[i]);
    for (int c = 0; c < C; ++c) {
        const double inv = std::exp(-double(log_scale[c]));
        double gm = 0.0, gs = 0.0;
        for (int i = 0; i < n; ++i) {
            const std::size_t k0 = (std::size_t(i) * C + std::size_t(c)) * HW;
            for (std::size_t k = k0; k < k0 + HW; ++k) {
                dz[k] = T(double(deps[k]) * inv);
                gm -= double(deps[k]) * inv;
                gs -= double(deps[k]) * double(eps[k]);
            }
        }
        dmean[c] += T(gm);
        dlog_scale[c] += T(gs - sum_dld * HW);
    }
}

template <class T>
void split_standardize(Reference, const T* src, T* dst, const T* stats, double* ld, int n, int C, int HW,
                       bool forward) {
    const int Ch = C / 2;
    const std::size_t m = std::size_t(n) * HW;
    for (int i = 0; i < n; ++i) {
        double s = 0.0;
        for (int c = 0; c < C; ++c)
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = (std::size_t(i) * C + c) * HW + p;
                if (c < Ch) {
                    dst[k] = src[k];
                    continue;
                }
                const std::size_t q = std::size_t(c - Ch) * m + std::size_t(i) * HW + p;
                const T ls = stats[Ch * m + q];
                if (forward) dst[k] = (src[k] - stats[q]) * T(std::exp(-double(ls)));
                else dst[k] = stats[q] + src[k] * T(std::exp(double(ls)));
                s += double(ls);
            }
        ld[i] += forward ? -s : s;
    }
}

template <class T>
void split_backward_stats(Reference, const T* out, const T* dout, const T* dld, const T* stats, T* dx, T* dstats,
                          int n, int C, int HW) {
    const int Ch = C / 2;
    const std::size_t m = std::size_t(n) * HW;
    for (int i = 0; i < n; ++i)
        for (int c = Ch; c < C; ++c)
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = (std::size_t(i) * C + c) * HW + p;
                const std::size_t q = std::size_t(c - Ch) * m + std::size_t(i) * HW + p;
                const T inv = T(std::exp(-double(stats[Ch * m + q])));
                dx[k] = dout[k] * inv;
                dstats[q] = -dout[k] * inv;
                dstats[Ch * m + q] = -dout[k] * out[k] - dld[i];
            }
}

template <class T>
void split_backward_pass(Reference, const T* dout, const T* dz1, T* dx, int n, int C, int HW) {
    const int Ch = C / 2;
    const std::size_t m = std::size_t(n) * HW;
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < Ch; ++c)
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = (std::size_t(i) * C + c) * HW + p;
                dx[k] = dout[k] + dz1[std::size_t(c) * m + std::size_t(i) * HW + p];
            }
}

}  // namespace bijou::kernels
