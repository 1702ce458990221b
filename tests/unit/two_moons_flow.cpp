// Whole-flow test: a seeded short RealNVP run on two moons must beat a fitted Gaussian by far.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include <bijou/bijou.hpp>

namespace unit_two_moons_flow {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

/// Mean held-out NLL (nats) of the maximum-likelihood full-covariance Gaussian.
double gaussian_nll(const xt::xtensor<double, 2>& train, const xt::xtensor<double, 2>& test) {
    const double n = double(train.shape(0));
    double m0 = 0, m1 = 0;
    for (std::size_t i = 0; i < train.shape(0); ++i) m0 += train(i, 0), m1 += train(i, 1);
    m0 /= n, m1 /= n;
    double a = 0, b = 0, c = 0;
    for (std::size_t i = 0; i < train.shape(0); ++i) {
        const double u = train(i, 0) - m0, v = train(i, 1) - m1;
        a += u * u, b += u * v, c += v * v;
    }
    a /= n, b /= n, c /= n;
    const double det = a * c - b * b;
    double nll = 0;
    for (std::size_t i = 0; i < test.shape(0); ++i) {
        const double u = test(i, 0) - m0, v = test(i, 1) - m1;
        const double q = (c * u * u - 2 * b * u * v + a * v * v) / det;
        nll += 0.5 * q + 0.5 * std::log(det) + std::log(2 * std::numbers::pi);
    }
    return nll / double(test.shape(0));
}

}  // namespace

TEST_CASE("two_moons data: sklearn construction and a fitted Gaussian scores 1.88 nats") {
    const auto train = two_moons<double>(50000, 0.05, 1);
    const auto test = two_moons<double>(10000, 0.05, 2);
    CHECK(train.shape(0) == 50000);
    double mx = 0, my = 0;
    for (std::size_t i = 0; i < train.shape(0); ++i) mx += train(i, 0), my += train(i, 1);
    CHECK(mx / 50000 == doctest::Approx(0.5).epsilon(0.01));   // the moons are symmetric about x = 0.5
    CHECK(my / 50000 == doctest::Approx(0.25).epsilon(0.02));  // and about y = 0.25
    CHECK(gaussian_nll(train, test) == doctest::Approx(1.88).epsilon(0.01));
    CHECK_THROWS_AS(two_moons<float>(1, 0.05, 0), invalid_argument);
}

TEST_CASE("whole flow: seeded RealNVP on two moons reaches <= 0.9 nats held-out") {
    Options o;
    o.steps_per_level = 6;
    o.hidden = 64;
    o.seed = 3;
    RealNVP<Shape<2>> model(o);
    Adam<float> adam(model.parameter_count());
    const auto train = two_moons<float>(20000, 0.05, 11);
    const auto test = two_moons<float>(4000, 0.05, 12);
    const int batch = 256, steps = 700;
    TrainConfig cfg{.lr = 3e-3, .warmup = 50, .clip = 50.0};
    xt::xtensor<float, 2> x = xt::zeros<float>({std::size_t(batch), std::size_t(2)});
    Rng rng(13);
    double first = 0.0;
    for (int step = 0; step < steps; ++step) {
        for (int i = 0; i < batch; ++i) {
            const std::size_t j = rng.below(train.shape(0));
            x(std::size_t(i), 0) = train(j, 0), x(std::size_t(i), 1) = train(j, 1);
        }
        const auto r = train_step(model, adam, x, cfg, step);
        REQUIRE_FALSE(r.skipped);
        if (step == 0) first = r.loss;
    }
    const auto lp = model.log_prob(test);
    double nll = 0.0;
    for (float v : lp) nll -= double(v);
    nll /= double(lp.size());
    MESSAGE("held-out NLL after " << steps << " steps: " << nll << " nats (first batch " << first << ")");
    CHECK(first > 1.5);
    CHECK(nll <= 0.9);
}

}  // namespace unit_two_moons_flow
