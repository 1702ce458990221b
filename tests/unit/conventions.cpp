// Tests that pin bijou's conventions: forward is data → latent, Chain applies its first element
// first, log-dets are log|det ∂z/∂x| in forward, log_prob is base + log-det, names follow state_dict.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include <bijou/bijou.hpp>

namespace unit_conventions {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

template <class F>
void set_actnorm(F& f, const std::string& prefix, std::vector<double> loc, std::vector<double> log_scale) {
    auto& ps = f.params();
    const auto* l = ps.find(join_name(prefix, "loc"));
    const auto* s = ps.find(join_name(prefix, "log_scale"));
    REQUIRE(l != nullptr);
    REQUIRE(s != nullptr);
    for (std::size_t i = 0; i < loc.size(); ++i) ps.data(*l)[i] = loc[i], ps.data(*s)[i] = log_scale[i];
}

}  // namespace

TEST_CASE("convention: forward maps data to latent and returns +log|det dz/dx|") {
    Transform<ActNorm, Shape<2>, double, Reference> f;
    set_actnorm(f, "actnorm", {1.0, -2.0}, {std::log(2.0), std::log(0.5)});
    xt::xtensor<double, 2> x = {{0.5, 1.0}};
    auto [z, ld] = f.forward(x);
    CHECK(z(0, 0) == doctest::Approx((0.5 + 1.0) * 2.0));
    CHECK(z(0, 1) == doctest::Approx((1.0 - 2.0) * 0.5));
    CHECK(ld(0) == doctest::Approx(std::log(2.0) + std::log(0.5)));

    set_actnorm(f, "actnorm", {0.0, 0.0}, {std::log(3.0), std::log(3.0)});
    auto fwd = f.forward(x);
    CHECK(fwd.log_det(0) == doctest::Approx(2 * std::log(3.0)));  // expanding map: positive log-det
    auto inv = f.inverse(fwd.z);
    CHECK(inv.log_det(0) == doctest::Approx(-2 * std::log(3.0)));
    CHECK(inv.x(0, 0) == doctest::Approx(0.5));
}

TEST_CASE("convention: Chain<A, B>::forward applies A first, inverse undoes B first") {
    Transform<Chain<ActNorm, ActNorm>, Shape<1>, double, Reference> f;
    // A: x + 1; B: ·2.  A then B gives 2(x + 1); B then A would give 2x + 1.
    set_actnorm(f, "0.actnorm", {1.0}, {0.0});
    set_actnorm(f, "1.actnorm", {0.0}, {std::log(2.0)});
    xt::xtensor<double, 2> x = {{3.0}};
    auto fwd = f.forward(x);
    CHECK(fwd.z(0, 0) == doctest::Approx(8.0));
    CHECK(fwd.log_det(0) == doctest::Approx(std::log(2.0)));
    auto inv = f.inverse(fwd.z);
    CHECK(inv.x(0, 0) == doctest::Approx(3.0));
}

TEST_CASE("convention: log_prob = base log_prob(f(x)) + log|det|, equal to the closed-form Gaussian") {
    // z = (x + loc)·exp(s) with z ~ N(0, 1)  ⇔  x ~ N(−loc, exp(−2s)).
    Flow<Shape<2>, ActNorm, StandardNormal, double, Reference> flow;
    const std::vector<double> loc{0.3, -1.2}, s{0.7, -0.4};
    set_actnorm(flow, "actnorm", loc, s);
    xt::xtensor<double, 2> x = {{0.1, 2.0}, {-3.0, 0.5}};
    auto lp = flow.log_prob(x);
    for (std::size_t i = 0; i < 2; ++i) {
        double want = 0.0;
        for (std::size_t d = 0; d < 2; ++d) {
            const double mu = -loc[d], sigma = std::exp(-s[d]);
            const double u = (x(i, d) - mu) / sigma;
            want += -0.5 * u * u - std::log(sigma) - 0.5 * std::log(2 * std::numbers::pi);
        }
        CHECK(lp(i) == doctest::Approx(want).epsilon(1e-12));
    }
    // sample at temperature 0 is the inverse of the base's mode
    Rng rng(3);
    auto xs = flow.sample(4, 0.0, rng);
    for (std::size_t i = 0; i < 4; ++i) {
        CHECK(xs(i, 0) == doctest::Approx(-loc[0]));
        CHECK(xs(i, 1) == doctest::Approx(-loc[1]));
    }
}

TEST_CASE("convention: state_dict names") {
    Transform<Chain<ActNorm, ActNorm>, Shape<3>> chain;
    CHECK(chain.params().find("0.actnorm.loc") != nullptr);
    CHECK(chain.params().find("1.actnorm.log_scale") != nullptr);
    CHECK(chain.params().find("1.actnorm.initialized") != nullptr);
    CHECK_FALSE(chain.params().find("1.actnorm.initialized")->trainable);
    Options o;
    o.steps_per_level = 3;
    Transform<Stack<ActNorm>, Shape<3>> stack(o);
    CHECK(stack.params().find("steps.2.loc") != nullptr);
    CHECK(stack.params().find("steps.3.loc") == nullptr);
    CHECK(stack.parameter_count() == 3 * 2 * 3);
}

TEST_CASE("errors at the API edge name what was wrong") {
    Flow<Shape<2>, ActNorm> flow;
    xt::xtensor<float, 2> bad = xt::zeros<float>({4, 3});
    try {
        (void)flow.log_prob(bad);
        FAIL("no exception");
    } catch (const shape_error& e) {
        const std::string msg = e.what();
        CHECK(msg.find("bijou: log_prob") == 0);
        CHECK(msg.find("Shape<2>") != std::string::npos);
        CHECK(msg.find("(4, 3)") != std::string::npos);
    }
    Rng rng(1);
    CHECK_THROWS_AS((void)flow.sample(-1, 1.0, rng), invalid_argument);
    CHECK_THROWS_AS((void)flow.sample(2, std::nan(""), rng), invalid_argument);
    xt::xtensor<float, 2> one = xt::zeros<float>({1, 2});
    CHECK_THROWS_AS(flow.initialize(one), invalid_argument);
    Options o;
    o.steps_per_level = 0;
    CHECK_THROWS_AS((Transform<Stack<ActNorm>, Shape<2>>(o)), invalid_argument);
}

TEST_CASE("ActNorm data-dependent initialisation standardises its batch and is recorded") {
    Transform<ActNorm, Shape<3, 2, 2>, double, Cpu> f;
    xt::xtensor<double, 4> x = xt::zeros<double>({16, 3, 2, 2});
    Rng rng(5);
    for (auto& v : x) v = 4.0 + 3.0 * rng.normal();
    CHECK_FALSE(f.bijector().initialized());
    f.initialize(x);
    CHECK(f.bijector().initialized());
    auto z = f.forward(x).z;
    for (std::size_t c = 0; c < 3; ++c) {
        double s = 0, ss = 0;
        for (std::size_t i = 0; i < 16; ++i)
            for (std::size_t h = 0; h < 2; ++h)
                for (std::size_t w = 0; w < 2; ++w) s += z(i, c, h, w), ss += z(i, c, h, w) * z(i, c, h, w);
        CHECK(s / 64 == doctest::Approx(0.0).epsilon(1e-9).scale(1));
        CHECK(ss / 64 == doctest::Approx(1.0).epsilon(1e-4));
    }
}

}  // namespace unit_conventions
