// bijou/distributions/standard_normal.hpp — the standard normal base N(0, I).
//
// Recipe `StandardNormal`, bound to any event shape S with D = S::size values:
//   log p(z) = −½‖z‖² − (D/2)·log 2π;  sample: z = temperature·ε, ε ~ N(0, I).
// No parameters. O(n·D).
#pragma once

#include <cmath>
#include <numbers>
#include <string>

#include "bijou/core/concepts.hpp"

namespace bijou {

template <EventShape S, Scalar T, Backend B>
class StandardNormalDistribution {
public:
    using event_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int D = S::size;

    explicit StandardNormalDistribution(BuildContext&) {}
    void declare(ParamSet<T>&, const std::string&) {}
    void reset_parameters(Rng&) {}

    void log_prob(const T* z, double* lp, int n) const {
        const double c = -0.5 * D * std::log(2.0 * std::numbers::pi);
        for (int i = 0; i < n; ++i) {
            double s = 0.0;
            const T* zi = z + std::size_t(i) * D;
            for (int j = 0; j < D; ++j) s += double(zi[j]) * zi[j];
            lp[i] = c - 0.5 * s;
        }
    }

    void backward(const T* z, const T* dlp, T* dz, int n) {
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < D; ++j) dz[std::size_t(i) * D + j] = -dlp[i] * z[std::size_t(i) * D + j];
    }

    void sample(T* z, int n, double temperature, Rng& rng) const {
        for (std::size_t k = 0; k < std::size_t(n) * D; ++k) z[k] = T(temperature * rng.normal());
    }
};

/// Recipe: N(0, I) over the latent shape.
struct StandardNormal {
    static constexpr std::string_view name = "base";
    template <class S, class T, class B>
    using bind = StandardNormalDistribution<S, T, B>;
};

}  // namespace bijou
