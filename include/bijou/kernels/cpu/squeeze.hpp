// bijou/kernels/cpu/squeeze.hpp — Squeeze's data movement for the Cpu backend: the Reference
// kernels' per-channel loop (kernels/reference/squeeze.hpp), one channel of one sample per task,
// across the OpenMP threads when the batch has at least 65536 values.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/reference/squeeze.hpp"

namespace bijou::kernels {

namespace detail {
template <bool Squeezing, class T>
void squeeze_parallel(const T* src, T* dst, int n, int C, int H, int W) {
    const std::ptrdiff_t tasks = std::ptrdiff_t(n) * C;
    bijou::detail::parallel_for(tasks, std::size_t(n) * C * H * W >= 65536, [&](std::ptrdiff_t task) {
        squeeze_channel<Squeezing>(src, dst, std::size_t(task) / C, std::size_t(task) % C, C, H, W);
    });
}
}  // namespace detail

template <class T>
void squeeze(Cpu, const T* img, T* sq, int n, int C, int H, int W) {
    detail::squeeze_parallel<true>(img, sq, n, C, H, W);
}

template <class T>
void unsqueeze(Cpu, const T* sq, T* img, int n, int C, int H, int W) {
    detail::squeeze_parallel<false>(sq, img, n, C, H, W);
}

}  // namespace bijou::kernels
