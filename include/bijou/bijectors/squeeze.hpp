// bijou/bijectors/squeeze.hpp — space-to-depth reshaping (Dinh et al. 2017 §3.6, Glow §3).
//
// Recipe `Squeeze` (state_dict name "squeeze", no tensors), bound to Shape<C, H, W> with H and W
// even; out_shape = Shape<4C, H/2, W/2>. Each 2×2 block of every channel becomes four channels:
//   z[i, 4c + 2a + b, y, x] = x[i, c, 2y + a, 2x + b]      (a, b ∈ {0, 1})
// which is openai/glow's squeeze2d (reshape (C, H/2, 2, W/2, 2) → transpose → (4C, H/2, W/2)).
// A permutation of the values: log|det| = 0, inverse is the matching unsqueeze. Cost O(n·C·H·W).
// Kernels: kernels::squeeze / kernels::unsqueeze (kernels/*/squeeze.hpp).
#pragma once

#include <cstddef>
#include <string>

#include "bijou/core/concepts.hpp"
#include "bijou/kernels/cpu/squeeze.hpp"
#include "bijou/kernels/cuda/squeeze.hpp"
#include "bijou/kernels/reference/squeeze.hpp"

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
    // Squeeze (src image → dst squeezed) or unsqueeze (src squeezed → dst image).
    template <bool Squeezing>
    static void move(const T* src, T* dst, int n) {
        if constexpr (Squeezing) kernels::squeeze(B{}, src, dst, n, C, H, W);
        else kernels::unsqueeze(B{}, src, dst, n, C, H, W);
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
