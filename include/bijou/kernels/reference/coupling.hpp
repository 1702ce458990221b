// bijou/kernels/reference/coupling.hpp — the elementwise half of a masked coupling, plain loops.
//
// x, z, dx, dz, xm: (n, D) row-major; keep: (D), 1 = kept (conditioning), 0 = transformed.
// t, h: conditioner outputs (shift, scale pre-activation); row i of t starts at t + i·ldo
// (ldo = D for separate nets, 2D for a shared net whose row is [t | h]); dt, dh likewise.
// Only the transformed coordinates of t and h are read; dt, dh are 0 at kept coordinates.
//   affine, tanh     z = x·s + t,   log s = tanh h            log|det| = Σ log s     (RealNVP eq. 4–6)
//   affine, sigmoid  z = (x + t)·s, s = σ(h + 2)              log|det| = Σ log s     (Glow)
//   additive         z = x + t                                 log|det| = 0           (NICE)
// The element formulas (and their backward) are kernels/coupling_formula.hpp's, shared by every backend.
// Kept coordinates are copied (z = x). Log-dets accumulate per sample in double into ld (+=;
// the inverse subtracts). The affine passes also serve autoregressive flows: keep may be null there
// (every coordinate transformed), and so may ld (no log-det wanted: a sampling pass of a MAF). backward assigns dx (the direct path only: the caller adds the path
// through the conditioner) and assigns dt, dh.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/kernels/coupling_formula.hpp"
#include "bijou/kernels/coupling_scale.hpp"

namespace bijou::kernels {

/// xm = x ⊙ keep (the conditioner's input).
template <class T>
void coupling_mask_input(Reference, const T* x, const T* keep, T* xm, int n, int D) {
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < D; ++j) {
            const std::size_t k = std::size_t(i) * D + j;
            xm[k] = keep[j] != T(0) ? x[k] : T(0);
        }
}

namespace detail {

/// One sample's row of the affine coupling, forward (in = x, out = z) or Inverse (in = z, out = x):
/// kept coordinates are copied; returns Σ log s over the transformed ones. t, h: the row's
/// conditioner outputs. The Cpu backend runs the same body per sample.
template <bool Inverse, CouplingScale S, class T>
double coupling_affine_row(const T* in, T* out, const T* t, const T* h, const T* keep, int D) {
    double s = 0.0;
    for (int j = 0; j < D; ++j) {
        if (keep != nullptr && keep[j] != T(0)) {
            out[j] = in[j];
            continue;
        }
        const auto r = Inverse ? coupling_formula::affine_inverse<S>(in[j], t[j], h[j])
                               : coupling_formula::affine_forward<S>(in[j], t[j], h[j]);
        out[j] = r.value;
        s += double(r.log_det);
    }
    return s;
}

/// One sample's row of coupling_affine_backward; g = ∂L/∂ld of the sample.
template <CouplingScale S, class T>
void coupling_affine_backward_row(const T* x, const T* z, const T* h, const T* keep, const T* dz, T g, T* dx, T* dt,
                                  T* dh, int D) {
    for (int j = 0; j < D; ++j) {
        if (keep != nullptr && keep[j] != T(0)) {
            dx[j] = dz[j];
            dt[j] = dh[j] = T(0);
            continue;
        }
        const auto d = coupling_formula::affine_backward<S>(x[j], z[j], h[j], dz[j], g);
        dx[j] = d.dx;
        dt[j] = d.dt;
        dh[j] = d.dh;
    }
}

}  // namespace detail

template <class T>
void coupling_affine_forward(Reference, CouplingScale scale, const T* x, T* z, const T* t, const T* h, int ldo,
                             const T* keep, double* ld, int n, int D) {
    coupling_formula::with_scale(scale, [&]<class Sc>(Sc) {
        for (int i = 0; i < n; ++i) {
            const std::size_t r = std::size_t(i) * D, o = std::size_t(i) * ldo;
            const double s = detail::coupling_affine_row<false, Sc::value>(x + r, z + r, t + o, h + o, keep, D);
            if (ld != nullptr) ld[i] += s;
        }
    });
}

template <class T>
void coupling_affine_inverse(Reference, CouplingScale scale, const T* z, T* x, const T* t, const T* h, int ldo,
                             const T* keep, double* ld, int n, int D) {
    coupling_formula::with_scale(scale, [&]<class Sc>(Sc) {
        for (int i = 0; i < n; ++i) {
            const std::size_t r = std::size_t(i) * D, o = std::size_t(i) * ldo;
            const double s = detail::coupling_affine_row<true, Sc::value>(z + r, x + r, t + o, h + o, keep, D);
            if (ld != nullptr) ld[i] -= s;
        }
    });
}

/// For ∂L/∂z = dz and ∂L/∂ld = dld (per sample): coupling_formula::affine_backward at transformed
/// coordinates; dx = dz, dt = dh = 0 at kept ones.
template <class T>
void coupling_affine_backward(Reference, CouplingScale scale, const T* x, const T* z, const T* t, const T* h,
                              int ldo, const T* keep, const T* dz, const T* dld, T* dx, T* dt, T* dh, int n, int D) {
    (void)t;
    coupling_formula::with_scale(scale, [&]<class Sc>(Sc) {
        for (int i = 0; i < n; ++i) {
            const std::size_t r = std::size_t(i) * D, o = std::size_t(i) * ldo;
            detail::coupling_affine_backward_row<Sc::value>(x + r, z + r, h + o, keep, dz + r, dld[i], dx + r, dt + o,
                                                            dh + o, D);
        }
    });
}

template <class T>
void coupling_additive_forward(Reference, const T* x, T* z, const T* t, int ldo, const T* keep, int n, int D) {
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < D; ++j) {
            const std::size_t k = std::size_t(i) * D + j;
            z[k] = keep[j] != T(0) ? x[k] : coupling_formula::additive_forward(x[k], t[std::size_t(i) * ldo + j]);
        }
}

template <class T>
void coupling_additive_inverse(Reference, const T* z, T* x, const T* t, int ldo, const T* keep, int n, int D) {
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < D; ++j) {
            const std::size_t k = std::size_t(i) * D + j;
            x[k] = keep[j] != T(0) ? z[k] : coupling_formula::additive_inverse(z[k], t[std::size_t(i) * ldo + j]);
        }
}

/// dx = dz (direct path); dt = dz at transformed coordinates, 0 at kept ones.
template <class T>
void coupling_additive_backward(Reference, const T* dz, T* dx, T* dt, int ldo, const T* keep, int n, int D) {
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < D; ++j) {
            const std::size_t k = std::size_t(i) * D + j;
            dx[k] = dz[k];
            dt[std::size_t(i) * ldo + j] = keep[j] != T(0) ? T(0) : dz[k];
        }
}

/// dx += keep ⊙ (g1 + g2): the path through the conditioner (g2 may be null: one net; keep may be
/// null: every coordinate).
template <class T>
void coupling_add_condition_grad(Reference, T* dx, const T* g1, const T* g2, const T* keep, int n, int D) {
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < D; ++j) {
            const std::size_t k = std::size_t(i) * D + j;
            if (keep != nullptr && keep[j] == T(0)) continue;
            dx[k] += g1[k];
            if (g2 != nullptr) dx[k] += g2[k];
        }
}

}  // namespace bijou::kernels
