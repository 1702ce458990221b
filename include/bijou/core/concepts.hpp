// bijou/core/concepts.hpp — what a recipe, a bound bijector and a base distribution must provide.
//
// A *recipe* (ActNorm, AffineCoupling, Chain<...>, your own) is a type with
//     static constexpr std::string_view name;                          // state_dict key, e.g. "actnorm"
//     template <class InShape, class T, class Backend> using bind = ...; // the bound bijector
// and optionally
//     template <class InShape> static constexpr bool accepts = ...;    // shapes it can be bound to
//     using input_shape = Shape<...>;                                   // if it only takes one shape
// Chain checks `accepts` / `input_shape` at compile time and reports a mismatch by position.
//
// A *bound bijector* B (bind<InShape, T, Backend>) maps a batch of n events of in_shape (data side)
// to n events of out_shape (latent side). Buffers are contiguous, row-major, sample-major
// (n × in_shape::size); vectors are (n, D), images (n, C, H, W). Inputs and outputs never alias.
//     B(BuildContext&)                              construct; read Options, claim an index
//     void declare(ParamSet<T>&, const std::string& prefix)   declare named tensors
//     void reset_parameters(Rng&)                    initial values (after ParamSet::allocate)
//     std::size_t workspace_size(int n) const        scalars of scratch for one forward+backward
//     void forward(const T* x, T* z, double* ld, int n, T* ws) const   z = f(x); ld[i] += log|det ∂z/∂x|
//     void inverse(const T* z, T* x, double* ld, int n, T* ws) const   x = f⁻¹(z); ld[i] += log|det ∂x/∂z|
//     void backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws)
//         for L with ∂L/∂z = dz and ∂L/∂ld[i] = dld[i]: dx = ∂L/∂x (assigned), parameter grads +=.
//         Requires ws exactly as forward(x, z, ...) left it at the same n. inverse(z, x, ...) must
//         leave ws in that same state (up to round-off in x), so that backward may also follow
//         inverse: memory-saving training rebuilds inputs that way (core/recompute.hpp).
// Optional: void initialize(const T* x, int n, T* ws)  data-dependent initialisation (ActNorm);
//           a Chain forwards x through the elements so each initialises on its own input.
// Optional: std::size_t scratch_size(int n) const  the part of the workspace that is scratch, shared
//           with other bijectors by composites; then also the forms taking it as a separate pointer
//           (core/workspace.hpp).
#pragma once

#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>

#include "bijou/core/backend.hpp"
#include "bijou/core/options.hpp"
#include "bijou/core/params.hpp"
#include "bijou/core/random.hpp"
#include "bijou/core/shape.hpp"

namespace bijou {

/// A recipe: unbound bijector description, bound later to a shape, scalar and backend.
template <class R>
concept BijectorRecipe = requires {
    { R::name } -> std::convertible_to<std::string_view>;
    typename R::template bind<Shape<2>, float, Reference>;
};

/// A bound bijector: see the contract at the top of this header.
template <class B>
concept Bijector =
    EventShape<typename B::in_shape> && EventShape<typename B::out_shape> && Scalar<typename B::scalar> &&
    Backend<typename B::backend> &&
    requires(B& b, const B& cb, BuildContext& ctx, ParamSet<typename B::scalar>& ps, const std::string& prefix,
             Rng& rng, const typename B::scalar* cx, typename B::scalar* x, double* ld, int n) {
        B(ctx);
        b.declare(ps, prefix);
        b.reset_parameters(rng);
        { cb.workspace_size(n) } -> std::convertible_to<std::size_t>;
        cb.forward(cx, x, ld, n, x);
        cb.inverse(cx, x, ld, n, x);
        b.backward(cx, cx, cx, cx, x, n, x);
    };

/// Bijectors with data-dependent initialisation.
template <class B>
concept DataInitialized = requires(B& b, const typename B::scalar* x, typename B::scalar* ws, int n) {
    b.initialize(x, n, ws);
};

/// A bound base distribution over event_shape.
///     void log_prob(const T* z, double* lp, int n) const     lp[i] = log p(z_i)   (assigned)
///     void backward(const T* z, const T* dlp, T* dz, int n)   dz = dlp[i]·∇_z log p (assigned), param grads +=
///     void sample(T* z, int n, double temperature, Rng&) const
template <class D>
concept Distribution =
    EventShape<typename D::event_shape> && Scalar<typename D::scalar> &&
    requires(D& d, const D& cd, BuildContext& ctx, ParamSet<typename D::scalar>& ps, const std::string& prefix,
             Rng& rng, const typename D::scalar* cz, typename D::scalar* z, double* lp, int n, double t) {
        D(ctx);
        d.declare(ps, prefix);
        d.reset_parameters(rng);
        cd.log_prob(cz, lp, n);
        d.backward(cz, cz, z, n);
        cd.sample(z, n, t, rng);
    };

/// A recipe for a base distribution.
template <class R>
concept DistributionRecipe = requires {
    { R::name } -> std::convertible_to<std::string_view>;
    typename R::template bind<Shape<2>, float, Reference>;
};

namespace detail {
template <class R>
concept has_accepts = requires { { R::template accepts<Shape<2>> } -> std::convertible_to<bool>; };
template <class R>
concept has_input_shape = requires { typename R::input_shape; };
}  // namespace detail

/// The bound type of a recipe (no diagnostics; Chain adds them).
template <class R, class InShape, class T, class B>
using bind_t = typename R::template bind<InShape, T, B>;

}  // namespace bijou
