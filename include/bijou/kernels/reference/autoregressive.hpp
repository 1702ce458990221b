// bijou/kernels/reference/autoregressive.hpp — the elementwise steps of an inverse autoregressive
// flow's backward (bijectors/autoregressive.hpp), plain loops over `size` values.
//   autoregressive_fill   y[k] = v
//   autoregressive_solve  v[k] = (dz[k] − a[k] − r[k]) / s[k]: one step of the triangular solve
//                         Jᵀv = g, J = diag(s) + (strictly triangular part), a the log-det's direct term
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"

namespace bijou::kernels {

template <class T>
void autoregressive_fill(Reference, T* y, T v, std::size_t size) {
    for (std::size_t k = 0; k < size; ++k) y[k] = v;
}

template <class T>
void autoregressive_solve(Reference, const T* dz, const T* a, const T* r, const T* s, T* v, std::size_t size) {
    for (std::size_t k = 0; k < size; ++k) v[k] = (dz[k] - a[k] - r[k]) / s[k];
}

}  // namespace bijou::kernels
