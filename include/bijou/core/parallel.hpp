// bijou/core/parallel.hpp — the Cpu backend's one way of splitting a loop across threads.
//
// parallel_for(n, worth_it, f) calls f(i) for i in [0, n): across the OpenMP threads with a static
// schedule (fixed contiguous blocks, so results are repeatable for a given thread count) when
// `worth_it` is true, more than one thread is available and we are not already inside a parallel
// region; as a plain loop otherwise. The plain path never enters the OpenMP runtime: libgomp
// allocates a team even for a region whose if() clause is false, and a training step must not
// allocate. Without OpenMP it is always the plain loop.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace bijou::detail {

template <class Index, class F>
void parallel_for(Index n, bool worth_it, F&& f) {
#if defined(_OPENMP)
    if (worth_it && n > 1 && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
        for (Index i = 0; i < n; ++i) f(i);
        return;
    }
#else
    (void)worth_it;
#endif
    for (Index i = 0; i < n; ++i) f(i);
}

}  // namespace bijou::detail
