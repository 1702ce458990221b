// bijou/kernels/cuda/priors.hpp — Glow's learned priors for the Cuda backend (and CudaHost): the
// contracts of kernels/reference/priors.hpp on executor memory. Batches are NCHW (n, C, HW); a
// Split's statistics are channel-major (C, n·HW): μ in rows [0, h), log σ in rows [h, C), h = C/2;
// m = n·HW.
//   top_prior_apply      one thread per element
//   top_prior_backward   dz one thread per element; dmean, dlog_scale one block per channel, then the
//                        −HW·Σ dld term as kernels::add_total (kernels/cuda/totals.hpp)
//   split_standardize    one block per sample (the log-det summed in double)
//   split_backward_stats, split_backward_pass   one thread per element
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/kernels/cuda/actnorm.hpp"
#include "bijou/kernels/cuda/exec.hpp"
#include "bijou/kernels/cuda/totals.hpp"

namespace bijou::kernels {

template <ExecutorBackend B, class T>
void top_prior_apply(B, const T* in, T* out, const T* mean, const T* log_scale, int n, int C, int HW, bool forward) {
    B::executor::for_each(std::size_t(n) * C * HW, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        const int c = int((k / std::size_t(HW)) % std::size_t(C));
        const double ls = double(log_scale[c]);
        out[k] = forward ? (in[k] - mean[c]) * T(cuda_body::math::exp(-ls))
                         : mean[c] + in[k] * T(cuda_body::math::exp(ls));
    });
}

template <ExecutorBackend B, class T>
void top_prior_backward(B, const T* eps, const T* deps, const T* dld, T* dz, const T* log_scale, T* dmean,
                        T* dlog_scale, int n, int C, int HW) {
    using X = typename B::executor;
    X::for_each(std::size_t(n) * C * HW, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        dz[k] = T(double(deps[k]) * cuda_body::math::exp(-double(log_scale[cuda_body::channel_at(k, C, HW)])));
    });
    X::segment_reduce(
        C,
        [=] BIJOU_HD_LAMBDA(int c, std::size_t part, std::size_t parts, double& gd, double& ge) {
            // Σ dε, Σ dε·ε per channel
            cuda_body::actnorm_grad_partial(c, part, parts, eps, deps, n, C, HW, gd, ge);
        },
        [=] BIJOU_HD_LAMBDA(int c, double gd, double ge) {
            dmean[c] += T(-gd * cuda_body::math::exp(-double(log_scale[c])));
            dlog_scale[c] += T(-ge);
        });
    add_total(B{}, dlog_scale, std::size_t(C), dld, std::size_t(n), -double(HW));
}

template <ExecutorBackend B, class T>
void split_standardize(B, const T* src, T* dst, const T* stats, double* ld, int n, int C, int HW, bool forward) {
    using X = typename B::executor;
    const int Ch = C / 2;
    const std::size_t per = std::size_t(C) * HW, m = std::size_t(n) * HW;
    cuda_body::per_sample_log_det(X{}, n, per, ld, forward ? -1.0 : 1.0, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        const std::size_t i = k / per, e = k % per, p = e % std::size_t(HW);
        const int c = int(e / std::size_t(HW));
        if (c < Ch) {
            dst[k] = src[k];
            return T(0);
        }
        const std::size_t q = std::size_t(c - Ch) * m + i * std::size_t(HW) + p;
        const T ls = stats[std::size_t(Ch) * m + q];
        dst[k] = forward ? (src[k] - stats[q]) * T(cuda_body::math::exp(-double(ls)))
                         : stats[q] + src[k] * T(cuda_body::math::exp(double(ls)));
        return ls;
    });
}

template <ExecutorBackend B, class T>
void split_backward_stats(B, const T* out, const T* dout, const T* dld, const T* stats, T* dx, T* dstats, int n, int C,
                          int HW) {
    const int Ch = C / 2;
    const std::size_t m = std::size_t(n) * HW, half = std::size_t(C - Ch) * HW;
    B::executor::for_each(std::size_t(n) * half, [=] BIJOU_HD_LAMBDA(std::size_t e) {
        const std::size_t i = e / half, r = e % half;
        const int c = Ch + int(r / std::size_t(HW));
        const std::size_t p = r % std::size_t(HW);
        const std::size_t k = (i * std::size_t(C) + std::size_t(c)) * std::size_t(HW) + p;
        const std::size_t q = std::size_t(c - Ch) * m + i * std::size_t(HW) + p;
        const T inv = T(cuda_body::math::exp(-double(stats[std::size_t(Ch) * m + q])));
        dx[k] = dout[k] * inv;
        dstats[q] = -dout[k] * inv;
        dstats[std::size_t(Ch) * m + q] = -dout[k] * out[k] - dld[i];
    });
}

template <ExecutorBackend B, class T>
void split_backward_pass(B, const T* dout, const T* dz1, T* dx, int n, int C, int HW) {
    const int Ch = C / 2;
    const std::size_t m = std::size_t(n) * HW, half = std::size_t(Ch) * HW;
    B::executor::for_each(std::size_t(n) * half, [=] BIJOU_HD_LAMBDA(std::size_t e) {
        const std::size_t i = e / half, r = e % half;
        const std::size_t c = r / std::size_t(HW), p = r % std::size_t(HW);
        const std::size_t k = (i * std::size_t(C) + c) * std::size_t(HW) + p;
        dx[k] = dout[k] + dz1[c * m + i * std::size_t(HW) + p];
    });
}

}  // namespace bijou::kernels
