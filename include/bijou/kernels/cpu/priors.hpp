// bijou/kernels/cpu/priors.hpp — Glow's learned priors for the Cpu backend. Same contracts, loop
// bodies and summation orders as kernels/reference/priors.hpp, split across the OpenMP threads
// (elementwise passes by (sample, channel) rows, the parameter gradients by channel, the per-sample
// log-det by sample), so the results do not depend on the thread count.
#pragma once

#include <cmath>
#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/reference/priors.hpp"

namespace bijou::kernels {

namespace detail {
/// Below this many elements a parallel region costs more than it saves.
inline constexpr std::size_t priors_parallel_min = 32768;

inline bool priors_worth_it(int n, int C, int HW) {
    return std::size_t(n) * std::size_t(C) * std::size_t(HW) > priors_parallel_min;
}
}  // namespace detail

template <class T>
void top_prior_apply(Cpu, const T* in, T* out, const T* mean, const T* log_scale, int n, int C, int HW,
                     bool forward) {
    bijou::detail::parallel_for(std::ptrdiff_t(n) * C, detail::priors_worth_it(n, C, HW), [&](std::ptrdiff_t row) {
        const int c = int(row % C);
        const std::size_t k0 = std::size_t(row) * HW;
        if (forward) {
            const T inv = T(std::exp(-double(log_scale[c])));
            for (std::size_t k = k0; k < k0 + HW; ++k) out[k] = (in[k] - mean[c]) * inv;
        } else {
            const T s = T(std::exp(double(log_scale[c])));
            for (std::size_t k = k0; k < k0 + HW; ++k) out[k] = mean[c] + in[k] * s;
        }
    });
}

template <class T>
void top_prior_backward(Cpu, const T* eps, const T* deps, const T* dld, T* dz, const T* log_scale, T* dmean,
                        T* dlog_scale, int n, int C, int HW) {
    double sum_dld = 0.0;
    for (int i = 0; i < n; ++i) sum_dld += double(dld[i]);
    bijou::detail::parallel_for(C, detail::priors_worth_it(n, C, HW), [&](int c) {
        const double inv = std::exp(-double(log_scale[c]));
        double gm = 0.0, gs = 0.0;
        for (int i = 0; i < n; ++i) {
            const std::size_t k0 = (std::size_t(i) * C + std::size_t(c)) * HW;
            for (std::size_t k = k0; k < k0 + HW; ++k) {
                dz[k] = T(double(deps[k]) * inv);
                gm -= double(deps[k]) * inv;
                gs -= double(deps[k]) * double(eps[k]);
            }
        }
        dmean[c] += T(gm);
        dlog_scale[c] += T(gs - sum_dld * HW);
    });
}

template <class T>
void split_standardize(Cpu, const T* src, T* dst, const T* stats, double* ld, int n, int C, int HW, bool forward) {
    const int Ch = C / 2;
    const std::size_t m = std::size_t(n) * HW;
    bijou::detail::parallel_for(n, detail::priors_worth_it(n, C, HW), [&](int i) {
        const std::size_t base = std::size_t(i) * C * HW;
        for (std::size_t k = base; k < base + std::size_t(Ch) * HW; ++k) dst[k] = src[k];
        double s = 0.0;
        for (int c = Ch; c < C; ++c) {
            const std::size_t k0 = base + std::size_t(c) * HW;
            const std::size_t q0 = std::size_t(c - Ch) * m + std::size_t(i) * HW;
            const T* mu = stats + q0;
            const T* ls = stats + Ch * m + q0;
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = k0 + p;
                if (forward) dst[k] = (src[k] - mu[p]) * T(std::exp(-double(ls[p])));
                else dst[k] = mu[p] + src[k] * T(std::exp(double(ls[p])));
                s += double(ls[p]);
            }
        }
        ld[i] += forward ? -s : s;
    });
}

template <class T>
void split_backward_stats(Cpu, const T* out, const T* dout, const T* dld, const T* stats, T* dx, T* dstats, int n,
                          int C, int HW) {
    const int Ch = C / 2, Cz = C - Ch;
    const std::size_t m = std::size_t(n) * HW;
    bijou::detail::parallel_for(std::ptrdiff_t(n) * Cz, detail::priors_worth_it(n, C, HW), [&](std::ptrdiff_t row) {
        const int i = int(row / Cz), c = Ch + int(row % Cz);
        const std::size_t k0 = (std::size_t(i) * C + c) * HW;
        const std::size_t q0 = std::size_t(c - Ch) * m + std::size_t(i) * HW;
        for (int p = 0; p < HW; ++p) {
            const std::size_t k = k0 + p, q = q0 + p;
            const T inv = T(std::exp(-double(stats[Ch * m + q])));
            dx[k] = dout[k] * inv;
            dstats[q] = -dout[k] * inv;
            dstats[Ch * m + q] = -dout[k] * out[k] - dld[i];
        }
    });
}

template <class T>
void split_backward_pass(Cpu, const T* dout, const T* dz1, T* dx, int n, int C, int HW) {
    const int Ch = C / 2;
    const std::size_t m = std::size_t(n) * HW;
    bijou::detail::parallel_for(std::ptrdiff_t(n) * Ch, detail::priors_worth_it(n, C, HW), [&](std::ptrdiff_t row) {
        const int i = int(row / Ch), c = int(row % Ch);
        const std::size_t k0 = (std::size_t(i) * C + c) * HW;
        const T* d1 = dz1 + std::size_t(c) * m + std::size_t(i) * HW;
#pragma omp simd
        for (int p = 0; p < HW; ++p) dx[k0 + p] = dout[k0 + p] + d1[p];
    });
}

}  // namespace bijou::kernels
