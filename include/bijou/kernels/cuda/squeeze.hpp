// bijou/kernels/cuda/squeeze.hpp — Squeeze's data movement for the Cuda backend (and CudaHost): the
// contracts of kernels/reference/squeeze.hpp on executor memory. Channel 4c + 2a + b holds pixel
// (2y + a, 2x + b) of channel c; squeeze_source gives the image-side index of the squeezed element ks.
// One thread per squeezed element, either direction.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/kernels/cuda/exec.hpp"

namespace bijou::kernels::cuda_body {

BIJOU_HD std::size_t squeeze_source(std::size_t ks, int C, int H, int W) {
    const std::size_t H2 = std::size_t(H) / 2, W2 = std::size_t(W) / 2, plane = H2 * W2;
    const std::size_t x = ks % W2, y = (ks / W2) % H2, cs = (ks / plane) % (4 * std::size_t(C));
    const std::size_t i = ks / (plane * 4 * std::size_t(C));
    const std::size_t c = cs / 4, a = (cs % 4) / 2, b = cs % 2;
    return ((i * std::size_t(C) + c) * std::size_t(H) + 2 * y + a) * std::size_t(W) + 2 * x + b;
}

}  // namespace bijou::kernels::cuda_body

namespace bijou::kernels {

template <ExecutorBackend B, class T>
void squeeze(B, const T* img, T* sq, int n, int C, int H, int W) {
    B::executor::for_each(std::size_t(n) * C * H * W,
                          [=] BIJOU_HD_LAMBDA(std::size_t k) { sq[k] = img[cuda_body::squeeze_source(k, C, H, W)]; });
}

template <ExecutorBackend B, class T>
void unsqueeze(B, const T* sq, T* img, int n, int C, int H, int W) {
    B::executor::for_each(std::size_t(n) * C * H * W,
                          [=] BIJOU_HD_LAMBDA(std::size_t k) { img[cuda_body::squeeze_source(k, C, H, W)] = sq[k]; });
}

}  // namespace bijou::kernels
