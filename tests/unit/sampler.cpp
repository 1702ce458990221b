// EpochSampler and gather_rows: every epoch is a permutation, the order depends only on (seed, epoch),
// both orders are the ones the examples drew by hand before (so their results do not change), a
// sampler rebuilt from state() continues identically, and batches of any rank and element type.
// (That gathering allocates nothing is checked by tests/alloc, which can count allocations.)
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include <bijou/train/sampler.hpp>

namespace unit_sampler {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

std::vector<std::size_t> as_vector(std::span<const std::size_t> s) { return {s.begin(), s.end()}; }

bool is_permutation_of_iota(std::vector<std::size_t> v) {
    std::sort(v.begin(), v.end());
    for (std::size_t i = 0; i < v.size(); ++i)
        if (v[i] != i) return false;
    return true;
}

/// The next k indices of a sampler.
std::vector<std::size_t> take(EpochSampler& s, std::size_t k) {
    std::vector<std::size_t> v(k);
    for (auto& i : v) i = s.next();
    return v;
}

/// examples/mnist_glow's epoch order before the sampler, verbatim: its checkpoints resume with it.
std::vector<std::size_t> mnist_glow_epoch_order(std::size_t n, std::uint64_t seed, long epoch) {
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    Rng rng(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull * std::uint64_t(epoch + 1));
    for (std::size_t k = n - 1; k > 0; --k) std::swap(order[k], order[rng.below(k + 1)]);
    return order;
}

/// examples/two_moons' index stream before the sampler, verbatim: one Rng, each epoch reshuffling the last.
std::vector<std::size_t> two_moons_stream(std::size_t n, std::uint64_t seed, std::size_t count) {
    Rng rng(seed);
    std::vector<std::size_t> order(n), out;
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::size_t cursor = order.size();
    while (out.size() < count) {
        if (cursor == order.size()) {
            for (std::size_t k = order.size() - 1; k > 0; --k) std::swap(order[k], order[rng.below(k + 1)]);
            cursor = 0;
        }
        out.push_back(order[cursor++]);
    }
    return out;
}

}  // namespace

TEST_CASE("EpochSampler: every epoch visits each index once, for both orders") {
    for (EpochOrder kind : {EpochOrder::keyed, EpochOrder::continued})
        for (std::size_t n : {1, 2, 7, 1000}) {
            EpochSampler s(n, {.seed = 5}, kind);
            CHECK(s.size() == n);
            for (long e = 0; e < 4; ++e) {
                const auto epoch = take(s, n);
                CHECK(is_permutation_of_iota(epoch));
                CHECK(epoch == as_vector(s.order()));
                CHECK(s.epoch() == e);  // the next epoch starts lazily, at the next index
                CHECK(s.cursor() == n);
            }
        }
}

TEST_CASE("EpochSampler: the order depends only on (seed, epoch)") {
    const std::size_t n = 500;
    for (EpochOrder kind : {EpochOrder::keyed, EpochOrder::continued}) {
        const auto at = [&](std::uint64_t seed, long epoch) {
            return as_vector(EpochSampler(n, {.seed = seed, .epoch = epoch}, kind).order());
        };
        CHECK(at(3, 2) == at(3, 2));
        CHECK(at(3, 2) != at(3, 1));
        CHECK(at(3, 2) != at(4, 2));
        EpochSampler walked(n, {.seed = 3}, kind);  // walking there gives the same epochs as starting there
        for (long e = 0; e < 3; ++e) {
            take(walked, n);
            CHECK(walked.epoch() == e);
            CHECK(as_vector(walked.order()) == at(3, e));
        }
    }
}

TEST_CASE("EpochSampler: keyed is mnist_glow's order and continued is two_moons', bit for bit") {
    for (std::uint64_t seed : {0ull, 7ull, 123456789ull})
        for (long epoch : {0L, 1L, 5L})
            CHECK(as_vector(EpochSampler(777, {.seed = seed, .epoch = epoch}).order()) ==
                  mnist_glow_epoch_order(777, seed, epoch));
    const std::size_t n = 300, count = 4 * n + 17;  // across four epoch boundaries
    EpochSampler s(n, {.seed = 17}, EpochOrder::continued);
    CHECK(take(s, count) == two_moons_stream(n, 17, count));
}

TEST_CASE("EpochSampler: a sampler rebuilt from state() continues identically") {
    const std::size_t n = 97;
    for (EpochOrder kind : {EpochOrder::keyed, EpochOrder::continued})
        for (std::size_t first : {std::size_t(0), std::size_t(1), std::size_t(50), n, 3 * n + 40}) {
            EpochSampler one(n, {.seed = 11}, kind), two(n, {.seed = 11}, kind);
            take(one, first), take(two, first);
            const SamplerState saved = two.state();
            CHECK(saved.seed == 11);
            CHECK(saved.epoch == long(first == n ? 0 : first / n));  // cursor == n: the epoch is not over yet
            CHECK(saved.cursor == (first == n ? n : first % n));
            EpochSampler resumed(n, saved, kind);
            CHECK(take(resumed, 4 * n) == take(one, 4 * n));
        }
}

TEST_CASE("EpochSampler::next_batch: uint8 images and float vectors, batches across an epoch boundary") {
    const std::size_t n = 10;
    xt::xtensor<std::uint8_t, 4> images = xt::xtensor<std::uint8_t, 4>::from_shape({n, 1, 2, 3});
    for (std::size_t k = 0; k < images.size(); ++k) images.data()[k] = std::uint8_t(k % 251);
    xt::xtensor<float, 2> vectors = xt::xtensor<float, 2>::from_shape({n, 2});
    for (std::size_t i = 0; i < n; ++i) vectors(i, 0) = float(i), vectors(i, 1) = -float(i);

    EpochSampler s(n, {.seed = 2}), ref(n, {.seed = 2});
    auto batch = xt::xtensor<std::uint8_t, 4>::from_shape({4, 1, 2, 3});
    for (int b = 0; b < 5; ++b) {  // 20 rows: two epochs; batch 3 straddles the boundary
        s.next_batch(images, batch);
        for (std::size_t i = 0; i < 4; ++i) {
            const std::size_t j = ref.next();
            CHECK(std::equal(batch.data() + i * 6, batch.data() + i * 6 + 6, images.data() + j * 6));
        }
    }
    CHECK(s.state().epoch == ref.state().epoch);
    CHECK(s.state().cursor == ref.state().cursor);

    auto vb = xt::xtensor<float, 2>::from_shape({3, 2});
    s.next_batch(vectors, vb);
    for (std::size_t i = 0; i < 3; ++i) {
        const std::size_t j = ref.next();
        CHECK(vb(i, 0) == float(j));
        CHECK(vb(i, 1) == -float(j));
    }
}

TEST_CASE("gather_rows: out[k] = data[indices[k]]") {
    xt::xtensor<double, 3> data = xt::xtensor<double, 3>::from_shape({5, 2, 2});
    std::iota(data.begin(), data.end(), 0.0);
    auto out = xt::xtensor<double, 3>::from_shape({3, 2, 2});
    const std::vector<std::size_t> idx{4, 0, 4};
    gather_rows(data, std::span<const std::size_t>(idx), out);
    CHECK(out(0, 1, 1) == 19.0);
    CHECK(out(1, 0, 0) == 0.0);
    CHECK(out(2, 0, 1) == 17.0);
}

TEST_CASE("EpochSampler and gather_rows: bad arguments throw bijou errors naming the values") {
    auto message = [](auto&& f) -> std::string {
        try {
            f();
        } catch (const error& e) {
            return e.what();
        }
        return "no exception";
    };
    CHECK(message([] { (void)EpochSampler(0); }).find("n = 0") != std::string::npos);
    CHECK(message([] { (void)EpochSampler(5, {.epoch = -1}); }).find("epoch = -1") != std::string::npos);
    CHECK(message([] { (void)EpochSampler(5, {.cursor = 6}); }).find("cursor = 6 is past the end of an epoch of 5") !=
          std::string::npos);
    CHECK_NOTHROW(EpochSampler(5, {.cursor = 5}));
    CHECK_THROWS_AS(EpochSampler(0), invalid_argument);

    EpochSampler s(4);
    const auto data = xt::xtensor<float, 4>::from_shape({4, 1, 2, 2});
    auto wrong_row = xt::xtensor<float, 4>::from_shape({2, 1, 2, 3});
    CHECK_THROWS_AS(s.next_batch(data, wrong_row), shape_error);
    CHECK(message([&] { s.next_batch(data, wrong_row); }).find("data (4, 1, 2, 2) and batch (2, 1, 2, 3)") !=
          std::string::npos);
    const auto other_n = xt::xtensor<float, 4>::from_shape({6, 1, 2, 2});
    auto batch = xt::xtensor<float, 4>::from_shape({2, 1, 2, 2});
    CHECK(message([&] { s.next_batch(other_n, batch); }).find("6 rows, but the sampler was built for 4") !=
          std::string::npos);
    CHECK(s.cursor() == 0);  // nothing was drawn

    const std::vector<std::size_t> bad{1, 4};
    CHECK(message([&] { gather_rows(data, std::span<const std::size_t>(bad), batch); })
              .find("index 4 (entry 1) is outside the data's 4 rows") != std::string::npos);
    const std::vector<std::size_t> three{0, 1, 2};
    CHECK_THROWS_AS(gather_rows(data, std::span<const std::size_t>(three), batch), shape_error);
}

}  // namespace unit_sampler
