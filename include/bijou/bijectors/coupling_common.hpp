// bijou/bijectors/coupling_common.hpp — what every coupling shares: its kind, its options, the image
// mask policies and the bound type's primary template (the vector form is in coupling_vector.hpp,
// the image form in coupling_image.hpp, the recipes in coupling.hpp).
//
// CouplingOptions, read by every coupling recipe at construction (ctx.options().get<CouplingOptions>();
// set with Options::with, core/options.hpp). The conditioner's width and depth are the model's
// Options::hidden and Options::hidden_layers.
//   net               CouplingNet::separate (RealNVP: shift and log-scale nets) or shared (one net
//                     giving [t | h]); vector affine couplings only (image couplings have one net)
//   scale             CouplingScale::model_default (sigmoid in Glow, tanh elsewhere), tanh or sigmoid
//   mask, masks       vector couplings' masks: alternating, half, or custom (masks[k % size])
//   zero_init_output  start with zero output layers (tanh and additive couplings start as identity)
// The settings a bound coupling records for checkpoints (ParamSet::add_setting) are the ones that change
// what its tensors mean: kind, scale (affine), net (vector affine), hidden, hidden_layers (vector),
// mask_policy (image: channel or checkerboard). A mask itself is a buffer.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "bijou/core/concepts.hpp"
#include "bijou/core/workspace.hpp"  // kept_size: where a coupling's plain forms put its scratch
#include "bijou/kernels/coupling_scale.hpp"

namespace bijou {

/// What a coupling does to its transformed half.
enum class CouplingKind {
    affine,    ///< scale and shift (RealNVP, Glow)
    additive,  ///< shift only, volume preserving (NICE)
};

/// Conditioner network layout of a vector coupling.
enum class CouplingNet {
    separate,  ///< classic RealNVP: one net for the shift t, another for the log-scale
    shared,    ///< Glow: one net whose output is split into (shift, scale) halves
};

/// Which coordinates a vector coupling keeps (mask = 1) and which it transforms (mask = 0).
enum class MaskKind {
    alternating,  ///< keep i with (i + k) even for the k-th coupling; flips every coupling
    half,         ///< keep the first half on even k, the second half on odd k
    custom,       ///< CouplingOptions::masks[k % masks.size()]
};

/// The options of every coupling recipe (see the contract above).
struct CouplingOptions {
    CouplingNet net = CouplingNet::separate;             ///< separate (RealNVP) or shared (Glow) nets
    CouplingScale scale = CouplingScale::model_default;  ///< tanh (RealNVP) or sigmoid(h+2) (Glow's default)
    MaskKind mask = MaskKind::alternating;               ///< mask pattern of vector couplings
    std::vector<std::vector<int>> masks{};               ///< MaskKind::custom: 0/1 per feature, used in turn
    bool zero_init_output = true;                        ///< start couplings at the identity
};

/// Options with a model's default scale: CouplingOptions::scale's model_default becomes `model_scale`.
inline Options with_model_scale(const Options& o, CouplingScale model_scale) {
    CouplingOptions c = o.get<CouplingOptions>();
    c.scale = resolve_scale(c.scale, model_scale);
    return o.with(std::move(c));
}

/// Names of the enums' values, as settings and checkpoints write them.
constexpr std::string_view setting_name(CouplingKind v) { return v == CouplingKind::affine ? "affine" : "additive"; }
constexpr std::string_view setting_name(CouplingNet v) { return v == CouplingNet::shared ? "shared" : "separate"; }
constexpr std::string_view setting_name(CouplingScale v) {
    return v == CouplingScale::tanh ? "tanh" : v == CouplingScale::sigmoid ? "sigmoid" : "model_default";
}
constexpr std::string_view setting_name(MaskKind v) {
    return v == MaskKind::alternating ? "alternating" : v == MaskKind::half ? "half" : "custom";
}

namespace detail {

/// Throws invalid_argument naming the coupling if the conditioner would be empty.
inline void check_conditioner_size(const std::string& who, int hidden, int hidden_layers) {
    if (hidden < 1)
        throw invalid_argument(who + ": Options::hidden must be at least 1 (got " + std::to_string(hidden) + ")");
    if (hidden_layers < 1)
        throw invalid_argument(who + ": Options::hidden_layers must be at least 1 (got " + std::to_string(hidden_layers) +
                               ")");
}

/// The scale an affine coupling uses (model_default outside a model: tanh); throws on an unknown value.
inline CouplingScale checked_scale(const std::string& who, CouplingScale requested) {
    const CouplingScale s = resolve_scale(requested);
    if (s != CouplingScale::tanh && s != CouplingScale::sigmoid)
        throw invalid_argument(who + ": unknown CouplingOptions::scale value " + std::to_string(int(requested)));
    return s;
}

/// The k-th coupling's mask over D features (1 = kept); throws invalid_argument if CouplingOptions ask for
/// an invalid one.
inline std::vector<int> coupling_mask(const CouplingOptions& o, int k, int D) {
    std::vector<int> m(std::size_t(D), 0);
    const std::string who = "coupling " + std::to_string(k);
    switch (o.mask) {
    case MaskKind::alternating:
        for (int i = 0; i < D; ++i) m[std::size_t(i)] = (i + k) % 2 == 0;
        return m;
    case MaskKind::half:
        for (int i = 0; i < D; ++i) m[std::size_t(i)] = (k % 2 == 0) == (i < D / 2);
        return m;
    case MaskKind::custom: {
        if (o.masks.empty())
            throw invalid_argument(who + ": CouplingOptions::mask is MaskKind::custom but CouplingOptions::masks is empty");
        const std::size_t c = std::size_t(k) % o.masks.size();
        const std::vector<int>& src = o.masks[c];
        const std::string where = who + " (CouplingOptions::masks[" + std::to_string(c) + "])";
        if (src.size() != std::size_t(D))
            throw invalid_argument(where + ": mask has length " + std::to_string(src.size()) +
                                   ", expected the event size " + std::to_string(D));
        int kept = 0;
        for (std::size_t i = 0; i < src.size(); ++i) {
            if (src[i] != 0 && src[i] != 1)
                throw invalid_argument(where + ": mask value at position " + std::to_string(i) + " is " +
                                       std::to_string(src[i]) + "; values must be 0 (transformed) or 1 (kept)");
            kept += src[i];
        }
        if (kept == 0) throw invalid_argument(where + ": mask keeps no feature (needs at least one 1)");
        if (kept == D) throw invalid_argument(where + ": mask transforms no feature (needs at least one 0)");
        return src;
    }
    }
    throw invalid_argument(who + ": unknown CouplingOptions::mask value " + std::to_string(int(o.mask)));
}

}  // namespace detail

/// Image mask policy (coupling_image.hpp): keep the first C/2 channels, transform the last C/2
/// (Glow). The default policy; vector couplings take their masks from CouplingOptions instead.
struct ChannelMask {
    template <class S>
    static constexpr bool accepts = ImageShape<S> && S::dims[0] % 2 == 0;
    static constexpr int cond_channels(int C) { return C / 2; }       ///< conditioner input channels
    static constexpr int first_transformed(int C) { return C / 2; }   ///< first transformed channel
    static constexpr int transformed_channels(int C) { return C / 2; }
    static constexpr bool pixel_mask = false;
};

/// Image mask policy (coupling_image.hpp): the k-th coupling keeps (c, h, w) iff (h + w + k) is
/// even (RealNVP's checkerboard), all channels alike.
struct CheckerboardMask {
    template <class S>
    static constexpr bool accepts = [] {
        if constexpr (ImageShape<S>) return S::dims[1] * S::dims[2] >= 2;
        else return false;  // S::dims[1] does not exist
    }();
    static constexpr int cond_channels(int C) { return C; }
    static constexpr int first_transformed(int) { return 0; }
    static constexpr int transformed_channels(int C) { return C; }
    static constexpr bool pixel_mask = true;
    static constexpr bool kept(int h, int w, int k) { return (h + w + k) % 2 == 0; }
};

/// A bound coupling; the primary template is only declared: each event rank gets a specialization.
/// Mask is the image mask policy (ignored, and left at its default, for vectors); Ctx the context
/// shape of a conditional coupling (void: unconditional; core/context.hpp).
template <CouplingKind Kind, class S, class T, class B, class Mask = ChannelMask, class Ctx = void>
class CouplingBijector;

}  // namespace bijou
