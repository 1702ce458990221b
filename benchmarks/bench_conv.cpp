// bench_conv — Glow's coupling convolutions, bijou's Conv2d (kernels/cpu/conv2d.hpp: im2col + the
// packed GEMM, channel-major activations, bias and ReLU fused) against oneDNN's convolution
// primitives on the same shapes, where oneDNN was found at configure time (Debian: libdnnl-dev).
//
//   bench_conv                                  every shape, both passes, 1 and 2 threads
//   bench_conv --benchmark_filter='L1_1x1'      one shape
//   bench_conv --benchmark_filter=OneDnnGemm    oneDNN's sgemm on bench_image's GlowGemm products
//
// Shapes: the conditioner (3×3 in → hidden, ReLU, 1×1 hidden → hidden, ReLU, 3×3 hidden → out) of a
// coupling at each level of Glow config a (batch 64, hidden 128; levels 1-3 at 16×16, 8×8, 4×4 with
// 2/4/8 channels in and 4/8/16 out) and config d's level 1 (batch 32, hidden 256, 16×16, 6 in, 12 out).
// forward: y = conv(x) + bias (ReLU after the first two); backward: weight, bias and input gradients
// (bijou also masks the input gradient by the ReLU in front of the 1×1 and the last 3×3; oneDNN's
// figure leaves that elementwise pass out). oneDNN runs in the layouts it picks itself
// (format_tag::any: blocked, e.g. nChw8c), with no reorder timed: the best it could do inside a
// model that kept its activations in those layouts. Counter GFLOPs: 2·n·HW·out·in·k² per forward,
// twice that per backward.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <string>
#include <vector>

#include <bijou/bijou.hpp>

#include "glow_gemms.hpp"

#if defined(BIJOU_BENCH_ONEDNN)
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

using namespace bijou;

struct ConvShape {
    const char* name;
    int n, in, out, k, h;
    bool relu_out;  // a ReLU follows (forward) ...
    bool relu_in;   // ... or precedes (backward masks dx)
};

constexpr ConvShape shapes[] = {
    {"a_L1_3x3_in", 64, 2, 128, 3, 16, true, false},  {"a_L1_1x1", 64, 128, 128, 1, 16, true, true},
    {"a_L1_3x3_out", 64, 128, 4, 3, 16, false, true}, {"a_L2_3x3_in", 64, 4, 128, 3, 8, true, false},
    {"a_L2_1x1", 64, 128, 128, 1, 8, true, true},     {"a_L2_3x3_out", 64, 128, 8, 3, 8, false, true},
    {"a_L3_3x3_in", 64, 8, 128, 3, 4, true, false},   {"a_L3_1x1", 64, 128, 128, 1, 4, true, true},
    {"a_L3_3x3_out", 64, 128, 16, 3, 4, false, true}, {"d_L1_3x3_in", 32, 6, 256, 3, 16, true, false},
    {"d_L1_1x1", 32, 256, 256, 1, 16, true, true},    {"d_L1_3x3_out", 32, 256, 12, 3, 16, false, true},
};
constexpr int shape_count = int(sizeof(shapes) / sizeof(shapes[0]));

double forward_gflop(const ConvShape& s) {
    return 2.0 * s.n * s.h * s.h * double(s.out) * s.in * s.k * s.k * 1e-9;
}

void label(benchmark::State& st, const ConvShape& s, bool backward) {
    st.SetLabel(s.name);
    st.counters["GFLOPs"] = benchmark::Counter(forward_gflop(s) * (backward ? 2 : 1),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

std::vector<float> noise(std::size_t size, Rng& rng, bool nonnegative = false) {
    std::vector<float> v(size);
    for (auto& x : v) x = float(rng.uniform() - (nonnegative ? 0.0 : 0.5));
    return v;
}

// bijou: Conv2d<float, Cpu> with its own parameters and scratch. pass 0 = forward, 1 = backward.
void BM_BijouConv(benchmark::State& st) {
    const ConvShape& s = shapes[st.range(0)];
    const bool backward = st.range(1) == 1;
    set_num_threads(int(st.range(2)));
    Conv2d<float, Cpu> conv(s.in, s.out, s.k, s.h, s.h);
    ParamSet<float> ps;
    conv.declare(ps, "conv");
    ps.allocate();
    Rng rng(1);
    conv.reset_parameters(rng, false);
    const std::size_t plane = std::size_t(s.n) * s.h * s.h;
    std::vector<float> x = noise(plane * s.in, rng, s.relu_in), y(plane * s.out), dy = noise(plane * s.out, rng),
                       dx(plane * s.in), scratch(conv.scratch_size(s.n) + 1);
    for (auto _ : st) {
        if (backward) conv.backward(x.data(), dy.data(), dx.data(), s.n, scratch.data(), s.relu_in ? x.data() : nullptr);
        else conv.forward(x.data(), y.data(), s.n, scratch.data(), s.relu_out);
        benchmark::DoNotOptimize(backward ? dx.data() : y.data());
    }
    label(st, s, backward);
}
BENCHMARK(BM_BijouConv)
    ->ArgsProduct({benchmark::CreateDenseRange(0, shape_count - 1, 1), {0, 1}, {1, 2}})
    ->ArgNames({"shape", "backward", "threads"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

#if defined(BIJOU_BENCH_ONEDNN)
// oneDNN: forward_training with a ReLU post-op where one follows; backward = backward_data +
// backward_weights (with bias). Layouts chosen by oneDNN; memory filled once, nothing reordered.
void BM_OneDnnConv(benchmark::State& st) {
    using namespace dnnl;
    using tag = memory::format_tag;
    using dt = memory::data_type;
    const ConvShape& s = shapes[st.range(0)];
    const bool backward = st.range(1) == 1;
    set_num_threads(int(st.range(2)));  // oneDNN's CPU engine uses the same OpenMP runtime

    engine eng(engine::kind::cpu, 0);
    stream strm(eng);
    const memory::dims src{s.n, s.in, s.h, s.h}, wei{s.out, s.in, s.k, s.k}, bias{s.out}, dst{s.n, s.out, s.h, s.h};
    const memory::dims stride{1, 1}, pad{s.k / 2, s.k / 2};
    const memory::desc src_any(src, dt::f32, tag::any), wei_any(wei, dt::f32, tag::any),
        bias_md(bias, dt::f32, tag::a), dst_any(dst, dt::f32, tag::any);
    const convolution_forward::desc fd(prop_kind::forward_training, algorithm::convolution_direct, src_any, wei_any,
                                       bias_md, dst_any, stride, pad, pad);
    post_ops po;
    if (s.relu_out) po.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
    primitive_attr attr;
    attr.set_post_ops(po);
    const convolution_forward::primitive_desc fpd(fd, attr, eng);

    Rng rng(1);
    auto filled = [&](const memory::desc& md) {
        memory m(md, eng);
        const std::size_t count = md.get_size() / sizeof(float);
        float* p = static_cast<float*>(m.get_data_handle());
        for (std::size_t i = 0; i < count; ++i) p[i] = float(rng.uniform() - 0.5);
        return m;
    };
    memory x = filled(fpd.src_desc()), w = filled(fpd.weights_desc()), b = filled(fpd.bias_desc()),
           y = filled(fpd.dst_desc());
    std::string impl;
    if (!backward) {
        convolution_forward fwd(fpd);
        impl = fpd.impl_info_str();
        for (auto _ : st) {
            fwd.execute(strm, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, y}});
            strm.wait();
        }
    } else {
        const convolution_backward_data::desc bdd(algorithm::convolution_direct, src_any, wei_any, dst_any, stride,
                                                  pad, pad);
        const convolution_backward_data::primitive_desc bdpd(bdd, eng, fpd);
        const convolution_backward_weights::desc bwd(algorithm::convolution_direct, src_any, wei_any, bias_md, dst_any,
                                                     stride, pad, pad);
        const convolution_backward_weights::primitive_desc bwpd(bwd, eng, fpd);
        memory dy = filled(bdpd.diff_dst_desc()), dx = filled(bdpd.diff_src_desc()),
               dw = filled(bwpd.diff_weights_desc()), db = filled(bwpd.diff_bias_desc());
        memory xw = bwpd.src_desc() == fpd.src_desc() ? x : filled(bwpd.src_desc());
        memory dyw = bwpd.diff_dst_desc() == bdpd.diff_dst_desc() ? dy : filled(bwpd.diff_dst_desc());
        convolution_backward_data bd(bdpd);
        convolution_backward_weights bw(bwpd);
        impl = std::string(bdpd.impl_info_str()) + " + " + bwpd.impl_info_str();
        for (auto _ : st) {
            bd.execute(strm, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dx}});
            bw.execute(strm, {{DNNL_ARG_SRC, xw}, {DNNL_ARG_DIFF_DST, dyw}, {DNNL_ARG_DIFF_WEIGHTS, dw},
                              {DNNL_ARG_DIFF_BIAS, db}});
            strm.wait();
        }
    }
    label(st, s, backward);
    st.SetLabel(std::string(s.name) + " " + impl);
}
BENCHMARK(BM_OneDnnConv)
    ->ArgsProduct({benchmark::CreateDenseRange(0, shape_count - 1, 1), {0, 1}, {1, 2}})
    ->ArgNames({"shape", "backward", "threads"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// oneDNN's sgemm (row-major, like kernels::gemm) on bench_image's GlowGemm products: whether its
// GEMM alone, without the convolutions' layouts, would beat bijou's (compare BM_GlowGemm).
void BM_OneDnnGemm(benchmark::State& st) {
    const bench::GemmShape g = bench::glow_gemms[st.range(0)];
    set_num_threads(int(st.range(1)));
    Rng rng(1);
    std::vector<float> A = noise(std::size_t(g.M) * g.K, rng), B = noise(std::size_t(g.K) * g.N, rng),
                       C(std::size_t(g.M) * g.N);
    const int lda = g.ta ? g.M : g.K, ldb = g.tb ? g.K : g.N;
    for (auto _ : st) {
        dnnl::sgemm(g.ta ? 'T' : 'N', g.tb ? 'T' : 'N', g.M, g.N, g.K, 1.0f, A.data(), lda, B.data(), ldb, g.beta,
                    C.data(), g.N);
        benchmark::DoNotOptimize(C.data());
    }
    st.SetLabel(g.name);
    st.counters["GFLOPs"] =
        benchmark::Counter(2.0 * g.M * g.N * g.K * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_OneDnnGemm)
    ->ArgsProduct({benchmark::CreateDenseRange(0, bench::glow_gemm_count - 1, 1), {1, 2}})
    ->ArgNames({"shape", "threads"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
#endif

}  // namespace

BENCHMARK_MAIN();
