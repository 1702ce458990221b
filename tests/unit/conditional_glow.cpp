// A class-conditional Glow (core/context.hpp, models/image_flow.hpp): the conditional ImageFlow API,
// conditional priors, training with labels, and checkpoints. Tiny shapes; the per-part checks are in
// tests/conformance/conditional_glow.cpp.
#include <doctest/doctest.h>

#include <bijou/bijou.hpp>
#include <bijou/io/checkpoint.hpp>

#include <cmath>
#include <filesystem>
#include <string>

namespace unit_conditional_glow {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

using Label = Shape<3>;
using CondStep = Chain<ActNorm, InvConv1x1LU, ConditionalAffineCoupling<Label>>;
using CondGlow = Glow<Shape<1, 8, 8>, 2, CondStep>;
using PlainGlow = Glow<Shape<1, 8, 8>, 2>;

Options tiny() {
    Options o;
    o.steps_per_level = 2;
    o.hidden = 8;
    o.seed = 5;
    return o;
}

xt::xtensor<float, 2> one_hot(const std::vector<int>& labels) {
    xt::xtensor<float, 2> c = xt::zeros<float>({labels.size(), std::size_t(3)});
    for (std::size_t i = 0; i < labels.size(); ++i) c(i, std::size_t(labels[i])) = 1.0f;
    return c;
}

// Images whose brightness depends on the label: class k lights up row band k.
xt::xtensor<std::uint8_t, 4> images(const std::vector<int>& labels, std::uint64_t seed) {
    Rng rng(seed);
    xt::xtensor<std::uint8_t, 4> x = xt::zeros<std::uint8_t>({labels.size(), std::size_t(1), std::size_t(8), std::size_t(8)});
    for (std::size_t i = 0; i < labels.size(); ++i)
        for (int h = 0; h < 8; ++h)
            for (int w = 0; w < 8; ++w) {
                const bool lit = h / 3 == labels[i];
                x(i, 0, std::size_t(h), std::size_t(w)) = std::uint8_t(lit ? 200 + rng.below(40) : rng.below(40));
            }
    return x;
}

// Rows idx of a batch of images, in that order.
xt::xtensor<float, 4> rows(const xt::xtensor<float, 4>& x, const std::vector<std::size_t>& idx) {
    xt::xtensor<float, 4> r = xt::xtensor<float, 4>::from_shape({idx.size(), x.shape(1), x.shape(2), x.shape(3)});
    const std::size_t d = x.shape(1) * x.shape(2) * x.shape(3);
    for (std::size_t k = 0; k < idx.size(); ++k) std::copy_n(x.data() + idx[k] * d, d, r.data() + k * d);
    return r;
}

}  // namespace

TEST_CASE("conditional Glow: the Step's context makes the model, its split and its top prior conditional") {
    static_assert(CondGlow::conditional && std::is_same_v<CondGlow::context_shape, Label>);
    static_assert(!PlainGlow::conditional);
    CondGlow m(tiny());
    // the priors carry the context projections (zero at start), the couplings theirs
    CHECK(m.params().find("levels.0.split.context.weight") != nullptr);
    CHECK(m.params().find("levels.1.prior.context.weight") != nullptr);
    CHECK(m.params().find("levels.1.prior.bias") != nullptr);
    CHECK(m.params().find("levels.0.1.steps.0.coupling.net.context.weight") == nullptr);  // named by the chain keys
    bool coupling_projection = false;
    for (const auto& t : m.params().tensors())
        coupling_projection |= t.name.find("coupling.net.context.weight") != std::string::npos;
    CHECK(coupling_projection);
}

TEST_CASE("conditional Glow: encode/decode, sample and interpolate take the context") {
    CondGlow m(tiny());
    Rng noise(1);
    for (auto& v : m.parameters()) v += float(0.05 * noise.normal());
    const std::vector<int> labels{0, 1, 2, 1};
    const auto c = one_hot(labels);
    Rng rng(2);
    const auto x = m.dequantize(images(labels, 3), 8, rng);
    const auto eps = m.encode(x, c);
    REQUIRE(eps.size() == 2);
    const auto back = m.decode(eps, c);
    for (std::size_t k = 0; k < x.size(); ++k) CHECK(back.data()[k] == doctest::Approx(x.data()[k]).epsilon(1e-4));
    // decoding the same latents under other labels gives other images
    const auto other = m.decode(eps, one_hot({2, 0, 1, 0}));
    double moved = 0;
    for (std::size_t k = 0; k < x.size(); ++k) moved = std::max(moved, double(std::abs(other.data()[k] - x.data()[k])));
    CHECK(moved > 1e-3);

    Rng r(4);
    const auto s = m.sample(5, one_hot({1}), 0.7, r);
    CHECK(s.shape(0) == 5);
    const auto path = m.interpolate(rows(x, {0}), rows(x, {1}), one_hot({1}), 4);
    CHECK(path.shape(0) == 4);
    Rng rb(6);
    const auto bpd = m.bits_per_dim(images(labels, 3), c, 8, rb);
    for (double v : bpd) CHECK(std::isfinite(v));
}

TEST_CASE("conditional Glow: trained on labelled images, log p(x | y) prefers the true label") {
    std::vector<int> labels;
    for (int i = 0; i < 96; ++i) labels.push_back(i % 3);
    const auto data = images(labels, 7);
    const auto ctx = one_hot(labels);
    CondGlow m(tiny());
    Rng rng(8);
    m.initialize(m.dequantize(data, 8, rng), ctx);
    Adam<float> adam(m.parameter_count());
    const TrainConfig cfg{.lr = 3e-3, .warmup = 20, .clip = 500.0};
    double first = 0, last = 0;
    for (long step = 0; step < 150; ++step) {
        const auto rep = train_step(m, adam, m.dequantize(data, 8, rng), ctx, cfg, step);
        REQUIRE_FALSE(rep.skipped);
        if (step == 0) first = rep.loss;
        last = rep.loss;
    }
    CHECK(last < first);
    // the flow as a generative classifier: argmax_y log p(x | y) on fresh images
    std::vector<int> test_labels{0, 1, 2, 0, 1, 2, 0, 1, 2};
    const auto x = m.dequantize(images(test_labels, 9), 8, rng);
    int right = 0;
    for (std::size_t i = 0; i < test_labels.size(); ++i) {
        const auto lp = m.log_prob(rows(x, {i, i, i}), one_hot({0, 1, 2}));
        const int best = int(std::max_element(lp.begin(), lp.end()) - lp.begin());
        right += best == test_labels[i];
    }
    MESSAGE("conditional Glow loss " << first << " -> " << last << " nats; classified " << right << "/9");
    CHECK(right >= 8);
}

TEST_CASE("conditional Glow: checkpoints keep the context shape and refuse an unconditional model") {
    const std::string path = (std::filesystem::temp_directory_path() / "bijou_conditional_glow.safetensors").string();
    CondGlow m(tiny());
    Rng noise(10);
    for (auto& v : m.parameters()) v += float(0.05 * noise.normal());
    save_checkpoint(path, m);
    CHECK(read_checkpoint_metadata(path).at("setting.context_shape") == "Shape<3>");
    CondGlow same(tiny());
    load_checkpoint(path, same);
    const auto c = one_hot({2, 0});
    Rng r1(3), r2(3);
    const auto a = m.bits_per_dim(images({2, 0}, 11), c, 8, r1), b = same.bits_per_dim(images({2, 0}, 11), c, 8, r2);
    CHECK(a(0) == b(0));
    CHECK(a(1) == b(1));
    PlainGlow plain(tiny());
    CHECK_THROWS_WITH_AS(load_checkpoint(path, plain), doctest::Contains("this model is unconditional"), error);
    std::filesystem::remove(path);
}

}  // namespace unit_conditional_glow
