#include "conformance/suite.hpp"

#include <bijou/bijectors/coupling.hpp>

namespace conformance_coupling {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;
using bijou::test::conformance_all;

namespace {
testing::Config with(void (*edit)(Options&)) {
    testing::Config cfg;
    edit(cfg.options);
    return cfg;
}
}  // namespace

TEST_CASE("conformance: AffineCoupling separate tanh alternating D=2") { conformance_all<AffineCoupling, Shape<2>>(); }
TEST_CASE("conformance: AffineCoupling separate tanh alternating D=5") { conformance_all<AffineCoupling, Shape<5>>(); }
TEST_CASE("conformance: AffineCoupling shared sigmoid") {
    conformance_all<AffineCoupling, Shape<4>>(with([](Options& o) {
        o = o.with(CouplingOptions{.net = CouplingNet::shared, .scale = CouplingScale::sigmoid});
    }));
}
TEST_CASE("conformance: AffineCoupling custom mask") {
    conformance_all<AffineCoupling, Shape<4>>(with([](Options& o) {
        o = o.with(CouplingOptions{.mask = MaskKind::custom, .masks = {{0, 1, 1, 0}}});
        o.hidden_layers = 3;
    }));
}
TEST_CASE("conformance: AffineCoupling half mask, odd D") {
    conformance_all<AffineCoupling, Shape<5>>(with([](Options& o) { o = o.with(CouplingOptions{.mask = MaskKind::half}); }));
}
TEST_CASE("conformance: AdditiveCoupling") { conformance_all<AdditiveCoupling, Shape<3>>(); }
TEST_CASE("conformance: Chain<AffineCoupling, AffineCoupling>") {
    conformance_all<Chain<AffineCoupling, AffineCoupling>, Shape<3>>(with([](Options& o) { o.hidden_layers = 1; }));
}
TEST_CASE("conformance: Stack<AffineCoupling>") {
    conformance_all<Stack<AffineCoupling>, Shape<4>>(with([](Options& o) {
        o = o.with(CouplingOptions{.net = CouplingNet::shared, .mask = MaskKind::half});
    }));
}

}  // namespace conformance_coupling
