// examples/mnist_glow/metadata.hpp: the training state `mnist_glow train --resume` reads from a
// checkpoint's __metadata__ is parsed and range-checked before it is used. Forged metadata maps (a
// cursor past the training set, n_bits outside 1…8 — a negative shift —, negative counts, a non-finite
// lr or clip, text that is not a number) must throw bijou::io_error whose message names the file, the
// field, the bad value and the allowed range; a checkpoint the program wrote itself must parse.
#include <doctest/doctest.h>

#include <climits>
#include <cstdint>
#include <string>

#include <bijou/core/random.hpp>

#include "mnist_glow/metadata.hpp"

namespace unit_mnist_metadata {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using mnist_glow::Metadata;
using mnist_glow::ResumeState;

namespace {

/// The training metadata `mnist_glow train` writes (commands.hpp's save()), for a 2000-image run.
Metadata good_metadata() {
    return {{"train.step", "250"},       {"train.epoch", "2"},        {"train.cursor", "1984"},
            {"train.noise_rng", bijou::Rng(7).state()},  // written before 2026-12-03: ignored
            {"train.seed", "18446744073709551615"},
            {"train.n_bits", "5"},        {"train.batch", "16"},       {"train.lr", "0.005"},
            {"train.warmup", "500"},      {"train.clip", "50"},        {"train.optimizer", "adamax"},
            {"train.train_count", "2000"}, {"train.train_size", "2000"}, {"example", "mnist_glow"}};
}

Metadata with(Metadata m, const std::string& key, const std::string& value) {
    m[key] = value;
    return m;
}

/// resume_state() of `good_metadata()` with key = value must throw io_error naming the file, the field,
/// the value and (when given) the range.
void check_rejected(const std::string& key, const std::string& value, const std::string& range = "") {
    CAPTURE(key);
    CAPTURE(value);
    const Metadata m = with(good_metadata(), key, value);
    std::string what;
    try {
        (void)mnist_glow::resume_state(m, "forged.safetensors");
    } catch (const bijou::io_error& e) {
        what = e.what();
    }
    CAPTURE(what);
    REQUIRE_FALSE(what.empty());
    CHECK(what.starts_with("bijou: forged.safetensors: "));
    CHECK(what.find("'" + key + "'") != std::string::npos);
    CHECK(what.find("'" + value + "'") != std::string::npos);
    if (!range.empty()) CHECK(what.find(range) != std::string::npos);
    // And as the base class main() catches.
    CHECK_THROWS_AS((void)mnist_glow::resume_state(m, "forged.safetensors"), bijou::error);
}

}  // namespace

TEST_CASE("mnist_glow metadata: the training state a checkpoint was written with is read back") {
    const ResumeState s = mnist_glow::resume_state(good_metadata(), "ok.safetensors");
    CHECK(s.step == 250);
    CHECK(s.epoch == 2);
    CHECK(s.cursor == 1984);
    CHECK(s.train_count == 2000);
    CHECK(s.train_size == 2000);
    CHECK(s.n_bits == 5);
    CHECK(s.batch == 16);
    CHECK(s.warmup == 500);
    CHECK(s.seed == UINT64_MAX);
    CHECK(s.lr == 0.005);
    CHECK(s.clip == 50.0);
    CHECK(s.optimizer == "adamax");
    // The edges of each range are allowed: a cursor at the end of an epoch, 1 and 8 bits, clip 0
    // (off), train_size 0 (the whole set), a batch of the whole set.
    CHECK(mnist_glow::resume_state(with(good_metadata(), "train.cursor", "2000"), "f").cursor == 2000);
    CHECK(mnist_glow::resume_state(with(good_metadata(), "train.cursor", "0"), "f").cursor == 0);
    CHECK(mnist_glow::resume_state(with(good_metadata(), "train.n_bits", "1"), "f").n_bits == 1);
    CHECK(mnist_glow::resume_state(with(good_metadata(), "train.n_bits", "8"), "f").n_bits == 8);
    CHECK(mnist_glow::resume_state(with(good_metadata(), "train.clip", "0"), "f").clip == 0.0);
    CHECK(mnist_glow::resume_state(with(good_metadata(), "train.train_size", "0"), "f").train_size == 0);
    CHECK(mnist_glow::resume_state(with(good_metadata(), "train.batch", "2000"), "f").batch == 2000);
}

TEST_CASE("mnist_glow metadata: a cursor past the training set is rejected") {
    check_rejected("train.cursor", "2001", "[0, 2000]");
    check_rejected("train.cursor", "4294967296", "[0, 2000]");
    check_rejected("train.cursor", "-1", "[0, 2000]");
    check_rejected("train.cursor", "99999999999999999999999", "[0, 2000]");
    // Against a smaller set: the bound is train.train_count.
    Metadata m = with(with(good_metadata(), "train.train_count", "100"), "train.cursor", "101");
    CHECK_THROWS_WITH_AS((void)mnist_glow::resume_state(m, "f"), doctest::Contains("'train.cursor' = '101'"), bijou::io_error);
}

TEST_CASE("mnist_glow metadata: n_bits outside 1..8 is rejected (it is the shift 8 - n)") {
    for (const char* v : {"0", "9", "-3", "64", "2147483648", "eight", "8.0", ""}) check_rejected("train.n_bits", v, "[1, 8]");
    // eval, sample, interpolate and manipulate read it too (8 when absent).
    CHECK(mnist_glow::checkpoint_n_bits({}, "f") == 8);
    CHECK(mnist_glow::checkpoint_n_bits({{"train.n_bits", "3"}}, "f") == 3);
    CHECK_THROWS_WITH_AS(mnist_glow::checkpoint_n_bits({{"train.n_bits", "9"}}, "f"),
                         doctest::Contains("'train.n_bits' = '9' is out of range: it must be in [1, 8]"), bijou::io_error);
    CHECK_THROWS_WITH_AS(mnist_glow::checkpoint_n_bits({{"train.n_bits", "0"}}, "f"), doctest::Contains("train.n_bits"),
                         bijou::io_error);
}

TEST_CASE("mnist_glow metadata: negative or malformed step and epoch counts are rejected") {
    check_rejected("train.step", "-1", "[0, " + std::to_string(LONG_MAX) + "]");
    check_rejected("train.epoch", "-1", "[0, " + std::to_string(LONG_MAX) + "]");
    check_rejected("train.step", "12abc");
    check_rejected("train.epoch", " 2");
    check_rejected("train.step", "+5");
    check_rejected("train.epoch", "1e3");
}

TEST_CASE("mnist_glow metadata: the learning rate must be finite and positive and the clip finite and non-negative") {
    for (const char* v : {"0", "-0.001", "nan", "inf", "-inf"}) check_rejected("train.lr", v, "finite number > 0");
    check_rejected("train.lr", "fast");
    check_rejected("train.lr", "1e999");
    for (const char* v : {"-1", "nan", "inf"}) check_rejected("train.clip", v, "finite number >= 0");
    check_rejected("train.clip", "");
}

TEST_CASE("mnist_glow metadata: the other fields of the training state are checked too") {
    check_rejected("train.batch", "0", "[1, 2000]");
    check_rejected("train.batch", "2001", "[1, 2000]");
    check_rejected("train.warmup", "-5", "[0, 2147483647]");
    check_rejected("train.train_count", "0", "[1, 2000]");
    check_rejected("train.train_count", "2001", "[1, 2000]");
    check_rejected("train.train_size", "-1", "[0, 2147483647]");
    check_rejected("train.seed", "-1", "[0, 18446744073709551615]");  // std::stoull wrapped it to 2^64 - 1
    check_rejected("train.seed", "18446744073709551616", "[0, 18446744073709551615]");
    check_rejected("train.optimizer", "sgd", "adam or adamax");
    CHECK_NOTHROW((void)mnist_glow::resume_state(with(good_metadata(), "train.noise_rng", "1 2 3"), "f"));  // unused
    CHECK_THROWS_WITH_AS((void)mnist_glow::resume_state(with(good_metadata(), "train.seed", "-1"), "f"),
                         doctest::Contains("'train.seed' = '-1' is not a non-negative integer"), bijou::io_error);
    // A long value: the message shows its start and its length.
    CHECK_THROWS_WITH_AS((void)mnist_glow::resume_state(with(good_metadata(), "train.optimizer", std::string(5000, 'a')), "f"),
                         doctest::Contains("... (5000 characters)' is not an optimizer"), bijou::io_error);
    // A missing field names it.
    Metadata m = good_metadata();
    m.erase("train.cursor");
    CHECK_THROWS_WITH_AS((void)mnist_glow::resume_state(m, "f"), doctest::Contains("has no 'train.cursor'"), bijou::io_error);
}

}  // namespace unit_mnist_metadata
