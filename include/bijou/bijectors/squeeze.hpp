// bijou/bijectors/squeeze.hpp — space-to-depth reshaping (Dinh et al. 2017 §3.6, Glow §3).
//
// Recipe `Squeeze` (state_dict name "squeeze", no tensors), bound to Shape<C, H, W> with H and W
// even; out_shape = Shape<4C, H/2, W/2>. Each 2×2 block of every channel becomes four channels:
//   z[i, 4c + 2a + b, y, x] = x[i, c, 2y + a, 2x + b]      (a, b ∈ {0, 1})
// which is openai/glow's squeeze2d (reshape (C, H/2, 2, W/2, 2) → transpose → (4C, H/2, W/2)).
// A permutation of the values: log|det| = 0, inverse is the matching unsqueeze. Cost O(n·C·H·W).
#pragma once

#include <cstddef>
#include <string>

#include "bijou/core/concepts.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/cuda/squeeze.hpp"

namespace bijou {

template <EventShape S, Scalar T, Backend B>
class SqueezeBijector {
    static_assert(ImageShape<S>, "bijou: Squeeze takes an image Shape<C, H, W>");

public:
    static constexpr int C = S::dims[0], H = S::dims[1], W = S::dims[2];
    static_assert(H % 2 == 0 && W % 2 == 0, "bijou: Squeeze needs an even height and width");
    using in_shape = S;
    using out_shape = Shape<4 * C, H / 2, W / 2>;
    using scalar = T;
    using backend = B;

    explicit SqueezeBijector(BuildContext&) {}
    void declare(ParamSet<T>&, const std::string&) {}
    void reset_parameters(Rng&) {}
    std::size_t workspace_size(int) const { return 0; }

    void forward(const T* x, T* z, double*, int n, T*) const { move<true>(x, z, n); }
    void inverse(const T* z, T* x, double*, int n, T*) const { move<false>(z, x, n); }
    void backward(const T*, const T*, const T* dz, const T*, T* dx, int n, T*) { move<false>(dz, dx, n); }

private:
    // Squeeze (src image → dst squeezed) or unsqueeze (src squeezed → dst image), one channel of
    // one sample per task.
    template <bool Squeezing>
    static void move(const T* src, T* dst, int n) {
        if constexpr (ExecutorBackend<B>) {
            if constexpr (Squeezing) kernels::squeeze(B{}, src, dst, n, C, H, W);
            else kernels::unsqueeze(B{}, src, dst, n, C, H, W);
        } else {
            constexpr int H2 = H / 2, W2 = W / 2;
            auto channel = [&](std::ptrdiff_t task) {
                const std::size_t i = std::size_t(task) / C, c = std::size_t(task) % C;
                const std::size_t img = (i * C + c) * H * W;           // channel c of sample i, image side
                const std::size_t sq = (i * C + c) * 4 * H2 * W2;      // channels 4c..4c+3, squeezed side
                for (int a = 0; a < 2; ++a)
                    for (int b = 0; b < 2; ++b)
                        for (int y = 0; y < H2; ++y)
                            for (int x = 0; x < W2; ++x) {
                                const std::size_t pi = img + std::size_t(2 * y + a) * W + std::size_t(2 * x + b);
                                const std::size_t ps = sq + std::size_t(2 * a + b) * H2 * W2 + std::size_t(y) * W2 + x;
                                if constexpr (Squeezing) dst[ps] = src[pi];
                                else dst[pi] = src[ps];
                            }
            };
            const std::ptrdiff_t tasks = std::ptrdiff_t(n) * C;
            if constexpr (std::is_same_v<B, Cpu>)
                detail::parallel_for(tasks, std::size_t(n) * S::size >= 65536, channel);
            else
                for (std::ptrdiff_t t = 0; t < tasks; ++t) channel(t);
        }
    }
};

/// Recipe: (C, H, W) → (4C, H/2, W/2), each 2×2 spatial block into channels.
struct Squeeze {
    static constexpr std::string_view name = "squeeze";
    template <class S>
    static constexpr bool accepts = [] {
        if constexpr (ImageShape<S>) return S::dims[1] % 2 == 0 && S::dims[2] % 2 == 0;
        else return false;
    }();
    template <class S, class T, class B>
    using bind = SqueezeBijector<S, T, B>;
};

}  // namespace bijou
