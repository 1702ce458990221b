// bijou/kernels/cpu/spline.hpp — elementwise rational-quadratic splines for the Cpu backend. Same
// contracts as kernels/reference/spline.hpp; rows run the Reference kernels' per-row bodies, split
// across OpenMP threads when the batch is large, so the two agree bit for bit.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/reference/spline.hpp"

namespace bijou::kernels {

namespace detail {

/// A spline element costs O(K) transcendental calls: threads pay off from a few thousand elements.
inline constexpr std::size_t spline_parallel_min = 2048;

}  // namespace detail

template <class T>
void spline_forward(Cpu, const spline_formula::Spline<T>& sp, const T* x, T* z, const T* p, int ldp, const T* keep,
                    double* ld, int n, int D) {
    bijou::detail::parallel_for(n, std::size_t(n) * D > detail::spline_parallel_min, [&](int i) {
        const std::size_t r = std::size_t(i) * D;
        const double s = detail::spline_row<false>(sp, x + r, z + r, p + std::size_t(i) * ldp, keep, D);
        if (ld != nullptr) ld[i] += s;
    });
}

template <class T>
void spline_inverse(Cpu, const spline_formula::Spline<T>& sp, const T* z, T* x, const T* p, int ldp, const T* keep,
                    double* ld, int n, int D) {
    bijou::detail::parallel_for(n, std::size_t(n) * D > detail::spline_parallel_min, [&](int i) {
        const std::size_t r = std::size_t(i) * D;
        const double s = detail::spline_row<true>(sp, z + r, x + r, p + std::size_t(i) * ldp, keep, D);
        if (ld != nullptr) ld[i] -= s;
    });
}

template <class T>
void spline_backward(Cpu, const spline_formula::Spline<T>& sp, const T* x, const T* p, int ldp, const T* keep,
                     const T* dz, const T* dld, T* dx, T* dp, int n, int D) {
    bijou::detail::parallel_for(n, std::size_t(n) * D > detail::spline_parallel_min, [&](int i) {
        const std::size_t r = std::size_t(i) * D, o = std::size_t(i) * ldp;
        detail::spline_backward_row(sp, x + r, p + o, keep, dz + r, T(dld[i]), dx + r, dp + o, D);
    });
}

template <class T>
void spline_image_forward(Cpu, const spline_formula::Spline<T>& sp, const T* x, T* z, const T* theta, double* ld, int n,
                          int C, int HW, int c0) {
    bijou::detail::parallel_for(n, std::size_t(n) * C * HW > detail::spline_parallel_min, [&](int i) {
        const double s = detail::spline_image_sample<false>(sp, x, z, theta, i, n, C, HW, c0);
        if (ld != nullptr) ld[i] += s;
    });
}

template <class T>
void spline_image_inverse(Cpu, const spline_formula::Spline<T>& sp, const T* z, T* x, const T* theta, double* ld, int n,
                          int C, int HW, int c0) {
    bijou::detail::parallel_for(n, std::size_t(n) * C * HW > detail::spline_parallel_min, [&](int i) {
        const double s = detail::spline_image_sample<true>(sp, z, x, theta, i, n, C, HW, c0);
        if (ld != nullptr) ld[i] -= s;
    });
}

template <class T>
void spline_image_backward(Cpu, const spline_formula::Spline<T>& sp, const T* x, const T* theta, const T* dz,
                           const T* dld, T* dx, T* dtheta, int n, int C, int HW, int c0) {
    bijou::detail::parallel_for(n, std::size_t(n) * C * HW > detail::spline_parallel_min, [&](int i) {
        detail::spline_image_backward_sample(sp, x, theta, dz, T(dld[i]), dx, dtheta, i, n, C, HW, c0);
    });
}

}  // namespace bijou::kernels
