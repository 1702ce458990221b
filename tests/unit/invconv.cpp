// Unit tests of InvConv1x1, InvConv1x1LU and Permute: initialisation, the LU parametrisation, the
// log-det against Eigen, errors for singular / non-finite weights, and permutation bookkeeping.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include <bijou/bijectors/invconv1x1.hpp>
#include <bijou/bijectors/permute.hpp>
#include <bijou/bijou.hpp>

namespace unit_invconv {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

template <class T>
constexpr double tol = std::is_same_v<T, float> ? 1e-6 : 1e-12;  // float: W stored in float

/// Sets a named tensor of a Transform from doubles.
template <class F>
void set_tensor(F& f, const std::string& name, const std::vector<double>& v) {
    const TensorInfo* t = f.params().find(name);
    REQUIRE_MESSAGE(t != nullptr, name);
    REQUIRE(t->size == v.size());
    auto* p = f.params().data(*t);
    for (std::size_t i = 0; i < v.size(); ++i) p[i] = static_cast<typename F::scalar>(v[i]);
}

template <class F>
std::vector<double> get_tensor(const F& f, const std::string& name) {
    const TensorInfo* t = f.params().find(name);
    REQUIRE_MESSAGE(t != nullptr, name);
    const auto* p = f.params().data(*t);
    return std::vector<double>(p, p + t->size);
}

std::vector<double> gaussian(std::size_t n, Rng& rng, double scale = 1.0) {
    std::vector<double> v(n);
    for (auto& x : v) x = scale * rng.normal();
    return v;
}

double max_abs_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) { return (a - b).cwiseAbs().maxCoeff(); }

bool is_permutation_of_iota(std::vector<int> p) {
    std::sort(p.begin(), p.end());
    for (std::size_t i = 0; i < p.size(); ++i)
        if (p[i] != int(i)) return false;
    return true;
}

template <class F>
void fill_gaussian(F& x, Rng& rng) {
    for (auto& v : x) v = static_cast<typename F::value_type>(rng.normal());
}

}  // namespace

TEST_CASE_TEMPLATE("InvConv1x1LU: P·L·(U + diag(sign·exp(log_s))) reconstructs the initial rotation", T, float,
                   double) {
    auto check = [&]<class S>() {
        constexpr int C = channels_of<S>;
        Transform<InvConv1x1LU, S, T, Reference> lu;
        Transform<InvConv1x1, S, T, Reference> plain;
        Rng r1(42), r2(42), r3(42);
        lu.bijector().reset_parameters(r1);
        plain.bijector().reset_parameters(r2);
        const Eigen::MatrixXd w0 = detail::random_rotation(C, r3);

        const Eigen::MatrixXd w = lu.bijector().matrix();
        INFO("C = " << C << ", W =\n" << w << "\nW0 =\n" << w0);
        CHECK(max_abs_diff(w, w0) <= 1e-6);
        CHECK(max_abs_diff(plain.bijector().matrix(), w0) <= tol<T>);  // same draw, stored in T

        // Stored factors have the documented structure: unused triangles zero, sign ±1, P a permutation.
        const auto lower = get_tensor(lu, "invconv.lower"), upper = get_tensor(lu, "invconv.upper");
        const auto sign = get_tensor(lu, "invconv.sign");
        for (int i = 0; i < C; ++i) {
            CHECK(std::abs(sign[std::size_t(i)]) == 1.0);
            for (int j = 0; j < C; ++j) {
                if (i <= j) CHECK(lower[std::size_t(i * C + j)] == 0.0);
                if (i >= j) CHECK(upper[std::size_t(i * C + j)] == 0.0);
            }
        }
        CHECK(is_permutation_of_iota(lu.bijector().permutation()));
        // |det W0| = 1, so Σ log_s = 0
        CHECK(std::abs(lu.bijector().log_abs_det()) <= 1e-6);
    };
    check.template operator()<Shape<1>>();
    check.template operator()<Shape<5>>();
    check.template operator()<Shape<6, 2, 2>>();
    check.template operator()<Shape<16, 1, 1>>();
}

TEST_CASE_TEMPLATE("InvConv1x1: random initialisation is orthogonal with |det W| = 1", T, float, double) {
    auto check = [&]<class R, class S>() {
        constexpr int C = channels_of<S>;
        for (std::uint64_t seed : {1u, 2u, 3u}) {
            Options o;
            o.seed = seed;
            Transform<R, S, T, Cpu> f(o);
            const Eigen::MatrixXd w = f.bijector().matrix();
            INFO("C = " << C << ", seed " << seed << ", W =\n" << w);
            CHECK(max_abs_diff(w.transpose() * w, Eigen::MatrixXd::Identity(C, C)) <= 1e-6);
            CHECK(std::abs(std::abs(w.determinant()) - 1.0) <= 1e-6);
            CHECK(std::abs(f.bijector().log_abs_det()) <= 1e-6);

            // forward then: ‖z‖ = ‖x‖ per position and log-det 0
            auto x = make_batch<T, S>(2);
            Rng rng(seed + 100);
            fill_gaussian(x, rng);
            const auto fwd = f.forward(x);
            CHECK(std::abs(double(fwd.log_det(0))) <= 1e-5);
            CHECK(std::abs(double(xt::sum(x * x)()) - double(xt::sum(fwd.z * fwd.z)())) <= 1e-4);
        }
        // Different seeds give different rotations.
        Options a, b;
        a.seed = 1, b.seed = 2;
        Transform<R, S, T, Cpu> fa(a), fb(b);
        if (C > 1) CHECK(max_abs_diff(fa.bijector().matrix(), fb.bijector().matrix()) > 1e-2);
    };
    check.template operator()<InvConv1x1, Shape<3>>();
    check.template operator()<InvConv1x1, Shape<8, 2, 2>>();
    check.template operator()<InvConv1x1LU, Shape<3>>();
    check.template operator()<InvConv1x1LU, Shape<8, 2, 2>>();
}

TEST_CASE_TEMPLATE("InvConv1x1: z = W·x per position and log-det = HW·log|det W| (Eigen) for random W", B,
                   Reference, Cpu) {
    using S = Shape<3, 2, 2>;  // C = 3, HW = 4
    constexpr int C = 3, HW = 4, n = 2;
    Transform<InvConv1x1, S, double, B> f;
    Rng rng(5);
    const std::vector<double> wv = gaussian(C * C, rng);
    set_tensor(f, "invconv.weight", wv);
    const Eigen::MatrixXd w = Eigen::Map<const Eigen::Matrix<double, C, C, Eigen::RowMajor>>(wv.data());
    const double want = HW * std::log(std::abs(w.fullPivLu().determinant()));
    REQUIRE(std::abs(want) > 0.1);  // a non-trivial determinant

    auto x = make_batch<double, S>(n);
    fill_gaussian(x, rng);
    const auto fwd = f.forward(x);
    for (int i = 0; i < n; ++i) CHECK(fwd.log_det(i) == doctest::Approx(want).epsilon(1e-12));
    CHECK(f.bijector().log_abs_det() == doctest::Approx(want / HW).epsilon(1e-12));
    for (int i = 0; i < n; ++i)
        for (int a = 0; a < C; ++a)
            for (int h = 0; h < 2; ++h)
                for (int v = 0; v < 2; ++v) {
                    double acc = 0.0;
                    for (int b = 0; b < C; ++b) acc += w(a, b) * x(i, b, h, v);
                    CHECK(fwd.z(i, a, h, v) == doctest::Approx(acc).epsilon(1e-12));
                }
    const auto inv = f.inverse(fwd.z);
    for (int i = 0; i < n; ++i) CHECK(inv.log_det(i) == doctest::Approx(-want).epsilon(1e-12));
    CHECK(double(xt::amax(xt::abs(inv.x - x))()) <= 1e-12);
}

TEST_CASE("InvConv1x1LU: log-det = HW·Σ log_s = HW·log|det W| (Eigen) for random factors") {
    using S = Shape<4, 1, 3>;  // C = 4, HW = 3
    constexpr int C = 4, HW = 3;
    Transform<InvConv1x1LU, S, double, Reference> f;
    Rng rng(9);
    set_tensor(f, "invconv.lower", gaussian(C * C, rng, 0.5));
    set_tensor(f, "invconv.upper", gaussian(C * C, rng, 0.5));
    const std::vector<double> log_s = gaussian(C, rng, 0.7);
    set_tensor(f, "invconv.log_s", log_s);
    set_tensor(f, "invconv.sign", {1, -1, -1, 1});
    set_tensor(f, "invconv.perm", {2, 0, 3, 1});

    const Eigen::MatrixXd w = f.bijector().matrix();
    const double want = HW * std::log(std::abs(w.fullPivLu().determinant()));
    CHECK(want == doctest::Approx(HW * std::accumulate(log_s.begin(), log_s.end(), 0.0)).epsilon(1e-12));
    REQUIRE(std::abs(want) > 0.1);

    // W = P·L·U' with P[c, perm[c]] = 1: row c of W is row perm[c] of L·U'.
    Eigen::MatrixXd L = Eigen::MatrixXd::Identity(C, C), U = Eigen::MatrixXd::Zero(C, C), P = Eigen::MatrixXd::Zero(C, C);
    const auto lower = get_tensor(f, "invconv.lower"), upper = get_tensor(f, "invconv.upper");
    const std::vector<double> sign{1, -1, -1, 1};
    const std::vector<int> perm{2, 0, 3, 1};
    for (int i = 0; i < C; ++i) {
        P(i, perm[std::size_t(i)]) = 1.0;
        U(i, i) = sign[std::size_t(i)] * std::exp(log_s[std::size_t(i)]);
        for (int j = 0; j < C; ++j) {
            if (i > j) L(i, j) = lower[std::size_t(i * C + j)];
            if (i < j) U(i, j) = upper[std::size_t(i * C + j)];
        }
    }
    CHECK(max_abs_diff(w, P * L * U) <= 1e-12);

    auto x = make_batch<double, S>(3);
    fill_gaussian(x, rng);
    const auto fwd = f.forward(x);
    for (int i = 0; i < 3; ++i) CHECK(fwd.log_det(i) == doctest::Approx(want).epsilon(1e-12));
    for (int a = 0; a < C; ++a)
        for (int p = 0; p < HW; ++p) {
            double acc = 0.0;
            for (int b = 0; b < C; ++b) acc += w(a, b) * x(1, b, 0, p);
            CHECK(fwd.z(1, a, 0, p) == doctest::Approx(acc).epsilon(1e-12));
        }
    const auto inv = f.inverse(fwd.z);
    CHECK(inv.log_det(2) == doctest::Approx(-want).epsilon(1e-12));
    CHECK(double(xt::amax(xt::abs(inv.x - x))()) <= 1e-12);
}

TEST_CASE_TEMPLATE("InvConv1x1: a singular or non-finite weight throws bijou::numerical_error", T, float, double) {
    Transform<InvConv1x1, Shape<3, 2, 1>, T, Cpu> f;
    auto z = make_batch<T, Shape<3, 2, 1>>(2);
    z.fill(T(0.5));
    // Rank 2: row 2 = row 0 + row 1, exactly representable.
    set_tensor(f, "invconv.weight", {1, 2, 3, 4, 5, 6, 5, 7, 9});
    CHECK_THROWS_AS(f.forward(z), numerical_error);
    CHECK_THROWS_AS(f.inverse(z), numerical_error);
    CHECK_THROWS_AS(f.bijector().log_abs_det(), numerical_error);
    try {
        f.forward(z);
        FAIL("expected numerical_error");
    } catch (const numerical_error& e) {
        const std::string m = e.what();
        INFO(m);
        CHECK(m.find("bijou: InvConv1x1 'invconv.weight'") != std::string::npos);
        CHECK(m.find("singular") != std::string::npos);
        CHECK(m.find("pivot 2") != std::string::npos);
    }
    // All zeros.
    set_tensor(f, "invconv.weight", std::vector<double>(9, 0.0));
    CHECK_THROWS_AS(f.forward(z), numerical_error);
    // Non-finite entry: named with its index and value.
    set_tensor(f, "invconv.weight", {1, 0, 0, 0, 1, 0, 0, 0, 1});
    CHECK_NOTHROW(f.forward(z));
    f.params().data(*f.params().find("invconv.weight"))[5] = std::numeric_limits<T>::quiet_NaN();
    try {
        f.inverse(z);
        FAIL("expected numerical_error");
    } catch (const numerical_error& e) {
        const std::string m = e.what();
        INFO(m);
        CHECK(m.find("weight[1, 2] = nan") != std::string::npos);
    }
}

TEST_CASE("InvConv1x1LU: a log_s that underflows or is not finite throws bijou::numerical_error") {
    Transform<InvConv1x1LU, Shape<3>, double, Reference> f;
    xt::xtensor<double, 2> x = {{0.1, 0.2, 0.3}};
    CHECK_NOTHROW(f.forward(x));
    auto* ls = f.params().data(*f.params().find("invconv.log_s"));
    const double saved = ls[1];
    ls[1] = -1000.0;  // exp underflows to 0: W singular
    try {
        f.forward(x);
        FAIL("expected numerical_error");
    } catch (const numerical_error& e) {
        const std::string m = e.what();
        INFO(m);
        CHECK(m.find("InvConv1x1LU 'invconv.log_s'[1] = -1000") != std::string::npos);
        CHECK(m.find("singular") != std::string::npos);
    }
    ls[1] = std::numeric_limits<double>::infinity();
    CHECK_THROWS_AS(f.inverse(x), numerical_error);
    ls[1] = saved;
    f.params().data(*f.params().find("invconv.lower"))[3] = std::nan("");  // lower[1, 0]: used
    CHECK_THROWS_AS(f.forward(x), numerical_error);
    f.params().data(*f.params().find("invconv.lower"))[3] = 0.0;
    f.params().data(*f.params().find("invconv.lower"))[1] = std::nan("");  // lower[0, 1]: unused
    CHECK_NOTHROW(f.forward(x));
    // A corrupt permutation buffer is reported, not read out of bounds.
    auto* perm = f.params().data(*f.params().find("invconv.perm"));
    perm[0] = perm[1];
    CHECK_THROWS_AS(f.forward(x), bijou::error);
}

TEST_CASE("Permute: shuffles are valid, differ between Permutes of one model and are reproducible") {
    using S = Shape<16>;
    using F = Transform<Chain<Permute, Permute>, S, double, Reference>;
    Options o = Options{}.with(PermuteOptions{.kind = PermuteKind::shuffle});
    o.seed = 11;
    F f(o), same(o);
    Options o2 = o;
    o2.seed = 12;
    F other(o2);

    const std::vector<int> p0 = f.bijector().element<0>().permutation();
    const std::vector<int> p1 = f.bijector().element<1>().permutation();
    std::vector<int> iota(16);
    std::iota(iota.begin(), iota.end(), 0);
    CHECK(is_permutation_of_iota(p0));
    CHECK(is_permutation_of_iota(p1));
    CHECK(p0 != iota);
    CHECK(p0 != p1);
    CHECK(same.bijector().element<0>().permutation() == p0);
    CHECK(same.bijector().element<1>().permutation() == p1);
    CHECK(other.bijector().element<0>().permutation() != p0);
    // Stored as buffers under state_dict names, not as trainable parameters.
    CHECK(f.parameter_count() == 0);
    const auto b0 = get_tensor(f, "0.permute.perm");
    for (int c = 0; c < 16; ++c) CHECK(b0[std::size_t(c)] == double(p0[std::size_t(c)]));

    // forward applies z[c] = x[p0[c]] then z'[c] = z[p1[c]].
    xt::xtensor<double, 2> x = xt::zeros<double>({1, 16});
    for (int c = 0; c < 16; ++c) x(0, c) = 100.0 + c;
    const auto fwd = f.forward(x);
    for (int c = 0; c < 16; ++c) CHECK(fwd.z(0, c) == 100.0 + p0[std::size_t(p1[std::size_t(c)])]);
    CHECK(fwd.log_det(0) == 0.0);
    const auto inv = f.inverse(fwd.z);
    CHECK(inv.x == x);
    CHECK(inv.log_det(0) == 0.0);
}

TEST_CASE("Permute: reverse reverses features (vectors) and channels (images)") {
    {
        Transform<Permute, Shape<4>, float, Cpu> f;  // PermuteKind::reverse is the default
        xt::xtensor<float, 2> x = {{1, 2, 3, 4}, {5, 6, 7, 8}};
        const auto fwd = f.forward(x);
        xt::xtensor<float, 2> want = {{4, 3, 2, 1}, {8, 7, 6, 5}};
        CHECK(fwd.z == want);
        CHECK(f.bijector().permutation() == std::vector<int>{3, 2, 1, 0});
    }
    {
        using S = Shape<3, 2, 2>;
        Transform<Permute, S, double, Cpu> f;
        auto x = make_batch<double, S>(2);
        for (std::size_t k = 0; k < x.size(); ++k) x.data()[k] = double(k);
        const auto fwd = f.forward(x);
        for (int i = 0; i < 2; ++i)
            for (int c = 0; c < 3; ++c)
                for (int h = 0; h < 2; ++h)
                    for (int w = 0; w < 2; ++w) CHECK(fwd.z(i, c, h, w) == x(i, 2 - c, h, w));
        CHECK(f.inverse(fwd.z).x == x);
    }
}

TEST_CASE_TEMPLATE("Permute: forward is P·x, inverse and backward are Pᵀ (a 4-cycle, not an involution)", B,
                   Reference, Cpu) {
    using S = Shape<4, 1, 2>;
    Transform<Permute, S, double, B> f;
    set_tensor(f, "permute.perm", {1, 2, 3, 0});
    const std::vector<int> perm{1, 2, 3, 0};
    auto x = make_batch<double, S>(2), dz = make_batch<double, S>(2), dx = make_batch<double, S>(2);
    for (std::size_t k = 0; k < x.size(); ++k) x.data()[k] = double(k), dz.data()[k] = 100.0 + double(k);
    const auto fwd = f.forward(x);
    std::vector<double> dld(2, 1.0);
    f.backward_raw(x.data(), fwd.z.data(), dz.data(), dld.data(), dx.data(), 2);
    for (int i = 0; i < 2; ++i)
        for (int c = 0; c < 4; ++c)
            for (int p = 0; p < 2; ++p) {
                const int pc = perm[std::size_t(c)];
                CHECK(fwd.z(i, c, 0, p) == x(i, pc, 0, p));    // z[c] = x[perm[c]]
                CHECK(dx(i, pc, 0, p) == dz(i, c, 0, p));      // dx[perm[c]] = dz[c]
            }
    CHECK(f.inverse(fwd.z).x == x);
}

TEST_CASE("Permute: a corrupt perm buffer throws bijou::error naming the tensor") {
    Transform<Permute, Shape<3>, float, Reference> f;
    xt::xtensor<float, 2> x = {{1, 2, 3}};
    auto* p = f.params().data(*f.params().find("permute.perm"));
    p[2] = 7;
    try {
        f.forward(x);
        FAIL("expected bijou::error");
    } catch (const bijou::error& e) {
        const std::string m = e.what();
        INFO(m);
        CHECK(m.find("Permute buffer 'permute.perm'") != std::string::npos);
        CHECK(m.find("entry 2") != std::string::npos);
    }
}

TEST_CASE_TEMPLATE("InvConv1x1 (Cpu): weight gradients do not depend on the thread count", R, InvConv1x1, InvConv1x1LU) {
    using S = Shape<8, 8, 8>;
    constexpr int n = 32;
    Transform<R, S, float, Cpu> f;
    Rng rng(3);
    for (auto& v : f.parameters()) v += float(0.1 * rng.normal());
    std::vector<float> x(std::size_t(n) * S::size), z(x.size()), dz(x.size()), dx(x.size()), dld(n, 0.5f);
    for (auto& v : x) v = float(rng.normal());
    for (auto& v : dz) v = float(rng.normal());
    auto grads = [&](int threads) {
        const int saved = num_threads();
        set_num_threads(threads);
        f.params().zero_grad();
        f.forward_raw(x.data(), z.data(), n);
        f.backward_raw(x.data(), z.data(), dz.data(), dld.data(), dx.data(), n);
        set_num_threads(saved);
        return std::vector<float>(f.gradients().begin(), f.gradients().end());
    };
    const auto g1 = grads(1), g2 = grads(2), g3 = grads(3);
    CHECK(std::any_of(g1.begin(), g1.end(), [](float v) { return v != 0.0f; }));
    CHECK(g1 == g2);
    CHECK(g1 == g3);
}

}  // namespace unit_invconv
