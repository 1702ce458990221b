// bijou/bijectors/coupling.hpp — masked coupling layers: RealNVP affine and NICE additive.
//
// Recipes `AffineCoupling` and `AdditiveCoupling` (state_dict key "coupling") bind to vectors
// Shape<D>, D ≥ 2 (this header), or to images Shape<C, H, W> with C even (Glow's channel split);
// `CheckerboardAffineCoupling` and `CheckerboardAdditiveCoupling` bind to images with H·W ≥ 2
// (RealNVP's checkerboard). Image couplings are in coupling_image.hpp (included here), with their
// own contract. On vectors: a binary mask m (1 = kept, conditioning; 0 = transformed) splits the
// features; the conditioner sees x ⊙ m (all D inputs, kept values only).
//   affine, Options::scale = tanh (RealNVP, Dinh et al. 2017, eq. 4–6, masked form eq. 9; s = tanh h):
//     z = m⊙x + (1−m)⊙(x⊙exp(tanh h) + t)              log|det ∂z/∂x| = Σ_j (1−m_j)·tanh h_j
//   affine, Options::scale = sigmoid (Glow, Kingma & Dhariwal 2018, Table 1; σ(h + 2) as in openai/glow):
//     z = m⊙x + (1−m)⊙((x + t)⊙s), s = σ(h + 2)        log|det ∂z/∂x| = Σ_j (1−m_j)·log s_j
//   additive (NICE, Dinh et al. 2015, §3.2):  z = x + (1−m)⊙t                  log|det| = 0
// where (t, h) = conditioner(x ⊙ m). inverse: the kept half is unchanged, so z ⊙ m = x ⊙ m gives the
// same (t, h), and x = m⊙z + (1−m)⊙((z − t)⊙exp(−tanh h)) (tanh), (1−m)⊙(z/s − t) (sigmoid),
// z − (1−m)⊙t (additive), with the negative log-det. Only the transformed coordinates of t, h matter.
// forward maps data → latent (x → z); log-dets are added (+=) per sample in double.
//
// Options read (at construction): hidden, hidden_layers (conditioner MLP, nn/mlp.hpp), net,
// scale (affine only), mask, masks, zero_init_output. The coupling claims index k =
// BuildContext::next_index("coupling") (affine and additive couplings share the count):
//   MaskKind::alternating  keeps i iff (i + k) even (flips from one coupling to the next)
//   MaskKind::half         keeps the first ⌊D/2⌋ features when k is even, the others when k is odd
//   MaskKind::custom       Options::masks[k % masks.size()]: length D, values 0/1, at least one of each
// An invalid mask, hidden < 1 or hidden_layers < 1 throws bijou::invalid_argument naming the coupling.
// Conditioner (ReLU MLPs, x ⊙ m → …):
//   affine, CouplingNet::separate (RealNVP)  "shift_net" D→…→D gives t, "log_scale_net" D→…→D gives h
//   affine, CouplingNet::shared (Glow)       "net" D→…→2D, outputs [t | h]
//   additive                                 "shift_net" D→…→D gives t (Options::net, scale ignored)
// State_dict: "<prefix>.shift_net.0.weight", …, buffer "<prefix>.mask" (D) so checkpoints keep the
// mask. With zero_init_output the nets' output layers start at zero: tanh affine and additive
// couplings then start as the exact identity; a sigmoid coupling starts as z_j = σ(2)·x_j on the
// transformed coordinates (Glow's choice).
// Workspace: forward stores x ⊙ m, the conditioner outputs and the nets' activations, so backward
// recomputes nothing. inverse(z, x) computes them from z ⊙ m = x ⊙ m and so leaves the workspace
// exactly as forward(x, z) leaves it: backward may follow inverse directly (memory-saving
// training). Cost: the conditioner's GEMMs, O(n·(D·hidden + (hidden_layers−1)·hidden²)) per net
// per pass, plus O(n·D) elementwise.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "bijou/core/concepts.hpp"
#include "bijou/kernels/cpu/coupling.hpp"
#include "bijou/kernels/cuda/coupling.hpp"
#include "bijou/kernels/reference/coupling.hpp"
#include "bijou/nn/mlp.hpp"

namespace bijou {

/// What a coupling does to its transformed half.
enum class CouplingKind {
    affine,    ///< scale and shift (RealNVP, Glow)
    additive,  ///< shift only, volume preserving (NICE)
};

namespace detail {

/// The k-th coupling's mask over D features (1 = kept); throws invalid_argument if Options ask for
/// an invalid one.
inline std::vector<int> coupling_mask(const Options& o, int k, int D) {
    std::vector<int> m(std::size_t(D), 0);
    const std::string who = "coupling " + std::to_string(k);
    switch (o.mask) {
    case MaskKind::alternating:
        for (int i = 0; i < D; ++i) m[std::size_t(i)] = (i + k) % 2 == 0;
        return m;
    case MaskKind::half:
        for (int i = 0; i < D; ++i) m[std::size_t(i)] = (k % 2 == 0) == (i < D / 2);
        return m;
    case MaskKind::custom: {
        if (o.masks.empty())
            throw invalid_argument(who + ": Options::mask is MaskKind::custom but Options::masks is empty");
        const std::size_t c = std::size_t(k) % o.masks.size();
        const std::vector<int>& src = o.masks[c];
        const std::string where = who + " (Options::masks[" + std::to_string(c) + "])";
        if (src.size() != std::size_t(D))
            throw invalid_argument(where + ": mask has length " + std::to_string(src.size()) +
                                   ", expected the event size " + std::to_string(D));
        int kept = 0;
        for (std::size_t i = 0; i < src.size(); ++i) {
            if (src[i] != 0 && src[i] != 1)
                throw invalid_argument(where + ": mask value at position " + std::to_string(i) + " is " +
                                       std::to_string(src[i]) + "; values must be 0 (transformed) or 1 (kept)");
            kept += src[i];
        }
        if (kept == 0) throw invalid_argument(where + ": mask keeps no feature (needs at least one 1)");
        if (kept == D) throw invalid_argument(where + ": mask transforms no feature (needs at least one 0)");
        return src;
    }
    }
    throw invalid_argument(who + ": unknown Options::mask value " + std::to_string(int(o.mask)));
}

}  // namespace detail

/// Image mask policy (coupling_image.hpp): keep the first C/2 channels, transform the last C/2
/// (Glow). The default policy; vector couplings take their masks from Options instead.
struct ChannelMask {
    template <class S>
    static constexpr bool accepts = ImageShape<S> && S::dims[0] % 2 == 0;
    static constexpr int cond_channels(int C) { return C / 2; }       ///< conditioner input channels
    static constexpr int first_transformed(int C) { return C / 2; }   ///< first transformed channel
    static constexpr int transformed_channels(int C) { return C / 2; }
    static constexpr bool pixel_mask = false;
};

/// Image mask policy (coupling_image.hpp): the k-th coupling keeps (c, h, w) iff (h + w + k) is
/// even (RealNVP's checkerboard), all channels alike.
struct CheckerboardMask {
    template <class S>
    static constexpr bool accepts = [] {
        if constexpr (ImageShape<S>) return S::dims[1] * S::dims[2] >= 2;
        else return false;  // S::dims[1] does not exist
    }();
    static constexpr int cond_channels(int C) { return C; }
    static constexpr int first_transformed(int) { return 0; }
    static constexpr int transformed_channels(int C) { return C; }
    static constexpr bool pixel_mask = true;
    static constexpr bool kept(int h, int w, int k) { return (h + w + k) % 2 == 0; }
};

/// A bound coupling; the primary template is only declared: each event rank gets a specialization.
/// Mask is the image mask policy (ignored, and left at its default, for vectors).
template <CouplingKind Kind, class S, class T, class B, class Mask = ChannelMask>
class CouplingBijector;

/// Coupling on vectors Shape<D>.
template <CouplingKind Kind, class S, class T, class B>
    requires VectorShape<S>
class CouplingBijector<Kind, S, T, B> {
public:
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int D = S::size;
    static constexpr bool affine = Kind == CouplingKind::affine;
    static_assert(D >= 2, "bijou: a coupling needs at least 2 features (Shape<D> with D >= 2)");

    explicit CouplingBijector(BuildContext& ctx) : index_(ctx.next_index("coupling")) {
        const Options& o = ctx.options();
        const std::string who = "coupling " + std::to_string(index_);
        if (o.hidden < 1)
            throw invalid_argument(who + ": Options::hidden must be at least 1 (got " + std::to_string(o.hidden) + ")");
        if (o.hidden_layers < 1)
            throw invalid_argument(who + ": Options::hidden_layers must be at least 1 (got " +
                                   std::to_string(o.hidden_layers) + ")");
        if constexpr (affine) {
            if (o.net != CouplingNet::separate && o.net != CouplingNet::shared)
                throw invalid_argument(who + ": unknown Options::net value " + std::to_string(int(o.net)));
            const CouplingScale scale = resolve_scale(o.scale);  // model_default outside a model: tanh
            if (scale != CouplingScale::tanh && scale != CouplingScale::sigmoid)
                throw invalid_argument(who + ": unknown Options::scale value " + std::to_string(int(o.scale)));
            shared_ = o.net == CouplingNet::shared;
            scale_ = scale;
        }
        const std::vector<int> m = detail::coupling_mask(o, index_, D);
        for (int i = 0; i < D; ++i) initial_mask_[std::size_t(i)] = T(m[std::size_t(i)]);
        zero_init_ = o.zero_init_output;
        net_a_ = Mlp<T, B>(D, o.hidden, o.hidden_layers, shared_ ? 2 * D : D);
        if (two_nets()) net_b_ = Mlp<T, B>(D, o.hidden, o.hidden_layers, D);
    }

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        net_a_.declare(ps, join_name(prefix, shared_ ? "net" : "shift_net"));
        if (two_nets()) net_b_.declare(ps, join_name(prefix, "log_scale_net"));
        ps.add_buffer(join_name(prefix, "mask"), {std::size_t(D)}, &mask_);
    }

    void reset_parameters(Rng& rng) {
        net_a_.reset_parameters(rng, zero_init_);
        if (two_nets()) net_b_.reset_parameters(rng, zero_init_);
        std::copy(initial_mask_.begin(), initial_mask_.end(), mask_.value);
    }

    std::size_t workspace_size(int n) const {
        const std::size_t nd = std::size_t(n) * D;
        return 2 * (nd + out_size(n)) + net_a_.stored_size(n) + net_b_.stored_size(n) + (two_nets() ? nd : 0) +
               std::max(net_a_.scratch_size(n), net_b_.scratch_size(n));
    }

    void forward(const T* x, T* z, double* ld, int n, T* ws) const {
        const Layout L = layout(n, ws);
        condition(x, L, n);
        if constexpr (affine)
            kernels::coupling_affine_forward(B{}, scale_, x, z, L.t, L.h, ldo(), mask_.value, ld, n, D);
        else
            kernels::coupling_additive_forward(B{}, x, z, L.t, ldo(), mask_.value, n, D);
    }

    void inverse(const T* z, T* x, double* ld, int n, T* ws) const {
        const Layout L = layout(n, ws);
        condition(z, L, n);  // z ⊙ m = x ⊙ m
        if constexpr (affine)
            kernels::coupling_affine_inverse(B{}, scale_, z, x, L.t, L.h, ldo(), mask_.value, ld, n, D);
        else
            kernels::coupling_additive_inverse(B{}, z, x, L.t, ldo(), mask_.value, n, D);
    }

    void backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws) {
        const Layout L = layout(n, ws);
        // Direct path: dx = ∂z/∂x|_(t,h fixed)ᵀ·dz; and ∂L/∂t, ∂L/∂h at the transformed coordinates.
        if constexpr (affine)
            kernels::coupling_affine_backward(B{}, scale_, x, z, L.t, L.h, ldo(), mask_.value, dz, dld, dx, L.dt, L.dh,
                                              n, D);
        else
            kernels::coupling_additive_backward(B{}, dz, dx, L.dt, ldo(), mask_.value, n, D);
        // Path through the conditioner: its input is x ⊙ m.
        net_a_.backward(L.xm, L.dout, L.dxm_a, n, L.stored_a, L.scratch);
        if (two_nets()) net_b_.backward(L.xm, L.dout + std::size_t(n) * D, L.dxm_b, n, L.stored_b, L.scratch);
        kernels::coupling_add_condition_grad(B{}, dx, L.dxm_a, two_nets() ? L.dxm_b : nullptr, mask_.value, n, D);
    }

    /// This coupling's index among the model's couplings (decides its mask).
    int index() const { return index_; }
    /// The mask buffer (D): 1 = kept, 0 = transformed. Valid after ParamSet::allocate.
    const TensorRef<T>& mask() const { return mask_; }
    /// The conditioner: shift_net (separate, additive) or the shared net.
    const Mlp<T, B>& shift_net() const { return net_a_; }
    /// The log_scale_net of an affine coupling with separate nets (empty otherwise).
    const Mlp<T, B>& log_scale_net() const { return net_b_; }
    bool shared_net() const { return shared_; }
    CouplingScale scale() const { return scale_; }

private:
    // Workspace layout, stored part first (what forward leaves for backward), then backward's scratch:
    //   [xm: n·D][out: n·D·(1 or 2)][net a activations][net b activations]
    //   [dout: like out][dxm a: n·D][dxm b: n·D if two nets][MLP scratch, shared by both nets]
    struct Layout {
        T *xm, *out, *stored_a, *stored_b;
        T *t, *h;  // views into out
        T *dout, *dxm_a, *dxm_b, *scratch;
        T *dt, *dh;  // views into dout
    };

    bool two_nets() const { return affine && !shared_; }
    std::size_t out_size(int n) const { return std::size_t(n) * D * (affine ? 2 : 1); }
    int ldo() const { return shared_ ? 2 * D : D; }

    Layout layout(int n, T* ws) const {
        const std::size_t nd = std::size_t(n) * D;
        Layout L{};
        T* p = ws;
        auto take = [&p](std::size_t size) {
            T* q = p;
            p += size;
            return q;
        };
        L.xm = take(nd);
        L.out = take(out_size(n));
        L.stored_a = take(net_a_.stored_size(n));
        L.stored_b = take(net_b_.stored_size(n));
        L.dout = take(out_size(n));
        L.dxm_a = take(nd);
        L.dxm_b = two_nets() ? take(nd) : nullptr;
        L.scratch = p;
        // (t, h) rows: [t | h] of a shared net (stride 2D), or t then h as two (n, D) blocks.
        L.t = L.out, L.dt = L.dout;
        L.h = affine ? (shared_ ? L.out + D : L.out + nd) : nullptr;
        L.dh = affine ? (shared_ ? L.dout + D : L.dout + nd) : nullptr;
        return L;
    }

    /// xm = v ⊙ m and the conditioner outputs (t, h) for it.
    void condition(const T* v, const Layout& L, int n) const {
        kernels::coupling_mask_input(B{}, v, mask_.value, L.xm, n, D);
        net_a_.forward(L.xm, L.out, n, L.stored_a);
        if (two_nets()) net_b_.forward(L.xm, L.out + std::size_t(n) * D, n, L.stored_b);
    }

    int index_ = 0;
    bool shared_ = false;
    bool zero_init_ = true;
    CouplingScale scale_ = CouplingScale::tanh;
    std::array<T, std::size_t(D)> initial_mask_{};
    Mlp<T, B> net_a_, net_b_;
    TensorRef<T> mask_;
};

/// Recipe: affine coupling (RealNVP with CouplingScale::tanh, Glow with CouplingScale::sigmoid);
/// on images, Glow's channel split.
struct AffineCoupling {
    static constexpr std::string_view name = "coupling";
    template <class S>
    static constexpr bool accepts = (VectorShape<S> && S::size >= 2) || ChannelMask::accepts<S>;
    template <class S, class T, class B>
    using bind = CouplingBijector<CouplingKind::affine, S, T, B>;
};

/// Recipe: additive coupling (NICE), volume preserving; on images, Glow's channel split.
struct AdditiveCoupling {
    static constexpr std::string_view name = "coupling";
    template <class S>
    static constexpr bool accepts = (VectorShape<S> && S::size >= 2) || ChannelMask::accepts<S>;
    template <class S, class T, class B>
    using bind = CouplingBijector<CouplingKind::additive, S, T, B>;
};

/// Recipe: affine coupling on images with RealNVP's checkerboard mask (flips every coupling).
struct CheckerboardAffineCoupling {
    static constexpr std::string_view name = "coupling";
    template <class S>
    static constexpr bool accepts = CheckerboardMask::accepts<S>;
    template <class S, class T, class B>
    using bind = CouplingBijector<CouplingKind::affine, S, T, B, CheckerboardMask>;
};

/// Recipe: additive coupling on images with RealNVP's checkerboard mask.
struct CheckerboardAdditiveCoupling {
    static constexpr std::string_view name = "coupling";
    template <class S>
    static constexpr bool accepts = CheckerboardMask::accepts<S>;
    template <class S, class T, class B>
    using bind = CouplingBijector<CouplingKind::additive, S, T, B, CheckerboardMask>;
};

}  // namespace bijou

#include "bijou/bijectors/coupling_image.hpp"
