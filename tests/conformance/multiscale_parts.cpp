// Conformance of the multi-scale parts: Squeeze, Split, TopPrior, and compositions with them.
#include "suite.hpp"

#include <bijou/bijectors/split.hpp>
#include <bijou/bijectors/squeeze.hpp>
#include <bijou/bijectors/top_prior.hpp>

namespace conformance_multiscale_parts {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

TEST_CASE("conformance: Squeeze") { test::conformance_all<Squeeze, Shape<2, 4, 6>>(); }

TEST_CASE("conformance: TopPrior image") { test::conformance_all<TopPrior, Shape<3, 2, 3>>(); }

TEST_CASE("conformance: TopPrior vector") { test::conformance_all<TopPrior, Shape<5>>(); }

TEST_CASE("conformance: Split") { test::conformance_all<Split, Shape<4, 3, 4>>(); }

TEST_CASE("conformance: Squeeze then Split then ActNorm") {
    test::conformance_all<Chain<Squeeze, Split, ActNorm>, Shape<1, 4, 4>>();
}

TEST_CASE("conformance: memory-saving Stack of Chains") {
    testing::Config cfg;
    cfg.options.memory_saving = true;
    cfg.options.steps_per_level = 3;
    test::conformance_all<Stack<Chain<ActNorm, InvConv1x1LU, AffineCoupling>>, Shape<4>>(cfg);
}

namespace {
using GlowStep = Chain<ActNorm, InvConv1x1LU, AffineCoupling>;
using TinyGlow = MultiScale<2, Chain<Squeeze, Stack<GlowStep>>>;
}  // namespace

TEST_CASE("conformance: MultiScale (a tiny Glow bijector, sigmoid scales)") {
    testing::Config cfg;
    cfg.options = cfg.options.with(CouplingOptions{.scale = CouplingScale::sigmoid});
    test::conformance_all<TinyGlow, Shape<1, 4, 4>>(cfg);
}

// The same shape as above: memory_saving is a run-time option, so this case reuses the instantiations
// of the one above (a second shape instantiated the whole MultiScale again; tests/unit/glow.cpp varies shapes).
TEST_CASE("conformance: MultiScale in memory-saving mode") {
    testing::Config cfg;
    cfg.options.memory_saving = true;
    test::conformance_all<TinyGlow, Shape<1, 4, 4>>(cfg);
}

}  // namespace conformance_multiscale_parts
