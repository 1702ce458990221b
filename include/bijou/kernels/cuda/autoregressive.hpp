// bijou/kernels/cuda/autoregressive.hpp — kernels/reference/autoregressive.hpp's contracts for the Cuda
// backend (and CudaHost), one thread per element.
#pragma once

#include <cstddef>

#include "bijou/kernels/cuda/exec.hpp"

namespace bijou::kernels {

template <ExecutorBackend B, class T>
void autoregressive_fill(B, T* y, T v, std::size_t size) {
    B::executor::for_each(size, [=] BIJOU_HD_LAMBDA(std::size_t k) { y[k] = v; });
}

template <ExecutorBackend B, class T>
void autoregressive_solve(B, const T* dz, const T* a, const T* r, const T* s, T* v, std::size_t size) {
    B::executor::for_each(size, [=] BIJOU_HD_LAMBDA(std::size_t k) { v[k] = (dz[k] - a[k] - r[k]) / s[k]; });
}

}  // namespace bijou::kernels
