// bijou/kernels/cpu/coupling.hpp — the elementwise half of a masked coupling for the Cpu backend.
// Same contracts as kernels/reference/coupling.hpp. Rows are split across OpenMP threads when the
// batch is large. The scale function is chosen once per call, outside the loops. Loops that call
// exp/tanh/log1p carry no `omp simd`: without a vector libm (it needs -ffast-math) they would not
// vectorise, and Clang warns about a simd loop it cannot vectorise. Per-sample log-dets are
// summed in double in coordinate order, as in Reference.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/coupling_scale.hpp"
#include "bijou/kernels/reference/coupling.hpp"

namespace bijou::kernels {

namespace detail {

inline constexpr std::size_t coupling_parallel_min = 32768;

/// log s = tanh h (RealNVP).
struct TanhScale {
    template <class T>
    struct Value {
        T log_s, s, dlog_s;  // log s, s, d(log s)/dh
    };
    template <class T>
    static Value<T> eval(T h) {
        const T ls = std::tanh(h);
        return {ls, std::exp(ls), T(1) - ls * ls};
    }
};

/// s = σ(h + 2) (Glow); log s = −softplus(−u) and 1 − s = σ(−u) computed without cancellation.
struct SigmoidScale {
    template <class T>
    struct Value {
        T log_s, s, dlog_s;  // log s, s, d(log s)/dh = 1 − s
    };
    template <class T>
    static Value<T> eval(T h) {
        const T u = h + T(2);
        const T e = std::exp(-std::abs(u)), r = T(1) / (T(1) + e);
        const T s = u >= T(0) ? r : e * r, one_minus_s = u >= T(0) ? e * r : r;
        return {std::min(u, T(0)) - std::log1p(e), s, one_minus_s};
    }
};

template <class F>
void with_scale(CouplingScale scale, F&& f) {
    if (scale == CouplingScale::tanh) f(TanhScale{});
    else f(SigmoidScale{});
}

}  // namespace detail

template <class T>
void coupling_mask_input(Cpu, const T* x, const T* keep, T* xm, int n, int D) {
    bijou::detail::parallel_for(int(n), std::size_t(n) * D > detail::coupling_parallel_min, [&](int i) {
        const T* xr = x + std::size_t(i) * D;
        T* mr = xm + std::size_t(i) * D;
#pragma omp simd
        for (int j = 0; j < D; ++j) mr[j] = keep[j] != T(0) ? xr[j] : T(0);
    });
}

template <class T>
void coupling_affine_forward(Cpu, CouplingScale scale, const T* x, T* z, const T* t, const T* h, int ldo,
                             const T* keep, double* ld, int n, int D) {
    detail::with_scale(scale, [&]<class Sc>(Sc) {
        bijou::detail::parallel_for(int(n), std::size_t(n) * D > detail::coupling_parallel_min, [&](int i) {
            const T* xr = x + std::size_t(i) * D;
            T* zr = z + std::size_t(i) * D;
            const T* tr = t + std::size_t(i) * ldo;
            const T* hr = h + std::size_t(i) * ldo;
            double s = 0.0;
            for (int j = 0; j < D; ++j) {
                if (keep[j] != T(0)) {
                    zr[j] = xr[j];
                    continue;
                }
                const auto v = Sc::eval(hr[j]);
                if constexpr (std::is_same_v<Sc, detail::TanhScale>) zr[j] = xr[j] * v.s + tr[j];
                else zr[j] = (xr[j] + tr[j]) * v.s;
                s += double(v.log_s);
            }
            ld[i] += s;
        });
    });
}

template <class T>
void coupling_affine_inverse(Cpu, CouplingScale scale, const T* z, T* x, const T* t, const T* h, int ldo,
                             const T* keep, double* ld, int n, int D) {
    detail::with_scale(scale, [&]<class Sc>(Sc) {
        bijou::detail::parallel_for(int(n), std::size_t(n) * D > detail::coupling_parallel_min, [&](int i) {
            const T* zr = z + std::size_t(i) * D;
            T* xr = x + std::size_t(i) * D;
            const T* tr = t + std::size_t(i) * ldo;
            const T* hr = h + std::size_t(i) * ldo;
            double s = 0.0;
            for (int j = 0; j < D; ++j) {
                if (keep[j] != T(0)) {
                    xr[j] = zr[j];
                    continue;
                }
                const auto v = Sc::eval(hr[j]);
                if constexpr (std::is_same_v<Sc, detail::TanhScale>) xr[j] = (zr[j] - tr[j]) * std::exp(-v.log_s);
                else xr[j] = zr[j] / v.s - tr[j];
                s += double(v.log_s);
            }
            ld[i] -= s;
        });
    });
}

template <class T>
void coupling_affine_backward(Cpu, CouplingScale scale, const T* x, const T* z, const T* t, const T* h, int ldo,
                              const T* keep, const T* dz, const T* dld, T* dx, T* dt, T* dh, int n, int D) {
    (void)t;
    detail::with_scale(scale, [&]<class Sc>(Sc) {
        bijou::detail::parallel_for(int(n), std::size_t(n) * D > detail::coupling_parallel_min, [&](int i) {
            const std::size_t r = std::size_t(i) * D, o = std::size_t(i) * ldo;
            const T g = dld[i];
            for (int j = 0; j < D; ++j) {
                if (keep[j] != T(0)) {
                    dx[r + j] = dz[r + j];
                    dt[o + j] = dh[o + j] = T(0);
                    continue;
                }
                const auto v = Sc::eval(h[o + j]);
                dx[r + j] = dz[r + j] * v.s;
                if constexpr (std::is_same_v<Sc, detail::TanhScale>) {
                    dt[o + j] = dz[r + j];
                    dh[o + j] = (dz[r + j] * x[r + j] * v.s + g) * v.dlog_s;
                } else {
                    dt[o + j] = dz[r + j] * v.s;
                    dh[o + j] = (dz[r + j] * z[r + j] + g) * v.dlog_s;
                }
            }
        });
    });
}

template <class T>
void coupling_additive_forward(Cpu, const T* x, T* z, const T* t, int ldo, const T* keep, int n, int D) {
    bijou::detail::parallel_for(int(n), std::size_t(n) * D > detail::coupling_parallel_min, [&](int i) {
        const T* xr = x + std::size_t(i) * D;
        const T* tr = t + std::size_t(i) * ldo;
        T* zr = z + std::size_t(i) * D;
#pragma omp simd
        for (int j = 0; j < D; ++j) zr[j] = keep[j] != T(0) ? xr[j] : xr[j] + tr[j];
    });
}

template <class T>
void coupling_additive_inverse(Cpu, const T* z, T* x, const T* t, int ldo, const T* keep, int n, int D) {
    bijou::detail::parallel_for(int(n), std::size_t(n) * D > detail::coupling_parallel_min, [&](int i) {
        const T* zr = z + std::size_t(i) * D;
        const T* tr = t + std::size_t(i) * ldo;
        T* xr = x + std::size_t(i) * D;
#pragma omp simd
        for (int j = 0; j < D; ++j) xr[j] = keep[j] != T(0) ? zr[j] : zr[j] - tr[j];
    });
}

template <class T>
void coupling_additive_backward(Cpu, const T* dz, T* dx, T* dt, int ldo, const T* keep, int n, int D) {
    bijou::detail::parallel_for(int(n), std::size_t(n) * D > detail::coupling_parallel_min, [&](int i) {
        const T* gr = dz + std::size_t(i) * D;
        T* xr = dx + std::size_t(i) * D;
        T* tr = dt + std::size_t(i) * ldo;
#pragma omp simd
        for (int j = 0; j < D; ++j) {
            xr[j] = gr[j];
            tr[j] = keep[j] != T(0) ? T(0) : gr[j];
        }
    });
}

template <class T>
void coupling_add_condition_grad(Cpu, T* dx, const T* g1, const T* g2, const T* keep, int n, int D) {
    bijou::detail::parallel_for(int(n), std::size_t(n) * D > detail::coupling_parallel_min, [&](int i) {
        const std::size_t r = std::size_t(i) * D;
        if (g2 != nullptr) {
#pragma omp simd
            for (int j = 0; j < D; ++j) dx[r + j] = keep[j] != T(0) ? (dx[r + j] + g1[r + j]) + g2[r + j] : dx[r + j];
        } else {
#pragma omp simd
            for (int j = 0; j < D; ++j) dx[r + j] = keep[j] != T(0) ? dx[r + j] + g1[r + j] : dx[r + j];
        }
    });
}

}  // namespace bijou::kernels
