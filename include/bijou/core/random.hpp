// bijou/core/random.hpp — the random stream bijou uses everywhere.
//
// std::mt19937_64 is fully specified by the standard; the distributions are our own (Box–Muller,
// 53-bit uniforms) because std::normal_distribution differs between standard libraries. A seeded
// Rng therefore gives the same numbers on every platform.
// state()/set_state() save and restore the whole stream (engine and Box–Muller spare) as text, so a
// checkpointed run continues with exactly the numbers it would have drawn (io/checkpoint.hpp).
// CounterRng is the stateless kind: number k of a keyed stream, without the numbers before it.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <locale>
#include <numbers>
#include <random>
#include <sstream>
#include <string>

#include "bijou/core/error.hpp"

namespace bijou {

class Rng {
public:
    explicit Rng(std::uint64_t seed = 0) : engine_(seed) {}

    /// Uniform in [0, 1).
    double uniform() { return double(engine_() >> 11) * 0x1.0p-53; }

    /// Standard normal (Box–Muller, both values used).
    double normal() {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        double u1 = 0.0;
        while (u1 <= 0.0) u1 = uniform();
        const double u2 = uniform();
        const double r = std::sqrt(-2.0 * std::log(u1));
        const double a = 2.0 * std::numbers::pi * u2;
        spare_ = r * std::sin(a);
        has_spare_ = true;
        return r * std::cos(a);
    }

    /// Uniform integer in [0, n).
    std::uint64_t below(std::uint64_t n) { return std::uint64_t(uniform() * double(n)) % n; }

    std::uint64_t next_u64() { return engine_(); }

    std::mt19937_64& engine() { return engine_; }

    /// The whole state as text: the engine's words (std::mt19937_64's standard text form), then
    /// whether a Box–Muller value is pending and its bits. set_state(state()) resumes the stream
    /// exactly, on any platform.
    std::string state() const {
        std::ostringstream os;
        os.imbue(std::locale::classic());
        os << engine_ << ' ' << (has_spare_ ? 1 : 0) << ' ' << std::bit_cast<std::uint64_t>(spare_);
        return os.str();
    }

    /// Restores a state() string; anything else throws bijou::invalid_argument and leaves the Rng as it was.
    void set_state(const std::string& s) {
        std::istringstream is(s);
        is.imbue(std::locale::classic());
        std::mt19937_64 e;
        int has = -1;
        std::uint64_t bits = 0;
        is >> e >> has >> bits;
        if (!is || (has != 0 && has != 1) || !(is >> std::ws).eof())
            throw invalid_argument("Rng::set_state: not a string from Rng::state() (" + std::to_string(s.size()) +
                                   " characters)");
        engine_ = e;
        has_spare_ = has == 1;
        spare_ = std::bit_cast<double>(bits);
    }

private:
    std::mt19937_64 engine_;
    double spare_ = 0.0;
    bool has_spare_ = false;
};

namespace detail {

/// Seed of the k-th element of a kind that draws at construction (a Permute's shuffle, a MADE's
/// order): splitmix64 of (seed, k), so neighbouring seeds and indices give unrelated streams.
inline std::uint64_t indexed_seed(std::uint64_t seed, int k) {
    std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (std::uint64_t(k) + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

}  // namespace detail

/// A counter-based stream: number k of stream `key` is a pure function of (key, k) (SplitMix64's
/// output function applied to key + (k + 1)·γ, γ the 64-bit golden ratio), so any part of a stream,
/// or one stream of many, is drawn without drawing the others. Data-parallel training keys the
/// dequantisation noise of image j of step s by (seed, s, j): a process draws only its images' noise
/// and each image gets the same noise on any process (ImageFlow::dequantize_keyed). uniform() as
/// Rng's (53 bits). Not for Box–Muller or anything needing Rng's saved state: it has no state but k.
class CounterRng {
public:
    explicit CounterRng(std::uint64_t key, std::uint64_t counter = 0) : key_(key), counter_(counter) {}

    std::uint64_t next_u64() { return mix(key_ + (++counter_) * 0x9E3779B97F4A7C15ull); }
    /// Uniform in [0, 1).
    double uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }

    /// A stream key from three integers (each mixed in turn: key(a, b, c) ≠ key(b, a, c)).
    static std::uint64_t key(std::uint64_t a, std::uint64_t b, std::uint64_t c) {
        return mix((mix(mix(a + 0x9E3779B97F4A7C15ull) ^ b) + 0x632BE59BD9B4E019ull) ^ c);
    }

private:
    static std::uint64_t mix(std::uint64_t z) {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    std::uint64_t key_, counter_;
};

}  // namespace bijou
