// bijou/bijectors/permute.hpp — a fixed permutation of features (vectors) or channels (images).
//
// Recipe `Permute` (state_dict name "permute"), bound to any Shape<D> or Shape<C, H, W>; with
// C = channels_of<S> (D for vectors) and HW = spatial_of<S> (1 for vectors), x, z: (n, C, HW):
//   forward  z[i, c, p] = x[i, perm[c], p]    (z = P·x per position, P[c, perm[c]] = 1)
//   inverse  x[i, perm[c], p] = z[i, c, p]    (x = Pᵀ·z)
//   log|det ∂z/∂x| = 0 in both directions.   backward: dx = Pᵀ·dz.   No trainable parameters.
// Options: PermuteOptions::kind (set with Options::with) — PermuteKind::reverse (perm[c] = C−1−c,
// the default) or PermuteKind::shuffle (a
// Fisher–Yates shuffle drawn from bijou::Rng seeded with detail::indexed_seed(Options::seed, k) (core/random.hpp), where k is
// this Permute's index among the Permutes of the model, ctx.next_index("permute")): each Permute of
// a model gets its own permutation and the model is reproducible from the seed. The Rng passed to
// reset_parameters is not used, so adding a Permute never shifts other recipes' random streams.
// The buffer is validated on the host (core/mirror.hpp): on a backend with memory of its own (Cuda)
// each call copies its C entries to the host and the C indices it uses back (two small copies).
// Setting "kind" (reverse or shuffle) is recorded for checkpoints.
// Buffer "perm" (C): the permutation as indices stored in T, kept by checkpoints; it is validated
// on every call and by load_checkpoint before it commits a file's values (ParamSet::add_check): a
// corrupt buffer raises bijou::error naming the tensor, never reads out of bounds.
// Cost O(n·C·HW) copies, no allocation (the validated indices live in a C-sized member).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "bijou/core/concepts.hpp"
#include "bijou/core/mirror.hpp"
#include "bijou/kernels/cpu/linear1x1.hpp"
#include "bijou/kernels/cuda/linear1x1.hpp"
#include "bijou/kernels/reference/linear1x1.hpp"

namespace bijou {

/// How a Permute orders the features (vectors) or channels (images).
enum class PermuteKind {
    reverse,  ///< reverse the order
    shuffle,  ///< a fixed random permutation drawn from Options::seed and the Permute's index
};

/// The options of the Permute recipe.
struct PermuteOptions {
    PermuteKind kind = PermuteKind::reverse;
};

/// The name of a PermuteKind, as settings and checkpoints write it.
constexpr std::string_view setting_name(PermuteKind v) { return v == PermuteKind::reverse ? "reverse" : "shuffle"; }

namespace detail {

/// Reads a permutation stored as T indices into `perm` and its inverse into `inv` (both C ints).
/// Throws bijou::error starting with `what` (e.g. "Permute buffer 'permute.perm'") unless buf
/// holds each of 0..C-1 exactly once.
template <class T>
void load_permutation(const T* buf, int C, int* perm, int* inv, const std::string& what) {
    std::fill(inv, inv + C, -1);
    for (int c = 0; c < C; ++c) {
        const T v = buf[c];
        const bool integral = std::isfinite(v) && v >= T(0) && v < T(C) && std::floor(v) == v;
        const int j = integral ? int(v) : -1;
        if (j < 0 || inv[j] != -1)
            throw error(what + " is not a permutation of 0.." + std::to_string(C - 1) + ": entry " +
                        std::to_string(c) + " is " + std::to_string(double(v)) +
                        (j >= 0 ? " (repeated)" : ""));
        perm[c] = j;
        inv[j] = c;
    }
}

}  // namespace detail

template <EventShape S, Scalar T, Backend B>
class PermuteBijector {
public:
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int C = channels_of<S>;
    static constexpr int HW = spatial_of<S>;

    explicit PermuteBijector(BuildContext& ctx)
        : init_(std::size_t(C)), perm_idx_(std::size_t(C)), inv_idx_(std::size_t(C)) {
        const int k = ctx.next_index("permute");
        std::iota(init_.begin(), init_.end(), 0);
        kind_ = ctx.options().get<PermuteOptions>().kind;
        switch (kind_) {
            case PermuteKind::reverse:
                std::reverse(init_.begin(), init_.end());
                break;
            case PermuteKind::shuffle: {
                Rng rng(detail::indexed_seed(ctx.options().seed, k));
                for (int i = C - 1; i > 0; --i) std::swap(init_[std::size_t(i)], init_[rng.below(std::uint64_t(i) + 1)]);
                break;
            }
            default:
                throw invalid_argument("Permute: unknown PermuteOptions::kind value " + std::to_string(int(kind_)));
        }
    }

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        const std::string key = join_name(prefix, "perm");
        label_ = "Permute buffer '" + key + "'";
        ps.add_buffer(key, {std::size_t(C)}, &perm_);
        ps.add_setting(join_name(prefix, "kind"), std::string(setting_name(kind_)));
        ps.add_check([key, label = label_](const StagedParams<T>& staged) {  // a checkpoint's, before it commits
            std::vector<int> p(static_cast<std::size_t>(C)), inv(p.size());
            detail::load_permutation(staged(key), C, p.data(), inv.data(), label);
        });
    }

    void reset_parameters(Rng&) {
        for (int c = 0; c < C; ++c) perm_[std::size_t(c)] = T(init_[std::size_t(c)]);
    }

    std::size_t workspace_size(int) const { return 0; }

    void forward(const T* x, T* z, double*, int n, T*) const {
        load();
        kernels::permute_channels(B{}, x, z, for_kernels(perm_idx_), n, C, HW);
    }

    void inverse(const T* z, T* x, double*, int n, T*) const {
        load();
        kernels::permute_channels(B{}, z, x, for_kernels(inv_idx_), n, C, HW);
    }

    void backward(const T*, const T*, const T* dz, const T*, T* dx, int n, T*) {
        load();
        kernels::permute_channels(B{}, dz, dx, for_kernels(inv_idx_), n, C, HW);  // dx = Pᵀ·dz
    }

    /// The permutation in use: z[c] = x[permutation()[c]].
    std::vector<int> permutation() const {
        load();
        return perm_idx_;
    }

private:
    // Validated every call (a checkpoint may have replaced the buffer); forward/inverse are const
    // by the Bijector contract, so the C-sized index arrays they fill are mutable scratch. This
    // makes concurrent calls on one bound object a data race, as the owning Flow's arena already does.
    void load() const {
        const auto host = mirror_.on_host(HostCopy::values, perm_);
        detail::load_permutation(perm_.value, C, perm_idx_.data(), inv_idx_.data(), label_);
    }
    // Validated indices where the kernels read them.
    const int* for_kernels(const std::vector<int>& idx) const { return idx_stage_.in(idx.data(), idx.size()); }

    mutable TensorRef<T> perm_;  // mutable: load() reads it through mirror_ (core/mirror.hpp)
    std::vector<int> init_;  // drawn at construction, written to the buffer by reset_parameters
    PermuteKind kind_ = PermuteKind::reverse;
    std::string label_;  // "Permute buffer '<state_dict key>'", for error messages
    mutable std::vector<int> perm_idx_, inv_idx_;
    mutable Mirror<B, T> mirror_;
    mutable BackendStage<B, int> idx_stage_;
};

/// Recipe: a fixed permutation of features / channels (PermuteOptions::kind: reverse or shuffle).
struct Permute {
    using options = PermuteOptions;
    static constexpr std::string_view name = "permute";
    template <class S, class T, class B>
    using bind = PermuteBijector<S, T, B>;
};

}  // namespace bijou
