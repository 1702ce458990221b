// bench_models — bijou's side of the side-by-side harness (benchmarks/compare.py): one model, one
// measured item and one thread count per process, timed for about --seconds after a warm-up, then one
// JSON line with the same fields as benchmarks/pytorch/bench_torch.py prints for PyTorch.
//
//   bench_models --model glow --config a|c|d --item train|log_prob|sample --threads N
//                [--seconds S] [--memory-saving]
//   bench_models --model two_moons --batch B --threads N [--seconds S]
//   bench_models --model spline|maf|maf_spline --batch B --threads N [--seconds S]   (CPU only)
//   bench_models --model fma_peak --threads N [--seconds S]: this machine's FP32 FMA peak (fma_peak.hpp)
//                with N threads at once, GFLOP/s per core (the slowest thread's), the yardstick
//                compare.py reports beside its fixed 220
//   bench_models_cuda … --device cuda: the same on a GPU (bench_models_cuda.cu; a separate binary,
//   built with CUDA, so that the CPU one maps no CUDA library); device_mb is the device memory the
//   model took (cudaMemGetInfo before and after), threads is meaningless there.
//
// Glow configs (issue 7): a = 1×32×32, L = 3, K = 8, hidden 128, batch 64; c = 1×32×32, L = 3,
// K = 32, hidden 512, batch 16; d = 3×32×32, L = 3, K = 8, hidden 256, batch 32. Glow's default step
// (ActNorm → InvConv1x1LU → affine coupling with sigmoid scale). train = loss + gradient + global
// clip + Adam step (lr 1e-3) on dequantised uniform noise images; log_prob on the same batch; sample
// at temperature 0.7. two_moons = RealNVP<Shape<2>> as in examples/two_moons (8 couplings, hidden
// 256), one Adam step per iteration on one fixed batch of two-moons points. spline, maf, maf_spline =
// examples/toy_density's flows at its defaults (bench_models.hpp: toy_flow_steps). Peak RSS is the process's (getrusage), so
// each measurement runs in a fresh process.
#include <algorithm>
#include <cstdio>

#include "bench_models.hpp"
#include "fma_peak.hpp"

namespace {
/// --model fma_peak: every thread times the FMA loop (blocks of 2^20 iterations) with bench::timed,
/// all at once; the slowest thread's rate is the per-core figure (what a pass split evenly across the
/// threads gets).
int fma_peak(const bench::Args& a) {
#if defined(BIJOU_BENCH_FMA_PEAK)
    const int width = bench::fma_width();
    if (width == 0) bench::usage("--model fma_peak: this CPU has neither AVX-512F nor AVX2 + FMA");
    constexpr long iters = 1 << 20;
    double slowest = 1e300;
#pragma omp parallel num_threads(a.threads) reduction(min : slowest)
    {
        const double blocks_per_s = bench::timed(a.seconds, [&] { bench::fma_loop(width, iters); }).first;
        slowest = std::min(slowest, blocks_per_s * bench::fma_flops(width, iters) * 1e-9);
    }
    std::printf("{\"impl\":\"bijou\",\"model\":\"fma_peak\",\"device\":\"cpu\",\"threads\":%d,\"width\":%d,"
                "\"gflops_per_core\":%.2f,\"peak_rss_mb\":%.1f}\n",
                a.threads, width, slowest, bench::peak_rss_mb());
    return 0;
#else
    (void)a;
    bench::usage("--model fma_peak: x86-64 with GCC or Clang only");
#endif
}
}  // namespace

#if defined(BIJOU_BENCH_CUDA)
int bench_models_cuda(const bench::Args& a);  // bench_models_cuda.cu
#endif

int main(int argc, char** argv) {
    const bench::Args a = bench::parse(argc, argv);
    try {
        bijou::set_num_threads(a.threads);
        if (a.model == "fma_peak") return fma_peak(a);
        if (a.device == "cuda") {
#if defined(BIJOU_BENCH_CUDA)
            return bench_models_cuda(a);
#else
            bench::usage("--device cuda: run bench_models_cuda (built with the CUDA backend)");
#endif
        }
        if (a.device != "cpu") bench::usage("unknown --device " + a.device + " (cpu or cuda)");
        return bench::run_models<bijou::Cpu>(a);
    } catch (const bijou::error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
