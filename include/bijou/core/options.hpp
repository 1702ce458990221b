// bijou/core/options.hpp — runtime hyper-parameters shared by every recipe in a model.
//
// Shapes, scalar type and backend are compile-time; everything else a user may want to sweep
// (widths, depths, K, mask pattern, scale function, seeds) is a runtime Options value. Each
// recipe reads only the fields it documents. BuildContext carries the Options and per-recipe
// counters while a model is being built, so that e.g. the k-th coupling knows it is the k-th
// (alternating masks) and the k-th Permute draws its own permutation.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "bijou/core/error.hpp"

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

/// Conditioner network layout of a coupling.
enum class CouplingNet {
    separate,  ///< classic RealNVP: one net for the shift t, another for the log-scale
    shared,    ///< Glow: one net whose output is split into (shift, scale) halves
};

/// Which coordinates a coupling keeps (mask = 1) and which it transforms (mask = 0).
enum class MaskKind {
    alternating,  ///< vectors: keep i with (i + k) even for the k-th coupling; flips every coupling
    half,         ///< keep the first half on even k, the second half on odd k
    custom,       ///< Options::masks[k % masks.size()]
};

enum class PermuteKind {
    reverse,  ///< reverse the feature (vector) or channel (image) order
    shuffle,  ///< a fixed random permutation drawn from Options::seed and the Permute's index
};

struct Options {
    // --- depth ---
    int steps_per_level = 8;  ///< K: copies of the Step a Stack<Step> makes (per level of a multi-scale
                              ///< model; a vector flow has one level)

    // --- couplings ---
    int hidden = 256;                                 ///< conditioner hidden width
    int hidden_layers = 2;                            ///< hidden layers of an MLP conditioner
    CouplingNet net = CouplingNet::separate;          ///< separate (RealNVP) or shared (Glow) nets
    CouplingScale scale = CouplingScale::model_default;  ///< tanh (RealNVP) or sigmoid(h+2) (Glow's default)
    MaskKind mask = MaskKind::alternating;            ///< mask pattern of vector couplings
    std::vector<std::vector<int>> masks{};            ///< MaskKind::custom: 0/1 per feature, used in turn
    bool zero_init_output = true;                     ///< start couplings at the identity

    // --- permutations ---
    PermuteKind permute = PermuteKind::reverse;

    // --- initialisation ---
    std::uint64_t seed = 0;  ///< seeds random initialisation (weights, rotations, shuffles)

    // --- training memory ---
    /// false: forward keeps every intermediate activation for backward (fastest).
    /// true: composites (Chain, Stack, multi-scale models) keep none; backward recomputes each
    /// element's input from its output through `inverse` (openai/glow's memory-saving mode), so
    /// activation memory does not grow with depth. Gradients agree to float round-off.
    bool memory_saving = false;
};

/// State threaded through the construction of one model.
class BuildContext {
public:
    explicit BuildContext(const Options& options) : options_(options) {}

    const Options& options() const { return options_; }

    /// Returns how many recipes of this kind were built before, then counts this one.
    int next_index(std::string_view kind) { return counters_[std::string(kind)]++; }

private:
    Options options_;
    std::map<std::string, int> counters_;
};

}  // namespace bijou
