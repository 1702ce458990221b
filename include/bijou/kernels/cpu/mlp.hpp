// bijou/kernels/cpu/mlp.hpp — the elementwise parts of an MLP layer for the Cpu backend.
// Same contracts as kernels/reference/mlp.hpp. Rows are split across OpenMP threads when the
// batch is large; the inner loops are SIMD. The bias gradient sums each column over the rows in
// row order, in double, one 64-column tile per task: the same additions in the same order as the
// Reference kernel, so the result is bit-for-bit identical to it for any thread count. mlp_linear and
// mlp_linear_input_grad_relu run the bias, ReLU and ReLU-backward mask as the product's epilogue
// (kernels/cpu/gemm.hpp's gemm_ep): no second pass over the activations, and the same bits as the
// product followed by mlp_bias_relu / mlp_relu_backward. mlp_param_grads of a layer with at most 4
// inputs and mlp_layer_backward of one with at most 4 outputs run kernels/cpu/mlp_thin.hpp's single
// passes (float, AVX2 or AVX-512; the same values as the separate kernels, whose sequence they run
// otherwise). mlp_concurrently runs its two nets' passes
// on two threads at once when there are exactly two (each pass's products then run on one thread:
// no fork and join per product, and the same bits as with one thread), in one parallel region with
// the row-wise work before and after them split in halves between the threads (a coupling's mask and
// elementwise passes, else serial while the other thread waited: ~2% of the main thread's time in
// two moons); with more threads, or passes too small to pay for a parallel region, all one after the
// other, each product split as usual.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <type_traits>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/cpu/gemm.hpp"
#include "bijou/kernels/cpu/mlp_thin.hpp"
#include "bijou/kernels/reference/mlp.hpp"

namespace bijou::kernels {

namespace detail {
/// Below this many elements a parallel region costs more than it saves.
inline constexpr std::size_t mlp_parallel_min = 32768;
/// Below this many flops per net (~10 µs) mlp_concurrently runs the two passes one after the other.
inline constexpr double mlp_concurrent_min_flops = 1e6;
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
        auto sum_rows = [&](auto width) {
            for (int i = 0; i < n; ++i) {
                const T* r = g + std::size_t(i) * m + j0;
#pragma omp simd
                for (int j = 0; j < width; ++j) acc[j] += double(r[j]);
            }
        };
        // a fixed width keeps the sums in registers (a variable one sends them through memory)
        if (w == tile) sum_rows(std::integral_constant<int, tile>{});
        else sum_rows(w);
        for (int j = 0; j < w; ++j) db[j0 + j] += T(acc[j]);
    });
}

template <class T>
void mlp_linear(Cpu, const T* x, int ldx, const T* w, int ldw, const T* b, T beta, T* y, int n, int in, int out,
                bool relu) {
    gemm_ep(Cpu{}, false, true, n, out, in, T(1), x, ldx, w, ldw, beta, y, out,
            detail::GemmEpilogue<T>{.col_bias = b, .relu = relu});
}

template <class T>
void mlp_linear_input_grad_relu(Cpu, const T* g, const T* w, int ldw, const T* a, T* d, int n, int in, int out) {
    gemm_ep(Cpu{}, false, false, n, in, out, T(1), g, out, w, ldw, T(0), d, in,
            detail::GemmEpilogue<T>{.mask = a, .ldm = in});
}

namespace detail {
/// The thin layers' loops (mlp_thin.hpp) split columns across threads in units of their widest tile,
/// so a column is computed by the same code whatever the split.
inline constexpr int mlp_thin_unit = 64;

/// f(j0, j1) over [0, cols) in mlp_thin_unit blocks, across the threads when the pass is large.
template <class F>
void mlp_thin_split(int n, int cols, F&& f) {
    const int units = (cols + mlp_thin_unit - 1) / mlp_thin_unit;
    bijou::detail::parallel_for(units, std::size_t(n) * cols > mlp_parallel_min, [&](int u) {
        f(u * mlp_thin_unit, std::min(cols, (u + 1) * mlp_thin_unit));
    });
}
}  // namespace detail

template <class T>
void mlp_param_grads(Cpu, const T* g, const T* x, int ldx, T* dw, int ldw, T* db, int n, int in, int out) {
#if defined(BIJOU_SGEMM_SIMD)
    if constexpr (std::is_same_v<T, float>) {
        const int level = detail::sgemm_simd_level();
        if (in >= 1 && in <= mlp_thin_width && level >= 1) {  // one pass over g
            detail::mlp_thin_split(n, out, [&](int j0, int j1) {
                if (level >= 2) detail::thin_in_param_grads_avx512(in, g, out, x, ldx, dw, ldw, db, n, j0, j1);
                else detail::thin_in_param_grads_avx2(in, g, out, x, ldx, dw, ldw, db, n, j0, j1);
            });
            return;
        }
    }
#endif
    gemm(Cpu{}, true, false, out, in, n, T(1), g, out, x, ldx, T(1), dw, ldw);
    if (db != nullptr) mlp_bias_grad(Cpu{}, g, db, n, out);
}

template <class T>
void mlp_layer_backward(Cpu, const T* g, const T* a, const T* w, int ldw, T* dw, T* db, T* d, T* db_a, int n, int in,
                        int out) {
    if (db != nullptr) mlp_bias_grad(Cpu{}, g, db, n, out);
#if defined(BIJOU_SGEMM_SIMD)
    if constexpr (std::is_same_v<T, float>) {
        const int level = detail::sgemm_simd_level();
        if (out >= 1 && out <= mlp_thin_width && level >= 1) {  // one pass over a and d
            detail::mlp_thin_split(n, in, [&](int j0, int j1) {
                if (level >= 2) detail::thin_out_backward_avx512(out, g, a, w, ldw, dw, d, db_a, n, in, j0, j1);
                else detail::thin_out_backward_avx2(out, g, a, w, ldw, dw, d, db_a, n, in, j0, j1);
            });
            return;
        }
    }
#endif
    gemm(Cpu{}, true, false, out, in, n, T(1), g, out, a, in, T(1), dw, ldw);
    mlp_linear_input_grad_relu(Cpu{}, g, w, ldw, a, d, n, in, out);
    if (db_a != nullptr) mlp_bias_grad(Cpu{}, d, db_a, n, in);
}

template <class Pre, class F, class G, class Post>
void mlp_concurrently(Cpu, double flops_each, int n, Pre&& pre, F&& f, G&& g, Post&& post) {
#if defined(_OPENMP)
    if (flops_each >= detail::mlp_concurrent_min_flops && omp_get_max_threads() == 2 && !omp_in_parallel()) {
        std::exception_ptr error[2];
        std::atomic<bool> failed{false};
        bool alone = false;  // a team of one (the runtime may give fewer threads than asked)
#pragma omp parallel num_threads(2)
        {
            const int t = omp_get_thread_num();
            if (omp_get_num_threads() < 2) {
                alone = true;
            } else {
                // An exception must not leave the region, and both threads must reach each barrier:
                // a phase that throws is recorded, and the phases after it are skipped on both threads.
                auto phase = [&](auto&& body) {
                    if (failed.load(std::memory_order_relaxed)) return;
                    try {
                        body();
                    } catch (...) {
                        error[t] = std::current_exception();
                        failed.store(true, std::memory_order_relaxed);
                    }
                };
                const int i0 = t == 0 ? 0 : n / 2, i1 = t == 0 ? n / 2 : n;
                phase([&] { pre(i0, i1); });
#pragma omp barrier
                phase([&] {
                    if (t == 0) f();
                    else g();
                });
#pragma omp barrier
                phase([&] { post(i0, i1); });
            }
        }
        for (const std::exception_ptr& e : error)
            if (e) std::rethrow_exception(e);
        if (!alone) return;
    }
#endif
    (void)flops_each;
    pre(0, n);
    f();
    g();
    post(0, n);
}

template <class T>
void mlp_apply_mask(Cpu, const T* w, const T* mask, T* out, std::size_t size) {
#pragma omp simd
    for (std::size_t k = 0; k < size; ++k) out[k] = w[k] * mask[k];
}

}  // namespace bijou::kernels
