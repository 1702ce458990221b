// bijou/kernels/cpu/mlp.hpp — the elementwise parts of an MLP layer for the Cpu backend.
// Same contracts as kernels/reference/mlp.hpp. Rows are split across OpenMP threads when the
// batch is large; the inner loops are SIMD. The bias gradient sums each column over the rows in
// row order, in double, one 64-column tile per task: the same additions in the same order as the
// Reference kernel, so the result is bit-for-bit identical to it for any thread count.
#pragma once

#include <algorithm>
#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/reference/mlp.hpp"

namespace bijou::kernels {

namespace detail {
/// Below this many elements a parallel region costs more than it saves.
inline constexpr std::size_t mlp_parallel_min = 32768;
}  // namespace detail

template <class T>
void mlp_bias_relu(Cpu, T* y, const T* b, int n, int m) {
    bijou::detail::parallel_for(int(n), std::size_t(n) * m > detail::mlp_parallel_min, [&](int i) {
        T* r = y + std::size_t(i) * m;
#pragma omp simd
        for (int j = 0; j < m; ++j) {
            const T v = r[j] + b[j];
            r[j] = v < T(0) ? T(0) : v;  // NaN passes through
        }
    });
}

template <class T>
void mlp_bias(Cpu, T* y, const T* b, int n, int m) {
    bijou::detail::parallel_for(int(n), std::size_t(n) * m > detail::mlp_parallel_min, [&](int i) {
        T* r = y + std::size_t(i) * m;
#pragma omp simd
        for (int j = 0; j < m; ++j) r[j] += b[j];
    });
}

template <class T>
void mlp_relu_backward(Cpu, T* g, const T* a, int n, int m) {
    bijou::detail::parallel_for(int(n), std::size_t(n) * m > detail::mlp_parallel_min, [&](int i) {
        T* gr = g + std::size_t(i) * m;
        const T* ar = a + std::size_t(i) * m;
#pragma omp simd
        for (int j = 0; j < m; ++j) gr[j] = ar[j] > T(0) ? gr[j] : T(0);
    });
}

template <class T>
void mlp_bias_grad(Cpu, const T* g, T* db, int n, int m) {
    constexpr int tile = 64;
    const int tiles = (m + tile - 1) / tile;
    bijou::detail::parallel_for(int(tiles), tiles > 1 && std::size_t(n) * m > detail::mlp_parallel_min, [&](int t) {
        const int j0 = t * tile, w = std::min(tile, m - j0);
        double acc[tile] = {};
        for (int i = 0; i < n; ++i) {
            const T* r = g + std::size_t(i) * m + j0;
#pragma omp simd
            for (int j = 0; j < w; ++j) acc[j] += double(r[j]);
        }
        for (int j = 0; j < w; ++j) db[j0 + j] += T(acc[j]);
    });
}

template <class T>
void mlp_apply_mask(Cpu, const T* w, const T* mask, T* out, std::size_t size) {
#pragma omp simd
    for (std::size_t k = 0; k < size; ++k) out[k] = w[k] * mask[k];
}

}  // namespace bijou::kernels
