// bijou/io/two_moons.hpp — the two-moons toy data set (scikit-learn's make_moons construction).
//
// n points in R²: the outer moon (cos t, sin t) and the inner moon (1 − cos t, ½ − sin t) with t on
// an even grid over [0, π] (n/2 rounded down outer, the rest inner), plus N(0, noise²) on each
// coordinate, then shuffled. Raw coordinates (no standardisation), as sklearn returns them.
// Deterministic for a given seed (bijou::Rng). O(n).
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <numeric>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "bijou/core/error.hpp"
#include "bijou/core/random.hpp"

namespace bijou {

template <class T = float>
xt::xtensor<T, 2> two_moons(int n, double noise, std::uint64_t seed) {
    if (n < 2) throw invalid_argument("two_moons: need at least 2 points (got " + std::to_string(n) + ")");
    if (!(noise >= 0.0) || !std::isfinite(noise)) throw invalid_argument("two_moons: noise must be finite and >= 0");
    Rng rng(seed);
    const int n_out = n / 2, n_in = n - n_out;
    std::vector<double> px(static_cast<std::size_t>(n)), py(static_cast<std::size_t>(n));
    auto grid = [](int i, int m) { return m > 1 ? std::numbers::pi * i / (m - 1) : 0.0; };
    for (int i = 0; i < n_out; ++i) {
        const double t = grid(i, n_out);
        px[std::size_t(i)] = std::cos(t);
        py[std::size_t(i)] = std::sin(t);
    }
    for (int i = 0; i < n_in; ++i) {
        const double t = grid(i, n_in);
        px[std::size_t(n_out + i)] = 1.0 - std::cos(t);
        py[std::size_t(n_out + i)] = 0.5 - std::sin(t);
    }
    std::vector<std::size_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), std::size_t(0));
    for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
    xt::xtensor<T, 2> x = xt::xtensor<T, 2>::from_shape({std::size_t(n), std::size_t(2)});
    for (std::size_t i = 0; i < std::size_t(n); ++i) {
        x(i, 0) = T(px[order[i]] + noise * rng.normal());
        x(i, 1) = T(py[order[i]] + noise * rng.normal());
    }
    return x;
}

}  // namespace bijou
