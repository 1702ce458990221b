// bijou/nn/convnet.hpp — Glow's coupling conditioner NN() with a hand-written backward.
//
// ConvNet<T, Backend>(in, hidden, out, H, W):
//   3×3 conv (in → hidden) → ReLU → 1×1 conv (hidden → hidden) → ReLU → 3×3 conv (hidden → out)
//   (Kingma & Dhariwal 2018, §3.3 and openai/glow's f(); without Glow's ActNorm inside the net and
//   its output log-scale factor). Convolutions are nn/conv2d.hpp's: stride 1, "same" zero padding.
//   Activations are channel-major (C, n·H·W), see nn/conv2d.hpp: x (in, n·HW) → y (out, n·HW).
//   State_dict names as nn.Sequential numbers its modules: "<prefix>.0.weight" (hidden, in, 3, 3),
//   "<prefix>.0.bias", "<prefix>.2.weight" (hidden, hidden, 1, 1), "<prefix>.2.bias",
//   "<prefix>.4.weight" (out, hidden, 3, 3), "<prefix>.4.bias" (odd indices are the ReLUs).
//   reset_parameters(rng, zero_last): PyTorch's nn.Conv2d default per layer (U(±1/√(in_l·k²)),
//   drawn in declaration order); with zero_last the output conv is all zeros and draws nothing, so
//   a coupling starts at its identity (Glow's zero-initialised last layer).
// Workspace (scalars): stored_size(n) = 2·hidden·n·HW holds the two post-ReLU activations that
//   forward leaves for backward; scratch_size(n) is temporary space for either pass (the convs'
//   im2col buffers, and in backward two hidden·n·HW gradient buffers) and may be shared.
// backward(x, dy, dx, n, stored, scratch) for ∂L/∂y = dy, after forward(x, …) at the same n:
//   parameter gradients +=, dx = ∂L/∂x (assigned) unless null. It reads the stored activations
//   and leaves them unchanged (backward may run twice).
// Context (conditional couplings, core/context.hpp): ConvNet(in, hidden, out, H, W, context = K) adds a
//   learned projection of the sample's context c_i (K) to the first layer's pre-activation, per
//   channel: a1 = ReLU(conv0(x) + W_c·c_i) over every pixel of sample i, W_c "<prefix>.context.weight"
//   (hidden, K), U(±1/√K) at reset. forward(x, c, y, …) and backward(x, c, dy, dx, dc, …) with
//   dc += ∂L/∂c (accumulated) unless dc is null. (openai/glow enters its label the same way, a
//   projection added per channel; extra constant input channels would cost 9·K·hidden·HW flops per
//   sample instead of K·hidden, and zero padding would make them differ at the border.)
// Cost per pass: 2·n·HW·(9·in·hidden + hidden² + 9·hidden·out) flops; backward about twice that.
// No allocation in forward or backward. The net is movable but not copyable.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>

#include "bijou/core/backend.hpp"
#include "bijou/core/error.hpp"
#include "bijou/core/params.hpp"
#include "bijou/core/random.hpp"
#include "bijou/nn/context_projection.hpp"
#include "bijou/nn/conv2d.hpp"

namespace bijou {

template <Scalar T, Backend B>
class ConvNet {
public:
    ConvNet() = default;

    ConvNet(int in, int hidden, int out, int H, int W, int context = 0)
        : conv0_(checked(in, "the number of input channels"), checked(hidden, "the hidden width"), 3, H, W),
          conv2_(hidden, hidden, 1, H, W),
          conv4_(hidden, checked(out, "the number of output channels"), 3, H, W),
          proj_(hidden, context), hidden_(hidden), hw_(std::size_t(H) * std::size_t(W)) {}

    ConvNet(const ConvNet&) = delete;
    ConvNet& operator=(const ConvNet&) = delete;
    ConvNet(ConvNet&&) noexcept = default;
    ConvNet& operator=(ConvNet&&) noexcept = default;

    int in() const { return conv0_.in(); }
    int hidden() const { return hidden_; }
    int out() const { return conv4_.out(); }
    int context() const { return proj_.context(); }
    bool empty() const { return hidden_ == 0; }

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        conv0_.declare(ps, join_name(prefix, "0"));
        conv2_.declare(ps, join_name(prefix, "2"));
        conv4_.declare(ps, join_name(prefix, "4"));
        proj_.declare(ps, join_name(prefix, "context.weight"));
    }

    void reset_parameters(Rng& rng, bool zero_last) {
        conv0_.reset_parameters(rng, false);
        conv2_.reset_parameters(rng, false);
        conv4_.reset_parameters(rng, zero_last);
        proj_.reset_parameters(rng, /*zero=*/false);
    }

    /// Limits the Cpu backend's im2col chunks (see Conv2d::set_max_chunk); before sizing workspaces.
    void set_max_chunk(int samples) {
        conv0_.set_max_chunk(samples);
        conv2_.set_max_chunk(samples);
        conv4_.set_max_chunk(samples);
    }

    std::size_t stored_size(int n) const { return 2 * plane(n); }
    std::size_t scratch_size(int n) const {
        const std::size_t conv = std::max({conv0_.scratch_size(n), conv2_.scratch_size(n), conv4_.scratch_size(n)});
        return empty() ? 0 : 2 * plane(n) + conv;
    }

    /// y (out, n·HW) = net(x (in, n·HW)); the post-ReLU activations go to `stored`.
    void forward(const T* x, T* y, int n, T* stored, T* scratch) const { forward(x, nullptr, y, n, stored, scratch); }

    /// The same for a net with a context: c (n, K), backend memory (null when context() is 0).
    void forward(const T* x, const T* c, T* y, int n, T* stored, T* scratch) const {
        T* a1 = stored;
        T* a2 = stored + plane(n);
        T* conv_scratch = scratch + 2 * plane(n);
        if (!proj_.empty()) {
            conv0_.forward(x, a1, n, conv_scratch, /*relu=*/false);
            proj_.add_per_channel(c, a1, n, int(hw_), /*relu=*/true, /*scratch (n·hidden, free here)=*/scratch);
        } else {
            conv0_.forward(x, a1, n, conv_scratch, /*relu=*/true);
        }
        conv2_.forward(a1, a2, n, conv_scratch, /*relu=*/true);
        conv4_.forward(a2, y, n, conv_scratch);
    }

    /// Parameter gradients += and dx = ∂L/∂x (if dx is not null), for ∂L/∂y = dy.
    void backward(const T* x, const T* dy, T* dx, int n, const T* stored, T* scratch) {
        backward(x, nullptr, dy, dx, nullptr, n, stored, scratch);
    }

    /// The same for a net with a context: also dc += ∂L/∂c (if dc is not null).
    void backward(const T* x, const T* c, const T* dy, T* dx, T* dc, int n, const T* stored, T* scratch) {
        const T* a1 = stored;
        const T* a2 = stored + plane(n);
        T* g2 = scratch;                // ∂L/∂(pre-ReLU of layer 2)
        T* g1 = scratch + plane(n);     // ∂L/∂(pre-ReLU of layer 0)
        T* conv_scratch = scratch + 2 * plane(n);
        conv4_.backward(a2, dy, g2, n, conv_scratch, /*relu_mask=*/a2);
        conv2_.backward(a1, g2, g1, n, conv_scratch, /*relu_mask=*/a1);
        if (!proj_.empty()) proj_.backward_per_channel(c, g1, dc, n, int(hw_), /*scratch (n·hidden): g2, consumed=*/g2);
        conv0_.backward(x, g1, dx, n, conv_scratch);
    }

    /// The layers, by nn.Sequential index: 0 (3×3 in → hidden), 2 (1×1), 4 (3×3 hidden → out).
    const Conv2d<T, B>& layer(int index) const { return index == 0 ? conv0_ : index == 2 ? conv2_ : conv4_; }

private:
    static int checked(int v, const char* what) {
        if (v < 1)
            throw invalid_argument(std::string("ConvNet: ") + what + " must be at least 1 (got " + std::to_string(v) +
                                   ")");
        return v;
    }
    std::size_t plane(int n) const { return std::size_t(hidden_) * std::size_t(n) * hw_; }

    Conv2d<T, B> conv0_, conv2_, conv4_;
    ContextProjection<T, B> proj_;  // the context's projection onto the first hidden layer (empty: none)
    int hidden_ = 0;
    std::size_t hw_ = 0;
};

}  // namespace bijou
