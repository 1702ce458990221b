// bijou/bijectors/autoregressive.hpp — masked and inverse autoregressive flows on vectors: MAF
// (Papamakarios et al. 2017) and IAF (Kingma et al. 2016), conditioned by MADE (nn/made.hpp).
//
// Recipes (state_dict key "autoregressive"), Tr = AffineTransform or RationalQuadraticTransform:
//   MaskedAutoregressive<Tr>                      vectors Shape<D>, D ≥ 1
//   InverseAutoregressive<Tr>                     vectors Shape<D>, D ≥ 1
//   ConditionalMaskedAutoregressive<Tr, Ctx>,     the same conditioned on a context Ctx = Shape<K>: MADE
//   ConditionalInverseAutoregressive<Tr, Ctx>     sees c unmasked (core/context.hpp)
// An element transform τ_θ acts on each feature with parameters θ_j from MADE:
//   AffineTransform             τ(u) = u·exp(tanh h) + t, or (u + t)·σ(h + 2) with CouplingScale::sigmoid
//                               (kernels/coupling_formula.hpp; CouplingOptions::scale, model_default = tanh)
//   RationalQuadraticTransform  the spline of kernels/spline_formula.hpp, SplineOptions
// MAF (density in one pass; forward maps data → latent):
//   z_j = τ(x_j; θ_j(x_<j))       log|det ∂z/∂x| = Σ_j log τ'(x_j)      forward: ONE MADE pass
//   inverse (sampling): x_j = τ⁻¹(z_j; θ_j(x_<j)), D passes, pass p fixing the feature of degree p + 1.
// IAF (sampling in one pass): the inverse of the same construction on the latent side,
//   x_j = τ(z_j; θ_j(z_<j))       log|det ∂z/∂x| = −Σ_j log τ'(z_j)     inverse: ONE MADE pass
//   forward (density): z_j = τ⁻¹(x_j; θ_j(z_<j)), D passes.
// "<_j" is in the MADE order (AutoregressiveOptions::order): the Jacobian ∂z/∂x is triangular in it.
// log-dets are added (+=) per sample in double; inverse subtracts. With zero_init_output (CouplingOptions,
// default) MADE's output layer starts at zero: both transforms, and so the bijector, start as the identity.
// AutoregressiveOptions: order — alternating (default: natural for the even-numbered autoregressive
// bijectors of a model, reversed for the odd), natural, reversed, or random (drawn from
// Options::seed and the bijector's index); hidden_degrees — MadeDegrees::cyclic (default) or sampled.
// The conditioner is a MADE of Options::hidden × Options::hidden_layers.
// Settings recorded for checkpoints: kind ("masked" or "inverse"), transform, hidden, hidden_layers,
// order, hidden_degrees, and the transform's (scale; or bins, bound, min_bin_width, min_bin_height,
// min_derivative). State_dict: "<prefix>.made.<2l>.{weight,bias,mask}" and "<prefix>.made.degrees".
// Backward: MAF's is one MADE backward. IAF's solves the triangular system Jᵀv = ∂L/∂z by D steps of
// an input-only MADE vector-Jacobian product (J = ∂x/∂z), then one MADE backward for the parameters,
// so an IAF's density-direction training costs about D times a MAF's. Workspace: MADE's stored
// activations and masked weights, θ, and backward's scratch; inverse (MAF) and forward (IAF) leave the
// stored part as the one-pass direction does, so backward may follow either. Cost per MADE pass:
// 2·n·(D·hidden + (hidden_layers − 1)·hidden² + hidden·D·P) flops, P = 2 (affine) or 3K − 1 (spline),
// plus O(n·D·P) elementwise.
#pragma once

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "bijou/bijectors/coupling_common.hpp"
#include "bijou/bijectors/spline_coupling.hpp"
#include "bijou/kernels/cpu/autoregressive.hpp"
#include "bijou/kernels/cpu/totals.hpp"
#include "bijou/kernels/cuda/autoregressive.hpp"
#include "bijou/kernels/cuda/totals.hpp"
#include "bijou/kernels/reference/autoregressive.hpp"
#include "bijou/kernels/reference/totals.hpp"
#include "bijou/nn/made.hpp"

namespace bijou {

/// The order MADE gives the features.
enum class MadeOrder {
    alternating,  ///< natural for the even-numbered autoregressive bijectors of a model, reversed for the odd
    natural,      ///< x_1, …, x_D
    reversed,     ///< x_D, …, x_1
    random,       ///< a permutation drawn from Options::seed and the bijector's index
};

constexpr std::string_view setting_name(MadeOrder v) {
    return v == MadeOrder::alternating ? "alternating"
           : v == MadeOrder::natural   ? "natural"
           : v == MadeOrder::reversed  ? "reversed"
                                       : "random";
}

/// The options of every autoregressive recipe (see the contract above).
struct AutoregressiveOptions {
    MadeOrder order = MadeOrder::alternating;
    MadeDegrees hidden_degrees = MadeDegrees::cyclic;
};

/// Element transform of an autoregressive flow: affine (CouplingOptions::scale).
struct AffineTransform {};
/// Element transform of an autoregressive flow: rational-quadratic spline (SplineOptions).
struct RationalQuadraticTransform {};

/// Which side of the flow MADE reads.
enum class AutoregressiveKind {
    masked,   ///< MAF: MADE reads x; density in one pass
    inverse,  ///< IAF: MADE reads z; sampling in one pass
};

namespace detail {

/// The element transform's kernels, P parameters per feature in MADE's layout. All maps read and
/// write (n, D) rows; θ rows have stride D·P.
template <class Tr, class T>
struct ElementTransform;

template <class T>
struct ElementTransform<AffineTransform, T> {
    static constexpr MadeLayout layout = MadeLayout::parameter_major;  // θ row = [t (D) | h (D)]
    CouplingScale scale = CouplingScale::tanh;
    int D = 0;

    ElementTransform(const Options& o, const std::string& who, int d)
        : scale(checked_scale(who, o.get<CouplingOptions>().scale)), D(d) {}
    int P() const { return 2; }
    void settings(ParamSet<T>& ps, const std::string& prefix) const {
        ps.add_setting(join_name(prefix, "transform"), "affine");
        ps.add_setting(join_name(prefix, "scale"), std::string(setting_name(scale)));
    }
    template <class B>
    void forward(B, const T* in, T* out, const T* th, double* ld, int n) const {
        kernels::coupling_affine_forward(B{}, scale, in, out, th, th + D, 2 * D, static_cast<const T*>(nullptr), ld, n, D);
    }
    template <class B>
    void inverse(B, const T* in, T* out, const T* th, double* ld, int n) const {
        kernels::coupling_affine_inverse(B{}, scale, in, out, th, th + D, 2 * D, static_cast<const T*>(nullptr), ld, n, D);
    }
    /// For the map in → out: dx (direct path) and dθ.
    template <class B>
    void backward(B, const T* in, const T* out, const T* th, const T* dout, const T* dld, T* din, T* dth, int n) const {
        kernels::coupling_affine_backward(B{}, scale, in, out, th, th + D, 2 * D, static_cast<const T*>(nullptr), dout,
                                          dld, din, dth, dth + D, n, D);
    }
};

template <class T>
struct ElementTransform<RationalQuadraticTransform, T> {
    static constexpr MadeLayout layout = MadeLayout::feature_major;  // θ row = D blocks of 3K − 1
    SplineOptions options;
    kernels::spline_formula::Spline<T> spline{};
    int D = 0;

    ElementTransform(const Options& o, const std::string& who, int d)
        : options(o.get<SplineOptions>()), spline(checked_spline<T>(who, options)), D(d) {}
    int P() const { return kernels::spline_formula::params_per_element(options.bins); }
    void settings(ParamSet<T>& ps, const std::string& prefix) const {
        ps.add_setting(join_name(prefix, "transform"), "rational_quadratic");
        add_spline_settings(ps, prefix, options);
    }
    template <class B>
    void forward(B, const T* in, T* out, const T* th, double* ld, int n) const {
        kernels::spline_forward(B{}, spline, in, out, th, D * P(), static_cast<const T*>(nullptr), ld, n, D);
    }
    template <class B>
    void inverse(B, const T* in, T* out, const T* th, double* ld, int n) const {
        kernels::spline_inverse(B{}, spline, in, out, th, D * P(), static_cast<const T*>(nullptr), ld, n, D);
    }
    template <class B>
    void backward(B, const T* in, const T* /*out*/, const T* th, const T* dout, const T* dld, T* din, T* dth,
                  int n) const {
        kernels::spline_backward(B{}, spline, in, th, D * P(), static_cast<const T*>(nullptr), dout, dld, din, dth, n, D);
    }
};

/// Feature degrees (1…D) for an order; `k` is the bijector's index, `seed` the model's.
inline std::vector<int> made_degrees(MadeOrder order, int D, int k, std::uint64_t seed, const std::string& who) {
    std::vector<int> pos(static_cast<std::size_t>(D));  // pos[r] = the feature at position r
    std::iota(pos.begin(), pos.end(), 0);
    switch (order) {
        case MadeOrder::alternating:
            if (k % 2 == 1) std::reverse(pos.begin(), pos.end());
            break;
        case MadeOrder::natural:
            break;
        case MadeOrder::reversed:
            std::reverse(pos.begin(), pos.end());
            break;
        case MadeOrder::random: {
            Rng rng(indexed_seed(seed ^ 0x4D414445ull, k));  // "MADE": a stream apart from Permute's
            for (int i = D - 1; i > 0; --i) std::swap(pos[std::size_t(i)], pos[rng.below(std::uint64_t(i) + 1)]);
            break;
        }
        default:
            throw invalid_argument(who + ": unknown AutoregressiveOptions::order value " + std::to_string(int(order)));
    }
    std::vector<int> degrees(static_cast<std::size_t>(D));
    for (int r = 0; r < D; ++r) degrees[std::size_t(pos[std::size_t(r)])] = r + 1;
    return degrees;
}

}  // namespace detail

/// A bound autoregressive bijector on vectors (see the contract above).
template <AutoregressiveKind Kind, class Tr, class S, class T, class B, class Ctx = void>
    requires VectorShape<S>
class AutoregressiveBijector : public conditional_on<Ctx> {
    static constexpr int K = conditional_on<Ctx>::context_size;
    static constexpr bool iaf = Kind == AutoregressiveKind::inverse;

public:
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int D = S::size;
    static_assert(D >= 1, "bijou: an autoregressive flow needs at least 1 feature");

    explicit AutoregressiveBijector(BuildContext& ctx)
        : index_(ctx.next_index("autoregressive")),
          who_(std::string(iaf ? "inverse" : "masked") + " autoregressive " + std::to_string(index_)),
          tr_(ctx.options(), who_, D) {
        const Options& o = ctx.options();
        const AutoregressiveOptions ao = o.get<AutoregressiveOptions>();
        if (ao.hidden_degrees != MadeDegrees::cyclic && ao.hidden_degrees != MadeDegrees::sampled)
            throw invalid_argument(who_ + ": unknown AutoregressiveOptions::hidden_degrees value " +
                                   std::to_string(int(ao.hidden_degrees)));
        order_ = ao.order;
        hidden_degrees_ = ao.hidden_degrees;
        detail::check_conditioner_size(who_, o.hidden, o.hidden_layers);
        if constexpr (K > 0) context_ = ctx.template context<T>();
        zero_init_ = o.get<CouplingOptions>().zero_init_output;
        hidden_ = o.hidden;
        hidden_layers_ = o.hidden_layers;
        Rng rng(detail::indexed_seed(o.seed ^ 0x444547ull, index_));  // sampled hidden degrees
        made_ = Made<T, B>(D, o.hidden, o.hidden_layers, tr_.P(), tr_.layout,
                           detail::made_degrees(order_, D, index_, o.seed, who_), K, hidden_degrees_, rng);
    }

    AutoregressiveBijector(const AutoregressiveBijector&) = delete;
    AutoregressiveBijector& operator=(const AutoregressiveBijector&) = delete;
    AutoregressiveBijector(AutoregressiveBijector&&) noexcept = default;
    AutoregressiveBijector& operator=(AutoregressiveBijector&&) noexcept = default;

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        made_.declare(ps, join_name(prefix, "made"));
        ps.add_setting(join_name(prefix, "kind"), iaf ? "inverse" : "masked");
        tr_.settings(ps, prefix);
        ps.add_setting(join_name(prefix, "hidden"), std::to_string(hidden_));
        ps.add_setting(join_name(prefix, "hidden_layers"), std::to_string(hidden_layers_));
        ps.add_setting(join_name(prefix, "order"), std::string(setting_name(order_)));
        ps.add_setting(join_name(prefix, "hidden_degrees"), std::string(setting_name(hidden_degrees_)));
    }

    void reset_parameters(Rng& rng) { made_.reset_parameters(rng, zero_init_); }

    std::size_t workspace_size(int n) const {
        const std::size_t nd = std::size_t(n) * D, np = nd * tr_.P();
        std::size_t s = 2 * np + made_.stored_size(n) + made_.scratch_size(n) + nd;
        if constexpr (iaf) s += 4 * nd + std::size_t(n);  // a, s, r, ones/zeros; zero dld
        return s;
    }

    void forward(const T* x, T* z, double* ld, int n, T* ws) const {
        const Layout L = layout(n, ws);
        if constexpr (!iaf) {
            made_.forward(x, context(n), L.theta, n, L.stored);
            tr_.forward(B{}, x, z, L.theta, ld, n);
        } else {
            sequential(x, z, ld, n, L);  // z_j = τ⁻¹(x_j; θ_j(z_<j))
        }
    }

    void inverse(const T* z, T* x, double* ld, int n, T* ws) const {
        const Layout L = layout(n, ws);
        if constexpr (!iaf) {
            sequential(z, x, ld, n, L);  // x_j = τ⁻¹(z_j; θ_j(x_<j))
        } else {
            made_.forward(z, context(n), L.theta, n, L.stored);
            tr_.forward(B{}, z, x, L.theta, ld, n);  // + Σ log τ'(z) = − the forward's log-det
        }
    }

    void backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws) {
        const Layout L = layout(n, ws);
        const T* c = context(n);
        T* dc = K > 0 ? context_.grad() : nullptr;
        if constexpr (!iaf) {
            tr_.backward(B{}, x, z, L.theta, dz, dld, dx, L.dtheta, n);
            made_.backward(x, c, L.dtheta, L.dmade, dc, n, L.stored, L.scratch);
            kernels::coupling_add_condition_grad(B{}, dx, L.dmade, static_cast<const T*>(nullptr),
                                                 static_cast<const T*>(nullptr), n, D);
        } else {
            iaf_backward(x, z, dz, dld, dx, c, dc, n, L);
        }
    }

    int index() const { return index_; }
    /// Feature j's degree in MADE's order (1…D): z_j depends on the x_i of lower degree.
    const std::vector<int>& degrees() const { return made_.degrees(); }
    const Made<T, B>& made() const { return made_; }

private:
    // [θ: n·D·P][MADE stored][dθ: n·D·P][dmade: n·D][MADE scratch] and, for IAF,
    // [a][s][r][u: n·D each][zeros: n]
    struct Layout {
        T *theta, *stored, *dtheta, *dmade, *scratch;
        T *a, *s, *r, *u, *zeros;
    };

    Layout layout(int n, T* ws) const {
        const std::size_t nd = std::size_t(n) * D, np = nd * tr_.P();
        Layout L{};
        T* p = ws;
        auto take = [&p](std::size_t size) {
            T* q = p;
            p += size;
            return q;
        };
        L.theta = take(np);
        L.stored = take(made_.stored_size(n));
        L.dtheta = take(np);
        L.dmade = take(nd);
        L.scratch = take(made_.scratch_size(n));
        if constexpr (iaf) {
            L.a = take(nd), L.s = take(nd), L.r = take(nd), L.u = take(nd);
            L.zeros = take(std::size_t(n));
        }
        return L;
    }

    /// The D-pass direction: out_j = τ⁻¹(in_j; θ_j(out_<j)). Pass p fixes the feature of degree p + 1;
    /// the first pass reads `in` (its θ for degree 1 depends on nothing). The last pass's MADE input
    /// differs from the final `out` only in the feature of degree D, which no hidden unit reads, so
    /// the stored activations are the one-pass direction's.
    void sequential(const T* in, T* out, double* ld, int n, const Layout& L) const {
        const T* c = context(n);
        for (int p = 0; p < D; ++p) {
            made_.forward(p == 0 ? in : out, c, L.theta, n, L.stored);
            tr_.inverse(B{}, in, out, L.theta, p + 1 == D ? ld : nullptr, n);
        }
    }

    /// IAF: x = G(z) = τ(z; θ(z)) one pass, z = G⁻¹(x), forward log-det −F(z), F = Σ log τ'(z).
    /// ∂L/∂x = v solves Jᵀv = dz − dld·∇F (J = ∂G/∂z), i.e. s⊙v + a + MADEᵀ(θ-cotangent(v)) = dz with
    /// s = ∂τ/∂z and a = dld·∂(log τ')/∂z (direct paths): D steps of v = (dz − a − r)/s, r the
    /// MADE vector-Jacobian product of the θ-cotangent of v, are exact (r_j depends only on v of
    /// higher degree). The parameters' (and the context's) gradient is G's backward with cotangents
    /// (−v, −dld), i.e. −(the last θ-cotangent) through MADE.
    void iaf_backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, const T* c, T* dc, int n,
                      const Layout& L) {
        const std::size_t nd = std::size_t(n) * D;
        kernels::autoregressive_fill(B{}, L.u, T(0), nd);
        kernels::autoregressive_fill(B{}, L.zeros, T(0), std::size_t(n));
        tr_.backward(B{}, z, x, L.theta, L.u, dld, L.a, L.dtheta, n);  // a = dld·∂(log τ')/∂z
        kernels::autoregressive_fill(B{}, L.u, T(1), nd);
        tr_.backward(B{}, z, x, L.theta, L.u, L.zeros, L.s, L.dtheta, n);  // s = ∂τ/∂z
        kernels::autoregressive_fill(B{}, L.r, T(0), nd);
        for (int p = 0; p < D; ++p) {  // v = ∂L/∂x, solved in place in dx
            kernels::autoregressive_solve(B{}, dz, L.a, L.r, L.s, dx, nd);
            tr_.backward(B{}, z, x, L.theta, dx, dld, L.u, L.dtheta, n);
            if (p + 1 < D) made_.backward(z, c, L.dtheta, L.r, nullptr, n, L.stored, L.scratch, false);
        }
        kernels::scale(B{}, L.dtheta, nd * tr_.P(), -1.0);
        made_.backward(z, c, L.dtheta, nullptr, dc, n, L.stored, L.scratch);
    }

    const T* context(int n) const {
        if constexpr (K > 0) return context_.values(n, who_.c_str());
        else return nullptr;
    }

    int index_ = 0;
    std::string who_;
    detail::ElementTransform<Tr, T> tr_;
    ContextRef<T> context_;
    MadeOrder order_ = MadeOrder::alternating;
    MadeDegrees hidden_degrees_ = MadeDegrees::cyclic;
    int hidden_ = 0, hidden_layers_ = 0;
    bool zero_init_ = true;
    Made<T, B> made_;
};

/// Recipe: masked autoregressive flow (MAF) layer with element transform Tr.
template <class Tr = AffineTransform>
struct MaskedAutoregressive {
    using options = AutoregressiveOptions;
    static constexpr std::string_view name = "autoregressive";
    template <class S>
    static constexpr bool accepts = VectorShape<S>;
    template <class S, class T, class B>
    using bind = AutoregressiveBijector<AutoregressiveKind::masked, Tr, S, T, B>;
};

/// Recipe: inverse autoregressive flow (IAF) layer with element transform Tr.
template <class Tr = AffineTransform>
struct InverseAutoregressive {
    using options = AutoregressiveOptions;
    static constexpr std::string_view name = "autoregressive";
    template <class S>
    static constexpr bool accepts = VectorShape<S>;
    template <class S, class T, class B>
    using bind = AutoregressiveBijector<AutoregressiveKind::inverse, Tr, S, T, B>;
};

/// Recipe: MaskedAutoregressive<Tr> conditioned on a context Ctx = Shape<K>.
template <class Tr, class Ctx>
struct ConditionalMaskedAutoregressive {
    using options = AutoregressiveOptions;
    using context_shape = Ctx;
    static constexpr std::string_view name = "autoregressive";
    template <class S>
    static constexpr bool accepts = VectorShape<S>;
    template <class S, class T, class B>
    using bind = AutoregressiveBijector<AutoregressiveKind::masked, Tr, S, T, B, Ctx>;
};

/// Recipe: InverseAutoregressive<Tr> conditioned on a context Ctx = Shape<K>.
template <class Tr, class Ctx>
struct ConditionalInverseAutoregressive {
    using options = AutoregressiveOptions;
    using context_shape = Ctx;
    static constexpr std::string_view name = "autoregressive";
    template <class S>
    static constexpr bool accepts = VectorShape<S>;
    template <class S, class T, class B>
    using bind = AutoregressiveBijector<AutoregressiveKind::inverse, Tr, S, T, B, Ctx>;
};

}  // namespace bijou
