// bijou/bijectors/coupling_vector.hpp — masked coupling layers on vectors: RealNVP affine and NICE additive.
//
// The recipes `AffineCoupling` and `AdditiveCoupling` (coupling.hpp; state_dict key "coupling") bind
// to vectors Shape<D>, D ≥ 2, as this CouplingBijector (images: coupling_image.hpp). A binary mask m (1 = kept, conditioning; 0 = transformed) splits the
// features; the conditioner sees x ⊙ m (all D inputs, kept values only).
//   affine, scale tanh (RealNVP, Dinh et al. 2017, eq. 4–6, masked form eq. 9; s = tanh h):
//     z = m⊙x + (1−m)⊙(x⊙exp(tanh h) + t)              log|det ∂z/∂x| = Σ_j (1−m_j)·tanh h_j
//   affine, scale sigmoid (Glow, Kingma & Dhariwal 2018, Table 1; σ(h + 2) as in openai/glow):
//     z = m⊙x + (1−m)⊙((x + t)⊙s), s = σ(h + 2)        log|det ∂z/∂x| = Σ_j (1−m_j)·log s_j
//   additive (NICE, Dinh et al. 2015, §3.2):  z = x + (1−m)⊙t                  log|det| = 0
// where (t, h) = conditioner(x ⊙ m). inverse: the kept half is unchanged, so z ⊙ m = x ⊙ m gives the
// same (t, h), and x = m⊙z + (1−m)⊙((z − t)⊙exp(−tanh h)) (tanh), (1−m)⊙(z/s − t) (sigmoid),
// z − (1−m)⊙t (additive), with the negative log-det. Only the transformed coordinates of t, h matter.
// forward maps data → latent (x → z); log-dets are added (+=) per sample in double.
//
// Read at construction: Options::hidden, Options::hidden_layers (conditioner MLP, nn/mlp.hpp) and
// CouplingOptions (coupling_common.hpp): net, scale (affine only; model_default here means tanh), mask,
// masks, zero_init_output. Settings recorded for checkpoints: kind, hidden, hidden_layers, and for
// affine couplings net and scale. The coupling claims index k =
// BuildContext::next_index("coupling") (affine and additive couplings share the count):
//   MaskKind::alternating  keeps i iff (i + k) even (flips from one coupling to the next)
//   MaskKind::half         keeps the first ⌊D/2⌋ features when k is even, the others when k is odd
//   MaskKind::custom       CouplingOptions::masks[k % masks.size()]: length D, values 0/1, at least one of each
// An invalid mask, hidden < 1 or hidden_layers < 1 throws bijou::invalid_argument naming the coupling.
// Conditioner (ReLU MLPs, x ⊙ m → …):
//   affine, CouplingNet::separate (RealNVP)  "shift_net" D→…→D gives t, "log_scale_net" D→…→D gives h
//   affine, CouplingNet::shared (Glow)       "net" D→…→2D, outputs [t | h]
//   additive                                 "shift_net" D→…→D gives t (net and scale ignored)
// Conditional couplings (ConditionalAffineCoupling<Shape<K>>, ConditionalAdditiveCoupling<Shape<K>>,
// core/context.hpp): every net also sees the context row c_i, concatenated to its input (nflows'
// context_features): (t, h) = conditioner([x ⊙ m | c]); layer 0's weight is then (hidden, D + K).
// The formulas above hold with c fixed; backward adds ∂L/∂c into the model's context gradient.
// State_dict: "<prefix>.shift_net.0.weight", …, buffer "<prefix>.mask" (D) so checkpoints keep the
// mask. With zero_init_output the nets' output layers start at zero: tanh affine and additive
// couplings then start as the exact identity; a sigmoid coupling starts as z_j = σ(2)·x_j on the
// transformed coordinates (Glow's choice).
// Workspace: forward stores x ⊙ m, the conditioner outputs and the nets' activations, so backward
// recomputes nothing. inverse(z, x) computes them from z ⊙ m = x ⊙ m and so leaves the workspace
// exactly as forward(x, z) leaves it: backward may follow inverse directly (memory-saving
// training). Backward's own buffers are scratch (scratch_size, core/workspace.hpp), which a
// composite shares among its couplings. Cost: the conditioner's GEMMs, O(n·(D·hidden + (hidden_layers−1)·hidden²)) per net
// per pass, plus O(n·D) elementwise. Separate shift and log-scale nets are independent: their passes
// go through kernels::mlp_concurrently (on the Cpu backend with two threads: one net per thread, and the
// masking and elementwise passes around them half the rows per thread, in the same parallel region).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "bijou/bijectors/coupling_common.hpp"
#include "bijou/kernels/cpu/coupling.hpp"
#include "bijou/kernels/cuda/coupling.hpp"
#include "bijou/kernels/reference/coupling.hpp"
#include "bijou/nn/mlp.hpp"

namespace bijou {

/// Coupling on vectors Shape<D>.
template <CouplingKind Kind, class S, class T, class B, class Ctx>
    requires VectorShape<S>
class CouplingBijector<Kind, S, T, B, ChannelMask, Ctx> : public conditional_on<Ctx> {
    static constexpr int K = conditional_on<Ctx>::context_size;

public:
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int D = S::size;
    static constexpr bool affine = Kind == CouplingKind::affine;
    static_assert(D >= 2, "bijou: a coupling needs at least 2 features (Shape<D> with D >= 2)");

    explicit CouplingBijector(BuildContext& ctx)
        : index_(ctx.next_index("coupling")), who_("coupling " + std::to_string(index_)) {
        const Options& o = ctx.options();
        const CouplingOptions co = o.get<CouplingOptions>();
        const std::string& who = who_;
        if constexpr (K > 0) context_ = ctx.template context<T>();
        detail::check_conditioner_size(who, o.hidden, o.hidden_layers);
        if constexpr (affine) {
            if (co.net != CouplingNet::separate && co.net != CouplingNet::shared)
                throw invalid_argument(who + ": unknown CouplingOptions::net value " + std::to_string(int(co.net)));
            shared_ = co.net == CouplingNet::shared;
            scale_ = detail::checked_scale(who, co.scale);
        }
        const std::vector<int> m = detail::coupling_mask(co, index_, D);
        for (int i = 0; i < D; ++i) initial_mask_[std::size_t(i)] = T(m[std::size_t(i)]);
        zero_init_ = co.zero_init_output;
        hidden_ = o.hidden;
        hidden_layers_ = o.hidden_layers;
        net_a_ = Mlp<T, B>(D, o.hidden, o.hidden_layers, shared_ ? 2 * D : D, K);
        if (two_nets()) net_b_ = Mlp<T, B>(D, o.hidden, o.hidden_layers, D, K);
    }

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        net_a_.declare(ps, join_name(prefix, shared_ ? "net" : "shift_net"));
        if (two_nets()) net_b_.declare(ps, join_name(prefix, "log_scale_net"));
        ps.add_buffer(join_name(prefix, "mask"), {std::size_t(D)}, &mask_);
        ps.add_setting(join_name(prefix, "kind"), std::string(setting_name(Kind)));
        ps.add_setting(join_name(prefix, "hidden"), std::to_string(hidden_));
        ps.add_setting(join_name(prefix, "hidden_layers"), std::to_string(hidden_layers_));
        if constexpr (affine) {
            ps.add_setting(join_name(prefix, "net"), std::string(setting_name(shared_ ? CouplingNet::shared : CouplingNet::separate)));
            ps.add_setting(join_name(prefix, "scale"), std::string(setting_name(scale_)));
        }
    }

    void reset_parameters(Rng& rng) {
        net_a_.reset_parameters(rng, zero_init_);
        if (two_nets()) net_b_.reset_parameters(rng, zero_init_);
        std::copy(initial_mask_.begin(), initial_mask_.end(), mask_.value);
    }

    std::size_t workspace_size(int n) const {
        return std::size_t(n) * D + out_size(n) + net_a_.stored_size(n) + net_b_.stored_size(n) + scratch_size(n);
    }
    /// Scalars of the workspace that are backward's scratch (the layout below; core/workspace.hpp).
    std::size_t scratch_size(int n) const {
        const std::size_t nd = std::size_t(n) * D;
        return out_size(n) + nd + (two_nets() ? nd : 0) + net_a_.scratch_size(n) + net_b_.scratch_size(n);
    }

    void forward(const T* x, T* z, double* ld, int n, T* ws) const { forward(x, z, ld, n, ws, scratch_at(ws, n)); }
    void forward(const T* x, T* z, double* ld, int n, T* ws, T* scratch) const {
        const Layout L = layout(n, ws, scratch);
        condition(x, L, n, [&](int i0, int i1) {
            const Rows r = rows(L, i0);
            if constexpr (affine)
                kernels::coupling_affine_forward(B{}, scale_, x + r.v, z + r.v, r.t, r.h, ldo(), mask_.value,
                                                 ld != nullptr ? ld + i0 : nullptr, i1 - i0, D);
            else
                kernels::coupling_additive_forward(B{}, x + r.v, z + r.v, r.t, ldo(), mask_.value, i1 - i0, D);
        });
    }

    void inverse(const T* z, T* x, double* ld, int n, T* ws) const { inverse(z, x, ld, n, ws, scratch_at(ws, n)); }
    void inverse(const T* z, T* x, double* ld, int n, T* ws, T* scratch) const {
        const Layout L = layout(n, ws, scratch);
        condition(z, L, n, [&](int i0, int i1) {  // z ⊙ m = x ⊙ m
            const Rows r = rows(L, i0);
            if constexpr (affine)
                kernels::coupling_affine_inverse(B{}, scale_, z + r.v, x + r.v, r.t, r.h, ldo(), mask_.value,
                                                 ld != nullptr ? ld + i0 : nullptr, i1 - i0, D);
            else
                kernels::coupling_additive_inverse(B{}, z + r.v, x + r.v, r.t, ldo(), mask_.value, i1 - i0, D);
        });
    }

    void backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws) {
        backward(x, z, dz, dld, dx, n, ws, scratch_at(ws, n));
    }
    void backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws, T* scratch) {
        const Layout L = layout(n, ws, scratch);
        // Direct path: dx = ∂z/∂x|_(t,h fixed)ᵀ·dz; and ∂L/∂t, ∂L/∂h at the transformed coordinates.
        auto direct = [&](int i0, int i1) {
            const Rows r = rows(L, i0);
            if constexpr (affine)
                kernels::coupling_affine_backward(B{}, scale_, x + r.v, z + r.v, r.t, r.h, ldo(), mask_.value,
                                                  dz + r.v, dld + i0, dx + r.v, r.dt, r.dh, i1 - i0, D);
            else
                kernels::coupling_additive_backward(B{}, dz + r.v, dx + r.v, r.dt, ldo(), mask_.value, i1 - i0, D);
        };
        // Path through the conditioner: its input is x ⊙ m (and the context, whose gradient is added to dc).
        const T* c = context(n);
        T* dc = K > 0 ? context_.grad() : nullptr;
        auto backward_a = [&] { net_a_.backward(L.xm, c, L.dout, L.dxm_a, dc, n, L.stored_a, L.scratch_a); };
        auto backward_b = [&] {
            net_b_.backward(L.xm, c, L.dout + std::size_t(n) * D, L.dxm_b, dc, n, L.stored_b, L.scratch_b);
        };
        auto add_condition = [&](int i0, int i1) {
            const std::size_t v = std::size_t(i0) * D;
            kernels::coupling_add_condition_grad(B{}, dx + v, L.dxm_a + v, two_nets() ? L.dxm_b + v : nullptr,
                                                 mask_.value, i1 - i0, D);
        };
        if (two_nets() && dc == nullptr) {  // (with a context both nets add into dc: one after the other)
            kernels::mlp_concurrently(B{}, 2.0 * net_a_.flops(n), n, direct, backward_a, backward_b, add_condition);
        } else {
            direct(0, n);
            backward_a();
            if (two_nets()) backward_b();
            add_condition(0, n);
        }
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
    //   [dout: like out][dxm a: n·D][dxm b: n·D if two nets][net a's MLP scratch][net b's]
    // (each net its own scratch: their backward passes may run at once, kernels::mlp_concurrently)
    struct Layout {
        T *xm, *out, *stored_a, *stored_b;
        T *t, *h;  // views into out
        T *dout, *dxm_a, *dxm_b, *scratch_a, *scratch_b;
        T *dt, *dh;  // views into dout
    };

    bool two_nets() const { return affine && !shared_; }
    std::size_t out_size(int n) const { return std::size_t(n) * D * (affine ? 2 : 1); }
    int ldo() const { return shared_ ? 2 * D : D; }

    T* scratch_at(T* ws, int n) const { return ws + detail::kept_size(*this, n); }
    // Kept part at ws, scratch (from dout on) at `scratch`.
    Layout layout(int n, T* ws, T* scratch) const {
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
        p = scratch;
        L.dout = take(out_size(n));
        L.dxm_a = take(nd);
        L.dxm_b = two_nets() ? take(nd) : nullptr;
        L.scratch_a = take(net_a_.scratch_size(n));
        L.scratch_b = p;
        // (t, h) rows: [t | h] of a shared net (stride 2D), or t then h as two (n, D) blocks.
        L.t = L.out, L.dt = L.dout;
        L.h = affine ? (shared_ ? L.out + D : L.out + nd) : nullptr;
        L.dh = affine ? (shared_ ? L.dout + D : L.dout + nd) : nullptr;
        return L;
    }

    /// xm = v ⊙ m and the conditioner outputs (t, h) for it (and for the context of a conditional coupling),
    /// then finish(i0, i1) on rows [i0, i1) of them: all rows, or, when two separate nets run on two
    /// threads (kernels::mlp_concurrently), half on each thread, as the masking before them.
    template <class Finish>
    void condition(const T* v, const Layout& L, int n, Finish&& finish) const {
        const T* c = context(n);
        auto mask_rows = [&](int i0, int i1) {
            const std::size_t r = std::size_t(i0) * D;
            kernels::coupling_mask_input(B{}, v + r, mask_.value, L.xm + r, i1 - i0, D);
        };
        auto forward_a = [&] { net_a_.forward(L.xm, c, L.out, n, L.stored_a); };
        if (!two_nets()) {
            mask_rows(0, n);
            forward_a();
            finish(0, n);
            return;
        }
        kernels::mlp_concurrently(B{}, net_a_.flops(n), n, mask_rows, forward_a,
                                  [&] { net_b_.forward(L.xm, c, L.out + std::size_t(n) * D, n, L.stored_b); }, finish);
    }

    /// Row i0's offsets: into (n, D) arrays (v), and the (t, h) and (dt, dh) rows of the layout.
    struct Rows {
        std::size_t v;
        T *t, *h, *dt, *dh;
    };
    Rows rows(const Layout& L, int i0) const {
        const std::size_t o = std::size_t(i0) * ldo();
        return {std::size_t(i0) * D, L.t + o, L.h != nullptr ? L.h + o : nullptr, L.dt + o,
                L.dh != nullptr ? L.dh + o : nullptr};
    }

    const T* context(int n) const {
        if constexpr (K > 0) return context_.values(n, who_.c_str());
        else return nullptr;
    }

    int index_ = 0;
    std::string who_;
    ContextRef<T> context_;
    int hidden_ = 0, hidden_layers_ = 0;
    bool shared_ = false;
    bool zero_init_ = true;
    CouplingScale scale_ = CouplingScale::tanh;
    std::array<T, std::size_t(D)> initial_mask_{};
    Mlp<T, B> net_a_, net_b_;
    TensorRef<T> mask_;
};

}  // namespace bijou
