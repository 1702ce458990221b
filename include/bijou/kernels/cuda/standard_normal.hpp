// bijou/kernels/cuda/standard_normal.hpp — the standard normal base for the Cuda backend (and CudaHost):
// the contracts of kernels/reference/standard_normal.hpp on executor memory.
//   standard_normal_log_prob  one block per sample, the sum in double
//   standard_normal_backward  one thread per element
// (Sampling draws on the host and uploads, core/memory.hpp's fill_normal_from_host, so a seed gives the same
// samples on every backend.)
#pragma once

#include <cmath>
#include <cstddef>
#include <numbers>

#include "bijou/core/backend.hpp"
#include "bijou/kernels/cuda/exec.hpp"

namespace bijou::kernels {

template <ExecutorBackend B, class T>
void standard_normal_log_prob(B, const T* z, double* lp, int n, int D) {
    const double c = -0.5 * D * std::log(2.0 * std::numbers::pi);
    const std::size_t per = std::size_t(D);
    B::executor::segment_reduce(
        n,
        [=] BIJOU_HD_LAMBDA(int i, std::size_t part, std::size_t parts, double& s, double&) {
            for (std::size_t j = part; j < per; j += parts) {
                const double v = double(z[std::size_t(i) * per + j]);
                s += v * v;
            }
        },
        [=] BIJOU_HD_LAMBDA(int i, double s, double) { lp[i] = c - 0.5 * s; });
}

template <ExecutorBackend B, class T>
void standard_normal_backward(B, const T* z, const T* dlp, T* dz, int n, int D) {
    B::executor::for_each(std::size_t(n) * D,
                          [=] BIJOU_HD_LAMBDA(std::size_t k) { dz[k] = -dlp[k / std::size_t(D)] * z[k]; });
}

}  // namespace bijou::kernels
