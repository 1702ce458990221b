// bijou/kernels/coupling_formulas.hpp — the per-element formulas of the coupling layers, written once.
//
// For one TRANSFORMED element: input x (z for the inverse), shift t and scale pre-activation h from
// the conditioner:
//   affine, tanh     z = x·s + t,     log s = tanh h                              (RealNVP eq. 4–6)
//   affine, sigmoid  z = (x + t)·s,   s = σ(h + 2), log s = −softplus(−(h + 2))   (Glow)
//   additive         z = x + t,       log s = 0                                   (NICE)
// forward and inverse return the output and the element's log-det term log s; the kernel sums the
// terms of a sample in double (forward adds, inverse subtracts). backward takes ∂L/∂z = dz and the
// sample's ∂L/∂ld = dld and returns the direct-path dx and the conditioner gradients dt, dh:
//   tanh:     dx = dz·s, dt = dz,   dh = (dz·x·s + dld)·(1 − tanh² h)
//   sigmoid:  dx = dz·s, dt = dz·s, dh = (dz·z + dld)·(1 − s)
//   additive: dx = dz,   dt = dz
// Costs per element: tanh one tanh and one exp (two exps in the inverse); sigmoid one exp and one
// log1p (one exp in backward).
//
// Why a header of its own: the Reference, Cpu and Cuda/CudaHost kernels (vector couplings in
// kernels/*/coupling.hpp, image couplings in kernels/*/coupling_image.hpp) differ in which elements
// they visit, in what order and on how many threads, never in the arithmetic of one element, so
// that arithmetic lives here and nowhere else. Every function is BIJOU_HD (core/hd.hpp): a plain
// inline function for GCC and Clang, __host__ __device__ under nvcc, with the math of
// kernels/math.hpp. They take and return scalars, not pointers or batches: inlined into a Cpu loop
// they vectorise exactly as the same expressions written in the loop would (the additive ones under
// `omp simd`; the affine ones call exp/tanh/log1p, which no loop vectorises without a vector libm).
// TanhScale and SigmoidScale are types so that a kernel can choose the scale once, outside its
// loops (the Cpu kernels); affine_forward/inverse/backward(scale, ...) choose per element.
#pragma once

#include "bijou/core/hd.hpp"
#include "bijou/kernels/coupling_scale.hpp"
#include "bijou/kernels/math.hpp"

namespace bijou::kernels::coupling {

/// An element's output and its log-det term log s.
template <class T>
struct Affine {
    T value;
    T log_s;
};

template <class T>
struct AffineGrads {
    T dx, dt, dh;
};

/// RealNVP's scale: log s = tanh h, so |log s| < 1.
struct TanhScale {
    template <class T>
    BIJOU_HD static Affine<T> forward(T x, T t, T h) {
        const T log_s = math::tanh(h);
        return {x * math::exp(log_s) + t, log_s};
    }
    template <class T>
    BIJOU_HD static Affine<T> inverse(T z, T t, T h) {
        const T log_s = math::tanh(h);
        return {(z - t) * math::exp(-log_s), log_s};
    }
    template <class T>
    BIJOU_HD static AffineGrads<T> backward(T x, T /*z*/, T h, T dz, T dld) {
        const T log_s = math::tanh(h), s = math::exp(log_s);
        return {dz * s, dz, (dz * x * s + dld) * (T(1) - log_s * log_s)};
    }
};

/// Glow's scale s = σ(u), u = h + 2 (openai/glow), and 1 − s = σ(−u), both from e = exp(−|u|) ≤ 1:
/// nothing overflows and 1 − s has no cancellation. log s = min(u, 0) − log1p(e) = −softplus(−u).
template <class T>
struct GlowSigmoid {
    T u, e, s, one_minus_s;
};

template <class T>
BIJOU_HD GlowSigmoid<T> glow_sigmoid(T h) {
    const T u = h + T(2);
    const T e = math::exp(-math::abs(u)), r = T(1) / (T(1) + e);
    return u >= T(0) ? GlowSigmoid<T>{u, e, r, e * r} : GlowSigmoid<T>{u, e, e * r, r};
}

template <class T>
BIJOU_HD T glow_log_s(GlowSigmoid<T> g) {
    return (g.u < T(0) ? g.u : T(0)) - math::log1p(g.e);
}

struct SigmoidScale {
    template <class T>
    BIJOU_HD static Affine<T> forward(T x, T t, T h) {
        const GlowSigmoid<T> g = glow_sigmoid(h);
        return {(x + t) * g.s, glow_log_s(g)};
    }
    template <class T>
    BIJOU_HD static Affine<T> inverse(T z, T t, T h) {
        const GlowSigmoid<T> g = glow_sigmoid(h);
        return {z / g.s - t, glow_log_s(g)};
    }
    template <class T>
    BIJOU_HD static AffineGrads<T> backward(T /*x*/, T z, T h, T dz, T dld) {
        const GlowSigmoid<T> g = glow_sigmoid(h);
        return {dz * g.s, dz * g.s, (dz * z + dld) * g.one_minus_s};
    }
};

template <class T>
BIJOU_HD Affine<T> affine_forward(CouplingScale scale, T x, T t, T h) {
    return scale == CouplingScale::tanh ? TanhScale::forward(x, t, h) : SigmoidScale::forward(x, t, h);
}

template <class T>
BIJOU_HD Affine<T> affine_inverse(CouplingScale scale, T z, T t, T h) {
    return scale == CouplingScale::tanh ? TanhScale::inverse(z, t, h) : SigmoidScale::inverse(z, t, h);
}

template <class T>
BIJOU_HD AffineGrads<T> affine_backward(CouplingScale scale, T x, T z, T h, T dz, T dld) {
    return scale == CouplingScale::tanh ? TanhScale::backward(x, z, h, dz, dld)
                                        : SigmoidScale::backward(x, z, h, dz, dld);
}

template <class T>
BIJOU_HD T additive_forward(T x, T t) {
    return x + t;
}

template <class T>
BIJOU_HD T additive_inverse(T z, T t) {
    return z - t;
}

template <class T>
struct AdditiveGrads {
    T dx, dt;
};

template <class T>
BIJOU_HD AdditiveGrads<T> additive_backward(T dz) {
    return {dz, dz};
}

}  // namespace bijou::kernels::coupling
