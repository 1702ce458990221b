// bijou/nn/mlp.hpp — a multilayer perceptron with a hand-written backward (coupling conditioner).
//
// Mlp<T, Backend>(in, hidden, hidden_layers, out): Linear → ReLU → (Linear → ReLU)… → Linear, with
// `hidden_layers` hidden layers of width `hidden`, i.e. hidden_layers + 1 Linear layers.
//   Rows are samples: x (n, in) → y (n, out). Linear layer: y = x·Wᵀ + b, W (out_l × in_l) stored
//   row-major as PyTorch's nn.Linear stores it, b (out_l).
//   State_dict names as nn.Sequential numbers its modules: "<prefix>.0.weight", "<prefix>.0.bias",
//   "<prefix>.2.weight", … "<prefix>.<2·hidden_layers>.weight" (odd indices are the ReLUs).
//   reset_parameters(rng, zero_last): W, b ~ U(−1/√in_l, 1/√in_l) per layer, drawn in declaration
//   order, row-major (PyTorch's nn.Linear default bound); with zero_last the output layer is all
//   zeros (and draws nothing), so a coupling starts as the identity.
// Workspace (scalars): stored_size(n) = n·hidden·hidden_layers holds the post-ReLU activations that
//   forward leaves for backward; scratch_size(n) ≤ 2·n·hidden is backward's temporary space and
//   may be shared between nets that run backward one after the other. workspace_size(n) is their
//   sum, laid out [stored][scratch] for the one-pointer overloads.
// backward(x, dy, dx, n, …) for L with ∂L/∂y = dy, after forward(x, …) at the same n: parameter
//   gradients += (W: dYᵀ·X, b: column sums of dY), dx = dY·W of the first layer (assigned) unless
//   dx is null. It reads the stored activations and leaves them unchanged (backward may run twice).
// Context (conditional couplings, core/context.hpp): Mlp(in, hidden, hidden_layers, out, context = K)
//   takes a second input c (n, K) concatenated to x, [x | c] → y, as nflows' context_features does:
//   layer 0's weight is (hidden, in + K), its last K columns acting on c. forward(x, c, y, …),
//   backward(x, c, dy, dx, dc, …) with dc += ∂L/∂c (accumulated: several nets share one context) unless
//   dc is null. The concatenation is never formed: layer 0 runs two GEMMs on column blocks of W.
// Cost per pass: 2·n·(in·hidden + (hidden_layers − 1)·hidden² + hidden·out) flops, all in
//   kernels::gemm; backward about twice that (a layer at a time: kernels::mlp_layer_backward, and
//   mlp_param_grads for the first; the Cpu backend runs a thin input or output layer's in one pass).
//   No allocation in forward or backward.
// Masks (MADE, nn/made.hpp): set_masks(M) before declare() makes layer l compute with W_l ⊙ M_l
//   (M_l: out_l × ld_l, 0/1, the context columns included), as nflows' MaskedLinear does; the masks
//   are buffers "<prefix>.<2l>.mask". forward writes the masked weights into the stored part of the
//   workspace (stored_size grows by Σ out_l·ld_l), and backward masks the weight gradients, so a
//   masked-out weight has gradient 0 and never acts, whatever value it holds.
// The net is movable but not copyable: its tensor handles are bound to a ParamSet by address.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "bijou/core/backend.hpp"
#include "bijou/core/error.hpp"
#include "bijou/core/params.hpp"
#include "bijou/core/random.hpp"
#include "bijou/kernels/cpu/gemm.hpp"
#include "bijou/kernels/cpu/mlp.hpp"
#include "bijou/kernels/cuda/mlp.hpp"
#include "bijou/kernels/reference/gemm.hpp"
#include "bijou/kernels/reference/mlp.hpp"

namespace bijou {

template <Scalar T, Backend B>
class Mlp {
public:
    Mlp() = default;

    Mlp(int in, int hidden, int hidden_layers, int out, int context = 0)
        : in_(in), hidden_(hidden), hidden_layers_(hidden_layers), out_(out), context_(context) {
        auto check = [](int v, const char* what) {
            if (v < 1) throw invalid_argument(std::string("Mlp: ") + what + " must be at least 1 (got " +
                                              std::to_string(v) + ")");
        };
        check(in, "the input size");
        check(hidden, "the hidden width");
        check(hidden_layers, "the number of hidden layers");
        check(out, "the output size");
        if (context < 0) throw invalid_argument("Mlp: the context size must be non-negative (got " + std::to_string(context) + ")");
        layers_.resize(std::size_t(hidden_layers) + 1);
        for (int l = 0; l <= hidden_layers; ++l) {
            layers_[std::size_t(l)].in = l == 0 ? in : hidden;
            layers_[std::size_t(l)].out = l == hidden_layers ? out : hidden;
            layers_[std::size_t(l)].ld = layers_[std::size_t(l)].in + (l == 0 ? context : 0);
        }
    }

    Mlp(const Mlp&) = delete;
    Mlp& operator=(const Mlp&) = delete;
    Mlp(Mlp&&) noexcept = default;  // handles point into the ParamSet, layers_ keeps its heap block
    Mlp& operator=(Mlp&&) noexcept = default;

    int in() const { return in_; }
    int hidden() const { return hidden_; }
    int hidden_layers() const { return hidden_layers_; }
    int out() const { return out_; }
    int context() const { return context_; }
    bool empty() const { return layers_.empty(); }

    /// Makes the net a masked MLP (see the contract above): masks[l] has out_l·ld_l values, 0 or 1.
    void set_masks(std::vector<std::vector<T>> masks) {
        if (masks.size() != layers_.size())
            throw invalid_argument("Mlp: " + std::to_string(masks.size()) + " masks for " +
                                   std::to_string(layers_.size()) + " layers");
        masked_size_ = 0;
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const std::size_t size = std::size_t(layers_[l].out) * layers_[l].ld;
            if (masks[l].size() != size)
                throw invalid_argument("Mlp: mask " + std::to_string(l) + " has " + std::to_string(masks[l].size()) +
                                       " values, the layer's weight " + std::to_string(size));
            masked_size_ += size;
        }
        initial_masks_ = std::move(masks);
    }
    bool masked() const { return !initial_masks_.empty(); }

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            Layer& ly = layers_[l];
            const std::string key = join_name(prefix, std::to_string(2 * l));  // nn.Sequential index
            ps.add(join_name(key, "weight"), {std::size_t(ly.out), std::size_t(ly.ld)}, &ly.w);
            ps.add(join_name(key, "bias"), {std::size_t(ly.out)}, &ly.b);
            if (masked()) ps.add_buffer(join_name(key, "mask"), {std::size_t(ly.out), std::size_t(ly.ld)}, &ly.m);
        }
    }

    void reset_parameters(Rng& rng, bool zero_last) {
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            Layer& ly = layers_[l];
            const bool zero = zero_last && l + 1 == layers_.size();
            const double bound = 1.0 / std::sqrt(double(ly.ld));
            auto draw = [&] { return zero ? T(0) : T((2.0 * rng.uniform() - 1.0) * bound); };
            for (std::size_t k = 0; k < ly.w.size; ++k) ly.w[k] = draw();
            for (std::size_t k = 0; k < ly.b.size; ++k) ly.b[k] = draw();
            if (masked()) std::copy(initial_masks_[l].begin(), initial_masks_[l].end(), ly.m.value);
        }
    }

    /// The multiply-adds of one forward pass over n rows, times 2 (the contract's cost per pass).
    double flops(int n) const {
        double macs = 0.0;
        for (const Layer& ly : layers_) macs += double(ly.out) * ly.ld;
        return 2.0 * n * macs;
    }

    std::size_t stored_size(int n) const { return std::size_t(n) * hidden_ * hidden_layers_ + masked_size_; }
    std::size_t scratch_size(int n) const {
        return std::size_t(n) * hidden_ * (hidden_layers_ >= 2 ? 2 : hidden_layers_);
    }
    std::size_t workspace_size(int n) const { return stored_size(n) + scratch_size(n); }

    /// y (n, out) = net(x (n, in)); the post-ReLU activations go to `stored` (or to a whole workspace).
    void forward(const T* x, T* y, int n, T* stored) const { forward(x, nullptr, y, n, stored); }

    /// y (n, out) = net([x | c]) for a net with a context (c: n × context(); null when context() is 0).
    void forward(const T* x, const T* c, T* y, int n, T* stored) const {
        const T* in = x;
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const Layer& ly = layers_[l];
            const bool last = l + 1 == layers_.size();
            T* out = last ? y : activation(stored, n, l);
            const T* w = ly.w.value;
            if (masked()) {
                T* wm = masked_weight(stored, n, l);
                kernels::mlp_apply_mask(B{}, ly.w.value, ly.m.value, wm, ly.w.size);
                w = wm;
            }
            if (l == 0 && context_ > 0) {  // x·W_xᵀ, then + c·W_cᵀ + b (W_c: the last K columns of W)
                kernels::gemm(B{}, false, true, n, ly.out, ly.in, T(1), in, ly.in, w, ly.ld, T(0), out, ly.out);
                kernels::mlp_linear(B{}, c, context_, w + ly.in, ly.ld, ly.b.value, T(1), out, n, context_, ly.out,
                                    !last);
            } else {
                kernels::mlp_linear(B{}, in, ly.in, w, ly.ld, ly.b.value, T(0), out, n, ly.in, ly.out, !last);
            }
            in = out;
        }
    }

    /// Parameter gradients += and dx = ∂L/∂x (if dx is not null), for ∂L/∂y = dy.
    void backward(const T* x, const T* dy, T* dx, int n, const T* stored, T* scratch) {
        backward(x, nullptr, dy, dx, nullptr, n, stored, scratch);
    }

    /// The same for a net with a context: also dc += ∂L/∂c (if dc is not null). With param_grads
    /// false the parameter gradients are left alone (an input-only vector-Jacobian product).
    void backward(const T* x, const T* c, const T* dy, T* dx, T* dc, int n, const T* stored, T* scratch,
                  bool param_grads = true) {
        const T* g = dy;        // ∂L/∂(pre-activation output of layer l)
        bool g_summed = false;  // layer l's bias gradient already added (by the layer above's pass)
        for (std::size_t l = layers_.size(); l-- > 0;) {
            Layer& ly = layers_[l];
            const T* in = l == 0 ? x : activation(stored, n, l - 1);
            const T* w = masked() ? masked_weight(stored, n, l) : ly.w.value;  // as forward used it
            T* db = param_grads && !g_summed ? ly.b.grad : nullptr;
            if (l > 0) {
                // ping-pong from buffer 0 at the top layer down; never the buffer g lives in
                T* d = scratch + ((layers_.size() - 1 - l) % 2) * std::size_t(n) * hidden_;
                g_summed = false;
                if (param_grads) {
                    // dW += gᵀ·in, db += Σ_rows g, d = (g·W) ⊙ [in > 0], and the layer below's db += Σ_rows d
                    // here if this layer is thin-output, else in the layer below's own pass
                    // (kernels/reference/mlp.hpp: mlp_thin_width)
                    g_summed = ly.out <= kernels::mlp_thin_width;
                    kernels::mlp_layer_backward(B{}, g, in, w, ly.ld, ly.w.grad, db, d,
                                                g_summed ? layers_[l - 1].b.grad : nullptr, n, ly.in, ly.out);
                    if (masked()) kernels::mlp_apply_mask(B{}, ly.w.grad, ly.m.value, ly.w.grad, ly.w.size);
                } else {
                    kernels::mlp_linear_input_grad_relu(B{}, g, w, ly.ld, in, d, n, ly.in, ly.out);
                }
                g = d;
                continue;
            }
            if (param_grads) {
                // dW += gᵀ·x (and gᵀ·c into the context columns), db += Σ_rows g
                kernels::mlp_param_grads(B{}, g, x, ly.in, ly.w.grad, ly.ld, db, n, ly.in, ly.out);
                if (context_ > 0)
                    kernels::gemm(B{}, true, false, ly.out, context_, n, T(1), g, ly.out, c, context_, T(1),
                                  ly.w.grad + ly.in, ly.ld);
                if (masked()) kernels::mlp_apply_mask(B{}, ly.w.grad, ly.m.value, ly.w.grad, ly.w.size);
            }
            if (dx != nullptr)
                kernels::gemm(B{}, false, false, n, ly.in, ly.out, T(1), g, ly.out, w, ly.ld, T(0), dx, ly.in);
            if (context_ > 0 && dc != nullptr)
                kernels::gemm(B{}, false, false, n, context_, ly.out, T(1), g, ly.out, w + ly.in, ly.ld, T(1), dc,
                              context_);
        }
    }

    /// One-pointer form: ws laid out [stored_size(n)][scratch_size(n)], as forward(x, y, n, ws) left it
    /// (forward only writes the stored part, so the same pointer serves both).
    void backward(const T* x, const T* dy, T* dx, int n, T* ws) {
        backward(x, dy, dx, n, ws, ws + stored_size(n));
    }

    /// Handles of layer l's weight (out_l × in_l) and bias (out_l); l = 0 … hidden_layers.
    const TensorRef<T>& weight(int l) const { return layers_[std::size_t(l)].w; }
    const TensorRef<T>& bias(int l) const { return layers_[std::size_t(l)].b; }

private:
    struct Layer {
        int in = 0, out = 0, ld = 0;  // ld: row stride of W (in, plus the context width for layer 0)
        TensorRef<T> w, b, m;         // m: the mask buffer of a masked net
    };

    T* activation(T* stored, int n, std::size_t l) const { return stored + l * std::size_t(n) * hidden_; }
    const T* activation(const T* stored, int n, std::size_t l) const {
        return stored + l * std::size_t(n) * hidden_;
    }
    /// Layer l's masked weights W_l ⊙ M_l, after the activations in the stored part.
    template <class P>
    P* masked_weight(P* stored, int n, std::size_t l) const {
        P* p = stored + std::size_t(n) * hidden_ * hidden_layers_;
        for (std::size_t k = 0; k < l; ++k) p += std::size_t(layers_[k].out) * layers_[k].ld;
        return p;
    }

    int in_ = 0, hidden_ = 0, hidden_layers_ = 0, out_ = 0, context_ = 0;
    std::vector<Layer> layers_;
    std::vector<std::vector<T>> initial_masks_;  // empty: not masked
    std::size_t masked_size_ = 0;                // Σ out_l·ld_l of a masked net
};

}  // namespace bijou
