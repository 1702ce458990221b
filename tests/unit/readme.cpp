// The README is part of the product: its commands, its quick start and its snippets must be real.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include <bijou/bijou.hpp>

namespace unit_readme {  // the file's own namespace (unity build: tests/CMakeLists.txt)

namespace {

std::string slurp(const std::string& rel) {
    std::ifstream f(std::string(BIJOU_SOURCE_DIR) + "/" + rel);
    REQUIRE_MESSAGE(f.good(), "cannot open " << rel);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

/// The first line of the first ```sh block after `heading`.
std::string command_after(const std::string& text, const std::string& heading) {
    auto h = text.find(heading);
    REQUIRE(h != std::string::npos);
    auto b = text.find("```sh\n", h);
    REQUIRE(b != std::string::npos);
    b += 6;
    return text.substr(b, text.find('\n', b) - b);
}

}  // namespace

TEST_CASE("README: .ci/run runs exactly the README's test command") {
    const std::string readme = slurp("README.md");
    const std::string test_cmd = command_after(readme, "Build and run the whole test suite:");
    CHECK(test_cmd.find("ctest --preset release") != std::string::npos);
    CHECK(test_cmd.find("apt-get install -y") != std::string::npos);
    const std::string ci = slurp(".ci/run");
    CHECK(ci.find("\n" + test_cmd + "\n") != std::string::npos);
    const std::string demo_cmd = command_after(readme, "Build and run the main demo");
    CHECK(demo_cmd.find("two_moons") != std::string::npos);
}

TEST_CASE("README: the quick start is examples/quickstart/quickstart.cpp verbatim") {
    const std::string readme = slurp("README.md");
    std::string qs = slurp("examples/quickstart/quickstart.cpp");
    while (!qs.empty() && qs.back() == '\n') qs.pop_back();
    CHECK(readme.find("```cpp\n" + qs + "\n```") != std::string::npos);
    // under 40 lines, as promised
    CHECK(std::count(qs.begin(), qs.end(), '\n') < 40);
}

TEST_CASE("README: the three-line model compiles and runs") {
    using Step = bijou::Chain<bijou::ActNorm, bijou::InvConv1x1LU, bijou::AffineCoupling>;
    using Model = bijou::Flow<bijou::Shape<8>, bijou::Stack<Step>>;
    Model model({.steps_per_level = 6, .hidden = 128});
    CHECK(model.params().find("steps.5.coupling.shift_net.0.weight") != nullptr);
    CHECK(model.params().find("steps.5.invconv.log_s") != nullptr);
    xt::xtensor<float, 2> x = xt::ones<float>({4, 8});
    const auto lp = model.log_prob(x);
    CHECK(lp.size() == 4);
    CHECK(std::isfinite(lp(0)));
}

TEST_CASE("README: the Glow snippet is the one tests/unit/glow.cpp compiles") {
    const std::string readme = slurp("README.md");
    const std::string glow_test = slurp("tests/unit/glow.cpp");
    const std::string snippet =
        "    using Step  = bijou::Chain<bijou::ActNorm, bijou::InvConv1x1LU, bijou::AffineCoupling>;\n"
        "    using Model = bijou::Glow<bijou::Shape<1, 32, 32>, 3, Step>;          // T = float, Backend = bijou::Cpu\n"
        "    Model model({.steps_per_level = 8, .hidden = 128});\n";
    CHECK(glow_test.find(snippet) != std::string::npos);
    std::string unindented;
    for (std::size_t a = 0; a < snippet.size();) {
        const std::size_t b = snippet.find('\n', a);
        unindented += snippet.substr(a + 4, b - a - 4) + "\n";
        a = b + 1;
    }
    CHECK(readme.find("```cpp\n" + unindented + "```") != std::string::npos);
}

}  // namespace unit_readme
