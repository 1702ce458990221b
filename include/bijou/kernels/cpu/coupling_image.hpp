// bijou/kernels/cpu/coupling_image.hpp — the elementwise half of an image coupling, Cpu backend.
// Same contracts as kernels/reference/coupling_image.hpp. The affine passes split the batch across
// OpenMP threads by sample; each sample's channels run the element formulas (kernels/coupling_formula.hpp)
// in SIMD loops over the pixels with VectorMath (kernels/cpu/vector_math.hpp: float exp, log1p, tanh
// without calls), each sample's log-det summed in double SIMD lanes. So they agree with Reference to
// float rounding, not bit for bit (double: the same math, only the log-det's order of summation
// differs); every run gives the same bits at any thread count (a sample is one thread's sum). The
// additive and layout passes use the same formulas in SIMD loops, split by sample or by (channel,
// sample) blocks of HW, and equal Reference bit for bit. Untouched channels are plain SIMD copies.
#pragma once

#include <algorithm>
#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/kernels/coupling_formula.hpp"
#include "bijou/kernels/coupling_scale.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/cpu/coupling.hpp"
#include "bijou/kernels/cpu/vector_math.hpp"
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

/// Pixels per block of coupling_image_affine_sample_simd's log-det terms.
inline constexpr int affine_block = 256;

/// Sample i of the image affine coupling, forward (in = x, out = z) or Inverse: Reference's
/// coupling_image_affine_sample with VectorMath, one SIMD loop per transformed channel. `flatten`
/// inlines the formulas and the math into the loops (in a large translation unit GCC's inlining
/// limits otherwise leave calls there, and a loop with calls stays scalar).
template <bool Inverse, CouplingScale S, class T>
[[gnu::flatten]] double coupling_image_affine_sample_simd(int i, const T* in, T* out, const T* t, const T* h, const T* keep, int n,
                                         int C, int HW, int c0, int ct) {
    using vector_math::VectorMath;
    auto element = [](T v, T tv, T hv) {
        if constexpr (Inverse) return coupling_formula::affine_inverse<S, VectorMath>(v, tv, hv);
        else return coupling_formula::affine_forward<S, VectorMath>(v, tv, hv);
    };
    double s = 0.0;
    for (int c = 0; c < C; ++c) {
        const T* src = in + (std::size_t(i) * C + c) * HW;
        T* dst = out + (std::size_t(i) * C + c) * HW;
        if (c < c0 || c >= c0 + ct) {
            copy_block(src, dst, HW);
            continue;
        }
        const T* tr = t + (std::size_t(c - c0) * n + i) * HW;
        const T* hr = h + (std::size_t(c - c0) * n + i) * HW;
        // blocks of pixels: the elements in one SIMD loop (log-det terms to `terms`), then their sum
        // in double lanes in another (one loop doing both does not vectorise with GCC 12)
        T terms[affine_block];
        for (int p0 = 0; p0 < HW; p0 += affine_block) {
            const int len = std::min(affine_block, HW - p0);
            const T *sb = src + p0, *tb = tr + p0, *hb = hr + p0;
            T* db = dst + p0;
            if (keep == nullptr) {
#pragma omp simd
                for (int p = 0; p < len; ++p) {
                    const auto r = element(sb[p], tb[p], hb[p]);
                    db[p] = r.value;
                    terms[p] = r.log_det;
                }
            } else {
                const T* kb = keep + p0;
#pragma omp simd
                for (int p = 0; p < len; ++p) {
                    const bool kept = kb[p] != T(0);
                    const auto r = element(sb[p], tb[p], hb[p]);
                    db[p] = kept ? sb[p] : r.value;
                    terms[p] = kept ? T(0) : r.log_det;
                }
            }
#pragma omp simd reduction(+ : s)
            for (int p = 0; p < len; ++p) s += double(terms[p]);
        }
    }
    return s;
}

/// Sample i of coupling_image_affine_backward (g = ∂L/∂ld of the sample), with VectorMath.
template <CouplingScale S, class T>
[[gnu::flatten]] void coupling_image_affine_backward_sample_simd(int i, const T* x, const T* z, const T* h, const T* keep, const T* dz,
                                                T g, T* dx, T* dt, T* dh, int n, int C, int HW, int c0, int ct) {
    using vector_math::VectorMath;
    for (int c = 0; c < C; ++c) {
        const std::size_t r = (std::size_t(i) * C + c) * HW;
        if (c < c0 || c >= c0 + ct) {
            copy_block(dz + r, dx + r, HW);
            continue;
        }
        const std::size_t o = (std::size_t(c - c0) * n + i) * HW;
        const T *xr = x + r, *zr = z + r, *dzr = dz + r, *hr = h + o;
        T *dxr = dx + r, *dtr = dt + o, *dhr = dh + o;
        if (keep == nullptr) {
#pragma omp simd
            for (int p = 0; p < HW; ++p) {
                const auto d = coupling_formula::affine_backward<S, VectorMath>(xr[p], zr[p], hr[p], dzr[p], g);
                dxr[p] = d.dx;
                dtr[p] = d.dt;
                dhr[p] = d.dh;
            }
        } else {
#pragma omp simd
            for (int p = 0; p < HW; ++p) {
                const bool kept = keep[p] != T(0);
                const auto d = coupling_formula::affine_backward<S, VectorMath>(xr[p], zr[p], hr[p], dzr[p], g);
                dxr[p] = kept ? dzr[p] : d.dx;
                dtr[p] = kept ? T(0) : d.dt;
                dhr[p] = kept ? T(0) : d.dh;
            }
        }
    }
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
            ld[i] += detail::coupling_image_affine_sample_simd<false, Sc::value>(i, x, z, t, h, keep, n, C, HW, c0, ct);
        });
    });
}

template <class T>
void coupling_image_affine_inverse(Cpu, CouplingScale scale, const T* z, T* x, const T* t, const T* h, const T* keep,
                                   double* ld, int n, int C, int HW, int c0, int ct) {
    coupling_formula::with_scale(scale, [&]<class Sc>(Sc) {
        detail::for_samples(n, C, HW, [&](int i) {
            ld[i] -= detail::coupling_image_affine_sample_simd<true, Sc::value>(i, z, x, t, h, keep, n, C, HW, c0, ct);
        });
    });
}

template <class T>
void coupling_image_affine_backward(Cpu, CouplingScale scale, const T* x, const T* z, const T* h, const T* keep,
                                    const T* dz, const T* dld, T* dx, T* dt, T* dh, int n, int C, int HW, int c0,
                                    int ct) {
    coupling_formula::with_scale(scale, [&]<class Sc>(Sc) {
        detail::for_samples(n, C, HW, [&](int i) {
            detail::coupling_image_affine_backward_sample_simd<Sc::value>(i, x, z, h, keep, dz, dld[i], dx, dt, dh, n,
                                                                          C, HW, c0, ct);
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
