// Base distributions: closed-form log densities, gradients against central differences, sample
// moments, and Flows built on them.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include <bijou/bijectors/actnorm.hpp>
#include <bijou/core/chain.hpp>
#include <bijou/models/flow.hpp>
#include <bijou/distributions/diagonal_gaussian.hpp>
#include <bijou/distributions/gaussian_mixture.hpp>
#include <bijou/distributions/standard_normal.hpp>
#include <bijou/kernels/cuda/exec.hpp>

namespace unit_distributions {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

constexpr double kExactTol = 1e-12;    // closed forms evaluated in double
constexpr double kGradRelTol = 1e-6;   // analytic vs central differences (double), relative with floor 1
constexpr double kFdStep = 1e-5;       // central-difference step
constexpr double kStdErrors = 4.0;     // sample statistics must fall within this many standard errors
constexpr double kLog2Pi = 1.8378770664093454835606594728112;

static_assert(Distribution<DiagonalGaussianDistribution<Shape<3>, float, Cpu>>);
static_assert(Distribution<DiagonalGaussianDistribution<Shape<2, 2, 2>, double, Reference>>);
static_assert(Distribution<GaussianMixtureDistribution<3, Shape<2>, float, Reference>>);
static_assert(DistributionRecipe<DiagonalGaussian> && DistributionRecipe<GaussianMixture<>>);
static_assert(GaussianMixture<>::bind<Shape<2>, float, Cpu>::components == 2);

/// A distribution bound to shape S in double, with its own parameter set ("base.*").
template <class Recipe, class S>
struct Standalone {
    using dist_type = typename Recipe::template bind<S, double, Reference>;
    static constexpr int D = S::size;

    BuildContext ctx{Options{}};
    dist_type dist{ctx};
    ParamSet<double> ps;

    explicit Standalone(std::uint64_t seed = 0) {
        dist.declare(ps, "base");
        ps.allocate();
        Rng rng(seed);
        dist.reset_parameters(rng);
    }
    Standalone(const Standalone&) = delete;

    double* value(const char* name) {
        const TensorInfo* t = ps.find(name);
        REQUIRE_MESSAGE(t != nullptr, name);
        return ps.data(*t);
    }
    double* grad(const char* name) { return ps.grad(*ps.find(name)); }

    std::vector<double> log_prob(const std::vector<double>& z) const {
        const int n = int(z.size()) / D;
        std::vector<double> lp(static_cast<std::size_t>(n));
        dist.log_prob(z.data(), lp.data(), n);
        return lp;
    }
    /// L = Σ_i w_i log p(z_i)
    double weighted(const std::vector<double>& z, const std::vector<double>& w) const {
        const auto lp = log_prob(z);
        double s = 0.0;
        for (std::size_t i = 0; i < lp.size(); ++i) s += w[i] * lp[i];
        return s;
    }
};

double central_difference(double& x, auto&& f) {
    const double x0 = x;
    x = x0 + kFdStep;
    const double fp = f();
    x = x0 - kFdStep;
    const double fm = f();
    x = x0;
    return (fp - fm) / (2 * kFdStep);
}

std::vector<double> normals(std::size_t n, std::uint64_t seed, double scale = 1.0) {
    Rng rng(seed);
    std::vector<double> v(n);
    for (auto& x : v) x = scale * rng.normal();
    return v;
}

/// Checks backward against central differences of L = Σ w_i log p(z_i): dz (assigned: the buffer is
/// pre-filled with garbage) and every trainable tensor (accumulated: grads are pre-filled with 0.25).
template <class SA>
void check_gradients(SA& s, int n, std::uint64_t seed) {
    constexpr int D = SA::D;
    std::vector<double> z = normals(std::size_t(n) * D, seed, 1.5);
    std::vector<double> w = normals(std::size_t(n), seed + 1);
    std::vector<double> dz(z.size(), 1e3);
    constexpr double pre = 0.25;
    std::fill(s.ps.grads().begin(), s.ps.grads().end(), pre);
    s.dist.backward(z.data(), w.data(), dz.data(), n);

    auto L = [&] { return s.weighted(z, w); };
    for (std::size_t k = 0; k < z.size(); ++k) {
        const double fd = central_difference(z[k], L);
        INFO("dz[" << k << "]");
        CHECK(dz[k] == doctest::Approx(fd).epsilon(kGradRelTol));
    }
    for (const auto& t : s.ps.tensors()) {
        if (!t.trainable) continue;
        double* v = s.ps.data(t);
        const double* g = s.ps.grad(t);
        for (std::size_t q = 0; q < t.size; ++q) {
            const double fd = central_difference(v[q], L);
            INFO(t.name << "[" << q << "]");
            CHECK(g[q] - pre == doctest::Approx(fd).epsilon(kGradRelTol));
        }
    }
}

struct Moments {
    double mean = 0, sd = 0;
};
Moments moments(const std::vector<double>& z, int D, int j) {
    const std::size_t n = z.size() / std::size_t(D);
    double s = 0, s2 = 0;
    for (std::size_t i = 0; i < n; ++i) s += z[i * std::size_t(D) + std::size_t(j)];
    const double m = s / double(n);
    for (std::size_t i = 0; i < n; ++i) {
        const double d = z[i * std::size_t(D) + std::size_t(j)] - m;
        s2 += d * d;
    }
    return {m, std::sqrt(s2 / double(n - 1))};
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Rng::normals and the standard normal's sampling

TEST_CASE("Rng::normals gives normal()'s numbers in order, spare included, at any thread count") {
    // lengths below and above the parallel block (256 pairs) and the draw-ahead block (2048 pairs),
    // odd and even, from a stream with and without a pending Box-Muller spare
    for (const std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(7), std::size_t(600), std::size_t(4097),
                                std::size_t(9000)})
        for (const bool spare : {false, true})
            for (const int threads : {1, 2, 3}) {
                CAPTURE(n);
                CAPTURE(spare);
                CAPTURE(threads);
                Rng a(42), b(42);
                if (spare) (void)a.normal(), (void)b.normal();
                std::vector<double> want(n), got(n, -99.0);
                for (auto& v : want) v = a.normal();
                const int saved = num_threads();
                set_num_threads(threads);
                b.normals(n, [&](std::size_t k, double v) { got[k] = v; });
                set_num_threads(saved);
                CHECK(got == want);
                CHECK(b.state() == a.state());  // the stream, and its spare, where n calls leave it
                CHECK(b.normal() == a.normal());
            }
}

TEST_CASE("StandardNormal::sample is temperature times the Rng's normals, the same at 1 and 2 threads") {
    const Options options;
    BuildContext ctx(options);
    const StandardNormalDistribution<Shape<3, 8, 8>, float, Cpu> base(ctx);
    const int n = 9, D = 192;
    Rng ref(5);
    std::vector<float> want(std::size_t(n) * D);
    for (auto& v : want) v = float(0.7 * ref.normal());
    for (const int threads : {1, 2}) {
        CAPTURE(threads);
        const int saved = num_threads();
        set_num_threads(threads);
        Rng rng(5);
        std::vector<float> z(want.size(), -1.0f);
        base.sample(z.data(), n, 0.7, rng);
        set_num_threads(saved);
        CHECK(z == want);
        CHECK(rng.state() == ref.state());
    }
}

// ---------------------------------------------------------------------------------------------------
// DiagonalGaussian

TEST_CASE("DiagonalGaussian: declares loc and log_scale, starts as the standard normal") {
    Standalone<DiagonalGaussian, Shape<3>> s;
    REQUIRE(s.ps.tensors().size() == 2);
    CHECK(s.ps.tensors()[0].name == "base.loc");
    CHECK(s.ps.tensors()[1].name == "base.log_scale");
    CHECK(s.ps.count() == 6);
    for (double v : s.ps.values()) CHECK(v == 0.0);

    BuildContext ctx{Options{}};
    StandardNormalDistribution<Shape<3>, double, Reference> ref(ctx);
    const auto z = normals(12, 3);
    std::vector<double> want(4);
    ref.log_prob(z.data(), want.data(), 4);
    const auto got = s.log_prob(z);
    for (int i = 0; i < 4; ++i) CHECK(got[std::size_t(i)] == doctest::Approx(want[std::size_t(i)]).epsilon(kExactTol));
}

TEST_CASE("DiagonalGaussian: log_prob equals the closed form (hand values)") {
    SUBCASE("1-D") {
        Standalone<DiagonalGaussian, Shape<1>> s;
        s.value("base.loc")[0] = 0.5;
        s.value("base.log_scale")[0] = std::log(2.0);
        // N(1.5; 0.5, 2²): −½·0.5² − log 2 − ½ log 2π
        CHECK(s.log_prob({1.5})[0] == doctest::Approx(-1.737085713764618).epsilon(kExactTol));
    }
    SUBCASE("2-D, several samples") {
        Standalone<DiagonalGaussian, Shape<2>> s;
        double* loc = s.value("base.loc");
        double* ls = s.value("base.log_scale");
        loc[0] = 1.0, loc[1] = -2.0, ls[0] = std::log(0.5), ls[1] = std::log(2.0);
        const auto lp = s.log_prob({0.0, 1.0, 1.0, -2.0, 3.0, 0.0});
        // z = (0, 1): u = (−2, 1.5): −½(4 + 2.25) − log 0.5 − log 2 − log 2π
        CHECK(lp[0] == doctest::Approx(-4.962877066409345).epsilon(kExactTol));
        // z = loc: the mode, −log(0.5·2) − log 2π = −log 2π
        CHECK(lp[1] == doctest::Approx(-kLog2Pi).epsilon(kExactTol));
        // z = (3, 0): u = (4, 1)
        CHECK(lp[2] == doctest::Approx(-0.5 * (16 + 1) - kLog2Pi).epsilon(kExactTol));
    }
    SUBCASE("image shape is flattened") {
        Standalone<DiagonalGaussian, Shape<1, 2, 2>> s;
        double* ls = s.value("base.log_scale");
        for (int j = 0; j < 4; ++j) ls[j] = 0.1 * j;
        const std::vector<double> z{1, 2, 3, 4};
        double want = -2 * kLog2Pi;
        for (int j = 0; j < 4; ++j) {
            const double u = z[std::size_t(j)] / std::exp(0.1 * j);
            want += -0.5 * u * u - 0.1 * j;
        }
        CHECK(s.log_prob(z)[0] == doctest::Approx(want).epsilon(kExactTol));
    }
}

TEST_CASE("DiagonalGaussian: backward matches central differences (dz and every parameter)") {
    Standalone<DiagonalGaussian, Shape<3>> s;
    const auto p = normals(6, 11, 0.5);
    std::copy(p.begin(), p.end(), s.ps.values().begin());
    check_gradients(s, 5, 21);
}

TEST_CASE("DiagonalGaussian: sample moments and temperature") {
    Standalone<DiagonalGaussian, Shape<2>> s;
    const double mu[2] = {1.0, -2.0}, sd[2] = {0.5, 2.0};
    for (int j = 0; j < 2; ++j) {
        s.value("base.loc")[j] = mu[j];
        s.value("base.log_scale")[j] = std::log(sd[j]);
    }
    constexpr int n = 20000;
    for (double t : {1.0, 0.5}) {
        Rng rng(5);
        std::vector<double> z(2 * n);
        s.dist.sample(z.data(), n, t, rng);
        for (int j = 0; j < 2; ++j) {
            const auto m = moments(z, 2, j);
            const double sigma = t * sd[j];
            INFO("temperature " << t << ", coordinate " << j << ": mean " << m.mean << ", sd " << m.sd);
            CHECK(std::abs(m.mean - mu[j]) < kStdErrors * sigma / std::sqrt(double(n)));
            CHECK(std::abs(m.sd - sigma) < kStdErrors * sigma / std::sqrt(2.0 * n));
        }
    }
    // temperature 0 gives the mean exactly
    Rng rng(1);
    std::vector<double> z(4);
    s.dist.sample(z.data(), 2, 0.0, rng);
    CHECK(z == std::vector<double>{1.0, -2.0, 1.0, -2.0});
}

// ---------------------------------------------------------------------------------------------------
// GaussianMixture

namespace {

/// log Σ_k π_k Π_j N(z_j; μ_kj, σ_kj²), evaluated directly (no log-sum-exp).
double mixture_direct(const std::vector<double>& logits, const std::vector<double>& loc,
                      const std::vector<double>& log_scale, const double* z, int D) {
    const std::size_t K = logits.size();
    double zsum = 0.0;
    for (double l : logits) zsum += std::exp(l);
    double p = 0.0;
    for (std::size_t k = 0; k < K; ++k) {
        double comp = std::exp(logits[k]) / zsum;
        for (int j = 0; j < D; ++j) {
            const double s = std::exp(log_scale[k * std::size_t(D) + std::size_t(j)]);
            const double d = z[j] - loc[k * std::size_t(D) + std::size_t(j)];
            comp *= std::exp(-0.5 * d * d / (s * s)) / (s * std::sqrt(2 * std::numbers::pi));
        }
        p += comp;
    }
    return std::log(p);
}

}  // namespace

TEST_CASE("GaussianMixture: declares its tensors, and reset draws loc from the seed") {
    Standalone<GaussianMixture<3>, Shape<2>> a(7), b(7), c(8);
    REQUIRE(a.ps.tensors().size() == 3);
    CHECK(a.ps.tensors()[0].name == "base.logits");
    CHECK(a.ps.tensors()[1].name == "base.loc");
    CHECK(a.ps.tensors()[1].shape == std::vector<std::size_t>{3, 2});
    CHECK(a.ps.tensors()[2].name == "base.log_scale");
    CHECK(a.ps.count() == 3 + 6 + 6);
    for (int k = 0; k < 3; ++k) CHECK(a.value("base.logits")[k] == 0.0);
    for (int q = 0; q < 6; ++q) CHECK(a.value("base.log_scale")[q] == 0.0);
    const double* la = a.value("base.loc");
    const double* lb = b.value("base.loc");
    const double* lc = c.value("base.loc");
    CHECK(std::equal(la, la + 6, lb));   // same seed: same draw
    CHECK(!std::equal(la, la + 6, lc));  // other seed: other draw
    CHECK(la[0] != la[2]);               // components differ (symmetry broken)
    // drawn N(0, 1) in (k, j) order from Rng(seed)
    Rng rng(7);
    for (int q = 0; q < 6; ++q) CHECK(la[q] == rng.normal());
}

TEST_CASE("GaussianMixture<2>: log_prob equals the direct mixture formula") {
    Standalone<GaussianMixture<2>, Shape<2>> s;
    const std::vector<double> logits{0.3, -0.4}, loc{1.0, -1.0, -0.5, 2.0}, ls{0.1, -0.3, 0.4, 0.2};
    std::copy(logits.begin(), logits.end(), s.value("base.logits"));
    std::copy(loc.begin(), loc.end(), s.value("base.loc"));
    std::copy(ls.begin(), ls.end(), s.value("base.log_scale"));
    const std::vector<double> z{0.0, 0.0, 1.0, -1.0, -0.5, 2.0, 3.0, -4.0};
    const auto lp = s.log_prob(z);
    for (int i = 0; i < 4; ++i) {
        INFO("sample " << i);
        CHECK(lp[std::size_t(i)] == doctest::Approx(mixture_direct(logits, loc, ls, z.data() + 2 * i, 2)).epsilon(kExactTol));
    }
}

TEST_CASE("GaussianMixture: one component is the diagonal Gaussian (logits only set the weights)") {
    Standalone<GaussianMixture<1>, Shape<3>> m;
    Standalone<DiagonalGaussian, Shape<3>> g;
    const auto loc = normals(3, 4), ls = normals(3, 5, 0.3);
    std::copy(loc.begin(), loc.end(), m.value("base.loc"));
    std::copy(ls.begin(), ls.end(), m.value("base.log_scale"));
    std::copy(loc.begin(), loc.end(), g.value("base.loc"));
    std::copy(ls.begin(), ls.end(), g.value("base.log_scale"));
    m.value("base.logits")[0] = 3.7;  // softmax of one logit is 1 whatever its value
    const auto z = normals(9, 6);
    const auto a = m.log_prob(z), b = g.log_prob(z);
    for (int i = 0; i < 3; ++i) CHECK(a[std::size_t(i)] == doctest::Approx(b[std::size_t(i)]).epsilon(kExactTol));
}

TEST_CASE("GaussianMixture: log-sum-exp is stable far from every component") {
    Standalone<GaussianMixture<2>, Shape<1>> s;
    s.value("base.loc")[0] = 0.0;
    s.value("base.loc")[1] = 1.0;
    s.value("base.log_scale")[0] = s.value("base.log_scale")[1] = std::log(0.01);
    // z = 100: component log densities ≈ −5·10⁷; exp underflows, the direct formula gives −inf
    const double z = 100.0;
    const double a0 = std::log(0.5) - 0.5 * std::pow(z / 0.01, 2) - std::log(0.01) - 0.5 * kLog2Pi;
    const double a1 = std::log(0.5) - 0.5 * std::pow((z - 1) / 0.01, 2) - std::log(0.01) - 0.5 * kLog2Pi;
    const double lp = s.log_prob({z})[0];
    REQUIRE(std::isfinite(lp));
    CHECK(lp == doctest::Approx(std::max(a0, a1)).epsilon(kExactTol));  // the far component adds exp(−10⁴·…)
    // the gradient there is finite too (responsibility 1 on the nearer component)
    std::vector<double> dz(1), w{1.0};
    const std::vector<double> zv{z};
    s.dist.backward(zv.data(), w.data(), dz.data(), 1);
    CHECK(dz[0] == doctest::Approx(-(z - 1) / 1e-4).epsilon(kExactTol));
}

TEST_CASE("GaussianMixture<3>: backward matches central differences (dz, logits, loc, log_scale)") {
    Standalone<GaussianMixture<3>, Shape<2>> s(3);
    const auto p = normals(s.ps.values().size(), 12, 0.5);
    std::copy(p.begin(), p.end(), s.ps.values().begin());
    // spread the components over the samples' range so that responsibilities are mixed
    double* loc = s.value("base.loc");
    for (int q = 0; q < 6; ++q) loc[q] *= 2.0;
    check_gradients(s, 6, 31);
}

TEST_CASE("GaussianMixture: sampling picks components by softmax(logits), temperature scales each") {
    Standalone<GaussianMixture<2>, Shape<1>> s;
    s.value("base.logits")[0] = 0.0;
    s.value("base.logits")[1] = std::log(3.0);  // π = (0.25, 0.75)
    s.value("base.loc")[0] = -10.0;  // far apart: each sample's sign tells its component
    s.value("base.loc")[1] = 10.0;
    s.value("base.log_scale")[0] = std::log(0.5);
    s.value("base.log_scale")[1] = std::log(1.5);
    constexpr int n = 20000;
    for (double t : {1.0, 0.5}) {
        Rng rng(9);
        std::vector<double> z(n);
        s.dist.sample(z.data(), n, t, rng);
        std::vector<double> left, right;
        for (double v : z) (v > 0 ? right : left).push_back(v);
        const double frac = double(right.size()) / n;
        INFO("temperature " << t << ": fraction in component 1 = " << frac);
        CHECK(std::abs(frac - 0.75) < kStdErrors * std::sqrt(0.75 * 0.25 / n));
        const auto ml = moments(left, 1, 0), mr = moments(right, 1, 0);
        const double nl = double(left.size()), nr = double(right.size());
        CHECK(std::abs(ml.mean + 10.0) < kStdErrors * t * 0.5 / std::sqrt(nl));
        CHECK(std::abs(mr.mean - 10.0) < kStdErrors * t * 1.5 / std::sqrt(nr));
        CHECK(std::abs(ml.sd - t * 0.5) < kStdErrors * t * 0.5 / std::sqrt(2 * nl));
        CHECK(std::abs(mr.sd - t * 1.5) < kStdErrors * t * 1.5 / std::sqrt(2 * nr));
    }
}

// ---------------------------------------------------------------------------------------------------
// Flows on these bases

namespace {

/// Checks every parameter gradient of nll_and_gradient against central differences of the NLL.
template <class F>
void check_flow_gradients(F& flow, const typename F::data_tensor& x) {
    flow.nll_and_gradient(x);
    const std::vector<double> g(flow.gradients().begin(), flow.gradients().end());
    auto nll = [&] { return flow.nll_and_gradient(x); };
    int checked = 0;
    for (const auto& t : flow.params().tensors()) {
        if (!t.trainable) continue;
        double* v = flow.params().data(t);
        for (std::size_t q = 0; q < t.size; ++q) {
            const double fd = central_difference(v[q], nll);
            INFO(t.name << "[" << q << "]");
            CHECK(g[t.offset + q] == doctest::Approx(fd).epsilon(kGradRelTol));
            ++checked;
        }
    }
    CHECK(checked == int(flow.parameter_count()));
}

template <class F>
typename F::data_tensor gaussian_batch(int n, std::uint64_t seed) {
    auto x = make_batch<typename F::scalar, typename F::in_shape>(n);
    Rng rng(seed);
    for (auto& v : x) v = typename F::scalar(0.7 * rng.normal() + 0.3);
    return x;
}

}  // namespace

TEST_CASE("Flow<Shape<2>, ActNorm, DiagonalGaussian>: log_prob closed form and gradients") {
    using F = Flow<Shape<2>, ActNorm, DiagonalGaussian, double, Reference>;
    F flow;
    REQUIRE(flow.parameter_count() == 8);
    REQUIRE(flow.params().find("base.loc") != nullptr);
    const auto p = normals(flow.parameters().size(), 40, 0.4);
    std::copy(p.begin(), p.end(), flow.parameters().begin());

    // log p(x) = log N((x + b)·e^s; μ, σ²) + Σ s
    const auto x = gaussian_batch<F>(7, 41);
    const auto lp = flow.log_prob(x);
    const auto& ps = flow.params();
    const double* b = ps.data(*ps.find("actnorm.loc"));
    const double* s = ps.data(*ps.find("actnorm.log_scale"));
    const double* mu = ps.data(*ps.find("base.loc"));
    const double* ls = ps.data(*ps.find("base.log_scale"));
    for (int i = 0; i < 7; ++i) {
        double want = -kLog2Pi;
        for (int j = 0; j < 2; ++j) {
            const double z = (x(i, j) + b[j]) * std::exp(s[j]);
            const double u = (z - mu[j]) / std::exp(ls[j]);
            want += -0.5 * u * u - ls[j] + s[j];
        }
        CHECK(lp(i) == doctest::Approx(want).epsilon(kExactTol));
    }
    check_flow_gradients(flow, x);
}

TEST_CASE("Flow<Shape<2>, ActNorm, GaussianMixture<3>>: gradients match finite differences") {
    using F = Flow<Shape<2>, ActNorm, GaussianMixture<3>, double, Reference>;
    F flow(Options{.seed = 3});
    REQUIRE(flow.parameter_count() == 4 + 3 + 6 + 6);
    auto v = flow.parameters();
    const auto p = normals(v.size(), 50, 0.3);
    for (std::size_t q = 0; q < v.size(); ++q) v[q] += p[q];
    check_flow_gradients(flow, gaussian_batch<F>(9, 51));
}

TEST_CASE("Flows on the new bases build and run in float on the Cpu backend") {
    Flow<Shape<3>, ActNorm, DiagonalGaussian> a;  // float, Cpu
    Flow<Shape<1, 2, 2>, ActNorm, GaussianMixture<2>> b;
    auto xa = gaussian_batch<decltype(a)>(16, 60);
    auto xb = gaussian_batch<decltype(b)>(16, 61);
    CHECK(std::isfinite(a.nll_and_gradient(xa)));
    CHECK(std::isfinite(b.nll_and_gradient(xb)));
    Rng rng(1);
    const auto sa = a.sample(100, 1.0, rng);
    const auto sb = b.sample(100, 0.5, rng);
    CHECK(sa.shape()[0] == 100);
    CHECK(sb.shape()[1] == 1);
    CHECK(std::all_of(sb.begin(), sb.end(), [](float v) { return std::isfinite(v); }));
    // at the start the DiagonalGaussian flow is the standard normal in float, to float precision
    const auto lp = a.log_prob(xa);
    for (int i = 0; i < 4; ++i) {
        double want = -1.5 * kLog2Pi;
        for (int j = 0; j < 3; ++j) want -= 0.5 * double(xa(i, j)) * xa(i, j);
        CHECK(lp(i) == doctest::Approx(want).epsilon(1e-6));
    }
}

/// The vector bases run their host code on host copies on a backend with memory of its own
/// (core/mirror.hpp): on CudaHost (guarded memory) a flow on them gives what Reference gives.
TEST_CASE_TEMPLATE("Flows on the vector bases on CudaHost equal Reference", Base, DiagonalGaussian, GaussianMixture<3>) {
    using Ref = Flow<Shape<2>, ActNorm, Base, double, Reference>;
    using Dev = Flow<Shape<2>, ActNorm, Base, double, CudaHost>;
    Ref ref(Options{.seed = 5});
    Dev dev(Options{.seed = 5});
    REQUIRE(ref.parameter_count() == dev.parameter_count());
    auto v = ref.parameters();
    const auto p = normals(v.size(), 70, 0.3);
    for (std::size_t q = 0; q < v.size(); ++q) v[q] += p[q];
    std::copy(v.begin(), v.end(), dev.params().values().begin());
    dev.to_device();

    const auto x = gaussian_batch<Ref>(11, 71);
    const auto lr = ref.log_prob(x);
    const auto ld = dev.log_prob(x);
    for (std::size_t i = 0; i < 11; ++i) CHECK(ld(i) == doctest::Approx(lr(i)).epsilon(kExactTol));

    // gradients twice: the second call checks that backward adds to (not overwrites) the zeroed gradients
    for (int round = 0; round < 2; ++round) {
        const double nr = ref.nll_and_gradient(x), nd = dev.nll_and_gradient(x);
        CHECK(nd == doctest::Approx(nr).epsilon(kExactTol));
        std::vector<double> gd(dev.gradients().size());
        download(CudaHost{}, gd.data(), dev.gradients().data(), gd.size());
        const auto gr = ref.gradients();
        for (std::size_t q = 0; q < gd.size(); ++q) {
            INFO("gradient " << q);
            CHECK(gd[q] == doctest::Approx(gr[q]).epsilon(kExactTol));
        }
    }

    Rng r1(12), r2(12);
    const auto sr = ref.sample(13, 0.7, r1);
    const auto sd = dev.sample(13, 0.7, r2);
    for (std::size_t k = 0; k < sr.size(); ++k) CHECK(sd.data()[k] == doctest::Approx(sr.data()[k]).epsilon(kExactTol));
}

}  // namespace unit_distributions
