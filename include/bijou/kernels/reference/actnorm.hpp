// bijou/kernels/reference/actnorm.hpp — ActNorm, plain loops.
// x, z: (n, C, HW) with HW = 1 for vectors; loc, log_scale: (C).
// forward z = (x + loc)·exp(log_scale); inverse x = z·exp(−log_scale) − loc.
#pragma once

#include <cmath>
#include <cstddef>

#include "bijou/core/backend.hpp"

namespace bijou::kernels {

template <class T>
void actnorm_forward(Reference, const T* x, T* z, const T* loc, const T* log_scale, int n, int C, int HW) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C; ++c)
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = (std::size_t(i) * C + c) * HW + p;
                z[k] = (x[k] + loc[c]) * std::exp(log_scale[c]);
            }
}

template <class T>
void actnorm_inverse(Reference, const T* z, T* x, const T* loc, const T* log_scale, int n, int C, int HW) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C; ++c)
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = (std::size_t(i) * C + c) * HW + p;
                x[k] = z[k] * std::exp(-log_scale[c]) - loc[c];
            }
}

/// dx = dz·exp(log_scale); dloc += Σ dz·exp(log_scale); dlog_scale += Σ dz·z (data term only).
template <class T>
void actnorm_backward(Reference, const T* z, const T* dz, T* dx, const T* log_scale, T* dloc, T* dlog_scale, int n,
                      int C, int HW) {
    for (int c = 0; c < C; ++c) {
        const T s = std::exp(log_scale[c]);
        double gl = 0.0, gs = 0.0;
        for (int i = 0; i < n; ++i)
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = (std::size_t(i) * C + c) * HW + p;
                dx[k] = dz[k] * s;
                gl += double(dz[k]) * s;
                gs += double(dz[k]) * z[k];
            }
        dloc[c] += T(gl);
        dlog_scale[c] += T(gs);
    }
}

/// Per-channel Σ x and Σ x² over (n, HW), in double, interleaved: sums (2C, host memory).
template <class T>
void channel_sums(Reference, const T* x, double* sums, int n, int C, int HW) {
    for (int c = 0; c < C; ++c) {
        double s = 0.0, ss = 0.0;
        for (int i = 0; i < n; ++i)
            for (int p = 0; p < HW; ++p) {
                const double v = x[(std::size_t(i) * C + c) * HW + p];
                s += v;
                ss += v * v;
            }
        sums[2 * c] = s;
        sums[2 * c + 1] = ss;
    }
}

}  // namespace bijou::kernels
