// Whole-model tests of Glow and the multi-scale RealNVP: shapes, round trips, both memory modes,
// backends, gradients against finite differences, sampling, encode/decode, bits/dim.
#include <doctest/doctest.h>

#include <barrier>
#include <thread>
#include <utility>

#include <bijou/bijou.hpp>
#include <bijou/testing/conformance.hpp>

namespace unit_glow {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

template <class Model>
typename Model::data_tensor random_images(int n, std::uint64_t seed) {
    Rng rng(seed);
    auto x = make_batch<typename Model::scalar, typename Model::in_shape>(n);
    for (auto& v : x) v = typename Model::scalar(rng.uniform() - 0.5);
    return x;
}

template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
    double m = 0.0;
    REQUIRE(a.size() == b.size());
    for (std::size_t k = 0; k < a.size(); ++k) m = std::max(m, std::abs(double(a.data()[k]) - double(b.data()[k])));
    return m;
}

/// Perturbs every trainable parameter so that no part is at its (identity) initial value.
template <class Model>
void perturb(Model& m, double sd, std::uint64_t seed) {
    Rng rng(seed);
    for (auto& v : m.parameters()) v += typename Model::scalar(sd * rng.normal());
}

}  // namespace

TEST_CASE("the code of the issue compiles unchanged: Glow<Shape<1, 32, 32>, 3, Step>") {
    using Step  = bijou::Chain<bijou::ActNorm, bijou::InvConv1x1LU, bijou::AffineCoupling>;
    using Model = bijou::Glow<bijou::Shape<1, 32, 32>, 3, Step>;          // T = float, Backend = bijou::Cpu
    Model model({.steps_per_level = 8, .hidden = 128});
    static_assert(std::is_same_v<Model::scalar, float> && std::is_same_v<Model::backend, Cpu>);
    static_assert(std::is_same_v<Model::out_shape, Shape<1024>>);
    CHECK(Model::levels() == 3);
    const auto shapes = Model::latent_shapes();
    REQUIRE(shapes.size() == 3);
    CHECK(shapes[0] == std::array<int, 3>{2, 16, 16});
    CHECK(shapes[1] == std::array<int, 3>{4, 8, 8});
    CHECK(shapes[2] == std::array<int, 3>{16, 4, 4});
    CHECK(model.params().find("levels.0.steps.7.actnorm.loc") != nullptr);
    CHECK(model.params().find("levels.1.split.conv.weight") != nullptr);
    CHECK(model.params().find("levels.2.prior.log_scale") != nullptr);
    CHECK(model.params().find("levels.2.split.conv.weight") == nullptr);
    CHECK(model.params().find("levels.0.steps.0.coupling.net.4.weight") != nullptr);
    CHECK(model.bijector().body().element<1>()[0].element<2>().scale() == CouplingScale::sigmoid);
}

TEST_CASE("Glow: full round trip and per-level latents") {
    using Model = Glow<Shape<2, 8, 8>, 2>;
    Model m({.steps_per_level = 3, .hidden = 16, .seed = 11});
    auto x = random_images<Model>(5, 1);
    m.initialize(x);
    perturb(m, 0.05, 2);
    const auto f = m.forward(x);
    const auto r = m.inverse(f.z);
    CHECK(max_abs_diff(r.x, x) <= 1e-4);
    for (int i = 0; i < 5; ++i) CHECK(double(r.log_det(i)) == doctest::Approx(-double(f.log_det(i))).epsilon(1e-4));
    const auto eps = m.encode(x);
    REQUIRE(eps.size() == 2);
    CHECK(eps[0].shape() == std::array<std::size_t, 4>{5, 4, 4, 4});
    CHECK(eps[1].shape() == std::array<std::size_t, 4>{5, 16, 2, 2});
    CHECK(eps[1](3, 15, 1, 1) == f.z(3, 127));
    CHECK(eps[0](2, 0, 0, 1) == f.z(2, 1));
    CHECK(max_abs_diff(m.decode(eps), x) <= 1e-4);
}

TEST_CASE("Glow: ActNorm initialisation from two shards through a statistics reducer equals the whole batch's") {
    // Two "processes" (threads), each with its own model and half of the batch, sum their ActNorm
    // statistics through a reducer, as bijou::distributed does with an all-reduce.
    using Model = Glow<Shape<2, 8, 8>, 2>;
    const auto x = random_images<Model>(6, 4);
    Model whole({.steps_per_level = 2, .hidden = 8, .seed = 3});
    whole.initialize(x);
    Model part[2] = {Model({.steps_per_level = 2, .hidden = 8, .seed = 3}), Model({.steps_per_level = 2, .hidden = 8, .seed = 3})};
    std::vector<double> slot[2];
    std::barrier sync(2);
    int calls[2] = {0, 0};
    auto run = [&](int r) {
        ScopedStatisticsReducer scope([&](std::span<double> v) {
            slot[r].assign(v.begin(), v.end());
            sync.arrive_and_wait();
            for (std::size_t k = 0; k < v.size(); ++k) v[k] = slot[0][k] + slot[1][k];
            sync.arrive_and_wait();
            ++calls[r];
        });
        auto half = Model::data_tensor::from_shape({3, 2, 8, 8});
        std::copy_n(x.data() + std::size_t(r) * half.size(), half.size(), half.data());
        part[r].initialize(half);
    };
    std::thread other(run, 1);
    run(0);
    other.join();
    CHECK(calls[0] == 4);  // one per ActNorm: 2 levels × 2 steps
    CHECK(calls[1] == 4);
    for (int r = 0; r < 2; ++r) {
        const auto a = part[r].parameters(), b = whole.parameters();
        double d = 0.0;
        for (std::size_t k = 0; k < a.size(); ++k) d = std::max(d, std::abs(double(a[k]) - double(b[k])));
        CHECK(d <= 1e-5);
    }
    // Outside the scope nothing is reduced: an initialisation on half the batch differs.
    Model alone({.steps_per_level = 2, .hidden = 8, .seed = 3});
    auto half = Model::data_tensor::from_shape({3, 2, 8, 8});
    std::copy_n(x.data(), half.size(), half.data());
    alone.initialize(half);
    const std::size_t loc = whole.params().find("levels.0.steps.0.actnorm.loc")->offset;
    CHECK(alone.parameters()[loc] != whole.parameters()[loc]);
}

TEST_CASE("Glow: sample at temperature 0 is the decode of zero latents") {
    using Model = Glow<Shape<1, 8, 8>, 2>;
    Model m({.steps_per_level = 2, .hidden = 8, .seed = 4});
    perturb(m, 0.05, 9);
    Rng rng(1);
    const auto s = m.sample(3, 0.0, rng);
    std::vector<Model::image_tensor> zeros;
    for (const auto& sh : Model::latent_shapes())
        zeros.push_back(xt::zeros<float>({std::size_t(3), std::size_t(sh[0]), std::size_t(sh[1]), std::size_t(sh[2])}));
    CHECK(max_abs_diff(s, m.decode(zeros)) == 0.0);
    const auto s1 = m.sample(3, 1.0, rng);
    CHECK(max_abs_diff(s1, s) > 0.1);
}

TEST_CASE("Glow: log_prob equal between Reference and Cpu") {
    using Cpu_ = Glow<Shape<2, 8, 8>, 2, Chain<ActNorm, InvConv1x1LU, AffineCoupling>, float, Cpu>;
    using Ref = Glow<Shape<2, 8, 8>, 2, Chain<ActNorm, InvConv1x1LU, AffineCoupling>, float, Reference>;
    const Options o{.steps_per_level = 2, .hidden = 16, .seed = 5};
    Cpu_ a(o);
    Ref b(o);
    auto x = random_images<Cpu_>(4, 3);
    a.initialize(x);
    perturb(a, 0.05, 7);
    testing::detail::copy_params(b, a);
    const auto la = a.log_prob(x), lb = b.log_prob(x);
    for (int i = 0; i < 4; ++i) CHECK(double(la(i)) == doctest::Approx(double(lb(i))).epsilon(1e-5));
}

TEST_CASE("Glow: both memory modes give the same loss and gradients, and memory-saving needs less") {
    using Model = Glow<Shape<1, 16, 16>, 2>;
    Options o{.steps_per_level = 4, .hidden = 32, .seed = 8};
    Model store(o);
    o.memory_saving = true;
    Model lean(o);
    auto x = random_images<Model>(8, 5);
    store.initialize(x);
    lean.initialize(x);
    perturb(store, 0.02, 1);
    perturb(lean, 0.02, 1);
    const double a = store.nll_and_gradient(x), b = lean.nll_and_gradient(x);
    CHECK(a == doctest::Approx(b).epsilon(1e-6));
    double worst = 0.0, scale = 0.0;
    for (std::size_t k = 0; k < store.gradients().size(); ++k) {
        worst = std::max(worst, double(std::abs(store.gradients()[k] - lean.gradients()[k])));
        scale = std::max(scale, double(std::abs(store.gradients()[k])));
    }
    CHECK(scale > 1e-3);
    CHECK(worst <= 1e-3 * scale);
    CHECK(lean.workspace_bytes(8) < store.workspace_bytes(8));
}

TEST_CASE("Glow: stored-activation training shares one scratch region among the couplings") {
    // Each step of a stack adds its output and its coupling's kept part (conditioner input, output and
    // activations) to the arena, never its backward scratch: that is one region for all steps.
    constexpr int n = 8;
    using S = Shape<4, 8, 8>;
    auto bytes = [](int K) {
        Transform<Stack<AffineCoupling>, S, float, Cpu> f(Options{.steps_per_level = K, .hidden = 16});
        const auto& coupling = f.bijector()[0];
        const std::size_t kept = coupling.workspace_size(n) - coupling.scratch_size(n);
        CHECK(coupling.scratch_size(n) > kept);  // the im2col and gradient buffers are most of it
        CHECK(f.bijector().scratch_size(n) == 2 * std::size_t(n) * S::size + coupling.scratch_size(n));
        return std::pair{f.workspace_bytes(n), kept};
    };
    const auto [w4, kept] = bytes(4);
    const auto [w8, kept8] = bytes(8);
    CHECK(kept8 == kept);
    CHECK(w8 - w4 == 4 * (std::size_t(n) * S::size + kept) * sizeof(float));
}

TEST_CASE("Glow: evaluation uses the lean layout and leaves training unchanged") {
    using Model = Glow<Shape<1, 16, 16>, 2>;
    Options o{.steps_per_level = 3, .hidden = 16, .seed = 4};
    Model a(o), b(o);
    o.memory_saving = true;
    Model lean(o);
    CHECK(a.eval_workspace_bytes(8) == lean.workspace_bytes(8));
    CHECK(a.eval_workspace_bytes(8) < a.workspace_bytes(8));
    CHECK(lean.eval_workspace_bytes(8) == lean.workspace_bytes(8));
    auto x = random_images<Model>(8, 6);
    for (Model* m : {&a, &b, &lean}) {
        m->initialize(x);
        perturb(*m, 0.02, 2);
    }
    CHECK(a.options().memory_saving == false);
    // Evaluations before, between and after training steps: a's training must match b's (no
    // evaluation) bit for bit, and its log_prob must match the memory-saving model's.
    const auto before = a.log_prob(x);
    CHECK(max_abs_diff(before, lean.log_prob(x)) == 0.0);
    const double la = a.nll_and_gradient(x);
    Rng r1(3), r2(3);
    const auto s = a.sample(4, 0.7, r1);
    CHECK(max_abs_diff(s, lean.sample(4, 0.7, r2)) == 0.0);
    const double lb = b.nll_and_gradient(x);
    CHECK(la == lb);
    CHECK(max_abs_diff(a.gradients(), b.gradients()) == 0.0);
    CHECK(max_abs_diff(a.forward(x).z, b.forward(x).z) == 0.0);
}

TEST_CASE("Glow: memory-saving workspace does not grow with K") {
    auto bytes = [](int K, bool lean) {
        Glow<Shape<1, 16, 16>, 2> m({.steps_per_level = K, .hidden = 32, .memory_saving = lean});
        return m.workspace_bytes(16);
    };
    CHECK(bytes(2, true) == bytes(8, true));
    CHECK(bytes(8, false) > 3 * bytes(2, false) / 2);
}

TEST_CASE("Glow: gradients of a tiny model against finite differences (double)") {
    using Model = Glow<Shape<1, 4, 4>, 2, Chain<ActNorm, InvConv1x1LU, AffineCoupling>, double, Reference>;
    for (bool lean : {false, true}) {
        Model m({.steps_per_level = 2, .hidden = 4, .seed = 2, .memory_saving = lean});
        auto x = random_images<Model>(3, 4);
        m.initialize(x);
        perturb(m, 0.1, 3);
        m.nll_and_gradient(x);
        const std::vector<double> g(m.gradients().begin(), m.gradients().end());
        auto p = m.parameters();
        Rng rng(6);
        const double h = 1e-6;
        int checked = 0;
        for (std::size_t k = 0; k < p.size(); k += 1 + rng.below(7), ++checked) {
            const double saved = p[k];
            p[k] = saved + h;
            const double up = -xt::mean(m.log_prob(x))();
            p[k] = saved - h;
            const double down = -xt::mean(m.log_prob(x))();
            p[k] = saved;
            INFO("parameter " << k << " lean " << lean);
            CHECK(g[k] == doctest::Approx((up - down) / (2 * h)).epsilon(1e-5).scale(1e-3));
        }
        CHECK(checked > 50);
    }
}

TEST_CASE("bits per dimension: the formula of the issue") {
    using Model = Glow<Shape<1, 4, 4>, 1>;
    Model m({.steps_per_level = 1, .hidden = 4});
    auto x = xt::xtensor<int, 4>::from_shape({2, 1, 4, 4});
    for (std::size_t k = 0; k < x.size(); ++k) x.data()[k] = int(k * 37 % 256);
    Rng r1(3), r2(3);
    const auto bpd = m.bits_per_dim(x, 8, r1);
    const auto xt_ = m.dequantize(x, 8, r2);
    CHECK(xt::amin(xt_)() >= -0.5f);
    CHECK(xt::amax(xt_)() < 0.5f);
    const auto lp = m.log_prob(xt_);
    for (int i = 0; i < 2; ++i)
        CHECK(bpd(i) == doctest::Approx((-double(lp(i)) + 16 * 8 * std::log(2.0)) / (16 * std::log(2.0))));
    x(0, 0, 1, 1) = 256;
    CHECK_THROWS_AS(m.bits_per_dim(x, 8, r1), invalid_argument);
}

TEST_CASE("dequantize_keyed: a row's noise depends on its row in the whole batch only") {
    using Model = Glow<Shape<1, 4, 4>, 1>;
    Model m({.steps_per_level = 1, .hidden = 4});
    auto x = xt::xtensor<std::uint8_t, 4>::from_shape({5, 1, 4, 4});
    for (std::size_t k = 0; k < x.size(); ++k) x.data()[k] = std::uint8_t(k * 37 % 16);
    const auto whole = m.dequantize_keyed(x, 4, 99);
    // Rows 2..4 dequantised on their own (as a second process would, first_row 2) are rows 2..4 of the whole.
    auto tail = xt::xtensor<std::uint8_t, 4>::from_shape({3, 1, 4, 4});
    std::copy_n(x.data() + 2 * 16, tail.size(), tail.data());
    const auto part = m.dequantize_keyed(tail, 4, 99, 2);
    for (std::size_t k = 0; k < part.size(); ++k) CHECK(part.data()[k] == whole.data()[2 * 16 + k]);
    // Each value is (x + u)/16 − ½ with u in [0, 1): it stays in x's bin.
    for (std::size_t k = 0; k < whole.size(); ++k) {
        CHECK(whole.data()[k] >= float(x.data()[k]) / 16 - 0.5f);
        CHECK(whole.data()[k] < float(x.data()[k] + 1) / 16 - 0.5f);
    }
    // Another key, or the same row at another position, gets other noise; the same call repeats exactly.
    const auto other = m.dequantize_keyed(x, 4, 100);
    CHECK(other.data()[0] != whole.data()[0]);
    CHECK(m.dequantize_keyed(tail, 4, 99, 0).data()[0] != part.data()[0]);
    CHECK(m.dequantize_keyed(x, 4, 99).data()[17] == whole.data()[17]);
    x(1, 0, 0, 0) = 16;
    CHECK_THROWS_WITH_AS(m.dequantize_keyed(x, 4, 99), doctest::Contains("dequantize_keyed: value 16"), invalid_argument);
}

TEST_CASE("CounterRng: uniform in the unit interval and a pure function of key and counter") {
    CounterRng a(7), b(7), c(8), mid(7, 500);
    double sum = 0.0, sq = 0.0;
    std::vector<double> first;
    for (int k = 0; k < 1000; ++k) {
        const double u = a.uniform();
        CHECK(u >= 0.0);
        CHECK(u < 1.0);
        sum += u, sq += u * u;
        if (k >= 500) CHECK(mid.uniform() == u);  // starting at counter 500 skips the first 500
        CHECK(b.uniform() == u);
        CHECK(c.uniform() != u);
    }
    CHECK(sum / 1000 == doctest::Approx(0.5).epsilon(0.05));  // mean 1/2, variance 1/12: a coarse sanity check
    CHECK(sq / 1000 - (sum / 1000) * (sum / 1000) == doctest::Approx(1.0 / 12).epsilon(0.1));
    CHECK(CounterRng::key(1, 2, 3) != CounterRng::key(2, 1, 3));
    CHECK(CounterRng::key(1, 2, 3) != CounterRng::key(1, 2, 4));
}

TEST_CASE("MultiScaleRealNVP: round trip, names, memory modes") {
    using Model = MultiScaleRealNVP<Shape<1, 8, 8>, 2>;
    Model m({.hidden = 8, .seed = 1});
    CHECK(Model::levels() == 2);
    CHECK(m.params().find("levels.0.0.steps.2.net.0.weight") != nullptr);
    CHECK(m.params().find("levels.0.2.steps.1.coupling.net.0.weight") != nullptr);
    CHECK(m.params().find("levels.1.steps.3.net.4.bias") != nullptr);
    auto x = random_images<Model>(3, 2);
    perturb(m, 0.05, 4);
    const auto f = m.forward(x);
    CHECK(max_abs_diff(m.inverse(f.z).x, x) <= 1e-4);
    CHECK(m.bijector().body().element<0>()[0].scale() == CouplingScale::tanh);
}

}  // namespace unit_glow
