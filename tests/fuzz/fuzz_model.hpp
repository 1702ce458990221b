// The small model the checkpoint fuzz target loads into and the seed generator saves from.
#pragma once

#include <bijou/bijou.hpp>
#include <bijou/io/checkpoint.hpp>

namespace bijou_fuzz {

/// One level of Glow on 1x4x4 images, one step of width 4: every kind of tensor bijou saves
/// (ActNorm parameters and its `initialized` buffer, the LU factors and permutation of the 1x1
/// convolution, coupling weights, the top prior) in a ~3 KB checkpoint.
using Model = bijou::Glow<bijou::Shape<1, 4, 4>, 1>;

inline bijou::Options model_options() {
    bijou::Options o;
    o.steps_per_level = 1;
    o.hidden = 4;
    o.seed = 5;
    return o;
}

/// Parameters that are not the constructor's (so a loaded seed visibly changes the model), and an
/// initialised ActNorm (so the `initialized` buffer is 1 in the seed).
inline void perturb(Model& m) {
    bijou::Rng rng(11);
    auto x = bijou::make_batch<float, bijou::Shape<1, 4, 4>>(8);
    for (auto& v : x) v = float(rng.uniform());
    m.initialize(x);
    auto values = m.params().values();
    for (std::size_t i = 0; i < values.size(); ++i) values[i] += 0.01f * float(i % 7);
}

}  // namespace bijou_fuzz
