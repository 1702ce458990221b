// bijou/kernels/reference/optim.hpp — one Adam or Adamax step over a flat span, plain loops.
// p, m, s, g: (n); p, m and s are updated in place. The optimizers (train/adam.hpp) compute the
// coefficients in double and round each to T once; the per-element arithmetic is in T, as torch does.
// Each gradient is read as g·grad_scale (train_step's clipping factor; 1, exact, when not clipping).
//   adam_step    g' = g + wd·p;  m = β1·m + (1 − β1)·g';  v = β2·v + (1 − β2)·g'²      (s = v)
//                p = p − step·m / (√v · inv_sqrt_bc2 + ε)          (Kingma & Ba 2015, Algorithm 1)
//   adamax_step  g' = g + wd·p;  m = β1·m + (1 − β1)·g';  u = max(β2·u, |g'|)           (s = u)
//                p = p − step·m / (u + ε)                           (Kingma & Ba 2015, Algorithm 2)
// step = lr/(1 − β1^t); inv_sqrt_bc2 = 1/√(1 − β2^t) (Adam only).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "bijou/core/backend.hpp"

namespace bijou::kernels {

/// The coefficients of one step, each rounded to T once.
template <class T>
struct AdamCoefficients {
    T beta1, one_minus_beta1, beta2, one_minus_beta2, weight_decay, step_size, inv_sqrt_bc2, eps;
    T grad_scale = T(1);
};

template <class T>
void adam_step(Reference, T* p, const T* g, T* m, T* v, std::size_t n, const AdamCoefficients<T>& k) {
    for (std::size_t i = 0; i < n; ++i) {
        const T gi = g[i] * k.grad_scale + k.weight_decay * p[i];
        m[i] = k.beta1 * m[i] + k.one_minus_beta1 * gi;
        v[i] = k.beta2 * v[i] + k.one_minus_beta2 * gi * gi;
        p[i] = p[i] - k.step_size * m[i] / (std::sqrt(v[i]) * k.inv_sqrt_bc2 + k.eps);
    }
}

template <class T>
void adamax_step(Reference, T* p, const T* g, T* m, T* u, std::size_t n, const AdamCoefficients<T>& k) {
    for (std::size_t i = 0; i < n; ++i) {
        const T gi = g[i] * k.grad_scale + k.weight_decay * p[i];
        m[i] = k.beta1 * m[i] + k.one_minus_beta1 * gi;
        u[i] = std::max(k.beta2 * u[i], std::abs(gi));
        p[i] -= k.step_size * m[i] / (u[i] + k.eps);
    }
}

}  // namespace bijou::kernels
