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

// The products of one two-moons net (2→256→256→2, batch 512) that are not the packed 256×256 GEMM, on
// one thread: the input and output layers forward and backward (gemm_thin.hpp) and a bias gradient.
// 2026-12-04, before the depth kernel's fused epilogue, these six products and the two bias gradients
// of a net took ~138 µs a step against ~1,357 µs for its three 512×256×256 GEMMs (a standalone timing).
void BM_MlpThinProducts(benchmark::State& st) {
    const int n = 512, H = 256, which = int(st.range(0));
    const int saved_threads = num_threads();
    set_num_threads(1);
    Rng rng(3);
    auto filled = [&](std::size_t size) {
        std::vector<float> v(size);
        for (auto& e : v) e = float(rng.normal());
        return v;
    };
    const auto x = filled(2 * n), w1 = filled(2 * H), b1 = filled(H), h = filled(std::size_t(n) * H), w3 = filled(2 * H),
               b3 = filled(2), g = filled(2 * n);
    std::vector<float> out(std::size_t(n) * H), dw(2 * H), db(H);
    for (auto _ : st) {
        switch (which) {
            case 0: kernels::mlp_linear(Cpu{}, x.data(), 2, w1.data(), 2, b1.data(), 0.f, out.data(), n, 2, H, true); break;
            case 1: kernels::mlp_linear(Cpu{}, h.data(), H, w3.data(), H, b3.data(), 0.f, out.data(), n, H, 2, false); break;
            case 2: kernels::gemm(Cpu{}, true, false, 2, H, n, 1.f, g.data(), 2, h.data(), H, 1.f, dw.data(), H); break;
            case 3: kernels::mlp_linear_input_grad_relu(Cpu{}, g.data(), w3.data(), H, h.data(), out.data(), n, H, 2); break;
            case 4: kernels::gemm(Cpu{}, true, false, H, 2, n, 1.f, h.data(), H, x.data(), 2, 1.f, dw.data(), 2); break;
            case 5: kernels::gemm(Cpu{}, false, false, n, 2, H, 1.f, h.data(), H, w1.data(), 2, 0.f, out.data(), 2); break;
            case 6: kernels::mlp_bias_grad(Cpu{}, h.data(), dw.data(), n, H); break;
            // one pass each (kernels/cpu/mlp_thin.hpp): 4 + 6, and 2 + 3 + 6
            case 7: kernels::mlp_param_grads(Cpu{}, h.data(), x.data(), 2, dw.data(), 2, db.data(), n, 2, H); break;
            default:
                kernels::mlp_layer_backward(Cpu{}, g.data(), h.data(), w3.data(), H, dw.data(), db.data(), out.data(),
                                            db.data(), n, H, 2);
                break;
        }
        benchmark::DoNotOptimize(out.data());
        benchmark::DoNotOptimize(dw.data());
    }
    static const char* names[] = {"in_forward",  "out_forward", "out_weight_grad", "out_input_grad",
                                  "in_weight_grad", "in_input_grad", "bias_grad", "in_param_grads (4+6)",
                                  "out_layer_backward (2+3+6)"};
    st.SetLabel(names[which]);
    set_num_threads(saved_threads);
}
BENCHMARK(BM_MlpThinProducts)->DenseRange(0, 8);

}  // namespace

BENCHMARK_MAIN();
