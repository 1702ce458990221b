// bijou/kernels/cpu/actnorm.hpp — ActNorm for the Cpu backend (OpenMP over samples, SIMD over pixels).
// Same contracts as kernels/reference/actnorm.hpp. Parameter-gradient reductions run per channel in
// a fixed order, so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/reference/actnorm.hpp"

namespace bijou::kernels {

namespace detail {

/// z = (x + loc)·exp(log_scale) (forward) or z = x·exp(−log_scale) − loc (inverse). The C scales are
/// computed once per call, 256 channels at a time into a stack array (one exp per channel, not per
/// element, and no allocation); vectors (HW = 1) vectorise across channels, images across pixels.
template <class T, bool Inverse>
void actnorm_apply(const T* x, T* z, const T* loc, const T* log_scale, int n, int C, int HW) {
    constexpr int chunk = 256;
    for (int c0 = 0; c0 < C; c0 += chunk) {
        const int cw = std::min(chunk, C - c0);
        T s[chunk], b[chunk];
        for (int j = 0; j < cw; ++j) {
            s[j] = std::exp(Inverse ? -log_scale[c0 + j] : log_scale[c0 + j]);
            b[j] = loc[c0 + j];
        }
        bijou::detail::parallel_for(int(n), std::size_t(n) * C * HW > 32768, [&](int i) {
            if (HW == 1) {
                const T* xi = x + std::size_t(i) * C + c0;
                T* zi = z + std::size_t(i) * C + c0;
#pragma omp simd
                for (int j = 0; j < cw; ++j) zi[j] = Inverse ? xi[j] * s[j] - b[j] : (xi[j] + b[j]) * s[j];
            } else {
                for (int j = 0; j < cw; ++j) {
                    const std::size_t o = (std::size_t(i) * C + c0 + j) * HW;
                    const T sj = s[j], bj = b[j];
#pragma omp simd
                    for (int p = 0; p < HW; ++p) z[o + p] = Inverse ? x[o + p] * sj - bj : (x[o + p] + bj) * sj;
                }
            }
        });
    }
}

template <class T>
struct PlaneSums {
    T dz, dz_z;
};

/// One plane of HW pixels: dx = dz·s; returns Σ dz and Σ dz·z. A function of its own, not inlined:
/// in actnorm_backward's lambda, indexed there as dz[o + p], GCC 12 vectorised the loop with gathers
/// (64-bit indices), and inlined it kept a reduction and its pointers in memory (bench_image's
/// ActNorm forward+backward, 1 thread: 64 µs with the gathers, 19 inlined, 13 so).
template <class T>
[[gnu::noinline]] PlaneSums<T> actnorm_plane_backward(const T* __restrict z, const T* __restrict dz, T* __restrict dx,
                                                      T s, int HW) {
    T a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
    for (int p = 0; p < HW; ++p) {
        dx[p] = dz[p] * s;
        a += dz[p];
        b += dz[p] * z[p];
    }
    return {a, b};
}

}  // namespace detail

template <class T>
void actnorm_forward(Cpu, const T* x, T* z, const T* loc, const T* log_scale, int n, int C, int HW) {
    detail::actnorm_apply<T, false>(x, z, loc, log_scale, n, C, HW);
}

template <class T>
void actnorm_inverse(Cpu, const T* z, T* x, const T* loc, const T* log_scale, int n, int C, int HW) {
    detail::actnorm_apply<T, true>(z, x, loc, log_scale, n, C, HW);
}

template <class T>
void actnorm_backward(Cpu, const T* z, const T* dz, T* dx, const T* log_scale, T* dloc, T* dlog_scale, int n, int C,
                      int HW) {
    if (HW == 1) {  // vectors: walk samples in order, channels contiguous, 256 accumulators at a time
        constexpr int chunk = 256;
        for (int c0 = 0; c0 < C; c0 += chunk) {
            const int cw = std::min(chunk, C - c0);
            T s[chunk];
            double gl[chunk] = {}, gs[chunk] = {};
            for (int j = 0; j < cw; ++j) s[j] = std::exp(log_scale[c0 + j]);
            for (int i = 0; i < n; ++i) {
                const std::size_t o = std::size_t(i) * C + c0;
#pragma omp simd
                for (int j = 0; j < cw; ++j) {
                    dx[o + j] = dz[o + j] * s[j];
                    gl[j] += double(dz[o + j]);
                    gs[j] += double(dz[o + j]) * double(z[o + j]);
                }
            }
            for (int j = 0; j < cw; ++j) {
                dloc[c0 + j] += T(gl[j] * s[j]);
                dlog_scale[c0 + j] += T(gs[j]);
            }
        }
        return;
    }
    // Images: the samples in a fixed number of blocks (by n alone, so the sums do not depend on the
    // thread count), split across threads as the other passes split samples, so that each thread
    // reads the planes it wrote (split by channels, half of them came from the other core's cache:
    // bench_image's ActNorm forward+backward ran slower on 2 threads than on 1); each block's
    // per-channel sums in double, added in block order, 64 channels at a time.
    constexpr int max_blocks = 8, chunk = 64;
    const int blocks = std::min(max_blocks, n);
    for (int c0 = 0; c0 < C; c0 += chunk) {
        const int cw = std::min(chunk, C - c0);
        double part[max_blocks][chunk][2];
        bijou::detail::parallel_for(blocks, std::size_t(n) * C * HW > 32768, [&](int b) {
            const int i0 = int(std::int64_t(n) * b / blocks), i1 = int(std::int64_t(n) * (b + 1) / blocks);
            double(&sums)[chunk][2] = part[b];  // this block's Σ dz·s and Σ dz·z per channel
            T s[chunk];
            for (int j = 0; j < cw; ++j) {
                s[j] = std::exp(log_scale[c0 + j]);
                sums[j][0] = sums[j][1] = 0.0;
            }
            for (int i = i0; i < i1; ++i) {  // in memory order: sample by sample, its channels in turn
                for (int j = 0; j < cw; ++j) {
                    const std::size_t o = (std::size_t(i) * C + c0 + j) * HW;
                    const detail::PlaneSums<T> r = detail::actnorm_plane_backward(z + o, dz + o, dx + o, s[j], HW);
                    sums[j][0] += double(r.dz) * s[j];
                    sums[j][1] += double(r.dz_z);
                }
            }
        });
        for (int j = 0; j < cw; ++j) {
            double gl = 0.0, gs = 0.0;
            for (int b = 0; b < blocks; ++b) {
                gl += part[b][j][0];
                gs += part[b][j][1];
            }
            dloc[c0 + j] += T(gl);
            dlog_scale[c0 + j] += T(gs);
        }
    }
}

template <class T>
void channel_sums(Cpu, const T* x, double* sums, int n, int C, int HW) {
    channel_sums(Reference{}, x, sums, n, C, HW);  // once per model: no need to be fast
}

}  // namespace bijou::kernels
