// bijou/bijectors/spline_coupling.hpp — rational-quadratic spline couplings (Durkan et al. 2019, "Neural
// Spline Flows", §3): the coupling layer of coupling_vector.hpp with a monotonic spline in place of
// the affine map.
//
// Recipes (state_dict key "coupling", sharing the coupling count with the affine and additive ones):
//   RationalQuadraticCoupling                    vectors Shape<D>, D ≥ 2; images Shape<C, H, W>, C even
//   ConditionalRationalQuadraticCoupling<Ctx>    the same conditioned on a context Ctx = Shape<K>
//                                                (core/context.hpp, as the affine couplings take it)
// Vectors: a binary mask m from CouplingOptions (mask, masks; 1 = kept, 0 = transformed;
// coupling_common.hpp) splits the features; the conditioner ("net", an Mlp of Options::hidden ×
// Options::hidden_layers, nn/mlp.hpp) maps x ⊙ m (and c) to 3K − 1 raw spline parameters per feature.
// Images: Glow's channel split; the first C/2 channels are kept and condition the last C/2 through a
// ConvNet "net" of width Options::hidden (nn/convnet.hpp) with (C/2)·(3K − 1) output channels, i.e.
// 3K − 1 parameters per transformed element.
// Each transformed element goes through its own spline (kernels/spline_formula.hpp): K bins on
// [−B, B], the identity outside (linear tails), derivative 1 at ±B, widths and heights at least
// min_bin_width·2B and min_bin_height·2B, interior derivatives at least min_derivative:
//   z = m⊙x + (1−m)⊙RQS_θ(x), θ = net(x ⊙ m)      log|det ∂z/∂x| = Σ_j (1−m_j)·log RQS'_θj(x_j)
// inverse: z ⊙ m = x ⊙ m gives the same θ, and each transformed element inverts in closed form (the
// cancellation-free root of a quadratic), with the negative log-det. forward maps data → latent;
// log-dets are added (+=) per sample in double. With zero_init_output (CouplingOptions, default) the
// net's output layer starts at zero, which makes every spline the exact identity.
// SplineOptions are read at construction. Settings recorded for checkpoints: kind
// ("rational_quadratic"), hidden, hidden_layers (vectors) or mask_policy (images), bins, bound,
// min_bin_width, min_bin_height, min_derivative. Invalid values (bins < 2, a bound that is not positive
// and finite, bins·min_bin_width ≥ 1, min_derivative outside (0, 1), …) throw bijou::invalid_argument
// naming the coupling and the option.
// State_dict: vectors "<prefix>.net.0.weight" … "<prefix>.net.<2·hidden_layers>.weight" (the last:
// (D·(3K − 1), hidden), feature j's parameters in rows j·(3K − 1) …; kept features' rows are unused)
// and the buffer "<prefix>.mask" (D); images "<prefix>.net.{0,2,4}.{weight,bias}" as the affine image
// coupling's (coupling_image.hpp), output channel c·(3K − 1) + q holding parameter q of channel C/2 + c.
// Workspace: forward stores the conditioner's input, the spline parameters and the net's activations,
// so backward recomputes nothing; inverse leaves it exactly as forward does (backward may follow
// inverse: memory-saving training). Cost per pass: the conditioner (vectors: 2·n·(D·hidden +
// (hidden_layers − 1)·hidden² + hidden·D·(3K − 1)) flops; images: the ConvNet with (C/2)·(3K − 1)
// output channels), plus O(K) per transformed element (each spline evaluation walks its K bins).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "bijou/bijectors/coupling_common.hpp"
#include "bijou/kernels/cpu/coupling.hpp"
#include "bijou/kernels/cpu/coupling_image.hpp"
#include "bijou/kernels/cpu/spline.hpp"
#include "bijou/kernels/cuda/coupling.hpp"
#include "bijou/kernels/cuda/spline.hpp"
#include "bijou/kernels/reference/coupling.hpp"
#include "bijou/kernels/reference/coupling_image.hpp"
#include "bijou/kernels/reference/spline.hpp"
#include "bijou/nn/convnet.hpp"
#include "bijou/nn/mlp.hpp"

namespace bijou {

/// The options of every rational-quadratic spline recipe (see the contract above; nflows' defaults
/// but for the bound).
struct SplineOptions {
    int bins = 8;                   ///< K ≥ 2
    double bound = 3.0;             ///< B: the splines act on [−B, B], the identity outside
    double min_bin_width = 1e-3;    ///< each bin's width is at least this fraction of 2B
    double min_bin_height = 1e-3;   ///< each bin's height is at least this fraction of 2B
    double min_derivative = 1e-3;   ///< each interior knot's derivative is at least this, in (0, 1)
};

namespace detail {

/// The spline SplineOptions ask for; throws invalid_argument naming `who` and the option otherwise.
template <class T>
kernels::spline_formula::Spline<T> checked_spline(const std::string& who, const SplineOptions& o) {
    auto fail = [&](const std::string& what) { throw invalid_argument(who + ": SplineOptions::" + what); };
    if (o.bins < 2) fail("bins must be at least 2 (got " + std::to_string(o.bins) + ")");
    if (!(o.bound > 0.0) || !std::isfinite(o.bound)) fail("bound must be positive and finite (got " + number_setting(o.bound) + ")");
    auto fraction = [&](double v, const char* name) {
        if (!(v >= 0.0) || !(v * o.bins < 1.0))
            fail(std::string(name) + " must be in [0, 1/bins) (got " + number_setting(v) + " with bins = " +
                 std::to_string(o.bins) + ")");
    };
    fraction(o.min_bin_width, "min_bin_width");
    fraction(o.min_bin_height, "min_bin_height");
    if (!(o.min_derivative > 0.0 && o.min_derivative < 1.0))
        fail("min_derivative must be in (0, 1) (got " + number_setting(o.min_derivative) + ")");
    return kernels::spline_formula::make_spline<T>(o.bins, o.bound, o.min_bin_width, o.min_bin_height, o.min_derivative);
}

/// Records the spline's settings under `prefix` (checkpoints keep and check them).
template <class T>
void add_spline_settings(ParamSet<T>& ps, const std::string& prefix, const SplineOptions& o) {
    ps.add_setting(join_name(prefix, "bins"), std::to_string(o.bins));
    ps.add_setting(join_name(prefix, "bound"), number_setting(o.bound));
    ps.add_setting(join_name(prefix, "min_bin_width"), number_setting(o.min_bin_width));
    ps.add_setting(join_name(prefix, "min_bin_height"), number_setting(o.min_bin_height));
    ps.add_setting(join_name(prefix, "min_derivative"), number_setting(o.min_derivative));
}

}  // namespace detail

/// A bound rational-quadratic spline coupling (Ctx: void, or the context shape); one specialization
/// per event rank.
template <class S, class T, class B, class Ctx = void>
class SplineCouplingBijector;

/// On vectors Shape<D>.
template <class S, class T, class B, class Ctx>
    requires VectorShape<S>
class SplineCouplingBijector<S, T, B, Ctx> : public conditional_on<Ctx> {
    static constexpr int K = conditional_on<Ctx>::context_size;

public:
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int D = S::size;
    static_assert(D >= 2, "bijou: a coupling needs at least 2 features (Shape<D> with D >= 2)");

    explicit SplineCouplingBijector(BuildContext& ctx)
        : index_(ctx.next_index("coupling")), who_("coupling " + std::to_string(index_) + " (rational-quadratic)") {
        const Options& o = ctx.options();
        const CouplingOptions co = o.get<CouplingOptions>();
        options_ = o.get<SplineOptions>();
        spline_ = detail::checked_spline<T>(who_, options_);
        P_ = kernels::spline_formula::params_per_element(options_.bins);
        if constexpr (K > 0) context_ = ctx.template context<T>();
        detail::check_conditioner_size(who_, o.hidden, o.hidden_layers);
        const std::vector<int> m = detail::coupling_mask(co, index_, D);
        for (int i = 0; i < D; ++i) initial_mask_[std::size_t(i)] = T(m[std::size_t(i)]);
        zero_init_ = co.zero_init_output;
        hidden_ = o.hidden;
        hidden_layers_ = o.hidden_layers;
        net_ = Mlp<T, B>(D, o.hidden, o.hidden_layers, D * P_, K);
    }

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        net_.declare(ps, join_name(prefix, "net"));
        ps.add_buffer(join_name(prefix, "mask"), {std::size_t(D)}, &mask_);
        ps.add_setting(join_name(prefix, "kind"), "rational_quadratic");
        ps.add_setting(join_name(prefix, "hidden"), std::to_string(hidden_));
        ps.add_setting(join_name(prefix, "hidden_layers"), std::to_string(hidden_layers_));
        detail::add_spline_settings(ps, prefix, options_);
    }

    void reset_parameters(Rng& rng) {
        net_.reset_parameters(rng, zero_init_);
        std::copy(initial_mask_.begin(), initial_mask_.end(), mask_.value);
    }

    std::size_t workspace_size(int n) const {
        const std::size_t nd = std::size_t(n) * D;
        return 2 * (nd + nd * P_) + net_.stored_size(n) + net_.scratch_size(n);
    }

    void forward(const T* x, T* z, double* ld, int n, T* ws) const {
        const Layout L = layout(n, ws);
        condition(x, L, n);
        kernels::spline_forward(B{}, spline_, x, z, L.theta, D * P_, mask_.value, ld, n, D);
    }

    void inverse(const T* z, T* x, double* ld, int n, T* ws) const {
        const Layout L = layout(n, ws);
        condition(z, L, n);  // z ⊙ m = x ⊙ m
        kernels::spline_inverse(B{}, spline_, z, x, L.theta, D * P_, mask_.value, ld, n, D);
    }

    void backward(const T* x, const T* /*z*/, const T* dz, const T* dld, T* dx, int n, T* ws) {
        const Layout L = layout(n, ws);
        kernels::spline_backward(B{}, spline_, x, L.theta, D * P_, mask_.value, dz, dld, dx, L.dtheta, n, D);
        const T* c = context(n);
        net_.backward(L.xm, c, L.dtheta, L.dxm, K > 0 ? context_.grad() : nullptr, n, L.stored, L.scratch);
        kernels::coupling_add_condition_grad(B{}, dx, L.dxm, static_cast<const T*>(nullptr), mask_.value, n, D);
    }

    /// This coupling's index among the model's couplings (decides its mask).
    int index() const { return index_; }
    /// The mask buffer (D): 1 = kept, 0 = transformed. Valid after ParamSet::allocate.
    const TensorRef<T>& mask() const { return mask_; }
    /// The conditioner: D → … → D·(3K − 1).
    const Mlp<T, B>& net() const { return net_; }
    const SplineOptions& spline_options() const { return options_; }

private:
    // [xm: n·D][θ: n·D·P][net activations] [dθ: n·D·P][dxm: n·D][MLP scratch]
    struct Layout {
        T *xm, *theta, *stored, *dtheta, *dxm, *scratch;
    };

    Layout layout(int n, T* ws) const {
        const std::size_t nd = std::size_t(n) * D;
        Layout L{};
        L.xm = ws;
        L.theta = L.xm + nd;
        L.stored = L.theta + nd * P_;
        L.dtheta = L.stored + net_.stored_size(n);
        L.dxm = L.dtheta + nd * P_;
        L.scratch = L.dxm + nd;
        return L;
    }

    void condition(const T* v, const Layout& L, int n) const {
        kernels::coupling_mask_input(B{}, v, mask_.value, L.xm, n, D);
        net_.forward(L.xm, context(n), L.theta, n, L.stored);
    }

    const T* context(int n) const {
        if constexpr (K > 0) return context_.values(n, who_.c_str());
        else return nullptr;
    }

    int index_ = 0;
    std::string who_;
    ContextRef<T> context_;
    SplineOptions options_;
    kernels::spline_formula::Spline<T> spline_{};
    int P_ = 0;
    int hidden_ = 0, hidden_layers_ = 0;
    bool zero_init_ = true;
    std::array<T, std::size_t(D)> initial_mask_{};
    Mlp<T, B> net_;
    TensorRef<T> mask_;
};

/// On images Shape<C, H, W>, C even: Glow's channel split (ChannelMask).
template <class S, class T, class B, class Ctx>
    requires ImageShape<S>
class SplineCouplingBijector<S, T, B, Ctx> : public conditional_on<Ctx> {
    static constexpr int K = conditional_on<Ctx>::context_size;

public:
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    using mask_policy = ChannelMask;
    static constexpr int C = S::dims[0], H = S::dims[1], W = S::dims[2], HW = H * W;
    static_assert(C % 2 == 0, "bijou: a channel-wise image coupling needs an even channel count (Shape<C, H, W> with C even)");
    static constexpr int cond_in = C / 2, c0 = C / 2, ct = C / 2;

    explicit SplineCouplingBijector(BuildContext& ctx)
        : index_(ctx.next_index("coupling")), who_("coupling " + std::to_string(index_) + " (rational-quadratic)") {
        const Options& o = ctx.options();
        options_ = o.get<SplineOptions>();
        spline_ = detail::checked_spline<T>(who_, options_);
        P_ = kernels::spline_formula::params_per_element(options_.bins);
        if constexpr (K > 0) context_ = ctx.template context<T>();
        detail::check_conditioner_size(who_, o.hidden, 1);
        zero_init_ = o.get<CouplingOptions>().zero_init_output;
        hidden_ = o.hidden;
        net_ = ConvNet<T, B>(cond_in, o.hidden, ct * P_, H, W, K);
    }

    SplineCouplingBijector(const SplineCouplingBijector&) = delete;
    SplineCouplingBijector& operator=(const SplineCouplingBijector&) = delete;
    SplineCouplingBijector(SplineCouplingBijector&&) noexcept = default;
    SplineCouplingBijector& operator=(SplineCouplingBijector&&) noexcept = default;

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        net_.declare(ps, join_name(prefix, "net"));
        ps.add_setting(join_name(prefix, "kind"), "rational_quadratic");
        ps.add_setting(join_name(prefix, "mask_policy"), "channel");
        ps.add_setting(join_name(prefix, "hidden"), std::to_string(hidden_));
        detail::add_spline_settings(ps, prefix, options_);
    }

    void reset_parameters(Rng& rng) { net_.reset_parameters(rng, zero_init_); }

    std::size_t workspace_size(int n) const {
        return 2 * plane(n) * (cond_in + std::size_t(ct) * P_) + net_.stored_size(n) + net_.scratch_size(n);
    }

    void forward(const T* x, T* z, double* ld, int n, T* ws) const {
        const Layout L = layout(n, ws);
        condition(x, L, n);
        kernels::spline_image_forward(B{}, spline_, x, z, L.theta, ld, n, C, HW, c0);
    }

    void inverse(const T* z, T* x, double* ld, int n, T* ws) const {
        const Layout L = layout(n, ws);
        condition(z, L, n);  // the kept channels are equal
        kernels::spline_image_inverse(B{}, spline_, z, x, L.theta, ld, n, C, HW, c0);
    }

    void backward(const T* x, const T* /*z*/, const T* dz, const T* dld, T* dx, int n, T* ws) {
        const Layout L = layout(n, ws);
        kernels::spline_image_backward(B{}, spline_, x, L.theta, dz, dld, dx, L.dtheta, n, C, HW, c0);
        net_.backward(L.xm, context(n), L.dtheta, L.dxm, K > 0 ? context_.grad() : nullptr, n, L.stored, L.scratch);
        kernels::coupling_image_add_input_grad(B{}, dx, L.dxm, static_cast<const T*>(nullptr), n, C, HW, 0, cond_in);
    }

    int index() const { return index_; }
    /// The conditioner: C/2 channels → (C/2)·(3K − 1) channels, channel (c·(3K − 1) + q) holding
    /// parameter q of transformed channel c0 + c.
    const ConvNet<T, B>& net() const { return net_; }
    /// Limits the Cpu backend's im2col chunks of the conditioner (before sizing workspaces).
    void set_max_chunk(int samples) { net_.set_max_chunk(samples); }
    const SplineOptions& spline_options() const { return options_; }

private:
    // [xm: cond_in planes][θ: ct·P planes][net activations] [dθ][dxm][net scratch]; a plane is n·HW.
    struct Layout {
        T *xm, *theta, *stored, *dtheta, *dxm, *scratch;
    };

    static std::size_t plane(int n) { return std::size_t(n) * HW; }

    Layout layout(int n, T* ws) const {
        Layout L{};
        L.xm = ws;
        L.theta = L.xm + plane(n) * cond_in;
        L.stored = L.theta + plane(n) * ct * P_;
        L.dtheta = L.stored + net_.stored_size(n);
        L.dxm = L.dtheta + plane(n) * ct * P_;
        L.scratch = L.dxm + plane(n) * cond_in;
        return L;
    }

    void condition(const T* v, const Layout& L, int n) const {
        kernels::coupling_image_input(B{}, v, L.xm, static_cast<const T*>(nullptr), n, C, HW, 0, cond_in);
        net_.forward(L.xm, context(n), L.theta, n, L.stored, L.scratch);
    }

    const T* context(int n) const {
        if constexpr (K > 0) return context_.values(n, who_.c_str());
        else return nullptr;
    }

    int index_ = 0;
    std::string who_;
    ContextRef<T> context_;
    SplineOptions options_;
    kernels::spline_formula::Spline<T> spline_{};
    int P_ = 0;
    int hidden_ = 0;
    bool zero_init_ = true;
    ConvNet<T, B> net_;
};

/// Recipe: rational-quadratic spline coupling (Neural Spline Flows) on vectors Shape<D>, D ≥ 2, or
/// images Shape<C, H, W>, C even (the first C/2 channels condition the rest).
struct RationalQuadraticCoupling {
    using options = SplineOptions;
    static constexpr std::string_view name = "coupling";
    template <class S>
    static constexpr bool accepts = (VectorShape<S> && S::size >= 2) || ChannelMask::accepts<S>;
    template <class S, class T, class B>
    using bind = SplineCouplingBijector<S, T, B>;
};

/// Recipe: RationalQuadraticCoupling conditioned on a context Ctx = Shape<K> (vectors: c joins the
/// conditioner's input; images: a learned projection of c joins its first hidden layer).
template <class Ctx>
struct ConditionalRationalQuadraticCoupling {
    using options = SplineOptions;
    using context_shape = Ctx;
    static constexpr std::string_view name = "coupling";
    template <class S>
    static constexpr bool accepts = RationalQuadraticCoupling::accepts<S>;
    template <class S, class T, class B>
    using bind = SplineCouplingBijector<S, T, B, Ctx>;
};

}  // namespace bijou
