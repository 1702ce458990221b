// bijou/core/options.hpp — a model's run-time settings: its own, and each recipe's.
//
// Shapes, scalar type and backend are compile-time; everything else a user may want to sweep is a
// run-time Options value. Options holds what belongs to the MODEL (depth K, the conditioner width
// that every recipe with a neural conditioner defaults to, the seed, the training memory mode) and,
// beside it, one options struct per recipe kind: a recipe defines its own (CouplingOptions in
// bijectors/coupling_options.hpp, PermuteOptions in bijectors/permute.hpp, or a user's recipe's),
// and reads it while it is built with ctx.options().get<ItsOptions>(). Nothing here lists a
// bijector's settings, so a new recipe adds its settings without editing this header:
//     Options o{.steps_per_level = 8, .hidden = 128};
//     o = o.with(CouplingOptions{.scale = CouplingScale::sigmoid});   // replaces an earlier one
//     o.get<CouplingOptions>()                                         // that value, or {} if none
// An options struct must be copyable; every recipe that reads the same struct sees the same value.
// BuildContext carries the Options and per-recipe counters while a model is being built, so that e.g.
// the k-th coupling knows it is the k-th (alternating masks) and the k-th Permute draws its own
// permutation; it also hands conditional elements the model's context slot (core/context.hpp). A bound bijector records the settings that change what its tensors mean with
// ParamSet::add_setting (core/params.hpp), so checkpoints keep and check them (io/checkpoint.hpp).
#pragma once

#include <any>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "bijou/core/context.hpp"
#include "bijou/core/error.hpp"
#include "bijou/core/simd_abi.hpp"

namespace bijou {

struct Options {
    // --- depth ---
    int steps_per_level = 8;  ///< K: copies of the Step a Stack<Step> makes (per level of a multi-scale
                              ///< model; a vector flow has one level)

    // --- conditioners (the default of every recipe with a neural conditioner) ---
    int hidden = 256;       ///< conditioner hidden width
    int hidden_layers = 2;  ///< hidden layers of an MLP conditioner

    // --- initialisation ---
    std::uint64_t seed = 0;  ///< seeds random initialisation (weights, rotations, shuffles)

    // --- training memory ---
    /// false: forward keeps every intermediate activation for backward (fastest).
    /// true: composites (Chain, Stack, multi-scale models) keep none; backward recomputes each
    /// element's input from its output through `inverse` (openai/glow's memory-saving mode), so
    /// activation memory does not grow with depth. Gradients agree to float round-off.
    bool memory_saving = false;

    // --- each recipe's own options (set with with(), read with get()) ---
    std::vector<std::any> recipe_options{};

    /// A copy of these Options with `o` as the value of its type (replacing an earlier one).
    template <class O>
    Options with(O o) const {
        static_assert(std::is_class_v<O> && std::is_copy_constructible_v<O>,
                      "bijou: a recipe's options are a copyable struct");
        Options r = *this;
        for (auto& a : r.recipe_options)
            if (a.type() == typeid(O)) {
                a = std::move(o);
                return r;
            }
        r.recipe_options.emplace_back(std::move(o));
        return r;
    }

    /// The value of options struct O given to with(), or a default-constructed O.
    template <class O>
    O get() const {
        for (const auto& a : recipe_options)
            if (const O* p = std::any_cast<O>(&a)) return *p;
        return O{};
    }
};

/// State threaded through the construction of one model.
class BuildContext {
public:
    /// Checks first that the program's files agree on Eigen's heap allocator (core/simd_abi.hpp).
    explicit BuildContext(const Options& options) : options_(options) { detail::check_simd_abi(); }

    const Options& options() const { return options_; }

    /// Returns how many recipes of this kind were built before, then counts this one.
    int next_index(std::string_view kind) { return counters_[std::string(kind)]++; }

    /// The model's context slot (core/context.hpp), made on first use: conditional elements keep a
    /// ContextRef<T> on it, and the model that owns them points it at each call's context.
    template <class T>
    ContextRef<T> context() {
        return ContextRef<T>(context_slot());
    }
    const std::shared_ptr<ContextSlot>& context_slot() {
        if (!slot_) slot_ = std::make_shared<ContextSlot>();
        return slot_;
    }

private:
    Options options_;
    std::map<std::string, int> counters_;
    std::shared_ptr<ContextSlot> slot_;
};

}  // namespace bijou
