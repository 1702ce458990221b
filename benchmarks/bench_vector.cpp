// Vector bijectors (couplings, splines, autoregressive flows) and the two-moons RealNVP training step.
//   bench_vector --benchmark_filter=TrainStep
// items/s = samples per second. Thread count is the last argument where present.
#include <benchmark/benchmark.h>

#include <bijou/bijou.hpp>

namespace {

using namespace bijou;

template <class Recipe, int D>
struct Fixture {
    using F = Transform<Recipe, Shape<D>, float, Cpu>;
    F f;
    xt::xtensor<float, 2> x, z, dz, dx;
    xt::xtensor<float, 1> dld;
    explicit Fixture(int n, const Options& o = {}) : f(o) {
        Rng rng(1);
        x = xt::zeros<float>({std::size_t(n), std::size_t(D)});
        for (auto& v : x) v = float(rng.normal());
        // random parameters, as in a trained model (zero-initialised nets would make work trivial)
        for (auto& p : f.parameters()) p += float(0.1 * rng.normal());
        z = dz = dx = x;
        dld = xt::ones<float>({std::size_t(n)});
        f.reserve(n);
    }
};

template <class Recipe, int D>
void BM_Forward(benchmark::State& st) {
    const int n = int(st.range(0));
    Fixture<Recipe, D> fx(n);
    for (auto _ : st) {
        fx.f.forward_raw(fx.x.data(), fx.z.data(), n);
        benchmark::DoNotOptimize(fx.z.data());
    }
    st.SetItemsProcessed(st.iterations() * n);
}

template <class Recipe, int D>
void BM_Inverse(benchmark::State& st) {
    const int n = int(st.range(0));
    Fixture<Recipe, D> fx(n);
    for (auto _ : st) {
        fx.f.inverse_raw(fx.x.data(), fx.z.data(), n);
        benchmark::DoNotOptimize(fx.z.data());
    }
    st.SetItemsProcessed(st.iterations() * n);
}

// forward (which records what backward needs) + backward
template <class Recipe, int D>
void BM_ForwardBackward(benchmark::State& st) {
    const int n = int(st.range(0));
    Fixture<Recipe, D> fx(n);
    for (auto _ : st) {
        fx.f.forward_raw(fx.x.data(), fx.z.data(), n);
        fx.f.backward_raw(fx.x.data(), fx.z.data(), fx.dz.data(), fx.dld.data(), fx.dx.data(), n);
        benchmark::DoNotOptimize(fx.dx.data());
    }
    st.SetItemsProcessed(st.iterations() * n);
}

#define BIJOU_VECTOR_BENCH(R, D)                                   \
    BENCHMARK(BM_Forward<R, D>)->Arg(512)->Name("Forward/" #R "/" #D);       \
    BENCHMARK(BM_Inverse<R, D>)->Arg(512)->Name("Inverse/" #R "/" #D);       \
    BENCHMARK(BM_ForwardBackward<R, D>)->Arg(512)->Name("ForwardBackward/" #R "/" #D);

BIJOU_VECTOR_BENCH(ActNorm, 2)
BIJOU_VECTOR_BENCH(ActNorm, 64)
BIJOU_VECTOR_BENCH(AffineCoupling, 2)
BIJOU_VECTOR_BENCH(AffineCoupling, 64)
BIJOU_VECTOR_BENCH(AdditiveCoupling, 2)
BIJOU_VECTOR_BENCH(InvConv1x1, 64)
BIJOU_VECTOR_BENCH(InvConv1x1LU, 64)
BIJOU_VECTOR_BENCH(Permute, 64)
// The spline and autoregressive flows (default SplineOptions: 8 bins on [−3, 3]). MAF's inverse and
// IAF's forward and backward take D MADE passes: compare D = 2 with D = 16.
using MAF = MaskedAutoregressive<AffineTransform>;
using MAFSpline = MaskedAutoregressive<RationalQuadraticTransform>;
using IAF = InverseAutoregressive<AffineTransform>;
BIJOU_VECTOR_BENCH(RationalQuadraticCoupling, 2)
BIJOU_VECTOR_BENCH(RationalQuadraticCoupling, 64)
BIJOU_VECTOR_BENCH(MAF, 2)
BIJOU_VECTOR_BENCH(MAF, 16)
BIJOU_VECTOR_BENCH(MAFSpline, 2)
BIJOU_VECTOR_BENCH(MAFSpline, 16)
BIJOU_VECTOR_BENCH(IAF, 16)

// The two-moons model (8 couplings, 2→256→256→2 shift and log-scale nets): one Adam step.
void BM_RealNVPTrainStep(benchmark::State& st) {
    const int n = int(st.range(0)), threads = int(st.range(1));
    set_num_threads(threads);
    Options o;  // defaults: 8 couplings, hidden 256, separate nets, tanh
    RealNVP<Shape<2>> model(o);
    Adam<float> adam(model.parameter_count());
    TrainConfig cfg{.lr = 1e-3, .warmup = 0, .clip = 50.0};
    auto x = two_moons<float>(n, 0.05, 1);
    model.reserve(n);
    long step = 0;
    for (auto _ : st) {
        const auto r = train_step(model, adam, x, cfg, step++);
        benchmark::DoNotOptimize(r.loss);
    }
    st.SetItemsProcessed(st.iterations() * n);
    st.counters["steps_per_s"] = benchmark::Counter(double(st.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RealNVPTrainStep)->ArgsProduct({{128, 512}, {1, 2}})->ArgNames({"batch", "threads"})->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
