// simd_abi.mixed_instruction_sets: a program whose two files include Eigen through bijou with different
// instruction sets, so that their Eigen heap allocators differ: this one with -mno-avx (16-byte
// alignment: plain malloc), other.cpp with -mno-avx512f -mavx (32 bytes: Eigen's handmade allocator).
// Building a model must throw bijou::error naming both before anything is allocated
// (core/simd_abi.hpp), where such a program would otherwise corrupt its heap.
#include <bijou/core/eigen.hpp>
#include <bijou/core/options.hpp>

#include <cstdio>
#include <string>

int other_file_alignment();

int main() {
#if defined(__SANITIZE_ADDRESS__)
    std::printf("skipped: under AddressSanitizer every file uses Eigen's handmade allocator\n");
    return 77;
#endif
    const int mine = EIGEN_DEFAULT_ALIGN_BYTES, other = other_file_alignment();
    if (mine != 16 || other != 32) {
        std::printf("FAILED: expected alignments 16 and 32, the files have %d and %d\n", mine, other);
        return 1;
    }
    try {
        bijou::BuildContext ctx(bijou::Options{});
    } catch (const bijou::error& e) {
        const std::string what = e.what();
        if (what.find("(16-byte") != std::string::npos && what.find("(32-byte") != std::string::npos &&
            what.find("-march") != std::string::npos) {
            std::printf("ok: %s\n", e.what());
            return 0;
        }
        std::printf("FAILED: the error does not name both alignments and the fix: %s\n", e.what());
        return 1;
    }
    std::printf("FAILED: building with mixed instruction sets did not throw\n");
    return 1;
}
