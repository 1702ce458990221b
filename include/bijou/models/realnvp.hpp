// bijou/models/realnvp.hpp — RealNVP for vectors (Dinh, Sohl-Dickstein & Bengio 2017).
//
// RealNVP<Shape<D>, Base = StandardNormal, T = float, Backend = Cpu> is
//     Flow<Shape<D>, Stack<AffineCoupling>, Base, T, Backend>
// i.e. Options::steps_per_level affine couplings (default 8) whose masks alternate, each with its own
// conditioner (CouplingOptions::net: separate shift and tanh log-scale MLPs by default, hidden width
// Options::hidden, Options::hidden_layers layers). It is composition only: every piece is a
// public recipe, so a variant is one `using` away (e.g. Stack<Chain<ActNorm, AffineCoupling>>).
//
// MultiScaleRealNVP<Shape<C, H, W>, Scales, T = float, Backend = Cpu>, the image model (§3.6):
//   per scale but the last: 3 checkerboard affine couplings → Squeeze → 3 × (Permute (reverse),
//   channel-wise affine coupling) → Split; the last scale: 4 checkerboard affine couplings, then
//   the TopPrior (models/multiscale.hpp). Couplings use tanh scales by default
//   (CouplingScale::model_default) and one conv conditioner each (Options::hidden wide); the
//   Permute before each channel coupling makes consecutive ones transform alternate halves. The
//   split and top priors are Glow's learned ones: zero-initialised, they start as Dinh et al.'s
//   standard normal. H and W must be divisible by 2^(Scales−1) (a compile error names the scale).
//   ImageFlow API (models/image_flow.hpp): bits_per_dim, encode/decode, interpolate, sample.
#pragma once

#include "bijou/bijectors/coupling.hpp"
#include "bijou/core/stack.hpp"
#include "bijou/bijectors/permute.hpp"
#include "bijou/bijectors/squeeze.hpp"
#include "bijou/models/flow.hpp"
#include "bijou/models/image_flow.hpp"
#include "bijou/models/multiscale.hpp"

namespace bijou {

template <VectorShape S, class Base = StandardNormal, Scalar T = float, Backend B = Cpu>
using RealNVP = Flow<S, Stack<AffineCoupling>, Base, T, B>;

namespace detail {
template <int Scales>
using realnvp_image_recipe =
    MultiScale<Scales,
               Chain<Repeat<CheckerboardAffineCoupling, 3>, Squeeze, Repeat<Chain<Permute, AffineCoupling>, 3>>,
               Repeat<CheckerboardAffineCoupling, 4>>;

}  // namespace detail

template <class S, int Scales, Scalar T = float, Backend B = Cpu>
class MultiScaleRealNVP
    : public ImageFlow<S,
                       std::conditional_t<(Scales >= 1 && detail::multiscale_checked<S, Scales - 1, Squeeze>::ok),
                                          detail::realnvp_image_recipe<Scales>, detail::invalid_model_recipe>,
                       T, B> {
    static_assert(Scales >= 1, "bijou: MultiScaleRealNVP needs at least one scale");
    using base_type = ImageFlow<S,
                                std::conditional_t<(Scales >= 1 && detail::multiscale_checked<S, Scales - 1, Squeeze>::ok),
                                                   detail::realnvp_image_recipe<Scales>, detail::invalid_model_recipe>,
                                T, B>;

public:
    /// Options::hidden (conditioner width) and the rest at run time; tanh scales by default.
    explicit MultiScaleRealNVP(const Options& options = {}) : base_type(with_model_scale(options, CouplingScale::tanh)) {}
};


}  // namespace bijou
