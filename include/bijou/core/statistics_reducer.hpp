// bijou/core/statistics_reducer.hpp — how a data-dependent initialisation (ActNorm::initialize) sums
// its batch statistics over every process of a data-parallel job.
//
// ActNorm reduces its initialisation batch to per-channel sums (Σ x, Σ x², and the element count)
// before it turns them into a mean and a standard deviation. In one process those sums are the
// batch's. In a data-parallel job (bijou/distributed/) each process holds a shard of the global
// initialisation batch: the job installs a reducer for the duration of model.initialize()
// (ScopedStatisticsReducer), and ActNorm passes its sums through reduce_statistics(), which the
// reducer sums over the processes in place. Every process then initialises from the statistics of
// the whole batch, as one process given all of it would (up to the order of the float additions).
// With no reducer installed (the default) reduce_statistics does nothing. The reducer belongs to the
// thread that installs it (initialize runs its bijectors on the calling thread). No backend, no MPI.
#pragma once

#include <functional>
#include <span>
#include <utility>

namespace bijou {

/// Sums the values in place over every process of a job (bijou::distributed installs one).
using StatisticsReducer = std::function<void(std::span<double>)>;

namespace detail {
inline StatisticsReducer*& statistics_reducer() {
    thread_local StatisticsReducer* r = nullptr;
    return r;
}
}  // namespace detail

/// Sums `values` over the processes of the job when a reducer is installed; otherwise leaves them.
inline void reduce_statistics(std::span<double> values) {
    if (StatisticsReducer* r = detail::statistics_reducer()) (*r)(values);
}

/// Installs `reducer` on this thread for the lifetime of the object (then restores the previous one).
class ScopedStatisticsReducer {
public:
    explicit ScopedStatisticsReducer(StatisticsReducer reducer)
        : reducer_(std::move(reducer)), previous_(detail::statistics_reducer()) {
        detail::statistics_reducer() = &reducer_;
    }
    ~ScopedStatisticsReducer() { detail::statistics_reducer() = previous_; }
    ScopedStatisticsReducer(const ScopedStatisticsReducer&) = delete;
    ScopedStatisticsReducer& operator=(const ScopedStatisticsReducer&) = delete;

private:
    StatisticsReducer reducer_;
    StatisticsReducer* previous_;
};

}  // namespace bijou
