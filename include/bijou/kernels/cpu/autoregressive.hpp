// bijou/kernels/cpu/autoregressive.hpp — kernels/reference/autoregressive.hpp's contracts for the Cpu
// backend: the same element formulas in SIMD loops, so the two agree bit for bit.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"

namespace bijou::kernels {

template <class T>
void autoregressive_fill(Cpu, T* y, T v, std::size_t size) {
#pragma omp simd
    for (std::size_t k = 0; k < size; ++k) y[k] = v;
}

template <class T>
void autoregressive_solve(Cpu, const T* dz, const T* a, const T* r, const T* s, T* v, std::size_t size) {
#pragma omp simd
    for (std::size_t k = 0; k < size; ++k) v[k] = (dz[k] - a[k] - r[k]) / s[k];
}

}  // namespace bijou::kernels
