// bijou/kernels/cpu/coupling.hpp — the elementwise half of a masked coupling for the Cpu backend.
// Same contracts as kernels/reference/coupling.hpp. The affine passes run the Reference kernels'
// per-row bodies, so the two agree bit for bit; the others use the same element formulas
// (kernels/coupling_formula.hpp) in SIMD loops. Rows are split across OpenMP threads when the batch
// is large. Loops that call exp/tanh/log1p carry no `omp simd`: without a vector libm (it needs
// -ffast-math) they would not vectorise, and Clang warns about a simd loop it cannot vectorise.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/coupling_formula.hpp"
#include "bijou/kernels/coupling_scale.hpp"
#include "bijou/kernels/reference/coupling.hpp"

namespace bijou::kernels {

namespace detail {

inline constexpr std::size_t coupling_parallel_min = 32768;

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
    coupling_formula::with_scale(scale, [&]<class Sc>(Sc) {
        bijou::detail::parallel_for(int(n), std::size_t(n) * D > detail::coupling_parallel_min, [&](int i) {
            const std::size_t r = std::size_t(i) * D, o = std::size_t(i) * ldo;
            const double s = detail::coupling_affine_row<false, Sc::value>(x + r, z + r, t + o, h + o, keep, D);
            if (ld != nullptr) ld[i] += s;
        });
    });
}

template <class T>
void coupling_affine_inverse(Cpu, CouplingScale scale, const T* z, T* x, const T* t, const T* h, int ldo,
                             const T* keep, double* ld, int n, int D) {
    coupling_formula::with_scale(scale, [&]<class Sc>(Sc) {
        bijou::detail::parallel_for(int(n), std::size_t(n) * D > detail::coupling_parallel_min, [&](int i) {
            const std::size_t r = std::size_t(i) * D, o = std::size_t(i) * ldo;
            const double s = detail::coupling_affine_row<true, Sc::value>(z + r, x + r, t + o, h + o, keep, D);
            if (ld != nullptr) ld[i] -= s;
        });
    });
}

template <class T>
void coupling_affine_backward(Cpu, CouplingScale scale, const T* x, const T* z, const T* t, const T* h, int ldo,
                              const T* keep, const T* dz, const T* dld, T* dx, T* dt, T* dh, int n, int D) {
    (void)t;
    coupling_formula::with_scale(scale, [&]<class Sc>(Sc) {
        bijou::detail::parallel_for(int(n), std::size_t(n) * D > detail::coupling_parallel_min, [&](int i) {
            const std::size_t r = std::size_t(i) * D, o = std::size_t(i) * ldo;
            detail::coupling_affine_backward_row<Sc::value>(x + r, z + r, h + o, keep, dz + r, dld[i], dx + r, dt + o,
                                                            dh + o, D);
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
        for (int j = 0; j < D; ++j) zr[j] = keep[j] != T(0) ? xr[j] : coupling_formula::additive_forward(xr[j], tr[j]);
    });
}

template <class T>
void coupling_additive_inverse(Cpu, const T* z, T* x, const T* t, int ldo, const T* keep, int n, int D) {
    bijou::detail::parallel_for(int(n), std::size_t(n) * D > detail::coupling_parallel_min, [&](int i) {
        const T* zr = z + std::size_t(i) * D;
        const T* tr = t + std::size_t(i) * ldo;
        T* xr = x + std::size_t(i) * D;
#pragma omp simd
        for (int j = 0; j < D; ++j) xr[j] = keep[j] != T(0) ? zr[j] : coupling_formula::additive_inverse(zr[j], tr[j]);
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
        if (keep == nullptr) {
#pragma omp simd
            for (int j = 0; j < D; ++j) dx[r + j] = g2 != nullptr ? (dx[r + j] + g1[r + j]) + g2[r + j] : dx[r + j] + g1[r + j];
        } else if (g2 != nullptr) {
#pragma omp simd
            for (int j = 0; j < D; ++j) dx[r + j] = keep[j] != T(0) ? (dx[r + j] + g1[r + j]) + g2[r + j] : dx[r + j];
        } else {
#pragma omp simd
            for (int j = 0; j < D; ++j) dx[r + j] = keep[j] != T(0) ? dx[r + j] + g1[r + j] : dx[r + j];
        }
    });
}

}  // namespace bijou::kernels
