// bench_models --device cuda: the harness on the Cuda backend.
#include <cuda_runtime.h>

#include <bijou/cuda.cuh>

#include "bench_models.hpp"

namespace bench {
template <>
double device_used_mb<bijou::Cuda>() {
    bijou::cuda::synchronize();
    std::size_t free = 0, total = 0;
    bijou::cuda::check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    return double(total - free) / 1e6;
}
}  // namespace bench

int bench_models_cuda(const bench::Args& a) {
    bijou::cuda::require_device("bench_models --device cuda");
    return bench::run_models<bijou::Cuda>(a);
}
