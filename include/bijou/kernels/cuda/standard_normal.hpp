// bijou/kernels/cuda/standard_normal.hpp — the standard normal base for the Cuda backend (and CudaHost).
// z, dz: (n, D) in executor memory; lp, dlp: (n).
//   standard_normal_log_prob  lp[i] = −½·Σ_j z[i, j]² − (D/2)·log 2π    (one block per sample, double)
//   standard_normal_backward  dz[i, j] = −dlp[i]·z[i, j]                 (one thread per element)
// (distributions/standard_normal.hpp has the host loops; sampling draws on the host and uploads, so a
// seed gives the same samples on every backend.)
#pragma once

#include <cmath>
#include <cstddef>
#include <numbers>

#include "bijou/kernels/cuda/exec.hpp"

namespace bijou::kernels::cuda_body {

template <class X, class T>
void standard_normal_log_prob(X, const T* z, double* lp, int n, int D) {
    const double c = -0.5 * D * std::log(2.0 * std::numbers::pi);
    const std::size_t per = std::size_t(D);
    X::segment_reduce(
        n,
        [=] BIJOU_HD_LAMBDA(int i, std::size_t part, std::size_t parts, double& s, double&) {
            for (std::size_t j = part; j < per; j += parts) {
                const double v = double(z[std::size_t(i) * per + j]);
                s += v * v;
            }
        },
        [=] BIJOU_HD_LAMBDA(int i, double s, double) { lp[i] = c - 0.5 * s; });
}

template <class X, class T>
void standard_normal_backward(X, const T* z, const T* dlp, T* dz, int n, int D) {
    X::for_each(std::size_t(n) * D, [=] BIJOU_HD_LAMBDA(std::size_t k) { dz[k] = -dlp[k / std::size_t(D)] * z[k]; });
}

}  // namespace bijou::kernels::cuda_body

namespace bijou::kernels {

template <ExecutorBackend B, class T>
void standard_normal_log_prob(B, const T* z, double* lp, int n, int D) {
    cuda_body::standard_normal_log_prob(typename B::executor{}, z, lp, n, D);
}

template <ExecutorBackend B, class T>
void standard_normal_backward(B, const T* z, const T* dlp, T* dz, int n, int D) {
    cuda_body::standard_normal_backward(typename B::executor{}, z, dlp, dz, n, D);
}

}  // namespace bijou::kernels
