// Unit tests of the vector couplings (bijectors/coupling.hpp) and their MLP conditioner (nn/mlp.hpp):
// mask patterns, identity at initialisation, option validation, a case computed by hand, MLP
// gradients against central differences, Cpu against Reference on batches large enough to go parallel.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <bijou/bijectors/coupling.hpp>
#include <bijou/bijou.hpp>
#include <bijou/nn/mlp.hpp>

namespace unit_coupling {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

template <class F>
std::vector<double> mask_of(const F& coupling) {
    const auto& m = coupling.mask();
    REQUIRE(m.size == std::size_t(F::D));
    return std::vector<double>(m.value, m.value + m.size);
}

/// Overwrites a named tensor of a model with the given values (its size must match).
template <class Model>
void set_tensor(Model& f, const std::string& name, const std::vector<double>& v) {
    const TensorInfo* t = f.params().find(name);
    REQUIRE_MESSAGE(t != nullptr, "no tensor named " << name);
    REQUIRE(t->size == v.size());
    auto* p = f.params().data(*t);
    for (std::size_t i = 0; i < v.size(); ++i) p[i] = static_cast<std::remove_pointer_t<decltype(p)>>(v[i]);
}

template <class Model>
const TensorInfo& tensor(const Model& f, const std::string& name) {
    const TensorInfo* t = f.params().find(name);
    REQUIRE_MESSAGE(t != nullptr, "no tensor named " << name);
    return *t;
}

template <class Model>
void add_noise(Model& f, double sd, std::uint64_t seed) {
    Rng rng(seed);
    for (const auto& t : f.params().tensors()) {
        if (!t.trainable) continue;
        auto* p = f.params().data(t);
        for (std::size_t i = 0; i < t.size; ++i) p[i] += static_cast<std::remove_pointer_t<decltype(p)>>(sd * rng.normal());
    }
}

Options small(int hidden = 8, int layers = 2) {
    Options o;
    o.hidden = hidden;
    o.hidden_layers = layers;
    return o;
}

/// max |a − b| / max(max |b|, 1)
template <class A, class B>
double rel_diff(const A& a, const B& b, std::size_t n) {
    double d = 0.0, s = 1.0;
    for (std::size_t i = 0; i < n; ++i) {
        d = std::max(d, std::abs(double(a[i]) - double(b[i])));
        s = std::max(s, std::abs(double(b[i])));
    }
    return d / s;
}

}  // namespace

// ---- masks ----------------------------------------------------------------------------------------

TEST_CASE("coupling: alternating masks flip across consecutive couplings of a Chain") {
    Transform<Chain<AffineCoupling, AffineCoupling>, Shape<5>, float, Reference> f(small());
    const auto& c0 = f.bijector().element<0>();
    const auto& c1 = f.bijector().element<1>();
    CHECK(c0.index() == 0);
    CHECK(c1.index() == 1);
    CHECK(mask_of(c0) == std::vector<double>{1, 0, 1, 0, 1});
    CHECK(mask_of(c1) == std::vector<double>{0, 1, 0, 1, 0});
}

TEST_CASE("coupling: affine and additive couplings share the mask counter") {
    Transform<Chain<AdditiveCoupling, AffineCoupling, AdditiveCoupling>, Shape<4>, double, Reference> f(small());
    CHECK(mask_of(f.bijector().element<0>()) == std::vector<double>{1, 0, 1, 0});
    CHECK(mask_of(f.bijector().element<1>()) == std::vector<double>{0, 1, 0, 1});
    CHECK(mask_of(f.bijector().element<2>()) == std::vector<double>{1, 0, 1, 0});
}

TEST_CASE("coupling: half masks with odd D keep floor(D/2) first, then the rest") {
    Options o = small().with(CouplingOptions{.mask = MaskKind::half});
    o.steps_per_level = 3;
    Transform<Stack<AffineCoupling>, Shape<5>, float, Cpu> f(o);
    REQUIRE(f.bijector().size() == 3);
    CHECK(mask_of(f.bijector()[0]) == std::vector<double>{1, 1, 0, 0, 0});
    CHECK(mask_of(f.bijector()[1]) == std::vector<double>{0, 0, 1, 1, 1});
    CHECK(mask_of(f.bijector()[2]) == std::vector<double>{1, 1, 0, 0, 0});
}

TEST_CASE("coupling: custom masks are used in turn") {
    Options o = small().with(CouplingOptions{.mask = MaskKind::custom, .masks = {{0, 0, 1}, {1, 0, 0}}});
    o.steps_per_level = 3;
    Transform<Stack<AdditiveCoupling>, Shape<3>, double, Reference> f(o);
    CHECK(mask_of(f.bijector()[0]) == std::vector<double>{0, 0, 1});
    CHECK(mask_of(f.bijector()[1]) == std::vector<double>{1, 0, 0});
    CHECK(mask_of(f.bijector()[2]) == std::vector<double>{0, 0, 1});
}

TEST_CASE("coupling: the mask is a buffer named <prefix>.mask and nets follow nn.Sequential naming") {
    Transform<Chain<AffineCoupling, AffineCoupling>, Shape<5>, float, Cpu> f(small(8, 2));
    const auto& m = tensor(f, "1.coupling.mask");
    CHECK_FALSE(m.trainable);
    CHECK(m.shape == std::vector<std::size_t>{5});
    CHECK(tensor(f, "0.coupling.shift_net.0.weight").shape == std::vector<std::size_t>{8, 5});
    CHECK(tensor(f, "0.coupling.shift_net.0.bias").shape == std::vector<std::size_t>{8});
    CHECK(tensor(f, "0.coupling.shift_net.2.weight").shape == std::vector<std::size_t>{8, 8});
    CHECK(tensor(f, "0.coupling.log_scale_net.4.weight").shape == std::vector<std::size_t>{5, 8});
    CHECK(tensor(f, "1.coupling.log_scale_net.4.bias").shape == std::vector<std::size_t>{5});
    CHECK(f.params().find("0.coupling.shift_net.1.weight") == nullptr);  // index 1 is a ReLU
    CHECK(f.params().find("0.coupling.net.0.weight") == nullptr);

    const Options o = small(6, 1).with(CouplingOptions{.net = CouplingNet::shared});
    Transform<AffineCoupling, Shape<3>, float, Cpu> g(o);
    CHECK(tensor(g, "coupling.net.0.weight").shape == std::vector<std::size_t>{6, 3});
    CHECK(tensor(g, "coupling.net.2.weight").shape == std::vector<std::size_t>{6, 6});  // [t | h]
    CHECK(g.params().find("coupling.shift_net.0.weight") == nullptr);
    CHECK(g.params().find("coupling.log_scale_net.0.weight") == nullptr);
    CHECK(g.parameter_count() == std::size_t(6 * 3 + 6 + 6 * 6 + 6));
}

TEST_CASE("coupling: kept coordinates pass through unchanged, transformed ones change") {
    Transform<AffineCoupling, Shape<5>, float, Cpu> f(small());
    add_noise(f, 0.5, 3);
    auto x = make_batch<float, Shape<5>>(7);
    Rng rng(11);
    for (auto& v : x) v = float(rng.normal());
    const auto r = f.forward(x);
    for (int i = 0; i < 7; ++i)
        for (int j = 0; j < 5; ++j) {
            if (j % 2 == 0) CHECK(r.z(i, j) == x(i, j));
            else CHECK(r.z(i, j) != x(i, j));
        }
}

// ---- identity at initialisation ---------------------------------------------------------------------

TEST_CASE_TEMPLATE("coupling: zero-initialised tanh and additive couplings are exactly the identity", Recipe,
                   AffineCoupling, AdditiveCoupling) {
    Transform<Chain<Recipe, Recipe>, Shape<4>, float, Cpu> f(small());
    auto x = make_batch<float, Shape<4>>(5);
    Rng rng(2);
    for (auto& v : x) v = float(3.0 * rng.normal());
    const auto r = f.forward(x);
    for (std::size_t k = 0; k < x.size(); ++k) CHECK(r.z.data()[k] == x.data()[k]);
    for (int i = 0; i < 5; ++i) CHECK(r.log_det(i) == 0.0f);
    const auto b = f.inverse(x);
    for (std::size_t k = 0; k < x.size(); ++k) CHECK(b.x.data()[k] == x.data()[k]);

    // but not when the output layer is random
    const Options o = small().with(CouplingOptions{.zero_init_output = false});
    Transform<Chain<Recipe, Recipe>, Shape<4>, float, Cpu> g(o);
    const auto s = g.forward(x);
    double moved = 0.0;
    for (std::size_t k = 0; k < x.size(); ++k) moved = std::max(moved, double(std::abs(s.z.data()[k] - x.data()[k])));
    CHECK(moved > 1e-3);
}

TEST_CASE("coupling: zero-initialised sigmoid coupling scales the transformed half by sigmoid(2)") {
    const Options o = small().with(CouplingOptions{.net = CouplingNet::shared, .scale = CouplingScale::sigmoid});
    Transform<AffineCoupling, Shape<4>, double, Cpu> f(o);
    auto x = make_batch<double, Shape<4>>(3);
    Rng rng(5);
    for (auto& v : x) v = rng.normal();
    const auto r = f.forward(x);
    const double s2 = 1.0 / (1.0 + std::exp(-2.0));
    for (int i = 0; i < 3; ++i) {
        CHECK(r.z(i, 0) == x(i, 0));
        CHECK(r.z(i, 2) == x(i, 2));
        CHECK(r.z(i, 1) == doctest::Approx(s2 * x(i, 1)).epsilon(1e-14));
        CHECK(r.z(i, 3) == doctest::Approx(s2 * x(i, 3)).epsilon(1e-14));
        CHECK(r.log_det(i) == doctest::Approx(2.0 * std::log(s2)).epsilon(1e-14));
    }
}

// ---- validation ---------------------------------------------------------------------------------------

TEST_CASE("coupling: invalid custom masks throw invalid_argument naming the coupling and the problem") {
    using F = Transform<Chain<AffineCoupling, AffineCoupling>, Shape<4>, float, Cpu>;
    CouplingOptions c{.mask = MaskKind::custom};
    auto build = [&c] { return F{small().with(c)}; };

    c.masks = {};
    CHECK_THROWS_WITH_AS(build(),
                         doctest::Contains("coupling 0: CouplingOptions::mask is MaskKind::custom but CouplingOptions::masks is empty"),
                         invalid_argument);
    c.masks = {{1, 0, 1}};
    CHECK_THROWS_WITH_AS(build(), doctest::Contains("has length 3, expected the event size 4"), invalid_argument);
    c.masks = {{1, 2, 0, 0}};
    CHECK_THROWS_WITH_AS(build(), doctest::Contains("mask value at position 1 is 2"), invalid_argument);
    c.masks = {{1, -1, 0, 0}};
    CHECK_THROWS_WITH_AS(build(), doctest::Contains("mask value at position 1 is -1"), invalid_argument);
    c.masks = {{0, 0, 0, 0}};
    CHECK_THROWS_WITH_AS(build(), doctest::Contains("keeps no feature"), invalid_argument);
    c.masks = {{1, 1, 1, 1}};
    CHECK_THROWS_WITH_AS(build(), doctest::Contains("transforms no feature"), invalid_argument);
    // the second coupling uses the second mask, and the message says so
    c.masks = {{1, 0, 1, 0}, {1, 1, 1, 1}};
    CHECK_THROWS_WITH_AS(build(), doctest::Contains("coupling 1 (CouplingOptions::masks[1]): mask transforms no feature"),
                         invalid_argument);
    c.masks = {{1, 0, 1, 0}, {0, 1, 1, 0}};
    CHECK_NOTHROW(build());
    // every message starts with "bijou: "
    c.masks = {{1}};
    CHECK_THROWS_WITH_AS(build(), doctest::Contains("bijou: coupling 0"), error);
}

TEST_CASE("coupling: bad conditioner options throw invalid_argument") {
    Options o = small();
    o.hidden = 0;
    CHECK_THROWS_WITH_AS((Transform<AffineCoupling, Shape<2>, float, Cpu>{o}),
                         doctest::Contains("coupling 0: Options::hidden must be at least 1 (got 0)"), invalid_argument);
    o = small();
    o.hidden_layers = -2;
    CHECK_THROWS_WITH_AS((Transform<AdditiveCoupling, Shape<2>, float, Cpu>{o}),
                         doctest::Contains("Options::hidden_layers must be at least 1 (got -2)"), invalid_argument);
    o = small().with(CouplingOptions{.scale = static_cast<CouplingScale>(7)});
    CHECK_THROWS_WITH_AS((Transform<AffineCoupling, Shape<2>, float, Cpu>{o}),
                         doctest::Contains("unknown CouplingOptions::scale value 7"), invalid_argument);
    CHECK_THROWS_WITH_AS((Mlp<float, Cpu>{3, 0, 1, 2}), doctest::Contains("hidden width must be at least 1"),
                         invalid_argument);
}

// ---- a case computed by hand ---------------------------------------------------------------------------

TEST_CASE_TEMPLATE("coupling: RealNVP forward and log-det computed by hand", B, Reference, Cpu) {
    // D = 2, coupling 0, alternating mask (1, 0): x0 is kept, x1 transformed; conditioner input (x0, 0).
    // Nets 2 → 2 → 2 (one hidden ReLU layer).
    Transform<AffineCoupling, Shape<2>, double, B> f(small(2, 1));
    set_tensor(f, "coupling.shift_net.0.weight", {0.5, 7, -2, 3});
    set_tensor(f, "coupling.shift_net.0.bias", {0.25, 0.5});
    set_tensor(f, "coupling.shift_net.2.weight", {9, 4, 2, -6});
    set_tensor(f, "coupling.shift_net.2.bias", {5, -1});
    set_tensor(f, "coupling.log_scale_net.0.weight", {-1, 3, 1, 1});
    set_tensor(f, "coupling.log_scale_net.0.bias", {2, -0.5});
    set_tensor(f, "coupling.log_scale_net.2.weight", {4, 1, 0.5, -0.5});
    set_tensor(f, "coupling.log_scale_net.2.bias", {1, 0.25});

    xt::xtensor<double, 2> x = {{1.0, 2.0}, {-1.0, 3.0}};
    // sample 0: shift hidden relu(0.5·1 + 0.25, −2·1 + 0.5) = (0.75, 0)  → t1 = 2·0.75 − 6·0 − 1 = 0.5
    //           scale hidden relu(−1·1 + 2, 1·1 − 0.5)  = (1, 0.5)     → h1 = 0.5·1 − 0.5·0.5 + 0.25 = 0.5
    // sample 1: shift hidden relu(−0.5 + 0.25, 2 + 0.5) = (0, 2.5)     → t1 = −6·2.5 − 1 = −16
    //           scale hidden relu(1 + 2, −1 − 0.5)      = (3, 0)       → h1 = 0.5·3 + 0.25 = 1.75
    const double z01 = 2.0 * std::exp(std::tanh(0.5)) + 0.5;
    const double z11 = 3.0 * std::exp(std::tanh(1.75)) - 16.0;
    const auto r = f.forward(x);
    CHECK(r.z(0, 0) == 1.0);
    CHECK(r.z(1, 0) == -1.0);
    CHECK(r.z(0, 1) == doctest::Approx(z01).epsilon(1e-14));
    CHECK(r.z(1, 1) == doctest::Approx(z11).epsilon(1e-14));
    CHECK(r.log_det(0) == doctest::Approx(std::tanh(0.5)).epsilon(1e-14));
    CHECK(r.log_det(1) == doctest::Approx(std::tanh(1.75)).epsilon(1e-14));
    CHECK(z01 == doctest::Approx(3.67486254285967).epsilon(1e-12));  // the numbers themselves

    const auto b = f.inverse(r.z);
    CHECK(b.x(0, 1) == doctest::Approx(2.0).epsilon(1e-13));
    CHECK(b.x(1, 1) == doctest::Approx(3.0).epsilon(1e-13));
    CHECK(b.log_det(1) == doctest::Approx(-std::tanh(1.75)).epsilon(1e-14));
}

TEST_CASE("coupling: Glow forward and log-det computed by hand (shared net, sigmoid scale)") {
    const Options o = small(1, 1).with(CouplingOptions{.net = CouplingNet::shared, .scale = CouplingScale::sigmoid});
    Transform<AffineCoupling, Shape<2>, double, Cpu> f(o);
    set_tensor(f, "coupling.net.0.weight", {2, 5});
    set_tensor(f, "coupling.net.0.bias", {-1});
    set_tensor(f, "coupling.net.2.weight", {3, 0.5, 7, -1});  // rows: t0, t1, h0, h1
    set_tensor(f, "coupling.net.2.bias", {0, 0.25, 0, 0.5});
    xt::xtensor<double, 2> x = {{1.0, 2.0}};
    // hidden relu(2·1 − 1) = 1;  t1 = 0.5 + 0.25 = 0.75;  h1 = −1 + 0.5 = −0.5;  s = σ(−0.5 + 2) = σ(1.5)
    const double s = 1.0 / (1.0 + std::exp(-1.5));
    const auto r = f.forward(x);
    CHECK(r.z(0, 0) == 1.0);
    CHECK(r.z(0, 1) == doctest::Approx((2.0 + 0.75) * s).epsilon(1e-14));
    CHECK(r.log_det(0) == doctest::Approx(std::log(s)).epsilon(1e-14));
}

TEST_CASE("coupling: NICE forward computed by hand, log-det 0") {
    Transform<AdditiveCoupling, Shape<3>, double, Reference> f(small(1, 1));
    // coupling 0 keeps features 0 and 2; conditioner input (x0, 0, x2)
    set_tensor(f, "coupling.shift_net.0.weight", {1, 100, -1});
    set_tensor(f, "coupling.shift_net.0.bias", {0});
    set_tensor(f, "coupling.shift_net.2.weight", {10, 2, 10});
    set_tensor(f, "coupling.shift_net.2.bias", {1, 1, 1});
    xt::xtensor<double, 2> x = {{3.0, 4.0, 1.0}, {1.0, 4.0, 3.0}};
    // hidden relu(3 − 1) = 2 → t1 = 2·2 + 1 = 5;  second sample relu(1 − 3) = 0 → t1 = 1
    const auto r = f.forward(x);
    CHECK(r.z(0, 0) == 3.0);
    CHECK(r.z(0, 1) == 9.0);
    CHECK(r.z(0, 2) == 1.0);
    CHECK(r.z(1, 1) == 5.0);
    CHECK(r.log_det(0) == 0.0);
    CHECK(r.log_det(1) == 0.0);
}

// ---- backward ------------------------------------------------------------------------------------------

TEST_CASE("coupling: backward leaves the workspace intact (a second backward adds the same gradients)") {
    Options o = small();
    Transform<AffineCoupling, Shape<3>, double, Cpu> f(o);
    add_noise(f, 0.3, 9);
    const int n = 4;
    std::vector<double> x(n * 3), z(n * 3), dz(n * 3), dld(n), dx1(n * 3), dx2(n * 3);
    Rng rng(4);
    for (auto& v : x) v = rng.normal();
    for (auto& v : dz) v = rng.normal();
    for (auto& v : dld) v = rng.normal();
    f.params().zero_grad();
    f.forward_raw(x.data(), z.data(), n);
    f.backward_raw(x.data(), z.data(), dz.data(), dld.data(), dx1.data(), n);
    const std::vector<double> g1(f.gradients().begin(), f.gradients().end());
    f.backward_raw(x.data(), z.data(), dz.data(), dld.data(), dx2.data(), n);
    CHECK(dx1 == dx2);
    double gmax = 0.0;
    for (std::size_t k = 0; k < g1.size(); ++k) {
        CHECK(f.gradients()[k] == doctest::Approx(2.0 * g1[k]).epsilon(1e-12));
        gmax = std::max(gmax, std::abs(g1[k]));
    }
    CHECK(gmax > 1e-3);
}

// ---- the MLP --------------------------------------------------------------------------------------------

TEST_CASE("mlp: state_dict names, shapes and PyTorch's default initialisation") {
    Mlp<double, Reference> net(3, 5, 2, 4);
    ParamSet<double> ps;
    net.declare(ps, "net");
    ps.allocate();
    std::vector<std::string> names;
    for (const auto& t : ps.tensors()) names.push_back(t.name);
    CHECK(names == std::vector<std::string>{"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias", "net.4.weight",
                                            "net.4.bias"});
    CHECK(ps.find("net.0.weight")->shape == std::vector<std::size_t>{5, 3});
    CHECK(ps.find("net.2.weight")->shape == std::vector<std::size_t>{5, 5});
    CHECK(ps.find("net.4.weight")->shape == std::vector<std::size_t>{4, 5});
    CHECK(ps.find("net.4.bias")->shape == std::vector<std::size_t>{4});
    CHECK(net.workspace_size(10) == std::size_t(10 * 5 * 2 + 2 * 10 * 5));

    Rng rng(1);
    net.reset_parameters(rng, true);
    for (int l = 0; l <= 2; ++l) {
        const double bound = 1.0 / std::sqrt(l == 0 ? 3.0 : 5.0);
        double lo = 1e9, hi = -1e9;
        for (const auto* ref : {&net.weight(l), &net.bias(l)})
            for (std::size_t k = 0; k < ref->size; ++k) {
                lo = std::min(lo, (*ref)[k]);
                hi = std::max(hi, (*ref)[k]);
            }
        if (l == 2) {
            CHECK(lo == 0.0);  // zero_last
            CHECK(hi == 0.0);
        } else {
            CHECK(lo >= -bound);
            CHECK(hi <= bound);
            CHECK(hi - lo > 0.5 * bound);  // actually spread over the interval
        }
    }
    net.reset_parameters(rng, false);
    double last = 0.0;
    for (std::size_t k = 0; k < net.weight(2).size; ++k) last = std::max(last, std::abs(net.weight(2)[k]));
    CHECK(last > 0.05);
    CHECK(last <= 1.0 / std::sqrt(5.0));
}

namespace {
template <class B>
void check_mlp_gradients(int layers) {
    CAPTURE(layers);
    const int in = 3, hidden = 5, out = 4, n = 6;
    Mlp<double, B> net(in, hidden, layers, out);
    ParamSet<double> ps;
    net.declare(ps, "net");
    ps.allocate();
    Rng rng(21);
    net.reset_parameters(rng, false);
    for (auto& v : ps.values()) v += 0.3 * rng.normal();

    // the workspace is followed by sentinels that neither pass may touch
    const std::size_t wsize = net.workspace_size(n), guard = 64;
    std::vector<double> x(n * in), dy(n * out), y(n * out), dx(n * in), ws(wsize + guard, -12345.0);
    for (auto& v : x) v = rng.normal();
    for (auto& v : dy) v = rng.normal();
    auto loss = [&](const std::vector<double>& xx) {
        std::vector<double> yy(n * out), w(net.workspace_size(n));
        net.forward(xx.data(), yy.data(), n, w.data());
        double L = 0.0;
        for (std::size_t k = 0; k < yy.size(); ++k) L += dy[k] * yy[k];
        return L;
    };

    ps.zero_grad();
    net.forward(x.data(), y.data(), n, ws.data());
    net.backward(x.data(), dy.data(), dx.data(), n, ws.data());

    const double h = 1e-6;
    double worst = 0.0, scale = 1.0;
    for (std::size_t k = 0; k < x.size(); ++k) {
        std::vector<double> xp = x, xm = x;
        xp[k] += h, xm[k] -= h;
        const double fd = (loss(xp) - loss(xm)) / (2 * h);
        worst = std::max(worst, std::abs(dx[k] - fd));
        scale = std::max(scale, std::abs(fd));
    }
    CHECK(worst / scale < 1e-7);

    worst = 0.0, scale = 1.0;
    int checked = 0;
    auto values = ps.values();
    auto grads = ps.grads();
    for (const auto& t : ps.tensors())
        for (std::size_t k = t.offset; k < t.offset + t.size; ++k) {
            const double saved = values[k];
            values[k] = saved + h;
            const double lp = loss(x);
            values[k] = saved - h;
            const double lm = loss(x);
            values[k] = saved;
            const double fd = (lp - lm) / (2 * h);
            INFO(t.name << "[" << k - t.offset << "]: backward " << grads[k] << ", central difference " << fd);
            CHECK(std::abs(grads[k] - fd) < 1e-7 * std::max(1.0, std::abs(fd)));
            ++checked;
        }
    CHECK(checked == int(ps.count()));
    CHECK(std::all_of(ws.begin() + std::ptrdiff_t(wsize), ws.end(), [](double v) { return v == -12345.0; }));

    // gradients accumulate (+=); dx may be omitted
    const std::vector<double> g1(grads.begin(), grads.end());
    net.backward(x.data(), dy.data(), nullptr, n, ws.data());
    for (std::size_t k = 0; k < g1.size(); ++k) CHECK(grads[k] == doctest::Approx(2.0 * g1[k]).epsilon(1e-13));
}
}  // namespace

TEST_CASE_TEMPLATE("mlp: gradients match central differences (double)", B, Reference, Cpu) {
    for (int layers : {1, 2, 3}) check_mlp_gradients<B>(layers);
}

TEST_CASE("mlp: Cpu equals Reference on a batch large enough to run in parallel") {
    // n·hidden above the kernels' parallel threshold, hidden > 64 so the bias gradient has several tiles
    const int in = 2, hidden = 96, layers = 2, out = 80, n = 512;
    Mlp<float, Reference> ref(in, hidden, layers, out);
    Mlp<float, Cpu> cpu(in, hidden, layers, out);
    ParamSet<float> pr, pc;
    ref.declare(pr, "net");
    cpu.declare(pc, "net");
    pr.allocate();
    pc.allocate();
    Rng rng(8);
    ref.reset_parameters(rng, false);
    std::copy(pr.values().begin(), pr.values().end(), pc.values().begin());

    std::vector<float> x(n * in), dy(n * out), yr(n * out), yc(n * out), dxr(n * in), dxc(n * in);
    std::vector<float> wr(ref.workspace_size(n)), wc(cpu.workspace_size(n));
    for (auto& v : x) v = float(rng.normal());
    for (auto& v : dy) v = float(rng.normal());
    ref.forward(x.data(), yr.data(), n, wr.data());
    cpu.forward(x.data(), yc.data(), n, wc.data());
    CHECK(rel_diff(yc, yr, yr.size()) < 1e-5);
    ref.backward(x.data(), dy.data(), dxr.data(), n, wr.data());
    cpu.backward(x.data(), dy.data(), dxc.data(), n, wc.data());
    CHECK(rel_diff(dxc, dxr, dxr.size()) < 1e-5);
    CHECK(rel_diff(pc.grads(), pr.grads(), pr.grads().size()) < 1e-5);
    // the output layer's bias gradient (both see the same dy) sums in the same order in double:
    // bit-for-bit equal
    const auto& b = *pr.find("net.4.bias");
    for (std::size_t k = b.offset; k < b.offset + b.size; ++k) CHECK(pc.grads()[k] == pr.grads()[k]);
}

TEST_CASE("coupling: Cpu equals Reference on a batch large enough to run in parallel") {
    const Options o = small(4, 1).with(CouplingOptions{.scale = CouplingScale::sigmoid});
    using Fc = Transform<AffineCoupling, Shape<2>, double, Cpu>;
    using Fr = Transform<AffineCoupling, Shape<2>, double, Reference>;
    Fc fc(o);
    Fr fr(o);
    add_noise(fc, 0.5, 12);
    std::copy(fc.parameters().begin(), fc.parameters().end(), fr.parameters().begin());
    const int n = 20000;  // n·D above the coupling kernels' parallel threshold
    std::vector<double> x(n * 2), zc(n * 2), zr(n * 2), dz(n * 2), dld(n), dxc(n * 2), dxr(n * 2), xb(n * 2);
    Rng rng(13);
    for (auto& v : x) v = 2.0 * rng.normal();
    for (auto& v : dz) v = rng.normal();
    for (auto& v : dld) v = rng.normal();
    fc.forward_raw(x.data(), zc.data(), n);
    fr.forward_raw(x.data(), zr.data(), n);
    CHECK(rel_diff(zc, zr, zr.size()) < 1e-13);
    CHECK(rel_diff(fc.last_log_det(n), fr.last_log_det(n), std::size_t(n)) < 1e-13);
    fc.params().zero_grad();
    fr.params().zero_grad();
    fc.backward_raw(x.data(), zc.data(), dz.data(), dld.data(), dxc.data(), n);
    fr.backward_raw(x.data(), zr.data(), dz.data(), dld.data(), dxr.data(), n);
    CHECK(rel_diff(dxc, dxr, dxr.size()) < 1e-12);
    CHECK(rel_diff(fc.gradients(), fr.gradients(), fr.gradients().size()) < 1e-12);
    fc.inverse_raw(zc.data(), xb.data(), n);
    CHECK(rel_diff(xb, x, x.size()) < 1e-12);
}

TEST_CASE("coupling: separate nets run at once on two threads and give the bits of one thread") {
    // Nets large enough (≥ 1e6 flops per pass) for kernels::mlp_concurrently to put the shift net and
    // the log-scale net on a thread each when two threads are available.
    const Options o = small(64, 2);
    using Fc = Transform<AffineCoupling, Shape<2>, float, Cpu>;
    using Fr = Transform<AffineCoupling, Shape<2>, float, Reference>;
    Fc fc(o);
    Fr fr(o);
    add_noise(fc, 0.3, 21);
    std::copy(fc.parameters().begin(), fc.parameters().end(), fr.parameters().begin());
    const int n = 512;
    std::vector<float> x(n * 2), dz(n * 2), dld(n, 0.5f), zr(n * 2), dxr(n * 2);
    Rng rng(22);
    for (auto& v : x) v = float(2.0 * rng.normal());
    for (auto& v : dz) v = float(rng.normal());
    struct Run {
        std::vector<float> z, dx, grads, xb;
        std::vector<double> ld;
    };
    auto run = [&](int threads) {
        const int saved = num_threads();
        set_num_threads(threads);
        Run r{std::vector<float>(n * 2), std::vector<float>(n * 2), {}, std::vector<float>(n * 2), {}};
        fc.forward_raw(x.data(), r.z.data(), n);
        const auto ld = fc.last_log_det(n);
        r.ld.assign(ld.begin(), ld.end());
        fc.params().zero_grad();
        fc.backward_raw(x.data(), r.z.data(), dz.data(), dld.data(), r.dx.data(), n);
        r.grads.assign(fc.gradients().begin(), fc.gradients().end());
        fc.inverse_raw(r.z.data(), r.xb.data(), n);
        set_num_threads(saved);
        return r;
    };
    const Run one = run(1), two = run(2);
    CHECK(one.z == two.z);
    CHECK(one.ld == two.ld);
    CHECK(one.dx == two.dx);
    CHECK(one.grads == two.grads);
    CHECK(one.xb == two.xb);
    // and both nets did their part: the Reference backend agrees
    fr.forward_raw(x.data(), zr.data(), n);
    CHECK(rel_diff(two.z, zr, zr.size()) < 1e-5);
    fr.params().zero_grad();
    fr.backward_raw(x.data(), zr.data(), dz.data(), dld.data(), dxr.data(), n);
    CHECK(rel_diff(two.dx, dxr, dxr.size()) < 1e-4);
    CHECK(rel_diff(two.grads, fr.gradients(), fr.gradients().size()) < 1e-4);
    CHECK(rel_diff(two.xb, x, x.size()) < 1e-5);
}

}  // namespace unit_coupling
