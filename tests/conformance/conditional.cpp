// Conformance of the conditional bijectors (core/context.hpp): the whole suite with the context held
// fixed, plus ∂L/∂c against central differences, "another context changes the output" and "rows with
// different contexts are independent", over {float, double} × {Reference, Cpu, CudaHost}.
#include "conformance/suite.hpp"

namespace conformance_conditional {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;
using bijou::test::conformance_all;

namespace {
testing::Config with(void (*edit)(Options&)) {
    testing::Config cfg;
    edit(cfg.options);
    return cfg;
}
}  // namespace

TEST_CASE("conformance: ConditionalAffineCoupling vector, separate tanh, context Shape<3>") {
    conformance_all<ConditionalAffineCoupling<Shape<3>>, Shape<4>>();
}
TEST_CASE("conformance: ConditionalAffineCoupling vector, shared sigmoid, context Shape<1>") {
    conformance_all<ConditionalAffineCoupling<Shape<1>>, Shape<3>>(with([](Options& o) {
        o = o.with(CouplingOptions{.net = CouplingNet::shared, .scale = CouplingScale::sigmoid});
    }));
}
TEST_CASE("conformance: ConditionalAdditiveCoupling vector, context Shape<2>") {
    conformance_all<ConditionalAdditiveCoupling<Shape<2>>, Shape<5>>();
}
TEST_CASE("conformance: Chain mixing conditional and unconditional elements") {
    conformance_all<Chain<ConditionalAffineCoupling<Shape<2>>, AffineCoupling, ConditionalAffineCoupling<Shape<2>>>,
                    Shape<3>>(with([](Options& o) { o.hidden_layers = 1; }));
}
TEST_CASE("conformance: Stack of a conditional step") {
    conformance_all<Stack<Chain<ActNorm, ConditionalAffineCoupling<Shape<2>>, Permute>>, Shape<4>>();
}
TEST_CASE("conformance: ConditionalAffineCoupling image, context Shape<3>") {
    conformance_all<ConditionalAffineCoupling<Shape<3>>, Shape<2, 3, 2>>();
}
TEST_CASE("conformance: ConditionalAdditiveCoupling image, context Shape<2>") {
    conformance_all<ConditionalAdditiveCoupling<Shape<2>>, Shape<4, 2, 2>>();
}

}  // namespace conformance_conditional
