// bijou/kernels/reference/standard_normal.hpp — the standard normal base N(0, I), plain loops.
// z, dz: (n, D); lp, dlp: (n).
//   standard_normal_log_prob  lp[i] = −½·Σ_j z[i, j]² − (D/2)·log 2π   (the sum in double, in j order)
//   standard_normal_backward  dz[i, j] = −dlp[i]·z[i, j]                (assigned)
#pragma once

#include <cmath>
#include <cstddef>
#include <numbers>

#include "bijou/core/backend.hpp"

namespace bijou::kernels {

template <class T>
void standard_normal_log_prob(Reference, const T* z, double* lp, int n, int D) {
    const double c = -0.5 * D * std::log(2.0 * std::numbers::pi);
    for (int i = 0; i < n; ++i) {
        double s = 0.0;
        const T* zi = z + std::size_t(i) * D;
        for (int j = 0; j < D; ++j) s += double(zi[j]) * zi[j];
        lp[i] = c - 0.5 * s;
    }
}

template <class T>
void standard_normal_backward(Reference, const T* z, const T* dlp, T* dz, int n, int D) {
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < D; ++j) dz[std::size_t(i) * D + j] = -dlp[i] * z[std::size_t(i) * D + j];
}

}  // namespace bijou::kernels
