// two_moons --device cuda: the same program (run.hpp) on the Cuda backend.
#include <cstdio>

#include <bijou/cuda.cuh>

#include "two_moons/run.hpp"

int two_moons_run_cuda(const two_moons::Settings& s) {
    try {
        bijou::cuda::require_device("two_moons --device cuda");
    } catch (const bijou::error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return two_moons::run<bijou::Cuda>(s);
}
