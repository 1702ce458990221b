// Bijectors and whole models on the GPU: the conformance suite on the Cuda backend (each bijector
// against Reference, round trips, log-dets against brute-force Jacobians and gradients against
// central differences in double), Glow against Reference, and checkpoints between Cuda and Cpu.
#include <doctest/doctest.h>

#include <filesystem>

#include <bijou/cuda.cuh>
#include <bijou/testing/conformance.hpp>

#include "cuda/model_checks.hpp"

using namespace bijou;

namespace {

template <class Recipe, class S, class T>
void conforms(const testing::Config& cfg = {}) {
    const auto rep = testing::conformance<Recipe, S, T, Cuda>(cfg);
    INFO(rep.str());
    CHECK(rep.ok());
    CHECK(rep.find("backend_forward") != nullptr);
}

testing::Config sigmoid() {
    testing::Config cfg;
    cfg.options = cfg.options.with(CouplingOptions{.scale = CouplingScale::sigmoid});
    return cfg;
}

using TinyGlow = MultiScale<2, Chain<Squeeze, Stack<Chain<ActNorm, InvConv1x1LU, AffineCoupling>>>>;

}  // namespace

TEST_CASE_TEMPLATE("cuda: conformance of the bijectors on the GPU", T, float, double) {
    conforms<ActNorm, Shape<5>, T>();
    conforms<ActNorm, Shape<3, 2, 2>, T>();
    conforms<InvConv1x1, Shape<4, 2, 3>, T>();
    conforms<InvConv1x1LU, Shape<4, 2, 3>, T>();
    conforms<Permute, Shape<4, 2, 3>, T>();
    conforms<AffineCoupling, Shape<5>, T>();
    conforms<AdditiveCoupling, Shape<3>, T>();
    conforms<AffineCoupling, Shape<4, 4, 4>, T>(sigmoid());
    conforms<AdditiveCoupling, Shape<2, 3, 5>, T>();
    conforms<CheckerboardAffineCoupling, Shape<4, 4, 4>, T>();
    conforms<Squeeze, Shape<2, 4, 6>, T>();
    conforms<Split, Shape<4, 3, 4>, T>();
    conforms<TopPrior, Shape<3, 2, 3>, T>();
    conforms<TinyGlow, Shape<1, 4, 4>, T>(sigmoid());
}

TEST_CASE_TEMPLATE("cuda: conformance of the spline and autoregressive flows on the GPU", T, float, double) {
    testing::Config cfg;
    cfg.options = cfg.options.with(SplineOptions{.bins = 4, .bound = 1.5});
    conforms<RationalQuadraticCoupling, Shape<3>, T>(cfg);
    conforms<RationalQuadraticCoupling, Shape<4, 2, 3>, T>(cfg);
    conforms<MaskedAutoregressive<RationalQuadraticTransform>, Shape<3>, T>(cfg);
    conforms<InverseAutoregressive<AffineTransform>, Shape<4>, T>(cfg);
}

TEST_CASE_TEMPLATE("cuda: Glow on the GPU equals Reference", T, float, double) {
    bijou::test_cuda::check_glow<Cuda, T, false>();
}

TEST_CASE("cuda: Glow in memory-saving mode on the GPU equals Reference") {
    bijou::test_cuda::check_glow<Cuda, double, true>();
}

TEST_CASE("cuda: checkpoints between Cuda and Cpu are byte-identical and interchangeable") {
    const auto dir = std::filesystem::temp_directory_path() / "bijou_cuda_ckpt";
    std::filesystem::create_directories(dir);
    bijou::test_cuda::check_checkpoint_round_trip<Cuda>(dir);
    std::filesystem::remove_all(dir);
}

TEST_CASE("cuda: RealNVP trains on the GPU with Adam<float, Cuda>") {
    RealNVP<Shape<2>, StandardNormal, float, Cuda> m(Options{.steps_per_level = 2, .hidden = 8});
    Adam<float, Cuda> adam(m.parameter_count());
    const auto x = two_moons<float>(64, 0.05, 1);
    double first = 0.0, last = 0.0;
    for (long step = 0; step < 50; ++step) {
        const auto r = train_step(m, adam, x, TrainConfig{.lr = 1e-2}, step);
        if (step == 0) first = r.loss;
        last = r.loss;
    }
    CHECK(last < first);
}
