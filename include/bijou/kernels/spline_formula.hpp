// bijou/kernels/spline_formula.hpp — the monotonic rational-quadratic spline of one element (Durkan et
// al. 2019, "Neural Spline Flows", §3.1 and appendix A), written once for every backend (BIJOU_HD).
//
// An element's spline has K bins on [−B, B] and is the identity outside it (linear tails). Its 3K − 1
// raw parameters (a conditioner's outputs) are read at p[q·stride], q = 0 … 3K − 2:
//   u_w (K), u_h (K)  widths and heights: w_k = 2B·(w_min + (1 − K·w_min)·softmax(u_w)_k), h_k likewise
//   u_d (K − 1)       interior derivatives δ_k = δ_min + softplus(u_d,k−1 + c), k = 1 … K − 1,
//                     c = log(e^{1−δ_min} − 1), so that u_d = 0 gives δ = 1
// The boundary derivatives δ_0 = δ_K = 1 match the identity tails, so the map and its derivative are
// continuous at ±B. Zero raw parameters give uniform bins and δ ≡ 1: the exact identity (up to
// rounding), so zero-initialised conditioners start spline couplings at the identity.
// Knots x_0 = −B, x_{k+1} = x_k + w_k, x_K = B (y alike). For x in bin k, ξ = (x − x_k)/w_k, s = h_k/w_k:
//   y = y_k + h_k·(s ξ² + δ_k ξ(1−ξ)) / (s + (δ_{k+1} + δ_k − 2s) ξ(1−ξ))                        (eq. 4)
//   dy/dx = s²·(δ_{k+1} ξ² + 2s ξ(1−ξ) + δ_k (1−ξ)²) / (s + (δ_{k+1} + δ_k − 2s) ξ(1−ξ))²          (eq. 5)
// The log-det term is log dy/dx (0 outside [−B, B]); x = ±B lies inside. The inverse solves the
// quadratic a ξ² + b ξ + c = 0 of appendix A (eq. 6–8) for its root in [0, 1], written as
// 2c/(−b − √(b² − 4ac)) when b ≥ 0 (the paper's form) and as (−b + √(b² − 4ac))/(2a) when b < 0, so
// that no subtraction cancels; the discriminant is clamped at 0. It returns the forward's log-det
// term at that ξ (the caller subtracts it).
// Backward: reverse mode by hand through (ξ, s, δ, knots) to the raw parameters (softmax and softplus
// included); the bin index is piecewise constant and has no gradient. Cost: O(K) per element and pass.
#pragma once

#include <cstddef>

#include "bijou/core/hd.hpp"

namespace bijou::kernels::spline_formula {

/// The settings of a spline (every element of a bijector shares them).
template <class T>
struct Spline {
    int bins;                  ///< K
    T bound;                   ///< B: the spline acts on [−B, B]
    T min_width, min_height;   ///< minimum bin width and height, as fractions of 2B
    T min_derivative;          ///< δ_min
    T derivative_shift;        ///< c = log(e^{1−δ_min} − 1) (make_spline computes it)
};

/// Raw parameters of one element's spline.
BIJOU_HD constexpr int params_per_element(int bins) { return 3 * bins - 1; }

/// A Spline<T> from its settings (checked by the bijector that owns it).
template <class T>
Spline<T> make_spline(int bins, double bound, double min_width, double min_height, double min_derivative) {
    return {bins, T(bound), T(min_width), T(min_height), T(min_derivative),
            T(hd_math::log(hd_math::exp(1.0 - min_derivative) - 1.0))};
}

/// An element's output and its log-det term.
template <class T>
struct ValueLogDet {
    T value, log_det;
};

template <class T>
BIJOU_HD T softplus(T u) {
    return u > T(0) ? u + hd_math::log1p(hd_math::exp(-u)) : hd_math::log1p(hd_math::exp(u));
}

template <class T>
BIJOU_HD T sigmoid(T u) {
    const T e = hd_math::exp(-hd_math::abs(u));
    return u >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

/// max and Σ exp(u − max) of K values at stride (a softmax's normaliser).
template <class T>
struct Softmax {
    T max, sum;
};

/// The bin an element falls in: knot (x_k, y_k), width, height and the derivatives at its ends, with
/// the widths' and heights' softmax normalisers (backward reuses them).
template <class T>
struct Bin {
    int k;
    T x, w, y, h, d0, d1;
    Softmax<T> sw, sh;
};

template <class T>
BIJOU_HD Softmax<T> softmax_of(const T* u, std::size_t stride, int K) {
    T m = u[0];
    for (int q = 1; q < K; ++q) m = u[q * stride] > m ? u[q * stride] : m;
    T s = T(0);
    for (int q = 0; q < K; ++q) s += hd_math::exp(u[q * stride] - m);
    return {m, s};
}

/// δ_k for k = 0 … K (1 at both ends).
template <class T>
BIJOU_HD T derivative_at(const Spline<T>& sp, const T* p, std::size_t stride, int k) {
    if (k == 0 || k == sp.bins) return T(1);
    return sp.min_derivative + softplus(p[(2 * sp.bins + k - 1) * stride] + sp.derivative_shift);
}

/// The bin containing v, searched on the x knots (ByY false) or the y knots (ByY true); v in [−B, B].
template <bool ByY, class T>
BIJOU_HD Bin<T> locate(const Spline<T>& sp, const T* p, std::size_t stride, T v) {
    const int K = sp.bins;
    const T B = sp.bound, span = T(2) * sp.bound;
    const Softmax<T> sw = softmax_of(p, stride, K), sh = softmax_of(p + K * stride, stride, K);
    const T fw = T(1) - T(K) * sp.min_width, fh = T(1) - T(K) * sp.min_height;
    T x = -B, y = -B;
    int k = 0;
    for (;; ++k) {
        const bool last = k == K - 1;
        const T xn = last ? B : x + span * (sp.min_width + fw * hd_math::exp(p[k * stride] - sw.max) / sw.sum);
        const T yn = last ? B : y + span * (sp.min_height + fh * hd_math::exp(p[(K + k) * stride] - sh.max) / sh.sum);
        if (last || (ByY ? v < yn : v < xn))
            return {k, x, xn - x, y, yn - y, derivative_at(sp, p, stride, k), derivative_at(sp, p, stride, k + 1), sw, sh};
        x = xn, y = yn;
    }
}

template <class T>
BIJOU_HD T clamp01(T v) {
    return v < T(0) ? T(0) : v > T(1) ? T(1) : v;
}

/// log dy/dx at ξ in bin b (eq. 5).
template <class T>
BIJOU_HD T log_derivative(const Bin<T>& b, T xi) {
    const T s = b.h / b.w, q = xi * (T(1) - xi);
    const T den = s + (b.d1 + b.d0 - T(2) * s) * q;
    const T num = b.d1 * xi * xi + T(2) * s * q + b.d0 * (T(1) - xi) * (T(1) - xi);
    return hd_math::log(s * s * num / (den * den));
}

template <class T>
BIJOU_HD bool inside(const Spline<T>& sp, T v) {
    return v >= -sp.bound && v <= sp.bound;
}

/// z = spline(x) and log dz/dx.
template <class T>
BIJOU_HD ValueLogDet<T> forward(const Spline<T>& sp, const T* p, std::size_t stride, T x) {
    if (!inside(sp, x)) return {x, T(0)};
    const Bin<T> b = locate<false>(sp, p, stride, x);
    const T xi = clamp01((x - b.x) / b.w), s = b.h / b.w, q = xi * (T(1) - xi);
    const T y = b.y + b.h * (s * xi * xi + b.d0 * q) / (s + (b.d1 + b.d0 - T(2) * s) * q);
    return {y, log_derivative(b, xi)};
}

/// x = spline⁻¹(z) and log dz/dx at that x (the forward's term, which the inverse subtracts).
template <class T>
BIJOU_HD ValueLogDet<T> inverse(const Spline<T>& sp, const T* p, std::size_t stride, T z) {
    if (!inside(sp, z)) return {z, T(0)};
    const Bin<T> b = locate<true>(sp, p, stride, z);
    const T s = b.h / b.w, e = b.d1 + b.d0 - T(2) * s, dy = z - b.y;
    const T a = b.h * (s - b.d0) + dy * e, bq = b.h * b.d0 - dy * e, c = -s * dy;
    const T disc = bq * bq - T(4) * a * c, root = hd_math::sqrt(disc > T(0) ? disc : T(0));
    // The root in [0, 1], in whichever of its two algebraically equal forms adds terms of one sign:
    // 2c/(−b − √Δ) cancels catastrophically when b < 0 (δ_{k+1} ≫ s near the bin's right end).
    const T xi = clamp01(bq >= T(0) ? T(2) * c / (-bq - root) : (-bq + root) / (T(2) * a));
    return {b.x + xi * b.w, log_derivative(b, xi)};
}

/// For ∂L/∂z = dz and ∂L/∂(log-det term) = dld at input x: writes ∂L/∂p (all 3K − 1 raw parameters,
/// at p's stride, 0 outside [−B, B]) into dp and returns ∂L/∂x (the direct path).
template <class T>
BIJOU_HD T backward(const Spline<T>& sp, const T* p, std::size_t stride, T x, T dz, T dld, T* dp) {
    const int K = sp.bins, P = params_per_element(K);
    if (!inside(sp, x)) {
        for (int q = 0; q < P; ++q) dp[q * stride] = T(0);
        return dz;
    }
    const Bin<T> b = locate<false>(sp, p, stride, x);
    const T xi = clamp01((x - b.x) / b.w), s = b.h / b.w, q = xi * (T(1) - xi), e = b.d1 + b.d0 - T(2) * s;
    const T num = b.h * (s * xi * xi + b.d0 * q), den = s + e * q;
    const T n2 = b.d1 * xi * xi + T(2) * s * q + b.d0 * (T(1) - xi) * (T(1) - xi);
    // y = y_k + num/den;  log-det = 2 log s + log n2 − 2 log den
    const T g_num = dz / den, g_den = -dz * num / (den * den) - T(2) * dld / den, g_n2 = dld / n2;
    T g_s = T(2) * dld / s + g_num * b.h * xi * xi + g_den * (T(1) - T(2) * q) + g_n2 * T(2) * q;
    T g_xi = g_num * b.h * T(2) * s * xi + g_n2 * (T(2) * b.d1 * xi - T(2) * b.d0 * (T(1) - xi));
    const T g_q = g_num * b.h * b.d0 + g_den * e + g_n2 * T(2) * s;
    g_xi += g_q * (T(1) - T(2) * xi);
    const T g_d0 = g_num * b.h * q + g_den * q + g_n2 * (T(1) - xi) * (T(1) - xi);
    const T g_d1 = g_den * q + g_n2 * xi * xi;
    const T g_h = g_num * (s * xi * xi + b.d0 * q) + g_s / b.w;
    const T g_w = -g_s * b.h / (b.w * b.w) - g_xi * xi / b.w;
    const T g_x = g_xi / b.w, g_xk = -g_xi / b.w, g_yk = dz;
    // Knots: x_k = −B + 2B Σ_{j<k} w̃_j and w = 2B w̃_k (exactly so, whatever the rounding of the
    // forward's cumulative sums), w̃ = w_min + (1 − K w_min)·softmax(u_w); heights alike.
    auto softmax_grad = [&](const T* u, T* du, T g_width, T g_knot, T minimum, const Softmax<T>& sm) {
        const T f = T(2) * sp.bound * (T(1) - T(K) * minimum);
        T dot = T(0);  // Σ_j softmax_j · ∂L/∂softmax_j
        for (int j = 0; j < K; ++j) {
            const T g = j == b.k ? g_width : j < b.k ? g_knot : T(0);
            dot += hd_math::exp(u[j * stride] - sm.max) / sm.sum * g;
        }
        for (int j = 0; j < K; ++j) {
            const T g = j == b.k ? g_width : j < b.k ? g_knot : T(0);
            du[j * stride] = f * hd_math::exp(u[j * stride] - sm.max) / sm.sum * (g - dot);
        }
    };
    softmax_grad(p, dp, g_w, g_xk, sp.min_width, b.sw);
    softmax_grad(p + K * stride, dp + K * stride, g_h, g_yk, sp.min_height, b.sh);
    for (int j = 1; j < K; ++j) {  // δ_j's raw parameter is p[(2K + j − 1)·stride]
        const T u = p[(2 * K + j - 1) * stride] + sp.derivative_shift;
        const T g = j == b.k ? g_d0 : j == b.k + 1 ? g_d1 : T(0);
        dp[(2 * K + j - 1) * stride] = g * sigmoid(u);
    }
    return g_x;
}

}  // namespace bijou::kernels::spline_formula
