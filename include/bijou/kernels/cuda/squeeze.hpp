// bijou/kernels/cuda/squeeze.hpp — Squeeze's data movement for the Cuda backend (and CudaHost).
//   squeeze    sq (n, 4C, H/2, W/2) ← img (n, C, H, W)        unsqueeze  img ← sq (the inverse)
// bijectors/squeeze.hpp's order: channel 4c + 2a + b holds pixel (2y + a, 2x + b) of channel c;
// squeeze_source gives the image-side index of the squeezed element ks. One thread per element.
#pragma once

#include <cstddef>

#include "bijou/kernels/cuda/exec.hpp"

namespace bijou::kernels::cuda_body {

BIJOU_HD std::size_t squeeze_source(std::size_t ks, int C, int H, int W) {
    const std::size_t H2 = std::size_t(H) / 2, W2 = std::size_t(W) / 2, plane = H2 * W2;
    const std::size_t x = ks % W2, y = (ks / W2) % H2, cs = (ks / plane) % (4 * std::size_t(C));
    const std::size_t i = ks / (plane * 4 * std::size_t(C));
    const std::size_t c = cs / 4, a = (cs % 4) / 2, b = cs % 2;
    return ((i * std::size_t(C) + c) * std::size_t(H) + 2 * y + a) * std::size_t(W) + 2 * x + b;
}

// ---- the kernels, on executor X (kernels/cuda/exec.hpp) ----

/// Squeeze (img → sq) or its inverse (sq → img), bijectors/squeeze.hpp's order.
template <class X, class T>
void squeeze(X, const T* src, T* dst, int n, int C, int H, int W, bool squeezing) {
    X::for_each(std::size_t(n) * C * H * W, [=] BIJOU_HD_LAMBDA(std::size_t k) {
        const std::size_t s = squeeze_source(k, C, H, W);
        if (squeezing) dst[k] = src[s];
        else dst[s] = src[k];
    });
}

}  // namespace bijou::kernels::cuda_body

namespace bijou::kernels {

template <ExecutorBackend B, class T>
void squeeze(B, const T* img, T* sq, int n, int C, int H, int W) {
    cuda_body::squeeze(typename B::executor{}, img, sq, n, C, H, W, true);
}

template <ExecutorBackend B, class T>
void unsqueeze(B, const T* sq, T* img, int n, int C, int H, int W) {
    cuda_body::squeeze(typename B::executor{}, sq, img, n, C, H, W, false);
}

}  // namespace bijou::kernels
