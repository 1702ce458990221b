// Conformance of the invertible linear bijectors: InvConv1x1, InvConv1x1LU and Permute, on vectors
// (a full D×D map) and images (a C×C map per pixel), plus a Glow-style ActNorm → InvConv1x1LU chain.
#include "conformance/suite.hpp"

#include <bijou/bijectors/invconv1x1.hpp>
#include <bijou/bijectors/permute.hpp>

namespace conformance_invconv {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;
using bijou::test::conformance_all;

namespace {
testing::Config shuffled() {
    testing::Config cfg;
    cfg.options = cfg.options.with(PermuteOptions{.kind = PermuteKind::shuffle});
    return cfg;
}
}  // namespace

TEST_CASE("conformance: InvConv1x1 vector") { conformance_all<InvConv1x1, Shape<4>>(); }
TEST_CASE("conformance: InvConv1x1 image") { conformance_all<InvConv1x1, Shape<4, 2, 3>>(); }
TEST_CASE("conformance: InvConv1x1LU vector") { conformance_all<InvConv1x1LU, Shape<4>>(); }
TEST_CASE("conformance: InvConv1x1LU image") { conformance_all<InvConv1x1LU, Shape<4, 2, 3>>(); }
TEST_CASE("conformance: Permute reverse vector") { conformance_all<Permute, Shape<4>>(); }
TEST_CASE("conformance: Permute reverse image") { conformance_all<Permute, Shape<4, 2, 3>>(); }
TEST_CASE("conformance: Permute shuffle vector") { conformance_all<Permute, Shape<4>>(shuffled()); }
TEST_CASE("conformance: Permute shuffle image") { conformance_all<Permute, Shape<4, 2, 3>>(shuffled()); }
TEST_CASE("conformance: Permute shuffle, not an involution") {
    // With C = 4 and seed 7 the shuffle happens to be its own inverse (1 0 2 3), which cannot tell
    // P from Pᵀ; this one (0 3 2 8 6 4 1 5 7) can.
    conformance_all<Permute, Shape<9>>(shuffled());
    conformance_all<Permute, Shape<9, 1, 2>>(shuffled());
}
TEST_CASE("conformance: Chain<ActNorm, InvConv1x1LU> image") {
    conformance_all<Chain<ActNorm, InvConv1x1LU>, Shape<4, 2, 3>>();
}
TEST_CASE("conformance: InvConv1x1 and InvConv1x1LU with C = 1") {
    conformance_all<InvConv1x1, Shape<1, 2, 2>>();
    conformance_all<InvConv1x1LU, Shape<1>>();
}

}  // namespace conformance_invconv
