// fma_peak.hpp — this machine's FP32 FMA peak, the yardstick for the GFLOP/s the benchmarks report
// (bench_image's FmaPeak, bench_models --model fma_peak, which benchmarks/compare.py runs beside its
// cells): 12 independent chains a_r = a_r·b + c per thread, more than the FMA units' latency ×
// throughput (4 × 2) needs; the asm statements keep the compiler from folding chains that start
// equal or dropping the result. x86-64 with GCC or Clang only (fma_width() is 0 elsewhere).
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BIJOU_BENCH_FMA_PEAK 1

#define BIJOU_FMA_EACH(X, V, SET1, FMA)                                                                    \
    X(0, V, SET1, FMA) X(1, V, SET1, FMA) X(2, V, SET1, FMA) X(3, V, SET1, FMA) X(4, V, SET1, FMA)          \
    X(5, V, SET1, FMA) X(6, V, SET1, FMA) X(7, V, SET1, FMA) X(8, V, SET1, FMA) X(9, V, SET1, FMA)          \
    X(10, V, SET1, FMA) X(11, V, SET1, FMA)
#define BIJOU_FMA_INIT(r, V, SET1, FMA) \
    V a##r = SET1(1.0f);                \
    asm volatile("" : "+v"(a##r));
#define BIJOU_FMA_STEP(r, V, SET1, FMA) a##r = FMA(a##r, b, c);
#define BIJOU_FMA_KEEP(r, V, SET1, FMA) asm volatile("" : : "v"(a##r));
#define BIJOU_FMA_PEAK_LOOP(V, SET1, FMA, iters)    \
    const V b = SET1(0.999999f), c = SET1(1e-7f);   \
    BIJOU_FMA_EACH(BIJOU_FMA_INIT, V, SET1, FMA)    \
    for (long i = 0; i < iters; ++i) {              \
        BIJOU_FMA_EACH(BIJOU_FMA_STEP, V, SET1, FMA) \
    }                                               \
    BIJOU_FMA_EACH(BIJOU_FMA_KEEP, V, SET1, FMA)

namespace bench {
__attribute__((target("avx512f"))) inline void fma_loop_avx512(long iters) {
    BIJOU_FMA_PEAK_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, iters)
}
__attribute__((target("avx2,fma"))) inline void fma_loop_avx2(long iters) {
    BIJOU_FMA_PEAK_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, iters)
}

/// Floats per FMA this CPU can run: 16 (AVX-512F), 8 (AVX2 + FMA) or 0 (neither).
inline int fma_width() {
    if (__builtin_cpu_supports("avx512f")) return 16;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 8 : 0;
}

/// The flops of fma_loop(width, iters): iters × 12 FMAs of `width` floats, 2 flops each.
inline double fma_flops(int width, long iters) { return 2.0 * width * 12 * double(iters); }

/// iters × 12 FMAs of `width` floats (16 or 8): fma_flops(width, iters).
inline void fma_loop(int width, long iters) {
    if (width == 16) fma_loop_avx512(iters);
    else fma_loop_avx2(iters);
}
}  // namespace bench
#endif
