// bijou/kernels/cuda/totals.hpp — totals over a whole span for the Cuda backend (and CudaHost), in
// executor memory. Same contracts as kernels/reference/totals.hpp; the sums are one block in double
// in a fixed order (independent of the thread count). sum_squares returns its value to the host (one
// synchronisation); add_total keeps the total in the executor's scalar slot and adds it in a second
// kernel, with no host round trip.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/core/hd.hpp"
#include "bijou/core/memory.hpp"

namespace bijou::kernels {

template <ExecutorBackend B, class T>
double sum_squares(B, const T* g, std::size_t n) {
    using X = typename B::executor;
    return bijou::detail::slot_to_host<X>(bijou::detail::total_into<X>(
        X::scalar_slot(), n, [=] BIJOU_HD_LAMBDA(std::size_t k) { return double(g[k]) * double(g[k]); }));
}

template <ExecutorBackend B, class T>
void scale(B, T* g, std::size_t n, double f) {
    B::executor::for_each(n, [=] BIJOU_HD_LAMBDA(std::size_t k) { g[k] = T(double(g[k]) * f); });
}

template <ExecutorBackend B, class T>
void zero(B, T* g, std::size_t n) {
    B::executor::for_each(n, [=] BIJOU_HD_LAMBDA(std::size_t k) { g[k] = T(0); });
}

template <ExecutorBackend B, class D, class S>
void add_total(B, D* dst, std::size_t m, const S* src, std::size_t n, double f) {
    using X = typename B::executor;
    const double* total = bijou::detail::total_into<X>(X::scalar_slot() + 1, n,
                                                       [=] BIJOU_HD_LAMBDA(std::size_t k) { return double(src[k]); });
    X::for_each(m, [=] BIJOU_HD_LAMBDA(std::size_t j) { dst[j] += D(f * *total); });
}

}  // namespace bijou::kernels
