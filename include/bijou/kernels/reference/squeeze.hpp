// bijou/kernels/reference/squeeze.hpp — Squeeze's data movement (bijectors/squeeze.hpp), plain loops.
// img: (n, C, H, W); sq: (n, 4C, H/2, W/2), H and W even.
//   squeeze    sq[i, 4c + 2a + b, y, x] = img[i, c, 2y + a, 2x + b]   (a, b ∈ {0, 1})
//   unsqueeze  the inverse: img ← sq
// openai/glow's squeeze2d order. A permutation: values are copied, never combined.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"

namespace bijou::kernels {

namespace detail {
/// Moves one channel c of sample i between its image layout and its four squeezed channels.
template <bool Squeezing, class T>
void squeeze_channel(const T* src, T* dst, std::size_t i, std::size_t c, int C, int H, int W) {
    const int H2 = H / 2, W2 = W / 2;
    const std::size_t img = (i * C + c) * H * W;       // channel c of sample i, image side
    const std::size_t sq = (i * C + c) * 4 * H2 * W2;  // channels 4c..4c+3, squeezed side
    for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b)
            for (int y = 0; y < H2; ++y)
                for (int x = 0; x < W2; ++x) {
                    const std::size_t pi = img + std::size_t(2 * y + a) * W + std::size_t(2 * x + b);
                    const std::size_t ps = sq + std::size_t(2 * a + b) * H2 * W2 + std::size_t(y) * W2 + x;
                    if constexpr (Squeezing) dst[ps] = src[pi];
                    else dst[pi] = src[ps];
                }
}
}  // namespace detail

template <class T>
void squeeze(Reference, const T* img, T* sq, int n, int C, int H, int W) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C; ++c) detail::squeeze_channel<true>(img, sq, std::size_t(i), std::size_t(c), C, H, W);
}

template <class T>
void unsqueeze(Reference, const T* sq, T* img, int n, int C, int H, int W) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C; ++c) detail::squeeze_channel<false>(sq, img, std::size_t(i), std::size_t(c), C, H, W);
}

}  // namespace bijou::kernels
