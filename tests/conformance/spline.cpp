#include "conformance/suite.hpp"

#include <bijou/bijectors/spline_coupling.hpp>

namespace conformance_spline {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;
using bijou::test::conformance_all;

namespace {
// Parameter noise: 0.5 on the vector nets gives bins of clearly different widths, heights and
// derivatives. The image nets sum 9·C/2 inputs per output, so 0.2 does as much there; more makes
// derivatives near δ_min, whose inverse is too ill-conditioned for a float round trip (tests/unit/spline.cpp
// covers those with a residual test).
testing::Config with(SplineOptions so, CouplingOptions co = {}, double noise = 0.5) {
    testing::Config cfg;
    cfg.options = cfg.options.with(so).with(co);
    cfg.param_noise = noise;
    return cfg;
}
}  // namespace

// A bound of 1.5 puts some of the suite's standard-normal inputs in the tails and most inside.
TEST_CASE("conformance: RationalQuadraticCoupling alternating D=3") {
    conformance_all<RationalQuadraticCoupling, Shape<3>>(with({.bins = 5, .bound = 1.5}));
}
TEST_CASE("conformance: RationalQuadraticCoupling half mask, 2 bins, D=4") {
    conformance_all<RationalQuadraticCoupling, Shape<4>>(with({.bins = 2, .bound = 2.0}, {.mask = MaskKind::half}));
}
TEST_CASE("conformance: ConditionalRationalQuadraticCoupling") {
    conformance_all<ConditionalRationalQuadraticCoupling<Shape<2>>, Shape<3>>(with({.bins = 4, .bound = 1.5}));
}
TEST_CASE("conformance: RationalQuadraticCoupling image") {
    conformance_all<RationalQuadraticCoupling, Shape<4, 2, 3>>(with({.bins = 3, .bound = 1.5}, {}, 0.2));
}
TEST_CASE("conformance: ConditionalRationalQuadraticCoupling image") {
    conformance_all<ConditionalRationalQuadraticCoupling<Shape<3>>, Shape<2, 2, 2>>(with({.bins = 4, .bound = 1.5}, {}, 0.2));
}

}  // namespace conformance_spline
