// bijou/models/multiscale.hpp — the multi-scale architecture (Dinh et al. 2017 §3.6, Glow §3).
//
// Recipe `MultiScale<Levels, Body, LastBody = Body>` (state_dict name "levels"), bound to an image
// Shape<C, H, W>. Level l (0-based) applies its body (a recipe, e.g. Chain<Squeeze, Stack<Step>>)
// to its input, then
//   l < Levels−1: a Split (bijectors/split.hpp): the first half of the channels z1 goes on to
//                 level l+1, the second half leaves as the standardised latent ε_l;
//   l = Levels−1: LastBody instead of Body, then the learned TopPrior (bijectors/top_prior.hpp):
//                 everything leaves as ε_top.
// A body conditional on a context (core/context.hpp) makes its level's exit conditional too
// (ConditionalSplit, ConditionalTopPrior: the priors depend on c, as in openai/glow), and the model
// conditional; the levels' bodies must agree on the context shape (compile error otherwise).
// The bound bijector maps Shape<C, H, W> (data) to the flat latent Shape<C·H·W>: per sample
// [ε_0 | ε_1 | … | ε_top], each ε_l in its level's (channels, height, width) order; level_shape<l>
// names the shapes. Every part is a bijection, so the model stays inside the Flow contract and the
// base is the standard normal over all of z (design §2). log-dets add up over all levels.
// State_dict: "levels.<l>.<body keys>", "levels.<l>.split.conv.…", "levels.<L−1>.prior.…".
// Memory: per level the body output, the split output and the halves passed on, plus the elements'
// workspaces: all their kept parts and one scratch region shared by every level (Options::memory_saving
// = false; core/workspace.hpp), or one region shared by the body, the split and the deeper levels
// (true; backward then rebuilds every activation from z, so memory does not grow with the number of
// steps per level). Cost: the sum of the parts.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "bijou/bijectors/split.hpp"
#include "bijou/bijectors/top_prior.hpp"
#include "bijou/core/chain.hpp"
#include "bijou/core/concepts.hpp"
#include "bijou/core/diagnostics.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/core/recompute.hpp"
#include "bijou/core/workspace.hpp"

namespace bijou {
namespace detail {

struct no_next_level {
    explicit no_next_level(BuildContext&) {}
};

template <int I, int L, class S, class T, class B, class Body, class LastBody>
class MultiScaleLevel;

template <int I, int L, class S, class T, class B, class Body, class LastBody>
struct lazy_bind_level {
    using type = MultiScaleLevel<I, L, S, T, B, Body, LastBody>;
};

template <int I, int L, class S, class T, class B, class Body, class LastBody>
struct multiscale_next {
    static constexpr bool last = I + 1 == L;
    using body = bind_t<std::conditional_t<last, LastBody, Body>, S, T, B>;
    using mid = typename body::out_shape;
    static_assert(ImageShape<mid>, "bijou: a MultiScale body must produce an image shape");
    using next_in = Shape<mid::dims[0] / 2, mid::dims[1], mid::dims[2]>;
};

/// Level I of a MultiScale model and, recursively, the levels after it.
/// The exit of a level: Split / TopPrior, or their conditional forms when the level's body is
/// conditional on a context Ctx (then the priors are conditioned on it too, as in openai/glow).
template <bool Last, class Ctx>
struct level_exit {
    using type = std::conditional_t<Last, TopPrior, Split>;
};
template <bool Last, class Ctx>
    requires(!std::is_void_v<Ctx>)
struct level_exit<Last, Ctx> {
    using type = std::conditional_t<Last, ConditionalTopPrior<Ctx>, ConditionalSplit<Ctx>>;
};

template <int I, int L, class S, class T, class B, class Body, class LastBody>
class MultiScaleLevel
    : public conditional_on<common_context_t<
          typename multiscale_next<I, L, S, T, B, Body, LastBody>::body,
          typename std::conditional_t<multiscale_next<I, L, S, T, B, Body, LastBody>::last,
                                      std::type_identity<no_next_level>,
                                      lazy_bind_level<I + 1, L, typename multiscale_next<I, L, S, T, B, Body, LastBody>::next_in,
                                                      T, B, Body, LastBody>>::type>> {
    using info = multiscale_next<I, L, S, T, B, Body, LastBody>;

public:
    static constexpr bool last = info::last;
    using body_type = typename info::body;
    using mid_shape = typename info::mid;
    using exit_recipe = typename level_exit<last, context_shape_t<body_type>>::type;
    using exit_type = bind_t<exit_recipe, mid_shape, T, B>;
    using next_type = typename std::conditional_t<
        last, std::type_identity<no_next_level>,
        lazy_bind_level<I + 1, L, typename info::next_in, T, B, Body, LastBody>>::type;
    using in_shape = S;
    using out_shape = Shape<S::size>;
    using scalar = T;
    using backend = B;
    /// The shape of this level's ε: half of the body output's channels, or all of it at the top.
    using eps_shape = std::conditional_t<last, mid_shape, typename info::next_in>;
    static constexpr int D = S::size, Sm = mid_shape::size, Se = eps_shape::size, Rest = D - Se;
    static_assert(Sm == D, "bijou: a MultiScale body must preserve the number of values");

    explicit MultiScaleLevel(BuildContext& ctx)
        : body_(ctx), exit_(ctx), next_(ctx), recompute_(ctx.options().memory_saving) {}

    bool memory_saving() const { return recompute_; }
    /// Selects the workspace layout, for this level and everything below it (core/recompute.hpp).
    void set_memory_saving(bool on) const {
        recompute_ = on;
        detail::set_memory_saving(body_, on);
        detail::set_memory_saving(exit_, on);
        if constexpr (!last) detail::set_memory_saving(next_, on);
    }

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        const std::string p = join_name(prefix, std::to_string(I));
        body_.declare(ps, join_name(p, std::string(recipe_name<std::conditional_t<last, LastBody, Body>>())));
        exit_.declare(ps, join_name(p, last ? "prior" : "split"));
        if constexpr (!last) next_.declare(ps, prefix);
    }
    void reset_parameters(Rng& rng) {
        body_.reset_parameters(rng);
        exit_.reset_parameters(rng);
        if constexpr (!last) next_.reset_parameters(rng);
    }

    std::size_t workspace_size(int n) const {
        const std::size_t own = std::size_t(n) * own_size();
        std::size_t wb = body_.workspace_size(n), we = exit_.workspace_size(n), wn = 0;
        if constexpr (!last) wn = next_.workspace_size(n);
        if (recompute_) return own + std::max({wb, we, wn});
        return own + kept_parts(n) + scratch_size(n);
    }
    /// The part of the workspace no call reads from an earlier one (core/workspace.hpp): the scratch
    /// that the body, the exit and the deeper levels share; none in the memory-saving layout.
    std::size_t scratch_size(int n) const {
        if (recompute_) return 0;
        std::size_t sn = 0;
        if constexpr (!last) sn = detail::scratch_size(next_, n);
        return std::max({detail::scratch_size(body_, n), detail::scratch_size(exit_, n), sn});
    }

    void forward(const T* x, T* z, double* ld, int n, T* ws) const { forward(x, z, ld, n, ws, scratch_at(ws, n)); }
    void forward(const T* x, T* z, double* ld, int n, T* ws, T* scratch) const {
        const Layout Lo = layout(n, ws);
        detail::forward(body_, x, Lo.mid, ld, n, Lo.wb, scratch);
        if constexpr (last) {
            detail::forward(exit_, Lo.mid, z, ld, n, Lo.we, scratch);
        } else {
            detail::forward(exit_, Lo.mid, Lo.sout, ld, n, Lo.we, scratch);
            scatter_split(Lo, z, n);
            detail::forward(next_, Lo.z1, Lo.nz, ld, n, Lo.wn, scratch);
            put_rest(Lo.nz, z, n);
        }
    }

    void inverse(const T* z, T* x, double* ld, int n, T* ws) const { inverse(z, x, ld, n, ws, scratch_at(ws, n)); }
    void inverse(const T* z, T* x, double* ld, int n, T* ws, T* scratch) const {
        const Layout Lo = layout(n, ws);
        if constexpr (last) {
            detail::inverse(exit_, z, Lo.mid, ld, n, Lo.we, scratch);
        } else {
            get_rest(z, Lo.nz, n);
            detail::inverse(next_, Lo.nz, Lo.z1, ld, n, Lo.wn, scratch);
            gather_split(Lo.sout, Lo.z1, z, n);
            detail::inverse(exit_, Lo.sout, Lo.mid, ld, n, Lo.we, scratch);
        }
        detail::inverse(body_, Lo.mid, x, ld, n, Lo.wb, scratch);
    }

    void backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws) {
        backward(x, z, dz, dld, dx, n, ws, scratch_at(ws, n));
    }
    void backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws, T* scratch) {
        if (recompute_) return backward_with_temporaries(*this, z, dz, dld, dx, n, ws);  // standalone use
        walk_backward(const_cast<T*>(x), z, dz, dld, dx, n, ws, scratch, nullptr);
    }

    void backward_from_output(const T* z, const T* dz, const T* dld, T* x_rec, T* dx, int n, T* ws, double* ld_tmp) {
        T* scratch = scratch_at(ws, n);
        if (!recompute_) inverse(z, x_rec, ld_tmp, n, ws, scratch);
        walk_backward(x_rec, z, dz, dld, dx, n, ws, scratch, ld_tmp);
    }

    void initialize(const T* x, int n, T* ws) { initialize(x, n, ws, scratch_at(ws, n)); }
    void initialize(const T* x, int n, T* ws, T* scratch) {
        const Layout Lo = layout(n, ws);
        Buffer<B, double> ld_buf{std::size_t(n)};  // initialisation is not a training step
        double* ld = ld_buf.data();
        if constexpr (DataInitialized<body_type>) detail::initialize(body_, x, n, Lo.wb, scratch);
        detail::forward(body_, x, Lo.mid, ld, n, Lo.wb, scratch);
        if constexpr (DataInitialized<exit_type>) detail::initialize(exit_, Lo.mid, n, Lo.we, scratch);
        if constexpr (!last) {
            detail::forward(exit_, Lo.mid, Lo.sout, ld, n, Lo.we, scratch);
            copy_rows(B{}, Lo.z1, Rest, Lo.sout, Sm, std::size_t(n), Rest);
            detail::initialize(next_, Lo.z1, n, Lo.wn, scratch);
        }
    }

    body_type& body() { return body_; }
    const body_type& body() const { return body_; }
    exit_type& exit() { return exit_; }
    const exit_type& exit() const { return exit_; }
    next_type& next() { return next_; }
    const next_type& next() const { return next_; }

private:
    // Own buffers: [mid][sout][dmid][dsout] (Sm each), then, below the top, [z1][nz][dz1][dnz]
    // (Rest each); then the kept parts of body, exit and next (memory-saving: one shared region). The
    // scratch shared by all three is elsewhere (the plain forms: after the kept parts).
    static constexpr std::size_t own_size() { return 4 * std::size_t(Sm) + (last ? 0 : 4 * std::size_t(Rest)); }
    struct Layout {
        T *mid, *sout, *dmid, *dsout, *z1, *nz, *dz1, *dnz, *wb, *we, *wn;
    };
    Layout layout(int n, T* ws) const {
        const std::size_t nn = std::size_t(n);
        Layout Lo{};
        T* p = ws;
        auto take = [&p](std::size_t k) {
            T* q = p;
            p += k;
            return q;
        };
        Lo.mid = take(nn * Sm), Lo.sout = take(nn * Sm), Lo.dmid = take(nn * Sm), Lo.dsout = take(nn * Sm);
        if constexpr (!last) Lo.z1 = take(nn * Rest), Lo.nz = take(nn * Rest), Lo.dz1 = take(nn * Rest), Lo.dnz = take(nn * Rest);
        if (recompute_) {
            Lo.wb = Lo.we = Lo.wn = p;
        } else {
            Lo.wb = take(detail::kept_size(body_, n));
            Lo.we = take(detail::kept_size(exit_, n));
            if constexpr (!last) Lo.wn = p;
        }
        return Lo;
    }
    std::size_t kept_parts(int n) const {
        std::size_t k = detail::kept_size(body_, n) + detail::kept_size(exit_, n);
        if constexpr (!last) k += detail::kept_size(next_, n);
        return k;
    }
    T* scratch_at(T* ws, int n) const {
        return recompute_ ? nullptr : ws + std::size_t(n) * own_size() + kept_parts(n);
    }

    // The split output per sample is [z1 (Rest) | ε (Se)]; the level's latent is [ε | rest].
    // (Strided row copies in backend memory: core/memory.hpp's copy_rows.)
    void scatter_split(const Layout& Lo, T* z, int n) const {
        copy_rows(B{}, Lo.z1, Rest, Lo.sout, Sm, std::size_t(n), Rest);
        copy_rows(B{}, z, D, Lo.sout + Rest, Sm, std::size_t(n), Se);
    }
    void gather_split(T* sout, const T* z1, const T* z, int n) const {
        copy_rows(B{}, sout, Sm, z1, Rest, std::size_t(n), Rest);
        copy_rows(B{}, sout + Rest, Sm, z, D, std::size_t(n), Se);
    }
    void put_rest(const T* nz, T* z, int n) const {
        copy_rows(B{}, z + Se, D, nz, Rest, std::size_t(n), Rest);
    }
    void get_rest(const T* z, T* nz, int n) const {
        copy_rows(B{}, nz, Rest, z + Se, D, std::size_t(n), Rest);
    }

    // From the top level down. In memory-saving mode each part rebuilds its input on the way:
    // the deeper levels give z1, the split gives the body output, the body gives x.
    void walk_backward(T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws, T* scratch,
                       double* ld_tmp) {
        const Layout Lo = layout(n, ws);
        if constexpr (last) {
            element_backward(exit_, recompute_, Lo.mid, z, dz, dld, Lo.dmid, n, Lo.we, scratch, ld_tmp);
        } else {
            get_rest(z, Lo.nz, n);
            get_rest(dz, Lo.dnz, n);
            element_backward(next_, recompute_, Lo.z1, Lo.nz, Lo.dnz, dld, Lo.dz1, n, Lo.wn, scratch, ld_tmp);
            gather_split(Lo.sout, Lo.z1, z, n);
            gather_split(Lo.dsout, Lo.dz1, dz, n);
            element_backward(exit_, recompute_, Lo.mid, Lo.sout, Lo.dsout, dld, Lo.dmid, n, Lo.we, scratch, ld_tmp);
        }
        element_backward(body_, recompute_, x, Lo.mid, Lo.dmid, dld, dx, n, Lo.wb, scratch, ld_tmp);
    }

    body_type body_;
    exit_type exit_;
    [[no_unique_address]] next_type next_;
    mutable bool recompute_ = false;
};

}  // namespace detail

/// Recipe: Levels levels of (Body, then Split) with LastBody and the learned TopPrior at the top.
template <int Levels, class Body, class LastBody = Body>
struct MultiScale {
    static_assert(Levels >= 1, "bijou: MultiScale needs at least one level");
    static constexpr std::string_view name = "levels";
    template <class S>
    static constexpr bool accepts = ImageShape<S>;
    template <class S, class T, class B>  // Levels < 1: an identity stand-in, so only the static_assert reports
    using bind = typename std::conditional_t<(Levels >= 1), detail::lazy_bind_level<0, Levels, S, T, B, Body, LastBody>,
                                             detail::lazy_invalid<S, T, B>>::type;
};

/// A Glow or multi-scale model was given a shape that is not Shape<C, H, W>.
template <class Shape>
struct glow_needs_an_image_shape;

/// Level `Level` squeezes `ShapeAtLevel`, whose height or width is odd: H and W must be divisible
/// by 2^(number of squeezes).
template <int Level, class ShapeAtLevel>
struct glow_level_needs_even_height_and_width;

/// Glow's Step is not a bijector recipe (no `name` / `bind<Shape, T, Backend>`).
template <class Step>
struct glow_step_is_not_a_bijector_recipe;

namespace detail {

enum class multiscale_status { ok, not_an_image, odd_extent, step_not_a_recipe };

/// The first level (counting from 0) whose squeeze sees an odd height or width, or -1. Level l
/// squeezes (for Glow) the shape after l earlier squeezes and splits.
template <class S>
consteval int first_odd_level(int squeezes) {
    int h = S::dims[1], w = S::dims[2];
    for (int l = 0; l < squeezes; ++l) {
        if (h % 2 != 0 || w % 2 != 0) return l;
        h /= 2, w /= 2;
    }
    return -1;
}

/// Shape seen by level l of Glow on S (before its squeeze): C·2^l channels, H/2^l × W/2^l.
template <class S, int L>
using glow_level_shape = Shape<S::dims[0] * (1 << L), (S::dims[1] >> L), (S::dims[2] >> L)>;

template <class S, int Squeezes, class Step>
consteval multiscale_status multiscale_check() {
    if constexpr (!ImageShape<S>) return multiscale_status::not_an_image;
    else if constexpr (first_odd_level<S>(Squeezes) >= 0) return multiscale_status::odd_extent;
    else if constexpr (!BijectorRecipe<Step>) return multiscale_status::step_not_a_recipe;
    else return multiscale_status::ok;
}

template <class S, int Squeezes, class Step, multiscale_status>
struct multiscale_diagnostic;
template <class S, int Squeezes, class Step>
struct multiscale_diagnostic<S, Squeezes, Step, multiscale_status::not_an_image> {
    static void emit() {
        static_assert(ImageShape<S>, "bijou: Glow and MultiScaleRealNVP take an image Shape<C, H, W>; see "
                                     "glow_needs_an_image_shape<shape> below");
        (void)sizeof(glow_needs_an_image_shape<S>);
    }
};
template <class S, int Squeezes, class Step>
struct multiscale_diagnostic<S, Squeezes, Step, multiscale_status::odd_extent> {
    static constexpr int level = first_odd_level<S>(Squeezes);
    static void emit() {
        static_assert(level < 0, "bijou: each squeeze halves H and W (every Glow level, every MultiScaleRealNVP "
                                 "scale but the last), so they must be divisible by 2^squeezes; see "
                                 "glow_level_needs_even_height_and_width<level, shape at that level> below");
        (void)sizeof(glow_level_needs_even_height_and_width<level, glow_level_shape<S, level>>);
    }
};
template <class S, int Squeezes, class Step>
struct multiscale_diagnostic<S, Squeezes, Step, multiscale_status::step_not_a_recipe> {
    static void emit() {
        static_assert(BijectorRecipe<Step>, "bijou: Glow's Step is not a bijector recipe; see "
                                            "glow_step_is_not_a_bijector_recipe<step> below");
        (void)sizeof(glow_step_is_not_a_bijector_recipe<Step>);
    }
};

template <class S, int Squeezes, class Step, multiscale_status Status = multiscale_check<S, Squeezes, Step>()>
struct multiscale_checked {
    static constexpr bool ok = true;
};
template <class S, int Squeezes, class Step, multiscale_status Status>
    requires(Status != multiscale_status::ok)
struct multiscale_checked<S, Squeezes, Step, Status> {
    static constexpr bool ok = false;
    using reported = emits<&multiscale_diagnostic<S, Squeezes, Step, Status>::emit>;
};

/// Stand-in recipe after a failed check: binds to an identity, so nothing else fails.
struct invalid_model_recipe {
    static constexpr std::string_view name = "levels";
    template <class S, class T, class B>
    using bind = invalid_bijector<S, T, B>;
};

}  // namespace detail
}  // namespace bijou
