// Squeeze's index map, Split and TopPrior at their initial values.
#include <doctest/doctest.h>

#include <bijou/bijou.hpp>
#include <bijou/bijectors/split.hpp>
#include <bijou/bijectors/squeeze.hpp>
#include <bijou/bijectors/top_prior.hpp>

namespace unit_multiscale_parts {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

TEST_CASE("Squeeze puts each 2x2 block into 4 channels, openai/glow's order") {
    Transform<Squeeze, Shape<2, 4, 2>, double, Cpu> sq;
    static_assert(std::is_same_v<decltype(sq)::out_shape, Shape<8, 2, 1>>);
    auto x = make_batch<double, Shape<2, 4, 2>>(1);
    for (std::size_t k = 0; k < x.size(); ++k) x.data()[k] = double(k);  // x[c, h, w] = 8c + 2h + w
    const auto z = sq.forward(x).z;
    // z[4c + 2a + b, y, x'] = x[c, 2y + a, 2x' + b]
    for (int c = 0; c < 2; ++c)
        for (int a = 0; a < 2; ++a)
            for (int b = 0; b < 2; ++b)
                for (int y = 0; y < 2; ++y) CHECK(z(0, 4 * c + 2 * a + b, y, 0) == x(0, c, 2 * y + a, b));
    CHECK(z(0, 1, 0, 0) == 1.0);  // x[0, 0, 1]
    CHECK(z(0, 2, 1, 0) == 6.0);  // c = 0, a = 1, b = 0, y = 1: x[0, 3, 0] = 2·3
}

TEST_CASE("a new Split and TopPrior are the identity, and the log-det follows log_scale") {
    Transform<Split, Shape<2, 2, 2>, double, Reference> sp;
    auto x = make_batch<double, Shape<2, 2, 2>>(3);
    for (std::size_t k = 0; k < x.size(); ++k) x.data()[k] = 0.1 * double(k) - 0.7;
    auto m = sp.forward(x);
    CHECK(xt::allclose(m.z, x));
    CHECK(m.log_det(0) == 0.0);

    Transform<TopPrior, Shape<2, 2, 2>, double, Reference> top;
    auto* mean = top.params().data(*top.params().find("prior.mean"));
    auto* ls = top.params().data(*top.params().find("prior.log_scale"));
    mean[0] = 1.0, mean[1] = -2.0, ls[0] = std::log(2.0), ls[1] = 0.0;
    const auto t = top.forward(x);
    CHECK(t.z(1, 0, 1, 0) == doctest::Approx((x(1, 0, 1, 0) - 1.0) / 2.0));
    CHECK(t.z(2, 1, 0, 1) == doctest::Approx(x(2, 1, 0, 1) + 2.0));
    CHECK(t.log_det(0) == doctest::Approx(-4.0 * std::log(2.0)));  // −H·W·Σ log_scale
}

TEST_CASE("memory-saving mode: same loss and gradients, less workspace, for vector stacks") {
    using Step = Chain<ActNorm, InvConv1x1LU, AffineCoupling>;
    Options o;
    o.steps_per_level = 6;
    o.hidden = 16;
    o.seed = 3;
    Flow<Shape<4>, Stack<Step>, StandardNormal, double, Cpu> store(o);
    o.memory_saving = true;
    Flow<Shape<4>, Stack<Step>, StandardNormal, double, Cpu> lean(o);
    Rng rng(5);
    auto x = make_batch<double, Shape<4>>(32);
    for (auto& v : x) v = rng.normal();
    store.initialize(x);
    lean.initialize(x);
    REQUIRE(store.parameter_count() == lean.parameter_count());
    for (std::size_t k = 0; k < store.parameters().size(); ++k) CHECK(store.parameters()[k] == lean.parameters()[k]);
    const double a = store.nll_and_gradient(x), b = lean.nll_and_gradient(x);
    CHECK(a == doctest::Approx(b).epsilon(1e-12));
    double worst = 0.0, scale = 0.0;
    for (std::size_t k = 0; k < store.gradients().size(); ++k) {
        worst = std::max(worst, std::abs(store.gradients()[k] - lean.gradients()[k]));
        scale = std::max(scale, std::abs(store.gradients()[k]));
    }
    CHECK(scale > 1e-3);
    CHECK(worst <= 1e-9 * scale);
    CHECK(lean.workspace_bytes(32) < store.workspace_bytes(32));
}

}  // namespace unit_multiscale_parts
