// Unit tests of the rational-quadratic spline (kernels/spline_formula.hpp) and its coupling
// (bijectors/spline_coupling.hpp): the places where spline implementations fail (inputs on bin edges,
// exactly at ±B, deep in the tails, a nearly vanishing discriminant), gradients with respect to the
// raw parameters against central differences in double, identity at initialisation, option
// validation, Cpu against Reference on a batch large enough to go parallel, checkpoints.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include <bijou/bijou.hpp>
#include <bijou/io/checkpoint.hpp>
#include <bijou/testing/conformance.hpp>

#include <unistd.h>

namespace unit_spline {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;
namespace sf = bijou::kernels::spline_formula;

namespace {

/// Raw parameters of one spline with bins of very different widths, heights and slopes.
std::vector<double> rough_params(int bins, std::uint64_t seed, double scale = 1.5) {
    Rng rng(seed);
    std::vector<double> p(std::size_t(sf::params_per_element(bins)));
    for (auto& v : p) v = scale * rng.normal();
    return p;
}

/// The x knots of a spline (x_0 = −B … x_K = B), as the formula lays them out.
template <class T>
std::vector<T> x_knots(const sf::Spline<T>& sp, const std::vector<T>& p) {
    std::vector<T> k{-sp.bound};
    for (int b = 0; b < sp.bins; ++b) {
        // the bin containing a point just right of the last knot ends at the next knot
        const T probe = b + 1 < sp.bins ? std::nextafter(k.back(), sp.bound) : sp.bound;
        const sf::Bin<T> bin = sf::locate<false>(sp, p.data(), 1, probe);
        REQUIRE(bin.k == b);
        k.push_back(bin.x + bin.w);
    }
    return k;
}

/// ∂L/∂x and ∂L/∂p by central differences for L = dz·z + dld·log-det (double).
struct Fd {
    double dx;
    std::vector<double> dp;
};
Fd central(const sf::Spline<double>& sp, const std::vector<double>& p, double x, double dz, double dld, double h = 1e-6) {
    auto L = [&](double xx, const std::vector<double>& pp) {
        const auto r = sf::forward(sp, pp.data(), 1, xx);
        return dz * r.value + dld * r.log_det;
    };
    Fd f{(L(x + h, p) - L(x - h, p)) / (2 * h), {}};
    for (std::size_t q = 0; q < p.size(); ++q) {
        auto a = p, b = p;
        a[q] += h, b[q] -= h;
        f.dp.push_back((L(x, a) - L(x, b)) / (2 * h));
    }
    return f;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
    double d = 0;
    for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
    return d;
}

}  // namespace

// ---- the element formula ----------------------------------------------------------------------------

TEST_CASE("spline: zero raw parameters are the identity, log-det 0, on [-B, B] and in the tails") {
    const auto sp = sf::make_spline<float>(8, 3.0, 1e-3, 1e-3, 1e-3);
    const std::vector<float> p(std::size_t(sf::params_per_element(8)), 0.0f);
    for (float x = -5.0f; x <= 5.0f; x += 0.01f) {
        const auto r = sf::forward(sp, p.data(), 1, x);
        CHECK(r.value == doctest::Approx(x).epsilon(1e-6).scale(1));
        CHECK(std::abs(r.log_det) < 1e-6f);
    }
}

TEST_CASE("spline: random splines are monotonic, continuous at the knots and at ±B, and invert") {
    for (int bins : {2, 5, 16}) {
        const auto sp = sf::make_spline<double>(bins, 2.0, 1e-3, 1e-3, 1e-3);
        for (std::uint64_t seed = 1; seed <= 20; ++seed) {
            const auto p = rough_params(bins, seed);
            double prev = -std::numeric_limits<double>::infinity();
            for (double x = -2.5; x <= 2.5; x += 1e-3) {
                const auto r = sf::forward(sp, p.data(), 1, x);
                REQUIRE(r.value > prev);  // strictly increasing, tails included
                prev = r.value;
                const auto back = sf::inverse(sp, p.data(), 1, r.value);
                REQUIRE(std::abs(back.value - x) < 1e-10);
                REQUIRE(std::abs(back.log_det - r.log_det) < 1e-8);
            }
            // The image of [−B, B] is [−B, B]: the tails continue the spline without a jump.
            CHECK(sf::forward(sp, p.data(), 1, -2.0).value == doctest::Approx(-2.0).epsilon(1e-12));
            CHECK(sf::forward(sp, p.data(), 1, 2.0).value == doctest::Approx(2.0).epsilon(1e-12));
            CHECK(std::abs(sf::forward(sp, p.data(), 1, 2.0).log_det) < 1e-9);   // derivative 1 at ±B
            CHECK(std::abs(sf::forward(sp, p.data(), 1, -2.0).log_det) < 1e-9);
        }
    }
}

TEST_CASE("spline: inputs exactly on bin edges and at ±B round-trip in float, and the derivative is continuous there") {
    const int bins = 6;
    const auto spd = sf::make_spline<double>(bins, 3.0, 1e-3, 1e-3, 1e-3);
    const auto spf = sf::make_spline<float>(bins, 3.0, 1e-3, 1e-3, 1e-3);
    for (std::uint64_t seed = 1; seed <= 10; ++seed) {
        const auto pd = rough_params(bins, seed, 2.0);
        const std::vector<float> pf(pd.begin(), pd.end());
        auto knots = x_knots(spf, pf);
        REQUIRE(knots.size() == std::size_t(bins + 1));
        knots.front() = -3.0f, knots.back() = 3.0f;  // ±B themselves (the helper's last knot is x + (B − x))
        for (float x : knots) {
            INFO("seed " << seed << " knot " << x);
            const auto r = sf::forward(spf, pf.data(), 1, x);
            REQUIRE(std::isfinite(r.value));
            REQUIRE(std::isfinite(r.log_det));
            const auto back = sf::inverse(spf, pf.data(), 1, r.value);
            CHECK(std::abs(back.value - x) <= 1e-5f);
            // log-dets are compared where the log-derivative varies slowly enough for float positions
            const double xd = double(x), eps = 1e-9;
            const double ld_left = sf::forward(spd, pd.data(), 1, xd - eps).log_det;
            const double ld_right = sf::forward(spd, pd.data(), 1, xd + eps).log_det;
            const double rd = sf::forward(spd, pd.data(), 1, xd).log_det;
            CHECK(std::abs(ld_left - rd) < 1e-3);   // continuous across the knot (and the tails at ±B)
            CHECK(std::abs(ld_right - rd) < 1e-3);
            // the float value is the double spline's at the same point (float rounding only)
            CHECK(std::abs(double(r.value) - sf::forward(spd, pd.data(), 1, xd).value) <= 1e-5);
        }
    }
}

TEST_CASE("spline: deep in the tails the map is the identity with log-det 0 and no parameter gradient") {
    const auto sp = sf::make_spline<float>(4, 3.0, 1e-3, 1e-3, 1e-3);
    const auto pd = rough_params(4, 3);
    const std::vector<float> p(pd.begin(), pd.end());
    std::vector<float> dp(p.size(), 7.0f);
    for (float x : {-1e30f, -1e6f, -3.0001f, 3.0001f, 1e6f, 1e30f, std::numeric_limits<float>::max()}) {
        const auto r = sf::forward(sp, p.data(), 1, x);
        CHECK(r.value == x);
        CHECK(r.log_det == 0.0f);
        const auto back = sf::inverse(sp, p.data(), 1, x);
        CHECK(back.value == x);
        CHECK(back.log_det == 0.0f);
        CHECK(sf::backward(sp, p.data(), 1, x, 0.5f, 2.0f, dp.data()) == 0.5f);
        for (float g : dp) CHECK(g == 0.0f);
    }
}

TEST_CASE("spline: a nearly vanishing discriminant (extreme derivatives) still inverts stably in float") {
    // Derivatives near δ_min and far above the bin's slope at its two ends make the quadratic's
    // discriminant b² − 4ac tiny against b² in parts of a bin, and b negative near its right end
    // (where the paper's root form cancels). The inverse is judged by its residual |f(x̂) − y| in
    // double: the inverse of a flat spline is ill-conditioned, but a stable algorithm still returns an
    // x̂ that f maps back onto y up to rounding.
    const int bins = 3;
    const auto spf = sf::make_spline<float>(bins, 1.0, 1e-3, 1e-3, 1e-3);
    const auto spd = sf::make_spline<double>(bins, 1.0, 1e-3, 1e-3, 1e-3);
    double worst = 0.0, smallest_disc = 1.0;
    bool negative_b = false;
    for (double u0 : {-30.0, -8.0, 0.0, 5.0, 12.0}) {
        for (double u1 : {-30.0, -8.0, 0.0, 5.0, 12.0}) {
            std::vector<double> pd{0.0, 0.0, 0.0, 2.0, -2.0, 0.0, u0, u1};  // widths, heights, 2 interior δ
            const std::vector<float> pf(pd.begin(), pd.end());
            for (double y = -1.0; y <= 1.0; y += 1.0 / 1024) {
                const auto bin = sf::locate<true>(spd, pd.data(), 1, y);
                const double s = bin.h / bin.w, e = bin.d1 + bin.d0 - 2 * s, dy = y - bin.y;
                const double a = bin.h * (s - bin.d0) + dy * e, b = bin.h * bin.d0 - dy * e, c = -s * dy;
                if (b != 0) smallest_disc = std::min(smallest_disc, (b * b - 4 * a * c) / (b * b));
                negative_b = negative_b || b < 0;
                const float yf = float(y);
                const auto xf = sf::inverse(spf, pf.data(), 1, yf);
                REQUIRE(std::isfinite(xf.value));
                REQUIRE(std::isfinite(xf.log_det));
                worst = std::max(worst, std::abs(sf::forward(spd, pd.data(), 1, double(xf.value)).value - double(yf)));
                // the double inverse is the inverse of the double forward to double rounding
                const auto xd = sf::inverse(spd, pd.data(), 1, y);
                REQUIRE(std::abs(sf::forward(spd, pd.data(), 1, xd.value).value - y) < 1e-13);
            }
        }
    }
    INFO("smallest relative discriminant " << smallest_disc << ", worst float residual " << worst);
    CHECK(smallest_disc < 1e-3);  // the cases this test is about did occur
    CHECK(negative_b);
    CHECK(worst < 2e-6);
}

TEST_CASE("spline: backward equals central differences in double, for x and every raw parameter") {
    for (int bins : {2, 3, 8}) {
        const auto sp = sf::make_spline<double>(bins, 2.5, 1e-3, 1e-3, 1e-3);
        for (std::uint64_t seed = 1; seed <= 8; ++seed) {
            const auto p = rough_params(bins, seed);
            Rng rng(seed + 100);
            for (int t = 0; t < 8; ++t) {
                const double x = 3.0 * rng.normal();
                const double dz = rng.normal(), dld = rng.normal();
                std::vector<double> dp(p.size());
                const double dx = sf::backward(sp, p.data(), 1, x, dz, dld, dp.data());
                const Fd fd = central(sp, p, x, dz, dld);
                INFO("bins " << bins << " seed " << seed << " x " << x);
                CHECK(std::abs(dx - fd.dx) < 1e-6);
                CHECK(max_abs_diff(dp, fd.dp) < 1e-6);
            }
        }
    }
}

// ---- the coupling -----------------------------------------------------------------------------------

TEST_CASE("spline coupling: starts as the identity, then transforms only the unmasked features") {
    using F = Transform<RationalQuadraticCoupling, Shape<4>, double, Reference>;
    F f(Options{.hidden = 8}.with(SplineOptions{.bins = 4}));
    Rng rng(5);
    std::vector<double> x(3 * 4), z(x.size());
    for (auto& v : x) v = 1.2 * rng.normal();
    f.forward_raw(x.data(), z.data(), 3);
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(z[i] == doctest::Approx(x[i]).epsilon(1e-12).scale(1));
    for (double ld : f.last_log_det(3)) CHECK(std::abs(ld) < 1e-12);

    for (const auto& t : f.params().tensors())
        if (t.trainable)
            for (std::size_t i = 0; i < t.size; ++i) f.params().data(t)[i] += 0.3 * rng.normal();
    f.forward_raw(x.data(), z.data(), 3);
    const auto& m = f.bijector().mask();
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 4; ++j) {
            const std::size_t k = std::size_t(i) * 4 + j;
            if (m.value[j] != 0.0) CHECK(z[k] == x[k]);
            else CHECK(z[k] != x[k]);
        }
}

TEST_CASE("spline coupling: invalid SplineOptions throw bijou::invalid_argument naming the option") {
    using F = Transform<RationalQuadraticCoupling, Shape<3>, float, Reference>;
    auto message = [](const SplineOptions& so) -> std::string {
        try {
            F f(Options{.hidden = 4}.with(so));
        } catch (const invalid_argument& e) {
            return e.what();
        }
        return "(no error)";
    };
    auto has = [](const std::string& s, const std::string& part) {
        INFO(s);
        CHECK(s.find(part) != std::string::npos);
        CHECK(s.find("coupling 0 (rational-quadratic)") != std::string::npos);
    };
    has(message({.bins = 1}), "SplineOptions::bins must be at least 2 (got 1)");
    has(message({.bound = 0.0}), "SplineOptions::bound must be positive and finite (got 0)");
    has(message({.bound = std::numeric_limits<double>::infinity()}), "SplineOptions::bound must be positive and finite");
    has(message({.bound = std::nan("")}), "SplineOptions::bound must be positive and finite");
    has(message({.bins = 10, .min_bin_width = 0.1}), "SplineOptions::min_bin_width must be in [0, 1/bins) (got 0.1 with bins = 10)");
    has(message({.min_bin_height = -1e-3}), "SplineOptions::min_bin_height must be in [0, 1/bins)");
    has(message({.min_derivative = 0.0}), "SplineOptions::min_derivative must be in (0, 1) (got 0)");
    has(message({.min_derivative = 1.0}), "SplineOptions::min_derivative must be in (0, 1) (got 1)");
    CHECK(message({.bins = 2, .bound = 0.5, .min_bin_width = 0.0, .min_bin_height = 0.0}) == "(no error)");
}

TEST_CASE("spline kernels: Cpu equals Reference bit for bit on a batch that runs in parallel") {
    constexpr int D = 6, n = 700, bins = 7;  // n·D above the Cpu kernels' parallel threshold
    const int P = sf::params_per_element(bins);
    const auto sp = sf::make_spline<float>(bins, 2.0, 1e-3, 1e-3, 1e-3);
    Rng rng(9);
    std::vector<float> x(std::size_t(n) * D), theta(std::size_t(n) * D * P), keep{1, 0, 0, 1, 0, 1};
    for (auto& v : x) v = float(1.5 * rng.normal());
    for (auto& v : theta) v = float(rng.normal());
    auto run = [&]<class B>(B) {
        std::vector<float> z(x.size()), xr(x.size()), dz(x.size(), 0.5f), dx(x.size()), dtheta(theta.size());
        std::vector<double> ld(n, 0.0), ldi(n, 0.0);
        std::vector<float> dld(n, -0.25f);
        kernels::spline_forward(B{}, sp, x.data(), z.data(), theta.data(), D * P, keep.data(), ld.data(), n, D);
        kernels::spline_inverse(B{}, sp, z.data(), xr.data(), theta.data(), D * P, keep.data(), ldi.data(), n, D);
        kernels::spline_backward(B{}, sp, x.data(), theta.data(), D * P, keep.data(), dz.data(), dld.data(), dx.data(),
                                 dtheta.data(), n, D);
        return std::tuple{z, xr, ld, ldi, dx, dtheta};
    };
    const auto r = run(Reference{});
    const auto c = run(Cpu{});
    CHECK(std::get<0>(r) == std::get<0>(c));
    CHECK(std::get<1>(r) == std::get<1>(c));
    CHECK(std::get<2>(r) == std::get<2>(c));
    CHECK(std::get<3>(r) == std::get<3>(c));
    CHECK(std::get<4>(r) == std::get<4>(c));
    CHECK(std::get<5>(r) == std::get<5>(c));
    // and they did something: the round trip holds and kept features are copied
    double worst = 0;
    for (std::size_t k = 0; k < x.size(); ++k) worst = std::max(worst, double(std::abs(std::get<1>(r)[k] - x[k])));
    CHECK(worst < 1e-3);
    CHECK(std::get<0>(r)[0] == x[0]);
    CHECK(std::get<0>(r)[1] != x[1]);
}

TEST_CASE("spline coupling: checkpoints keep the spline settings and a load checks them") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("bijou_spline_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path path = dir / "spline.safetensors";
    using F = Flow<Shape<3>, Stack<RationalQuadraticCoupling>, StandardNormal, float, Cpu>;
    const Options base{.steps_per_level = 2, .hidden = 8};
    F a(base.with(SplineOptions{.bins = 5, .bound = 2.5}));
    Rng rng(3);
    for (const auto& t : a.params().tensors())
        if (t.trainable)
            for (std::size_t i = 0; i < t.size; ++i) a.params().data(t)[i] += float(0.2 * rng.normal());
    save_checkpoint(path, a);
    const auto meta = read_checkpoint_metadata(path);
    CHECK(meta.at("setting.steps.0.kind") == "rational_quadratic");
    CHECK(meta.at("setting.steps.0.bins") == "5");
    CHECK(meta.at("setting.steps.1.bound") == "2.5");
    CHECK(meta.at("setting.steps.1.min_derivative") == "0.001");

    F b(base.with(SplineOptions{.bins = 5, .bound = 2.5}));
    load_checkpoint(path, b);
    const std::vector<float> x{0.3f, -1.0f, 2.0f, 0.1f, 0.2f, -2.9f};
    const double* la = a.log_prob_raw(x.data(), 2);
    const std::vector<double> lpa(la, la + 2);
    const double* lb = b.log_prob_raw(x.data(), 2);
    CHECK(lpa == std::vector<double>(lb, lb + 2));
    CHECK(std::abs(lpa[0] - lpa[1]) > 1e-3);  // the trained parameters matter

    F other(base.with(SplineOptions{.bins = 5, .bound = 3.0}));
    std::string msg;
    try {
        load_checkpoint(path, other);
    } catch (const io_error& e) {
        msg = e.what();
    }
    CHECK(msg.find("setting 'steps.0.bound': the file has '2.5' but the model has '3'") != std::string::npos);
    fs::remove_all(dir);
}

}  // namespace unit_spline
