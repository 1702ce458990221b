// Image bijectors and the Glow training step (config "a": 1×32×32, L = 3, K = 8, hidden 128, batch 64).
//   bench_image --benchmark_filter=GlowTrainStep
//   bench_image --benchmark_filter=GlowGemm   (the Cpu GEMM on the products of Glow's level 1)
// items/s = images per second. Threads and memory mode are arguments where present. Counters:
//   workspace_MB   the model's activation arena at this batch (Flow::workspace_bytes)
//   params_MB      parameters + gradients + Adam's two moments
//   peak_rss_MB    the process's peak resident set so far (getrusage; grows monotonically over the
//                  benchmarks run before, so run one --benchmark_filter at a time to compare modes)
//   GFLOPs         (GlowGemm) 2·M·N·K per second; (FmaPeak) this core's FP32 FMA peak, the yardstick
//                  for the others: 12 independent chains of register FMAs (fma_peak.hpp), 16-wide (AVX-512F) or
//                  8-wide (AVX2), on one thread (177 / 96 on the Xeon of 2026-12-04)
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <vector>

#include <bijou/bijou.hpp>

#include "fma_peak.hpp"
#include "glow_gemms.hpp"

namespace {

using namespace bijou;

double peak_rss_mb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// One image bijector on its own, at the shape it sees in Glow's first level (4×16×16 after the squeeze).
template <class Recipe, class S>
struct Fixture {
    using F = Transform<Recipe, S, float, Cpu>;
    F f;
    xt::xtensor<float, 4> x, z, dz, dx;
    xt::xtensor<float, 1> dld;
    Fixture(int n, const Options& o) : f(o) {
        Rng rng(1);
        x = make_batch<float, S>(n);
        for (auto& v : x) v = float(rng.normal());
        // random parameters, as in a trained model (zero-initialised nets would make work trivial)
        for (auto& p : f.parameters()) p += float(0.05 * rng.normal());
        z = dz = dx = x;
        if constexpr (!std::is_same_v<typename F::out_shape, S>) z = dz = make_batch<float, typename F::out_shape>(n);
        for (auto& v : dz) v = float(rng.normal());
        dld = xt::ones<float>({std::size_t(n)});
        f.reserve(n);
    }
};

Options image_options() {
    Options o;
    o.hidden = 128;
    return o.with(CouplingOptions{.scale = CouplingScale::sigmoid});
}

template <class Recipe, class S>
void BM_Forward(benchmark::State& st) {
    const int n = int(st.range(0));
    set_num_threads(int(st.range(1)));
    Fixture<Recipe, S> fx(n, image_options());
    for (auto _ : st) {
        fx.f.forward_raw(fx.x.data(), fx.z.data(), n);
        benchmark::DoNotOptimize(fx.z.data());
    }
    st.SetItemsProcessed(st.iterations() * n);
}

// forward (which records what backward needs) + backward
template <class Recipe, class S>
void BM_ForwardBackward(benchmark::State& st) {
    const int n = int(st.range(0));
    set_num_threads(int(st.range(1)));
    Fixture<Recipe, S> fx(n, image_options());
    for (auto _ : st) {
        fx.f.forward_raw(fx.x.data(), fx.z.data(), n);
        fx.f.backward_raw(fx.x.data(), fx.z.data(), fx.dz.data(), fx.dld.data(), fx.dx.data(), n);
        benchmark::DoNotOptimize(fx.dx.data());
    }
    st.SetItemsProcessed(st.iterations() * n);
}

#define BIJOU_IMAGE_BENCH(R, NAME, ...)                                                                    \
    BENCHMARK(BM_Forward<R, __VA_ARGS__>)->ArgsProduct({{64}, {1, 2}})->ArgNames({"batch", "threads"})      \
        ->UseRealTime()->Name("Forward/" NAME);                                                            \
    BENCHMARK(BM_ForwardBackward<R, __VA_ARGS__>)->ArgsProduct({{64}, {1, 2}})->ArgNames({"batch", "threads"}) \
        ->UseRealTime()->Name("ForwardBackward/" NAME);

BIJOU_IMAGE_BENCH(ActNorm, "ActNorm/4x16x16", Shape<4, 16, 16>)
BIJOU_IMAGE_BENCH(InvConv1x1, "InvConv1x1/4x16x16", Shape<4, 16, 16>)
BIJOU_IMAGE_BENCH(InvConv1x1LU, "InvConv1x1LU/4x16x16", Shape<4, 16, 16>)
BIJOU_IMAGE_BENCH(Permute, "Permute/4x16x16", Shape<4, 16, 16>)
BIJOU_IMAGE_BENCH(AffineCoupling, "AffineCoupling/4x16x16/hidden128", Shape<4, 16, 16>)
BIJOU_IMAGE_BENCH(AdditiveCoupling, "AdditiveCoupling/4x16x16/hidden128", Shape<4, 16, 16>)
BIJOU_IMAGE_BENCH(CheckerboardAffineCoupling, "CheckerboardAffineCoupling/4x16x16/hidden128", Shape<4, 16, 16>)
BIJOU_IMAGE_BENCH(Squeeze, "Squeeze/1x32x32", Shape<1, 32, 32>)
BIJOU_IMAGE_BENCH(Split, "Split/4x16x16", Shape<4, 16, 16>)
BIJOU_IMAGE_BENCH(TopPrior, "TopPrior/16x4x4", Shape<16, 4, 4>)

// Config "a": Glow 1×32×32, L = 3, K = 8, hidden 128 (Glow's sigmoid couplings), one Adam step on a
// batch of 64 dequantised random images. Arguments: threads, memory_saving (0/1).
void BM_GlowTrainStep(benchmark::State& st) {
    const int n = 64, threads = int(st.range(0));
    const bool lean = st.range(1) != 0;
    set_num_threads(threads);
    Glow<Shape<1, 32, 32>, 3> model({.steps_per_level = 8, .hidden = 128, .memory_saving = lean});
    Adam<float> adam(model.parameter_count());
    TrainConfig cfg{.lr = 1e-3, .warmup = 0, .clip = 50.0};
    Rng rng(1);
    auto x = make_batch<float, Shape<1, 32, 32>>(n);
    for (auto& v : x) v = float(rng.uniform() - 0.5);
    model.initialize(x);
    long step = 0;
    for (auto _ : st) {
        const auto r = train_step(model, adam, x, cfg, step++);
        benchmark::DoNotOptimize(r.loss);
    }
    st.SetItemsProcessed(st.iterations() * n);
    st.counters["workspace_MB"] = double(model.workspace_bytes(n)) / 1e6;
    st.counters["params_MB"] = double(model.parameter_count() * sizeof(float) * 4) / 1e6;
    st.counters["peak_rss_MB"] = peak_rss_mb();
}
BENCHMARK(BM_GlowTrainStep)
    ->ArgsProduct({{1, 2}, {0, 1}})
    ->ArgNames({"threads", "memory_saving"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Workspace of config "a" in both modes against K: the memory-saving arena does not grow with K.
void BM_GlowWorkspace(benchmark::State& st) {
    const int K = int(st.range(0));
    const bool lean = st.range(1) != 0;
    Glow<Shape<1, 32, 32>, 3> model({.steps_per_level = K, .hidden = 128, .memory_saving = lean});
    for (auto _ : st) benchmark::DoNotOptimize(model.workspace_bytes(64));
    st.counters["workspace_MB"] = double(model.workspace_bytes(64)) / 1e6;
}
BENCHMARK(BM_GlowWorkspace)->ArgsProduct({{2, 8, 32}, {0, 1}})->ArgNames({"K", "memory_saving"})->Iterations(1);

// log_prob and sample throughput of config "a".
void BM_GlowLogProb(benchmark::State& st) {
    set_num_threads(int(st.range(0)));
    Glow<Shape<1, 32, 32>, 3> model({.steps_per_level = 8, .hidden = 128});
    Rng rng(1);
    auto x = make_batch<float, Shape<1, 32, 32>>(64);
    for (auto& v : x) v = float(rng.uniform() - 0.5);
    model.initialize(x);
    for (auto _ : st) benchmark::DoNotOptimize(model.log_prob(x).data());
    st.SetItemsProcessed(st.iterations() * 64);
}
BENCHMARK(BM_GlowLogProb)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_GlowSample(benchmark::State& st) {
    set_num_threads(int(st.range(0)));
    Glow<Shape<1, 32, 32>, 3> model({.steps_per_level = 8, .hidden = 128});
    Rng rng(1);
    for (auto _ : st) benchmark::DoNotOptimize(model.sample(64, 0.7, rng).data());
    st.SetItemsProcessed(st.iterations() * 64);
}
BENCHMARK(BM_GlowSample)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);


void BM_GlowGemm(benchmark::State& st) {
    const bench::GemmShape g = bench::glow_gemms[st.range(0)];
    set_num_threads(int(st.range(1)));
    Rng rng(1);
    std::vector<float> A(std::size_t(g.M) * g.K), B(std::size_t(g.K) * g.N), C(std::size_t(g.M) * g.N);
    for (auto& v : A) v = float(rng.uniform() - 0.5);
    for (auto& v : B) v = float(rng.uniform() - 0.5);
    const int lda = g.ta ? g.M : g.K, ldb = g.tb ? g.K : g.N;
    for (auto _ : st) {
        kernels::gemm(Cpu{}, g.ta, g.tb, g.M, g.N, g.K, 1.0f, A.data(), lda, B.data(), ldb, g.beta, C.data(), g.N);
        benchmark::DoNotOptimize(C.data());
    }
    st.SetLabel(g.name);
    st.counters["GFLOPs"] =
        benchmark::Counter(2.0 * g.M * g.N * g.K * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_GlowGemm)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5}, {1, 2}})
    ->ArgNames({"shape", "threads"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

#if defined(BIJOU_BENCH_FMA_PEAK)
void BM_FmaPeak(benchmark::State& st) {
    const int width = int(st.range(0));
    if (bench::fma_width() < width) {
        st.SkipWithError(width == 16 ? "no AVX-512F on this CPU" : "no AVX2 + FMA on this CPU");
        return;
    }
    constexpr long iters = 1 << 20;
    for (auto _ : st) bench::fma_loop(width, iters);
    st.counters["GFLOPs"] =
        benchmark::Counter(bench::fma_flops(width, iters) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_FmaPeak)->Arg(16)->Arg(8)->ArgName("width")->UseRealTime();
#endif

}  // namespace

BENCHMARK_MAIN();
