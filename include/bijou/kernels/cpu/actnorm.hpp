// bijou/kernels/cpu/actnorm.hpp — ActNorm for the Cpu backend (OpenMP over samples, SIMD over pixels).
// Same contracts as kernels/reference/actnorm.hpp. Parameter-gradient reductions run per channel in
// a fixed order, so results do not depend on the thread count.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/reference/actnorm.hpp"

namespace bijou::kernels {

template <class T>
void actnorm_forward(Cpu, const T* x, T* z, const T* loc, const T* log_scale, int n, int C, int HW) {
    bijou::detail::parallel_for(int(n), std::size_t(n) * C * HW > 32768, [&](int i) {
        for (int c = 0; c < C; ++c) {
            const T s = std::exp(log_scale[c]), b = loc[c];
            const std::size_t o = (std::size_t(i) * C + c) * HW;
#pragma omp simd
            for (int p = 0; p < HW; ++p) z[o + p] = (x[o + p] + b) * s;
        }
    });
}

template <class T>
void actnorm_inverse(Cpu, const T* z, T* x, const T* loc, const T* log_scale, int n, int C, int HW) {
    bijou::detail::parallel_for(int(n), std::size_t(n) * C * HW > 32768, [&](int i) {
        for (int c = 0; c < C; ++c) {
            const T s = std::exp(-log_scale[c]), b = loc[c];
            const std::size_t o = (std::size_t(i) * C + c) * HW;
#pragma omp simd
            for (int p = 0; p < HW; ++p) x[o + p] = z[o + p] * s - b;
        }
    });
}

template <class T>
void actnorm_backward(Cpu, const T* z, const T* dz, T* dx, const T* log_scale, T* dloc, T* dlog_scale, int n, int C,
                      int HW) {
    bijou::detail::parallel_for(int(C), std::size_t(n) * C * HW > 32768, [&](int c) {
        const T s = std::exp(log_scale[c]);
        double gl = 0.0, gs = 0.0;
        for (int i = 0; i < n; ++i) {
            const std::size_t o = (std::size_t(i) * C + c) * HW;
            T al = 0, as = 0;
#pragma omp simd reduction(+ : al, as)
            for (int p = 0; p < HW; ++p) {
                dx[o + p] = dz[o + p] * s;
                al += dz[o + p];
                as += dz[o + p] * z[o + p];
            }
            gl += double(al) * s;
            gs += double(as);
        }
        dloc[c] += T(gl);
        dlog_scale[c] += T(gs);
    });
}

template <class T>
void channel_moments(Cpu, const T* x, double* mean, double* stddev, int n, int C, int HW) {
    channel_moments(Reference{}, x, mean, stddev, n, C, HW);  // once per model: no need to be fast
}

}  // namespace bijou::kernels
