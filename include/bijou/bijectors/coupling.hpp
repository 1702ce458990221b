// bijou/bijectors/coupling.hpp — the coupling recipes: RealNVP affine, NICE additive, and their image
// forms (Glow's channel split and RealNVP's checkerboard).
//
// Recipes (state_dict key "coupling"; options: CouplingOptions, coupling_common.hpp):
//   AffineCoupling, AdditiveCoupling       vectors Shape<D>, D ≥ 2 (coupling_vector.hpp: a binary mask
//                                          from CouplingOptions), or images Shape<C, H, W> with C even
//                                          (coupling_image.hpp: the first C/2 channels condition the rest)
//   CheckerboardAffineCoupling,            images with H·W ≥ 2 (coupling_image.hpp: RealNVP's
//   CheckerboardAdditiveCoupling           checkerboard, flipping from one coupling to the next)
//   ConditionalAffineCoupling<Ctx>,        the same as AffineCoupling / AdditiveCoupling, conditioned on a
//   ConditionalAdditiveCoupling<Ctx>       context Ctx = Shape<K> (core/context.hpp, docs/conditional.md):
//                                          vectors concatenate c to the conditioner's input; images add a
//                                          learned projection of c to its first hidden layer, per channel
// Each header states its transform, log-det, workspace and cost; forward maps data → latent.
#pragma once

#include <string_view>

#include "bijou/bijectors/coupling_common.hpp"
#include "bijou/bijectors/coupling_image.hpp"
#include "bijou/bijectors/coupling_vector.hpp"

namespace bijou {

/// Recipe: affine coupling (RealNVP with CouplingScale::tanh, Glow with CouplingScale::sigmoid);
/// on images, Glow's channel split.
struct AffineCoupling {
    using options = CouplingOptions;
    static constexpr std::string_view name = "coupling";
    template <class S>
    static constexpr bool accepts = (VectorShape<S> && S::size >= 2) || ChannelMask::accepts<S>;
    template <class S, class T, class B>
    using bind = CouplingBijector<CouplingKind::affine, S, T, B>;
};

/// Recipe: additive coupling (NICE), volume preserving; on images, Glow's channel split.
struct AdditiveCoupling {
    using options = CouplingOptions;
    static constexpr std::string_view name = "coupling";
    template <class S>
    static constexpr bool accepts = (VectorShape<S> && S::size >= 2) || ChannelMask::accepts<S>;
    template <class S, class T, class B>
    using bind = CouplingBijector<CouplingKind::additive, S, T, B>;
};

/// Recipe: affine coupling on images with RealNVP's checkerboard mask (flips every coupling).
struct CheckerboardAffineCoupling {
    using options = CouplingOptions;
    static constexpr std::string_view name = "coupling";
    template <class S>
    static constexpr bool accepts = CheckerboardMask::accepts<S>;
    template <class S, class T, class B>
    using bind = CouplingBijector<CouplingKind::affine, S, T, B, CheckerboardMask>;
};

/// Recipe: additive coupling on images with RealNVP's checkerboard mask.
struct CheckerboardAdditiveCoupling {
    using options = CouplingOptions;
    static constexpr std::string_view name = "coupling";
    template <class S>
    static constexpr bool accepts = CheckerboardMask::accepts<S>;
    template <class S, class T, class B>
    using bind = CouplingBijector<CouplingKind::additive, S, T, B, CheckerboardMask>;
};

/// Recipe: AffineCoupling conditioned on a context Ctx = Shape<K> (vectors; images with C even).
template <class Ctx>
struct ConditionalAffineCoupling {
    using options = CouplingOptions;
    using context_shape = Ctx;
    static constexpr std::string_view name = "coupling";
    template <class S>
    static constexpr bool accepts = AffineCoupling::accepts<S>;
    template <class S, class T, class B>
    using bind = CouplingBijector<CouplingKind::affine, S, T, B, ChannelMask, Ctx>;
};

/// Recipe: AdditiveCoupling conditioned on a context Ctx = Shape<K> (vectors; images with C even).
template <class Ctx>
struct ConditionalAdditiveCoupling {
    using options = CouplingOptions;
    using context_shape = Ctx;
    static constexpr std::string_view name = "coupling";
    template <class S>
    static constexpr bool accepts = AdditiveCoupling::accepts<S>;
    template <class S, class T, class B>
    using bind = CouplingBijector<CouplingKind::additive, S, T, B, ChannelMask, Ctx>;
};

}  // namespace bijou
