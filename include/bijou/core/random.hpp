// bijou/core/random.hpp — the random stream bijou uses everywhere.
//
// std::mt19937_64 is fully specified by the standard; the distributions are our own (Box–Muller,
// 53-bit uniforms) because std::normal_distribution differs between standard libraries. A seeded
// Rng therefore gives the same numbers on every platform. normals(n, put) is n calls of normal() with
// the transforms spread across the threads (the sampling of an image flow draws 10⁵ at once).
// state()/set_state() save and restore the whole stream (engine and Box–Muller spare) as text, so a
// checkpointed run continues with exactly the numbers it would have drawn (io/checkpoint.hpp).
// CounterRng is the stateless kind: number k of a keyed stream, without the numbers before it.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <locale>
#include <numbers>
#include <random>
#include <sstream>
#include <string>

#include "bijou/core/error.hpp"
#include "bijou/core/parallel.hpp"

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
        const double u1 = nonzero_uniform(), u2 = uniform();
        double second = 0.0;
        const double first = box_muller(u1, u2, second);
        spare_ = second;
        has_spare_ = true;
        return first;
    }

    /// The next n values of normal(), the same numbers in the same order, as put(k, value) for k = 0,
    /// 1, …, n − 1. The uniforms are drawn on this thread in stream order; the Box–Muller transforms
    /// (log, square root, sine, cosine: most of the cost) of a long run go across the OpenMP threads
    /// (core/parallel.hpp), so put may be called from several threads at once, each k once. O(n).
    template <class Put>
    void normals(std::size_t n, Put&& put) {
        std::size_t k = 0;
        if (n > 0 && has_spare_) {
            has_spare_ = false;
            put(k++, spare_);
        }
        constexpr std::size_t block = 2048;  // pairs of uniforms drawn ahead (32 KiB of stack)
        double u[2 * block];
        while (n - k >= 2) {
            const std::size_t pairs = std::min(block, (n - k) / 2);
            for (std::size_t p = 0; p < pairs; ++p) {
                u[2 * p] = nonzero_uniform();
                u[2 * p + 1] = uniform();
            }
            detail::parallel_for(std::ptrdiff_t(pairs), pairs >= 256, [&](std::ptrdiff_t p) {
                double second = 0.0;
                put(k + 2 * std::size_t(p), box_muller(u[2 * p], u[2 * p + 1], second));
                put(k + 2 * std::size_t(p) + 1, second);
            });
            // normal() leaves the last pair's second in spare_ (consumed); state() writes it
            (void)box_muller(u[2 * pairs - 2], u[2 * pairs - 1], spare_);
            k += 2 * pairs;
        }
        if (k < n) put(k, normal());  // an odd last value: its pair's second becomes the spare
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
    /// uniform() redrawn while it is 0 (log 0).
    double nonzero_uniform() {
        double u = 0.0;
        while (u <= 0.0) u = uniform();
        return u;
    }
    /// The two normals of uniforms u1 > 0 and u2: returns r·cos a, `second` = r·sin a.
    static double box_muller(double u1, double u2, double& second) {
        const double r = std::sqrt(-2.0 * std::log(u1));
        const double a = 2.0 * std::numbers::pi * u2;
        second = r * std::sin(a);
        return r * std::cos(a);
    }

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
