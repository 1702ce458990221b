// bijou/train/clip.hpp — the global L2 norm of a gradient span, and clipping by it.
//
// grad_norm(g)             ‖g‖₂, accumulated in double. The span is cut into a fixed number of chunks
//                          (independent of the thread count) whose partial sums are added in order, so
//                          the value is bit-for-bit the same with 1 or 16 threads. O(P), no allocation.
//                          (The loops are the Cpu backend's kernels, kernels/cpu/totals.hpp; train_step
//                          calls kernels::sum_squares and kernels::scale of the model's backend.)
// clip_grad_norm(g, max)   returns ‖g‖₂ before clipping; if max > 0 and ‖g‖₂ > max, scales g by
//                          max/‖g‖₂ (computed in double, rounded to T once), as torch's clip_grad_norm_
//                          without its ε. max <= 0 means no clipping. A non-finite norm (nan or inf in g,
//                          or overflow) is returned as is and g is left untouched: the caller decides
//                          (train_step skips the update and reports it).
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <type_traits>

#include "bijou/core/backend.hpp"
#include "bijou/kernels/cpu/totals.hpp"

namespace bijou {

namespace detail {

/// Multiplies every element by `factor` (in double), rounding each to T once.
template <class T>
void scale_span(std::span<T> g, double factor) {
    kernels::detail::scale_in_place(g.data(), g.size(), factor);
}

}  // namespace detail

/// ‖g‖₂ in double; deterministic for a given length whatever the thread count.
template <class T>
    requires Scalar<std::remove_const_t<T>>
double grad_norm(std::span<T> g) {
    return std::sqrt(kernels::detail::chunked_sum_squares(g.data(), g.size()));
}

/// Returns ‖g‖₂ before clipping; rescales g to norm max_norm when it is larger (see the header contract).
template <Scalar T>
double clip_grad_norm(std::span<T> grads, double max_norm) {
    const double norm = grad_norm(grads);
    if (std::isfinite(norm) && max_norm > 0.0 && norm > max_norm) detail::scale_span(grads, max_norm / norm);
    return norm;
}

}  // namespace bijou
