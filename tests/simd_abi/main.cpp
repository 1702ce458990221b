// simd_abi.mixed_instruction_sets: a program whose two files include Eigen through bijou compiled for
// different instruction sets (this one with -mno-avx: 16-byte alignment; other.cpp with -mavx2: 32).
// Building a model must throw bijou::error naming both alignments before anything is allocated
// (core/simd_abi.hpp), where such a program would otherwise corrupt its heap.
#include <bijou/core/eigen.hpp>
#include <bijou/core/options.hpp>

#include <cstdio>
#include <string>

int other_file_alignment();

int main() {
    if (other_file_alignment() != 32 || EIGEN_DEFAULT_ALIGN_BYTES != 16) {
        std::printf("FAILED: expected alignments 16 and 32, the files have %d and %d\n", EIGEN_DEFAULT_ALIGN_BYTES,
                    other_file_alignment());
        return 1;
    }
    try {
        bijou::BuildContext ctx(bijou::Options{});
    } catch (const bijou::error& e) {
        const std::string what = e.what();
        const bool named = what.find("16 bytes") != std::string::npos || what.find(" 16 ") != std::string::npos;
        if (named && what.find("32") != std::string::npos && what.find("-march") != std::string::npos) {
            std::printf("ok: %s\n", e.what());
            return 0;
        }
        std::printf("FAILED: the error does not name both alignments and the fix: %s\n", e.what());
        return 1;
    }
    std::printf("FAILED: building with mixed instruction sets did not throw\n");
    return 1;
}
