// Data-parallel training is one-process training: N ranks (mpiexec -n 1, 2, 3) on the shards of a
// global batch reproduce, up to the order of float additions, one process trained on the whole batch
// (which every rank also computes here, as the reference). Global batches of 13 rows, so the shards
// are uneven (7 + 6, 5 + 4 + 4) and the weighting by shard size is exercised; a clip threshold low
// enough to act, so the global gradient norm is what clipping uses; ActNorm initialised from the
// shards of a global initialisation batch; parameters broadcast from rank 0 after the other ranks'
// were perturbed. Tolerance: 2e-5 on every parameter after 20 Adam steps (lr 1e-3; measured
// differences are ~1e-7, docs/distributed.md); one rank: identical to the bit.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include <bijou/bijou.hpp>
#include <bijou/distributed/data_parallel.hpp>

#include "world.hpp"

using namespace bijou;
using bijou::distributed::DataParallel;

namespace {

constexpr int global_batch = 13, init_batch = 12, steps = 20;
constexpr double tolerance = 2e-5;

/// Step s's global batch (or the initialisation batch, s = −1): the same on every rank.
template <class Model>
typename Model::data_tensor batch_at(int s, int rows) {
    Rng rng(1000 + std::uint64_t(s + 1));
    auto x = make_batch<float, typename Model::in_shape>(rows);
    for (std::size_t k = 0; k < x.size(); ++k)
        x.data()[k] = float(0.3 * std::sin(0.1 * double(k % 97)) + 0.2 * (rng.uniform() - 0.5));
    return x;
}

template <class Tensor>
Tensor rows_of(const Tensor& x, distributed::Shard s) {
    auto shape = x.shape();
    shape[0] = std::size_t(s.size());
    Tensor r = Tensor::from_shape(shape);
    const std::size_t row = x.size() / x.shape()[0];
    std::copy_n(x.data() + std::size_t(s.begin) * row, r.size(), r.data());
    return r;
}

struct Outcome {
    double max_diff = 0.0;  // against the one-process run
    int clipped = 0;        // steps whose global norm was above the clip threshold
    double norm_diff = 0.0; // |global norm − one-process norm|, largest over the steps
};

/// Trains `Model` 20 steps both ways; returns how far apart the parameters are.
template <class Model>
Outcome train_both(const Options& o, double clip, bool initialize) {
    auto& world = bijou_test::world();
    DataParallel dp(world);
    const TrainConfig cfg{.lr = 1e-3, .warmup = 0, .clip = clip};

    Model one(o);  // the reference: one process, the whole batch
    Adam<float> opt_one(one.parameter_count());
    if (initialize) one.initialize(batch_at<Model>(-1, init_batch));

    Model many(o);
    if (dp.rank() != 0)  // a different start on the other ranks: broadcast_parameters must undo it
        for (auto& v : many.parameters()) v += 0.01f * float(dp.rank());
    dp.broadcast_parameters(many);
    if (initialize) dp.initialize(many, rows_of(batch_at<Model>(-1, init_batch), dp.shard(init_batch)));
    Adam<float> opt_many(many.parameter_count());

    Outcome out;
    for (int s = 0; s < steps; ++s) {
        const auto x = batch_at<Model>(s, global_batch);
        const auto r1 = train_step(one, opt_one, x, cfg, s);
        const auto rn = dp.train_step(many, opt_many, rows_of(x, dp.shard(global_batch)), global_batch, cfg, s);
        out.clipped += rn.grad_norm > clip;
        out.norm_diff = std::max(out.norm_diff, std::abs(rn.grad_norm - r1.grad_norm) / r1.grad_norm);
        CHECK(rn.loss == doctest::Approx(r1.loss).epsilon(1e-5));
        CHECK_FALSE(rn.skipped);
    }
    dp.check_in_sync(many);  // every rank holds rank 0's parameters, bit for bit
    const auto a = one.parameters(), b = many.parameters();
    for (std::size_t k = 0; k < a.size(); ++k) out.max_diff = std::max(out.max_diff, std::abs(double(a[k]) - double(b[k])));
    return out;
}

void report(const char* what, const Outcome& o) {
    auto& world = bijou_test::world();
    if (world.rank() == 0)
        std::printf("%s on %d rank%s: largest parameter difference to one process %.3g after %d steps "
                    "(%d clipped; gradient norms agree to %.2g)\n",
                    what, world.size(), world.size() == 1 ? "" : "s", o.max_diff, steps, o.clipped, o.norm_diff);
    if (world.size() == 1) CHECK(o.max_diff == 0.0);  // nothing is reduced: the same computation
    CHECK(o.max_diff <= tolerance);
    CHECK(o.clipped > 0);
}

}  // namespace

TEST_CASE("DataParallel: Glow on N ranks equals Glow on one process (ActNorm init and uneven shards and clipping)") {
    using Model = Glow<Shape<1, 8, 8>, 2>;
    const Outcome o = train_both<Model>({.steps_per_level = 2, .hidden = 16, .seed = 5}, 40.0, true);
    report("Glow<Shape<1, 8, 8>, 2>", o);
}

TEST_CASE("DataParallel: RealNVP on 2-D vectors on N ranks equals one process") {
    using Model = RealNVP<Shape<2>>;
    const Outcome o = train_both<Model>({.steps_per_level = 4, .hidden = 32, .seed = 7}, 1.0, false);
    report("RealNVP<Shape<2>>", o);
}

TEST_CASE("DataParallel: shards cover the batch and check_in_sync sees a diverged rank") {
    auto& world = bijou_test::world();
    DataParallel dp(world);
    // Shards: contiguous, in rank order, sizes differing by at most one, covering all rows.
    for (int n : {world.size(), 13, 64, 100}) {
        const auto s = dp.shard(n);
        double rows = s.size(), first = s.begin;
        world.allreduce_sum(&rows, 1);
        world.allreduce_sum(&first, 1);
        CHECK(rows == n);
        CHECK(s.size() >= n / world.size());
        CHECK(s.size() <= n / world.size() + 1);
    }
    if (world.size() > 1) CHECK_THROWS_AS((void)dp.shard(world.size() - 1), invalid_argument);

    using Model = RealNVP<Shape<2>>;
    Model m({.steps_per_level = 2, .hidden = 8, .seed = 1});
    dp.broadcast_parameters(m);
    CHECK_NOTHROW(dp.check_in_sync(m));
    if (world.size() > 1) {
        if (world.rank() == world.size() - 1) m.parameters()[3] += 1e-6f;
        CHECK_THROWS_WITH_AS(dp.check_in_sync(m), doctest::Contains("differ from rank 0's"), distributed_error);
    }
    // Every rank throws (none is left waiting) when the ranks disagree about the global batch size,
    // when the shards do not add up to it, or when a shard of the initialisation batch is too small.
    if (world.size() > 1) {
        Model a({.steps_per_level = 2, .hidden = 8, .seed = 1});
        Adam<float> opt(a.parameter_count());
        auto x = make_batch<float, Shape<2>>(2);
        for (auto& v : x) v = 0.1f;
        CHECK_THROWS_WITH_AS((void)dp.train_step(a, opt, x, 3 * world.size(), TrainConfig{}, 0),
                             doctest::Contains("rows in all, not the global batch of"), distributed_error);
        const int g = 2 * world.size() + (world.rank() == 0 ? 1 : 0);
        CHECK_THROWS_WITH_AS((void)dp.train_step(a, opt, x, g, TrainConfig{}, 0),
                             doctest::Contains("pass different global batch sizes"), distributed_error);
        auto one = make_batch<float, Shape<2>>(world.rank() == 1 ? 1 : 3);
        for (auto& v : one) v = 0.2f;
        CHECK_THROWS_WITH_AS(dp.initialize(a, one), doctest::Contains("hold fewer than 2 rows"), invalid_argument);
        // A rank with no rows adds nothing: the step is that of the other ranks' rows.
        auto part = make_batch<float, Shape<2>>(world.rank() == 0 ? 0 : 2);
        for (auto& v : part) v = 0.3f;
        const auto r = dp.train_step(a, opt, part, 2 * (world.size() - 1), TrainConfig{}, 1);
        CHECK(std::isfinite(r.loss));
        CHECK_FALSE(r.skipped);
        CHECK_NOTHROW(dp.check_in_sync(a));
    }
}
