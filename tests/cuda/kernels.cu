// The Cuda backend's kernels on the GPU against Reference (tests/cuda/kernel_checks.hpp): inputs and
// outputs in CUDA managed memory, so the same checks read them on the host after a synchronize.
#include <doctest/doctest.h>

#include <cstddef>
#include <new>
#include <vector>

#include <bijou/cuda.cuh>

#include "cuda/kernel_checks.hpp"

using namespace bijou;
using namespace bijou::test_cuda;

namespace {

/// std::allocator's interface over cudaMallocManaged: memory that both the host and the device read.
template <class T>
struct ManagedAllocator {
    using value_type = T;
    ManagedAllocator() = default;
    template <class U>
    ManagedAllocator(const ManagedAllocator<U>&) {}
    T* allocate(std::size_t n) {
        void* p = nullptr;
        cuda::check(cudaMallocManaged(&p, (n ? n : 1) * sizeof(T)), "cudaMallocManaged");
        return static_cast<T*>(p);
    }
    void deallocate(T* p, std::size_t) { (void)cudaFree(p); }
    template <class U>
    bool operator==(const ManagedAllocator<U>&) const {
        return true;
    }
};

struct OnDevice {
    using backend = Cuda;
    template <class T>
    using vec = std::vector<T, ManagedAllocator<T>>;
    static void sync() { cuda::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }
};

}  // namespace

TEST_CASE_TEMPLATE("cuda: ActNorm kernels equal Reference", T, float, double) { check_actnorm<OnDevice, T>(); }
TEST_CASE_TEMPLATE("cuda: vector coupling kernels equal Reference", T, float, double) {
    check_vector_coupling<OnDevice, T>();
}
TEST_CASE_TEMPLATE("cuda: image coupling kernels equal Reference", T, float, double) {
    check_image_coupling<OnDevice, T>();
}
TEST_CASE_TEMPLATE("cuda: rational-quadratic spline kernels equal Reference", T, float, double) {
    check_spline<OnDevice, T>();
}
TEST_CASE_TEMPLATE("cuda: masked-MLP and autoregressive kernels equal Reference", T, float, double) {
    check_autoregressive_kernels<OnDevice, T>();
}
TEST_CASE_TEMPLATE("cuda: convolution (im2col, chunks, bias, ReLU) equals Reference", T, float, double) {
    check_conv2d<OnDevice, T>();
}
TEST_CASE_TEMPLATE("cuda: layout, 1x1 maps, permutations, MLP parts and Squeeze equal Reference", T, float, double) {
    check_layers<OnDevice, T>();
}

TEST_CASE("cuda: DeviceBuffer round trip and size checks") {
    std::vector<float> h(1000);
    for (std::size_t i = 0; i < h.size(); ++i) h[i] = float(i) * 0.5f;
    cuda::DeviceBuffer<float> d(h.size());
    d.upload(h.data(), h.size());
    std::vector<float> back(h.size(), -1.f);
    d.download(back.data(), back.size());
    CHECK(back == h);
    CHECK_THROWS_AS(d.upload(h.data(), h.size() + 1), invalid_argument);
}
