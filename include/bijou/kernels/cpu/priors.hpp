// bijou/kernels/cpu/priors.hpp — Glow's learned priors for the Cpu backend: the per-row bodies of
// kernels/reference/priors.hpp run as OpenMP tasks (elementwise passes by (sample, channel) rows, the
// parameter gradients by channel, the per-sample log-det by sample), so the results equal Reference's
// bit for bit and do not depend on the thread count.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/reference/priors.hpp"  // the per-row bodies

namespace bijou::kernels {

namespace detail {
/// Below this many elements a parallel region costs more than it saves.
inline constexpr std::size_t priors_parallel_min = 8192;

inline bool priors_worth_it(int n, int C, int HW) {
    return std::size_t(n) * std::size_t(C) * std::size_t(HW) > priors_parallel_min;
}
}  // namespace detail

template <class T>
void top_prior_apply(Cpu, const T* in, T* out, const T* mean, const T* log_scale, int n, int C, int HW,
                     bool forward) {
    bijou::detail::parallel_for(std::ptrdiff_t(n) * C, detail::priors_worth_it(n, C, HW), [&](std::ptrdiff_t row) {
        detail::top_prior_apply_row(std::size_t(row) * HW, int(row % C), in, out, mean, log_scale, HW, forward);
    });
}

template <class T>
void top_prior_backward(Cpu, const T* eps, const T* deps, const T* dld, T* dz, const T* log_scale, T* dmean,
                        T* dlog_scale, int n, int C, int HW) {
    double sum_dld = 0.0;
    for (int i = 0; i < n; ++i) sum_dld += double(dld[i]);
    bijou::detail::parallel_for(C, detail::priors_worth_it(n, C, HW), [&](int c) {
        detail::top_prior_backward_channel(c, sum_dld, eps, deps, dz, log_scale, dmean, dlog_scale, n, C, HW);
    });
}

template <class T>
void split_standardize(Cpu, const T* src, T* dst, const T* stats, double* ld, int n, int C, int HW, bool forward) {
    bijou::detail::parallel_for(n, detail::priors_worth_it(n, C, HW), [&](int i) {
        detail::split_standardize_sample(i, src, dst, stats, ld, n, C, HW, forward);
    });
}

template <class T>
void split_backward_stats(Cpu, const T* out, const T* dout, const T* dld, const T* stats, T* dx, T* dstats, int n,
                          int C, int HW) {
    const int Ch = C / 2, Cz = C - Ch;
    bijou::detail::parallel_for(std::ptrdiff_t(n) * Cz, detail::priors_worth_it(n, C, HW), [&](std::ptrdiff_t row) {
        detail::split_backward_stats_row(int(row / Cz), Ch + int(row % Cz), out, dout, dld, stats, dx, dstats, n, C,
                                         HW);
    });
}

template <class T>
void split_backward_pass(Cpu, const T* dout, const T* dz1, T* dx, int n, int C, int HW) {
    const int Ch = C / 2;
    bijou::detail::parallel_for(std::ptrdiff_t(n) * Ch, detail::priors_worth_it(n, C, HW), [&](std::ptrdiff_t row) {
        detail::split_backward_pass_row(int(row / Ch), int(row % Ch), dout, dz1, dx, n, C, HW);
    });
}

}  // namespace bijou::kernels
