# The optional CUDA backend. BIJOU_WITH_CUDA is OFF (the default for projects that use bijou), ON
# (requires a CUDA toolkit) or AUTO (ON when nvcc is found, on PATH or in /usr/local/cuda/bin; the
# presets use AUTO, so the README's test command compile-checks the CUDA code wherever nvcc exists and
# prints "CUDA: skipped, no nvcc" elsewhere). Sets BIJOU_CUDA (ON/OFF) and, when ON, defines the
# INTERFACE target bijou::cuda for translation units compiled by nvcc:
#   bijou::bijou + CUDA::cudart + CUDA::cublas; for CUDA sources -std=c++20 (CMake 3.25 does not know
#   nvcc 13's C++20 dialect flag), --extended-lambda (the kernels pass __host__ __device__ lambdas),
#   the host compiler's OpenMP flag (the Cpu backend in the same translation unit), and EIGEN_NO_CUDA:
#   bijou uses Eigen on the host only, and Eigen's __host__ __device__ markings otherwise make nvcc warn
#   (#20012, #20015) even though Eigen is a system header.
# CMAKE_CUDA_ARCHITECTURES defaults to 90 (H100/H200): CUDA 13 has no target below sm_75.
set(BIJOU_CUDA OFF)
if(BIJOU_WITH_CUDA STREQUAL "AUTO")
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc CACHE FILEPATH "CUDA compiler" FORCE)
  endif()
  if(CMAKE_CUDA_COMPILER)
    set(BIJOU_CUDA ON)
  else()
    message(STATUS "CUDA: skipped, no nvcc")
  endif()
elseif(BIJOU_WITH_CUDA)
  set(BIJOU_CUDA ON)
endif()

if(BIJOU_CUDA)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90)
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  add_library(bijou_cuda INTERFACE)
  add_library(bijou::cuda ALIAS bijou_cuda)
  set_target_properties(bijou_cuda PROPERTIES EXPORT_NAME cuda)
  target_link_libraries(bijou_cuda INTERFACE bijou CUDA::cudart CUDA::cublas)
  target_compile_options(bijou_cuda INTERFACE
    $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 --extended-lambda>)
  target_compile_definitions(bijou_cuda INTERFACE EIGEN_NO_CUDA)
  if(BIJOU_WITH_OPENMP)
    target_compile_options(bijou_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-fopenmp>)
  else()
    target_compile_options(bijou_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-fopenmp-simd>)
  endif()
  # nvcc compiles a .cu file's host code with the host compiler but without CMAKE_CXX_FLAGS. An ISA flag
  # there (-march=native) and not here gives Eigen a different heap allocator in .cpp and .cu
  # translation units of one program (its own 32/64-byte aligned one, or plain malloc), and the linker
  # keeps one copy of each inline function: memory from one is freed by the other. This crashed
  # bench_models_cuda ("double free or corruption") on its first GPU run. The ISA flags of
  # CMAKE_CXX_FLAGS go to nvcc's host compiler too (in this build tree and add_subdirectory consumers;
  # an installed bijou::cuda cannot know its consumer's flags: docs/backends.md).
  string(REGEX MATCHALL "(^| )-m(arch|tune)=[^ ]+|(^| )-m(no-)?(avx|fma|sse|f16c|bmi)[^ ]*" _bijou_isa "${CMAKE_CXX_FLAGS}")
  foreach(_bijou_flag IN LISTS _bijou_isa)
    string(STRIP "${_bijou_flag}" _bijou_flag)
    target_compile_options(bijou_cuda INTERFACE $<BUILD_INTERFACE:$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${_bijou_flag}>>)
  endforeach()
  if(_bijou_isa AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 warns falsely inside its own AVX-512 intrinsics when Eigen's are inlined (CMakePresets'
    # bench preset); in nvcc's host pass Eigen is no longer a system header, so as an error under -Werror.
    target_compile_options(bijou_cuda INTERFACE
      $<BUILD_INTERFACE:$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wno-uninitialized -Xcompiler=-Wno-maybe-uninitialized>>)
  endif()
  message(STATUS "CUDA: building the Cuda backend's tests with ${CMAKE_CUDA_COMPILER} "
                 "${CMAKE_CUDA_COMPILER_VERSION} for sm_${CMAKE_CUDA_ARCHITECTURES}")
endif()

# bijou_cuda_host_optimization(<level> <config>...): in the calling directory, nvcc's -O in
# CMAKE_CUDA_FLAGS_<config> becomes <level> for each configuration given. nvcc warns when -O is given
# twice, so the level replaces the build type's instead of following it; nvcc's -O sets only the host
# code's level (the device code keeps ptxas's optimisation). A macro: it sets the caller's variables.
macro(bijou_cuda_host_optimization level)
  foreach(_bijou_config ${ARGN})
    string(REGEX REPLACE "-O[0-9s]" "${level}" CMAKE_CUDA_FLAGS_${_bijou_config} "${CMAKE_CUDA_FLAGS_${_bijou_config}}")
  endforeach()
endmacro()
