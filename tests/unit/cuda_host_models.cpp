// Whole models on the CudaHost backend (the Cuda backend's code, run on the host with HostExec): the
// model layer's device path (parameters bound to the backend's copy, the API edge's staging buffers,
// log-dets and losses reduced by kernels) gives what Reference gives.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#if defined(__unix__)
#include <sys/wait.h>

#include <csignal>
#include <unistd.h>
#endif

#include <bijou/bijou.hpp>

#include "cuda/model_checks.hpp"

namespace unit_cuda_host_models {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
    REQUIRE(a.size() == b.size());
    double d = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(double(a.data()[i]) - double(b.data()[i])));
    return d;
}

xt::xtensor<double, 2> moons(int n, std::uint64_t seed) {
    const auto x = two_moons<double>(n, 0.05, seed);
    return x;
}

}  // namespace

TEST_CASE("cuda host: RealNVP on the CudaHost backend equals Reference") {
    Options o;
    o.steps_per_level = 4;
    o.hidden = 16;
    o.seed = 7;
    for (const bool memory_saving : {false, true}) {
        o.memory_saving = memory_saving;
        RealNVP<Shape<2>, StandardNormal, double, Reference> ref(o);
        RealNVP<Shape<2>, StandardNormal, double, CudaHost> dev(o);
        REQUIRE(ref.parameter_count() == dev.parameter_count());
        dev.to_host();  // backend memory is not readable on the host outside kernels (guarded pages)
        CHECK(max_abs_diff(dev.params().values(), ref.params().values()) == 0.0);

        const auto x = moons(37, 3);
        const auto mr = ref.forward(x);
        const auto md = dev.forward(x);
        CHECK(max_abs_diff(md.z, mr.z) <= 1e-12);
        CHECK(max_abs_diff(md.log_det, mr.log_det) <= 1e-12);
        const auto ir = ref.inverse(mr.z);
        const auto id = dev.inverse(mr.z);
        CHECK(max_abs_diff(id.x, ir.x) <= 1e-12);
        CHECK(max_abs_diff(dev.log_prob(x), ref.log_prob(x)) <= 1e-12);

        // A few Adam steps: losses and parameters stay equal.
        Adam<double> adam_r(ref.parameter_count());
        Adam<double, CudaHost> adam_d(dev.parameter_count());
        const TrainConfig cfg{.lr = 1e-2, .warmup = 0, .clip = 5.0};
        for (long step = 0; step < 5; ++step) {
            const auto rr = train_step(ref, adam_r, x, cfg, step);
            const auto rd = train_step(dev, adam_d, x, cfg, step);
            CHECK(std::abs(rd.loss - rr.loss) <= 1e-10);
            CHECK(std::abs(rd.grad_norm - rr.grad_norm) <= 1e-9);
        }
        Rng r1(11), r2(11);
        CHECK(max_abs_diff(dev.sample(9, 0.8, r2), ref.sample(9, 0.8, r1)) <= 1e-10);

        // params() is the host copy: to_host() brings the trained values back.
        dev.to_host();
        CHECK(max_abs_diff(dev.params().values(), ref.params().values()) <= 1e-10);
    }
}

TEST_CASE_TEMPLATE("cuda host: Glow on the CudaHost backend equals Reference", T, float, double) {
    bijou::test_cuda::check_glow<CudaHost, T, false>();
}
TEST_CASE("cuda host: Glow in memory-saving mode on the CudaHost backend equals Reference") {
    bijou::test_cuda::check_glow<CudaHost, double, true>();
}
TEST_CASE("cuda host: checkpoints between CudaHost and Cpu are byte-identical and interchangeable") {
    const auto dir = std::filesystem::temp_directory_path() / "bijou_cuda_host_ckpt";
    std::filesystem::create_directories(dir);
    bijou::test_cuda::check_checkpoint_round_trip<CudaHost>(dir);
    std::filesystem::remove_all(dir);
}

#if defined(__unix__)
TEST_CASE("cuda host: backend memory is guarded: a host access outside a kernel crashes") {
    Buffer<CudaHost, float> b(1000);
    fill(CudaHost{}, b.data(), b.size(), 2.0f);  // a kernel may write it
    float back = 0.0f;
    download(CudaHost{}, &back, b.data() + 999, 1);  // and a copy may read it
    CHECK(back == 2.0f);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        std::signal(SIGSEGV, SIG_DFL);  // not doctest's or a sanitizer's handler: die of the signal
        volatile float v = b.data()[0];  // the host may not: SIGSEGV
        (void)v;
        _exit(0);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGSEGV);
}
#endif

}  // namespace unit_cuda_host_models
