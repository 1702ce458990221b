// bijou/kernels/cpu/coupling_image.hpp — the elementwise half of an image coupling, Cpu backend.
// Same contracts as kernels/reference/coupling_image.hpp. The affine passes split the batch across
// OpenMP threads by sample and run the Reference kernels' per-sample bodies (each sample's log-det is
// one thread's double sum, in the Reference order), so the two agree bit for bit; the additive and
// layout passes use the same element formulas (kernels/coupling_formula.hpp) in SIMD loops, split by
// sample or by (channel, sample) blocks of HW. Untouched channels are plain SIMD copies.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/kernels/coupling_formula.hpp"
#include "bijou/kernels/coupling_scale.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/cpu/coupling.hpp"
#include "bijou/kernels/reference/coupling_image.hpp"

namespace bijou::kernels {

namespace detail {

/// f(i) for every sample, across threads when the batch (n·C·HW elements) is large.
template <class F>
void for_samples(int n, int C, int HW, F&& f) {
    bijou::detail::parallel_for(n, std::size_t(n) * C * HW > coupling_parallel_min, f);
}

template <class T>
void copy_block(const T* s, T* d, int HW) {
#pragma omp simd
    for (int p = 0; p < HW; ++p) d[p] = s[p];
}

}  // namespace detail

template <class T>
void coupling_image_input(Cpu, const T* x, T* xm, const T* keep, int n, int C, int HW, int c0, int cn) {
    bijou::detail::parallel_for(cn * n, std::size_t(cn) * n * HW > detail::coupling_parallel_min, [&](int task) {
        const int c = task / n, i = task % n;
        const T* s = x + (std::size_t(i) * C + c0 + c) * HW;
        T* d = xm + (std::size_t(c) * n + i) * HW;
        if (keep == nullptr) {
            detail::copy_block(s, d, HW);
        } else {
#pragma omp simd
            for (int p = 0; p < HW; ++p) d[p] = keep[p] != T(0) ? s[p] : T(0);
        }
    });
}

template <class T>
void coupling_image_add_input_grad(Cpu, T* dx, const T* g, const T* keep, int n, int C, int HW, int c0, int cn) {
    bijou::detail::parallel_for(cn * n, std::size_t(cn) * n * HW > detail::coupling_parallel_min, [&](int task) {
        const int c = task / n, i = task % n;
        const T* s = g + (std::size_t(c) * n + i) * HW;
        T* d = dx + (std::size_t(i) * C + c0 + c) * HW;
        if (keep == nullptr) {
#pragma omp simd
            for (int p = 0; p < HW; ++p) d[p] += s[p];
        } else {
#pragma omp simd
            for (int p = 0; p < HW; ++p) d[p] = keep[p] != T(0) ? d[p] + s[p] : d[p];
        }
    });
}

template <class T>
void coupling_image_affine_forward(Cpu, CouplingScale scale, const T* x, T* z, const T* t, const T* h, const T* keep,
                                   double* ld, int n, int C, int HW, int c0, int ct) {
    coupling_formula::with_scale(scale, [&]<class Sc>(Sc) {
        detail::for_samples(n, C, HW, [&](int i) {
            ld[i] += detail::coupling_image_affine_sample<false, Sc::value>(i, x, z, t, h, keep, n, C, HW, c0, ct);
        });
    });
}

template <class T>
void coupling_image_affine_inverse(Cpu, CouplingScale scale, const T* z, T* x, const T* t, const T* h, const T* keep,
                                   double* ld, int n, int C, int HW, int c0, int ct) {
    coupling_formula::with_scale(scale, [&]<class Sc>(Sc) {
        detail::for_samples(n, C, HW, [&](int i) {
            ld[i] -= detail::coupling_image_affine_sample<true, Sc::value>(i, z, x, t, h, keep, n, C, HW, c0, ct);
        });
    });
}

template <class T>
void coupling_image_affine_backward(Cpu, CouplingScale scale, const T* x, const T* z, const T* h, const T* keep,
                                    const T* dz, const T* dld, T* dx, T* dt, T* dh, int n, int C, int HW, int c0,
                                    int ct) {
    coupling_formula::with_scale(scale, [&]<class Sc>(Sc) {
        detail::for_samples(n, C, HW, [&](int i) {
            detail::coupling_image_affine_backward_sample<Sc::value>(i, x, z, h, keep, dz, dld[i], dx, dt, dh, n, C,
                                                                     HW, c0, ct);
        });
    });
}

template <class T>
void coupling_image_additive_forward(Cpu, const T* x, T* z, const T* t, const T* keep, int n, int C, int HW, int c0,
                                     int ct) {
    detail::for_samples(n, C, HW, [&](int i) {
        for (int c = 0; c < C; ++c) {
            const T* xr = x + (std::size_t(i) * C + c) * HW;
            T* zr = z + (std::size_t(i) * C + c) * HW;
            if (c < c0 || c >= c0 + ct) {
                detail::copy_block(xr, zr, HW);
                continue;
            }
            const T* tr = t + (std::size_t(c - c0) * n + i) * HW;
            if (keep == nullptr) {
#pragma omp simd
                for (int p = 0; p < HW; ++p) zr[p] = coupling_formula::additive_forward(xr[p], tr[p]);
            } else {
#pragma omp simd
                for (int p = 0; p < HW; ++p) zr[p] = keep[p] != T(0) ? xr[p] : coupling_formula::additive_forward(xr[p], tr[p]);
            }
        }
    });
}

template <class T>
void coupling_image_additive_inverse(Cpu, const T* z, T* x, const T* t, const T* keep, int n, int C, int HW, int c0,
                                     int ct) {
    detail::for_samples(n, C, HW, [&](int i) {
        for (int c = 0; c < C; ++c) {
            const T* zr = z + (std::size_t(i) * C + c) * HW;
            T* xr = x + (std::size_t(i) * C + c) * HW;
            if (c < c0 || c >= c0 + ct) {
                detail::copy_block(zr, xr, HW);
                continue;
            }
            const T* tr = t + (std::size_t(c - c0) * n + i) * HW;
            if (keep == nullptr) {
#pragma omp simd
                for (int p = 0; p < HW; ++p) xr[p] = coupling_formula::additive_inverse(zr[p], tr[p]);
            } else {
#pragma omp simd
                for (int p = 0; p < HW; ++p) xr[p] = keep[p] != T(0) ? zr[p] : coupling_formula::additive_inverse(zr[p], tr[p]);
            }
        }
    });
}

template <class T>
void coupling_image_additive_backward(Cpu, const T* dz, T* dx, T* dt, const T* keep, int n, int C, int HW, int c0,
                                      int ct) {
    detail::for_samples(n, C, HW, [&](int i) {
        for (int c = 0; c < C; ++c) {
            const T* gr = dz + (std::size_t(i) * C + c) * HW;
            detail::copy_block(gr, dx + (std::size_t(i) * C + c) * HW, HW);
            if (c < c0 || c >= c0 + ct) continue;
            T* tr = dt + (std::size_t(c - c0) * n + i) * HW;
            if (keep == nullptr) {
                detail::copy_block(gr, tr, HW);
            } else {
#pragma omp simd
                for (int p = 0; p < HW; ++p) tr[p] = keep[p] != T(0) ? T(0) : gr[p];
            }
        }
    });
}

}  // namespace bijou::kernels
