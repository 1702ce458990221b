// bijou/kernels/cpu/context.hpp — the per-sample channel bias of kernels/reference/context.hpp for the
// Cpu backend: one (channel, sample) plane of HW values per task, SIMD inside. The gradient sums each
// plane in p order in double, as the Reference kernel does, so it is bit-for-bit identical to it. The
// per-sample prior: one sample per task, the same operations in the same order as the Reference kernels.
#pragma once

#include <cmath>
#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"

namespace bijou::kernels {

template <class T>
void context_bias(Cpu, T* y, const T* cb, int n, int C, int HW, bool relu) {
    const std::ptrdiff_t planes = std::ptrdiff_t(C) * n;
    bijou::detail::parallel_for(planes, std::size_t(planes) * HW >= 65536, [&](std::ptrdiff_t t) {
        const std::size_t c = std::size_t(t) / std::size_t(n), i = std::size_t(t) % std::size_t(n);
        T* r = y + std::size_t(t) * HW;
        const T b = cb[i * C + c];
        if (relu) {
#pragma omp simd
            for (int p = 0; p < HW; ++p) {
                const T v = r[p] + b;
                r[p] = v < T(0) ? T(0) : v;  // NaN passes through
            }
        } else {
#pragma omp simd
            for (int p = 0; p < HW; ++p) r[p] += b;
        }
    });
}

template <class T>
void context_bias_grad(Cpu, const T* g, T* dcb, int n, int C, int HW) {
    const std::ptrdiff_t planes = std::ptrdiff_t(C) * n;
    bijou::detail::parallel_for(planes, std::size_t(planes) * HW >= 65536, [&](std::ptrdiff_t t) {
        const std::size_t c = std::size_t(t) / std::size_t(n), i = std::size_t(t) % std::size_t(n);
        const T* r = g + std::size_t(t) * HW;
        double acc = 0.0;
        for (int p = 0; p < HW; ++p) acc += double(r[p]);
        dcb[i * C + c] = T(acc);
    });
}

template <class T>
void sample_prior_apply(Cpu, const T* src, T* dst, const T* stats, double* ld, int n, int C, int HW, bool forward) {
    bijou::detail::parallel_for(n, std::size_t(n) * C * HW >= 65536, [&](int i) {
        double total = 0.0;
        for (int c = 0; c < C; ++c) {
            const T m = stats[std::size_t(i) * 2 * C + c], s = stats[std::size_t(i) * 2 * C + C + c];
            const T e = std::exp(forward ? -s : s);
            total += double(s);
            const std::size_t k0 = (std::size_t(i) * C + c) * HW;
            if (forward) {
#pragma omp simd
                for (int p = 0; p < HW; ++p) dst[k0 + p] = (src[k0 + p] - m) * e;
            } else {
#pragma omp simd
                for (int p = 0; p < HW; ++p) dst[k0 + p] = m + src[k0 + p] * e;
            }
        }
        ld[i] += (forward ? -1.0 : 1.0) * double(HW) * total;
    });
}

template <class T>
void sample_prior_backward(Cpu, const T* eps, const T* deps, const T* dld, T* dz, const T* stats, T* dstats, int n,
                           int C, int HW) {
    bijou::detail::parallel_for(n, std::size_t(n) * C * HW >= 65536, [&](int i) {
        for (int c = 0; c < C; ++c) {
            const T e = std::exp(-stats[std::size_t(i) * 2 * C + C + c]);
            double gm = 0.0, gs = 0.0;
            const std::size_t k0 = (std::size_t(i) * C + c) * HW;
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = k0 + p;
                dz[k] = deps[k] * e;
                gm -= double(deps[k] * e);
                gs -= double(deps[k]) * double(eps[k]);
            }
            dstats[std::size_t(i) * 2 * C + c] = T(gm);
            dstats[std::size_t(i) * 2 * C + C + c] = T(gs - double(HW) * double(dld[i]));
        }
    });
}

}  // namespace bijou::kernels
