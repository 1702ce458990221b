// bijou/core/simd_abi.hpp — one program, one instruction-set configuration of Eigen.
//
// Eigen's heap alignment (EIGEN_DEFAULT_ALIGN_BYTES: 16 with SSE, 32 with AVX, 64 with AVX-512) follows
// the instruction-set flags each translation unit is compiled with, and the linker keeps one copy of
// each inline Eigen function. In a program whose files were compiled with different flags (typically a
// .cpp with -march=native beside a .cu whose host code has none), memory that one copy of
// aligned_malloc offsets is freed by another copy's plain free: heap corruption ("double free or
// corruption" on the first GPU run of bench_models_cuda). Every translation unit that includes Eigen
// through bijou (core/eigen.hpp) records its alignment during static initialisation, and
// BuildContext (every model and bijector is built through one) calls check_simd_abi(), which throws
// bijou::error naming both alignments before anything is allocated. Costs one comparison per build.
#pragma once

#include <string>

#include "bijou/core/error.hpp"

namespace bijou::detail {

/// The first alignment recorded and, if any translation unit disagreed, the other one (−1: none).
struct SimdAbi {
    int first = -1;
    int other = -1;
};

inline SimdAbi& simd_abi() {
    static SimdAbi abi;
    return abi;
}

/// Records one translation unit's Eigen heap alignment (static initialisation, one thread).
inline int record_simd_abi(int align_bytes) {
    SimdAbi& abi = simd_abi();
    if (abi.first < 0) abi.first = align_bytes;
    else if (align_bytes != abi.first) abi.other = align_bytes;
    return align_bytes;
}

/// Throws bijou::error if the program's translation units were compiled for different instruction sets.
inline void check_simd_abi() {
    const SimdAbi& abi = simd_abi();
    if (abi.other < 0) return;
    throw error("this program's files were compiled for different instruction sets: Eigen aligns heap memory to " +
                std::to_string(abi.first) + " bytes in some and " + std::to_string(abi.other) +
                " in others, and memory allocated by one is freed by the other (heap corruption). Compile every "
                "file with the same -march (for nvcc, the host code too: -Xcompiler=-march=...)");
}

}  // namespace bijou::detail
