// Conformance of the image couplings (bijectors/coupling_image.hpp): Glow's channel split and
// RealNVP's checkerboard, affine (tanh and sigmoid) and additive, plus unit tests of what the suite
// cannot see: inverse leaves the workspace as forward does (backward may follow inverse), the
// checkerboard flips between consecutive couplings, names and shapes, a value computed by hand.
#include "conformance/suite.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <bijou/bijectors/coupling.hpp>

namespace conformance_coupling_image {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;
using bijou::test::conformance_all;

namespace {
testing::Config with(void (*edit)(Options&)) {
    testing::Config cfg;
    cfg.options.hidden = 4;
    edit(cfg.options);
    return cfg;
}
void none(Options&) {}
void sigmoid(Options& o) { o = o.with(CouplingOptions{.scale = CouplingScale::sigmoid}); }
}  // namespace

TEST_CASE("conformance: AffineCoupling image, tanh") {
    conformance_all<AffineCoupling, Shape<4, 4, 4>>(with(none));
    conformance_all<AffineCoupling, Shape<2, 3, 5>>(with(none));
}
TEST_CASE("conformance: AffineCoupling image, sigmoid (Glow)") {
    conformance_all<AffineCoupling, Shape<4, 4, 4>>(with(sigmoid));
    conformance_all<AffineCoupling, Shape<2, 3, 5>>(with(sigmoid));
}
TEST_CASE("conformance: AdditiveCoupling image") {
    conformance_all<AdditiveCoupling, Shape<4, 4, 4>>(with(none));
    conformance_all<AdditiveCoupling, Shape<2, 3, 5>>(with(none));
}
TEST_CASE("conformance: CheckerboardAffineCoupling") {
    conformance_all<CheckerboardAffineCoupling, Shape<4, 4, 4>>(with(none));
    conformance_all<CheckerboardAffineCoupling, Shape<1, 3, 5>>(with(sigmoid));  // odd C is fine
}
TEST_CASE("conformance: CheckerboardAdditiveCoupling") {
    conformance_all<CheckerboardAdditiveCoupling, Shape<4, 4, 4>>(with(none));
    conformance_all<CheckerboardAdditiveCoupling, Shape<2, 3, 5>>(with(none));
}
TEST_CASE("conformance: Chain of checkerboard couplings (both phases), channel coupling between") {
    conformance_all<Chain<CheckerboardAffineCoupling, AffineCoupling, CheckerboardAffineCoupling>, Shape<2, 3, 3>>(
        with(sigmoid));
}

// ---- unit tests ----------------------------------------------------------------------------------------

namespace {

template <class Model>
void add_noise(Model& f, double sd, std::uint64_t seed) {
    Rng rng(seed);
    for (const auto& t : f.params().tensors()) {
        if (!t.trainable) continue;
        auto* p = f.params().data(t);
        for (std::size_t i = 0; i < t.size; ++i)
            p[i] += static_cast<std::remove_pointer_t<decltype(p)>>(sd * rng.normal());
    }
}

template <class Model>
const TensorInfo& tensor(const Model& f, const std::string& name) {
    const TensorInfo* t = f.params().find(name);
    REQUIRE_MESSAGE(t != nullptr, "no tensor named " << name);
    return *t;
}

Options small(int hidden = 4) {
    Options o;
    o.hidden = hidden;
    return o;
}

}  // namespace

namespace {
/// backward after inverse(z) must give what backward after forward(x) gives (memory-saving training).
template <class R, class S>
void check_backward_after_inverse() {
    for (auto scale : {CouplingScale::tanh, CouplingScale::sigmoid}) {
        CAPTURE(int(scale));
        const CouplingNet net = scale == CouplingScale::sigmoid ? CouplingNet::shared : CouplingNet::separate;  // vectors only
        const Options o = small(5).with(CouplingOptions{.net = net, .scale = scale});
        Transform<R, S, double, Cpu> f(o);
        add_noise(f, 0.3, 4);
        const int n = 3;
        Rng rng(8);
        std::vector<double> x(std::size_t(n) * S::size), z(x.size()), xr(x.size()), dz(x.size()), dld(n),
            dx1(x.size()), dx2(x.size());
        for (auto& v : x) v = rng.normal();
        for (auto& v : dz) v = rng.normal();
        for (auto& v : dld) v = rng.normal();

        f.params().zero_grad();
        f.forward_raw(x.data(), z.data(), n);
        f.backward_raw(x.data(), z.data(), dz.data(), dld.data(), dx1.data(), n);
        const std::vector<double> g1(f.gradients().begin(), f.gradients().end());

        // Scribble over the workspace, then reconstruct x by inverse and run backward on that.
        f.forward_raw(dz.data(), xr.data(), n);
        f.params().zero_grad();
        f.inverse_raw(z.data(), xr.data(), n);
        f.backward_raw(xr.data(), z.data(), dz.data(), dld.data(), dx2.data(), n);
        double gmax = 0.0, err = 0.0;
        for (std::size_t k = 0; k < g1.size(); ++k) {
            gmax = std::max(gmax, std::abs(g1[k]));
            err = std::max(err, std::abs(f.gradients()[k] - g1[k]));
        }
        for (std::size_t k = 0; k < x.size(); ++k) err = std::max(err, std::abs(dx2[k] - dx1[k]));
        CHECK(gmax > 1e-2);
        CHECK(err <= 1e-12 * std::max(1.0, gmax));
    }
}
}  // namespace

TEST_CASE_TEMPLATE("image coupling: backward after inverse gives the gradients of backward after forward", R,
                   AffineCoupling, AdditiveCoupling, CheckerboardAffineCoupling, CheckerboardAdditiveCoupling) {
    check_backward_after_inverse<R, Shape<4, 3, 5>>();
}

TEST_CASE_TEMPLATE("vector coupling: backward after inverse gives the gradients of backward after forward", R,
                   AffineCoupling, AdditiveCoupling) {
    check_backward_after_inverse<R, Shape<5>>();
}

TEST_CASE("image coupling: checkerboard masks flip between consecutive couplings, channel couplings count too") {
    using F = Transform<Chain<CheckerboardAffineCoupling, AffineCoupling, CheckerboardAdditiveCoupling,
                              CheckerboardAffineCoupling>,
                        Shape<2, 3, 4>, float, Reference>;
    F f(small());
    const auto& c0 = f.bijector().element<0>();
    const auto& c2 = f.bijector().element<2>();
    const auto& c3 = f.bijector().element<3>();
    CHECK(c0.index() == 0);
    CHECK(f.bijector().element<1>().index() == 1);
    CHECK(c2.index() == 2);
    CHECK(c3.index() == 3);
    auto mask = [](const auto& c) { return std::vector<float>(c.mask().value, c.mask().value + c.mask().size); };
    // k even: keep (h + w) even;  k odd: keep (h + w) odd
    const std::vector<float> even = {1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0};
    const std::vector<float> odd = {0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1};
    CHECK(mask(c0) == even);
    CHECK(mask(c2) == even);
    CHECK(mask(c3) == odd);
    const auto& m = tensor(f, "3.coupling.mask");
    CHECK_FALSE(m.trainable);
    CHECK(m.shape == std::vector<std::size_t>{3, 4});
    CHECK(f.params().find("1.coupling.mask") == nullptr);  // channel split: no mask buffer

    // and the data agree: coupling 3 alone (k = 3) leaves exactly the odd pixels of every channel alone
    const Options o = small().with(CouplingOptions{.zero_init_output = false});
    Transform<Chain<CheckerboardAffineCoupling, CheckerboardAffineCoupling>, Shape<2, 3, 4>, double, Cpu> g(o);
    auto x = make_batch<double, Shape<2, 3, 4>>(2);
    Rng rng(1);
    for (auto& v : x) v = rng.normal();
    std::vector<double> z0(x.size());
    g.bijector().element<0>().forward(x.data(), z0.data(), std::vector<double>(2).data(), 2,
                                       std::vector<double>(g.bijector().element<0>().workspace_size(2)).data());
    for (int i = 0; i < 2; ++i)
        for (int c = 0; c < 2; ++c)
            for (int h = 0; h < 3; ++h)
                for (int w = 0; w < 4; ++w) {
                    const std::size_t k = ((std::size_t(i) * 2 + c) * 3 + h) * 4 + w;
                    if ((h + w) % 2 == 0) CHECK(z0[k] == x.data()[k]);
                    else CHECK(z0[k] != x.data()[k]);
                }
}

TEST_CASE("image coupling: state_dict names and shapes, channel split keeps the first half") {
    const Options o = small(6).with(CouplingOptions{.zero_init_output = false});
    Transform<AffineCoupling, Shape<4, 2, 3>, float, Cpu> f(o);
    CHECK(tensor(f, "coupling.net.0.weight").shape == std::vector<std::size_t>{6, 2, 3, 3});
    CHECK(tensor(f, "coupling.net.2.weight").shape == std::vector<std::size_t>{6, 6, 1, 1});
    CHECK(tensor(f, "coupling.net.4.weight").shape == std::vector<std::size_t>{4, 6, 3, 3});  // [t | h]
    CHECK(tensor(f, "coupling.net.4.bias").shape == std::vector<std::size_t>{4});
    CHECK(f.params().find("coupling.mask") == nullptr);
    CHECK(f.params().find("coupling.shift_net.0.weight") == nullptr);
    Transform<CheckerboardAdditiveCoupling, Shape<3, 2, 3>, float, Cpu> g(o);
    CHECK(tensor(g, "coupling.net.0.weight").shape == std::vector<std::size_t>{6, 3, 3, 3});
    CHECK(tensor(g, "coupling.net.4.weight").shape == std::vector<std::size_t>{3, 6, 3, 3});  // t only
    CHECK(g.parameter_count() == std::size_t(6 * 27 + 6 + 36 + 6 + 3 * 54 + 3));

    auto x = make_batch<float, Shape<4, 2, 3>>(3);
    Rng rng(3);
    for (auto& v : x) v = float(rng.normal());
    const auto r = f.forward(x);
    for (int i = 0; i < 3; ++i)
        for (int c = 0; c < 4; ++c)
            for (int p = 0; p < 6; ++p) {
                if (c < 2) CHECK(r.z(i, c, p / 3, p % 3) == x(i, c, p / 3, p % 3));
                else CHECK(r.z(i, c, p / 3, p % 3) != x(i, c, p / 3, p % 3));
            }
}

TEST_CASE_TEMPLATE("image coupling: zero-initialised couplings are the identity (tanh, additive), sigma(2) for sigmoid", B,
                   Reference, Cpu) {
    auto x = make_batch<double, Shape<2, 3, 3>>(2);
    Rng rng(6);
    for (auto& v : x) v = rng.normal();
    Transform<Chain<AffineCoupling, CheckerboardAdditiveCoupling>, Shape<2, 3, 3>, double, B> f(small());
    const auto r = f.forward(x);
    for (std::size_t k = 0; k < x.size(); ++k) CHECK(r.z.data()[k] == x.data()[k]);
    CHECK(r.log_det(0) == 0.0);
    const Options o = small().with(CouplingOptions{.scale = CouplingScale::sigmoid});
    Transform<CheckerboardAffineCoupling, Shape<2, 3, 3>, double, B> g(o);
    const auto s = g.forward(x);
    const double s2 = 1.0 / (1.0 + std::exp(-2.0));
    for (int c = 0; c < 2; ++c)
        for (int h = 0; h < 3; ++h)
            for (int w = 0; w < 3; ++w) {
                const double want = (h + w) % 2 == 0 ? x(1, c, h, w) : s2 * x(1, c, h, w);
                CHECK(s.z(1, c, h, w) == doctest::Approx(want).epsilon(1e-14));
            }
    // 2 channels × 4 transformed pixels (odd h + w on 3×3)
    CHECK(s.log_det(0) == doctest::Approx(8.0 * std::log(s2)).epsilon(1e-14));
}

TEST_CASE_TEMPLATE("image coupling: Glow affine coupling computed by hand on a 1×1 image", B, Reference, Cpu) {
    // Shape<2, 1, 1>: x0 kept, x1 transformed. hidden 1; on a 1×1 image only the centre taps act.
    const Options o = small(1).with(CouplingOptions{.scale = CouplingScale::sigmoid});
    Transform<AffineCoupling, Shape<2, 1, 1>, double, B> f(o);
    auto set = [&](const std::string& name, std::vector<double> v) {
        const TensorInfo& t = tensor(f, name);
        REQUIRE(t.size == v.size());
        std::copy(v.begin(), v.end(), f.params().data(t));
    };
    std::vector<double> w0(9, 100.0), w4(18, 100.0);  // off-centre taps only see padding
    w0[4] = 2.0;                                        // a = relu(2·x0 − 1)
    w4[4] = 3.0;                                        // t = 3·b + 0.25
    w4[9 + 4] = -1.0;                                   // h = −b + 0.5
    set("coupling.net.0.weight", w0);
    set("coupling.net.0.bias", {-1.0});
    set("coupling.net.2.weight", {0.5});  // b = relu(0.5·a + 1)
    set("coupling.net.2.bias", {1.0});
    set("coupling.net.4.weight", w4);
    set("coupling.net.4.bias", {0.25, 0.5});
    xt::xtensor<double, 4> x = {{{{1.5}}, {{2.0}}}};
    // a = relu(3 − 1) = 2;  b = relu(1 + 1) = 2;  t = 6.25;  h = −1.5;  s = σ(0.5)
    const double s = 1.0 / (1.0 + std::exp(-0.5));
    const auto r = f.forward(x);
    CHECK(r.z(0, 0, 0, 0) == 1.5);
    CHECK(r.z(0, 1, 0, 0) == doctest::Approx((2.0 + 6.25) * s).epsilon(1e-14));
    CHECK(r.log_det(0) == doctest::Approx(std::log(s)).epsilon(1e-14));
    const auto b = f.inverse(r.z);
    CHECK(b.x(0, 1, 0, 0) == doctest::Approx(2.0).epsilon(1e-13));
}

TEST_CASE("image coupling: bad options throw invalid_argument naming the coupling") {
    Options o = small(0);
    CHECK_THROWS_WITH_AS((Transform<CheckerboardAffineCoupling, Shape<2, 2, 2>, float, Cpu>{o}),
                         doctest::Contains("coupling 0: Options::hidden must be at least 1 (got 0)"), invalid_argument);
    o = small().with(CouplingOptions{.scale = static_cast<CouplingScale>(5)});
    CHECK_THROWS_WITH_AS((Transform<AffineCoupling, Shape<2, 2, 2>, float, Cpu>{o}),
                         doctest::Contains("unknown CouplingOptions::scale value 5"), invalid_argument);
    o.hidden_layers = 0;  // ignored for images
    CHECK_NOTHROW((Transform<AdditiveCoupling, Shape<2, 2, 2>, float, Cpu>{o}));
}

TEST_CASE_TEMPLATE("image coupling: Cpu equals Reference on a batch large enough to go parallel", R, AffineCoupling,
                   CheckerboardAffineCoupling, CheckerboardAdditiveCoupling) {
    const Options o = small(8).with(CouplingOptions{.scale = CouplingScale::sigmoid, .zero_init_output = false});
    using S = Shape<4, 8, 8>;
    Transform<R, S, float, Cpu> f(o);
    Transform<R, S, float, Reference> g(o);
    add_noise(f, 0.1, 2);
    for (std::size_t k = 0; k < f.params().values().size(); ++k) g.params().values()[k] = f.params().values()[k];
    const int n = 160;  // 160·256 elements per sample-major pass > the parallel threshold
    Rng rng(5);
    std::vector<float> x(std::size_t(n) * S::size), z1(x.size()), z2(x.size()), dz(x.size()), dld(n), dx1(x.size()),
        dx2(x.size());
    for (auto& v : x) v = float(rng.normal());
    for (auto& v : dz) v = float(rng.normal());
    for (auto& v : dld) v = float(rng.normal());
    f.params().zero_grad(), g.params().zero_grad();
    f.forward_raw(x.data(), z1.data(), n);
    g.forward_raw(x.data(), z2.data(), n);
    f.backward_raw(x.data(), z1.data(), dz.data(), dld.data(), dx1.data(), n);
    g.backward_raw(x.data(), z2.data(), dz.data(), dld.data(), dx2.data(), n);
    auto rel = [](const auto& a, const auto& b) {
        double d = 0.0, s = 1.0;
        for (std::size_t k = 0; k < a.size(); ++k) {
            d = std::max(d, std::abs(double(a[k]) - double(b[k])));
            s = std::max(s, std::abs(double(b[k])));
        }
        return d / s;
    };
    CHECK(rel(z1, z2) <= 1e-5);
    CHECK(rel(dx1, dx2) <= 1e-5);
    CHECK(rel(f.gradients(), g.gradients()) <= 1e-4);  // sums over 160·64 pixels in float
    for (int i = 0; i < n; ++i) CHECK(f.last_log_det(n)[std::size_t(i)] == doctest::Approx(g.last_log_det(n)[std::size_t(i)]).epsilon(1e-5));
}

}  // namespace conformance_coupling_image
