// toy_density/toy_data.hpp — the 2-D toy densities of FFJORD (Grathwohl et al. 2019) and Neural Spline
// Flows (Durkan et al. 2019), generated from a seed with bijou::Rng (the same points on every platform).
//
//   moons         scikit-learn's two moons (t uniform on [0, π]) with noise 0.1, scaled by 2, shifted by (−1, −0.2)
//   circles       two concentric circles of radius 3 and 1.5 (uniform angles), noise N(0, 0.24²)
//   checkerboard  uniform on 8 squares of side 2 in [−4, 4]², alternating: total area 32, so the
//                 density is 1/32 there and its entropy is exactly ln 32 = 3.4657 nats
//   8gaussians    an equal mixture of 8 Gaussians, std 0.5/1.414, centres 4/1.414 · (cos kπ/4, sin kπ/4)
//   pinwheel      5 arms: radial N(1, 0.3²), tangential N(0, 0.1²), rotated by 2πk/5 + 0.25·exp(radial), ×2
//   2spirals      two interleaved spirals, r = √u·540°, jitter U(0, 0.5) per coordinate, /3, noise N(0, 0.1²)
// fill(name, p, rng) overwrites the rows of p with fresh points (training draws a new batch every
// step: the data are unlimited, as in both papers); make(name, n, seed) returns n of them. toy_names
// lists the sets in the order the README's grid shows them. O(n).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <bijou/core/error.hpp>
#include <bijou/core/random.hpp>

namespace toy {

using Points = xt::xtensor<float, 2>;

inline const std::vector<std::string> toy_names{"moons", "circles", "checkerboard", "8gaussians", "pinwheel", "2spirals"};

/// The entropy of the checkerboard density (nats): no model's expected NLL can be lower.
inline const double checkerboard_entropy = std::log(32.0);

/// log p(x) of the 8-Gaussian mixture (its entropy is estimated from it by Monte Carlo).
inline double eight_gaussians_log_density(double x, double y) {
    const double s = 0.5 / 1.414, r = 4.0 / 1.414;
    double m = -1e300, acc = 0.0;
    double lp[8];
    for (int k = 0; k < 8; ++k) {
        const double a = k * std::numbers::pi / 4;
        const double dx = x - r * std::cos(a), dy = y - r * std::sin(a);
        lp[k] = -(dx * dx + dy * dy) / (2 * s * s) - std::log(2 * std::numbers::pi * s * s) - std::log(8.0);
        m = std::max(m, lp[k]);
    }
    for (double v : lp) acc += std::exp(v - m);
    return m + std::log(acc);
}

/// Overwrites every row of p (n, 2) with a fresh point of data set `name` drawn from rng.
inline void fill(const std::string& name, Points& p, bijou::Rng& rng) {
    const double pi = std::numbers::pi;
    const int n = int(p.shape(0));
    auto set = [&](int i, double x, double y) { p(std::size_t(i), 0) = float(x), p(std::size_t(i), 1) = float(y); };
    if (name == "moons") {
        for (int i = 0; i < n; ++i) {
            const double t = pi * rng.uniform();
            const bool outer = rng.below(2) == 0;
            const double x = outer ? std::cos(t) : 1 - std::cos(t), y = outer ? std::sin(t) : 0.5 - std::sin(t);
            set(i, 2 * (x + 0.1 * rng.normal()) - 1, 2 * (y + 0.1 * rng.normal()) - 0.2);
        }
    } else if (name == "circles") {
        for (int i = 0; i < n; ++i) {
            const double r = rng.below(2) == 0 ? 3.0 : 1.5, a = 2 * pi * rng.uniform();
            set(i, r * std::cos(a) + 0.24 * rng.normal(), r * std::sin(a) + 0.24 * rng.normal());
        }
    } else if (name == "checkerboard") {
        for (int i = 0; i < n; ++i) {
            const double x1 = rng.uniform() * 4 - 2;
            const double x2 = rng.uniform() - 2.0 * double(rng.below(2)) + std::fmod(std::floor(x1) + 4.0, 2.0);
            set(i, 2 * x1, 2 * x2);
        }
    } else if (name == "8gaussians") {
        const double s = 0.5 / 1.414, r = 4.0 / 1.414;
        for (int i = 0; i < n; ++i) {
            const double a = double(rng.below(8)) * pi / 4;
            set(i, r * std::cos(a) + s * rng.normal(), r * std::sin(a) + s * rng.normal());
        }
    } else if (name == "pinwheel") {
        for (int i = 0; i < n; ++i) {
            const double f0 = 1.0 + 0.3 * rng.normal(), f1 = 0.1 * rng.normal();
            const double a = 2 * pi * double(rng.below(5)) / 5 + 0.25 * std::exp(f0);
            set(i, 2 * (f0 * std::cos(a) - f1 * std::sin(a)), 2 * (f0 * std::sin(a) + f1 * std::cos(a)));
        }
    } else if (name == "2spirals") {
        for (int i = 0; i < n; ++i) {
            const double t = std::sqrt(rng.uniform()) * 540 * 2 * pi / 360;
            const double sign = rng.below(2) == 0 ? 1.0 : -1.0;
            const double x = -std::cos(t) * t + rng.uniform() * 0.5, y = std::sin(t) * t + rng.uniform() * 0.5;
            set(i, sign * x / 3 + 0.1 * rng.normal(), sign * y / 3 + 0.1 * rng.normal());
        }
    } else {
        std::string all;
        for (const auto& t : toy_names) all += (all.empty() ? "" : ", ") + t;
        throw bijou::invalid_argument("toy data: unknown data set '" + name + "' (one of " + all + ")");
    }
}

/// n fresh points of data set `name` from seed.
inline Points make(const std::string& name, int n, std::uint64_t seed) {
    if (n < 1) throw bijou::invalid_argument("toy data: need at least 1 point (got " + std::to_string(n) + ")");
    Points p = Points::from_shape({std::size_t(n), 2});
    bijou::Rng rng(seed);
    fill(name, p, rng);
    return p;
}

}  // namespace toy
