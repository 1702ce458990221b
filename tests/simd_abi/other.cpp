// The second file of simd_abi.mixed_instruction_sets (main.cpp), compiled with -mno-avx512f -mavx.
#include <bijou/core/eigen.hpp>

int other_file_alignment() { return EIGEN_DEFAULT_ALIGN_BYTES; }
