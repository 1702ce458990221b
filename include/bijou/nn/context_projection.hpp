// bijou/nn/context_projection.hpp — a learned linear map of the context, y_i = W·c_i (no bias): how a
// context c (core/context.hpp) enters an image conditioner or a Glow prior.
//
// ContextProjection<T, Backend>(out, K): W (out, K), one tensor declared under the name given.
//   reset_parameters(rng, zero): U(±1/√K) (PyTorch's nn.Linear bound), or all zeros (openai/glow's
//   linear_zeros: a new conditional prior starts as its unconditional self).
//   Per-channel form, on channel-major activations y (out, n·HW) (nn/conv2d.hpp's layout):
//     add_per_channel(c, y, n, HW, relu, scratch)   y[o, i, p] += (W·c_i)_o, then ReLU when `relu`
//     backward_per_channel(c, g, dc, n, HW, scratch) for ∂L/∂y = g (pre-ReLU): W.grad += Σ_i,p g[o,i,p]·c_iᵀ,
//                                                   dc += ∂L/∂c unless dc is null (overloads with a
//                                                   last argument dw add W's gradient there instead)
//   Row form, on y (n, out) row-major:
//     add_rows(c, y, n)                 y_i += W·c_i
//     backward_rows(c, g, dc, n)        W.grad += gᵀ·c, dc += g·W unless dc is null
// scratch: scratch_size(n) = n·out scalars (the per-sample projections). Cost: 2·n·out·K flops per pass
// (kernels::gemm) plus one pass over y (kernels::context_bias). No allocation.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "bijou/core/backend.hpp"
#include "bijou/core/error.hpp"
#include "bijou/core/params.hpp"
#include "bijou/core/random.hpp"
#include "bijou/kernels/cpu/context.hpp"
#include "bijou/kernels/cpu/gemm.hpp"
#include "bijou/kernels/cuda/context.hpp"
#include "bijou/kernels/reference/context.hpp"
#include "bijou/kernels/reference/gemm.hpp"

namespace bijou {

template <Scalar T, Backend B>
class ContextProjection {
public:
    ContextProjection() = default;
    ContextProjection(int out, int context) : out_(out), context_(context) {
        if (out < 1 || context < 0)
            throw invalid_argument("ContextProjection: needs out >= 1 and context >= 0 (got " + std::to_string(out) + ", " +
                                   std::to_string(context) + ")");
    }
    ContextProjection(const ContextProjection&) = delete;
    ContextProjection& operator=(const ContextProjection&) = delete;
    ContextProjection(ContextProjection&&) noexcept = default;
    ContextProjection& operator=(ContextProjection&&) noexcept = default;

    int out() const { return out_; }
    int context() const { return context_; }
    bool empty() const { return context_ == 0; }

    void declare(ParamSet<T>& ps, const std::string& name) {
        if (!empty()) ps.add(name, {std::size_t(out_), std::size_t(context_)}, &w_);
    }
    void reset_parameters(Rng& rng, bool zero) {
        const double bound = empty() ? 0.0 : 1.0 / std::sqrt(double(context_));
        for (std::size_t k = 0; k < w_.size; ++k) w_[k] = zero ? T(0) : T((2.0 * rng.uniform() - 1.0) * bound);
    }
    std::size_t scratch_size(int n) const { return empty() ? 0 : std::size_t(n) * out_; }

    void add_per_channel(const T* c, T* y, int n, int HW, bool relu, T* scratch) const {
        kernels::gemm(B{}, false, true, n, out_, context_, T(1), c, context_, w_.value, context_, T(0), scratch, out_);
        kernels::context_bias(B{}, y, scratch, n, out_, HW, relu);
    }
    void backward_per_channel(const T* c, const T* g, T* dc, int n, int HW, T* scratch) {
        backward_per_channel(c, g, dc, n, HW, scratch, w_.grad);
    }
    /// The same with W's gradient added to dw (out·K) instead of W.grad.
    void backward_per_channel(const T* c, const T* g, T* dc, int n, int HW, T* scratch, T* dw) {
        kernels::context_bias_grad(B{}, g, scratch, n, out_, HW);
        backward_rows(c, scratch, dc, n, dw);
    }

    void add_rows(const T* c, T* y, int n) const {
        kernels::gemm(B{}, false, true, n, out_, context_, T(1), c, context_, w_.value, context_, T(1), y, out_);
    }
    void backward_rows(const T* c, const T* g, T* dc, int n) { backward_rows(c, g, dc, n, w_.grad); }
    void backward_rows(const T* c, const T* g, T* dc, int n, T* dw) {
        kernels::gemm(B{}, true, false, out_, context_, n, T(1), g, out_, c, context_, T(1), dw, context_);
        if (dc != nullptr)
            kernels::gemm(B{}, false, false, n, context_, out_, T(1), g, out_, w_.value, context_, T(1), dc, context_);
    }

    const TensorRef<T>& weight() const { return w_; }

private:
    int out_ = 0, context_ = 0;
    TensorRef<T> w_;
};

}  // namespace bijou
