// bijou/kernels/reference/coupling_image.hpp — the elementwise half of an image coupling, plain loops.
//
// x, z, dx, dz: NCHW batches (n, C, HW). The conditioner's input xm and its outputs t, h (and dt,
// dh) are CHANNEL-MAJOR (rows, n·HW), element (c, i, p) at (c·n + i)·HW + p (see nn/conv2d.hpp).
// keep: a pixel mask (HW), 1 = kept, or null for none. Element (i, c, p) is TRANSFORMED iff
// c0 ≤ c < c0 + ct and (keep is null or keep[p] = 0); its shift and scale pre-activation are
// t(c − c0, i, p), h(c − c0, i, p). Every other element is copied (z = x).
//   channel split (Glow):  c0 = C/2, ct = C/2, keep null      checkerboard: c0 = 0, ct = C, keep = mask
// The element formulas are kernels/coupling_formula.hpp's (as in kernels/reference/coupling.hpp):
//   affine, tanh     z = x·s + t,   log s = tanh h            log|det| = Σ log s     (RealNVP eq. 4–6)
//   affine, sigmoid  z = (x + t)·s, s = σ(h + 2)              log|det| = Σ log s     (Glow)
//   additive         z = x + t                                 log|det| = 0           (NICE)
// Log-dets accumulate per sample in double, channel by channel, pixel by pixel, into ld (+=; the
// inverse subtracts). backward assigns dx (the direct path only; coupling_image_add_input_grad adds
// the path through the conditioner) and assigns dt, dh over all ct rows: 0 where not transformed.
//   coupling_image_input        xm(c, i, p) = x(i, c0 + c, p)·[keep null or keep[p] ≠ 0], c < cn
//   coupling_image_add_input_grad  dx(i, c0 + c, p) += g(c, i, p) where keep is null or keep[p] ≠ 0
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/kernels/coupling_formula.hpp"
#include "bijou/kernels/coupling_scale.hpp"

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

namespace detail {

/// Sample i of the image affine coupling, forward (in = x, out = z) or Inverse (in = z, out = x):
/// channels outside [c0, c0 + ct) and kept pixels are copied; returns Σ log s over the transformed
/// elements, channel by channel, pixel by pixel. (The Cpu backend's body, kernels/cpu/coupling_image.hpp,
/// is the same with vectorisable float exp, log1p and tanh and a blocked double sum.)
template <bool Inverse, CouplingScale S, class T>
double coupling_image_affine_sample(int i, const T* in, T* out, const T* t, const T* h, const T* keep, int n, int C,
                                    int HW, int c0, int ct) {
    double s = 0.0;
    for (int c = 0; c < C; ++c) {
        const T* src = in + (std::size_t(i) * C + c) * HW;
        T* dst = out + (std::size_t(i) * C + c) * HW;
        if (c < c0 || c >= c0 + ct) {
            for (int p = 0; p < HW; ++p) dst[p] = src[p];
            continue;
        }
        const T* tr = t + (std::size_t(c - c0) * n + i) * HW;
        const T* hr = h + (std::size_t(c - c0) * n + i) * HW;
        for (int p = 0; p < HW; ++p) {
            if (keep != nullptr && keep[p] != T(0)) {
                dst[p] = src[p];
                continue;
            }
            const auto r = Inverse ? coupling_formula::affine_inverse<S>(src[p], tr[p], hr[p])
                                   : coupling_formula::affine_forward<S>(src[p], tr[p], hr[p]);
            dst[p] = r.value;
            s += double(r.log_det);
        }
    }
    return s;
}

/// Sample i of coupling_image_affine_backward; g = ∂L/∂ld of the sample.
template <CouplingScale S, class T>
void coupling_image_affine_backward_sample(int i, const T* x, const T* z, const T* h, const T* keep, const T* dz, T g,
                                           T* dx, T* dt, T* dh, int n, int C, int HW, int c0, int ct) {
    for (int c = 0; c < C; ++c) {
        const std::size_t r = (std::size_t(i) * C + c) * HW;
        if (c < c0 || c >= c0 + ct) {
            for (int p = 0; p < HW; ++p) dx[r + p] = dz[r + p];
            continue;
        }
        const std::size_t o = (std::size_t(c - c0) * n + i) * HW;
        for (int p = 0; p < HW; ++p) {
            if (keep != nullptr && keep[p] != T(0)) {
                dx[r + p] = dz[r + p];
                dt[o + p] = dh[o + p] = T(0);
                continue;
            }
            const auto d = coupling_formula::affine_backward<S>(x[r + p], z[r + p], h[o + p], dz[r + p], g);
            dx[r + p] = d.dx;
            dt[o + p] = d.dt;
            dh[o + p] = d.dh;
        }
    }
}

}  // namespace detail

template <class T>
void coupling_image_affine_forward(Reference, CouplingScale scale, const T* x, T* z, const T* t, const T* h,
                                   const T* keep, double* ld, int n, int C, int HW, int c0, int ct) {
    coupling_formula::with_scale(scale, [&]<class Sc>(Sc) {
        for (int i = 0; i < n; ++i)
            ld[i] += detail::coupling_image_affine_sample<false, Sc::value>(i, x, z, t, h, keep, n, C, HW, c0, ct);
    });
}

template <class T>
void coupling_image_affine_inverse(Reference, CouplingScale scale, const T* z, T* x, const T* t, const T* h,
                                   const T* keep, double* ld, int n, int C, int HW, int c0, int ct) {
    coupling_formula::with_scale(scale, [&]<class Sc>(Sc) {
        for (int i = 0; i < n; ++i)
            ld[i] -= detail::coupling_image_affine_sample<true, Sc::value>(i, z, x, t, h, keep, n, C, HW, c0, ct);
    });
}

/// For ∂L/∂z = dz and ∂L/∂ld = dld (per sample): coupling_formula::affine_backward at transformed
/// elements; dx = dz elsewhere; dt = dh = 0 at rows' untransformed (kept-pixel) positions.
template <class T>
void coupling_image_affine_backward(Reference, CouplingScale scale, const T* x, const T* z, const T* h,
                                    const T* keep, const T* dz, const T* dld, T* dx, T* dt, T* dh, int n, int C,
                                    int HW, int c0, int ct) {
    coupling_formula::with_scale(scale, [&]<class Sc>(Sc) {
        for (int i = 0; i < n; ++i)
            detail::coupling_image_affine_backward_sample<Sc::value>(i, x, z, h, keep, dz, dld[i], dx, dt, dh, n, C,
                                                                     HW, c0, ct);
    });
}

template <class T>
void coupling_image_additive_forward(Reference, const T* x, T* z, const T* t, const T* keep, int n, int C, int HW,
                                     int c0, int ct) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C; ++c)
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = (std::size_t(i) * C + c) * HW + p;
                z[k] = detail::transformed(keep, c, p, c0, ct) ? coupling_formula::additive_forward(x[k], t[(std::size_t(c - c0) * n + i) * HW + p])
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
                x[k] = detail::transformed(keep, c, p, c0, ct) ? coupling_formula::additive_inverse(z[k], t[(std::size_t(c - c0) * n + i) * HW + p])
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
