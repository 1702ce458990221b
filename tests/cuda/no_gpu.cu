// Without a usable GPU, the Cuda backend says so with a bijou::cuda_error (a bijou::error) naming what
// needed the device, instead of crashing. On a machine with a GPU this test has nothing to check and
// exits with 77 (CTest: skipped).
#include <cstdio>
#include <string>

#include <bijou/cuda.cuh>

int main() {
    const std::string why = bijou::cuda::unavailable_reason();
    if (why.empty()) {
        std::printf("a CUDA device is usable here: nothing to check\n");
        return 77;
    }
    std::printf("no usable GPU: %s\n", why.c_str());
    int failures = 0;
    auto expect_error = [&](const char* what, auto&& f) {
        try {
            f();
            std::printf("FAIL: %s did not throw\n", what);
            ++failures;
        } catch (const bijou::cuda_error& e) {
            const std::string msg = e.what();
            const bool ok = msg.find("needs a CUDA device") != std::string::npos && msg.find(why) != std::string::npos;
            std::printf("%s: %s: %s\n", ok ? "ok" : "FAIL (message)", what, e.what());
            failures += ok ? 0 : 1;
        }
    };
    expect_error("DeviceBuffer<float>(16)", [] { bijou::cuda::DeviceBuffer<float> b(16); });
    expect_error("require_device", [] { bijou::cuda::require_device("bijou::Glow<..., bijou::Cuda>"); });
    if (bijou::cuda::device_available()) ++failures;
    bijou::cuda::DeviceBuffer<float> empty(0);  // nothing to allocate: no device needed
    if (empty.data() != nullptr) ++failures;
    std::printf("%s\n", failures ? "FAILED" : "passed");
    return failures ? 1 : 0;
}
