// bijou/kernels/cpu/vector_math.hpp — float exp, log1p and tanh that a compiler vectorises, for the
// Cpu backend's elementwise loops.
//
// libm's expf, log1pf and tanhf are calls, so a loop that makes them stays scalar (config a's log_prob
// spent 6% of its time in the sigmoid scale's log1pf/expf and the scalar loop around them). These are
// straight-line float arithmetic (no calls, no branches, no tables), so `#pragma omp simd` loops that
// use them become AVX-512/AVX2 code:
//   exp(x)     x = n·ln 2 + r, |r| ≤ ln 2 / 2 (Cody–Waite, two-part ln 2), e^r by a degree-7 polynomial
//              (Horner; Taylor coefficients, whose tail at |r| ≤ 0.347 is below float's half-ulp), 2^n
//              built from exponent bits in two halves, so that results in the subnormal range
//              (x < −87.3) are gradual and overflow gives +inf; x < −104 gives 0, NaN gives NaN.
//   log1p(x)   for x ≥ 0 (the sigmoid scale's e^{−|u|} ∈ (0, 1]): y = 1 + x = 2^e·m, m ∈ [√½, √2),
//              log m = 2·atanh(f) by its odd series to f⁹, f = x/(2 + x) when e = 0 (so tiny x keeps
//              its relative precision), else f = (m − 1)/(m + 1) plus the rounding of 1 + x,
//              (x − (y − 1))/y. NaN and +inf pass through; x < 0 is outside the contract.
//   tanh(x)    on |x|, the sign put back: below 0.55 its odd Taylor series to x¹⁷ (truncation < 5e-9
//              relative), from 0.55 on 1 − 2/(e^{2|x|} + 1) with the exp above (e^{2|x|} ≥ 3, so the
//              subtraction loses at most a bit); ±inf give ±1, −0 stays −0, NaN gives NaN.
// Accuracy against double-precision libm (tests/unit/cpu_kernels.cpp, every 4099th float of the ranges
// used): relative error < 2⁻²² for all three (measured 1.02e-7 for exp, 1.76e-7 for log1p over every 7th
// float; libm's float functions: ≤ 1 ulp). So the Cpu backend's affine couplings agree with
// Reference's to rounding, not bit for bit.
// VectorMath is the policy kernels/coupling_formula.hpp's formulas take: Libm with float exp, log1p
// and select from here.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "bijou/core/hd.hpp"
#include "bijou/kernels/coupling_formula.hpp"

namespace bijou::kernels::vector_math {

namespace detail {
/// The float whose bits are 2^k, for −126 ≤ k ≤ 127.
BIJOU_HD float pow2(std::int32_t k) {
    const std::int32_t bits = (k + 127) << 23;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}
BIJOU_HD std::int32_t bits_of(float f) {
    std::int32_t b;
    std::memcpy(&b, &f, sizeof b);
    return b;
}
BIJOU_HD float from_bits(std::int32_t b) {
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
}
/// c ? a : b on the bits. A float `?:` whose arms compute lets GCC move the arithmetic into
/// branches, which it will not turn back into SIMD selects while FP operations may trap (its
/// default); an integer select keeps both sides computed and the loop vectorisable.
BIJOU_HD float select(bool c, float a, float b) {
    const std::int32_t m = -std::int32_t(c);
    return from_bits((bits_of(a) & m) | (bits_of(b) & ~m));
}
}  // namespace detail

/// e^x in float, vectorisable (see the header comment for the method and accuracy).
BIJOU_HD float exp(float x) {
    const float xc = detail::select(x > -104.0f, detail::select(x < 89.0f, x, 89.0f), -104.0f);  // NaN → −104, restored below
    const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest (1.5·2²³)
    const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;             // ln 2 = 0.693359375 − 2.12194440e-4
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const std::int32_t k = std::int32_t(n), k1 = k / 2;  // |k| ≤ 150: two halves stay in the normal range
    return detail::select(x == x, p * detail::pow2(k1) * detail::pow2(k - k1), x);
}

/// log(1 + x) in float for x ≥ 0, vectorisable (see the header comment).
BIJOU_HD float log1p(float x) {
    const float y = 1.0f + x;
    const std::int32_t b = detail::bits_of(y);
    // y = 2^e·m with m ∈ [√½, √2): move the mantissa's top half down one octave
    const std::int32_t e = (b - 0x3f3504f3) >> 23;  // 0x3f3504f3: the bits of √½
    const float m = detail::from_bits(b - (e << 23));
    // log m = 2·atanh(f), f = (m − 1)/(m + 1); for e = 0 (m = 1 + x) f = x/(2 + x) exactly, else
    // m − 1 is exact and the rounding of 1 + x is added back as (x − (y − 1))/y
    const bool low = e == 0;
    const float f = detail::select(low, x, m - 1.0f) / detail::select(low, 2.0f + x, m + 1.0f), f2 = f * f;
    float s = 1.0f / 9.0f;
    s = s * f2 + 1.0f / 7.0f;
    s = s * f2 + 1.0f / 5.0f;
    s = s * f2 + 1.0f / 3.0f;
    const float log_m = 2.0f * f + 2.0f * f * f2 * s;
    const float rounding = detail::select(low, 0.0f, (x - (y - 1.0f)) / y);
    const float r = (float(e) * 0.693359375f + (log_m + rounding)) - float(e) * 2.12194440e-4f;
    return detail::select(x <= 3.40282347e38f, r, x);  // NaN and +inf pass through
}

/// tanh(x) in float, vectorisable (see the header comment).
BIJOU_HD float tanh(float x) {
    const std::int32_t sign = detail::bits_of(x) & std::int32_t(0x80000000u);
    const float a = detail::from_bits(detail::bits_of(x) & 0x7fffffff), a2 = a * a;
    float p = 6404582.0f / 10854718875.0f;  // the odd series' coefficients, x³ to x¹⁷, over x
    p = p * a2 - 929569.0f / 638512875.0f;
    p = p * a2 + 21844.0f / 6081075.0f;
    p = p * a2 - 1382.0f / 155925.0f;
    p = p * a2 + 62.0f / 2835.0f;
    p = p * a2 - 17.0f / 315.0f;
    p = p * a2 + 2.0f / 15.0f;
    p = p * a2 - 1.0f / 3.0f;
    const float series = a + a * a2 * p;
    const float big = 1.0f - 2.0f / (exp(2.0f * a) + 1.0f);  // e^{2a} ≥ 3 here; +inf → 1; NaN stays NaN
    return detail::from_bits(detail::bits_of(detail::select(a < 0.55f, series, big)) | sign);
}

/// The math policy of kernels/coupling_formula.hpp for Cpu loops: Libm's, with float exp, log1p, tanh
/// and select from above (abs, and every double, stay Libm's).
struct VectorMath : coupling_formula::Libm {
    template <class T>
    BIJOU_HD static T exp(T x) {
        if constexpr (std::is_same_v<T, float>) return vector_math::exp(x);
        else return Libm::exp(x);
    }
    template <class T>
    BIJOU_HD static T log1p(T x) {
        if constexpr (std::is_same_v<T, float>) return vector_math::log1p(x);
        else return Libm::log1p(x);
    }
    template <class T>
    BIJOU_HD static T tanh(T x) {
        if constexpr (std::is_same_v<T, float>) return vector_math::tanh(x);
        else return Libm::tanh(x);
    }
    /// c ? a : b, on the bits for float (see detail::select)
    template <class T>
    BIJOU_HD static T select(bool c, T a, T b) {
        if constexpr (std::is_same_v<T, float>) return detail::select(c, a, b);
        else return Libm::select(c, a, b);
    }
};

}  // namespace bijou::kernels::vector_math
