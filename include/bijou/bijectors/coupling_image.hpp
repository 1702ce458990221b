// bijou/bijectors/coupling_image.hpp — couplings on images Shape<C, H, W> (recipes: coupling.hpp).
//
// CouplingBijector<Kind, Shape<C,H,W>, T, B, Mask, Ctx>: the same three transforms as the vector coupling
// (coupling_vector.hpp), applied per element of an image, with a mask chosen at compile time by the recipe:
//   ChannelMask (recipes AffineCoupling, AdditiveCoupling; Glow, Kingma & Dhariwal 2018, §3.3):
//     the first C/2 channels are kept and condition the last C/2, which are transformed. Always the
//     first half: Glow leaves the mixing of channels to the preceding Permute / 1×1 convolution.
//     Needs C even. Conditioner: C/2 channels in; out C/2 (t) additive, C ([t | h]) affine.
//   CheckerboardMask (recipes CheckerboardAffineCoupling, CheckerboardAdditiveCoupling; RealNVP,
//     Dinh et al. 2017, §3.4): element (c, h, w) is kept iff (h + w + k) is even, k = the coupling's
//     index, so consecutive couplings flip. Needs H·W ≥ 2. Conditioner: x ⊙ m (all C channels) in;
//     out C (t) additive, 2C ([t | h]) affine; t and h are used where m = 0.
// Scales exactly as the vector coupling: CouplingOptions::scale tanh (z = x·exp(tanh h) + t, log-det Σ tanh h)
// or sigmoid (z = (x + t)·σ(h + 2), log-det Σ log σ(h + 2)); additive z = x + t, log-det 0; sums
// over the transformed elements, added (+=) per sample in double. forward maps data → latent.
// Conditioner: always ONE ConvNet "net" (nn/convnet.hpp: 3×3 conv → ReLU → 1×1 conv → ReLU → 3×3
// conv) of width Options::hidden whose output channels are [t | h] (t first); zero_init_output
// zero-initialises its last conv (CouplingOptions, coupling_common.hpp). Options::hidden_layers and
// CouplingOptions::net, mask and masks are ignored for images (one shared net is the only layout; the
// mask is the recipe's). Settings recorded for checkpoints: kind, mask_policy ("channel" or "checkerboard"),
// hidden, and scale for affine couplings. The index k is claimed from
// BuildContext::next_index("coupling") by both mask kinds (shared with vector couplings).
// State_dict: "<prefix>.net.0.weight" (hidden, C_in, 3, 3), "net.0.bias", "net.2.weight" (hidden,
// hidden, 1, 1), "net.2.bias", "net.4.weight" (C_out, hidden, 3, 3), "net.4.bias"; a checkerboard
// coupling also keeps its mask as the buffer "<prefix>.mask" (H, W), 1 = kept.
// Conditional couplings (ConditionalAffineCoupling<Shape<K>>, …; core/context.hpp): the ConvNet adds a
// learned projection of the sample's context to its first hidden layer, per channel ("net.context.weight"
// (hidden, K); nn/convnet.hpp says why a projection and not extra input channels); backward adds ∂L/∂c
// into the model's context gradient.
// Invalid options (hidden < 1, an unknown scale) throw bijou::invalid_argument naming the coupling.
// Workspace, laid out [xm][out][net activations] [dout][dxm][net scratch]: forward stores the
// conditioner's input xm (channel-major), its output and the net's activations, so backward
// recomputes nothing; the second half is scratch (scratch_size, core/workspace.hpp), which a
// composite shares among all its couplings. inverse(z, x) computes the conditioner from z ⊙ m = x ⊙ m and so leaves the
// stored part exactly as forward(x, z) leaves it: backward may follow inverse directly (what
// memory-saving training relies on). Cost per pass: the ConvNet,
// 2·n·HW·(9·C_in·hidden + hidden² + 9·hidden·C_out) flops, plus O(n·C·HW) elementwise.
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>

#include "bijou/bijectors/coupling_common.hpp"  // CouplingKind, the mask policies, the primary template
#include "bijou/kernels/cpu/coupling_image.hpp"
#include "bijou/kernels/cuda/coupling.hpp"
#include "bijou/kernels/reference/coupling_image.hpp"
#include "bijou/nn/convnet.hpp"

namespace bijou {

/// Coupling on images Shape<C, H, W>.
template <CouplingKind Kind, class S, class T, class B, class Mask, class Ctx>
    requires ImageShape<S>
class CouplingBijector<Kind, S, T, B, Mask, Ctx> : public conditional_on<Ctx> {
    static constexpr int K = conditional_on<Ctx>::context_size;

public:
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    using mask_policy = Mask;
    static constexpr int C = S::dims[0], H = S::dims[1], W = S::dims[2], HW = H * W;
    static constexpr bool affine = Kind == CouplingKind::affine;
    static constexpr bool checkerboard = Mask::pixel_mask;
    static_assert(std::is_same_v<Mask, ChannelMask> || std::is_same_v<Mask, CheckerboardMask>,
                  "bijou: an image coupling's mask policy is ChannelMask or CheckerboardMask");
    static_assert(checkerboard || C % 2 == 0,
                  "bijou: a channel-wise image coupling needs an even channel count (Shape<C, H, W> with C even)");
    static_assert(!checkerboard || HW >= 2, "bijou: a checkerboard coupling needs H·W >= 2");
    static constexpr int cond_in = Mask::cond_channels(C);            ///< conditioner input channels
    static constexpr int c0 = Mask::first_transformed(C);             ///< first transformed channel
    static constexpr int ct = Mask::transformed_channels(C);          ///< rows of t (and of h)
    static constexpr int cond_out = ct * (affine ? 2 : 1);            ///< conditioner output channels

    explicit CouplingBijector(BuildContext& ctx)
        : index_(ctx.next_index("coupling")), who_("coupling " + std::to_string(index_)) {
        const Options& o = ctx.options();
        const CouplingOptions co = o.get<CouplingOptions>();
        const std::string& who = who_;
        if constexpr (K > 0) context_ = ctx.template context<T>();
        detail::check_conditioner_size(who, o.hidden, 1);
        if constexpr (affine) scale_ = detail::checked_scale(who, co.scale);
        zero_init_ = co.zero_init_output;
        hidden_ = o.hidden;
        net_ = ConvNet<T, B>(cond_in, o.hidden, cond_out, H, W, K);
    }

    CouplingBijector(const CouplingBijector&) = delete;
    CouplingBijector& operator=(const CouplingBijector&) = delete;
    CouplingBijector(CouplingBijector&&) noexcept = default;
    CouplingBijector& operator=(CouplingBijector&&) noexcept = default;

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        net_.declare(ps, join_name(prefix, "net"));
        if constexpr (checkerboard) ps.add_buffer(join_name(prefix, "mask"), {std::size_t(H), std::size_t(W)}, &mask_);
        ps.add_setting(join_name(prefix, "kind"), std::string(setting_name(Kind)));
        ps.add_setting(join_name(prefix, "mask_policy"), checkerboard ? "checkerboard" : "channel");
        ps.add_setting(join_name(prefix, "hidden"), std::to_string(hidden_));
        if constexpr (affine) ps.add_setting(join_name(prefix, "scale"), std::string(setting_name(scale_)));
    }

    void reset_parameters(Rng& rng) {
        net_.reset_parameters(rng, zero_init_);
        if constexpr (checkerboard)
            for (int y = 0; y < H; ++y)
                for (int x = 0; x < W; ++x) mask_.value[y * W + x] = T(CheckerboardMask::kept(y, x, index_));
    }

    std::size_t workspace_size(int n) const {
        return plane(n) * (cond_in + cond_out) + net_.stored_size(n) + scratch_size(n);
    }
    /// Scalars of the workspace that are scratch ([dout][dxm][net scratch]; core/workspace.hpp).
    std::size_t scratch_size(int n) const { return plane(n) * (cond_in + cond_out) + net_.scratch_size(n); }

    void forward(const T* x, T* z, double* ld, int n, T* ws) const { forward(x, z, ld, n, ws, scratch_at(ws, n)); }
    void forward(const T* x, T* z, double* ld, int n, T* ws, T* scratch) const {
        const Layout L = layout(n, ws, scratch);
        condition(x, L, n);
        if constexpr (affine)
            kernels::coupling_image_affine_forward(B{}, scale_, x, z, L.t, L.h, keep(), ld, n, C, HW, c0, ct);
        else
            kernels::coupling_image_additive_forward(B{}, x, z, L.t, keep(), n, C, HW, c0, ct);
    }

    void inverse(const T* z, T* x, double* ld, int n, T* ws) const { inverse(z, x, ld, n, ws, scratch_at(ws, n)); }
    void inverse(const T* z, T* x, double* ld, int n, T* ws, T* scratch) const {
        const Layout L = layout(n, ws, scratch);
        condition(z, L, n);  // z ⊙ m = x ⊙ m: the same conditioner input, activations and outputs
        if constexpr (affine)
            kernels::coupling_image_affine_inverse(B{}, scale_, z, x, L.t, L.h, keep(), ld, n, C, HW, c0, ct);
        else
            kernels::coupling_image_additive_inverse(B{}, z, x, L.t, keep(), n, C, HW, c0, ct);
    }

    void backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws) {
        backward(x, z, dz, dld, dx, n, ws, scratch_at(ws, n));
    }
    void backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws, T* scratch) {
        const Layout L = layout(n, ws, scratch);
        // Direct path (t, h fixed) into dx, and ∂L/∂t, ∂L/∂h for the conditioner.
        if constexpr (affine)
            kernels::coupling_image_affine_backward(B{}, scale_, x, z, L.h, keep(), dz, dld, dx, L.dt, L.dh, n, C, HW,
                                                    c0, ct);
        else
            kernels::coupling_image_additive_backward(B{}, dz, dx, L.dt, keep(), n, C, HW, c0, ct);
        // Path through the conditioner, whose input is the kept part of x.
        net_.backward(L.xm, context(n), L.dout, L.dxm, K > 0 ? context_.grad() : nullptr, n, L.stored, L.scratch);
        kernels::coupling_image_add_input_grad(B{}, dx, L.dxm, keep(), n, C, HW, 0, cond_in);
    }

    /// This coupling's index among the model's couplings (decides a checkerboard's phase).
    int index() const { return index_; }
    /// The checkerboard mask buffer (H, W), 1 = kept; empty for a channel-wise coupling.
    const TensorRef<T>& mask() const { return mask_; }
    /// The conditioner: cond_in channels → cond_out channels [t | h].
    const ConvNet<T, B>& net() const { return net_; }
    /// Limits the Cpu backend's im2col chunks of the conditioner (before sizing workspaces).
    void set_max_chunk(int samples) { net_.set_max_chunk(samples); }
    CouplingScale scale() const { return scale_; }

private:
    struct Layout {
        T *xm, *out, *stored, *dout, *dxm, *scratch;
        T *t, *h, *dt, *dh;  // views into out and dout: rows [0, ct) and [ct, 2·ct)
    };

    static std::size_t plane(int n) { return std::size_t(n) * HW; }
    const T* keep() const {
        if constexpr (checkerboard) return mask_.value;
        else return nullptr;
    }

    T* scratch_at(T* ws, int n) const { return ws + detail::kept_size(*this, n); }
    // Kept part at ws, scratch at `scratch`.
    Layout layout(int n, T* ws, T* scratch) const {
        Layout L{};
        T* p = ws;
        auto take = [&p](std::size_t size) {
            T* q = p;
            p += size;
            return q;
        };
        L.xm = take(plane(n) * cond_in);
        L.out = take(plane(n) * cond_out);
        L.stored = take(net_.stored_size(n));
        p = scratch;
        L.dout = take(plane(n) * cond_out);
        L.dxm = take(plane(n) * cond_in);
        L.scratch = p;
        L.t = L.out, L.dt = L.dout;
        L.h = affine ? L.out + plane(n) * ct : nullptr;
        L.dh = affine ? L.dout + plane(n) * ct : nullptr;
        return L;
    }

    /// xm = the kept part of v (channel-major) and the conditioner output [t | h] for it.
    void condition(const T* v, const Layout& L, int n) const {
        kernels::coupling_image_input(B{}, v, L.xm, keep(), n, C, HW, 0, cond_in);
        net_.forward(L.xm, context(n), L.out, n, L.stored, L.scratch);
    }

    const T* context(int n) const {
        if constexpr (K > 0) return context_.values(n, who_.c_str());
        else return nullptr;
    }

    int index_ = 0;
    std::string who_;
    ContextRef<T> context_;
    int hidden_ = 0;
    bool zero_init_ = true;
    CouplingScale scale_ = CouplingScale::tanh;
    ConvNet<T, B> net_;
    TensorRef<T> mask_;
};

}  // namespace bijou
