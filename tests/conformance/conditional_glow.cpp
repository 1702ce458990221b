// Conformance of Glow's conditional parts (core/context.hpp): ConditionalSplit, ConditionalTopPrior and a
// tiny class-conditional Glow bijector, in both memory modes. The suite adds the context checks (∂L/∂c
// against central differences, context sensitivity, row independence) over {float, double} ×
// {Reference, Cpu, CudaHost}.
#include "suite.hpp"

namespace conformance_conditional_glow {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

TEST_CASE("conformance: ConditionalSplit") { test::conformance_all<ConditionalSplit<Shape<3>>, Shape<4, 3, 2>>(); }

TEST_CASE("conformance: ConditionalTopPrior image") {
    test::conformance_all<ConditionalTopPrior<Shape<2>>, Shape<3, 2, 3>>();
}

TEST_CASE("conformance: ConditionalTopPrior vector") { test::conformance_all<ConditionalTopPrior<Shape<4>>, Shape<5>>(); }

namespace {
using Label = Shape<3>;
using CondStep = Chain<ActNorm, InvConv1x1LU, ConditionalAffineCoupling<Label>>;
using TinyCondGlow = MultiScale<2, Chain<Squeeze, Stack<CondStep>>>;
}  // namespace

TEST_CASE("conformance: a conditional MultiScale (tiny class-conditional Glow bijector)") {
    static_assert(std::is_same_v<context_shape_t<bind_t<TinyCondGlow, Shape<1, 4, 4>, float, Cpu>>, Label>);
    testing::Config cfg;
    cfg.options = cfg.options.with(CouplingOptions{.scale = CouplingScale::sigmoid});
    cfg.max_coords = 12;  // per tensor: the parts' own cases check every coordinate; this keeps CI short
    test::conformance_all<TinyCondGlow, Shape<1, 4, 4>>(cfg);
}

TEST_CASE("conformance: a conditional MultiScale in memory-saving mode") {
    testing::Config cfg;
    cfg.options.memory_saving = true;
    // Milder noise: backward rebuilds every activation through the inverse, and with the default 0.2 on
    // the label projections float round-off alone takes the Cpu-vs-Reference gradients to ~2e-5 of their
    // largest value (the double checks, Cpu against Reference at 1e-10, pass either way).
    cfg.param_noise = 0.1;
    cfg.max_coords = 12;
    test::conformance_all<TinyCondGlow, Shape<1, 4, 4>>(cfg);  // the shape above: no new instantiations
}

}  // namespace conformance_conditional_glow
