#include "conformance/suite.hpp"

namespace conformance_actnorm {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;
using bijou::test::conformance_all;

TEST_CASE("conformance: ActNorm vector") { conformance_all<ActNorm, Shape<5>>(); }
TEST_CASE("conformance: ActNorm image") { conformance_all<ActNorm, Shape<3, 2, 2>>(); }
TEST_CASE("conformance: Chain<ActNorm, ActNorm>") { conformance_all<Chain<ActNorm, ActNorm>, Shape<4>>(); }
TEST_CASE("conformance: Repeat<ActNorm, 3>") { conformance_all<Repeat<ActNorm, 3>, Shape<3>>(); }
TEST_CASE("conformance: Stack<Chain<ActNorm, ActNorm>>") { conformance_all<Stack<Chain<ActNorm, ActNorm>>, Shape<2>>(); }

}  // namespace conformance_actnorm
