// Whole-model checks shared by the CudaHost suite (tests/unit/cuda_host_models.cpp) and the GPU suite
// (tests/cuda/models.cu): a model on backend B gives what the same model gives on Reference, trains
// the same, samples the same from the same seed, and its checkpoints are byte-identical to the Cpu
// model's and load into either backend.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <bijou/bijou.hpp>
#include <bijou/io/checkpoint.hpp>

namespace bijou::test_cuda {

template <class A, class B>
double max_rel_diff(const A& a, const B& b) {
    REQUIRE(a.size() == b.size());
    double d = 0.0, s = 1.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double e = std::abs(double(a.data()[i]) - double(b.data()[i]));
        d = std::isnan(e) ? INFINITY : std::max(d, e);
        s = std::max(s, std::abs(double(b.data()[i])));
    }
    return d / s;
}

/// The model's parameter values, in host memory.
template <class M>
std::vector<typename M::scalar> host_values(const M& m) {
    m.to_host();
    const auto v = m.params().values();
    return {v.begin(), v.end()};
}

template <class T>
constexpr double model_tol() {
    return std::is_same_v<T, float> ? 2e-4 : 1e-9;
}

/// Images in [0, 1) with some structure, (n, C, H, W).
template <class T, class S>
batch_t<T, S> test_images(int n, std::uint64_t seed) {
    auto x = make_batch<T, S>(n);
    Rng rng(seed);
    for (std::size_t k = 0; k < x.size(); ++k) x.data()[k] = T(0.5 + 0.25 * std::sin(0.37 * double(k)) + 0.1 * rng.normal());
    return x;
}

template <class B, class T, bool MemorySaving>
void check_glow() {
    using S = Shape<1, 8, 8>;
    using Step = Chain<ActNorm, InvConv1x1LU, AffineCoupling>;
    Options o;
    o.steps_per_level = 2;
    o.hidden = 8;
    o.seed = 3;
    o.memory_saving = MemorySaving;
    Glow<S, 2, Step, T, Reference> ref(o);
    Glow<S, 2, Step, T, B> dev(o);
    const auto x = test_images<T, S>(6, 1);
    ref.initialize(x);
    dev.initialize(x);
    CHECK(max_rel_diff(host_values(dev), host_values(ref)) <= model_tol<T>());

    const auto fr = ref.forward(x);
    const auto fd = dev.forward(x);
    CHECK(max_rel_diff(fd.z, fr.z) <= model_tol<T>());
    CHECK(max_rel_diff(fd.log_det, fr.log_det) <= model_tol<T>());
    CHECK(max_rel_diff(dev.inverse(fr.z).x, x) <= 10 * model_tol<T>());
    CHECK(max_rel_diff(dev.log_prob(x), ref.log_prob(x)) <= model_tol<T>());

    // eps well above rounding noise: Adam takes a full lr-sized step for any gradient ≫ eps, so with the
    // default 1e-8 a gradient that is zero but for rounding (its sign differing between backends) moves
    // a parameter by ±lr on each side (measured on an H200: 2.5e-3 apart after 3 steps at lr 1e-3).
    const AdamOptions adam{.eps = 1e-3};
    Adam<T> opt_r(ref.parameter_count(), adam);
    Adam<T, B> opt_d(dev.parameter_count(), adam);
    const TrainConfig cfg{.lr = 1e-3, .warmup = 0, .clip = 50.0};
    for (long step = 0; step < 3; ++step) {
        const auto rr = train_step(ref, opt_r, x, cfg, step);
        const auto rd = train_step(dev, opt_d, x, cfg, step);
        CHECK(std::abs(rd.loss - rr.loss) <= model_tol<T>() * std::max(1.0, std::abs(rr.loss)));
        CHECK(std::abs(rd.grad_norm - rr.grad_norm) <= 10 * model_tol<T>() * std::max(1.0, rr.grad_norm));
    }
    // After Adam steps everything is compared at 10·tol: Adam's division by √v turns the last-bit
    // differences of the two backends' reductions in small gradients into larger relative ones.
    CHECK(max_rel_diff(host_values(dev), host_values(ref)) <= 10 * model_tol<T>());
    Rng r1(5), r2(5);
    CHECK(max_rel_diff(dev.sample(4, 0.7, r2), ref.sample(4, 0.7, r1)) <= 10 * model_tol<T>());
    auto k = make_batch<T, S>(6);  // 8-bit images, dequantised by the same Rng stream
    for (std::size_t q = 0; q < k.size(); ++q) k.data()[q] = T((q * 37) % 256);
    Rng n1(9), n2(9);
    CHECK(max_rel_diff(dev.bits_per_dim(k, 8, n2), ref.bits_per_dim(k, 8, n1)) <= 10 * model_tol<T>());
}

inline std::string file_bytes(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

/// Trained on B, saved; the same training on the Cpu saves a file with the same bytes; each file
/// loads into the other backend's model (and optimizer) and training continues identically.
template <class B>
void check_checkpoint_round_trip(const std::filesystem::path& dir) {
    using S = Shape<1, 8, 8>;
    using Step = Chain<ActNorm, InvConv1x1LU, AffineCoupling>;
    using Dev = Glow<S, 2, Step, double, B>;
    using Host = Glow<S, 2, Step, double, Cpu>;
    Options o;
    o.steps_per_level = 2;
    o.hidden = 8;
    Dev dev(o);
    Host host(o);
    const AdamOptions adam{.beta1 = 0.8, .eps = 1e-6};  // not the defaults, which a load must replace
    Adam<double, B> opt_d(dev.parameter_count(), adam);
    Adam<double> opt_h(host.parameter_count(), adam);
    const auto x = test_images<double, S>(4, 2);
    dev.initialize(x);
    host.initialize(x);
    const TrainConfig cfg{.lr = 1e-3};
    for (long step = 0; step < 2; ++step) {
        train_step(dev, opt_d, x, cfg, step);
        train_step(host, opt_h, x, cfg, step);
    }
    const auto pd = dir / "from_device.safetensors", ph = dir / "from_host.safetensors";
    save_checkpoint(pd, dev, opt_d, {{"note", "bijou test"}});
    save_checkpoint(ph, host, opt_h, {{"note", "bijou test"}});
    // Same values up to the backends' rounding: parameters agree closely, and the file layout is
    // identical; a model loaded from either file saves that file again byte for byte.
    const std::string bd = file_bytes(pd), bh = file_bytes(ph);
    CHECK(bd.size() == bh.size());

    Host host2(o);
    Adam<double> opt_h2(host2.parameter_count());
    load_checkpoint(pd, host2, opt_h2);
    const auto p2 = dir / "again.safetensors";
    save_checkpoint(p2, host2, opt_h2, {{"note", "bijou test"}});
    CHECK(file_bytes(p2) == bd);  // device → file → Cpu → file: byte-identical

    Dev dev2(o);
    Adam<double, B> opt_d2(dev2.parameter_count());
    load_checkpoint(ph, dev2, opt_d2);
    CHECK(opt_d2.options().beta1 == 0.8);  // the file's options, through the host twin
    CHECK(opt_d2.options().eps == 1e-6);
    const auto p3 = dir / "again2.safetensors";
    save_checkpoint(p3, dev2, opt_d2, {{"note", "bijou test"}});
    CHECK(file_bytes(p3) == bh);  // Cpu → file → device → file: byte-identical
    CHECK(max_rel_diff(host_values(dev2), host_values(host)) == 0.0);
    CHECK(opt_d2.step_count() == 2);

    // Both continue from the Cpu state identically (to rounding).
    const auto a = train_step(dev2, opt_d2, x, cfg, 2);
    const auto b = train_step(host, opt_h, x, cfg, 2);
    CHECK(std::abs(a.loss - b.loss) <= 1e-9 * std::max(1.0, std::abs(b.loss)));
}

}  // namespace bijou::test_cuda
