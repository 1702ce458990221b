// Training: Adam / Adamax against hand computation, warm-up, clipping, the non-finite guard,
// convergence of a small flow to its closed-form optimum, and bit-for-bit repeatable runs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numbers>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <bijou/bijectors/actnorm.hpp>
#include <bijou/core/chain.hpp>
#include <bijou/models/flow.hpp>
#include <bijou/distributions/diagonal_gaussian.hpp>
#include <bijou/distributions/gaussian_mixture.hpp>
#include <bijou/train/adam.hpp>
#include <bijou/train/clip.hpp>
#include <bijou/train/schedule.hpp>
#include <bijou/train/trainer.hpp>

namespace unit_train {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

constexpr double kDoubleTol = 1e-14;  // one optimizer step in double vs the same formula written out
constexpr float kFloatTol = 1e-6f;    // the same in float (state and parameters rounded to float)

static_assert(Optimizer<Adam<float>, float> && Optimizer<Adamax<double>, double>);
static_assert(!Optimizer<Adam<double>, float>);  // spans of another scalar do not convert
static_assert(!Optimizer<int, float>);

template <class T>
bool same_bits(std::span<const T> a, std::span<const T> b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

/// Adam as in Kingma & Ba, Algorithm 1, with bias-corrected moments written out.
struct HandAdam {
    double b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.0;
    std::vector<double> m, v;
    int t = 0;
    void step(std::vector<double>& p, const std::vector<double>& g0, double lr) {
        if (m.empty()) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0);
        ++t;
        for (std::size_t i = 0; i < p.size(); ++i) {
            const double g = g0[i] + wd * p[i];
            m[i] = b1 * m[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            const double mhat = m[i] / (1 - std::pow(b1, t)), vhat = v[i] / (1 - std::pow(b2, t));
            p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
        }
    }
};

/// A model whose loss and gradient the test sets directly.
struct FakeModel {
    using scalar = double;
    using data_tensor = xt::xtensor<double, 2>;
    std::vector<double> p{1.0, 2.0}, g{3.0, 4.0};
    double loss = 1.5;
    int raw_calls = 0;
    double nll_and_gradient(const data_tensor&) { return loss; }
    double nll_and_gradient_raw(const double*, int) {
        ++raw_calls;
        return loss;
    }
    std::span<double> parameters() { return p; }
    std::span<double> gradients() { return g; }
};
static_assert(TrainableModel<FakeModel>);

/// Records what train_step hands the optimizer.
struct RecordingOptimizer {
    std::vector<double> grads;
    double lr = -1;
    int calls = 0;
    void step(std::span<double>, std::span<const double> g, double lr_) {
        grads.assign(g.begin(), g.end());
        lr = lr_;
        ++calls;
    }
};

/// Samples of N(mu, diag sd²), shape (n, 2).
template <class T>
xt::xtensor<T, 2> gaussian_data(int n, std::uint64_t seed) {
    xt::xtensor<T, 2> x = make_batch<T, Shape<2>>(n);
    Rng rng(seed);
    const double mu[2] = {1.5, -0.5}, sd[2] = {0.3, 2.0};
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < 2; ++j) x(i, j) = T(mu[j] + sd[j] * rng.normal());
    return x;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Optimizers

TEST_CASE("Adam: first step is lr·g/(|g| + eps), a zero gradient leaves the parameter alone") {
    Adam<double> opt(3);
    std::vector<double> p{1.0, -2.0, 0.5};
    const std::vector<double> g{0.1, -3.0, 0.0};
    opt.step(p, g, 0.01);
    CHECK(p[0] == doctest::Approx(1.0 - 0.01 * 0.1 / (0.1 + 1e-8)).epsilon(kDoubleTol));
    CHECK(p[1] == doctest::Approx(-2.0 + 0.01 * 3.0 / (3.0 + 1e-8)).epsilon(kDoubleTol));
    CHECK(p[2] == 0.5);
    CHECK(opt.step_count() == 1);
    CHECK(opt.m()[1] == doctest::Approx(0.1 * -3.0).epsilon(kDoubleTol));
    CHECK(opt.v()[1] == doctest::Approx(0.001 * 9.0).epsilon(kDoubleTol));
}

TEST_CASE("Adam: two steps by hand") {
    // p0 = 1, g = 0.5 then −0.25, lr = 0.1:
    //   t=1: m = 0.05, v = 2.5e-4, m̂ = 0.5, v̂ = 0.25            → p = 1 − 0.1·0.5/(0.5 + 1e-8)
    //   t=2: m = 0.02, v = 3.1225e-4, m̂ = 0.02/0.19, v̂ = 3.1225e-4/0.001999
    Adam<double> opt(1);
    std::vector<double> p{1.0};
    opt.step(p, std::vector<double>{0.5}, 0.1);
    CHECK(p[0] == doctest::Approx(0.900000002).epsilon(kDoubleTol));
    opt.step(p, std::vector<double>{-0.25}, 0.1);
    CHECK(p[0] == doctest::Approx(0.8733662987078463).epsilon(kDoubleTol));
    CHECK(opt.m()[0] == doctest::Approx(0.02).epsilon(kDoubleTol));
    CHECK(opt.v()[0] == doctest::Approx(3.1225e-4).epsilon(kDoubleTol));
}

TEST_CASE("Adam: many steps, weight decay and float match Algorithm 1 written out") {
    const std::vector<std::vector<double>> grads{{0.3, -1.0, 2.0, 0.0}, {-0.1, 0.5, 2.5, 1e-3}, {0.7, -0.2, -1.0, 0.0},
                                                 {0.0, 0.0, 0.4, -2.0}, {1.2, -0.9, 0.3, 0.5}};
    const std::vector<double> p0{0.5, -1.0, 2.0, 0.0};
    for (double wd : {0.0, 0.05}) {
        INFO("weight_decay " << wd);
        HandAdam hand;
        hand.wd = wd;
        Adam<double> opt(4, {.weight_decay = wd});
        Adam<float> optf(4, {.weight_decay = wd});
        std::vector<double> p = p0, q = p0;
        std::vector<float> pf(p0.begin(), p0.end());
        for (std::size_t s = 0; s < grads.size(); ++s) {
            const double lr = 0.01 * double(s + 1);
            hand.step(q, grads[s], lr);
            opt.step(p, grads[s], lr);
            std::vector<float> gf(grads[s].begin(), grads[s].end());
            optf.step(pf, gf, lr);
        }
        for (std::size_t i = 0; i < 4; ++i) {
            CHECK(p[i] == doctest::Approx(q[i]).epsilon(kDoubleTol));
            CHECK(pf[i] == doctest::Approx(q[i]).epsilon(kFloatTol));
            CHECK(opt.m()[i] == doctest::Approx(hand.m[i]).epsilon(kDoubleTol));
            CHECK(opt.v()[i] == doctest::Approx(hand.v[i]).epsilon(kDoubleTol));
        }
        CHECK(opt.step_count() == 5);
    }
}

TEST_CASE("Adamax: three steps by hand (u = max(β2·u, |g|), bias correction on m only)") {
    // p0 = 1, lr = 0.002, g = 0.5, −0.75, 2.0
    //   t=1: m = 0.05,  u = 0.5      p −= 0.002/0.1   · 0.05/(0.5 + 1e-8)
    //   t=2: m = −0.03, u = 0.75     p −= 0.002/0.19  · −0.03/(0.75 + 1e-8)   (|g| > β2·u: the max takes |g|)
    //   t=3: m = 0.173, u = 2.0      p −= 0.002/0.271 · 0.173/(2 + 1e-8)
    Adamax<double> opt(2);
    std::vector<double> p{1.0, -3.0};
    const double expected[3] = {0.99800000004, 0.9984210526659649, 0.997782676285393};
    const double gs[3] = {0.5, -0.75, 2.0};
    for (int t = 0; t < 3; ++t) {
        opt.step(p, std::vector<double>{gs[t], 0.0}, 0.002);
        CHECK(p[0] == doctest::Approx(expected[t]).epsilon(kDoubleTol));
        CHECK(p[1] == -3.0);  // m = u = 0: the eps guard keeps 0/0 out
        if (t == 1) CHECK(opt.u()[0] == 0.75);
    }
    CHECK(opt.m()[0] == doctest::Approx(0.173).epsilon(kDoubleTol));
    CHECK(opt.u()[0] == 2.0);
    CHECK(opt.u()[1] == 0.0);
    CHECK(opt.step_count() == 3);

    Adamax<float> optf(1);
    std::vector<float> pf{1.0f};
    for (double g : gs) optf.step(pf, std::vector<float>{float(g)}, 0.002);
    CHECK(pf[0] == doctest::Approx(expected[2]).epsilon(kFloatTol));
}

TEST_CASE("Optimizers: state restored through the accessors continues bit for bit") {
    auto run = [](auto& opt, auto& restored) {
        std::vector<float> p{0.3f, -0.7f, 1.1f}, g(3);
        Rng rng(2);
        auto fill = [&] {
            for (auto& v : g) v = float(rng.normal());
        };
        for (int s = 0; s < 4; ++s) fill(), opt.step(p, g, 0.01);
        // checkpoint: copy the state tensors and the step count
        auto src = opt.state_tensors();
        auto dst = restored.state_tensors();
        for (std::size_t k = 0; k < src.size(); ++k) {
            CHECK(src[k].first == dst[k].first);
            std::copy(src[k].second.begin(), src[k].second.end(), dst[k].second.begin());
        }
        restored.set_step_count(opt.step_count());
        std::vector<float> q = p;
        for (int s = 0; s < 3; ++s) fill(), opt.step(p, g, 0.01), restored.step(q, g, 0.01);
        CHECK(same_bits<float>(p, q));
        // without the step count the bias correction differs
        std::vector<float> r = p;
        restored.set_step_count(0);
        opt.step(p, g, 0.01);
        restored.step(r, g, 0.01);
        CHECK(!same_bits<float>(p, r));
    };
    Adam<float> a(3), ar(3);
    run(a, ar);
    CHECK(a.state_tensors()[1].first == "exp_avg_sq");
    Adamax<float> b(3), br(3);
    run(b, br);
    CHECK(b.state_tensors()[1].first == "exp_inf");
}

TEST_CASE("Optimizers: wrong sizes and bad options throw bijou errors") {
    Adam<double> opt(3);
    std::vector<double> p(3), g(2);
    CHECK_THROWS_AS(opt.step(p, g, 0.1), invalid_argument);
    CHECK(opt.step_count() == 0);
    CHECK_THROWS_AS(Adam<float>(2, {.beta1 = 1.0}), invalid_argument);
    CHECK_THROWS_AS(Adamax<float>(2, {.beta2 = -0.1}), invalid_argument);
    CHECK_THROWS_AS(Adam<float>(2, {.eps = std::nan("")}), invalid_argument);
    CHECK_THROWS_WITH_AS(Adam<float>(2, {.weight_decay = -1}), doctest::Contains("weight_decay"), invalid_argument);
}

// ---------------------------------------------------------------------------------------------------
// Warm-up and clipping

TEST_CASE("LinearWarmup: lr(step) = base·min(1, (step + 1)/warmup)") {
    const LinearWarmup w{1e-3, 4};
    CHECK(w.lr(0) == doctest::Approx(2.5e-4).epsilon(1e-15));
    CHECK(w.lr(1) == doctest::Approx(5e-4).epsilon(1e-15));
    CHECK(w.lr(2) == doctest::Approx(7.5e-4).epsilon(1e-15));
    CHECK(w.lr(3) == 1e-3);
    CHECK(w.lr(1000) == 1e-3);
    CHECK(w(1) == w.lr(1));
    const LinearWarmup none{2e-3, 0};
    CHECK(none.lr(0) == 2e-3);
    CHECK(none.lr(7) == 2e-3);
}

TEST_CASE("clip_grad_norm: returns the pre-clip norm and scales to exactly max_norm") {
    std::vector<double> g{3.0, -4.0};
    CHECK(clip_grad_norm<double>(g, 1.0) == 5.0);
    CHECK(g[0] == doctest::Approx(0.6).epsilon(1e-15));
    CHECK(g[1] == doctest::Approx(-0.8).epsilon(1e-15));
    CHECK(grad_norm<double>(g) == doctest::Approx(1.0).epsilon(1e-15));

    std::vector<float> f{1.f, 2.f, 2.f, 4.f};  // norm 5
    CHECK(clip_grad_norm<float>(f, 2.5) == 5.0);
    CHECK(grad_norm<float>(f) == doctest::Approx(2.5).epsilon(1e-7));
    CHECK(f[3] == 2.0f);

    SUBCASE("no clipping below the threshold or when max_norm <= 0") {
        std::vector<double> h{3.0, 4.0};
        CHECK(clip_grad_norm<double>(h, 5.0) == 5.0);
        CHECK(clip_grad_norm<double>(h, 0.0) == 5.0);
        CHECK(clip_grad_norm<double>(h, -1.0) == 5.0);
        CHECK(h == std::vector<double>{3.0, 4.0});
    }
    SUBCASE("non-finite norms are returned and the gradient is left untouched") {
        std::vector<double> h{3.0, std::numeric_limits<double>::quiet_NaN()};
        CHECK(std::isnan(clip_grad_norm<double>(h, 1.0)));
        CHECK(h[0] == 3.0);
        std::vector<float> k{3.0f, -std::numeric_limits<float>::infinity()};
        CHECK(clip_grad_norm<float>(k, 1.0) == std::numeric_limits<double>::infinity());
        CHECK(k[0] == 3.0f);
        // float squares are accumulated in double: no overflow at 1e30
        std::vector<float> big{3e30f, 4e30f};
        CHECK(grad_norm<float>(big) == doctest::Approx(5e30).epsilon(1e-7));
    }
}

TEST_CASE("grad_norm: the same bits with one thread or many") {
    std::vector<float> g(300001);
    Rng rng(4);
    for (auto& v : g) v = float(rng.normal());
    double serial = 0.0;  // the fixed 64-chunk partition, each chunk summed in index order
    const std::size_t chunk = (g.size() + 63) / 64;
    for (std::size_t lo = 0; lo < g.size(); lo += chunk) {
        double s = 0.0;
        for (std::size_t i = lo; i < std::min(g.size(), lo + chunk); ++i) s += double(g[i]) * g[i];
        serial += s;
    }
    const int threads = num_threads();
    set_num_threads(1);
    const double one = grad_norm<float>(g);
    set_num_threads(std::max(2, threads));
    const double many = grad_norm<float>(g);
    set_num_threads(threads);
    // within a chunk the sum is vectorised (a fixed order for a given build), so equal to the
    // index-order sum up to rounding; across thread counts it is bit-for-bit the same
    CHECK(one == doctest::Approx(std::sqrt(serial)).epsilon(1e-13));
    CHECK(many == one);
    CHECK(one == doctest::Approx(std::sqrt(double(g.size()))).epsilon(0.01));
}

// ---------------------------------------------------------------------------------------------------
// train_step

TEST_CASE("train_step: warm-up lr, clipping before the update, the report") {
    FakeModel model;
    RecordingOptimizer opt;
    const xt::xtensor<double, 2> x = xt::zeros<double>({1, 2});
    auto r = train_step(model, opt, x, TrainConfig{.lr = 0.1, .warmup = 4, .clip = 1.0}, 1, [](const std::string&) {
        FAIL("on_skip must not fire");
    });
    CHECK(r.step == 1);
    CHECK(r.loss == 1.5);
    CHECK(r.grad_norm == 5.0);  // before clipping
    CHECK(r.lr == doctest::Approx(0.05).epsilon(1e-15));
    CHECK(!r.skipped);
    REQUIRE(opt.calls == 1);
    CHECK(opt.lr == r.lr);
    CHECK(opt.grads[0] == doctest::Approx(0.6).epsilon(1e-15));
    CHECK(opt.grads[1] == doctest::Approx(0.8).epsilon(1e-15));

    model.g = {3.0, 4.0};  // clip off: the gradient passes through unchanged
    r = train_step(model, opt, x, TrainConfig{.lr = 0.1}, 0);
    CHECK(opt.grads == std::vector<double>{3.0, 4.0});
    CHECK(r.lr == 0.1);

    // the raw overload goes through nll_and_gradient_raw
    const double raw[2] = {0.0, 0.0};
    r = train_step(model, opt, raw, 1, TrainConfig{}, 9);
    CHECK(model.raw_calls == 1);
    CHECK(opt.calls == 3);
    CHECK(r.step == 9);

    CHECK_THROWS_AS(train_step(model, opt, x, TrainConfig{.lr = -1}, 0), invalid_argument);
    CHECK_THROWS_AS(train_step(model, opt, x, TrainConfig{.warmup = -2}, 0), invalid_argument);
    CHECK_THROWS_AS(train_step(model, opt, x, TrainConfig{.clip = std::nan("")}, 0), invalid_argument);
    CHECK(opt.calls == 3);
}

TEST_CASE("train_step: a non-finite gradient norm skips the update and names the step") {
    FakeModel model;
    model.g = {1.0, std::numeric_limits<double>::infinity()};
    Adam<double> opt(2);
    std::vector<std::string> reports;
    const auto r = train_step(model, opt, xt::xtensor<double, 2>(xt::zeros<double>({1, 2})), TrainConfig{.clip = 1}, 12,
                              [&](const std::string& m) { reports.push_back(m); });
    CHECK(r.skipped);
    CHECK(r.step == 12);
    CHECK(std::isinf(r.grad_norm));
    REQUIRE(reports.size() == 1);
    CHECK(reports[0] == "bijou: step 12: non-finite gradient norm (inf); update skipped");
    CHECK(model.p == std::vector<double>{1.0, 2.0});
    CHECK(model.g[0] == 1.0);  // not clipped either
    CHECK(opt.step_count() == 0);
}

TEST_CASE("train_step: a NaN loss on a Flow is reported and the parameters stay bit for bit") {
    Flow<Shape<2>, ActNorm, DiagonalGaussian> flow;  // float, Cpu
    auto x = gaussian_data<float>(16, 1);
    Adam<float> opt(flow.parameters().size());
    // move away from the initial zeros so that "unchanged" is a real claim
    for (long s = 0; s < 3; ++s) REQUIRE(!train_step(flow, opt, x, TrainConfig{.lr = 0.01}, s).skipped);
    const std::vector<float> before(flow.parameters().begin(), flow.parameters().end());
    const std::vector<float> m_before(opt.m().begin(), opt.m().end());

    x(5, 1) = std::numeric_limits<float>::quiet_NaN();
    std::vector<std::string> reports;
    const auto r = train_step(flow, opt, x, TrainConfig{.lr = 0.01, .clip = 1.0}, 7,
                              [&](const std::string& m) { reports.push_back(m); });
    CHECK(r.skipped);
    CHECK(std::isnan(r.loss));
    CHECK(r.step == 7);
    REQUIRE(reports.size() == 1);
    CHECK(reports[0] == "bijou: step 7: non-finite loss (nan); update skipped");
    CHECK(same_bits<float>(flow.parameters(), before));
    CHECK(same_bits<float>(opt.m(), m_before));
    CHECK(opt.step_count() == 3);

    // the next good batch trains normally again
    x(5, 1) = 0.0f;
    CHECK(!train_step(flow, opt, x, TrainConfig{.lr = 0.01}, 8, [&](const std::string& m) { reports.push_back(m); })
               .skipped);
    CHECK(reports.size() == 1);
    CHECK(!same_bits<float>(flow.parameters(), before));
}

TEST_CASE("train_step: Adam and Adamax clip as they read the gradients, which stay unclipped") {
    // train_step passes the clipping factor f = clip / norm to the optimizer's grad_scale: the update
    // equals a step on the gradients scaled by float(f) beforehand, bit for bit, and the model's
    // gradients keep their unclipped values (the norm of the next step's report is not affected).
    auto check = [](auto make_opt) {
        using F = Flow<Shape<2>, Chain<ActNorm, ActNorm>, GaussianMixture<3>>;  // float, Cpu
        F a(Options{.seed = 5}), b(Options{.seed = 5});
        const auto x = gaussian_data<float>(64, 9);
        auto opt_a = make_opt(a.parameters().size());
        auto opt_b = make_opt(b.parameters().size());
        for (long s = 0; s < 3; ++s) {
            const auto r = train_step(a, opt_a, x, TrainConfig{.lr = 0.05, .clip = 0.25}, s);
            REQUIRE(r.grad_norm > 0.5);  // clipping is active: f < 1/2
            std::vector<float> g(a.gradients().begin(), a.gradients().end());
            CHECK(grad_norm<float>(g) == r.grad_norm);  // unclipped

            b.nll_and_gradient(x);
            std::vector<float> scaled(b.gradients().begin(), b.gradients().end());
            CHECK(same_bits<float>(scaled, g));  // the same unclipped gradients
            const float f = float(0.25 / r.grad_norm);
            for (float& v : scaled) v *= f;
            opt_b.step(b.parameters(), std::span<const float>(scaled), r.lr);
            CHECK(same_bits<float>(a.parameters(), b.parameters()));
        }
    };
    check([](std::size_t n) { return Adam<float>(n); });
    check([](std::size_t n) { return Adamax<float>(n); });
}

TEST_CASE("train_step: Adam takes Flow<ActNorm, DiagonalGaussian> to the closed-form optimum") {
    // The model is a diagonal Gaussian (ActNorm and the base are both per-coordinate affine), so the
    // best mean NLL on the training set is the entropy of the fitted Gaussian: Σ_j ½·log(2πe·σ̂_j²),
    // σ̂_j the maximum-likelihood (1/n) standard deviation of coordinate j.
    using F = Flow<Shape<2>, ActNorm, DiagonalGaussian, double, Reference>;
    F flow;
    const int n = 512;
    const auto x = gaussian_data<double>(n, 3);
    double optimum = 0.0;
    for (int j = 0; j < 2; ++j) {
        double m = 0, v = 0;
        for (int i = 0; i < n; ++i) m += x(i, j);
        m /= n;
        for (int i = 0; i < n; ++i) v += (x(i, j) - m) * (x(i, j) - m);
        v /= n;
        optimum += 0.5 * std::log(2 * std::numbers::pi * std::numbers::e * v);
    }
    Adam<double> opt(flow.parameters().size());
    const TrainConfig cfg{.lr = 0.05, .warmup = 20, .clip = 10.0};
    double first = 0, last = 0;
    for (long s = 0; s < 1500; ++s) {
        const auto r = train_step(flow, opt, x, cfg, s);
        REQUIRE(!r.skipped);
        if (s == 0) first = r.loss;
        last = r.loss;
    }
    const double final_nll = -xt::mean(flow.log_prob(x))();
    INFO("initial " << first << ", last step " << last << ", final " << final_nll << ", optimum " << optimum);
    CHECK(first > optimum + 1.0);
    CHECK(final_nll >= optimum - 1e-9);  // it cannot beat the maximum likelihood
    CHECK(final_nll < optimum + 1e-4);
}

TEST_CASE("train_step: two seeded runs are bit-for-bit identical, another seed differs") {
    auto run = [](std::uint64_t seed) {
        Flow<Shape<2>, Chain<ActNorm, ActNorm>, GaussianMixture<3>> flow(Options{.seed = seed});  // float, Cpu
        const auto data = gaussian_data<float>(256, seed + 100);
        Adam<float> opt(flow.parameters().size());
        const double nll_before = -xt::mean(xt::cast<double>(flow.log_prob(data)))();
        Rng rng(seed);
        auto batch = make_batch<float, Shape<2>>(32);
        std::vector<double> losses;
        for (long s = 0; s < 60; ++s) {
            for (int i = 0; i < 32; ++i) {
                const auto k = rng.below(256);
                batch(i, 0) = data(k, 0), batch(i, 1) = data(k, 1);
            }
            losses.push_back(train_step(flow, opt, batch, TrainConfig{.lr = 0.05, .warmup = 10, .clip = 5.0}, s).loss);
        }
        const double nll_after = -xt::mean(xt::cast<double>(flow.log_prob(data)))();
        INFO("seed " << seed << ": NLL " << nll_before << " -> " << nll_after);
        CHECK(nll_after < nll_before - 1.0);  // and it did train (from ≈ 5–7 nats to ≈ 2.4)
        return std::pair{std::vector<float>(flow.parameters().begin(), flow.parameters().end()), losses};
    };
    const auto [p1, l1] = run(42);
    const auto [p2, l2] = run(42);
    const auto [p3, l3] = run(43);
    CHECK(same_bits<float>(p1, p2));
    CHECK(l1 == l2);
    CHECK(!same_bits<float>(p1, p3));
}

}  // namespace unit_train
