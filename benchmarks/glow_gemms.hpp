// benchmarks/glow_gemms.hpp — the GEMM shapes of one coupling's conditioner at Glow config a's first
// level, shared by bench_image (BM_GlowGemm: kernels::gemm) and bench_conv (BM_OneDnnGemm: oneDNN's
// sgemm on the same products).
#pragma once

namespace bench {

// kernels::gemm(Cpu) on the products of one coupling's conditioner at Glow config a's first level
// (4×16×16, batch 64: n·HW = 16,384 columns; hidden 128): forward 3×3 (K = 2·9), 1×1, the narrow
// last layer (36 product rows over 7,168 columns), and backward's weight gradients (dY·colᵀ, both
// operands depth-contiguous) and input gradient (Wᵀ·dY).
struct GemmShape {
    const char* name;
    bool ta, tb;
    int M, N, K;
    float beta;
};
inline constexpr GemmShape glow_gemms[] = {
    {"fwd 3x3 in", false, false, 128, 16384, 18, 0.f}, {"fwd 1x1", false, false, 128, 16384, 128, 0.f},
    {"fwd narrow", false, false, 36, 7168, 128, 0.f},  {"dW 1x1", false, true, 128, 128, 16384, 1.f},
    {"dx 1x1", true, false, 128, 16384, 128, 0.f},     {"dW 3x3 in", false, true, 128, 18, 16384, 1.f},
};
inline constexpr int glow_gemm_count = int(sizeof(glow_gemms) / sizeof(glow_gemms[0]));

}  // namespace bench
