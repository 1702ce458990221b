// The coupling formulas (kernels/coupling_formulas.hpp), written once for every backend: Glow's
// sigmoid scale against its definition evaluated in long double, including where a naive
// 1/(1 + e^−u) overflows; and the coupling kernels of Reference, Cpu and CudaHost, which all call the
// formulas, computing every element bit for bit alike (vector and image couplings, both scales, both
// mask kinds). Only the per-sample log-det sums may differ, in CudaHost's fixed reduction tree.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <vector>

#include <bijou/bijou.hpp>
#include <bijou/kernels/coupling_formulas.hpp>

using namespace bijou;

namespace {

namespace cf = bijou::kernels::coupling;

/// |got − want| / |want| (want ≠ 0).
double rel_err(long double got, long double want) {
    return double(std::fabs(got - want) / std::fabs(want));
}

/// Checks a == b bit for bit (no NaNs here), reporting the first differing element and the max difference.
template <class A>
void check_same(const A& a, const A& b, const char* what) {
    REQUIRE(a.size() == b.size());
    std::size_t first = a.size();
    double max_diff = 0.0;
    for (std::size_t k = 0; k < a.size(); ++k)
        if (a[k] != b[k]) {
            if (first == a.size()) first = k;
            max_diff = std::fmax(max_diff, std::fabs(double(a[k]) - double(b[k])));
        }
    INFO(what << ": first difference at " << first << " (" << (first < a.size() ? double(a[first]) : 0.0) << " vs "
              << (first < a.size() ? double(b[first]) : 0.0) << "), max difference " << max_diff);
    CHECK(first == a.size());
}

template <class T>
std::vector<T> normals(std::size_t n, Rng& rng, double scale) {
    std::vector<T> v(n);
    for (auto& e : v) e = T(scale * rng.normal());
    return v;
}

/// The outputs of every elementwise coupling kernel of one backend on the same inputs.
template <class T>
struct Outputs {
    std::vector<T> z, x, dx, dt, dh, additive_z, additive_x, additive_dx, additive_dt;
    std::vector<double> ld_forward, ld_inverse;

    /// N data elements, NO conditioner elements (set to 7, so that a skipped write shows), n samples.
    Outputs(std::size_t N, std::size_t NO, int n)
        : z(N), x(N), dx(N), dt(NO, T(7)), dh(NO, T(7)), additive_z(N), additive_x(N), additive_dx(N),
          additive_dt(NO, T(7)), ld_forward(std::size_t(n), 0.5), ld_inverse(std::size_t(n), 0.5) {}
};

/// Vector coupling inputs: x (n, D), t and h rows of stride ldo, keep (D).
template <class T>
struct VectorCase {
    int n, D, ldo;
    std::vector<T> x, t, h, dz, dld, keep;
};

template <class B, class T>
Outputs<T> vector_outputs(const VectorCase<T>& c, CouplingScale scale) {
    Outputs<T> o(std::size_t(c.n) * c.D, std::size_t(c.n) * c.ldo, c.n);
    kernels::coupling_affine_forward(B{}, scale, c.x.data(), o.z.data(), c.t.data(), c.h.data(), c.ldo, c.keep.data(),
                                     o.ld_forward.data(), c.n, c.D);
    kernels::coupling_affine_inverse(B{}, scale, c.x.data(), o.x.data(), c.t.data(), c.h.data(), c.ldo, c.keep.data(),
                                     o.ld_inverse.data(), c.n, c.D);
    kernels::coupling_affine_backward(B{}, scale, c.x.data(), o.z.data(), c.t.data(), c.h.data(), c.ldo,
                                      c.keep.data(), c.dz.data(), c.dld.data(), o.dx.data(), o.dt.data(), o.dh.data(),
                                      c.n, c.D);
    kernels::coupling_additive_forward(B{}, c.x.data(), o.additive_z.data(), c.t.data(), c.ldo, c.keep.data(), c.n,
                                       c.D);
    kernels::coupling_additive_inverse(B{}, c.x.data(), o.additive_x.data(), c.t.data(), c.ldo, c.keep.data(), c.n,
                                       c.D);
    kernels::coupling_additive_backward(B{}, c.dz.data(), o.additive_dx.data(), o.additive_dt.data(), c.ldo,
                                        c.keep.data(), c.n, c.D);
    return o;
}

/// Image coupling inputs: x (n, C, HW) NCHW, t and h channel-major (ct, n·HW), keep a pixel mask or null.
template <class T>
struct ImageCase {
    int n, C, HW, c0, ct;
    const T* keep;
    std::vector<T> x, t, h, dz, dld;
};

template <class B, class T>
Outputs<T> image_outputs(const ImageCase<T>& c, CouplingScale scale) {
    Outputs<T> o(std::size_t(c.n) * c.C * c.HW, std::size_t(c.ct) * c.n * c.HW, c.n);
    const int n = c.n, C = c.C, HW = c.HW, c0 = c.c0, ct = c.ct;
    kernels::coupling_image_affine_forward(B{}, scale, c.x.data(), o.z.data(), c.t.data(), c.h.data(), c.keep,
                                           o.ld_forward.data(), n, C, HW, c0, ct);
    kernels::coupling_image_affine_inverse(B{}, scale, c.x.data(), o.x.data(), c.t.data(), c.h.data(), c.keep,
                                           o.ld_inverse.data(), n, C, HW, c0, ct);
    kernels::coupling_image_affine_backward(B{}, scale, c.x.data(), o.z.data(), c.h.data(), c.keep, c.dz.data(),
                                            c.dld.data(), o.dx.data(), o.dt.data(), o.dh.data(), n, C, HW, c0, ct);
    kernels::coupling_image_additive_forward(B{}, c.x.data(), o.additive_z.data(), c.t.data(), c.keep, n, C, HW, c0,
                                             ct);
    kernels::coupling_image_additive_inverse(B{}, c.x.data(), o.additive_x.data(), c.t.data(), c.keep, n, C, HW, c0,
                                             ct);
    kernels::coupling_image_additive_backward(B{}, c.dz.data(), o.additive_dx.data(), o.additive_dt.data(), c.keep, n,
                                              C, HW, c0, ct);
    return o;
}

/// Every element bit for bit; log-dets bit for bit where the sums run in Reference's order.
template <class T>
void check_outputs(const Outputs<T>& got, const Outputs<T>& want, bool same_sum_order) {
    check_same(got.z, want.z, "affine z");
    check_same(got.x, want.x, "affine x");
    check_same(got.dx, want.dx, "affine dx");
    check_same(got.dt, want.dt, "affine dt");
    check_same(got.dh, want.dh, "affine dh");
    check_same(got.additive_z, want.additive_z, "additive z");
    check_same(got.additive_x, want.additive_x, "additive x");
    check_same(got.additive_dx, want.additive_dx, "additive dx");
    check_same(got.additive_dt, want.additive_dt, "additive dt");
    if (same_sum_order) {
        check_same(got.ld_forward, want.ld_forward, "log-det forward");
        check_same(got.ld_inverse, want.ld_inverse, "log-det inverse");
    } else {
        for (std::size_t i = 0; i < want.ld_forward.size(); ++i) {
            CHECK(got.ld_forward[i] == doctest::Approx(want.ld_forward[i]).epsilon(1e-12));
            CHECK(got.ld_inverse[i] == doctest::Approx(want.ld_inverse[i]).epsilon(1e-12));
        }
    }
}

}  // namespace

TEST_CASE_TEMPLATE("coupling formulas: Glow's sigmoid scale equals its definition and never overflows", T, float,
                   double) {
    constexpr double eps = std::numeric_limits<T>::epsilon();
    for (double hd = -40.0; hd <= 40.0; hd += 0.173) {
        const T h = T(hd);
        const auto g = cf::glow_sigmoid(h);
        const long double u = g.u;  // h + 2 rounded in T, as the formulas see it
        CHECK(g.u == h + T(2));
        const long double s = 1.0L / (1.0L + std::exp(-u)), one_minus_s = 1.0L / (1.0L + std::exp(u));
        INFO("h = " << hd);
        CHECK(rel_err(g.s, s) <= 4 * eps);
        CHECK(rel_err(g.one_minus_s, one_minus_s) <= 4 * eps);
        CHECK(rel_err(cf::glow_log_s(g), std::log(s)) <= 4 * eps);
        CHECK(rel_err(cf::SigmoidScale::forward(T(0.75), T(-0.25), h).log_s, std::log(s)) <= 4 * eps);
    }
    // Far out, where e^{-u} or e^{u} overflows T: the scale saturates, log s stays finite.
    for (const T h : {T(-1000), T(1000)}) {
        const auto g = cf::glow_sigmoid(h);
        CHECK(g.s + g.one_minus_s == T(1));
        CHECK(std::isfinite(cf::glow_log_s(g)));
    }
    CHECK(cf::glow_log_s(cf::glow_sigmoid(T(-1000))) == T(-998));
}

TEST_CASE_TEMPLATE("coupling formulas: forward and inverse undo each other for both scales", T, float, double) {
    const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-13;
    for (const double xd : {-2.5, -0.3, 0.0, 0.8, 3.1})
        for (const double hd : {-4.0, -1.2, 0.0, 0.7, 3.5}) {
            const T x = T(xd), t = T(0.4), h = T(hd);
            INFO("x = " << xd << ", h = " << hd);
            for (const auto scale : {CouplingScale::tanh, CouplingScale::sigmoid}) {
                const auto f = cf::affine_forward(scale, x, t, h);
                const auto b = cf::affine_inverse(scale, f.value, t, h);
                CHECK(std::fabs(double(b.value) - xd) <= tol * 4);
                CHECK(b.log_s == f.log_s);  // the inverse returns the forward's term; the kernel subtracts it
            }
            CHECK(cf::TanhScale::forward(x, t, h).log_s == T(std::tanh(h)));
            CHECK(cf::additive_inverse(cf::additive_forward(x, t), t) == doctest::Approx(xd).epsilon(tol));
        }
}

TEST_CASE_TEMPLATE("coupling kernels: Cpu and CudaHost compute every element as Reference does", T, float, double) {
    Rng rng(5);
    for (const auto scale : {CouplingScale::tanh, CouplingScale::sigmoid}) {
        for (const int ldo : {7, 14}) {
            VectorCase<T> c{5, 7, ldo, {}, {}, {}, {}, {}, std::vector<T>(7)};
            c.x = normals<T>(std::size_t(c.n) * c.D, rng, 1.5);
            c.t = normals<T>(std::size_t(c.n) * ldo, rng, 1.0);
            c.h = normals<T>(std::size_t(c.n) * ldo, rng, 3.0);  // u = h + 2 of both signs
            c.dz = normals<T>(std::size_t(c.n) * c.D, rng, 1.0);
            c.dld = normals<T>(std::size_t(c.n), rng, 1.0);
            for (int j = 0; j < c.D; ++j) c.keep[std::size_t(j)] = T(j % 3 == 0);
            const auto ref = vector_outputs<Reference>(c, scale);
            INFO("vector coupling, ldo = " << ldo << (scale == CouplingScale::tanh ? ", tanh" : ", sigmoid"));
            check_outputs(vector_outputs<Cpu>(c, scale), ref, true);
            check_outputs(vector_outputs<CudaHost>(c, scale), ref, false);
        }
        const int n = 3, C = 4, H = 5, W = 6, HW = H * W;
        std::vector<T> board(HW);
        for (int p = 0; p < HW; ++p) board[std::size_t(p)] = T(((p / W) + (p % W)) % 2);
        for (const bool checkerboard : {false, true}) {
            ImageCase<T> c{n, C, HW, checkerboard ? 0 : C / 2, checkerboard ? C : C / 2,
                           checkerboard ? board.data() : nullptr, {}, {}, {}, {}, {}};
            const std::size_t N = std::size_t(n) * C * HW, NR = std::size_t(c.ct) * n * HW;
            c.x = normals<T>(N, rng, 1.5);
            c.t = normals<T>(NR, rng, 1.0);
            c.h = normals<T>(NR, rng, 3.0);
            c.dz = normals<T>(N, rng, 1.0);
            c.dld = normals<T>(std::size_t(n), rng, 1.0);
            const auto ref = image_outputs<Reference>(c, scale);
            INFO((checkerboard ? "checkerboard" : "channel split")
                 << " image coupling" << (scale == CouplingScale::tanh ? ", tanh" : ", sigmoid"));
            check_outputs(image_outputs<Cpu>(c, scale), ref, true);
            check_outputs(image_outputs<CudaHost>(c, scale), ref, false);
        }
    }
}
