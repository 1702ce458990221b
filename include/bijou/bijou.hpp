// bijou/bijou.hpp — umbrella header: every public header, nothing else.
#pragma once

#include "bijou/core/backend.hpp"
#include "bijou/core/chain.hpp"
#include "bijou/core/concepts.hpp"
#include "bijou/core/context.hpp"
#include "bijou/core/error.hpp"
#include "bijou/core/options.hpp"
#include "bijou/core/params.hpp"
#include "bijou/core/recompute.hpp"
#include "bijou/core/random.hpp"
#include "bijou/core/shape.hpp"
#include "bijou/core/stack.hpp"
#include "bijou/core/tensor.hpp"

#include "bijou/bijectors/actnorm.hpp"
#include "bijou/bijectors/coupling.hpp"
#include "bijou/bijectors/spline_coupling.hpp"
#include "bijou/bijectors/coupling_image.hpp"
#include "bijou/bijectors/invconv1x1.hpp"
#include "bijou/bijectors/permute.hpp"
#include "bijou/bijectors/split.hpp"
#include "bijou/bijectors/squeeze.hpp"
#include "bijou/bijectors/top_prior.hpp"

#include "bijou/nn/conv2d.hpp"
#include "bijou/nn/convnet.hpp"
#include "bijou/nn/mlp.hpp"

#include "bijou/distributions/conditional_diagonal_gaussian.hpp"
#include "bijou/distributions/diagonal_gaussian.hpp"
#include "bijou/distributions/gaussian_mixture.hpp"
#include "bijou/distributions/standard_normal.hpp"

#include "bijou/models/flow.hpp"
#include "bijou/models/glow.hpp"
#include "bijou/models/image_flow.hpp"
#include "bijou/models/multiscale.hpp"
#include "bijou/models/realnvp.hpp"

#include "bijou/io/two_moons.hpp"

#include "bijou/train/adam.hpp"
#include "bijou/train/clip.hpp"
#include "bijou/train/sampler.hpp"
#include "bijou/train/schedule.hpp"
#include "bijou/train/trainer.hpp"
