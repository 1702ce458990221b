// bijou/core/hd.hpp — code that runs on the host and on a CUDA device.
//   BIJOU_HD          a function both sides call: `__host__ __device__ inline` under nvcc, `inline` otherwise
//   BIJOU_HD_LAMBDA   the same for a lambda given to an executor (kernels/cuda/exec.hpp): nvcc compiles
//                     it for the device as well (--extended-lambda); other compilers see a plain lambda
//   bijou::hd_math    exp, tanh, log, log1p, abs, sqrt for float and double, callable on both sides
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define BIJOU_HD __host__ __device__ inline
#define BIJOU_HD_LAMBDA __host__ __device__
#else
#define BIJOU_HD inline
#define BIJOU_HD_LAMBDA
#endif

/// The C math functions the bodies use, callable on host and device (CUDA declares the C functions
/// __host__ __device__; libstdc++'s std:: overloads are constexpr host functions that device code
/// may not call).
namespace bijou::hd_math {
BIJOU_HD float exp(float x) { return ::expf(x); }
BIJOU_HD double exp(double x) { return ::exp(x); }
BIJOU_HD float tanh(float x) { return ::tanhf(x); }
BIJOU_HD double tanh(double x) { return ::tanh(x); }
BIJOU_HD float log(float x) { return ::logf(x); }
BIJOU_HD double log(double x) { return ::log(x); }
BIJOU_HD float log1p(float x) { return ::log1pf(x); }
BIJOU_HD double log1p(double x) { return ::log1p(x); }
BIJOU_HD float abs(float x) { return ::fabsf(x); }
BIJOU_HD double abs(double x) { return ::fabs(x); }
BIJOU_HD float sqrt(float x) { return ::sqrtf(x); }
BIJOU_HD double sqrt(double x) { return ::sqrt(x); }
}  // namespace bijou::hd_math
