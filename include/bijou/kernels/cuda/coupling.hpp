// bijou/kernels/cuda/coupling.hpp — the elementwise half of a coupling (vector and image) for the Cuda
// backend (and CudaHost): the contracts of kernels/reference/coupling.hpp and coupling_image.hpp with
// the executor's pointers (keep of an image coupling may be null). One thread per element; the affine
// passes reduce each sample's log-det terms in one block, in double, in a fixed order.
//
// The element formulas are kernels/coupling_formula.hpp's, as for every backend. Below are the
// index bodies of the vector coupling (x: (n, D), element k = i·D + j; t, h rows of
// stride ldo; keep: (D)) and of the image coupling (x: (n, C, HW) NCHW, t and h channel-major
// (ct, n·HW); keep: a pixel mask (HW) or null; channels [c0, c0 + ct) are transformed where the mask
// is 0), as kernels/reference/coupling_image.hpp defines them.
#pragma once

#include <cstddef>

#include "bijou/kernels/coupling_formula.hpp"
#include "bijou/kernels/coupling_scale.hpp"
#include "bijou/kernels/cuda/exec.hpp"

namespace bijou::kernels::cuda_body {

using coupling_formula::Grads;
using coupling_formula::ValueLogDet;
using coupling_formula::affine_backward;
using coupling_formula::affine_forward;
using coupling_formula::affine_inverse;

// ---- vector coupling: x (n, D), element k = i·D + j, conditioner rows at i·ldo ----

template <class T>
BIJOU_HD T coupling_mask_input_at(std::size_t k, const T* x, const T* keep, int D) {
    return keep[k % std::size_t(D)] != T(0) ? x[k] : T(0);
}

/// Writes out[k] (z forward, x inverse) and returns the element's log-det term (0 if kept).
template <class T, bool Inverse>
BIJOU_HD T coupling_affine_at(CouplingScale scale, std::size_t k, const T* in, T* out, const T* t, const T* h,
                              int ldo, const T* keep, int D) {
    const std::size_t i = k / std::size_t(D), j = k % std::size_t(D), o = i * std::size_t(ldo) + j;
    if (keep != nullptr && keep[j] != T(0)) {
        out[k] = in[k];
        return T(0);
    }
    const ValueLogDet<T> r = Inverse ? affine_inverse(scale, in[k], t[o], h[o]) : affine_forward(scale, in[k], t[o], h[o]);
    out[k] = r.value;
    return r.log_det;
}

template <class T>
BIJOU_HD void coupling_affine_backward_at(CouplingScale scale, std::size_t k, const T* x, const T* z, const T* h,
                                          int ldo, const T* keep, const T* dz, const T* dld, T* dx, T* dt, T* dh,
                                          int D) {
    const std::size_t i = k / std::size_t(D), j = k % std::size_t(D), o = i * std::size_t(ldo) + j;
    if (keep != nullptr && keep[j] != T(0)) {
        dx[k] = dz[k];
        dt[o] = dh[o] = T(0);
        return;
    }
    const Grads<T> g = affine_backward(scale, x[k], z[k], h[o], dz[k], dld[i]);
    dx[k] = g.dx;
    dt[o] = g.dt;
    dh[o] = g.dh;
}

/// z = x + t (forward) or x = z − t (Inverse) at transformed coordinates.
template <class T, bool Inverse>
BIJOU_HD T coupling_additive_at(std::size_t k, const T* in, const T* t, int ldo, const T* keep, int D) {
    const std::size_t i = k / std::size_t(D), j = k % std::size_t(D);
    const T tk = t[i * std::size_t(ldo) + j];
    if (keep[j] != T(0)) return in[k];
    return Inverse ? coupling_formula::additive_inverse(in[k], tk) : coupling_formula::additive_forward(in[k], tk);
}

template <class T>
BIJOU_HD void coupling_additive_backward_at(std::size_t k, const T* dz, T* dx, T* dt, int ldo, const T* keep, int D) {
    const std::size_t i = k / std::size_t(D), j = k % std::size_t(D);
    dx[k] = dz[k];
    dt[i * std::size_t(ldo) + j] = keep[j] != T(0) ? T(0) : dz[k];
}

template <class T>
BIJOU_HD void coupling_add_condition_grad_at(std::size_t k, T* dx, const T* g1, const T* g2, const T* keep, int D) {
    if (keep != nullptr && keep[k % std::size_t(D)] == T(0)) return;
    dx[k] += g1[k];
    if (g2 != nullptr) dx[k] += g2[k];
}

// ---- image coupling: x (n, C, HW), element k = (i·C + c)·HW + p; t, h channel-major (ct, n·HW) ----

/// Sample, channel and pixel of element k.
struct Nchw {
    std::size_t i;
    int c;
    std::size_t p;
};

BIJOU_HD Nchw nchw_at(std::size_t k, int C, int HW) {
    return {k / (std::size_t(C) * std::size_t(HW)), int((k / std::size_t(HW)) % std::size_t(C)), k % std::size_t(HW)};
}

template <class T>
BIJOU_HD bool image_transformed(const T* keep, int c, std::size_t p, int c0, int ct) {
    return c >= c0 && c < c0 + ct && (keep == nullptr || keep[p] == T(0));
}

/// Channel-major index of (c − c0, i, p).
BIJOU_HD std::size_t image_row_index(Nchw e, int c0, int n, int HW) {
    return (std::size_t(e.c - c0) * std::size_t(n) + e.i) * std::size_t(HW) + e.p;
}

/// xm(c, i, p) for the channel-major element q = (c·n + i)·HW + p of the conditioner's input.
template <class T>
BIJOU_HD T coupling_image_input_at(std::size_t q, const T* x, const T* keep, int n, int C, int HW, int c0) {
    const std::size_t p = q % std::size_t(HW), i = (q / std::size_t(HW)) % std::size_t(n);
    const std::size_t c = q / (std::size_t(HW) * std::size_t(n));
    const bool kept = keep == nullptr || keep[p] != T(0);
    return kept ? x[(i * std::size_t(C) + std::size_t(c0) + c) * std::size_t(HW) + p] : T(0);
}

/// dx(i, c0 + c, p) += g(c, i, p) for channel-major element q where the mask keeps p.
template <class T>
BIJOU_HD void coupling_image_add_input_grad_at(std::size_t q, T* dx, const T* g, const T* keep, int n, int C, int HW,
                                               int c0) {
    const std::size_t p = q % std::size_t(HW), i = (q / std::size_t(HW)) % std::size_t(n);
    const std::size_t c = q / (std::size_t(HW) * std::size_t(n));
    if (keep == nullptr || keep[p] != T(0)) dx[(i * std::size_t(C) + std::size_t(c0) + c) * std::size_t(HW) + p] += g[q];
}

template <class T, bool Inverse>
BIJOU_HD T coupling_image_affine_at(CouplingScale scale, std::size_t k, const T* in, T* out, const T* t, const T* h,
                                    const T* keep, int n, int C, int HW, int c0, int ct) {
    const Nchw e = nchw_at(k, C, HW);
    if (!image_transformed(keep, e.c, e.p, c0, ct)) {
        out[k] = in[k];
        return T(0);
    }
    const std::size_t o = image_row_index(e, c0, n, HW);
    const ValueLogDet<T> r = Inverse ? affine_inverse(scale, in[k], t[o], h[o]) : affine_forward(scale, in[k], t[o], h[o]);
    out[k] = r.value;
    return r.log_det;
}

template <class T>
BIJOU_HD void coupling_image_affine_backward_at(CouplingScale scale, std::size_t k, const T* x, const T* z, const T* h,
                                                const T* keep, const T* dz, const T* dld, T* dx, T* dt, T* dh, int n,
                                                int C, int HW, int c0, int ct) {
    const Nchw e = nchw_at(k, C, HW);
    const bool in_rows = e.c >= c0 && e.c < c0 + ct;
    if (!image_transformed(keep, e.c, e.p, c0, ct)) {
        dx[k] = dz[k];
        if (in_rows) {
            const std::size_t o = image_row_index(e, c0, n, HW);
            dt[o] = dh[o] = T(0);
        }
        return;
    }
    const std::size_t o = image_row_index(e, c0, n, HW);
    const Grads<T> g = affine_backward(scale, x[k], z[k], h[o], dz[k], dld[e.i]);
    dx[k] = g.dx;
    dt[o] = g.dt;
    dh[o] = g.dh;
}

template <class T, bool Inverse>
BIJOU_HD T coupling_image_additive_at(std::size_t k, const T* in, const T* t, const T* keep, int n, int C, int HW,
                                      int c0, int ct) {
    const Nchw e = nchw_at(k, C, HW);
    if (!image_transformed(keep, e.c, e.p, c0, ct)) return in[k];
    const T tk = t[image_row_index(e, c0, n, HW)];
    return Inverse ? coupling_formula::additive_inverse(in[k], tk) : coupling_formula::additive_forward(in[k], tk);
}

template <class T>
BIJOU_HD void coupling_image_additive_backward_at(std::size_t k, const T* dz, T* dx, T* dt, const T* keep, int n,
                                                  int C, int HW, int c0, int ct) {
    const Nchw e = nchw_at(k, C, HW);
    dx[k] = dz[k];
    if (e.c >= c0 && e.c < c0 + ct)
        dt[image_row_index(e, c0, n, HW)] = image_transformed(keep, e.c, e.p, c0, ct) ? dz[k] : T(0);
}

// ---- the kernels, on executor X (kernels/cuda/exec.hpp) ----

template <class X, class T>
void coupling_mask_input(X, const T* x, const T* keep, T* xm, int n, int D) {
    X::for_each(std::size_t(n) * D,
                [=] BIJOU_HD_LAMBDA(std::size_t k) { xm[k] = coupling_mask_input_at(k, x, keep, D); });
}

template <class X, class T>
void coupling_affine_forward(X, CouplingScale scale, const T* x, T* z, const T* t, const T* h, int ldo, const T* keep,
                             double* ld, int n, int D) {
    per_sample_log_det(X{}, n, std::size_t(D), ld, +1.0, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        return coupling_affine_at<T, false>(scale, k, x, z, t, h, ldo, keep, D);
    });
}

template <class X, class T>
void coupling_affine_inverse(X, CouplingScale scale, const T* z, T* x, const T* t, const T* h, int ldo, const T* keep,
                             double* ld, int n, int D) {
    per_sample_log_det(X{}, n, std::size_t(D), ld, -1.0, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        return coupling_affine_at<T, true>(scale, k, z, x, t, h, ldo, keep, D);
    });
}

template <class X, class T>
void coupling_affine_backward(X, CouplingScale scale, const T* x, const T* z, const T* h, int ldo, const T* keep,
                              const T* dz, const T* dld, T* dx, T* dt, T* dh, int n, int D) {
    X::for_each(std::size_t(n) * D, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        coupling_affine_backward_at(scale, k, x, z, h, ldo, keep, dz, dld, dx, dt, dh, D);
    });
}

/// z = x + t (forward) or x = z − t (Inverse).
template <bool Inverse, class X, class T>
void coupling_additive(X, const T* in, T* out, const T* t, int ldo, const T* keep, int n, int D) {
    X::for_each(std::size_t(n) * D, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        out[k] = coupling_additive_at<T, Inverse>(k, in, t, ldo, keep, D);
    });
}

template <class X, class T>
void coupling_additive_backward(X, const T* dz, T* dx, T* dt, int ldo, const T* keep, int n, int D) {
    X::for_each(std::size_t(n) * D,
                [=] BIJOU_HD_LAMBDA(std::size_t k) { coupling_additive_backward_at(k, dz, dx, dt, ldo, keep, D); });
}

template <class X, class T>
void coupling_add_condition_grad(X, T* dx, const T* g1, const T* g2, const T* keep, int n, int D) {
    X::for_each(std::size_t(n) * D,
                [=] BIJOU_HD_LAMBDA(std::size_t k) { coupling_add_condition_grad_at(k, dx, g1, g2, keep, D); });
}

template <class X, class T>
void coupling_image_input(X, const T* x, T* xm, const T* keep, int n, int C, int HW, int c0, int cn) {
    X::for_each(std::size_t(cn) * n * HW,
                [=] BIJOU_HD_LAMBDA(std::size_t q) { xm[q] = coupling_image_input_at(q, x, keep, n, C, HW, c0); });
}

template <class X, class T>
void coupling_image_add_input_grad(X, T* dx, const T* g, const T* keep, int n, int C, int HW, int c0, int cn) {
    X::for_each(std::size_t(cn) * n * HW, [=] BIJOU_HD_LAMBDA(std::size_t q) {
        coupling_image_add_input_grad_at(q, dx, g, keep, n, C, HW, c0);
    });
}

template <class X, class T>
void coupling_image_affine_forward(X, CouplingScale scale, const T* x, T* z, const T* t, const T* h, const T* keep,
                                   double* ld, int n, int C, int HW, int c0, int ct) {
    per_sample_log_det(X{}, n, std::size_t(C) * HW, ld, +1.0, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        return coupling_image_affine_at<T, false>(scale, k, x, z, t, h, keep, n, C, HW, c0, ct);
    });
}

template <class X, class T>
void coupling_image_affine_inverse(X, CouplingScale scale, const T* z, T* x, const T* t, const T* h, const T* keep,
                                   double* ld, int n, int C, int HW, int c0, int ct) {
    per_sample_log_det(X{}, n, std::size_t(C) * HW, ld, -1.0, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        return coupling_image_affine_at<T, true>(scale, k, z, x, t, h, keep, n, C, HW, c0, ct);
    });
}

template <class X, class T>
void coupling_image_affine_backward(X, CouplingScale scale, const T* x, const T* z, const T* h, const T* keep,
                                    const T* dz, const T* dld, T* dx, T* dt, T* dh, int n, int C, int HW, int c0,
                                    int ct) {
    X::for_each(std::size_t(n) * C * HW, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        coupling_image_affine_backward_at(scale, k, x, z, h, keep, dz, dld, dx, dt, dh, n, C, HW, c0, ct);
    });
}

template <bool Inverse, class X, class T>
void coupling_image_additive(X, const T* in, T* out, const T* t, const T* keep, int n, int C, int HW, int c0, int ct) {
    X::for_each(std::size_t(n) * C * HW, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        out[k] = coupling_image_additive_at<T, Inverse>(k, in, t, keep, n, C, HW, c0, ct);
    });
}

template <class X, class T>
void coupling_image_additive_backward(X, const T* dz, T* dx, T* dt, const T* keep, int n, int C, int HW, int c0,
                                      int ct) {
    X::for_each(std::size_t(n) * C * HW, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        coupling_image_additive_backward_at(k, dz, dx, dt, keep, n, C, HW, c0, ct);
    });
}

}  // namespace bijou::kernels::cuda_body

namespace bijou::kernels {

template <ExecutorBackend B, class T>
void coupling_mask_input(B, const T* x, const T* keep, T* xm, int n, int D) {
    cuda_body::coupling_mask_input(typename B::executor{}, x, keep, xm, n, D);
}

template <ExecutorBackend B, class T>
void coupling_affine_forward(B, CouplingScale scale, const T* x, T* z, const T* t, const T* h, int ldo,
                             const T* keep, double* ld, int n, int D) {
    cuda_body::coupling_affine_forward(typename B::executor{}, scale, x, z, t, h, ldo, keep, ld, n, D);
}

template <ExecutorBackend B, class T>
void coupling_affine_inverse(B, CouplingScale scale, const T* z, T* x, const T* t, const T* h, int ldo,
                             const T* keep, double* ld, int n, int D) {
    cuda_body::coupling_affine_inverse(typename B::executor{}, scale, z, x, t, h, ldo, keep, ld, n, D);
}

template <ExecutorBackend B, class T>
void coupling_affine_backward(B, CouplingScale scale, const T* x, const T* z, const T* /*t*/, const T* h, int ldo,
                              const T* keep, const T* dz, const T* dld, T* dx, T* dt, T* dh, int n, int D) {
    cuda_body::coupling_affine_backward(typename B::executor{}, scale, x, z, h, ldo, keep, dz, dld, dx, dt, dh, n, D);
}

template <ExecutorBackend B, class T>
void coupling_additive_forward(B, const T* x, T* z, const T* t, int ldo, const T* keep, int n, int D) {
    cuda_body::coupling_additive<false>(typename B::executor{}, x, z, t, ldo, keep, n, D);
}

template <ExecutorBackend B, class T>
void coupling_additive_inverse(B, const T* z, T* x, const T* t, int ldo, const T* keep, int n, int D) {
    cuda_body::coupling_additive<true>(typename B::executor{}, z, x, t, ldo, keep, n, D);
}

template <ExecutorBackend B, class T>
void coupling_additive_backward(B, const T* dz, T* dx, T* dt, int ldo, const T* keep, int n, int D) {
    cuda_body::coupling_additive_backward(typename B::executor{}, dz, dx, dt, ldo, keep, n, D);
}

template <ExecutorBackend B, class T>
void coupling_add_condition_grad(B, T* dx, const T* g1, const T* g2, const T* keep, int n, int D) {
    cuda_body::coupling_add_condition_grad(typename B::executor{}, dx, g1, g2, keep, n, D);
}

template <ExecutorBackend B, class T>
void coupling_image_input(B, const T* x, T* xm, const T* keep, int n, int C, int HW, int c0, int cn) {
    cuda_body::coupling_image_input(typename B::executor{}, x, xm, keep, n, C, HW, c0, cn);
}

template <ExecutorBackend B, class T>
void coupling_image_add_input_grad(B, T* dx, const T* g, const T* keep, int n, int C, int HW, int c0, int cn) {
    cuda_body::coupling_image_add_input_grad(typename B::executor{}, dx, g, keep, n, C, HW, c0, cn);
}

template <ExecutorBackend B, class T>
void coupling_image_affine_forward(B, CouplingScale scale, const T* x, T* z, const T* t, const T* h, const T* keep,
                                   double* ld, int n, int C, int HW, int c0, int ct) {
    cuda_body::coupling_image_affine_forward(typename B::executor{}, scale, x, z, t, h, keep, ld, n, C, HW, c0, ct);
}

template <ExecutorBackend B, class T>
void coupling_image_affine_inverse(B, CouplingScale scale, const T* z, T* x, const T* t, const T* h, const T* keep,
                                   double* ld, int n, int C, int HW, int c0, int ct) {
    cuda_body::coupling_image_affine_inverse(typename B::executor{}, scale, z, x, t, h, keep, ld, n, C, HW, c0, ct);
}

template <ExecutorBackend B, class T>
void coupling_image_affine_backward(B, CouplingScale scale, const T* x, const T* z, const T* h, const T* keep,
                                    const T* dz, const T* dld, T* dx, T* dt, T* dh, int n, int C, int HW, int c0,
                                    int ct) {
    cuda_body::coupling_image_affine_backward(typename B::executor{}, scale, x, z, h, keep, dz, dld, dx, dt, dh, n, C, HW, c0, ct);
}

template <ExecutorBackend B, class T>
void coupling_image_additive_forward(B, const T* x, T* z, const T* t, const T* keep, int n, int C, int HW, int c0,
                                     int ct) {
    cuda_body::coupling_image_additive<false>(typename B::executor{}, x, z, t, keep, n, C, HW, c0, ct);
}

template <ExecutorBackend B, class T>
void coupling_image_additive_inverse(B, const T* z, T* x, const T* t, const T* keep, int n, int C, int HW, int c0,
                                     int ct) {
    cuda_body::coupling_image_additive<true>(typename B::executor{}, z, x, t, keep, n, C, HW, c0, ct);
}

template <ExecutorBackend B, class T>
void coupling_image_additive_backward(B, const T* dz, T* dx, T* dt, const T* keep, int n, int C, int HW, int c0,
                                      int ct) {
    cuda_body::coupling_image_additive_backward(typename B::executor{}, dz, dx, dt, keep, n, C, HW, c0, ct);
}

}  // namespace bijou::kernels
