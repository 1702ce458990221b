// bijou/kernels/cuda/spline.hpp — elementwise rational-quadratic splines for the Cuda backend (and
// CudaHost): kernels/reference/spline.hpp's contract with the executor's pointers. One thread per
// element (x: (n, D), element k = i·D + j; feature j's parameters at p + i·ldp + j·(3K − 1)); each
// sample's log-det terms are reduced in one block, in double, in a fixed order. The element formulas
// are kernels/spline_formula.hpp's, as for every backend.
#pragma once

#include <cstddef>

#include "bijou/kernels/cuda/coupling.hpp"  // Nchw, nchw_at
#include "bijou/kernels/cuda/exec.hpp"
#include "bijou/kernels/spline_formula.hpp"

namespace bijou::kernels::cuda_body {

/// Writes out[k] (z forward, x inverse) and returns the element's log-det term (0 if kept).
template <bool Inverse, class T>
BIJOU_HD T spline_at(const spline_formula::Spline<T>& sp, std::size_t k, const T* in, T* out, const T* p, int ldp,
                     const T* keep, int D) {
    const std::size_t i = k / std::size_t(D), j = k % std::size_t(D);
    if (keep != nullptr && keep[j] != T(0)) {
        out[k] = in[k];
        return T(0);
    }
    const T* pj = p + i * std::size_t(ldp) + j * std::size_t(spline_formula::params_per_element(sp.bins));
    const spline_formula::ValueLogDet<T> r =
        Inverse ? spline_formula::inverse(sp, pj, 1, in[k]) : spline_formula::forward(sp, pj, 1, in[k]);
    out[k] = r.value;
    return r.log_det;
}

template <class T>
BIJOU_HD void spline_backward_at(const spline_formula::Spline<T>& sp, std::size_t k, const T* x, const T* p, int ldp,
                                 const T* keep, const T* dz, const T* dld, T* dx, T* dp, int D) {
    const int P = spline_formula::params_per_element(sp.bins);
    const std::size_t i = k / std::size_t(D), j = k % std::size_t(D), o = i * std::size_t(ldp) + j * std::size_t(P);
    if (keep != nullptr && keep[j] != T(0)) {
        dx[k] = dz[k];
        for (int q = 0; q < P; ++q) dp[o + std::size_t(q)] = T(0);
        return;
    }
    dx[k] = spline_formula::backward(sp, p + o, 1, x[k], dz[k], T(dld[i]), dp + o);
}

// ---- image form: x (n, C, HW), element k = (i·C + c)·HW + p; θ channel-major (ct·P, n, HW) ----

template <bool Inverse, class T>
BIJOU_HD T spline_image_at(const spline_formula::Spline<T>& sp, std::size_t k, const T* in, T* out, const T* theta,
                           int n, int C, int HW, int c0) {
    const Nchw e = nchw_at(k, C, HW);
    if (e.c < c0) {
        out[k] = in[k];
        return T(0);
    }
    const int P = spline_formula::params_per_element(sp.bins);
    const std::size_t stride = std::size_t(n) * HW;
    const T* pj = theta + (std::size_t(e.c - c0) * P * n + e.i) * HW + e.p;
    const spline_formula::ValueLogDet<T> r =
        Inverse ? spline_formula::inverse(sp, pj, stride, in[k]) : spline_formula::forward(sp, pj, stride, in[k]);
    out[k] = r.value;
    return r.log_det;
}

template <class T>
BIJOU_HD void spline_image_backward_at(const spline_formula::Spline<T>& sp, std::size_t k, const T* x, const T* theta,
                                       const T* dz, const T* dld, T* dx, T* dtheta, int n, int C, int HW, int c0) {
    const Nchw e = nchw_at(k, C, HW);
    if (e.c < c0) {
        dx[k] = dz[k];
        return;
    }
    const int P = spline_formula::params_per_element(sp.bins);
    const std::size_t o = (std::size_t(e.c - c0) * P * n + e.i) * HW + e.p;
    dx[k] = spline_formula::backward(sp, theta + o, std::size_t(n) * HW, x[k], dz[k], T(dld[e.i]), dtheta + o);
}

template <bool Inverse, class X, class T>
void spline(X, const spline_formula::Spline<T>& sp, const T* in, T* out, const T* p, int ldp, const T* keep,
            double* ld, int n, int D) {
    per_sample_log_det(X{}, n, std::size_t(D), ld, Inverse ? -1.0 : 1.0, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        return spline_at<Inverse>(sp, k, in, out, p, ldp, keep, D);
    });
}

template <class X, class T>
void spline_backward(X, const spline_formula::Spline<T>& sp, const T* x, const T* p, int ldp, const T* keep,
                     const T* dz, const T* dld, T* dx, T* dp, int n, int D) {
    X::for_each(std::size_t(n) * D, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        spline_backward_at(sp, k, x, p, ldp, keep, dz, dld, dx, dp, D);
    });
}

template <bool Inverse, class X, class T>
void spline_image(X, const spline_formula::Spline<T>& sp, const T* in, T* out, const T* theta, double* ld, int n, int C,
                  int HW, int c0) {
    per_sample_log_det(X{}, n, std::size_t(C) * HW, ld, Inverse ? -1.0 : 1.0, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        return spline_image_at<Inverse>(sp, k, in, out, theta, n, C, HW, c0);
    });
}

template <class X, class T>
void spline_image_backward(X, const spline_formula::Spline<T>& sp, const T* x, const T* theta, const T* dz,
                           const T* dld, T* dx, T* dtheta, int n, int C, int HW, int c0) {
    X::for_each(std::size_t(n) * C * HW, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        spline_image_backward_at(sp, k, x, theta, dz, dld, dx, dtheta, n, C, HW, c0);
    });
}

}  // namespace bijou::kernels::cuda_body

namespace bijou::kernels {

template <ExecutorBackend B, class T>
void spline_forward(B, const spline_formula::Spline<T>& sp, const T* x, T* z, const T* p, int ldp, const T* keep,
                    double* ld, int n, int D) {
    cuda_body::spline<false>(typename B::executor{}, sp, x, z, p, ldp, keep, ld, n, D);
}

template <ExecutorBackend B, class T>
void spline_inverse(B, const spline_formula::Spline<T>& sp, const T* z, T* x, const T* p, int ldp, const T* keep,
                    double* ld, int n, int D) {
    cuda_body::spline<true>(typename B::executor{}, sp, z, x, p, ldp, keep, ld, n, D);
}

template <ExecutorBackend B, class T>
void spline_backward(B, const spline_formula::Spline<T>& sp, const T* x, const T* p, int ldp, const T* keep,
                     const T* dz, const T* dld, T* dx, T* dp, int n, int D) {
    cuda_body::spline_backward(typename B::executor{}, sp, x, p, ldp, keep, dz, dld, dx, dp, n, D);
}

template <ExecutorBackend B, class T>
void spline_image_forward(B, const spline_formula::Spline<T>& sp, const T* x, T* z, const T* theta, double* ld, int n,
                          int C, int HW, int c0) {
    cuda_body::spline_image<false>(typename B::executor{}, sp, x, z, theta, ld, n, C, HW, c0);
}

template <ExecutorBackend B, class T>
void spline_image_inverse(B, const spline_formula::Spline<T>& sp, const T* z, T* x, const T* theta, double* ld, int n,
                          int C, int HW, int c0) {
    cuda_body::spline_image<true>(typename B::executor{}, sp, z, x, theta, ld, n, C, HW, c0);
}

template <ExecutorBackend B, class T>
void spline_image_backward(B, const spline_formula::Spline<T>& sp, const T* x, const T* theta, const T* dz,
                           const T* dld, T* dx, T* dtheta, int n, int C, int HW, int c0) {
    cuda_body::spline_image_backward(typename B::executor{}, sp, x, theta, dz, dld, dx, dtheta, n, C, HW, c0);
}

}  // namespace bijou::kernels
