// bijou/kernels/coupling_scale.hpp — the scale function of an affine coupling, as its kernels take it.
//
// The choice is a run-time value (a model sweeps it), given to every affine-coupling kernel;
// CouplingOptions::scale (bijectors/coupling_common.hpp) is where a user sets it.
#pragma once

namespace bijou {

/// How a coupling turns the conditioner output h into a scale.
enum class CouplingScale {
    model_default,  ///< the model's own choice: sigmoid in Glow, tanh everywhere else
    tanh,           ///< RealNVP: log s = tanh(h_s); shift and log-scale from separate or shared nets
    sigmoid,        ///< Glow: s = sigmoid(h_s + 2); log s = log sigmoid(h_s + 2)
};

/// The scale a coupling uses: `s`, or `fallback` for CouplingScale::model_default.
constexpr CouplingScale resolve_scale(CouplingScale s, CouplingScale fallback = CouplingScale::tanh) {
    return s == CouplingScale::model_default ? fallback : s;
}

}  // namespace bijou
