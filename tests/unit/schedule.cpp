// Learning-rate schedules: each anneal's values at known steps and progresses, the composition with
// the warm-up (bit for bit what the examples wrote by hand before), TrainConfig's anneal in train_step,
// and the validation errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xtensor.hpp>

#include <bijou/train/schedule.hpp>
#include <bijou/train/trainer.hpp>

namespace unit_schedule {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

constexpr double kTol = 1e-15;  // a closed-form value against the same formula in other words
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// Runs f, which must throw bijou::invalid_argument, and checks that the message contains `names`.
template <class F>
void check_invalid(F&& f, const std::string& names) {
    try {
        f();
        FAIL("no exception; expected one naming '" << names << "'");
    } catch (const invalid_argument& e) {
        CHECK_MESSAGE(std::string(e.what()).find(names) != std::string::npos, e.what());
    }
}

/// A model whose loss and gradient are fixed, and an optimizer that records the rate it is given.
struct FakeModel {
    using scalar = double;
    using data_tensor = xt::xtensor<double, 2>;
    std::vector<double> p{1.0, 2.0}, g{0.3, 0.4};
    double nll_and_gradient(const data_tensor&) { return 1.0; }
    std::span<double> parameters() { return p; }
    std::span<double> gradients() { return g; }
};
struct RecordingOptimizer {
    double lr = -1;
    int calls = 0;
    void step(std::span<double>, std::span<const double>, double lr_) { lr = lr_, ++calls; }
};

}  // namespace

TEST_CASE("NoAnneal: a multiplier of 1") {
    const NoAnneal a;
    CHECK(a(0) == 1.0);
    CHECK(a(123456) == 1.0);
    CHECK(a.at(0.7) == 1.0);
    check_invalid([&] { (void)a.at(kNan); }, "NoAnneal: progress = nan");
}

TEST_CASE("LinearAnneal: 1 until the final fraction, then linearly to 0 at the last step") {
    const LinearAnneal a{.steps = 11, .fraction = 0.5};  // progress = step / 10
    for (long s = 0; s <= 5; ++s) CHECK(a(s) == 1.0);
    CHECK(a(6) == doctest::Approx(0.8).epsilon(kTol));
    CHECK(a(8) == doctest::Approx(0.4).epsilon(kTol));
    CHECK(a(10) == 0.0);
    CHECK(a(50) == 0.0);  // after the run: stays at 0
    CHECK(a(-3) == 1.0);  // before it: 1
    CHECK(a.at(0.75) == doctest::Approx(0.5).epsilon(kTol));
    CHECK(a.at(1.5) == 0.0);
    CHECK(a.at(-1.0) == 1.0);
    const LinearAnneal whole{.steps = 5};  // fraction 1: from 1 at the first step to 0 at the last
    CHECK(whole(0) == 1.0);
    CHECK(whole(1) == doctest::Approx(0.75).epsilon(kTol));
    CHECK(whole(4) == 0.0);
    const LinearAnneal none{.steps = 5, .fraction = 0.0};
    CHECK(none(4) == 1.0);
    CHECK(none.at(1.0) == 1.0);
    CHECK(LinearAnneal{.steps = 1}(0) == 1.0);  // a run of one step is all start
}

TEST_CASE("CosineAnneal: floor + (1 - floor)·(1 + cos πp)/2, from 1 to the floor") {
    const CosineAnneal a{.steps = 5, .floor = 0.1};  // progress = step / 4
    CHECK(a(0) == 1.0);
    CHECK(a(1) == doctest::Approx(0.1 + 0.45 * (1 + std::sqrt(0.5))).epsilon(kTol));
    CHECK(a(2) == doctest::Approx(0.55).epsilon(kTol));
    CHECK(a(3) == doctest::Approx(0.1 + 0.45 * (1 - std::sqrt(0.5))).epsilon(kTol));
    CHECK(a(4) == doctest::Approx(0.1).epsilon(kTol));
    CHECK(a(9) == a(4));  // after the run: stays at the floor
    CHECK(a.at(0.5) == a(2));
    CHECK(a.at(2.0) == a(4));
    CHECK(CosineAnneal{.steps = 3}(2) == doctest::Approx(0.0).epsilon(kTol));  // floor 0
    CHECK(CosineAnneal{.steps = 1}(0) == 1.0);
}

TEST_CASE("Schedule: warm-up times anneal, and without an anneal exactly LinearWarmup") {
    for (long s = -2; s < 30; ++s) {
        CHECK(Schedule{.base_lr = 3e-3, .warmup_steps = 7}.lr(s) == LinearWarmup{3e-3, 7}.lr(s));
        CHECK(Schedule{.base_lr = 3e-3}.lr(s) == 3e-3);
    }
    const Schedule s{.base_lr = 1e-3, .warmup_steps = 4, .anneal = CosineAnneal{.steps = 101}};
    CHECK(s.lr(0) == doctest::Approx(2.5e-4).epsilon(kTol));  // 1/4 of the warm-up, cosine still 1
    CHECK(s(0) == s.lr(0));
    CHECK(s.lr(50) == doctest::Approx(5e-4).epsilon(kTol));  // half way down the cosine
    CHECK(s.lr(100) == doctest::Approx(0.0).epsilon(kTol));
    const Schedule lin{.base_lr = 2e-3, .warmup_steps = 2, .anneal = LinearAnneal{.steps = 11, .fraction = 0.2}};
    CHECK(lin.lr(0) == doctest::Approx(1e-3).epsilon(kTol));
    CHECK(lin.lr(5) == 2e-3);
    CHECK(lin.lr(9) == doctest::Approx(1e-3).epsilon(kTol));
    CHECK(lin.lr(10) == 0.0);
}

TEST_CASE("Schedule: the bits of the cosine and linear anneals the examples wrote by hand") {
    // two_moons: cfg.lr = lr·(min + (1 − min)·½(1 + cos(π·step/max(1, steps − 1)))), then the warm-up.
    const double lr = 2e-3, min = 0.05;
    const int steps = 4000, warmup = 100;
    const Schedule cosine{.base_lr = lr, .warmup_steps = warmup, .anneal = CosineAnneal{.steps = steps, .floor = min}};
    for (int step : {0, 1, 37, 99, 100, 1234, 2000, 3998, 3999}) {
        const double p = double(step) / std::max(1, steps - 1);
        const double by_hand = lr * (min + (1 - min) * 0.5 * (1 + std::cos(std::numbers::pi * p)));
        CHECK(cosine.lr(step) == LinearWarmup{by_hand, warmup}.lr(step));
    }
    // mnist_glow: lr · clamp((1 − p)/decay, 0, 1) at a measured progress p (0 when decay is 0), then the warm-up.
    for (double decay : {0.0, 0.2, 1.0})
        for (double p : {0.0, 0.3, 0.8, 0.85, 0.999, 1.0, 1.2}) {
            const double by_hand = decay <= 0 ? 1.0 : std::clamp((1.0 - p) / decay, 0.0, 1.0);
            CHECK(5e-3 * LinearAnneal{.fraction = decay}.at(p) == 5e-3 * by_hand);
        }
}

TEST_CASE("Schedule and anneals: out-of-range fields throw invalid_argument naming them") {
    check_invalid([] { (void)LinearAnneal{.steps = 0}(0); }, "LinearAnneal: steps = 0");
    check_invalid([] { (void)LinearAnneal{.steps = 10, .fraction = 1.5}(0); }, "LinearAnneal: fraction = 1.5");
    check_invalid([] { (void)LinearAnneal{.fraction = -0.1}.at(0.5); }, "LinearAnneal: fraction = -0.1");
    check_invalid([] { (void)LinearAnneal{.fraction = kNan}.at(0.5); }, "LinearAnneal: fraction = nan");
    check_invalid([] { (void)LinearAnneal{}.at(kInf); }, "LinearAnneal: progress = inf");
    check_invalid([] { (void)CosineAnneal{.steps = -4}(0); }, "CosineAnneal: steps = -4");
    check_invalid([] { (void)CosineAnneal{.steps = 10, .floor = 2.0}(0); }, "CosineAnneal: floor = 2");
    check_invalid([] { (void)CosineAnneal{}.at(-kNan); }, "CosineAnneal: progress = ");
    check_invalid([] { (void)Schedule{.base_lr = -1e-3}.lr(0); }, "Schedule: base_lr = -0.001");
    check_invalid([] { (void)Schedule{.base_lr = kInf}.lr(0); }, "Schedule: base_lr = inf");
    check_invalid([] { (void)Schedule{.warmup_steps = -1}.lr(0); }, "Schedule: warmup_steps = -1");
    check_invalid([] { (void)Schedule{.anneal = CosineAnneal{.steps = 0}}.lr(0); }, "CosineAnneal: steps = 0");
}

TEST_CASE("train_step: TrainConfig's anneal sets the rate, and a bad one throws before the update") {
    FakeModel model;
    RecordingOptimizer opt;
    const xt::xtensor<double, 2> x = xt::zeros<double>({1, 2});
    const TrainConfig cfg{.lr = 0.1, .warmup = 2, .anneal = CosineAnneal{.steps = 5}};
    for (long step = 0; step < 5; ++step) {
        const StepReport r = train_step(model, opt, x, cfg, step);
        CHECK(r.lr == Schedule{0.1, 2, CosineAnneal{.steps = 5}}.lr(step));
        CHECK(opt.lr == r.lr);
    }
    CHECK(opt.lr == doctest::Approx(0.0).epsilon(kTol));  // the last step of the cosine, floor 0
    CHECK(train_step(model, opt, x, TrainConfig{.lr = 0.1, .warmup = 2}, 0).lr == LinearWarmup{0.1, 2}.lr(0));
    const int calls = opt.calls;
    check_invalid([&] { train_step(model, opt, x, TrainConfig{.anneal = LinearAnneal{.steps = 10, .fraction = 3}}, 0); },
                  "LinearAnneal: fraction = 3");
    check_invalid([&] { train_step(model, opt, x, TrainConfig{.anneal = CosineAnneal{}}, 0); }, "CosineAnneal: steps = 0");
    CHECK(opt.calls == calls);
}

}  // namespace unit_schedule
