#include "conformance/suite.hpp"

#include <bijou/bijectors/autoregressive.hpp>

namespace conformance_autoregressive {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;
using bijou::test::conformance_all;

namespace {
testing::Config with(AutoregressiveOptions ao, SplineOptions so = {.bins = 4, .bound = 1.5}, CouplingOptions co = {}) {
    testing::Config cfg;
    cfg.options = cfg.options.with(ao).with(so).with(co);
    return cfg;
}
}  // namespace

TEST_CASE("conformance: MaskedAutoregressive affine, natural order") {
    conformance_all<MaskedAutoregressive<AffineTransform>, Shape<4>>(with({.order = MadeOrder::natural}));
}
TEST_CASE("conformance: MaskedAutoregressive sigmoid affine, random order, sampled degrees, 3 layers") {
    auto cfg = with({.order = MadeOrder::random, .hidden_degrees = MadeDegrees::sampled}, {},
                    {.scale = CouplingScale::sigmoid});
    cfg.options.hidden_layers = 3;
    conformance_all<MaskedAutoregressive<AffineTransform>, Shape<5>>(cfg);
}
TEST_CASE("conformance: MaskedAutoregressive rational-quadratic, reversed order") {
    conformance_all<MaskedAutoregressive<RationalQuadraticTransform>, Shape<3>>(with({.order = MadeOrder::reversed}));
}
TEST_CASE("conformance: InverseAutoregressive affine") {
    conformance_all<InverseAutoregressive<AffineTransform>, Shape<4>>(with({.order = MadeOrder::random}));
}
TEST_CASE("conformance: InverseAutoregressive rational-quadratic") {
    conformance_all<InverseAutoregressive<RationalQuadraticTransform>, Shape<3>>(with({}));
}
TEST_CASE("conformance: ConditionalMaskedAutoregressive rational-quadratic") {
    conformance_all<ConditionalMaskedAutoregressive<RationalQuadraticTransform, Shape<2>>, Shape<3>>(with({}));
}
TEST_CASE("conformance: ConditionalInverseAutoregressive affine, one feature") {
    conformance_all<ConditionalInverseAutoregressive<AffineTransform, Shape<2>>, Shape<1>>(with({}));
}

}  // namespace conformance_autoregressive
