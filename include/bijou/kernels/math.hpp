// bijou/kernels/math.hpp — the C math functions that code shared by host and device calls.
// float and double overloads of exp, tanh, log1p, abs, sqrt, each BIJOU_HD (core/hd.hpp). CUDA
// declares the C functions (expf, exp, ...) __host__ __device__; libstdc++'s std:: overloads are
// constexpr host functions that device code may not call. On the host they are the very functions
// std::exp, std::tanh, ... call, so results are the same bits as with std::.
// Users: the coupling formulas (kernels/coupling_formulas.hpp) and the Cuda bodies (kernels/cuda/).
#pragma once

#include <cmath>

#include "bijou/core/hd.hpp"

namespace bijou::kernels::math {

BIJOU_HD float exp(float x) { return ::expf(x); }
BIJOU_HD double exp(double x) { return ::exp(x); }
BIJOU_HD float tanh(float x) { return ::tanhf(x); }
BIJOU_HD double tanh(double x) { return ::tanh(x); }
BIJOU_HD float log1p(float x) { return ::log1pf(x); }
BIJOU_HD double log1p(double x) { return ::log1p(x); }
BIJOU_HD float abs(float x) { return ::fabsf(x); }
BIJOU_HD double abs(double x) { return ::fabs(x); }
BIJOU_HD float sqrt(float x) { return ::sqrtf(x); }
BIJOU_HD double sqrt(double x) { return ::sqrt(x); }

}  // namespace bijou::kernels::math
