// examples/mnist_glow/metadata.hpp — reading a checkpoint's __metadata__ strictly: its numbers, and the
// training state that `train --resume` continues from (ResumeState).
//
// A checkpoint is a file a user can edit, truncate or forge, and the training state is used as array
// indices and shift counts (train.cursor indexes the epoch's order, train.n_bits is the shift
// x >> (8 − n)). So every field is parsed and range-checked here, before any of it is used, and a bad
// one throws bijou::io_error naming the file, the field, its value and the allowed range; main prints
// it and exits 1. Numbers are read with std::from_chars over the whole text: no spaces, no '+', no
// '-' for an unsigned field, no values that do not fit the field's type (std::stoull would have
// wrapped "-1" to 2⁶⁴ − 1, and an int field read through long would have been truncated).
// Kept apart from commands.hpp (and free of the models) so that tests/unit/mnist_metadata.cpp can
// test it cheaply.
#pragma once

#include <charconv>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>

#include <bijou/core/error.hpp>
#include <bijou/core/random.hpp>

#include "mnist_glow/app.hpp"

namespace mnist_glow {

/// The value of `key`; io_error if the checkpoint has none.
inline std::string meta_get(const Metadata& m, const std::string& key, const std::string& file) {
    const auto it = m.find(key);
    if (it == m.end()) throw bijou::io_error(file + ": __metadata__ has no '" + key + "' (not written by mnist_glow?)");
    return it->second;
}

namespace detail {

/// The value shown in a message: a long one (an Rng state) is cut.
inline std::string shown(const std::string& v) {
    return v.size() <= 64 ? v : v.substr(0, 48) + "... (" + std::to_string(v.size()) + " characters)";
}

[[noreturn]] inline void bad_field(const std::string& file, const std::string& key, const std::string& value,
                                   const std::string& why) {
    throw bijou::io_error(file + ": __metadata__ '" + key + "' = '" + shown(value) + "' " + why);
}

template <class V>
std::string range_str(V lo, V hi) {
    // Appended, not "[" + std::to_string(lo) + …: GCC 12 gives a false -Wrestrict for a literal
    // prepended to a temporary string (GCC bug 105329).
    std::string r("[");
    r += std::to_string(lo);
    r += ", ";
    r += std::to_string(hi);
    r += ']';
    return r;
}

/// std::from_chars over the whole of `s`.
template <class V>
std::errc parse_whole(const std::string& s, V& v) {
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc()) return r.ec;
    return r.ptr == s.data() + s.size() && !s.empty() ? std::errc() : std::errc::invalid_argument;
}

}  // namespace detail

/// The value of `key` as a number of type V: the whole text, as std::from_chars reads it; io_error if
/// it is missing, is not such a number or does not fit V.
template <class V>
V meta_number(const Metadata& m, const std::string& key, const std::string& file) {
    static_assert(std::is_arithmetic_v<V> && !std::is_same_v<V, bool>);
    const std::string s = meta_get(m, key, file);
    V v{};
    const std::errc ec = detail::parse_whole(s, v);
    if (ec == std::errc()) return v;
    if constexpr (std::is_floating_point_v<V>) {
        detail::bad_field(file, key, s, ec == std::errc::result_out_of_range ? "is beyond the range of a double" : "is not a number");
    } else {
        const std::string range = "it must be in " + detail::range_str(std::numeric_limits<V>::min(), std::numeric_limits<V>::max());
        detail::bad_field(file, key, s,
                          ec == std::errc::result_out_of_range
                              ? "is out of range: " + range
                              : (std::is_unsigned_v<V> ? "is not a non-negative integer: " : "is not an integer: ") + range);
    }
}

/// The value of `key` as an integer lo ≤ v ≤ hi; io_error naming the range otherwise (also when the
/// text is not an integer of type V). `what` explains the bounds (e.g. "0 to train.train_count").
template <class V>
V meta_integer_in(const Metadata& m, const std::string& key, const std::string& file, V lo, V hi,
                  const std::string& what = "") {
    static_assert(std::is_integral_v<V> && !std::is_same_v<V, bool>);
    const std::string s = meta_get(m, key, file);
    const std::string range = "it must be in " + detail::range_str(lo, hi) + (what.empty() ? "" : " (" + what + ")");
    V v{};
    const std::errc ec = detail::parse_whole(s, v);
    if (ec == std::errc() && lo <= v && v <= hi) return v;
    detail::bad_field(file, key, s,
                      ec == std::errc() || ec == std::errc::result_out_of_range
                          ? "is out of range: " + range
                          : (std::is_unsigned_v<V> ? "is not a non-negative integer: " : "is not an integer: ") + range);
}

/// Bits per pixel a model sees: x >> (8 − n) needs 1 ≤ n ≤ 8.
inline constexpr int min_n_bits = 1, max_n_bits = 8;

/// train.n_bits of a checkpoint, checked; 8 for a checkpoint without it (eval, sample, … of a model
/// that was not trained by mnist_glow).
inline int checkpoint_n_bits(const Metadata& m, const std::string& file) {
    if (!m.count("train.n_bits")) return 8;
    return meta_integer_in<int>(m, "train.n_bits", file, min_n_bits, max_n_bits, "bits per pixel");
}

/// The training state of a checkpoint written by `mnist_glow train`, every field checked.
struct ResumeState {
    long step = 0;            // train.step: optimizer steps taken, ≥ 0
    long epoch = 0;           // train.epoch: epochs completed, ≥ 0
    std::size_t cursor = 0;   // train.cursor: position in the epoch's order, ≤ train_count
    int train_count = 0;      // train.train_count: training images the run used, ≥ 1
    int train_size = 0;       // train.train_size: --train-size (0: the whole set), ≥ train_count if > 0
    int n_bits = 8;           // train.n_bits: 1 … 8
    int batch = 0;            // train.batch: 1 … train_count
    int warmup = 0;           // train.warmup: ≥ 0
    std::uint64_t seed = 0;   // train.seed
    double lr = 0.0;          // train.lr: finite, > 0
    double clip = 0.0;        // train.clip: finite, ≥ 0 (0: off)
    std::string optimizer;    // train.optimizer: adam | adamax
    // The dequantisation noise is keyed by (seed, step, image) (commands.hpp): no state to resume.
    // train.noise_rng, which checkpoints written before 2026-12-03 hold, is ignored.
};

/// Parses and checks the training state in `m` (from `file`); throws bijou::io_error naming the field,
/// its value and the allowed range for the first bad one. The training data's size is checked against
/// train_count by the caller once the data is loaded, before the state is used.
inline ResumeState resume_state(const Metadata& m, const std::string& file) {
    ResumeState s;
    s.train_size = meta_integer_in<int>(m, "train.train_size", file, 0, INT_MAX, "0: the whole training set");
    s.train_count = meta_integer_in<int>(m, "train.train_count", file, 1, s.train_size > 0 ? s.train_size : INT_MAX,
                                         s.train_size > 0 ? "1 to train.train_size" : "at least one image");
    s.cursor = meta_integer_in<std::size_t>(m, "train.cursor", file, 0, std::size_t(s.train_count),
                                            "0 to train.train_count, the images in an epoch");
    s.epoch = meta_integer_in<long>(m, "train.epoch", file, 0, LONG_MAX, "epochs completed");
    s.step = meta_integer_in<long>(m, "train.step", file, 0, LONG_MAX, "steps taken");
    s.n_bits = meta_integer_in<int>(m, "train.n_bits", file, min_n_bits, max_n_bits, "bits per pixel");
    s.batch = meta_integer_in<int>(m, "train.batch", file, 1, s.train_count, "1 to train.train_count");
    s.warmup = meta_integer_in<int>(m, "train.warmup", file, 0, INT_MAX, "warm-up steps");
    s.seed = meta_integer_in<std::uint64_t>(m, "train.seed", file, 0, UINT64_MAX);
    s.lr = meta_number<double>(m, "train.lr", file);
    if (!std::isfinite(s.lr) || s.lr <= 0)
        detail::bad_field(file, "train.lr", meta_get(m, "train.lr", file), "is out of range: it must be a finite number > 0");
    s.clip = meta_number<double>(m, "train.clip", file);
    if (!std::isfinite(s.clip) || s.clip < 0)
        detail::bad_field(file, "train.clip", meta_get(m, "train.clip", file),
                          "is out of range: it must be a finite number >= 0 (0: off)");
    s.optimizer = meta_get(m, "train.optimizer", file);
    if (s.optimizer != "adam" && s.optimizer != "adamax")
        detail::bad_field(file, "train.optimizer", s.optimizer, "is not an optimizer mnist_glow knows (adam or adamax)");
    return s;
}

}  // namespace mnist_glow
