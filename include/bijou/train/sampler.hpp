// bijou/train/sampler.hpp — the order in which a training loop visits its data: every index once per
// epoch, epoch after epoch, and the rows of a batch gathered into a tensor the caller allocated once.
//
// EpochSampler(n, {seed, epoch, cursor}, order = EpochOrder::keyed): epoch e visits a permutation of
//   [0, n) that depends only on (seed, e); next() returns the index at the cursor and advances it,
//   starting the next epoch when the current one is used up (lazily: after the last index of an
//   epoch, state() still names that epoch with cursor == n). A batch may straddle two epochs.
//   Each epoch is a Fisher–Yates shuffle (for k = n−1 … 1: swap(π[k], π[Rng.below(k + 1)])):
//     EpochOrder::keyed      of the identity, with Rng(seed · 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019 · (e + 1))
//                            (as torch's DistributedSampler draws each epoch from its own seed).
//                            Constructing at epoch e costs O(n).
//     EpochOrder::continued  of the previous epoch's order, with one Rng(seed) that runs on across
//                            epochs (as one seeded generator in a plain loop). Constructing at epoch e
//                            replays the e + 1 shuffles, O((e + 1)·n).
// next_batch(data, batch, context, context_batch) does the same for a conditional model's pairs (one
// index per row for both). state() = {seed, epoch, cursor} is everything a checkpoint needs: EpochSampler(n, state(), order)
//   continues exactly where this one is.
// next_batch(data, batch) fills batch with the rows data[next()], data[next()], … of
//   data: (n, ...) and batch: (rows, ...), any rank and element type (vectors (N, D), images
//   (N, C, H, W) as uint8 or float); their shapes must agree after the first axis.
// gather_rows(data, indices, out): out[k] = data[indices[k]] for an arbitrary list of rows.
// Cost: next() is O(1), plus O(n) at the start of an epoch; gathering copies the rows and nothing
// else. Nothing allocates after construction (the permutation is allocated once, of n indices).
// Errors: n = 0, an epoch < 0 or a cursor > n throw bijou::invalid_argument; mismatched shapes throw
// bijou::shape_error and a row index out of range bijou::invalid_argument, each naming the values.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "bijou/core/error.hpp"
#include "bijou/core/random.hpp"

namespace bijou {

/// How an epoch's permutation is drawn (see the top of this header).
enum class EpochOrder {
    keyed,     ///< a fresh shuffle per epoch, from a stream keyed on (seed, epoch)
    continued  ///< each epoch reshuffles the previous one, from one stream over the whole run
};

/// Where a sampler is: what a checkpoint saves to resume the data order.
struct SamplerState {
    std::uint64_t seed = 0;
    long epoch = 0;
    std::size_t cursor = 0;  ///< indices of `epoch` already visited, 0..n
};

namespace detail {

inline std::string shape_str(const auto& shape) {
    std::string s = "(";
    for (std::size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
    return s + ")";
}

/// data: (n, ...) and out: (rows, ...) must agree after the first axis; returns the size of one row.
template <class T, std::size_t R>
std::size_t check_row_shapes(const char* who, const xt::xtensor<T, R>& data, const xt::xtensor<T, R>& out) {
    static_assert(R >= 1, "bijou: rows are taken along the first axis, so a tensor needs one");
    if (!std::equal(data.shape().begin() + 1, data.shape().end(), out.shape().begin() + 1))
        throw shape_error(std::string(who) + ": data " + shape_str(data.shape()) + " and batch " +
                          shape_str(out.shape()) + " must agree after the first axis");
    std::size_t row = 1;
    for (std::size_t k = 1; k < R; ++k) row *= data.shape()[k];
    return row;
}

}  // namespace detail

/// out[k] = data[indices[k]] along the first axis; out must already hold indices.size() rows.
template <class T, std::size_t R>
void gather_rows(const xt::xtensor<T, R>& data, std::span<const std::size_t> indices, xt::xtensor<T, R>& out) {
    const std::size_t row = detail::check_row_shapes("gather_rows", data, out);
    if (out.shape()[0] != indices.size())
        throw shape_error("gather_rows: " + std::to_string(indices.size()) + " indices but the output " +
                          detail::shape_str(out.shape()) + " has room for " + std::to_string(out.shape()[0]) + " rows");
    for (std::size_t k = 0; k < indices.size(); ++k) {
        if (indices[k] >= data.shape()[0])
            throw invalid_argument("gather_rows: index " + std::to_string(indices[k]) + " (entry " + std::to_string(k) +
                                   ") is outside the data's " + std::to_string(data.shape()[0]) + " rows");
        std::copy_n(data.data() + indices[k] * row, row, out.data() + k * row);
    }
}

/// Every index of [0, n) once per epoch, in an order that depends only on (seed, epoch).
class EpochSampler {
public:
    EpochSampler(std::size_t n, SamplerState start = {}, EpochOrder order = EpochOrder::keyed)
        : kind_(order), state_(start), rng_(start.seed) {
        if (n == 0) throw invalid_argument("EpochSampler: n = 0; there is nothing to sample");
        if (start.epoch < 0)
            throw invalid_argument("EpochSampler: epoch = " + std::to_string(start.epoch) + " must be >= 0");
        if (start.cursor > n)
            throw invalid_argument("EpochSampler: cursor = " + std::to_string(start.cursor) +
                                   " is past the end of an epoch of " + std::to_string(n) + " indices");
        order_.resize(n);
        std::iota(order_.begin(), order_.end(), std::size_t(0));  // continued: epoch 0 shuffles the identity
        for (long e = kind_ == EpochOrder::keyed ? state_.epoch : 0; e <= state_.epoch; ++e) shuffle_epoch(e);
    }

    /// The index at the cursor; advances it, starting the next epoch first if this one is used up.
    std::size_t next() {
        if (state_.cursor == order_.size()) {
            ++state_.epoch;
            state_.cursor = 0;
            shuffle_epoch(state_.epoch);
        }
        return order_[state_.cursor++];
    }

    /// batch[i] = data[next()] for every row i of batch (see the top of this header).
    template <class T, std::size_t R>
    void next_batch(const xt::xtensor<T, R>& data, xt::xtensor<T, R>& batch) {
        const std::size_t row = detail::check_row_shapes("EpochSampler::next_batch", data, batch);
        if (data.shape()[0] != order_.size())
            throw shape_error("EpochSampler::next_batch: data " + detail::shape_str(data.shape()) + " has " +
                              std::to_string(data.shape()[0]) + " rows, but the sampler was built for " +
                              std::to_string(order_.size()));
        for (std::size_t i = 0; i < batch.shape()[0]; ++i)
            std::copy_n(data.data() + next() * row, row, batch.data() + i * row);
    }

    /// The same for paired arrays (data and its contexts or labels): row i of batch and of
    /// context_batch both come from the same index, data[next()] and context[that index].
    template <class T, std::size_t R, std::size_t Rc>
    void next_batch(const xt::xtensor<T, R>& data, xt::xtensor<T, R>& batch, const xt::xtensor<T, Rc>& context,
                    xt::xtensor<T, Rc>& context_batch) {
        const std::size_t row = detail::check_row_shapes("EpochSampler::next_batch", data, batch);
        const std::size_t crow = detail::check_row_shapes("EpochSampler::next_batch (context)", context, context_batch);
        if (data.shape()[0] != order_.size() || context.shape()[0] != order_.size())
            throw shape_error("EpochSampler::next_batch: data " + detail::shape_str(data.shape()) + " and context " +
                              detail::shape_str(context.shape()) + " must both have " + std::to_string(order_.size()) +
                              " rows (the sampler's size)");
        if (context_batch.shape()[0] != batch.shape()[0])
            throw shape_error("EpochSampler::next_batch: the batch has " + std::to_string(batch.shape()[0]) +
                              " rows but the context batch " + std::to_string(context_batch.shape()[0]));
        for (std::size_t i = 0; i < batch.shape()[0]; ++i) {
            const std::size_t k = next();
            std::copy_n(data.data() + k * row, row, batch.data() + i * row);
            std::copy_n(context.data() + k * crow, crow, context_batch.data() + i * crow);
        }
    }

    SamplerState state() const { return state_; }
    long epoch() const { return state_.epoch; }
    std::size_t cursor() const { return state_.cursor; }
    std::size_t size() const { return order_.size(); }
    /// The current epoch's permutation.
    std::span<const std::size_t> order() const { return order_; }

private:
    void shuffle_epoch(long e) {
        if (kind_ == EpochOrder::keyed) {
            std::iota(order_.begin(), order_.end(), std::size_t(0));
            rng_ = Rng(state_.seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull * std::uint64_t(e + 1));
        }
        for (std::size_t k = order_.size() - 1; k > 0; --k) std::swap(order_[k], order_[rng_.below(k + 1)]);
    }

    EpochOrder kind_;
    SamplerState state_;
    Rng rng_;  // keyed: reseeded per epoch; continued: one stream from Rng(seed)
    std::vector<std::size_t> order_;
};

}  // namespace bijou
