// bijou/models/glow.hpp — Glow (Kingma & Dhariwal 2018), a MultiScale flow (models/multiscale.hpp)
// with the ImageFlow API (models/image_flow.hpp: bits_per_dim, dequantize, encode/decode,
// interpolate, sample). The multi-scale image RealNVP (Dinh et al. 2017) is in models/realnvp.hpp.
//
// Glow<Shape<C, H, W>, Levels, Step = Chain<ActNorm, InvConv1x1LU, AffineCoupling>, T = float,
//      Backend = Cpu>
//   Levels levels of (Squeeze, K × Step) with a Split after each of the first Levels−1 levels and
//   the learned TopPrior after the last. Run-time: K = Options::steps_per_level, the conditioner width
//   Options::hidden, and the couplings' CouplingOptions, whose scale model_default means Glow's
//   sigmoid(h + 2) (openai/glow). forward maps an image to the latent z, every level's ε in turn
//   (Shape<C·H·W>), scored by a standard normal base; log_prob(x) = log N(z) + log|det ∂z/∂x|.
//   State_dict "levels.<l>.steps.<k>.actnorm.loc", …, "levels.<l>.split.conv.weight",
//   "levels.<L−1>.prior.mean". Cost per image and pass: Σ over levels of K × (a step's cost); with
//   Options::memory_saving, activation memory does not grow with K or Levels.
// Compile-time checks, each one error naming bijou, the level and the shapes (core/diagnostics.hpp
// style): the shape must be an image (glow_needs_an_image_shape), every squeeze must see an even
// height and width (glow_level_needs_even_height_and_width<level, shape at that level>), and Step
// must be a bijector recipe (glow_step_is_not_a_bijector_recipe). A Step element that cannot take
// its level's shape (e.g. a coupling on an odd channel count) is reported by the Chain/Stack checks.
#pragma once

#include <type_traits>

#include "bijou/bijectors/actnorm.hpp"
#include "bijou/bijectors/coupling.hpp"
#include "bijou/bijectors/invconv1x1.hpp"
#include "bijou/bijectors/permute.hpp"
#include "bijou/bijectors/squeeze.hpp"
#include "bijou/core/chain.hpp"
#include "bijou/core/diagnostics.hpp"
#include "bijou/core/stack.hpp"
#include "bijou/models/image_flow.hpp"
#include "bijou/models/multiscale.hpp"

namespace bijou {

namespace detail {

template <int Levels, class Step>
using glow_recipe = MultiScale<Levels, Chain<Squeeze, Stack<Step>>>;

}  // namespace detail

template <class S, int Levels, class Step = Chain<ActNorm, InvConv1x1LU, AffineCoupling>, Scalar T = float,
          Backend B = Cpu>
class Glow : public ImageFlow<S,
                              std::conditional_t<(Levels >= 1 && detail::multiscale_checked<S, Levels, Step>::ok),
                                                 detail::glow_recipe<Levels, Step>, detail::invalid_model_recipe>,
                              T, B> {
    static_assert(Levels >= 1, "bijou: Glow needs at least one level");
    using base_type = ImageFlow<S,
                                std::conditional_t<(Levels >= 1 && detail::multiscale_checked<S, Levels, Step>::ok),
                                                   detail::glow_recipe<Levels, Step>, detail::invalid_model_recipe>,
                                T, B>;

public:
    static constexpr int levels_count = Levels;
    /// K (Options::steps_per_level), hidden width and the rest at run time; sigmoid scales by default.
    explicit Glow(const Options& options = {}) : base_type(with_model_scale(options, CouplingScale::sigmoid)) {}
};

}  // namespace bijou
