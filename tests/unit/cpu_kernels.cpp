// Unit tests of the Cpu kernels that the multi-scale parts, the standard normal base, the
// optimizers and the trainer call (kernels/cpu/{priors,squeeze,standard_normal,optim,totals}.hpp)
// against their Reference kernels, on random inputs: a small batch (serial path) and one large
// enough for the OpenMP path. The Cpu kernels run the Reference loop bodies in the same order within
// each task, so the results are asserted bit for bit; only sum_squares, whose chunked order differs
// from the Reference loop's, gets a tolerance. Also the vectorisable float exp, log1p and tanh
// (kernels/cpu/vector_math.hpp) against double libm, and the image affine coupling passes that use
// them (kernels/cpu/coupling_image.hpp) against Reference, to float rounding.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include <bijou/core/random.hpp>
#include <bijou/kernels/cpu/coupling_image.hpp>
#include <bijou/kernels/cpu/optim.hpp>
#include <bijou/kernels/cpu/priors.hpp>
#include <bijou/kernels/cpu/squeeze.hpp>
#include <bijou/kernels/cpu/standard_normal.hpp>
#include <bijou/kernels/cpu/totals.hpp>
#include <bijou/kernels/cpu/vector_math.hpp>

namespace unit_cpu_kernels {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

template <class U>
std::vector<U> random_vector(std::size_t n, Rng& rng, double scale = 1.0) {
    std::vector<U> v(n);
    for (auto& x : v) x = U(scale * rng.normal());
    return v;
}

/// max |a − b| / max(max |b|, 1); prints the first differing values. NaN counts as a difference.
template <class A, class B>
double rel_diff(const A& a, const B& b) {
    REQUIRE(a.size() == b.size());
    double d = 0.0, s = 1.0;
    bool shown = false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double e = std::abs(double(a[i]) - double(b[i]));
        if (!(e == 0.0) && !shown) {
            MESSAGE("first difference at " << i << ": cpu " << double(a[i]) << ", reference " << double(b[i]));
            shown = true;
        }
        d = std::isnan(e) ? INFINITY : std::max(d, e);
        s = std::max(s, std::abs(double(b[i])));
    }
    return d / s;
}

/// Σ |v|: the outputs compared must not be trivially zero.
template <class V>
double magnitude(const V& v) {
    double s = 0.0;
    for (auto x : v) s += std::abs(double(x));
    return s;
}

struct ImageCase {
    int n, C, H, W;
};
// The second case has n·C·H·W ≥ 65536 values: the Cpu kernels split it across threads.
constexpr ImageCase image_cases[] = {{3, 4, 2, 6}, {16, 8, 24, 24}};

}  // namespace

TEST_CASE_TEMPLATE("cpu kernels: TopPrior apply and backward equal Reference", T, float, double) {
    Rng rng(11);
    for (const auto& [n, C, H, W] : image_cases) {
        CAPTURE(n); CAPTURE(C);
        const int HW = H * W;
        const std::size_t N = std::size_t(n) * C * HW;
        const auto x = random_vector<T>(N, rng), d = random_vector<T>(N, rng), dld = random_vector<T>(n, rng);
        const auto mean = random_vector<T>(C, rng), ls = random_vector<T>(C, rng, 0.3);
        for (const bool forward : {true, false}) {
            std::vector<T> r(N), c(N);
            kernels::top_prior_apply(Reference{}, x.data(), r.data(), mean.data(), ls.data(), n, C, HW, forward);
            kernels::top_prior_apply(Cpu{}, x.data(), c.data(), mean.data(), ls.data(), n, C, HW, forward);
            CHECK(magnitude(r) > 0.0);
            CHECK(rel_diff(c, r) == 0.0);
        }
        std::vector<T> dz0(N), dz1(N), dm0(C, T(0.5)), dm1(C, T(0.5)), ds0(C, T(-1)), ds1(C, T(-1));
        kernels::top_prior_backward(Reference{}, x.data(), d.data(), dld.data(), dz0.data(), ls.data(), dm0.data(),
                                    ds0.data(), n, C, HW);
        kernels::top_prior_backward(Cpu{}, x.data(), d.data(), dld.data(), dz1.data(), ls.data(), dm1.data(), ds1.data(),
                                    n, C, HW);
        CHECK(magnitude(dz0) > 0.0);
        CHECK(rel_diff(dz1, dz0) == 0.0);
        CHECK(rel_diff(dm1, dm0) == 0.0);
        CHECK(rel_diff(ds1, ds0) == 0.0);
    }
}

TEST_CASE_TEMPLATE("cpu kernels: Split standardize and backward equal Reference", T, float, double) {
    Rng rng(12);
    for (const auto& [n, C, H, W] : image_cases) {
        CAPTURE(n); CAPTURE(C);
        const int HW = H * W, Ch = C / 2;
        const std::size_t N = std::size_t(n) * C * HW, m = std::size_t(n) * HW;
        const auto src = random_vector<T>(N, rng), dout = random_vector<T>(N, rng), dld = random_vector<T>(n, rng);
        const auto stats = random_vector<T>(std::size_t(C) * m, rng, 0.3), dz1 = random_vector<T>(Ch * m, rng);
        for (const bool forward : {true, false}) {
            std::vector<T> r(N), c(N);
            std::vector<double> ld0(n, 0.25), ld1(n, 0.25);
            kernels::split_standardize(Reference{}, src.data(), r.data(), stats.data(), ld0.data(), n, C, HW, forward);
            kernels::split_standardize(Cpu{}, src.data(), c.data(), stats.data(), ld1.data(), n, C, HW, forward);
            CHECK(magnitude(r) > 0.0);
            CHECK(rel_diff(c, r) == 0.0);
            CHECK(rel_diff(ld1, ld0) == 0.0);
        }
        std::vector<T> dx0(N, T(7)), dx1(N, T(7)), dst0(std::size_t(C) * m), dst1(std::size_t(C) * m);
        kernels::split_backward_stats(Reference{}, src.data(), dout.data(), dld.data(), stats.data(), dx0.data(),
                                      dst0.data(), n, C, HW);
        kernels::split_backward_stats(Cpu{}, src.data(), dout.data(), dld.data(), stats.data(), dx1.data(), dst1.data(),
                                      n, C, HW);
        CHECK(magnitude(dst0) > 0.0);
        CHECK(rel_diff(dst1, dst0) == 0.0);
        kernels::split_backward_pass(Reference{}, dout.data(), dz1.data(), dx0.data(), n, C, HW);
        kernels::split_backward_pass(Cpu{}, dout.data(), dz1.data(), dx1.data(), n, C, HW);
        CHECK(magnitude(dx0) > 0.0);
        CHECK(rel_diff(dx1, dx0) == 0.0);  // both halves: the stats pass's and the first-half pass's
    }
}

TEST_CASE_TEMPLATE("cpu kernels: squeeze and unsqueeze equal Reference", T, float, double) {
    Rng rng(13);
    for (const auto& [n, C, H, W] : image_cases) {
        CAPTURE(n); CAPTURE(C);
        const std::size_t N = std::size_t(n) * C * H * W;
        const auto x = random_vector<T>(N, rng);
        std::vector<T> s0(N), s1(N), u0(N), u1(N);
        kernels::squeeze(Reference{}, x.data(), s0.data(), n, C, H, W);
        kernels::squeeze(Cpu{}, x.data(), s1.data(), n, C, H, W);
        CHECK(magnitude(s0) > 0.0);
        CHECK(rel_diff(s1, s0) == 0.0);
        CHECK(s0 != x);  // a real permutation
        kernels::unsqueeze(Reference{}, s0.data(), u0.data(), n, C, H, W);
        kernels::unsqueeze(Cpu{}, s0.data(), u1.data(), n, C, H, W);
        CHECK(rel_diff(u1, u0) == 0.0);
        CHECK(u0 == x);
    }
}

TEST_CASE_TEMPLATE("cpu kernels: standard normal log_prob and backward equal Reference", T, float, double) {
    Rng rng(14);
    for (const auto& [n, D] : {std::pair{5, 7}, std::pair{64, 1024}}) {
        CAPTURE(n); CAPTURE(D);
        const std::size_t N = std::size_t(n) * D;
        const auto z = random_vector<T>(N, rng), dlp = random_vector<T>(n, rng);
        std::vector<double> lp0(n), lp1(n);
        kernels::standard_normal_log_prob(Reference{}, z.data(), lp0.data(), n, D);
        kernels::standard_normal_log_prob(Cpu{}, z.data(), lp1.data(), n, D);
        CHECK(magnitude(lp0) > 0.0);
        CHECK(rel_diff(lp1, lp0) == 0.0);
        std::vector<T> dz0(N), dz1(N);
        kernels::standard_normal_backward(Reference{}, z.data(), dlp.data(), dz0.data(), n, D);
        kernels::standard_normal_backward(Cpu{}, z.data(), dlp.data(), dz1.data(), n, D);
        CHECK(magnitude(dz0) > 0.0);
        CHECK(rel_diff(dz1, dz0) == 0.0);
    }
}

TEST_CASE_TEMPLATE("cpu kernels: Adam and Adamax steps equal Reference", T, float, double) {
    Rng rng(15);
    // Past 2^16 parameters the Cpu kernels split the span across threads; 3 is left for the tail.
    for (const std::size_t n : {std::size_t(13), (std::size_t(1) << 17) + 3}) {
        CAPTURE(n);
        const auto p = random_vector<T>(n, rng), g = random_vector<T>(n, rng), m = random_vector<T>(n, rng, 0.1);
        auto s = random_vector<T>(n, rng, 0.1);
        for (auto& v : s) v = std::abs(v);  // v and u are non-negative
        const kernels::AdamCoefficients<T> k{T(0.9), T(0.1), T(0.999), T(1.0 - 0.999), T(0.01),
                                             T(1e-3 / (1.0 - 0.9 * 0.9)), T(1.0 / std::sqrt(1.0 - 0.999 * 0.999)),
                                             T(1e-8)};
        {
            auto p0 = p, p1 = p, m0 = m, m1 = m, v0 = s, v1 = s;
            kernels::adam_step(Reference{}, p0.data(), g.data(), m0.data(), v0.data(), n, k);
            kernels::adam_step(Cpu{}, p1.data(), g.data(), m1.data(), v1.data(), n, k);
            CHECK(p0 != p);
            CHECK(rel_diff(p1, p0) == 0.0);
            CHECK(rel_diff(m1, m0) == 0.0);
            CHECK(rel_diff(v1, v0) == 0.0);
        }
        {
            auto p0 = p, p1 = p, m0 = m, m1 = m, u0 = s, u1 = s;
            kernels::adamax_step(Reference{}, p0.data(), g.data(), m0.data(), u0.data(), n, k);
            kernels::adamax_step(Cpu{}, p1.data(), g.data(), m1.data(), u1.data(), n, k);
            CHECK(p0 != p);
            CHECK(rel_diff(p1, p0) == 0.0);
            CHECK(rel_diff(m1, m0) == 0.0);
            CHECK(rel_diff(u1, u0) == 0.0);
        }
    }
}

#if defined(__SSE2__)
TEST_CASE("cpu kernels: Adam and Adamax flush denormal moments to zero, and restore the caller's mode") {
    // A zero gradient shrinks m by beta1: from a denormal it stays denormal in Reference (plain
    // IEEE arithmetic) and becomes 0 on the Cpu backend (kernels/cpu/optim.hpp: FlushDenormals).
    const std::size_t n = 37;
    const float denormal = 1e-39f;
    REQUIRE(std::fpclassify(denormal) == FP_SUBNORMAL);
    const kernels::AdamCoefficients<float> k{0.9f, 0.1f, 0.999f, 0.001f, 0.0f, 1e-3f, 1.0f, 1e-8f};
    for (const bool adamax : {false, true}) {
        CAPTURE(adamax);
        std::vector<float> p0(n, 1.0f), p1 = p0, g(n, 0.0f), m0(n, denormal), m1 = m0, v0(n, 1.0f), v1 = v0;
        if (adamax) {
            kernels::adamax_step(Reference{}, p0.data(), g.data(), m0.data(), v0.data(), n, k);
            kernels::adamax_step(Cpu{}, p1.data(), g.data(), m1.data(), v1.data(), n, k);
        } else {
            kernels::adam_step(Reference{}, p0.data(), g.data(), m0.data(), v0.data(), n, k);
            kernels::adam_step(Cpu{}, p1.data(), g.data(), m1.data(), v1.data(), n, k);
        }
        for (std::size_t i = 0; i < n; ++i) {
            CHECK(std::fpclassify(m0[i]) == FP_SUBNORMAL);
            CHECK(m1[i] == 0.0f);
            CHECK(p1[i] == 1.0f);
        }
    }
    volatile float a = 1e-30f, b = 1e-9f;  // the caller's mode is back: a product can be denormal again
    CHECK(std::fpclassify(a * b) == FP_SUBNORMAL);
}
#endif

TEST_CASE_TEMPLATE("cpu kernels: sum_squares, scale and add_total equal Reference", T, float, double) {
    Rng rng(16);
    for (const std::size_t n : {std::size_t(1), std::size_t(100), (std::size_t(1) << 17) + 5}) {
        CAPTURE(n);
        const auto g = random_vector<T>(n, rng);
        const double s0 = kernels::sum_squares(Reference{}, g.data(), n), s1 = kernels::sum_squares(Cpu{}, g.data(), n);
        CHECK(s0 > 0.0);
        CHECK(s1 == doctest::Approx(s0).epsilon(1e-12));  // a different (fixed) summation order
        auto h0 = g, h1 = g;
        kernels::scale(Reference{}, h0.data(), n, 0.37);
        kernels::scale(Cpu{}, h1.data(), n, 0.37);
        CHECK(magnitude(h0) > 0.0);
        CHECK(rel_diff(h1, h0) == 0.0);
        CHECK(double(h0[0]) == doctest::Approx(0.37 * double(g[0])));
        // a per-sample log-det (double destination) and a parameter gradient (T destination)
        std::vector<double> ld0(9, 1.5), ld1(9, 1.5);
        kernels::add_total(Reference{}, ld0.data(), ld0.size(), g.data(), n, -12.0);
        kernels::add_total(Cpu{}, ld1.data(), ld1.size(), g.data(), n, -12.0);
        CHECK(ld0[0] != 1.5);
        CHECK(rel_diff(ld1, ld0) == 0.0);
        std::vector<T> pg0(4, T(2)), pg1(4, T(2));
        kernels::add_total(Reference{}, pg0.data(), pg0.size(), g.data(), n, 3.0);
        kernels::add_total(Cpu{}, pg1.data(), pg1.size(), g.data(), n, 3.0);
        CHECK(rel_diff(pg1, pg0) == 0.0);
    }
}

TEST_CASE("cpu kernels: vector_math exp, log1p and tanh against double libm") {
    // every 4099th float: x ∈ [−87, 88] for exp (normal results), x = 0 or normal x ≤ 1e30 for log1p,
    // every finite x for tanh
    const double bound = 0x1p-22;  // the header's claim: relative error < 2⁻²²
    double worst_exp = 0.0, worst_log1p = 0.0, worst_tanh = 0.0;
    std::size_t n_exp = 0, n_log1p = 0, n_tanh = 0;
    for (std::uint64_t b = 0; b <= 0xffffffffu; b += 4099) {
        const std::uint32_t bits = std::uint32_t(b);
        float x;
        std::memcpy(&x, &bits, sizeof x);
        if (x >= -87.0f && x <= 88.0f) {
            const double want = std::exp(double(x));
            worst_exp = std::max(worst_exp, std::abs(double(kernels::vector_math::exp(x)) - want) / want);
            ++n_exp;
        }
        if ((x == 0.0f || x >= std::numeric_limits<float>::min()) && x <= 1e30f) {
            const double want = std::log1p(double(x)), got = double(kernels::vector_math::log1p(x));
            worst_log1p = std::max(worst_log1p, want == 0.0 ? std::abs(got) : std::abs(got - want) / want);
            ++n_log1p;
        }
        if (std::isfinite(x)) {
            const double want = std::tanh(double(x)), got = double(kernels::vector_math::tanh(x));
            worst_tanh = std::max(worst_tanh, want == 0.0 ? std::abs(got) : std::abs(got - want) / std::abs(want));
            ++n_tanh;
        }
    }
    MESSAGE("vector_math over " << n_exp << " / " << n_log1p << " / " << n_tanh << " floats: exp " << worst_exp
                                << ", log1p " << worst_log1p << ", tanh " << worst_tanh << " worst relative error");
    CHECK(n_exp > 200000);
    CHECK(n_log1p > 200000);
    CHECK(n_tanh > 1000000);
    CHECK(worst_tanh > 0.0);
    CHECK(worst_tanh < bound);
    CHECK(worst_exp > 0.0);  // not libm's float function itself (that would be exact in most places)
    CHECK(worst_exp < bound);
    CHECK(worst_log1p < bound);
    // the edges: gradual underflow, overflow, NaN, and the smallest arguments of log1p
    CHECK(kernels::vector_math::exp(-100.0f) == doctest::Approx(std::exp(-100.0)).epsilon(1e-2));  // subnormal
    CHECK(kernels::vector_math::exp(-100.0f) > 0.0f);
    CHECK(kernels::vector_math::exp(-110.0f) == 0.0f);
    CHECK(kernels::vector_math::exp(-std::numeric_limits<float>::infinity()) == 0.0f);
    CHECK(kernels::vector_math::exp(0.0f) == 1.0f);
    CHECK(std::isinf(kernels::vector_math::exp(89.0f)));
    CHECK(std::isinf(kernels::vector_math::exp(std::numeric_limits<float>::infinity())));
    CHECK(std::isnan(kernels::vector_math::exp(std::numeric_limits<float>::quiet_NaN())));
    CHECK(kernels::vector_math::log1p(0.0f) == 0.0f);
    CHECK(kernels::vector_math::log1p(1e-30f) == 1e-30f);
    CHECK(kernels::vector_math::log1p(1.0f) == doctest::Approx(std::log(2.0)).epsilon(2e-7));
    CHECK(std::isinf(kernels::vector_math::log1p(std::numeric_limits<float>::infinity())));
    // tanh on both sides of the series' bound, its odd symmetry, the signed zero, ±inf and NaN
    for (float x : {0.5499999f, 0.55f, 1e-3f, 3.0f, 9.0f, 20.0f})
        for (float sx : {x, -x})
            CHECK(kernels::vector_math::tanh(sx) == doctest::Approx(std::tanh(double(sx))).epsilon(3e-7));
    CHECK(kernels::vector_math::tanh(-2.5f) == -kernels::vector_math::tanh(2.5f));
    CHECK(std::signbit(kernels::vector_math::tanh(-0.0f)));
    CHECK(kernels::vector_math::tanh(0.0f) == 0.0f);
    CHECK(kernels::vector_math::tanh(std::numeric_limits<float>::infinity()) == 1.0f);
    CHECK(kernels::vector_math::tanh(-std::numeric_limits<float>::infinity()) == -1.0f);
    CHECK(std::isnan(kernels::vector_math::tanh(std::numeric_limits<float>::quiet_NaN())));
    CHECK(std::isnan(kernels::vector_math::log1p(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE_TEMPLATE("cpu kernels: image affine coupling passes equal Reference to rounding", T, float, double) {
    // float: VectorMath's exp/log1p against libm's, ≤ a few ulp per element; double: the same math,
    // the log-det summed in another order
    const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-13;
    Rng rng(23);
    for (const ImageCase ic : image_cases) {
        for (const CouplingScale scale : {CouplingScale::sigmoid, CouplingScale::tanh}) {
            for (const bool checkerboard : {false, true}) {
                CAPTURE(ic.n);
                CAPTURE(int(scale));
                CAPTURE(checkerboard);
                const int n = ic.n, C = ic.C, HW = ic.H * ic.W;
                const int c0 = checkerboard ? 0 : C / 2, ct = checkerboard ? C : C - C / 2;
                std::vector<T> keep(static_cast<std::size_t>(HW));
                for (int p = 0; p < HW; ++p) keep[std::size_t(p)] = T(((p % ic.W) + (p / ic.W)) % 2);
                const T* kp = checkerboard ? keep.data() : nullptr;
                const std::size_t total = std::size_t(n) * C * HW, cond = std::size_t(ct) * n * HW;
                const auto x = random_vector<T>(total, rng), t = random_vector<T>(cond, rng);
                auto h = random_vector<T>(cond, rng, 3.0);
                h[0] = T(-60), h[1] = T(40);  // far into both tails of the sigmoid
                const auto dz = random_vector<T>(total, rng);
                std::vector<T> dld(static_cast<std::size_t>(n));
                for (auto& v : dld) v = T(rng.normal());
                std::vector<T> z0(total), z1(total), x0(total), x1(total);
                std::vector<double> ld0(std::size_t(n), 0.5), ld1(std::size_t(n), 0.5), li0(ld0), li1(ld0);
                kernels::coupling_image_affine_forward(Reference{}, scale, x.data(), z0.data(), t.data(), h.data(), kp,
                                                       ld0.data(), n, C, HW, c0, ct);
                kernels::coupling_image_affine_forward(Cpu{}, scale, x.data(), z1.data(), t.data(), h.data(), kp,
                                                       ld1.data(), n, C, HW, c0, ct);
                CHECK(magnitude(z0) > 0.0);
                CHECK(rel_diff(z1, z0) < tol);
                CHECK(rel_diff(ld1, ld0) < tol);
                CHECK(ld0[0] != 0.5);
                kernels::coupling_image_affine_inverse(Reference{}, scale, z0.data(), x0.data(), t.data(), h.data(), kp,
                                                       li0.data(), n, C, HW, c0, ct);
                kernels::coupling_image_affine_inverse(Cpu{}, scale, z0.data(), x1.data(), t.data(), h.data(), kp,
                                                       li1.data(), n, C, HW, c0, ct);
                CHECK(rel_diff(x1, x0) < tol);
                CHECK(rel_diff(li1, li0) < tol);
                std::vector<T> dx0(total), dx1(total), dt0(cond), dt1(cond), dh0(cond), dh1(cond);
                kernels::coupling_image_affine_backward(Reference{}, scale, x.data(), z0.data(), h.data(), kp, dz.data(),
                                                        dld.data(), dx0.data(), dt0.data(), dh0.data(), n, C, HW, c0, ct);
                kernels::coupling_image_affine_backward(Cpu{}, scale, x.data(), z0.data(), h.data(), kp, dz.data(),
                                                        dld.data(), dx1.data(), dt1.data(), dh1.data(), n, C, HW, c0, ct);
                CHECK(magnitude(dh0) > 0.0);
                CHECK(rel_diff(dx1, dx0) < tol);
                CHECK(rel_diff(dt1, dt0) < tol);
                CHECK(rel_diff(dh1, dh0) < tol);
            }
        }
    }
}

}  // namespace unit_cpu_kernels
