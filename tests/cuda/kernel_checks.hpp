// Checks shared by the CudaHost and Cuda test suites: every kernel of the Cuda backend
// (kernels/cuda/*.hpp, called through kernels::f(B{}, ...)) against the Reference kernel, on random
// inputs, over both scalars, both coupling scales, both mask kinds, splines, kernel sizes 1/3/5 and im2col
// chunkings. E supplies the backend (E::backend), the vector type whose memory that backend's kernels
// can read and the host can too (E::vec<T>: plain vectors for CudaHost, CUDA managed memory for Cuda)
// and E::sync(), which waits for the kernels before the host reads their output.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <type_traits>
#include <vector>

#include <bijou/bijou.hpp>

namespace bijou::test_cuda {


template <class Vec>
Vec randv(std::size_t n, Rng& rng, double scale = 1.0) {
    Vec v(n);
    for (auto& x : v) x = typename Vec::value_type(scale * rng.normal());
    return v;
}

/// max |a − b| / max(max |b|, 1); NaN counts as a difference.
template <class A, class B>
double rel_diff(const A& a, const B& b) {
    REQUIRE(a.size() == b.size());
    double d = 0.0, s = 1.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double e = std::abs(double(a[i]) - double(b[i]));
        d = std::isnan(e) ? INFINITY : std::max(d, e);
        s = std::max(s, std::abs(double(b[i])));
    }
    return d / s;
}

template <class T>
constexpr double tol() {
    return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}




template <class E, class T>
void check_actnorm() {
    using B = typename E::backend;
    using V = typename E::template vec<T>;
    Rng rng(1);
    for (auto [n, C, HW] : {std::array{3, 5, 7}, std::array{4, 6, 1}, std::array{2, 3, 300}}) {
        const std::size_t N = std::size_t(n) * C * HW;
        const auto x = randv<V>(N, rng), dz = randv<V>(N, rng), loc = randv<V>(C, rng), ls = randv<V>(C, rng, 0.3);
        V z0(N), z1(N), x0(N), x1(N), dx0(N), dx1(N);
        V dl0(C, T(0.5)), dl1(C, T(0.5)), ds0(C, T(-1)), ds1(C, T(-1));
        kernels::actnorm_forward(Reference{}, x.data(), z0.data(), loc.data(), ls.data(), n, C, HW);
        kernels::actnorm_forward(B{}, x.data(), z1.data(), loc.data(), ls.data(), n, C, HW);
        E::sync();
        CHECK(rel_diff(z1, z0) <= tol<T>());
        kernels::actnorm_inverse(Reference{}, z0.data(), x0.data(), loc.data(), ls.data(), n, C, HW);
        kernels::actnorm_inverse(B{}, z0.data(), x1.data(), loc.data(), ls.data(), n, C, HW);
        E::sync();
        CHECK(rel_diff(x1, x0) <= tol<T>());
        kernels::actnorm_backward(Reference{}, z0.data(), dz.data(), dx0.data(), ls.data(), dl0.data(), ds0.data(), n,
                                  C, HW);
        kernels::actnorm_backward(B{}, z0.data(), dz.data(), dx1.data(), ls.data(), dl1.data(), ds1.data(), n, C,
                             HW);
        E::sync();
        CHECK(rel_diff(dx1, dx0) <= tol<T>());
        CHECK(rel_diff(dl1, dl0) <= 10 * tol<T>());
        CHECK(rel_diff(ds1, ds0) <= 10 * tol<T>());
        CHECK(dl1[0] != T(0.5));  // the gradients were accumulated, not skipped

        std::vector<double> sums0(2 * std::size_t(C)), sums1(2 * std::size_t(C));  // host memory
        kernels::channel_sums(Reference{}, x.data(), sums0.data(), n, C, HW);
        kernels::channel_sums(B{}, x.data(), sums1.data(), n, C, HW);
        E::sync();
        CHECK(rel_diff(sums1, sums0) <= 1e-12);
    }
}

template <class E, class T>
void check_vector_coupling() {
    using B = typename E::backend;
    using V = typename E::template vec<T>;
    Rng rng(2);
    const int n = 5, D = 7;
    for (const int ldo : {D, 2 * D})
        for (const auto scale : {CouplingScale::tanh, CouplingScale::sigmoid}) {
            const std::size_t N = std::size_t(n) * D, NO = std::size_t(n) * ldo;
            const auto x = randv<V>(N, rng), t = randv<V>(NO, rng), h = randv<V>(NO, rng), dz = randv<V>(N, rng);
            const auto dld = randv<V>(n, rng), g1 = randv<V>(N, rng), g2 = randv<V>(N, rng);
            V keep(D);
            for (int j = 0; j < D; ++j) keep[j] = T(j % 3 == 0);
            V a(N), b(N), a2(N), b2(N), dt0(NO, T(7)), dt1(NO, T(7)), dh0(NO, T(7)), dh1(NO, T(7));
            typename E::template vec<double> ld0(n, 0.25), ld1(n, 0.25);

            kernels::coupling_mask_input(Reference{}, x.data(), keep.data(), a.data(), n, D);
            kernels::coupling_mask_input(B{}, x.data(), keep.data(), b.data(), n, D);
            E::sync();
            CHECK(rel_diff(b, a) == 0.0);

            kernels::coupling_affine_forward(Reference{}, scale, x.data(), a.data(), t.data(), h.data(), ldo,
                                             keep.data(), ld0.data(), n, D);
            kernels::coupling_affine_forward(B{}, scale, x.data(), b.data(), t.data(), h.data(), ldo, keep.data(),
                                        ld1.data(), n, D);
            E::sync();
            CHECK(rel_diff(b, a) <= tol<T>());
            CHECK(rel_diff(ld1, ld0) <= tol<T>());
            kernels::coupling_affine_inverse(Reference{}, scale, a.data(), a2.data(), t.data(), h.data(), ldo,
                                             keep.data(), ld0.data(), n, D);
            kernels::coupling_affine_inverse(B{}, scale, a.data(), b2.data(), t.data(), h.data(), ldo, keep.data(),
                                        ld1.data(), n, D);
            E::sync();
            CHECK(rel_diff(b2, a2) <= tol<T>());
            CHECK(rel_diff(ld1, ld0) <= tol<T>());
            CHECK(rel_diff(b2, x) <= 100 * tol<T>());  // round trip
            CHECK(std::abs(ld1[0] - 0.25) <= 100 * tol<T>());

            kernels::coupling_affine_backward(Reference{}, scale, x.data(), a.data(), t.data(), h.data(), ldo,
                                              keep.data(), dz.data(), dld.data(), a2.data(), dt0.data(), dh0.data(),
                                              n, D);
            kernels::coupling_affine_backward(B{}, scale, x.data(), a.data(), t.data(), h.data(), ldo, keep.data(), dz.data(),
                                         dld.data(), b2.data(), dt1.data(), dh1.data(), n, D);
            E::sync();
            CHECK(rel_diff(b2, a2) <= tol<T>());
            CHECK(rel_diff(dt1, dt0) <= tol<T>());
            CHECK(rel_diff(dh1, dh0) <= tol<T>());

            kernels::coupling_additive_forward(Reference{}, x.data(), a.data(), t.data(), ldo, keep.data(), n, D);
            kernels::coupling_additive_forward(B{}, x.data(), b.data(), t.data(), ldo, keep.data(), n, D);
            E::sync();
            CHECK(rel_diff(b, a) == 0.0);
            kernels::coupling_additive_inverse(Reference{}, a.data(), a2.data(), t.data(), ldo, keep.data(), n, D);
            kernels::coupling_additive_inverse(B{}, a.data(), b2.data(), t.data(), ldo, keep.data(), n, D);
            E::sync();
            CHECK(rel_diff(b2, a2) == 0.0);
            kernels::coupling_additive_backward(Reference{}, dz.data(), a.data(), dt0.data(), ldo, keep.data(), n, D);
            kernels::coupling_additive_backward(B{}, dz.data(), b.data(), dt1.data(), ldo, keep.data(), n, D);
            E::sync();
            CHECK(rel_diff(b, a) == 0.0);
            CHECK(rel_diff(dt1, dt0) == 0.0);
            for (const T* g : {g2.data(), static_cast<const T*>(nullptr)}) {
                kernels::coupling_add_condition_grad(Reference{}, a.data(), g1.data(), g, keep.data(), n, D);
                kernels::coupling_add_condition_grad(B{}, b.data(), g1.data(), g, keep.data(), n, D);
                E::sync();
                CHECK(rel_diff(b, a) == 0.0);
            }
        }
}

template <class E, class T>
void check_image_coupling() {
    using B = typename E::backend;
    using V = typename E::template vec<T>;
    Rng rng(3);
    const int n = 3, C = 4, H = 5, W = 6, HW = H * W;
    V board(HW);
    for (int p = 0; p < HW; ++p) board[p] = T(((p / W) + (p % W)) % 2);
    struct Split {
        int c0, ct;
        const T* keep;
    };
    for (const Split sp : {Split{C / 2, C / 2, nullptr}, Split{0, C, board.data()}})
        for (const auto scale : {CouplingScale::tanh, CouplingScale::sigmoid}) {
            const std::size_t N = std::size_t(n) * C * HW, NR = std::size_t(sp.ct) * n * HW;
            const auto x = randv<V>(N, rng), t = randv<V>(NR, rng), h = randv<V>(NR, rng), dz = randv<V>(N, rng);
            const auto dld = randv<V>(n, rng), g = randv<V>(NR, rng);
            V a(N), b(N), a2(N), b2(N), r0(NR, T(7)), r1(NR, T(7)), q0(NR, T(7)), q1(NR, T(7));
            typename E::template vec<double> ld0(n, -1.0), ld1(n, -1.0);
            const int cn = C - sp.c0;

            kernels::coupling_image_input(Reference{}, x.data(), r0.data(), sp.keep, n, C, HW, sp.c0, cn);
            kernels::coupling_image_input(B{}, x.data(), r1.data(), sp.keep, n, C, HW, sp.c0, cn);
            E::sync();
            CHECK(rel_diff(r1, r0) == 0.0);
            a = x, b = x;
            kernels::coupling_image_add_input_grad(Reference{}, a.data(), g.data(), sp.keep, n, C, HW, sp.c0, cn);
            kernels::coupling_image_add_input_grad(B{}, b.data(), g.data(), sp.keep, n, C, HW, sp.c0, cn);
            E::sync();
            CHECK(rel_diff(b, a) == 0.0);

            kernels::coupling_image_affine_forward(Reference{}, scale, x.data(), a.data(), t.data(), h.data(), sp.keep,
                                                   ld0.data(), n, C, HW, sp.c0, sp.ct);
            kernels::coupling_image_affine_forward(B{}, scale, x.data(), b.data(), t.data(), h.data(), sp.keep,
                                              ld1.data(), n, C, HW, sp.c0, sp.ct);
            E::sync();
            CHECK(rel_diff(b, a) <= tol<T>());
            CHECK(rel_diff(ld1, ld0) <= tol<T>());
            kernels::coupling_image_affine_inverse(Reference{}, scale, a.data(), a2.data(), t.data(), h.data(), sp.keep,
                                                   ld0.data(), n, C, HW, sp.c0, sp.ct);
            kernels::coupling_image_affine_inverse(B{}, scale, a.data(), b2.data(), t.data(), h.data(), sp.keep,
                                              ld1.data(), n, C, HW, sp.c0, sp.ct);
            E::sync();
            CHECK(rel_diff(b2, a2) <= tol<T>());
            CHECK(rel_diff(ld1, ld0) <= 10 * tol<T>());
            CHECK(rel_diff(b2, x) <= 100 * tol<T>());

            kernels::coupling_image_affine_backward(Reference{}, scale, x.data(), a.data(), h.data(), sp.keep,
                                                    dz.data(), dld.data(), a2.data(), r0.data(), q0.data(), n, C, HW,
                                                    sp.c0, sp.ct);
            kernels::coupling_image_affine_backward(B{}, scale, x.data(), a.data(), h.data(), sp.keep, dz.data(),
                                               dld.data(), b2.data(), r1.data(), q1.data(), n, C, HW, sp.c0, sp.ct);
            E::sync();
            CHECK(rel_diff(b2, a2) <= tol<T>());
            CHECK(rel_diff(r1, r0) <= tol<T>());
            CHECK(rel_diff(q1, q0) <= tol<T>());

            kernels::coupling_image_additive_forward(Reference{}, x.data(), a.data(), t.data(), sp.keep, n, C, HW,
                                                     sp.c0, sp.ct);
            kernels::coupling_image_additive_forward(B{}, x.data(), b.data(), t.data(), sp.keep, n, C, HW, sp.c0, sp.ct);
            E::sync();
            CHECK(rel_diff(b, a) == 0.0);
            kernels::coupling_image_additive_inverse(Reference{}, a.data(), a2.data(), t.data(), sp.keep, n, C, HW,
                                                     sp.c0, sp.ct);
            kernels::coupling_image_additive_inverse(B{}, a.data(), b2.data(), t.data(), sp.keep, n, C, HW, sp.c0, sp.ct);
            E::sync();
            CHECK(rel_diff(b2, a2) == 0.0);
            kernels::coupling_image_additive_backward(Reference{}, dz.data(), a.data(), r0.data(), sp.keep, n, C, HW,
                                                      sp.c0, sp.ct);
            kernels::coupling_image_additive_backward(B{}, dz.data(), b.data(), r1.data(), sp.keep, n, C, HW, sp.c0,
                                                 sp.ct);
            E::sync();
            CHECK(rel_diff(b, a) == 0.0);
            CHECK(rel_diff(r1, r0) == 0.0);
        }
}

/// Rational-quadratic splines (kernels/*/spline.hpp): vector form with a mask and without, image form.
template <class E, class T>
void check_spline() {
    using B = typename E::backend;
    using V = typename E::template vec<T>;
    Rng rng(4);
    const int n = 5, bins = 4, P = kernels::spline_formula::params_per_element(bins);
    const auto sp = kernels::spline_formula::make_spline<T>(bins, 1.5, 1e-3, 1e-3, 1e-3);
    auto same = [](const auto& a, const auto& b, double allowed) { CHECK(rel_diff(a, b) <= allowed); };
    {  // vector: x (n, D), θ rows of stride D·P
        const int D = 5;
        const std::size_t N = std::size_t(n) * D, NP = N * P;
        const auto x = randv<V>(N, rng, 1.2), theta = randv<V>(NP, rng), dz = randv<V>(N, rng), dld = randv<V>(n, rng);
        V keep(D);
        for (int j = 0; j < D; ++j) keep[j] = T(j % 2);
        for (const T* k : {static_cast<const T*>(nullptr), static_cast<const T*>(keep.data())}) {
            V a(N), b(N), a2(N), b2(N), dp0(NP, T(7)), dp1(NP, T(7));
            typename E::template vec<double> ld0(n, 0.25), ld1(n, 0.25);
            kernels::spline_forward(Reference{}, sp, x.data(), a.data(), theta.data(), D * P, k, ld0.data(), n, D);
            kernels::spline_forward(B{}, sp, x.data(), b.data(), theta.data(), D * P, k, ld1.data(), n, D);
            E::sync();
            same(b, a, tol<T>());
            same(ld1, ld0, tol<T>());
            kernels::spline_inverse(Reference{}, sp, a.data(), a2.data(), theta.data(), D * P, k, ld0.data(), n, D);
            kernels::spline_inverse(B{}, sp, a.data(), b2.data(), theta.data(), D * P, k, ld1.data(), n, D);
            E::sync();
            same(b2, a2, tol<T>());
            same(ld1, ld0, 10 * tol<T>());
            same(b2, x, 1000 * tol<T>());  // round trip
            kernels::spline_backward(Reference{}, sp, x.data(), theta.data(), D * P, k, dz.data(), dld.data(),
                                     a2.data(), dp0.data(), n, D);
            kernels::spline_backward(B{}, sp, x.data(), theta.data(), D * P, k, dz.data(), dld.data(), b2.data(),
                                     dp1.data(), n, D);
            E::sync();
            same(b2, a2, tol<T>());
            same(dp1, dp0, tol<T>());
        }
    }
    {  // image: x (n, C, HW), θ channel-major ((C/2)·P, n, HW)
        const int C = 4, HW = 6, c0 = 2;
        const std::size_t N = std::size_t(n) * C * HW, NP = std::size_t(C - c0) * P * n * HW;
        const auto x = randv<V>(N, rng, 1.2), theta = randv<V>(NP, rng), dz = randv<V>(N, rng), dld = randv<V>(n, rng);
        V a(N), b(N), a2(N), b2(N), dp0(NP, T(7)), dp1(NP, T(7));
        typename E::template vec<double> ld0(n, 0.25), ld1(n, 0.25);
        kernels::spline_image_forward(Reference{}, sp, x.data(), a.data(), theta.data(), ld0.data(), n, C, HW, c0);
        kernels::spline_image_forward(B{}, sp, x.data(), b.data(), theta.data(), ld1.data(), n, C, HW, c0);
        E::sync();
        same(b, a, tol<T>());
        same(ld1, ld0, tol<T>());
        kernels::spline_image_inverse(Reference{}, sp, a.data(), a2.data(), theta.data(), ld0.data(), n, C, HW, c0);
        kernels::spline_image_inverse(B{}, sp, a.data(), b2.data(), theta.data(), ld1.data(), n, C, HW, c0);
        E::sync();
        same(b2, a2, tol<T>());
        same(ld1, ld0, 10 * tol<T>());
        same(b2, x, 1000 * tol<T>());
        kernels::spline_image_backward(Reference{}, sp, x.data(), theta.data(), dz.data(), dld.data(), a2.data(),
                                       dp0.data(), n, C, HW, c0);
        kernels::spline_image_backward(B{}, sp, x.data(), theta.data(), dz.data(), dld.data(), b2.data(), dp1.data(),
                                       n, C, HW, c0);
        E::sync();
        same(b2, a2, tol<T>());
        same(dp1, dp0, tol<T>());
    }
}

/// The masked MLP's and the inverse autoregressive flow's elementwise kernels.
template <class E, class T>
void check_autoregressive_kernels() {
    using B = typename E::backend;
    using V = typename E::template vec<T>;
    Rng rng(6);
    const std::size_t N = 37;
    const auto w = randv<V>(N, rng), dz = randv<V>(N, rng), a = randv<V>(N, rng), r = randv<V>(N, rng);
    V mask(N), s(N);
    for (std::size_t k = 0; k < N; ++k) mask[k] = T(k % 3 != 0), s[k] = T(0.5 + double(k) / N);
    V m0(N), m1(N), v0(N), v1(N), f1(N);
    kernels::mlp_apply_mask(Reference{}, w.data(), mask.data(), m0.data(), N);
    kernels::mlp_apply_mask(B{}, w.data(), mask.data(), m1.data(), N);
    kernels::autoregressive_solve(Reference{}, dz.data(), a.data(), r.data(), s.data(), v0.data(), N);
    kernels::autoregressive_solve(B{}, dz.data(), a.data(), r.data(), s.data(), v1.data(), N);
    kernels::autoregressive_fill(B{}, f1.data(), T(2.5), N);
    E::sync();
    CHECK(rel_diff(m1, m0) == 0.0);
    CHECK(m0[0] == T(0));
    CHECK(rel_diff(v1, v0) <= tol<T>());
    for (std::size_t k = 0; k < N; ++k) CHECK(f1[k] == T(2.5));
}

template <class E, class T>
void check_conv2d() {
    using B = typename E::backend;
    using V = typename E::template vec<T>;
    Rng rng(4);
    for (const int k : {1, 3, 5})
        for (const int chunk : {1, 2, 3, 8}) {
            const int n = 3, in = 3, out = 4, H = 4, W = 5, HW = H * W;
            const kernels::ConvDims d{in, out, k, H, W};
            const std::size_t NX = std::size_t(in) * n * HW, NY = std::size_t(out) * n * HW;
            const auto x = randv<V>(NX, rng), w = randv<V>(std::size_t(out) * in * k * k, rng), b = randv<V>(out, rng);
            const auto dy = randv<V>(NY, rng), mask = randv<V>(NX, rng);
            V scratch(kernels::conv2d_scratch_size(B{}, d, chunk) + 1);
            E::sync();
            for (const bool relu : {false, true}) {
                V y0(NY), y1(NY);
                kernels::conv2d_forward(Reference{}, x.data(), y0.data(), w.data(), b.data(), n, d, chunk, static_cast<T*>(nullptr),
                                        relu);
                kernels::conv2d_forward(B{}, x.data(), y1.data(), w.data(), b.data(), n, d, chunk, scratch.data(), relu);
                E::sync();
                CHECK(rel_diff(y1, y0) <= tol<T>());
            }
            for (const T* m : {static_cast<const T*>(nullptr), mask.data()}) {
                V dx0(NX, T(9)), dx1(NX, T(9)), dw0(w.size(), T(1)), dw1(w.size(), T(1));
                V db0(out, T(2)), db1(out, T(2));
                kernels::conv2d_backward(Reference{}, x.data(), dy.data(), dx0.data(), w.data(), dw0.data(),
                                         db0.data(), n, d, chunk, static_cast<T*>(nullptr), m);
                kernels::conv2d_backward(B{}, x.data(), dy.data(), dx1.data(), w.data(), dw1.data(), db1.data(), n, d,
                                         chunk, scratch.data(), m);
                E::sync();
                CHECK(rel_diff(dx1, dx0) <= tol<T>());
                CHECK(rel_diff(dw1, dw0) <= 10 * tol<T>());
                CHECK(rel_diff(db1, db0) <= tol<T>());
            }
            V dw0(w.size(), T(0)), dw1(w.size(), T(0)), db0(out, T(0)), db1(out, T(0));
            kernels::conv2d_backward(Reference{}, x.data(), dy.data(), static_cast<T*>(nullptr), w.data(), dw0.data(),
                                     db0.data(), n, d, chunk, static_cast<T*>(nullptr));
            kernels::conv2d_backward(B{}, x.data(), dy.data(), static_cast<T*>(nullptr), w.data(), dw1.data(), db1.data(),
                                     n, d, chunk, scratch.data());
            E::sync();
            CHECK(rel_diff(dw1, dw0) <= 10 * tol<T>());
        }
}

template <class E, class T>
void check_layers() {
    using B = typename E::backend;
    using V = typename E::template vec<T>;
    Rng rng(5);
    const int n = 3, C = 6, H = 4, W = 2, HW = H * W;
    const std::size_t N = std::size_t(n) * C * HW;
    const auto x = randv<V>(N, rng), dz = randv<V>(N, rng), Wm = randv<V>(std::size_t(C) * C, rng);
    // Channel-major blocks.
    for (const int mode : {0, 1, 2}) {
        const int c0 = 2, cn = 3;
        const auto cm = randv<V>(std::size_t(cn) * n * HW, rng);
        V a = x, b = x, ca(cm.size()), cbv(cm.size());
        if (mode == 0) {
            kernels::nchw_to_channel_major(Reference{}, x.data(), ca.data(), n, C, HW, c0, cn);
            kernels::nchw_to_channel_major(B{}, x.data(), cbv.data(), n, C, HW, c0, cn);
            E::sync();
            CHECK(rel_diff(cbv, ca) == 0.0);
        } else {
            if (mode == 1) kernels::channel_major_to_nchw(Reference{}, cm.data(), a.data(), n, C, HW, c0, cn);
            else kernels::channel_major_add_to_nchw(Reference{}, cm.data(), a.data(), n, C, HW, c0, cn);
            if (mode == 1) kernels::channel_major_to_nchw(B{}, cm.data(), b.data(), n, C, HW, c0, cn);
            else kernels::channel_major_add_to_nchw(B{}, cm.data(), b.data(), n, C, HW, c0, cn);
            E::sync();
            CHECK(rel_diff(b, a) == 0.0);
        }
    }
    // 1×1 maps (images and vectors) and their weight gradients.
    for (const int hw : {HW, 1})
        for (const bool tr : {false, true}) {
            const std::size_t M = std::size_t(n) * C * hw;
            V y0(M), y1(M), g0(Wm.size(), T(1)), g1(Wm.size(), T(1));
            kernels::linear1x1(Reference{}, Wm.data(), tr, x.data(), y0.data(), n, C, hw);
            kernels::linear1x1(B{}, Wm.data(), tr, x.data(), y1.data(), n, C, hw);
            E::sync();
            CHECK(rel_diff(y1, y0) <= tol<T>());
            kernels::linear1x1_weight_grad(Reference{}, dz.data(), x.data(), g0.data(), n, C, hw, static_cast<T*>(nullptr));
            kernels::linear1x1_weight_grad(B{}, dz.data(), x.data(), g1.data(), n, C, hw, static_cast<T*>(nullptr));
            E::sync();
            CHECK(rel_diff(g1, g0) <= 10 * tol<T>());
        }
    // The log-det term of InvConv1x1's weight gradient: dW += HW·(Σ dld)·W⁻ᵀ (W⁻ᵀ in double).
    {
        Rng r(6);
        const auto winv_t = randv<typename E::template vec<double>>(std::size_t(C) * C, r);
        const auto dld = randv<V>(std::size_t(n), r);
        V g0(Wm.size(), T(1)), g1(Wm.size(), T(1));
        kernels::linear1x1_log_det_grad(Reference{}, winv_t.data(), g0.data(), dld.data(), n, C, HW);
        kernels::linear1x1_log_det_grad(B{}, winv_t.data(), g1.data(), dld.data(), n, C, HW);
        E::sync();
        CHECK(rel_diff(g1, g0) <= tol<T>());
    }
    // Channel permutation.
    typename E::template vec<int> perm(C);
    std::iota(perm.begin(), perm.end(), 0);
    std::reverse(perm.begin(), perm.end());
    std::swap(perm[0], perm[2]);
    V p0(N), p1(N);
    kernels::permute_channels(Reference{}, x.data(), p0.data(), perm.data(), n, C, HW);
    kernels::permute_channels(B{}, x.data(), p1.data(), perm.data(), n, C, HW);
    E::sync();
    CHECK(rel_diff(p1, p0) == 0.0);
    // MLP parts on an (n·HW, C) batch.
    const int rows = n * HW;
    const auto bias = randv<V>(C, rng);
    V m0 = x, m1 = x;
    kernels::mlp_bias_relu(Reference{}, m0.data(), bias.data(), rows, C);
    kernels::mlp_bias_relu(B{}, m1.data(), bias.data(), rows, C);
    E::sync();
    CHECK(rel_diff(m1, m0) == 0.0);
    kernels::mlp_bias(Reference{}, m0.data(), bias.data(), rows, C);
    kernels::mlp_bias(B{}, m1.data(), bias.data(), rows, C);
    E::sync();
    CHECK(rel_diff(m1, m0) == 0.0);
    V gr0 = dz, gr1 = dz;
    kernels::mlp_relu_backward(Reference{}, gr0.data(), x.data(), rows, C);
    kernels::mlp_relu_backward(B{}, gr1.data(), x.data(), rows, C);
    E::sync();
    CHECK(rel_diff(gr1, gr0) == 0.0);
    V db0(C, T(3)), db1(C, T(3));
    kernels::mlp_bias_grad(Reference{}, dz.data(), db0.data(), rows, C);
    kernels::mlp_bias_grad(B{}, dz.data(), db1.data(), rows, C);
    E::sync();
    CHECK(rel_diff(db1, db0) <= tol<T>());
    // Squeeze against the Reference bijector, both directions.
    using Sq = SqueezeBijector<Shape<C, H, W>, T, Reference>;
    BuildContext ctx{Options{}};
    Sq sq(ctx);
    V s0(N), s1(N), u1(N);
    sq.forward(x.data(), s0.data(), nullptr, n, nullptr);
    kernels::squeeze(B{}, x.data(), s1.data(), n, C, H, W);
    E::sync();
    CHECK(rel_diff(s1, s0) == 0.0);
    kernels::unsqueeze(B{}, s1.data(), u1.data(), n, C, H, W);
    E::sync();
    CHECK(rel_diff(u1, x) == 0.0);
}

}  // namespace bijou::test_cuda
