// bijou/kernels/cpu/standard_normal.hpp — the standard normal base for the Cpu backend. Same
// contracts and per-sample summation order as kernels/reference/standard_normal.hpp, one sample per
// task across the OpenMP threads for batches of more than 32768 values.
#pragma once

#include <cmath>
#include <cstddef>
#include <numbers>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/reference/standard_normal.hpp"

namespace bijou::kernels {

template <class T>
void standard_normal_log_prob(Cpu, const T* z, double* lp, int n, int D) {
    const double c = -0.5 * D * std::log(2.0 * std::numbers::pi);
    bijou::detail::parallel_for(n, std::size_t(n) * D > 32768, [&](int i) {
        double s = 0.0;
        const T* zi = z + std::size_t(i) * D;
        for (int j = 0; j < D; ++j) s += double(zi[j]) * zi[j];
        lp[i] = c - 0.5 * s;
    });
}

template <class T>
void standard_normal_backward(Cpu, const T* z, const T* dlp, T* dz, int n, int D) {
    bijou::detail::parallel_for(n, std::size_t(n) * D > 32768, [&](int i) {
        const T g = -dlp[i];
        const std::size_t o = std::size_t(i) * D;
#pragma omp simd
        for (int j = 0; j < D; ++j) dz[o + j] = g * z[o + j];
    });
}

}  // namespace bijou::kernels
