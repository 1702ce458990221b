// bijou/kernels/cpu/totals.hpp — totals over a whole span for the Cpu backend. Same contracts as
// kernels/reference/totals.hpp. sum_squares cuts the span into a fixed number of chunks (independent
// of the thread count) whose partial sums are added in order, so its value is bit-for-bit the same
// with 1 or 16 threads; train/clip.hpp's grad_norm is its square root. scale and zero split long spans
// across the threads (zero: a model's gradients, 4 MB for the two-moons RealNVP, were a serial memset
// on one thread while the other waited). add_total's sizes are a
// batch or a channel count, too small to split: it is the Reference loop.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/reference/totals.hpp"

namespace bijou::kernels {

namespace detail {

/// Fixed partition of the squared-norm reduction (keeps the result independent of the thread count).
inline constexpr std::size_t norm_chunks = 64;
inline constexpr std::size_t norm_parallel_threshold = std::size_t(1) << 16;

/// Σ g[k]² in double over norm_chunks fixed chunks, OpenMP across chunks for long spans.
template <class T>
double chunked_sum_squares(const T* g, std::size_t n) {
    const std::size_t chunk = (n + norm_chunks - 1) / norm_chunks;
    std::array<double, norm_chunks> part{};
    bijou::detail::parallel_for(std::ptrdiff_t(norm_chunks), n > norm_parallel_threshold, [&](std::ptrdiff_t c) {
        const std::size_t lo = std::size_t(c) * chunk;
        const std::size_t hi = lo + chunk < n ? lo + chunk : n;
        // 16 running partial sums (4 vectors of doubles: one chain would wait on the add latency),
        // added in a fixed order at the end: the same value for a given build whatever the threads
        double acc[16] = {};
        std::size_t i = lo;
        for (; i + 16 <= hi; i += 16)
#pragma omp simd
            for (std::size_t j = 0; j < 16; ++j) acc[j] += double(g[i + j]) * double(g[i + j]);
        double s = 0.0;
        for (double a : acc) s += a;
        for (; i < hi; ++i) s += double(g[i]) * double(g[i]);
        part[std::size_t(c)] = s;
    });
    double s = 0.0;
    for (double v : part) s += v;
    return s;
}

/// g[k] = T(double(g[k])·f), OpenMP across the span when it is long.
template <class T>
void scale_in_place(T* g, std::size_t n, double f) {
    bijou::detail::parallel_for(std::ptrdiff_t(n), n > norm_parallel_threshold,
                                [&](std::ptrdiff_t i) { g[i] = T(double(g[i]) * f); });
}

}  // namespace detail

template <class T>
double sum_squares(Cpu, const T* g, std::size_t n) {
    return detail::chunked_sum_squares(g, n);
}

template <class T>
void scale(Cpu, T* g, std::size_t n, double f) {
    detail::scale_in_place(g, n, f);
}

template <class T>
void zero(Cpu, T* g, std::size_t n) {
    const std::size_t chunk = (n + detail::norm_chunks - 1) / detail::norm_chunks;
    bijou::detail::parallel_for(std::ptrdiff_t(detail::norm_chunks), n > detail::norm_parallel_threshold,
                                [&](std::ptrdiff_t c) {
                                    const std::size_t lo = std::min(n, std::size_t(c) * chunk);
                                    const std::size_t hi = std::min(n, lo + chunk);
                                    std::fill(g + lo, g + hi, T(0));
                                });
}

template <class D, class S>
void add_total(Cpu, D* dst, std::size_t m, const S* src, std::size_t n, double f) {
    add_total(Reference{}, dst, m, src, n, f);
}

}  // namespace bijou::kernels
