// The "done when" test of the Glow issue: a tiny Glow (MNIST average-pooled to 1×16×16, L = 2, K = 2)
// trained for a few hundred seeded steps reaches a lower test bits/dim than a per-pixel Gaussian fitted
// to the same training images; and memory-saving training follows the same loss curve. Reads the MNIST
// shipped in examples/data/mnist, and fails without it.
//
// Runs single-threaded: CI runs the tests two at a time on two cores, and with two OpenMP threads per
// test on a busy two-core machine a training step was 4–8× slower (busy-waiting threads fighting
// each other), not faster. A fixed thread count also makes the run bit-for-bit repeatable (trainer.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numbers>
#include <vector>

#include <bijou/bijou.hpp>
#include <bijou/io/idx.hpp>

#include "unit/shipped_mnist.hpp"

namespace unit_mnist_tiny_glow {  // the file's own namespace (unity build: tests/CMakeLists.txt)

namespace fs = std::filesystem;
using namespace bijou;

namespace {

using Model = Glow<Shape<1, 16, 16>, 2>;  // Step = Chain<ActNorm, InvConv1x1LU, AffineCoupling>, float, Cpu
using Images = xt::xtensor<std::uint8_t, 4>;
constexpr std::size_t D = 256;  // 1·16·16

/// Sets the thread count for a scope and restores the previous one.
struct ThreadCount {
    int saved = num_threads();
    explicit ThreadCount(int n) { set_num_threads(n); }
    ~ThreadCount() { set_num_threads(saved); }
};

/// The first `count` images of an IDX set, zero-padded 28×28 → 32×32 (2 pixels each side) and
/// 2×2 average-pooled to 1×16×16, rounded to the nearest integer (half up), so still 8-bit (0..255).
Images pooled_16x16(const IdxImages& im, int count) {
    REQUIRE(im.rows == 28);
    REQUIRE(im.cols == 28);
    REQUIRE(count <= im.count);
    Images out = Images::from_shape({std::size_t(count), 1, 16, 16});
    auto padded = [&](int i, int r, int c) -> int {  // pixel (r, c) of the 32×32 padded image
        r -= 2, c -= 2;
        return r < 0 || r >= 28 || c < 0 || c >= 28 ? 0 : int(im.at(i, r, c));
    };
    for (int i = 0; i < count; ++i)
        for (int r = 0; r < 16; ++r)
            for (int c = 0; c < 16; ++c) {
                const int sum = padded(i, 2 * r, 2 * c) + padded(i, 2 * r, 2 * c + 1) + padded(i, 2 * r + 1, 2 * c) +
                                padded(i, 2 * r + 1, 2 * c + 1);
                out(std::size_t(i), 0, std::size_t(r), std::size_t(c)) = std::uint8_t((sum + 2) / 4);
            }
    return out;
}

/// The images x[idx[0]], x[idx[1]], … as one batch.
Images gather(const Images& x, const std::vector<std::size_t>& idx) {
    Images out = Images::from_shape({idx.size(), 1, 16, 16});
    for (std::size_t k = 0; k < idx.size(); ++k) std::copy_n(x.data() + idx[k] * D, D, out.data() + k * D);
    return out;
}

/// A batch of n training images drawn uniformly (with replacement) by `pick`.
Images random_batch(const Images& train, int n, Rng& pick) {
    std::vector<std::size_t> idx(static_cast<std::size_t>(n));
    for (auto& i : idx) i = std::size_t(pick.below(train.shape(0)));
    return gather(train, idx);
}

/// The per-pixel (diagonal) Gaussian fitted by maximum likelihood to the dequantised training images
/// x̃ = (x + u)/256 − ½, in expectation over u ~ U[0, 1): mean (x̄ + ½)/256 − ½ and variance
/// (var(x) + 1/12)/256². The variance is thereby floored at the dequantisation noise's own variance
/// 1/(12·256²), so a pixel that is 0 in every training image (the padding) still has a density; a
/// larger floor only made the Gaussian worse (floor 1e-5: 4.88 bits/dim, 1e-4: 5.42, measured).
struct PixelGaussian {
    std::vector<double> mean, var;

    explicit PixelGaussian(const Images& train) : mean(D, 0.0), var(D, 0.0) {
        const std::size_t n = train.shape(0);
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t k = 0; k < D; ++k) mean[k] += double(train.data()[i * D + k]);
        for (double& m : mean) m /= double(n);
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t k = 0; k < D; ++k) {
                const double d = double(train.data()[i * D + k]) - mean[k];
                var[k] += d * d;
            }
        for (std::size_t k = 0; k < D; ++k) {
            var[k] = (var[k] / double(n) + 1.0 / 12.0) / (256.0 * 256.0);
            mean[k] = (mean[k] + 0.5) / 256.0 - 0.5;
        }
    }

    /// log p(x̃) in nats of one dequantised image (D values).
    double log_prob(const float* x) const {
        double lp = 0.0;
        for (std::size_t k = 0; k < D; ++k) {
            const double d = double(x[k]) - mean[k];
            lp -= 0.5 * (d * d / var[k] + std::log(2.0 * std::numbers::pi * var[k]));
        }
        return lp;
    }
};

// An unoptimised build (the debug preset, with AddressSanitizer and UBSan) runs about 60× slower
// (measured: 600 steps took 345 s), so there the first test case runs a short version of the same
// pipeline (40 steps, 200 test images) that checks everything but the comparison with the Gaussian.
#ifdef __OPTIMIZE__
constexpr bool full_run = true;
#else
constexpr bool full_run = false;
#endif

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

// Measured 2026-11-25 (GCC 12 Release, 1 thread): glow 3.58 bits/dim, per-pixel gaussian 4.61; train
// loss 7.27 -> 3.69 bits/dim; 6.6 s in all on an idle 2-core machine (load 0.25 s, train 5.7 s, eval
// 0.6 s), 10–13 s on a busy one. Over four other seeds of model and data order the glow scored 3.39–3.59.
// Hyper-parameters: more steps help far more than a wider net or a larger batch here (the model
// must move its log-scales a long way from the ActNorm initialisation), hence batch 32, lr 1.5e-2
// and a linear decay to lr/10 over the last 40% of the steps, which keeps the last steps' noise
// from deciding the result (without it the test score varied by ±0.3 bits/dim between seeds).
TEST_CASE("Glow on MNIST 1x16x16 (L=2 K=2): 600 seeded steps beat a per-pixel Gaussian in test bits/dim") {
    const auto start = std::chrono::steady_clock::now();
    const ThreadCount threads(1);

    const int n_train = 10000, n_test = full_run ? 2000 : 200;
    const fs::path mnist = bijou::test::shipped_mnist();
    const Images train = pooled_16x16(load_idx_dataset(mnist, "train").images, n_train);
    const Images test = pooled_16x16(load_idx_dataset(mnist, "t10k").images, n_test);
    const double t_load = seconds_since(start);

    const int batch = 32, steps = full_run ? 600 : 40, decay_from = steps * 6 / 10;
    Model model({.steps_per_level = 2, .hidden = 32, .seed = 3});
    Adam<float> adam(model.parameter_count());
    const TrainConfig cfg{.lr = 1.5e-2, .warmup = 20, .clip = 100.0};
    Rng pick(103), noise(203);
    model.initialize(model.dequantize(random_batch(train, 512, pick), 8, noise));  // ActNorm's data-dependent init

    int skipped = 0;
    double first = 0.0, last = 0.0;  // mean training loss (nats per image) of the first and of the last 20 steps
    for (int step = 0; step < steps; ++step) {
        TrainConfig c = cfg;  // warm-up (in train_step), then a linear decay to lr/10 from step decay_from
        if (step >= decay_from) c.lr *= 0.1 + 0.9 * double(steps - step) / double(steps - decay_from);
        const auto r = train_step(model, adam, model.dequantize(random_batch(train, batch, pick), 8, noise), c, step,
                                  [&](const std::string& m) { MESSAGE(m); });
        skipped += r.skipped;
        if (step < 20) first += r.loss / 20;
        if (step >= steps - 20) last += r.loss / 20;
    }
    const double t_train = seconds_since(start);

    // Both models are scored on one (seeded) dequantisation of the same test images.
    Rng eval_noise(303);
    const auto x_test = model.dequantize(test, 8, eval_noise);
    const auto lp = model.log_prob(x_test);
    const PixelGaussian gauss(train);
    double glow_bpd = 0.0, gauss_bpd = 0.0;
    int non_finite = 0;
    for (int i = 0; i < n_test; ++i) {
        const double g = Model::nats_to_bits_per_dim(-double(lp(std::size_t(i))), 8);
        non_finite += !std::isfinite(g);
        glow_bpd += g / n_test;
        gauss_bpd += Model::nats_to_bits_per_dim(-gauss.log_prob(x_test.data() + std::size_t(i) * D), 8) / n_test;
    }
    const double first_bpd = Model::nats_to_bits_per_dim(first, 8), last_bpd = Model::nats_to_bits_per_dim(last, 8);

    MESSAGE("test bits/dim over " << n_test << " images: glow " << glow_bpd << ", per-pixel gaussian " << gauss_bpd);
    MESSAGE("train loss " << first_bpd << " -> " << last_bpd << " bits/dim (mean of the first / last 20 of " << steps
                          << " steps)");
    MESSAGE("time: load " << t_load << " s, train " << t_train - t_load << " s, total " << seconds_since(start) << " s");

    CHECK(skipped == 0);
    CHECK(non_finite == 0);
    if (!full_run) {
        MESSAGE("unoptimised build: " << steps << " steps only; the comparison with the Gaussian needs a Release build");
        CHECK(last_bpd < first_bpd - 0.5);  // measured: 7.27 -> 6.27
        return;
    }
    CHECK(last_bpd < first_bpd - 2.0);     // measured: 7.27 -> 3.69
    CHECK(gauss_bpd == doctest::Approx(4.61).epsilon(0.01));  // data and baseline as measured
    CHECK(glow_bpd < gauss_bpd - 0.5);     // the criterion, by a clear margin (measured 1.03)
    CHECK(glow_bpd < 4.0);                 // sane bounds around the measured 3.58: a flow cannot reach
    CHECK(glow_bpd > 1.5);                 // below ~1.5 on this data in 600 tiny steps (log-det bug guard)
}

TEST_CASE("Glow on MNIST 1x16x16: memory-saving training follows the same loss curve") {
    const ThreadCount threads(1);
    const Images train = pooled_16x16(load_idx_dataset(bijou::test::shipped_mnist(), "train").images, 2000);
    Options o{.steps_per_level = 2, .hidden = 32, .seed = 3};
    Model store(o);
    o.memory_saving = true;
    Model lean(o);
    CHECK(lean.workspace_bytes(32) < store.workspace_bytes(32));
    Adam<float> adam_store(store.parameter_count()), adam_lean(lean.parameter_count());
    const TrainConfig cfg{.lr = 1.5e-2, .warmup = 20, .clip = 100.0};
    Rng pick(5), noise(6);
    const auto init = store.dequantize(random_batch(train, 256, pick), 8, noise);
    store.initialize(init);
    lean.initialize(init);
    double worst = 0.0;
    for (int step = 0; step < 10; ++step) {
        const auto x = store.dequantize(random_batch(train, 32, pick), 8, noise);
        const auto a = train_step(store, adam_store, x, cfg, step), b = train_step(lean, adam_lean, x, cfg, step);
        REQUIRE_FALSE(a.skipped);
        REQUIRE_FALSE(b.skipped);
        worst = std::max(worst, std::abs(a.loss - b.loss) / std::abs(a.loss));
        CHECK(b.loss == doctest::Approx(a.loss).epsilon(1e-5));  // measured: 3e-8
    }
    double param_diff = 0.0;
    for (std::size_t k = 0; k < store.parameters().size(); ++k)
        param_diff = std::max(param_diff, double(std::abs(store.parameters()[k] - lean.parameters()[k])));
    MESSAGE("10 steps: worst relative loss difference " << worst << ", largest parameter difference " << param_diff);
    CHECK(param_diff < 1e-4);  // measured: 6e-8
}

}  // namespace unit_mnist_tiny_glow
