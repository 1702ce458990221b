// bijou/kernels/cuda/optim.hpp — Adam and Adamax steps for the Cuda backend (and CudaHost): the
// contracts of kernels/reference/optim.hpp on executor memory, one thread per element.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/kernels/cuda/exec.hpp"
#include "bijou/kernels/reference/optim.hpp"

namespace bijou::kernels {

template <ExecutorBackend B, class T>
void adam_step(B, T* p, const T* g, T* m, T* v, std::size_t n, const AdamCoefficients<T>& k) {
    const T c1 = k.beta1, c1m = k.one_minus_beta1, c2 = k.beta2, c2m = k.one_minus_beta2, cwd = k.weight_decay;
    const T cstep = k.step_size, cbc = k.inv_sqrt_bc2, ceps = k.eps, cgs = k.grad_scale;
    B::executor::for_each(n, [=] BIJOU_HD_LAMBDA(std::size_t i) {
        const T gi = g[i] * cgs + cwd * p[i];
        const T mi = c1 * m[i] + c1m * gi;
        const T vi = c2 * v[i] + c2m * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] - cstep * mi / (cuda_body::math::sqrt(vi) * cbc + ceps);
    });
}

template <ExecutorBackend B, class T>
void adamax_step(B, T* p, const T* g, T* m, T* u, std::size_t n, const AdamCoefficients<T>& k) {
    const T c1 = k.beta1, c1m = k.one_minus_beta1, c2 = k.beta2, cwd = k.weight_decay, cstep = k.step_size;
    const T ceps = k.eps, cgs = k.grad_scale;
    B::executor::for_each(n, [=] BIJOU_HD_LAMBDA(std::size_t i) {
        const T gi = g[i] * cgs + cwd * p[i];
        const T mi = c1 * m[i] + c1m * gi;
        const T a = c2 * u[i], b = cuda_body::math::abs(gi);
        const T ui = a > b ? a : b;
        m[i] = mi;
        u[i] = ui;
        p[i] -= cstep * mi / (ui + ceps);
    });
}

}  // namespace bijou::kernels
