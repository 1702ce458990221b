// Unit tests of examples/toy_density/toy_data.hpp: the data sets are the densities the docs state (the
// checkerboard uniform on its 8 squares, the 8 Gaussians at their centres), reproducible from a seed.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "toy_density/toy_data.hpp"

namespace unit_toy_data {  // the file's own namespace (unity build: tests/CMakeLists.txt)

TEST_CASE("toy data: the checkerboard is uniform on 8 alternating 2x2 squares of [-4, 4]^2 (entropy ln 32)") {
    const auto x = toy::make("checkerboard", 80000, 3);
    int counts[4][4] = {};
    for (std::size_t i = 0; i < x.shape(0); ++i) {
        const double a = x(i, 0), b = x(i, 1);
        REQUIRE(a >= -4.0);
        REQUIRE(a < 4.0);
        REQUIRE(b >= -4.0);
        REQUIRE(b < 4.0);
        const int cx = int(std::floor((a + 4) / 2)), cy = int(std::floor((b + 4) / 2));
        ++counts[cx][cy];
    }
    for (int cx = 0; cx < 4; ++cx)
        for (int cy = 0; cy < 4; ++cy) {
            INFO("square " << cx << ", " << cy);
            if ((cx + cy) % 2 == 1) CHECK(counts[cx][cy] == 0);
            else CHECK(std::abs(counts[cx][cy] - 10000) < 400);  // 8 squares share the points equally
        }
    CHECK(toy::checkerboard_entropy == doctest::Approx(3.4657).epsilon(1e-4));
}

TEST_CASE("toy data: every set is reproducible from its seed, and an unknown name is a clear error") {
    for (const auto& name : toy::toy_names) {
        const auto a = toy::make(name, 100, 7), b = toy::make(name, 100, 7), c = toy::make(name, 100, 8);
        CHECK(a == b);
        CHECK(a != c);
        for (float v : a) CHECK(std::isfinite(v));
    }
    try {
        toy::make("rings", 10, 1);
        FAIL("no error");
    } catch (const bijou::invalid_argument& e) {
        CHECK(std::string(e.what()).find("unknown data set 'rings' (one of moons, circles, checkerboard") != std::string::npos);
    }
}

TEST_CASE("toy data: the 8 Gaussians' log-density integrates to 1 and peaks at the centres") {
    double mass = 0.0;  // Riemann sum over [-6, 6]^2
    const double h = 0.02;
    for (double x = -6; x < 6; x += h)
        for (double y = -6; y < 6; y += h) mass += std::exp(toy::eight_gaussians_log_density(x + h / 2, y + h / 2)) * h * h;
    CHECK(mass == doctest::Approx(1.0).epsilon(1e-3));
    const double r = 4.0 / 1.414;
    CHECK(toy::eight_gaussians_log_density(r, 0) > toy::eight_gaussians_log_density(r / 2, 0));
}

}  // namespace unit_toy_data
