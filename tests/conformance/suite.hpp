// tests/conformance/suite.hpp — runs bijou::testing::conformance over {float, double} × {Reference, Cpu,
// CudaHost} (CudaHost: the Cuda backend's kernels and device code paths, run on the host with its memory
// guarded, so every bijector's device path is checked against Reference without a GPU).
//
// A bijector joins the suite with one line in a conformance/*.cpp file:
//     TEST_CASE("conformance: AffineCoupling vector") { bijou::test::conformance_all<AffineCoupling, Shape<6>>(); }
// Failures print the whole report: each check, the first differing values and the max difference.
#pragma once

#include <doctest/doctest.h>

#include <bijou/bijou.hpp>
#include <bijou/testing/conformance.hpp>

namespace bijou::test {

template <class Recipe, class S>
void conformance_all(const testing::Config& cfg = {}) {
    auto one = [&]<class T, class B>() {
        const auto rep = testing::conformance<Recipe, S, T, B>(cfg);
        INFO(rep.str());
        CHECK(rep.ok());
        // every check the suite promises was actually run
        for (const char* name : {"round_trip", "inverse_log_det", "input_gradient", "backward_after_inverse"}) CHECK(rep.find(name) != nullptr);
        if constexpr (S::size == Recipe::template bind<S, T, B>::out_shape::size)
            CHECK(rep.find("jacobian_log_det") != nullptr);
        if constexpr (!std::is_same_v<B, Reference>) CHECK(rep.find("backend_forward") != nullptr);
        if constexpr (is_conditional_v<typename Recipe::template bind<S, T, B>>) {
            for (const char* name : {"context_gradient", "context_changes_output", "rows_independent"})
                CHECK(rep.find(name) != nullptr);
            if constexpr (!std::is_same_v<B, Reference>) CHECK(rep.find("backend_context_gradient") != nullptr);
        }
    };
    one.template operator()<float, Reference>();
    one.template operator()<float, Cpu>();
    one.template operator()<float, CudaHost>();
    one.template operator()<double, Reference>();
    one.template operator()<double, Cpu>();
    one.template operator()<double, CudaHost>();
}

}  // namespace bijou::test
