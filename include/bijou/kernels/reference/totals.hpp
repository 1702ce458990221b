// bijou/kernels/reference/totals.hpp — totals over a whole span, plain loops.
// g, src: (n); dst: (m). Every sum is in double, in index order.
//   sum_squares(B, g, n)            Σ_k g[k]²   (train_step's gradient norm is its square root)
//   scale(B, g, n, f)               g[k] = T(double(g[k])·f)   (gradient clipping)
//   zero(B, g, n)                   g[k] = 0   (a model's gradients before a backward pass)
//   add_total(B, dst, m, src, n, f) dst[j] += D(f·Σ_k src[k]) for every j < m: a constant log-det
//                                   added to every sample (src = log_scale, f = ±H·W), or the Σ dld
//                                   term added to every entry of a parameter gradient
// Backends with memory of their own (kernels/cuda/totals.hpp) keep the sums there: no host round trip.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"

namespace bijou::kernels {

template <class T>
double sum_squares(Reference, const T* g, std::size_t n) {
    double s = 0.0;
    for (std::size_t k = 0; k < n; ++k) s += double(g[k]) * double(g[k]);
    return s;
}

template <class T>
void scale(Reference, T* g, std::size_t n, double f) {
    for (std::size_t k = 0; k < n; ++k) g[k] = T(double(g[k]) * f);
}

template <class T>
void zero(Reference, T* g, std::size_t n) {
    for (std::size_t k = 0; k < n; ++k) g[k] = T(0);
}

template <class D, class S>
void add_total(Reference, D* dst, std::size_t m, const S* src, std::size_t n, double f) {
    double total = 0.0;
    for (std::size_t k = 0; k < n; ++k) total += double(src[k]);
    for (std::size_t j = 0; j < m; ++j) dst[j] += D(f * total);
}

}  // namespace bijou::kernels
