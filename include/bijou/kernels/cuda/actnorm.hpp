// bijou/kernels/cuda/actnorm.hpp — ActNorm for the Cuda backend (and CudaHost): the contracts of
// kernels/reference/actnorm.hpp with the executor's pointers (device pointers on Cuda), except
// channel_sums' sums, a HOST array (read once, at initialisation; that call
// allocates 2·C doubles on the executor and waits for them). Elementwise passes are one thread per
// element; the parameter gradients and the moments are one block per channel, summed in double.
//
// The bodies: x, z, dz: (n, C, HW), element k = (i·C + c)·HW + p; loc, log_scale: (C). Same formulas as
// kernels/reference/actnorm.hpp:
//   actnorm_forward_at   z[k] = (x[k] + loc[c])·exp(log_scale[c])
//   actnorm_inverse_at   x[k] = z[k]·exp(−log_scale[c]) − loc[c]
//   actnorm_dx_at        dx[k] = dz[k]·exp(log_scale[c])
//   actnorm_grad_partial adds Σ dz and Σ dz·z over channel c's elements e = part, part + parts, …
//                        (e indexes the channel's n·HW elements) to gl, gs: a thread's share of the
//                        parameter-gradient reduction (the executor sums the shares).
//   channel_moments_partial  likewise Σ x and Σ x² (for initialize).
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "bijou/kernels/cuda/exec.hpp"

namespace bijou::kernels::cuda_body {

/// Channel of element k of an (n, C, HW) batch.
BIJOU_HD int channel_at(std::size_t k, int C, int HW) { return int((k / std::size_t(HW)) % std::size_t(C)); }

/// Element e (0 ≤ e < n·HW) of channel c: its index in the (n, C, HW) batch.
BIJOU_HD std::size_t channel_element(int c, std::size_t e, int C, int HW) {
    const std::size_t i = e / std::size_t(HW), p = e % std::size_t(HW);
    return (i * std::size_t(C) + std::size_t(c)) * std::size_t(HW) + p;
}

template <class T>
BIJOU_HD T actnorm_forward_at(std::size_t k, const T* x, const T* loc, const T* log_scale, int C, int HW) {
    const int c = channel_at(k, C, HW);
    return (x[k] + loc[c]) * math::exp(log_scale[c]);
}

template <class T>
BIJOU_HD T actnorm_inverse_at(std::size_t k, const T* z, const T* loc, const T* log_scale, int C, int HW) {
    const int c = channel_at(k, C, HW);
    return z[k] * math::exp(-log_scale[c]) - loc[c];
}

template <class T>
BIJOU_HD T actnorm_dx_at(std::size_t k, const T* dz, const T* log_scale, int C, int HW) {
    return dz[k] * math::exp(log_scale[channel_at(k, C, HW)]);
}

template <class T>
BIJOU_HD void actnorm_grad_partial(int c, std::size_t part, std::size_t parts, const T* z, const T* dz, int n, int C,
                                   int HW, double& gl, double& gs) {
    const std::size_t count = std::size_t(n) * std::size_t(HW);
    for (std::size_t e = part; e < count; e += parts) {
        const std::size_t k = channel_element(c, e, C, HW);
        gl += double(dz[k]);
        gs += double(dz[k]) * double(z[k]);
    }
}

template <class T>
BIJOU_HD void channel_moments_partial(int c, std::size_t part, std::size_t parts, const T* x, int n, int C, int HW,
                                      double& s, double& ss) {
    const std::size_t count = std::size_t(n) * std::size_t(HW);
    for (std::size_t e = part; e < count; e += parts) {
        const double v = double(x[channel_element(c, e, C, HW)]);
        s += v;
        ss += v * v;
    }
}

template <class T>
BIJOU_HD void actnorm_grad_finish(int c, double gl, double gs, const T* log_scale, T* dloc, T* dlog_scale) {
    dloc[c] += T(gl * math::exp(double(log_scale[c])));
    dlog_scale[c] += T(gs);
}

// ---- the kernels, on executor X (kernels/cuda/exec.hpp) ----

template <class X, class T>
void actnorm_forward(X, const T* x, T* z, const T* loc, const T* log_scale, int n, int C, int HW) {
    X::for_each(std::size_t(n) * C * HW,
                [=] BIJOU_HD_LAMBDA(std::size_t k) { z[k] = actnorm_forward_at(k, x, loc, log_scale, C, HW); });
}

template <class X, class T>
void actnorm_inverse(X, const T* z, T* x, const T* loc, const T* log_scale, int n, int C, int HW) {
    X::for_each(std::size_t(n) * C * HW,
                [=] BIJOU_HD_LAMBDA(std::size_t k) { x[k] = actnorm_inverse_at(k, z, loc, log_scale, C, HW); });
}

template <class X, class T>
void actnorm_backward(X, const T* z, const T* dz, T* dx, const T* log_scale, T* dloc, T* dlog_scale, int n, int C,
                      int HW) {
    X::for_each(std::size_t(n) * C * HW,
                [=] BIJOU_HD_LAMBDA(std::size_t k) { dx[k] = actnorm_dx_at(k, dz, log_scale, C, HW); });
    X::segment_reduce(
        C,
        [=] BIJOU_HD_LAMBDA(int c, std::size_t part, std::size_t parts, double& gl, double& gs) {
            actnorm_grad_partial(c, part, parts, z, dz, n, C, HW, gl, gs);
        },
        [=] BIJOU_HD_LAMBDA(int c, double gl, double gs) {
            actnorm_grad_finish(c, gl, gs, log_scale, dloc, dlog_scale);
        });
}

/// sums (2C, executor memory): Σ x and Σ x² of each channel, interleaved.
template <class X, class T>
void channel_sums(X, const T* x, double* sums, int n, int C, int HW) {
    X::segment_reduce(
        C,
        [=] BIJOU_HD_LAMBDA(int c, std::size_t part, std::size_t parts, double& s, double& ss) {
            channel_moments_partial(c, part, parts, x, n, C, HW, s, ss);
        },
        [=] BIJOU_HD_LAMBDA(int c, double s, double ss) {
            sums[2 * c] = s;
            sums[2 * c + 1] = ss;
        });
}

}  // namespace bijou::kernels::cuda_body

namespace bijou::kernels {

template <ExecutorBackend B, class T>
void actnorm_forward(B, const T* x, T* z, const T* loc, const T* log_scale, int n, int C, int HW) {
    cuda_body::actnorm_forward(typename B::executor{}, x, z, loc, log_scale, n, C, HW);
}

template <ExecutorBackend B, class T>
void actnorm_inverse(B, const T* z, T* x, const T* loc, const T* log_scale, int n, int C, int HW) {
    cuda_body::actnorm_inverse(typename B::executor{}, z, x, loc, log_scale, n, C, HW);
}

template <ExecutorBackend B, class T>
void actnorm_backward(B, const T* z, const T* dz, T* dx, const T* log_scale, T* dloc, T* dlog_scale, int n, int C,
                      int HW) {
    cuda_body::actnorm_backward(typename B::executor{}, z, dz, dx, log_scale, dloc, dlog_scale, n, C, HW);
}

template <ExecutorBackend B, class T>
void channel_sums(B, const T* x, double* sums, int n, int C, int HW) {
    using X = typename B::executor;
    auto device = X::template make_buffer<double>(2 * std::size_t(C));
    cuda_body::channel_sums(X{}, x, device.data(), n, C, HW);
    X::copy_to_host(sums, device.data(), 2 * std::size_t(C));
}

}  // namespace bijou::kernels
