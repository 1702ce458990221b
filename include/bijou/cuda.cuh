// bijou/cuda.cuh — the optional CUDA backend. Include it from translation units compiled by nvcc (with
// --extended-lambda and EIGEN_NO_CUDA, which the bijou::cuda CMake target adds), then name bijou::Cuda
// as a model's last template argument: Glow<Shape<1, 32, 32>, 3, Step, float, bijou::Cuda>.
//
// It declares the bijou::Cuda policy and its runtime (core/cuda.cuh: cuda_error, require_device,
// DeviceBuffer, the cuBLAS handle and stream) and the device executor (kernels/cuda/exec.cuh), which
// launches the executor algorithms of kernels/cuda/*.hpp. Those kernel headers are CUDA-free: every
// bijector includes its own, and the CudaHost backend runs the same algorithms serially on the host
// (kernels/cuda/exec.hpp), so the test suite checks them without a GPU. Nothing in a bijector,
// distribution, net or optimizer header names a backend; docs/backends.md lists what runs on the
// device and what stays on the host.
#pragma once

#include "bijou/core/cuda.cuh"
#include "bijou/kernels/cuda/exec.cuh"
