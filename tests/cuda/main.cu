// The CUDA test executable's main: without a usable GPU it prints why and exits with 77, which CTest
// reports as "skipped" (SKIP_RETURN_CODE), never as a failure.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include <bijou/cuda.cuh>

int main(int argc, char** argv) {
    const std::string why = bijou::cuda::unavailable_reason();
    if (!why.empty()) {
        std::printf("CUDA: skipped, no usable GPU (%s)\n", why.c_str());
        return 77;
    }
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
        std::printf("CUDA device 0: %s (sm_%d%d, %.1f GiB)\n", prop.name, prop.major, prop.minor,
                    double(prop.totalGlobalMem) / double(1 << 30));
    doctest::Context context(argc, argv);
    return context.run();
}
