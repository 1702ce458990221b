// bijou/bijectors/split.hpp — Glow's split with a learned conditional prior, as a bijection.
//
// Recipe `Split` (state_dict name "split"), bound to Shape<C, H, W> with C even; out_shape is the
// same shape. With h = C/2, x = [z1 | z2] along channels (z1 the first h channels):
//   forward  out = [z1 | ε],  ε = (z2 − μ(z1)) ⊙ exp(−log σ(z1))     log|det| = −Σ_{c,p} log σ(z1)_{c,p}
//   inverse  z2 = μ(z1) + ε ⊙ exp(log σ(z1))                          (the negative log-det)
// where [μ | log σ] (C channels) = conv3×3(z1), a zero-initialised 3×3 convolution "conv" (h → C
// channels, bias, same padding; nn/conv2d.hpp), so a new Split passes z2 through unchanged. A
// multi-scale model sends z1 on to the next level and ε to the latent, scored by the standard
// normal base: N(ε; 0, I) is N(z2; μ(z1), σ(z1)²), Glow's split2d prior (openai/glow). Sampling at
// temperature t scales ε.
// Workspace: z1 and the conv output (channel-major), kept by forward for backward and refilled
// identically by inverse; backward's gradient buffers and the conv's scratch. Cost: the conv,
// 2·n·H·W·9·h·C flops per pass, plus O(n·C·H·W). The elementwise passes and the per-sample log-det
// are kernels (kernels/*/priors.hpp), the conv's layout change kernels::nchw_to_channel_major.
// Recipe `ConditionalSplit<Ctx>` (core/context.hpp; what a multi-scale model with a conditional body
// uses): [μ | log σ] = conv3×3(z1) + W·c_i per channel, W "context.weight" (C, K), zero at reset
// (openai/glow's linear_zeros: it starts as the unconditional split); nn/context_projection.hpp.
// backward adds ∂L/∂c into the model's context gradient.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>

#include "bijou/core/concepts.hpp"
#include "bijou/kernels/cpu/priors.hpp"
#include "bijou/kernels/cuda/priors.hpp"
#include "bijou/kernels/reference/priors.hpp"
#include "bijou/nn/context_projection.hpp"
#include "bijou/nn/conv2d.hpp"

namespace bijou {

template <EventShape S, Scalar T, Backend B, class Ctx = void>
class SplitBijector : public conditional_on<Ctx> {
    static_assert(ImageShape<S>, "bijou: Split takes an image Shape<C, H, W>");
    static constexpr int K = conditional_on<Ctx>::context_size;

public:
    static constexpr int C = S::dims[0], H = S::dims[1], W = S::dims[2], HW = H * W, Ch = C / 2;
    static_assert(C % 2 == 0, "bijou: Split needs an even channel count");
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;

    explicit SplitBijector(BuildContext& ctx) : conv_(Ch, C, 3, H, W), proj_(C, K) {
        if constexpr (K > 0) context_ = ctx.template context<T>();
    }

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        conv_.declare(ps, join_name(prefix, "conv"));
        proj_.declare(ps, join_name(prefix, "context.weight"));
    }
    void reset_parameters(Rng& rng) {
        conv_.reset_parameters(rng, true);
        proj_.reset_parameters(rng, /*zero=*/true);
    }

    std::size_t workspace_size(int n) const {
        const std::size_t m = std::size_t(n) * HW;
        return 2 * (Ch * m + C * m) + std::max(conv_.scratch_size(n), proj_.scratch_size(n));
    }

    void forward(const T* x, T* out, double* ld, int n, T* ws) const {
        const Layout L = layout(n, ws);
        condition(x, L, n);
        standardize<true>(x, out, ld, n, L);
    }

    void inverse(const T* out, T* x, double* ld, int n, T* ws) const {
        const Layout L = layout(n, ws);
        condition(out, L, n);  // the first h channels of out are z1
        standardize<false>(out, x, ld, n, L);
    }

    void backward(const T*, const T* out, const T* dout, const T* dld, T* dx, int n, T* ws) {
        const Layout L = layout(n, ws);
        // ∂L/∂ε → ∂L/∂z2 and ∂L/∂[μ | log σ] (channel-major, for the conv's backward), then z1's
        // gradient: its own plus the conv's.
        kernels::split_backward_stats(B{}, out, dout, dld, L.stats, dx, L.dstats, n, C, HW);
        if constexpr (K > 0) proj_.backward_per_channel(context(n), L.dstats, context_.grad(), n, HW, L.scratch);
        conv_.backward(L.z1, L.dstats, L.dz1, n, L.scratch);
        kernels::split_backward_pass(B{}, dout, L.dz1, dx, n, C, HW);
    }

    const Conv2d<T, B>& conv() const { return conv_; }

private:
    // [z1: h × nHW][stats: C × nHW = μ then log σ][dz1: h × nHW][dstats: C × nHW][conv scratch]
    struct Layout {
        T *z1, *stats, *dz1, *dstats, *scratch;
    };
    Layout layout(int n, T* ws) const {
        const std::size_t m = std::size_t(n) * HW;
        return {ws, ws + Ch * m, ws + (Ch + C) * m, ws + (2 * Ch + C) * m, ws + 2 * (Ch + C) * m};
    }

    // Forward: dst = [z1 | (z2 − μ)·exp(−log σ)], ld −= Σ log σ; inverse: dst = [z1 | μ + ε·exp(log σ)],
    // ld += Σ log σ. The first h channels pass through either way.
    template <bool Forward>
    void standardize(const T* src, T* dst, double* ld, int n, const Layout& L) const {
        kernels::split_standardize(B{}, src, dst, L.stats, ld, n, C, HW, Forward);
    }

    // z1 (first h channels of v, NCHW) → channel-major, then [μ | log σ] = conv(z1).
    void condition(const T* v, const Layout& L, int n) const {
        kernels::nchw_to_channel_major(B{}, v, L.z1, n, C, HW, 0, Ch);
        conv_.forward(L.z1, L.stats, n, L.scratch);
        if constexpr (K > 0) proj_.add_per_channel(context(n), L.stats, n, HW, /*relu=*/false, L.scratch);
    }

    const T* context(int n) const {
        if constexpr (K > 0) return context_.values(n, "split");
        else return nullptr;
    }

    Conv2d<T, B> conv_;
    ContextProjection<T, B> proj_;  // the context's projection onto [μ | log σ] (empty: unconditional)
    ContextRef<T> context_;
};

/// Recipe: keep the first half of the channels, standardise the second half under a Gaussian
/// whose mean and log-scale a zero-initialised 3×3 conv computes from the first half.
struct Split {
    static constexpr std::string_view name = "split";
    template <class S>
    static constexpr bool accepts = [] {
        if constexpr (ImageShape<S>) return S::dims[0] % 2 == 0;
        else return false;
    }();
    template <class S, class T, class B>
    using bind = SplitBijector<S, T, B>;
};

/// Recipe: Split whose prior also depends on the context Ctx = Shape<K> (a projection of c added to
/// [μ | log σ] per channel, zero at start).
template <class Ctx>
struct ConditionalSplit {
    using context_shape = Ctx;
    static constexpr std::string_view name = "split";
    template <class S>
    static constexpr bool accepts = Split::accepts<S>;
    template <class S, class T, class B>
    using bind = SplitBijector<S, T, B, Ctx>;
};

}  // namespace bijou
