// bijou/kernels/cuda/priors.hpp — Glow's learned priors for the Cuda backend (and CudaHost):
// the elementwise and reduction parts of bijectors/top_prior.hpp and bijectors/split.hpp, with the
// formulas written there. Batches are NCHW (n, C, HW); a Split's statistics are channel-major
// (C, n·HW): μ in rows [0, h), log σ in rows [h, C), h = C/2; m = n·HW.
//   top_prior_apply      forward ε = (z − mean)·exp(−log_scale), inverse z = mean + ε·exp(log_scale)
//   top_prior_backward   dz = dε·exp(−log_scale); dmean += −Σ dε·exp(−log_scale); dlog_scale += −Σ dε·ε
//                        (one block per channel; the −HW·Σ dld term is added by the caller)
//   split_standardize    forward [z1 | (z2 − μ)·exp(−log σ)], ld −= Σ log σ; inverse
//                        [z1 | μ + ε·exp(log σ)], ld += Σ log σ (one block per sample)
//   split_backward_stats for c ≥ h: dx = dout·exp(−log σ), dμ = −dout·exp(−log σ),
//                        dlog σ = −dout·out − dld (one thread per element)
//   split_backward_pass  for c < h: dx = dout + dz1 (dz1 channel-major)
#pragma once

#include <cstddef>

#include "bijou/kernels/cuda/actnorm.hpp"
#include "bijou/kernels/cuda/exec.hpp"

namespace bijou::kernels::cuda_body {

template <class X, class T>
void top_prior_apply(X, const T* in, T* out, const T* mean, const T* log_scale, int n, int C, int HW, bool forward) {
    X::for_each(std::size_t(n) * C * HW, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        const int c = int((k / std::size_t(HW)) % std::size_t(C));
        const double ls = double(log_scale[c]);
        out[k] = forward ? (in[k] - mean[c]) * T(math::exp(-ls)) : mean[c] + in[k] * T(math::exp(ls));
    });
}

template <class X, class T>
void top_prior_backward(X, const T* eps, const T* deps, T* dz, const T* log_scale, T* dmean, T* dlog_scale, int n,
                        int C, int HW) {
    X::for_each(std::size_t(n) * C * HW, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        dz[k] = T(double(deps[k]) * math::exp(-double(log_scale[channel_at(k, C, HW)])));
    });
    X::segment_reduce(
        C,
        [=] BIJOU_HD_LAMBDA(int c, std::size_t part, std::size_t parts, double& gd, double& ge) {
            actnorm_grad_partial(c, part, parts, eps, deps, n, C, HW, gd, ge);  // Σ dε, Σ dε·ε per channel
        },
        [=] BIJOU_HD_LAMBDA(int c, double gd, double ge) {
            dmean[c] += T(-gd * math::exp(-double(log_scale[c])));
            dlog_scale[c] += T(-ge);
        });
}

template <class X, class T>
void split_standardize(X, const T* src, T* dst, const T* stats, double* ld, int n, int C, int HW, bool forward) {
    const int Ch = C / 2;
    const std::size_t per = std::size_t(C) * HW, m = std::size_t(n) * HW;
    per_sample_log_det(X{}, n, per, ld, forward ? -1.0 : 1.0, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        const std::size_t i = k / per, e = k % per, p = e % std::size_t(HW);
        const int c = int(e / std::size_t(HW));
        if (c < Ch) {
            dst[k] = src[k];
            return T(0);
        }
        const std::size_t q = std::size_t(c - Ch) * m + i * std::size_t(HW) + p;
        const T ls = stats[std::size_t(Ch) * m + q];
        dst[k] = forward ? (src[k] - stats[q]) * T(math::exp(-double(ls))) : stats[q] + src[k] * T(math::exp(double(ls)));
        return ls;
    });
}

template <class X, class T>
void split_backward_stats(X, const T* out, const T* dout, const T* dld, const T* stats, T* dx, T* dstats, int n, int C,
                          int HW) {
    const int Ch = C / 2;
    const std::size_t m = std::size_t(n) * HW, half = std::size_t(C - Ch) * HW;
    X::for_each(std::size_t(n) * half, [=] BIJOU_HD_LAMBDA(std::size_t e) {
        const std::size_t i = e / half, r = e % half;
        const int c = Ch + int(r / std::size_t(HW));
        const std::size_t p = r % std::size_t(HW);
        const std::size_t k = (i * std::size_t(C) + std::size_t(c)) * std::size_t(HW) + p;
        const std::size_t q = std::size_t(c - Ch) * m + i * std::size_t(HW) + p;
        const T inv = T(math::exp(-double(stats[std::size_t(Ch) * m + q])));
        dx[k] = dout[k] * inv;
        dstats[q] = -dout[k] * inv;
        dstats[std::size_t(Ch) * m + q] = -dout[k] * out[k] - dld[i];
    });
}

template <class X, class T>
void split_backward_pass(X, const T* dout, const T* dz1, T* dx, int n, int C, int HW) {
    const int Ch = C / 2;
    const std::size_t m = std::size_t(n) * HW, half = std::size_t(Ch) * HW;
    X::for_each(std::size_t(n) * half, [=] BIJOU_HD_LAMBDA(std::size_t e) {
        const std::size_t i = e / half, r = e % half;
        const std::size_t c = r / std::size_t(HW), p = r % std::size_t(HW);
        const std::size_t k = (i * std::size_t(C) + c) * std::size_t(HW) + p;
        dx[k] = dout[k] + dz1[c * m + i * std::size_t(HW) + p];
    });
}

}  // namespace bijou::kernels::cuda_body
