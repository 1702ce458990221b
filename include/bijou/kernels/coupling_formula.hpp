// bijou/kernels/coupling_formula.hpp — the element formulas of the affine and additive couplings,
// written once for every backend: Reference's plain loops, Cpu's threaded loops and the Cuda bodies
// (on the device too: BIJOU_HD) call these and only lay out the indices.
//
// For one transformed element with shift t and scale pre-activation h:
//   affine, tanh     z = x·s + t,    x = (z − t)/s,  log s = tanh h                       (RealNVP eq. 4–6)
//   affine, sigmoid  z = (x + t)·s,  x = z/s − t,    s = σ(h + 2), log s = −softplus(−(h + 2))  (Glow)
//   additive         z = x + t,      x = z − t,      log s = 0                            (NICE)
// The log-det term of an element is log s (the caller sums a sample's terms in double; the inverse
// subtracts them). σ, 1 − σ and log σ come from e^{−|u|}, so none overflows or cancels.
// Backward, for ∂L/∂z = dz and ∂L/∂(log-det) = dld of the element's sample:
//   tanh     dx = dz·s,  dt = dz,    dh = (dz·x·s + dld)·(1 − tanh² h)
//   sigmoid  dx = dz·s,  dt = dz·s,  dh = (dz·z + dld)·(1 − s)
// Each formula is a template on the scale (a Cpu loop hoists the choice out of its loop) with a
// run-time overload for the others, and on the math it calls: Libm (hd_math and `?:`, every
// backend's default) or a policy with the same static functions (exp, log1p, tanh, abs, select),
// such as the Cpu backend's VectorMath (kernels/cpu/vector_math.hpp), whose float functions keep a
// loop over elements vectorisable.
#pragma once

#include <type_traits>

#include "bijou/core/hd.hpp"
#include "bijou/kernels/coupling_scale.hpp"

namespace bijou::kernels::coupling_formula {

/// s, log s and d(log s)/dh of one element.
template <class T>
struct ScaleValue {
    T log_s, s, dlog_s;
};

/// An element's output and its log-det term.
template <class T>
struct ValueLogDet {
    T value, log_det;
};

/// An element's gradients: the direct path to x, and to the conditioner's t and h.
template <class T>
struct Grads {
    T dx, dt, dh;
};

/// The math the formulas call by default: the C library's, through hd_math (host and device).
struct Libm {
    template <class T>
    BIJOU_HD static T exp(T x) {
        return hd_math::exp(x);
    }
    template <class T>
    BIJOU_HD static T log1p(T x) {
        return hd_math::log1p(x);
    }
    template <class T>
    BIJOU_HD static T tanh(T x) {
        return hd_math::tanh(x);
    }
    template <class T>
    BIJOU_HD static T abs(T x) {
        return hd_math::abs(x);
    }
    template <class T>
    BIJOU_HD static T select(bool c, T a, T b) {
        return c ? a : b;
    }
};

template <CouplingScale S, class M = Libm, class T>
BIJOU_HD ScaleValue<T> scale_value(T h) {
    static_assert(S == CouplingScale::tanh || S == CouplingScale::sigmoid, "resolve model_default first");
    if constexpr (S == CouplingScale::tanh) {
        const T log_s = M::tanh(h);
        return {log_s, M::exp(log_s), T(1) - log_s * log_s};
    } else {
        const T u = h + T(2);
        const T e = M::exp(-M::abs(u)), r = T(1) / (T(1) + e), er = e * r;
        const bool positive = u >= T(0);
        return {M::select(positive, T(0), u) - M::log1p(e), M::select(positive, r, er), M::select(positive, er, r)};
    }
}

template <CouplingScale S, class M = Libm, class T>
BIJOU_HD ValueLogDet<T> affine_forward(T x, T t, T h) {
    const ScaleValue<T> v = scale_value<S, M>(h);
    if constexpr (S == CouplingScale::tanh) return {x * v.s + t, v.log_s};
    else return {(x + t) * v.s, v.log_s};
}

/// The inverse's value and the (positive) log-det term of the forward it undoes.
template <CouplingScale S, class M = Libm, class T>
BIJOU_HD ValueLogDet<T> affine_inverse(T z, T t, T h) {
    const ScaleValue<T> v = scale_value<S, M>(h);
    if constexpr (S == CouplingScale::tanh) return {(z - t) / v.s, v.log_s};
    else return {z / v.s - t, v.log_s};
}

template <CouplingScale S, class M = Libm, class T>
BIJOU_HD Grads<T> affine_backward(T x, T z, T h, T dz, T dld) {
    const ScaleValue<T> v = scale_value<S, M>(h);
    if constexpr (S == CouplingScale::tanh) return {dz * v.s, dz, (dz * x * v.s + dld) * v.dlog_s};
    else return {dz * v.s, dz * v.s, (dz * z + dld) * v.dlog_s};
}

template <class T>
BIJOU_HD ValueLogDet<T> affine_forward(CouplingScale scale, T x, T t, T h) {
    return scale == CouplingScale::tanh ? affine_forward<CouplingScale::tanh>(x, t, h)
                                        : affine_forward<CouplingScale::sigmoid>(x, t, h);
}

template <class T>
BIJOU_HD ValueLogDet<T> affine_inverse(CouplingScale scale, T z, T t, T h) {
    return scale == CouplingScale::tanh ? affine_inverse<CouplingScale::tanh>(z, t, h)
                                        : affine_inverse<CouplingScale::sigmoid>(z, t, h);
}

template <class T>
BIJOU_HD Grads<T> affine_backward(CouplingScale scale, T x, T z, T h, T dz, T dld) {
    return scale == CouplingScale::tanh ? affine_backward<CouplingScale::tanh>(x, z, h, dz, dld)
                                        : affine_backward<CouplingScale::sigmoid>(x, z, h, dz, dld);
}

/// f(std::integral_constant<CouplingScale, S>{}) for the run-time scale (host loops): the loop is
/// compiled once per scale, with the choice made outside it.
template <class F>
void with_scale(CouplingScale scale, F&& f) {
    if (scale == CouplingScale::tanh) f(std::integral_constant<CouplingScale, CouplingScale::tanh>{});
    else f(std::integral_constant<CouplingScale, CouplingScale::sigmoid>{});
}

template <class T>
BIJOU_HD T additive_forward(T x, T t) {
    return x + t;
}

template <class T>
BIJOU_HD T additive_inverse(T z, T t) {
    return z - t;
}

}  // namespace bijou::kernels::coupling_formula
