// bijou/core/simd_abi.hpp — one program, one Eigen heap allocator.
//
// Eigen's aligned_malloc/aligned_free are inline, and which allocator they use depends on the flags a
// translation unit is compiled with: plain malloc/free where malloc's alignment suffices (SSE's 16
// bytes on 64-bit glibc, or no vectorisation), an over-allocating "handmade" allocator that stores the
// original pointer in front of the block otherwise (AVX's 32 or AVX-512's 64 bytes, or any build with
// AddressSanitizer). The linker keeps one copy of each inline function, so in a program whose files
// disagree (typically a .cpp with -march=native beside a .cu whose host code has none) a block from
// one allocator is freed by the other: heap corruption ("double free or corruption" on the first GPU
// run of bench_models_cuda). Every translation unit that includes Eigen through bijou
// (core/eigen.hpp) records its allocator and alignment during static initialisation, and BuildContext
// (every model and bijector is built through one) calls check_simd_abi(), which throws bijou::error
// naming both when the allocators differ. Alignments that differ with the same allocator (32 and 64
// bytes) are safe and pass. It cannot see files that use Eigen without a bijou header, nor models built
// during static initialisation (before later files have registered). One comparison per build.
#pragma once

#include <atomic>
#include <string>

#include "bijou/core/error.hpp"

namespace bijou::detail {

/// What the program's files recorded: −1 where nothing yet; `mixed` once two allocators were seen.
struct SimdAbi {
    std::atomic<int> plain_align{-1};     ///< alignment of a file whose Eigen allocates with plain malloc
    std::atomic<int> handmade_align{-1};  ///< alignment of a file whose Eigen allocates by hand
};

inline SimdAbi& simd_abi() {
    static SimdAbi abi;
    return abi;
}

/// Records one translation unit's Eigen allocator (plain malloc or handmade) and heap alignment.
inline int record_simd_abi(int align_bytes, bool plain_malloc) noexcept {
    (plain_malloc ? simd_abi().plain_align : simd_abi().handmade_align).store(align_bytes);
    return align_bytes;
}

/// Throws bijou::error if the program's files use different Eigen heap allocators.
inline void check_simd_abi() {
    const int plain = simd_abi().plain_align.load(), handmade = simd_abi().handmade_align.load();
    if (plain < 0 || handmade < 0) return;
    throw error("this program's files were compiled with different instruction-set (or sanitizer) flags: Eigen "
                "allocates heap memory with malloc in some (" + std::to_string(plain) +
                "-byte alignment) and by hand in others (" + std::to_string(handmade) +
                "-byte alignment), and memory allocated by one is freed by the other (heap corruption). Compile "
                "every file with the same -march and -fsanitize (for nvcc, the host code too: -Xcompiler=-march=...)");
}

}  // namespace bijou::detail
