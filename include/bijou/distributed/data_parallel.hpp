// bijou/distributed/data_parallel.hpp — data-parallel training over a Communicator (communicator.hpp):
// every process holds the whole model and computes the loss and gradient of its shard of the global
// batch; one all-reduce sums the gradients; every process takes the same optimizer step.
//
// DataParallel dp(comm):
//   shard(n)                 this rank's rows [begin, end) of a global batch of n rows: contiguous,
//                            the first n % size ranks hold ⌈n/size⌉ rows, the others ⌊n/size⌋
//                            (invalid_argument when n < size: every rank needs a row)
//   broadcast_parameters(m)  rank 0's parameter values and buffers to every rank (call it after
//                            building the model, so that every rank starts from rank 0's init)
//   initialize(m, x[, c])    m.initialize on this rank's shard of the initialisation batch, with
//                            ActNorm's batch statistics summed over the ranks (core/statistics_
//                            reducer.hpp): the initialisation of the whole batch (each shard needs 2
//                            rows; if one has fewer, every rank throws invalid_argument)
//   train_step(m, opt, x[, c], n, cfg, step[, on_skip])
//                            train_step (train/trainer.hpp) of the global batch of n rows of which x
//                            is this rank's shard: the local mean NLL's gradient is weighted by
//                            rows/n and summed over the ranks in place (one all-reduce of the flat
//                            gradient buffer), the loss likewise (one all-reduce of two doubles), then
//                            the guarded update: the global gradient norm, clipping to it, the skip of
//                            a non-finite step, the optimizer step. Every rank sees the same summed
//                            bytes, so every rank takes the same step and the same decision to skip.
//                            A rank may hold no rows (it adds zeros). Ranks that pass different n, or
//                            shards that do not add up to n, make every rank throw distributed_error.
//   check_in_sync(m)         throws distributed_error unless every rank's parameters and buffers are
//                            rank 0's, bit for bit (a hash of them: one broadcast, one all-reduce)
//   allreduce_seconds()      wall time of the gradient all-reduces so far (how much of a step it is)
//
// Contract: N ranks with a global batch of n rows compute what one process computes on the n rows,
// up to the order of float additions: the gradient sums of the shards are added across ranks rather
// than inside one batch (tests/distributed: parameters after 20 steps with 1, 2 and 3 ranks). With one
// rank (or a LocalCommunicator) train_step is train_step, bit for bit: nothing is scaled or reduced.
// The data order and the random streams are the caller's: every rank draws the same global batch and
// keeps the rows of its shard (examples/mnist_glow does so, noise included).
// Host backends only (Reference, Cpu): the all-reduce reads the gradients in host memory.
// Errors: a collective that fails, or a check above, throws on every rank. An exception that only one
// rank sees (a bad file, a shape error in its shard) must end the job (MpiWorld::abort), or the other
// ranks wait for it in the next collective.
// Cost per step: 2·(N−1)/N × the gradient bytes over the network (a ring all-reduce), no allocation.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>

#include "bijou/core/error.hpp"
#include "bijou/core/statistics_reducer.hpp"
#include "bijou/distributed/communicator.hpp"
#include "bijou/train/trainer.hpp"

namespace bijou::distributed {

/// Rows [begin, end) of a global batch.
struct Shard {
    int begin = 0, end = 0;
    int size() const { return end - begin; }
};

template <Communicator Comm>
class DataParallel {
public:
    explicit DataParallel(Comm& comm) : comm_(&comm) {}

    int rank() const { return comm_->rank(); }
    int size() const { return comm_->size(); }
    bool root() const { return comm_->rank() == 0; }
    Comm& communicator() { return *comm_; }

    Shard shard(int n) const {
        const int p = size(), r = rank();
        if (n < p)
            throw invalid_argument("DataParallel: a global batch of " + std::to_string(n) + " rows cannot be split over " +
                                   std::to_string(p) + " processes (each needs at least one row)");
        const int q = n / p, extra = n % p;
        const int begin = r * q + std::min(r, extra);
        return {begin, begin + q + (r < extra ? 1 : 0)};
    }

    template <class Model>
    void broadcast_parameters(Model& model) {
        require_host<Model>();
        auto v = model.params().values();
        auto b = model.params().buffers();
        comm_->broadcast(v.data(), v.size(), 0);
        comm_->broadcast(b.data(), b.size(), 0);
    }

    template <class Model, class... Context>
    void initialize(Model& model, const typename Model::data_tensor& x_local, const Context&... c_local) {
        require_host<Model>();
        // Every rank learns whether any shard is too small, so all throw together rather than some
        // waiting in ActNorm's all-reduce for a rank that threw.
        double small = rows_of(x_local) < 2 ? 1.0 : 0.0;
        comm_->allreduce_sum(&small, 1);
        if (small > 0)
            throw invalid_argument("DataParallel::initialize: " + std::to_string(int(small)) + " of " +
                                   std::to_string(size()) + " processes hold fewer than 2 rows of the initialisation "
                                   "batch (this one " + std::to_string(rows_of(x_local)) + "); each needs at least 2");
        ScopedStatisticsReducer scope([this](std::span<double> v) { comm_->allreduce_sum(v.data(), v.size()); });
        model.initialize(x_local, c_local...);
    }

    template <TrainableModel Model, class Opt, class OnSkip = default_report_t>
        requires Optimizer<Opt, typename Model::scalar> && std::invocable<OnSkip&, const std::string&>
    StepReport train_step(Model& model, Opt& opt, const typename Model::data_tensor& x_local, int global_rows,
                          const TrainConfig& cfg, long step, OnSkip&& on_skip = OnSkip{}) {
        bijou::detail::check_train_config(cfg);
        const int rows = rows_of(x_local);
        const double loss = reduce(model, rows > 0 ? model.nll_and_gradient(x_local) : empty(model), rows, global_rows);
        return bijou::detail::guarded_update(model, opt, loss, cfg, step, on_skip);
    }

    template <ConditionalTrainableModel Model, class Opt, class OnSkip = default_report_t>
        requires Optimizer<Opt, typename Model::scalar> && std::invocable<OnSkip&, const std::string&>
    StepReport train_step(Model& model, Opt& opt, const typename Model::data_tensor& x_local,
                          const typename Model::context_tensor& c_local, int global_rows, const TrainConfig& cfg,
                          long step, OnSkip&& on_skip = OnSkip{}) {
        bijou::detail::check_train_config(cfg);
        const int rows = rows_of(x_local);
        const double loss =
            reduce(model, rows > 0 ? model.nll_and_gradient(x_local, c_local) : empty(model), rows, global_rows);
        return bijou::detail::guarded_update(model, opt, loss, cfg, step, on_skip);
    }

    template <class Model>
    void check_in_sync(const Model& model) {
        require_host<Model>();
        std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the bytes of the values, then the buffers
        auto mix = [&h](const auto& span) {
            const auto* p = reinterpret_cast<const unsigned char*>(span.data());
            for (std::size_t k = 0; k < span.size_bytes(); ++k) h = (h ^ p[k]) * 1099511628211ull;
        };
        mix(model.params().values());
        mix(model.params().buffers());
        std::uint64_t h0 = h;
        comm_->broadcast(reinterpret_cast<std::uint8_t*>(&h0), sizeof h0, 0);
        double differ = h0 == h ? 0.0 : 1.0;
        comm_->allreduce_sum(&differ, 1);
        if (differ > 0)
            throw distributed_error(std::to_string(int(differ)) + " of " + std::to_string(size()) +
                                    " processes hold parameters that differ from rank 0's (this is rank " +
                                    std::to_string(rank()) + (h0 == h ? ", which agrees" : ", which differs") + ")");
    }

    double allreduce_seconds() const { return allreduce_seconds_; }

private:
    template <class Model>
    static void require_host() {
        using B = typename bijou::detail::model_backend<Model>::type;
        static_assert(!ExecutorBackend<B>, "bijou::distributed: host backends only (Reference, Cpu): the all-reduce "
                                           "reads the gradients in host memory");
    }

    template <class Tensor>
    static int rows_of(const Tensor& x) {
        return x.dimension() == 0 ? 0 : int(x.shape()[0]);
    }

    /// A rank with no rows contributes nothing: zero gradients, loss 0 (its weight is 0).
    template <class Model>
    static double empty(Model& model) {
        model.zero_grad();
        return 0.0;
    }

    /// Sums the weighted local gradients and losses over the ranks; returns the global mean loss.
    template <class Model>
    double reduce(Model& model, double loss, int rows, int global_rows) {
        require_host<Model>();
        using B = typename bijou::detail::model_backend<Model>::type;
        if (size() == 1) {
            if (rows != global_rows)
                throw invalid_argument("DataParallel::train_step: one process holds " + std::to_string(rows) +
                                       " rows of a global batch of " + std::to_string(global_rows));
            return loss;
        }
        const auto t0 = std::chrono::steady_clock::now();
        const double w = double(rows) / double(global_rows);
        const std::span<typename Model::scalar> grad = model.gradients();
        kernels::scale(B{}, grad.data(), grad.size(), w);
        comm_->allreduce_sum(grad.data(), grad.size());
        // The loss, the rows, and Σ g and Σ g² of the ranks' global batch sizes g: all g are equal exactly
        // when Σ g = N·g and Σ g² = N·g² (zero variance), which then every rank sees, so that either
        // every rank throws or none does.
        const double g = global_rows, p = size();
        double sums[4] = {loss * w, double(rows), g, g * g};
        comm_->allreduce_sum(sums, 4);
        allreduce_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (sums[2] != p * g || sums[3] != p * g * g)
            throw distributed_error("DataParallel::train_step: the processes pass different global batch sizes (this one " +
                                    std::to_string(global_rows) + "; every rank must pass the same)");
        if (sums[1] != g)
            throw distributed_error("DataParallel::train_step: the processes' shards hold " +
                                    std::to_string(long(sums[1])) + " rows in all, not the global batch of " +
                                    std::to_string(global_rows));
        return sums[0];
    }

    Comm* comm_;
    double allreduce_seconds_ = 0.0;
};

}  // namespace bijou::distributed
