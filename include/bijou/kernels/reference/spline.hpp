// bijou/kernels/reference/spline.hpp — elementwise rational-quadratic splines (a spline coupling's or an
// autoregressive flow's transform), plain loops.
//
// x, z, dx, dz: (n, D) row-major. p: the raw spline parameters, row i at p + i·ldp, feature j's
// 3K − 1 values contiguous at p + i·ldp + j·(3K − 1) (kernels/spline_formula.hpp says what they
// mean); dp alike. keep: (D), 1 = kept (copied, z = x), 0 = transformed; null: every feature is
// transformed. Log-dets accumulate per sample in double into ld (+=; the inverse subtracts); ld may be
// null (no log-det wanted: a sampling pass of an autoregressive flow).
// backward assigns dx (the direct path only: the caller adds the path through the conditioner) and
// assigns dp (0 for kept features).
// Image form (channel-split spline couplings): x, z (n, C, HW) NCHW; channels [0, c0) are copied and
// channels [c0, C) transformed; θ is channel-major (ct·P, n, HW), ct = C − c0, P = 3K − 1: element
// (i, c, p)'s parameter q is θ[(((c − c0)·P + q)·n + i)·HW + p], i.e. at stride n·HW.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/kernels/spline_formula.hpp"

namespace bijou::kernels {

namespace detail {

/// One sample's row, forward (in = x, out = z) or Inverse (in = z, out = x); returns Σ log dz/dx over
/// the transformed features. The Cpu backend runs the same body per sample.
template <bool Inverse, class T>
double spline_row(const spline_formula::Spline<T>& sp, const T* in, T* out, const T* p, const T* keep, int D) {
    const int P = spline_formula::params_per_element(sp.bins);
    double s = 0.0;
    for (int j = 0; j < D; ++j) {
        if (keep != nullptr && keep[j] != T(0)) {
            out[j] = in[j];
            continue;
        }
        const T* pj = p + std::size_t(j) * P;
        const auto r = Inverse ? spline_formula::inverse(sp, pj, 1, in[j]) : spline_formula::forward(sp, pj, 1, in[j]);
        out[j] = r.value;
        s += double(r.log_det);
    }
    return s;
}

/// One sample's row of spline_backward; g = ∂L/∂ld of the sample.
template <class T>
void spline_backward_row(const spline_formula::Spline<T>& sp, const T* x, const T* p, const T* keep, const T* dz, T g,
                         T* dx, T* dp, int D) {
    const int P = spline_formula::params_per_element(sp.bins);
    for (int j = 0; j < D; ++j) {
        T* dpj = dp + std::size_t(j) * P;
        if (keep != nullptr && keep[j] != T(0)) {
            dx[j] = dz[j];
            for (int q = 0; q < P; ++q) dpj[q] = T(0);
            continue;
        }
        dx[j] = spline_formula::backward(sp, p + std::size_t(j) * P, 1, x[j], dz[j], g, dpj);
    }
}

/// Where element (i, c, p) of an image finds its first parameter in θ (the others follow at stride n·HW).
inline std::size_t spline_image_param(int P, int i, int c, int p, int n, int HW, int c0) {
    return (std::size_t(c - c0) * P * n + std::size_t(i)) * HW + std::size_t(p);
}

/// Sample i of the image form, forward (in = x, out = z) or Inverse; returns its Σ log dz/dx. in and
/// out point at the whole batch. The Cpu backend runs the same body per sample.
template <bool Inverse, class T>
double spline_image_sample(const spline_formula::Spline<T>& sp, const T* in, T* out, const T* theta, int i, int n, int C,
                           int HW, int c0) {
    const int P = spline_formula::params_per_element(sp.bins);
    const std::size_t stride = std::size_t(n) * HW;
    double s = 0.0;
    for (int c = 0; c < C; ++c)
        for (int p = 0; p < HW; ++p) {
            const std::size_t k = (std::size_t(i) * C + c) * HW + p;
            if (c < c0) {
                out[k] = in[k];
                continue;
            }
            const T* pj = theta + spline_image_param(P, i, c, p, n, HW, c0);
            const auto r = Inverse ? spline_formula::inverse(sp, pj, stride, in[k])
                                   : spline_formula::forward(sp, pj, stride, in[k]);
            out[k] = r.value;
            s += double(r.log_det);
        }
    return s;
}

/// Sample i of spline_image_backward; g = ∂L/∂ld of the sample.
template <class T>
void spline_image_backward_sample(const spline_formula::Spline<T>& sp, const T* x, const T* theta, const T* dz, T g,
                                  T* dx, T* dtheta, int i, int n, int C, int HW, int c0) {
    const int P = spline_formula::params_per_element(sp.bins);
    const std::size_t stride = std::size_t(n) * HW;
    for (int c = 0; c < C; ++c)
        for (int p = 0; p < HW; ++p) {
            const std::size_t k = (std::size_t(i) * C + c) * HW + p;
            if (c < c0) {
                dx[k] = dz[k];
                continue;
            }
            const std::size_t o = spline_image_param(P, i, c, p, n, HW, c0);
            dx[k] = spline_formula::backward(sp, theta + o, stride, x[k], dz[k], g, dtheta + o);
        }
}

}  // namespace detail

template <class T>
void spline_forward(Reference, const spline_formula::Spline<T>& sp, const T* x, T* z, const T* p, int ldp,
                    const T* keep, double* ld, int n, int D) {
    for (int i = 0; i < n; ++i) {
        const std::size_t r = std::size_t(i) * D;
        const double s = detail::spline_row<false>(sp, x + r, z + r, p + std::size_t(i) * ldp, keep, D);
        if (ld != nullptr) ld[i] += s;
    }
}

template <class T>
void spline_inverse(Reference, const spline_formula::Spline<T>& sp, const T* z, T* x, const T* p, int ldp,
                    const T* keep, double* ld, int n, int D) {
    for (int i = 0; i < n; ++i) {
        const std::size_t r = std::size_t(i) * D;
        const double s = detail::spline_row<true>(sp, z + r, x + r, p + std::size_t(i) * ldp, keep, D);
        if (ld != nullptr) ld[i] -= s;
    }
}

/// For ∂L/∂z = dz and ∂L/∂ld = dld (per sample) at input x.
template <class T>
void spline_backward(Reference, const spline_formula::Spline<T>& sp, const T* x, const T* p, int ldp, const T* keep,
                     const T* dz, const T* dld, T* dx, T* dp, int n, int D) {
    for (int i = 0; i < n; ++i) {
        const std::size_t r = std::size_t(i) * D, o = std::size_t(i) * ldp;
        detail::spline_backward_row(sp, x + r, p + o, keep, dz + r, T(dld[i]), dx + r, dp + o, D);
    }
}

template <class T>
void spline_image_forward(Reference, const spline_formula::Spline<T>& sp, const T* x, T* z, const T* theta, double* ld,
                          int n, int C, int HW, int c0) {
    for (int i = 0; i < n; ++i) {
        const double s = detail::spline_image_sample<false>(sp, x, z, theta, i, n, C, HW, c0);
        if (ld != nullptr) ld[i] += s;
    }
}

template <class T>
void spline_image_inverse(Reference, const spline_formula::Spline<T>& sp, const T* z, T* x, const T* theta, double* ld,
                          int n, int C, int HW, int c0) {
    for (int i = 0; i < n; ++i) {
        const double s = detail::spline_image_sample<true>(sp, z, x, theta, i, n, C, HW, c0);
        if (ld != nullptr) ld[i] -= s;
    }
}

template <class T>
void spline_image_backward(Reference, const spline_formula::Spline<T>& sp, const T* x, const T* theta, const T* dz,
                           const T* dld, T* dx, T* dtheta, int n, int C, int HW, int c0) {
    for (int i = 0; i < n; ++i)
        detail::spline_image_backward_sample(sp, x, theta, dz, T(dld[i]), dx, dtheta, i, n, C, HW, c0);
}

}  // namespace bijou::kernels
