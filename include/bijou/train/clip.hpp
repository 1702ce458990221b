// bijou/train/clip.hpp — the global L2 norm of a gradient span, and clipping by it.
//
// grad_norm(g)             ‖g‖₂, accumulated in double. The span is cut into a fixed number of chunks
//                          (independent of the thread count) whose partial sums are added in order, so
//                          the value is bit-for-bit the same with 1 or 16 threads. O(P), no allocation.
// clip_grad_norm(g, max)   returns ‖g‖₂ before clipping; if max > 0 and ‖g‖₂ > max, scales g by
//                          max/‖g‖₂ (computed in double, rounded to T once), as torch's clip_grad_norm_
//                          without its ε. max <= 0 means no clipping. A non-finite norm (nan or inf in g,
//                          or overflow) is returned as is and g is left untouched: the caller decides
//                          (train_step skips the update and reports it).
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <span>
#include <type_traits>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"

namespace bijou {

namespace detail {

/// Fixed partition of the squared-norm reduction (keeps the result independent of the thread count).
inline constexpr std::size_t norm_chunks = 64;
inline constexpr std::size_t norm_parallel_threshold = std::size_t(1) << 16;

/// Multiplies every element by `factor` (in double), rounding each to T once.
template <class T>
void scale_span(std::span<T> g, double factor) {
    T* p = g.data();
    const std::ptrdiff_t n = std::ptrdiff_t(g.size());
    bijou::detail::parallel_for(std::ptrdiff_t(n), std::size_t(n) > norm_parallel_threshold, [&](std::ptrdiff_t i) {
        p[i] = T(double(p[i]) * factor);
    });
}

}  // namespace detail

/// ‖g‖₂ in double; deterministic for a given length whatever the thread count.
template <class T>
    requires Scalar<std::remove_const_t<T>>
double grad_norm(std::span<T> g) {
    const std::size_t n = g.size();
    const auto* p = g.data();
    const std::size_t chunk = (n + detail::norm_chunks - 1) / detail::norm_chunks;
    std::array<double, detail::norm_chunks> part{};
    bijou::detail::parallel_for(std::ptrdiff_t(detail::norm_chunks), n > detail::norm_parallel_threshold, [&](std::ptrdiff_t c) {
        const std::size_t lo = std::size_t(c) * chunk;
        const std::size_t hi = lo + chunk < n ? lo + chunk : n;
        double s = 0.0;
        // simd reduction: vector-width partial sums, a fixed order for a given build
#pragma omp simd reduction(+ : s)
        for (std::size_t i = lo; i < hi; ++i) s += double(p[i]) * double(p[i]);
        part[std::size_t(c)] = s;
    });
    double s = 0.0;
    for (double v : part) s += v;
    return std::sqrt(s);
}

/// Returns ‖g‖₂ before clipping; rescales g to norm max_norm when it is larger (see the header contract).
template <Scalar T>
double clip_grad_norm(std::span<T> grads, double max_norm) {
    const double norm = grad_norm(grads);
    if (std::isfinite(norm) && max_norm > 0.0 && norm > max_norm) detail::scale_span(grads, max_norm / norm);
    return norm;
}

}  // namespace bijou
