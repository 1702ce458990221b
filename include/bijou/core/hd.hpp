// bijou/core/hd.hpp — code that runs on the host and on a CUDA device.
//   BIJOU_HD          a function both sides call: `__host__ __device__ inline` under nvcc, `inline` otherwise
//   BIJOU_HD_LAMBDA   the same for a lambda given to an executor (kernels/cuda/exec.hpp): nvcc compiles
//                     it for the device as well (--extended-lambda); other compilers see a plain lambda
#pragma once

#if defined(__CUDACC__)
#define BIJOU_HD __host__ __device__ inline
#define BIJOU_HD_LAMBDA __host__ __device__
#else
#define BIJOU_HD inline
#define BIJOU_HD_LAMBDA
#endif
