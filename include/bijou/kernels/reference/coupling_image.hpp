// bijou/kernels/reference/coupling_image.hpp — the elementwise half of an image coupling, plain loops.
//
// x, z, dx, dz: NCHW batches (n, C, HW). The conditioner's input xm and its outputs t, h (and dt,
// dh) are CHANNEL-MAJOR (rows, n·HW), element (c, i, p) at (c·n + i)·HW + p (see nn/conv2d.hpp).
// keep: a pixel mask (HW), 1 = kept, or null for none. Element (i, c, p) is TRANSFORMED iff
// c0 ≤ c < c0 + ct and (keep is null or keep[p] = 0); its shift and scale pre-activation are
// t(c − c0, i, p), h(c − c0, i, p). Every other element is copied (z = x).
//   channel split (Glow):  c0 = C/2, ct = C/2, keep null      checkerboard: c0 = 0, ct = C, keep = mask
// Formulas as kernels/reference/coupling.hpp:
//   affine, tanh     z = x·exp(tanh h) + t            log|det| = Σ tanh h            (RealNVP eq. 4–6)
//   affine, sigmoid  z = (x + t)·s, s = σ(h + 2)      log|det| = Σ log s = −Σ softplus(−(h + 2))  (Glow)
//   additive         z = x + t                         log|det| = 0                   (NICE)
// Log-dets accumulate per sample in double, channel by channel, pixel by pixel, into ld (+=; the
// inverse subtracts). backward assigns dx (the direct path only; coupling_image_add_input_grad adds
// the path through the conditioner) and assigns dt, dh over all ct rows: 0 where not transformed.
//   coupling_image_input        xm(c, i, p) = x(i, c0 + c, p)·[keep null or keep[p] ≠ 0], c < cn
//   coupling_image_add_input_grad  dx(i, c0 + c, p) += g(c, i, p) where keep is null or keep[p] ≠ 0
#pragma once

#include <cmath>
#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/kernels/coupling_scale.hpp"
#include "bijou/kernels/reference/coupling.hpp"

namespace bijou::kernels {

namespace detail {
template <class T>
bool transformed(const T* keep, int c, int p, int c0, int ct) {
    return c >= c0 && c < c0 + ct && (keep == nullptr || keep[p] == T(0));
}
}  // namespace detail

template <class T>
void coupling_image_input(Reference, const T* x, T* xm, const T* keep, int n, int C, int HW, int c0, int cn) {
    for (int c = 0; c < cn; ++c)
        for (int i = 0; i < n; ++i)
            for (int p = 0; p < HW; ++p) {
                const bool k = keep == nullptr || keep[p] != T(0);
                xm[(std::size_t(c) * n + i) * HW + p] = k ? x[(std::size_t(i) * C + c0 + c) * HW + p] : T(0);
            }
}

template <class T>
void coupling_image_add_input_grad(Reference, T* dx, const T* g, const T* keep, int n, int C, int HW, int c0, int cn) {
    for (int c = 0; c < cn; ++c)
        for (int i = 0; i < n; ++i)
            for (int p = 0; p < HW; ++p)
                if (keep == nullptr || keep[p] != T(0))
                    dx[(std::size_t(i) * C + c0 + c) * HW + p] += g[(std::size_t(c) * n + i) * HW + p];
}

template <class T>
void coupling_image_affine_forward(Reference, CouplingScale scale, const T* x, T* z, const T* t, const T* h,
                                   const T* keep, double* ld, int n, int C, int HW, int c0, int ct) {
    for (int i = 0; i < n; ++i) {
        double s = 0.0;
        for (int c = 0; c < C; ++c)
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = (std::size_t(i) * C + c) * HW + p;
                if (!detail::transformed(keep, c, p, c0, ct)) {
                    z[k] = x[k];
                    continue;
                }
                const std::size_t o = (std::size_t(c - c0) * n + i) * HW + p;
                if (scale == CouplingScale::tanh) {
                    const T log_s = std::tanh(h[o]);
                    z[k] = x[k] * std::exp(log_s) + t[o];
                    s += double(log_s);
                } else {
                    const T u = h[o] + T(2);
                    z[k] = (x[k] + t[o]) / (T(1) + std::exp(-u));
                    s -= double(detail::softplus(-u));
                }
            }
        ld[i] += s;
    }
}

template <class T>
void coupling_image_affine_inverse(Reference, CouplingScale scale, const T* z, T* x, const T* t, const T* h,
                                   const T* keep, double* ld, int n, int C, int HW, int c0, int ct) {
    for (int i = 0; i < n; ++i) {
        double s = 0.0;
        for (int c = 0; c < C; ++c)
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = (std::size_t(i) * C + c) * HW + p;
                if (!detail::transformed(keep, c, p, c0, ct)) {
                    x[k] = z[k];
                    continue;
                }
                const std::size_t o = (std::size_t(c - c0) * n + i) * HW + p;
                if (scale == CouplingScale::tanh) {
                    const T log_s = std::tanh(h[o]);
                    x[k] = (z[k] - t[o]) * std::exp(-log_s);
                    s += double(log_s);
                } else {
                    const T u = h[o] + T(2);
                    x[k] = z[k] * (T(1) + std::exp(-u)) - t[o];
                    s -= double(detail::softplus(-u));
                }
            }
        ld[i] -= s;
    }
}

/// For ∂L/∂z = dz and ∂L/∂ld = dld (per sample), at transformed elements:
///   tanh:    dx = dz·e^{log s}, dt = dz,   dh = (dz·x·e^{log s} + dld)·(1 − tanh² h)
///   sigmoid: dx = dz·s,         dt = dz·s, dh = (dz·z + dld)·(1 − s)
/// dx = dz elsewhere; dt = dh = 0 at rows' untransformed (kept-pixel) positions.
template <class T>
void coupling_image_affine_backward(Reference, CouplingScale scale, const T* x, const T* z, const T* h,
                                    const T* keep, const T* dz, const T* dld, T* dx, T* dt, T* dh, int n, int C,
                                    int HW, int c0, int ct) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C; ++c)
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = (std::size_t(i) * C + c) * HW + p;
                const bool in_rows = c >= c0 && c < c0 + ct;
                const std::size_t o = in_rows ? (std::size_t(c - c0) * n + i) * HW + p : 0;
                if (!detail::transformed(keep, c, p, c0, ct)) {
                    dx[k] = dz[k];
                    if (in_rows) dt[o] = dh[o] = T(0);
                } else if (scale == CouplingScale::tanh) {
                    const T log_s = std::tanh(h[o]), e = std::exp(log_s);
                    dx[k] = dz[k] * e;
                    dt[o] = dz[k];
                    dh[o] = (dz[k] * x[k] * e + dld[i]) * (T(1) - log_s * log_s);
                } else {
                    const T u = h[o] + T(2);
                    const T s = T(1) / (T(1) + std::exp(-u)), one_minus_s = T(1) / (T(1) + std::exp(u));
                    dx[k] = dz[k] * s;
                    dt[o] = dz[k] * s;
                    dh[o] = (dz[k] * z[k] + dld[i]) * one_minus_s;
                }
            }
}

template <class T>
void coupling_image_additive_forward(Reference, const T* x, T* z, const T* t, const T* keep, int n, int C, int HW,
                                     int c0, int ct) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C; ++c)
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = (std::size_t(i) * C + c) * HW + p;
                z[k] = detail::transformed(keep, c, p, c0, ct) ? x[k] + t[(std::size_t(c - c0) * n + i) * HW + p]
                                                               : x[k];
            }
}

template <class T>
void coupling_image_additive_inverse(Reference, const T* z, T* x, const T* t, const T* keep, int n, int C, int HW,
                                     int c0, int ct) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C; ++c)
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = (std::size_t(i) * C + c) * HW + p;
                x[k] = detail::transformed(keep, c, p, c0, ct) ? z[k] - t[(std::size_t(c - c0) * n + i) * HW + p]
                                                               : z[k];
            }
}

/// dx = dz (direct path); dt = dz at transformed elements, 0 elsewhere in its rows.
template <class T>
void coupling_image_additive_backward(Reference, const T* dz, T* dx, T* dt, const T* keep, int n, int C, int HW,
                                      int c0, int ct) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C; ++c)
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = (std::size_t(i) * C + c) * HW + p;
                dx[k] = dz[k];
                if (c >= c0 && c < c0 + ct)
                    dt[(std::size_t(c - c0) * n + i) * HW + p] = detail::transformed(keep, c, p, c0, ct) ? dz[k] : T(0);
            }
}

}  // namespace bijou::kernels
