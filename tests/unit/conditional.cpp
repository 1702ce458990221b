// Conditional flows p(x | c) (core/context.hpp): the Flow API with a context, chunking, errors, the
// conditional base, training, and the context shape in checkpoints. The per-bijector checks (∂L/∂c,
// context sensitivity, row independence, backends) are in tests/conformance/conditional.cpp.
#include <doctest/doctest.h>

#include <bijou/bijou.hpp>
#include <bijou/io/checkpoint.hpp>

#include <cmath>
#include <filesystem>
#include <numbers>
#include <string>

namespace unit_conditional {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

using Ctx = Shape<1>;
template <class T = float, class B = Cpu>
// (Stack<Chain<ConditionalAffineCoupling, Permute>> would not do on Shape<2>: the alternating mask and
// the reversing Permute cancel, and x_0 would never be transformed.)
using CondFlow = Flow<Shape<2>, Stack<ConditionalAffineCoupling<Ctx>>, ConditionalDiagonalGaussian<Ctx>, T, B>;

Options small() {
    Options o;
    o.steps_per_level = 3;
    o.hidden = 16;
    o.hidden_layers = 2;
    o.seed = 3;
    return o;
}

// Noise on every parameter, so that zero-initialised output layers do not make the model trivial.
template <class M>
void perturb(M& m, double s, std::uint64_t seed) {
    Rng rng(seed);
    for (auto& v : m.parameters()) v = std::remove_reference_t<decltype(v)>(v + s * rng.normal());
}

template <class T>
xt::xtensor<T, 2> normal_batch(int n, int d, std::uint64_t seed) {
    Rng rng(seed);
    xt::xtensor<T, 2> x = xt::zeros<T>({std::size_t(n), std::size_t(d)});
    for (auto& v : x) v = T(rng.normal());
    return x;
}

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("bijou_conditional_" + name)).string();
}

}  // namespace

TEST_CASE("conditional flow: the context shape is a type, and unconditional models have none") {
    static_assert(CondFlow<>::conditional && CondFlow<>::context_size == 1);
    static_assert(std::is_same_v<CondFlow<>::context_shape, Shape<1>>);
    static_assert(!RealNVP<Shape<2>>::conditional && std::is_void_v<RealNVP<Shape<2>>::context_shape>);
    // a conditional base alone makes the model conditional
    static_assert(Flow<Shape<2>, AffineCoupling, ConditionalDiagonalGaussian<Shape<3>>>::context_size == 3);
    CHECK(CondFlow<>::context_size == 1);
}

TEST_CASE("conditional flow: log_prob(x, c) is the base log-density of f(x, c) plus the log-det") {
    CondFlow<double> m(small());
    perturb(m, 0.3, 1);
    const auto x = normal_batch<double>(7, 2, 2);
    const auto c = normal_batch<double>(7, 1, 3);
    const auto lp = m.log_prob(x, c);
    const auto fz = m.forward(x, c);
    for (std::size_t i = 0; i < 7; ++i) CHECK(std::isfinite(lp(i)));
    // log p(x | c) − log|det| is the base log-density of z, which depends on c through the base net only:
    // two rows with the same z and c have the same value, and the value changes with c.
    auto c2 = c;
    for (auto& v : c2) v += 0.7;
    const auto lp2 = m.log_prob(x, c2);
    double moved = 0;
    for (std::size_t i = 0; i < 7; ++i) moved = std::max(moved, std::abs(lp2(i) - lp(i)));
    CHECK(moved > 1e-3);
    // consistency with the raw layer
    const double* raw = m.log_prob_raw(x.data(), c.data(), 7);
    for (std::size_t i = 0; i < 7; ++i) CHECK(raw[i] == doctest::Approx(lp(i)).epsilon(1e-12));
    // round trip with the context
    const auto back = m.inverse(fz.z, c);
    for (std::size_t k = 0; k < x.size(); ++k) CHECK(back.x.data()[k] == doctest::Approx(x.data()[k]).epsilon(1e-10));
}

TEST_CASE("conditional base: ConditionalDiagonalGaussian is N(loc(c), exp(log_scale(c))²) per row") {
    // A base alone (identity bijector = an ActNorm at its initial values) with the net's output layer set by
    // hand: weight 0, bias [loc | log_scale], so loc and log_scale are constants we know.
    using M = Flow<Shape<2>, ActNorm, ConditionalDiagonalGaussian<Shape<2>>, double, Reference>;
    M m(small());
    auto& ps = m.params();
    const TensorInfo* last = ps.find("base.net.4.bias");
    REQUIRE(last != nullptr);
    double* b = ps.data(*last);
    const double loc[2] = {0.5, -1.0}, ls[2] = {0.2, -0.3};
    b[0] = loc[0], b[1] = loc[1], b[2] = ls[0], b[3] = ls[1];
    m.to_device();
    const auto x = normal_batch<double>(5, 2, 4);
    const auto c = normal_batch<double>(5, 2, 5);
    const auto lp = m.log_prob(x, c);
    for (std::size_t i = 0; i < 5; ++i) {
        double want = -std::log(2 * std::numbers::pi);
        for (std::size_t j = 0; j < 2; ++j) {
            const double u = (x(i, j) - loc[j]) * std::exp(-ls[j]);
            want += -0.5 * u * u - ls[j];
        }
        CHECK(lp(i) == doctest::Approx(want).epsilon(1e-12));
    }
}

TEST_CASE("conditional flow: context_gradient is the gradient of the mean NLL in c (central differences)") {
    CondFlow<double, Reference> m(small());
    perturb(m, 0.3, 6);
    const auto x = normal_batch<double>(4, 2, 7);
    auto c = normal_batch<double>(4, 1, 8);
    m.nll_and_gradient(x, c);
    const auto g = m.context_gradient();
    REQUIRE(g.shape(0) == 4);
    REQUIRE(g.shape(1) == 1);
    const double h = 1e-6;
    for (std::size_t i = 0; i < 4; ++i) {
        const double saved = c(i, 0);
        c(i, 0) = saved + h;
        const double up = m.nll_and_gradient(x, c);
        c(i, 0) = saved - h;
        const double down = m.nll_and_gradient(x, c);
        c(i, 0) = saved;
        CHECK(g(i, 0) == doctest::Approx((up - down) / (2 * h)).epsilon(1e-6));
        CHECK(std::abs(g(i, 0)) > 1e-6);  // the loss does depend on every row's context
    }
}

TEST_CASE("conditional flow: chunked evaluation pairs each chunk with its own context rows") {
    CondFlow<> m(small());
    perturb(m, 0.3, 9);
    const auto x = normal_batch<float>(10, 2, 10);
    const auto c = normal_batch<float>(10, 1, 11);
    const auto whole = m.log_prob(x, c);
    const auto fz = m.forward(x, c);
    m.set_max_chunk(3);
    const auto chunked = m.log_prob(x, c);
    const auto fz3 = m.forward(x, c);
    for (std::size_t i = 0; i < 10; ++i) {
        CHECK(chunked(i) == doctest::Approx(whole(i)).epsilon(1e-5));
        CHECK(fz3.log_det(i) == doctest::Approx(fz.log_det(i)).epsilon(1e-5));
    }
}

TEST_CASE("conditional flow: sample(n, c) takes n rows of context or one row for all") {
    CondFlow<> m(small());
    perturb(m, 0.3, 12);
    xt::xtensor<float, 2> one = {{0.8f}};
    xt::xtensor<float, 2> all = xt::zeros<float>({std::size_t(6), std::size_t(1)});
    for (auto& v : all) v = 0.8f;
    Rng r1(5), r2(5);
    const auto a = m.sample(6, one, 0.7, r1);
    const auto b = m.sample(6, all, 0.7, r2);
    REQUIRE(a.shape(0) == 6);
    for (std::size_t k = 0; k < a.size(); ++k) CHECK(a.data()[k] == b.data()[k]);
    // another context, the same noise: other samples
    for (auto& v : all) v = -0.8f;
    Rng r3(5);
    const auto d = m.sample(6, all, 0.7, r3);
    double moved = 0;
    for (std::size_t k = 0; k < a.size(); ++k) moved = std::max(moved, double(std::abs(a.data()[k] - d.data()[k])));
    CHECK(moved > 1e-3);
}

TEST_CASE("conditional flow: a context of the wrong shape or batch is a shape_error naming the call") {
    CondFlow<> m(small());
    const auto x = normal_batch<float>(4, 2, 1);
    const auto c3 = normal_batch<float>(3, 1, 2);
    const auto wide = normal_batch<float>(4, 2, 3);
    CHECK_THROWS_WITH_AS(m.log_prob(x, c3), doctest::Contains("log_prob: the context batch has 3 rows"), shape_error);
    CHECK_THROWS_WITH_AS(m.log_prob(x, wide), doctest::Contains("log_prob (context)"), shape_error);
    CHECK_THROWS_AS(m.nll_and_gradient(x, c3), shape_error);
    Rng rng(1);
    CHECK_THROWS_AS(m.sample(4, c3, 1.0, rng), shape_error);
}

TEST_CASE("conditional bijector: called without a context, it throws instead of reading stray memory") {
    Options o = small();
    BuildContext ctx(o);
    bind_t<ConditionalAffineCoupling<Shape<2>>, Shape<3>, float, Reference> b(ctx);
    ParamSet<float> ps;
    b.declare(ps, "c");
    ps.allocate();
    Rng rng(1);
    b.reset_parameters(rng);
    std::vector<float> x(6, 0.5f), z(6), ws(b.workspace_size(2));
    std::vector<double> ld(2, 0.0);
    CHECK_THROWS_WITH_AS(b.forward(x.data(), z.data(), ld.data(), 2, ws.data()),
                         doctest::Contains("coupling 0: this element is conditional and was called without a context"),
                         invalid_argument);
    // with a context of another batch size
    std::vector<float> c(2 * 3, 0.0f);
    const ContextScope scope(*ctx.context_slot(), c.data(), nullptr, 3);
    CHECK_THROWS_WITH_AS(b.forward(x.data(), z.data(), ld.data(), 2, ws.data()),
                         doctest::Contains("the context has 3 rows but the batch has 2"), invalid_argument);
}

TEST_CASE("conditional flow: train_step with contexts learns p(x | c) that a marginal cannot") {
    // x = (c, −c) + 0.1·ε with c ~ U(−2, 2): the conditional density is N((c, −c), 0.01·I), entropy
    // 2·½·log(2πe·0.01) = −1.77 nats; ignoring c, the data spread along a segment of length 5.7.
    constexpr int N = 4096;
    Rng rng(21);
    xt::xtensor<float, 2> data = xt::zeros<float>({std::size_t(N), std::size_t(2)});
    xt::xtensor<float, 2> ctx = xt::zeros<float>({std::size_t(N), std::size_t(1)});
    for (int i = 0; i < N; ++i) {
        const double c = 4.0 * rng.uniform() - 2.0;
        ctx(i, 0) = float(c);
        data(i, 0) = float(c + 0.1 * rng.normal());
        data(i, 1) = float(-c + 0.1 * rng.normal());
    }
    Options o = small();
    o.hidden = 32;
    CondFlow<> m(o);
    Adam<float> adam(m.parameter_count());
    const TrainConfig cfg{.lr = 3e-3, .warmup = 50, .clip = 50.0};
    EpochSampler sampler(N, {.seed = 2});
    xt::xtensor<float, 2> xb = xt::zeros<float>({std::size_t(128), std::size_t(2)});
    xt::xtensor<float, 2> cb = xt::zeros<float>({std::size_t(128), std::size_t(1)});
    double first = 0, last = 0;
    for (long step = 0; step < 600; ++step) {
        sampler.next_batch(data, xb, ctx, cb);
        const auto rep = train_step(m, adam, xb, cb, cfg, step);
        REQUIRE_FALSE(rep.skipped);
        if (step == 0) first = rep.loss;
        last = rep.loss;
    }
    const auto lp = m.log_prob(data, ctx);
    double nll = 0;
    for (float v : lp) nll -= v;
    nll /= N;
    MESSAGE("conditional NLL: first batch " << first << ", after 600 steps " << nll << " nats");
    CHECK(nll < 0.0);  // far below any marginal fit (≈ +0.9 nats) and on the way to −1.77
    CHECK(last < first);
}

TEST_CASE("conditional checkpoint: the context shape is recorded, and another one is a clear error") {
    const std::string path = temp_path("ctx.safetensors");
    CondFlow<> m(small());
    perturb(m, 0.2, 30);
    save_checkpoint(path, m);
    CondFlow<> same(small());
    load_checkpoint(path, same);
    const auto x = normal_batch<float>(3, 2, 31);
    const auto c = normal_batch<float>(3, 1, 32);
    const auto a = m.log_prob(x, c), b = same.log_prob(x, c);
    for (std::size_t i = 0; i < 3; ++i) CHECK(a(i) == b(i));

    using Other = Flow<Shape<2>, Stack<ConditionalAffineCoupling<Shape<2>>>,
                       ConditionalDiagonalGaussian<Shape<2>>>;
    Other other(small());
    CHECK_THROWS_WITH_AS(load_checkpoint(path, other),
                         doctest::Contains("the file's model is conditional on the context Shape<1> but this model is "
                                           "conditional on the context Shape<2>"),
                         error);
    RealNVP<Shape<2>> plain(small());
    CHECK_THROWS_WITH_AS(load_checkpoint(path, plain),
                         doctest::Contains("setting 'context_shape': the file's model is conditional on the context "
                                           "Shape<1> but this model is unconditional"),
                         error);
    std::filesystem::remove(path);
}

}  // namespace unit_conditional
