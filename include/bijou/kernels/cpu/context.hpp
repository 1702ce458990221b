// bijou/kernels/cpu/context.hpp — the per-sample channel bias of kernels/reference/context.hpp for the
// Cpu backend: one (channel, sample) plane of HW values per task, SIMD inside. The gradient sums each
// plane in p order in double, as the Reference kernel does, so it is bit-for-bit identical to it. The
// per-sample prior: one sample per task, running the Reference kernels' per-sample body.
#pragma once

#include <cmath>
#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/reference/context.hpp"  // the per-sample bodies the prior's tasks share

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
    bijou::detail::parallel_for(n, std::size_t(n) * C * HW >= 65536,
                                [&](int i) { detail::sample_prior_apply_row(i, src, dst, stats, ld, C, HW, forward); });
}

template <class T>
void sample_prior_backward(Cpu, const T* eps, const T* deps, const T* dld, T* dz, const T* stats, T* dstats, int n,
                           int C, int HW) {
    bijou::detail::parallel_for(n, std::size_t(n) * C * HW >= 65536, [&](int i) {
        detail::sample_prior_backward_row(i, eps, deps, dld, dz, stats, dstats, C, HW);
    });
}

}  // namespace bijou::kernels
