// bijou/cuda.cuh — the optional CUDA backend. Include it from translation units compiled by nvcc (with
// --extended-lambda, which the bijou::cuda CMake target adds). It declares the bijou::Cuda policy and
// its runtime (core/cuda.cuh), the device executor (kernels/cuda/exec.cuh) and the kernels, which are
// the executor algorithms of kernels/cuda/*_body.hpp. docs/backends.md says what runs on it so far.
#pragma once

#include "bijou/core/cuda.cuh"
#include "bijou/kernels/cuda/actnorm.hpp"
#include "bijou/kernels/cuda/conv2d.hpp"
#include "bijou/kernels/cuda/coupling.hpp"
#include "bijou/kernels/cuda/exec.cuh"
#include "bijou/kernels/cuda/exec.hpp"
#include "bijou/kernels/cuda/linear1x1.hpp"
#include "bijou/kernels/cuda/mlp.hpp"
#include "bijou/kernels/cuda/squeeze.hpp"
