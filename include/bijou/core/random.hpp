// bijou/core/random.hpp — the random stream bijou uses everywhere.
//
// std::mt19937_64 is fully specified by the standard; the distributions are our own (Box–Muller,
// 53-bit uniforms) because std::normal_distribution differs between standard libraries. A seeded
// Rng therefore gives the same numbers on every platform.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>

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

private:
    std::mt19937_64 engine_;
    double spare_ = 0.0;
    bool has_spare_ = false;
};

}  // namespace bijou
