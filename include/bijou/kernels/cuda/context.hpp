// bijou/kernels/cuda/context.hpp — the per-sample channel bias of kernels/reference/context.hpp for the
// Cuda backend (and CudaHost): one thread per element for the bias; the gradient one segment per
// (sample, channel) plane, each thread summing its share of the plane in double. The per-sample prior:
// one thread per element, the log-det one segment per sample; its backward one thread per element for
// dz and one segment per (sample, channel) for the statistics' gradients.
#pragma once

#include <cstddef>

#include "bijou/kernels/cuda/exec.hpp"

namespace bijou::kernels {

template <ExecutorBackend B, class T>
void context_bias(B, T* y, const T* cb, int n, int C, int HW, bool relu) {
    const std::size_t nhw = std::size_t(n) * HW;
    B::executor::for_each(std::size_t(C) * nhw, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        const std::size_t c = k / nhw, i = (k % nhw) / std::size_t(HW);
        const T v = y[k] + cb[i * std::size_t(C) + c];
        y[k] = relu && v < T(0) ? T(0) : v;  // NaN passes through
    });
}

template <ExecutorBackend B, class T>
void context_bias_grad(B, const T* g, T* dcb, int n, int C, int HW) {
    B::executor::segment_reduce(
        C * n,
        [=] BIJOU_HD_LAMBDA(int s, std::size_t part, std::size_t parts, double& a, double&) {
            const T* r = g + std::size_t(s) * HW;  // plane s = c·n + i
            for (std::size_t p = part; p < std::size_t(HW); p += parts) a += double(r[p]);
        },
        [=] BIJOU_HD_LAMBDA(int s, double a, double) {
            const int c = s / n, i = s % n;
            dcb[std::size_t(i) * C + c] = T(a);
        });
}

template <ExecutorBackend B, class T>
void sample_prior_apply(B, const T* src, T* dst, const T* stats, double* ld, int n, int C, int HW, bool forward) {
    const std::size_t chw = std::size_t(C) * HW;
    B::executor::for_each(std::size_t(n) * chw, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        const std::size_t i = k / chw, c = (k % chw) / std::size_t(HW);
        const T m = stats[i * 2 * C + c], s = stats[i * 2 * C + C + c];
        dst[k] = forward ? (src[k] - m) * cuda_body::math::exp(-s) : m + src[k] * cuda_body::math::exp(s);
    });
    B::executor::segment_reduce(
        n,
        [=] BIJOU_HD_LAMBDA(int i, std::size_t part, std::size_t parts, double& a, double&) {
            for (std::size_t c = part; c < std::size_t(C); c += parts) a += double(stats[std::size_t(i) * 2 * C + C + c]);
        },
        [=] BIJOU_HD_LAMBDA(int i, double a, double) { ld[i] += (forward ? -1.0 : 1.0) * double(HW) * a; });
}

template <ExecutorBackend B, class T>
void sample_prior_backward(B, const T* eps, const T* deps, const T* dld, T* dz, const T* stats, T* dstats, int n, int C,
                           int HW) {
    const std::size_t chw = std::size_t(C) * HW;
    B::executor::for_each(std::size_t(n) * chw, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        const std::size_t i = k / chw, c = (k % chw) / std::size_t(HW);
        dz[k] = deps[k] * cuda_body::math::exp(-stats[i * 2 * C + C + c]);
    });
    B::executor::segment_reduce(
        n * C,
        [=] BIJOU_HD_LAMBDA(int s, std::size_t part, std::size_t parts, double& a, double& b) {
            const int i = s / C, c = s % C;
            const T e = cuda_body::math::exp(-stats[std::size_t(i) * 2 * C + C + c]);
            const std::size_t k0 = std::size_t(s) * HW;  // (i·C + c)·HW
            for (std::size_t p = part; p < std::size_t(HW); p += parts) {
                a -= double(deps[k0 + p] * e);
                b -= double(deps[k0 + p]) * double(eps[k0 + p]);
            }
        },
        [=] BIJOU_HD_LAMBDA(int s, double a, double b) {
            const int i = s / C, c = s % C;
            dstats[std::size_t(i) * 2 * C + c] = T(a);
            dstats[std::size_t(i) * 2 * C + C + c] = T(b - double(HW) * double(dld[i]));
        });
}

}  // namespace bijou::kernels
