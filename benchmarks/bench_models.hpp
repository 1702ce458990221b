// bench_models.hpp — the harness of bench_models.cpp (and bench_models_cuda.cu, its --device cuda),
// templated on the backend. See bench_models.cpp for what it measures.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <bijou/bijou.hpp>

namespace bench {

using namespace bijou;


using Clock = std::chrono::steady_clock;

struct Args {
    std::string model = "glow", config = "a", item = "train", device = "cpu";
    int threads = 1, batch = 0;
    double seconds = 5.0;
    bool memory_saving = false;
};

[[noreturn]] inline void usage(const std::string& why) {
    std::fprintf(stderr,
                 "bench_models: %s\nusage: bench_models --model glow --config a|c|d --item train|log_prob|sample "
                 "--threads N [--seconds S] [--memory-saving] [--device cpu|cuda]\n       bench_models --model two_moons "
                 "--batch B --threads N [--seconds S] [--device cpu|cuda]\n",
                 why.c_str());
    std::exit(2);
}

inline Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        if (k == "--memory-saving") {
            a.memory_saving = true;
            continue;
        }
        if (i + 1 >= argc) usage(k + " needs a value");
        const std::string v = argv[++i];
        try {
            if (k == "--model") a.model = v;
            else if (k == "--config") a.config = v;
            else if (k == "--item") a.item = v;
            else if (k == "--threads") a.threads = std::stoi(v);
            else if (k == "--batch") a.batch = std::stoi(v);
            else if (k == "--seconds") a.seconds = std::stod(v);
            else if (k == "--device") a.device = v;
            else usage("unknown option " + k);
        } catch (const std::logic_error&) {
            usage(k + " " + v + ": not a number");
        }
    }
    if (a.threads < 1 || a.seconds <= 0) usage("--threads and --seconds must be positive");
    return a;
}

inline double peak_rss_mb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

/// Calls f() for ~1 s (at least 2 calls) to warm up, then for `seconds`; returns calls per second.
template <class F>
std::pair<double, long> timed(double seconds, F&& f) {
    auto run = [&](double s, long min_calls) {
        const auto t0 = Clock::now();
        long n = 0;
        double el = 0;
        do {
            f();
            ++n;
            el = std::chrono::duration<double>(Clock::now() - t0).count();
        } while (el < s || n < min_calls);
        return std::pair{double(n) / el, n};
    };
    run(std::min(1.0, seconds / 4), 2);
    return run(seconds, 3);
}

/// Device memory in use (MB) on a GPU backend (bench_models_cuda.cu specialises it); −1 elsewhere.
template <class B>
double device_used_mb() {
    return -1.0;
}

template <class Model>
int glow(const Args& a, Options opt, int batch, const char* shape) {
    using B = typename Model::backend;
    const double device_before = device_used_mb<B>();
    opt.memory_saving = a.memory_saving;
    Model model(opt);
    Rng rng(1);
    auto x = make_batch<float, typename Model::in_shape>(batch);
    for (auto& v : x) v = float(rng.uniform() - 0.5);
    model.initialize(x);
    const bool train = a.item == "train";
    if (train) model.reserve(batch);  // evaluation keeps the lean arena (Flow::eval_workspace_bytes)
    Adam<float, B> adam(train ? model.parameter_count() : 0);  // moments only where a step runs
    // as bench_torch.py (nats per image). The learning rate warms up over 500 steps, as mnist_glow's
    // defaults: at lr 1e-3 from the first step config c blew up (loss ~1e27 at step 2 here, NaN from
    // step 2 on in PyTorch's mirror), and the timed steps ran on such values.
    const TrainConfig cfg{.lr = 1e-3, .warmup = 500, .clip = 50.0};
    long step = 0;
    double sink = 0;
    std::pair<double, long> r;
    if (a.item == "train") r = timed(a.seconds, [&] { sink += train_step(model, adam, x, cfg, step++).loss; });
    else if (a.item == "log_prob") r = timed(a.seconds, [&] { sink += model.log_prob(x)(0); });
    else if (a.item == "sample") r = timed(a.seconds, [&] { sink += model.sample(batch, 0.7, rng)(0); });
    else usage("unknown --item " + a.item);
    const double params_mb = double(model.parameter_count()) * sizeof(float) * (a.item == "train" ? 4 : 1) / 1e6;
    const double device_mb = device_before < 0 ? -1.0 : device_used_mb<B>() - device_before;
    std::printf("{\"impl\":\"bijou\",\"model\":\"glow\",\"device\":\"%s\",\"config\":\"%s\",\"shape\":\"%s\","
                "\"item\":\"%s\",\"threads\":%d,\"batch\":%d,\"memory_saving\":%s,\"images_per_s\":%.3f,"
                "\"iterations\":%ld,\"parameters\":%zu,\"params_mb\":%.2f,\"workspace_mb\":%.2f,\"peak_rss_mb\":%.1f,"
                "\"device_mb\":%.1f,\"check\":%g}\n",
                std::string(B::name).c_str(), a.config.c_str(), shape, a.item.c_str(), num_threads(), batch,
                a.memory_saving ? "true" : "false", r.first * batch, r.second, model.parameter_count(), params_mb,
                double(train ? model.workspace_bytes(batch) : model.eval_workspace_bytes(batch)) / 1e6, peak_rss_mb(),
                device_mb, sink / double(r.second));
    return 0;
}

/// One Adam step (clip 50) per iteration on the fixed batch x, timed; prints the vector models' JSON line.
template <class Model>
int vector_steps(const Args& a, Model& model, const typename Model::data_tensor& x, double lr) {
    using B = typename Model::backend;
    const int batch = int(x.shape(0));
    Adam<float, B> adam(model.parameter_count());
    const TrainConfig cfg{.lr = lr, .warmup = 0, .clip = 50.0};
    model.reserve(batch);
    long step = 0;
    double sink = 0;
    const auto r = timed(a.seconds, [&] { sink += train_step(model, adam, x, cfg, step++).loss; });
    std::printf("{\"impl\":\"bijou\",\"model\":\"%s\",\"device\":\"%s\",\"item\":\"train\",\"threads\":%d,"
                "\"batch\":%d,\"steps_per_s\":%.3f,\"iterations\":%ld,\"parameters\":%zu,\"peak_rss_mb\":%.1f,"
                "\"check\":%g}\n",
                a.model.c_str(), std::string(B::name).c_str(), num_threads(), batch, r.first, r.second,
                model.parameter_count(), peak_rss_mb(), sink / double(r.second));
    return 0;
}

template <class B>
int two_moons_steps(const Args& a) {
    RealNVP<Shape<2>, StandardNormal, float, B> model({.steps_per_level = 8, .hidden = 256});
    const auto x = bijou::two_moons<float>(a.batch > 0 ? a.batch : 512, 0.05, 0);  // one fixed batch, as bench_torch.py
    return vector_steps(a, model, x, 2e-3);
}

/// The 2-D flows of examples/toy_density at its defaults (hidden 128 × 2 layers; splines: 8 bins on
/// [−5, 5]): spline = 4 rational-quadratic couplings, maf = 8 affine MAF layers, maf_spline = 4 spline
/// MAF layers. One Adam step (lr 1e-3, clip 50) per iteration on one fixed batch x = 2·N(0, I), as
/// bench_torch.py.
template <class Model>
int toy_flow_steps(const Args& a, int layers) {
    Options o{.steps_per_level = layers, .hidden = 128, .hidden_layers = 2};
    Model model(o.with(SplineOptions{.bins = 8, .bound = 5.0}));
    auto x = make_batch<float, Shape<2>>(a.batch > 0 ? a.batch : 512);
    Rng rng(0);
    for (auto& v : x) v = float(2.0 * rng.normal());
    return vector_steps(a, model, x, 1e-3);
}

/// Every model of the harness on backend B.
template <class B>
int run_models(const Args& a) {
    if (a.model == "two_moons") return two_moons_steps<B>(a);
    if constexpr (std::is_same_v<B, Cpu>) {  // the toy flows: CPU rows only (each backend costs compile time)
        if (a.model == "spline") return toy_flow_steps<Flow<Shape<2>, Stack<RationalQuadraticCoupling>>>(a, 4);
        if (a.model == "maf") return toy_flow_steps<Flow<Shape<2>, Stack<MaskedAutoregressive<AffineTransform>>>>(a, 8);
        if (a.model == "maf_spline")
            return toy_flow_steps<Flow<Shape<2>, Stack<MaskedAutoregressive<RationalQuadraticTransform>>>>(a, 4);
    }
    if (a.model != "glow") usage("unknown --model " + a.model);
    using Step = Chain<ActNorm, InvConv1x1LU, AffineCoupling>;
    using G1 = Glow<Shape<1, 32, 32>, 3, Step, float, B>;
    using G3 = Glow<Shape<3, 32, 32>, 3, Step, float, B>;
    if (a.config == "a") return glow<G1>(a, {.steps_per_level = 8, .hidden = 128}, a.batch ? a.batch : 64, "1x32x32");
    if (a.config == "c") return glow<G1>(a, {.steps_per_level = 32, .hidden = 512}, a.batch ? a.batch : 16, "1x32x32");
    if (a.config == "d") return glow<G3>(a, {.steps_per_level = 8, .hidden = 256}, a.batch ? a.batch : 32, "3x32x32");
    usage("unknown --config " + a.config + " (a, c or d)");
}

}  // namespace bench
