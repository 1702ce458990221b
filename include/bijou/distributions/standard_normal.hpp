// bijou/distributions/standard_normal.hpp — the standard normal base N(0, I).
//
// Recipe `StandardNormal`, bound to any event shape S with D = S::size values:
//   log p(z) = −½‖z‖² − (D/2)·log 2π;  sample: z = temperature·ε, ε ~ N(0, I).
// No parameters. O(n·D). On an ExecutorBackend (Cuda) log_prob and backward are device kernels
// (kernels/cuda/standard_normal.hpp) and sample draws on the host, then uploads: the same seed gives
// the same samples on every backend.
#pragma once

#include <cmath>
#include <numbers>
#include <string>

#include <vector>

#include "bijou/core/concepts.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/kernels/cuda/standard_normal.hpp"

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
        if constexpr (ExecutorBackend<B>) {
            kernels::standard_normal_log_prob(B{}, z, lp, n, D);
        } else {
            const double c = -0.5 * D * std::log(2.0 * std::numbers::pi);
            for (int i = 0; i < n; ++i) {
                double s = 0.0;
                const T* zi = z + std::size_t(i) * D;
                for (int j = 0; j < D; ++j) s += double(zi[j]) * zi[j];
                lp[i] = c - 0.5 * s;
            }
        }
    }

    void backward(const T* z, const T* dlp, T* dz, int n) {
        if constexpr (ExecutorBackend<B>) {
            kernels::standard_normal_backward(B{}, z, dlp, dz, n, D);
        } else {
            for (int i = 0; i < n; ++i)
                for (int j = 0; j < D; ++j) dz[std::size_t(i) * D + j] = -dlp[i] * z[std::size_t(i) * D + j];
        }
    }

    void sample(T* z, int n, double temperature, Rng& rng) const {
        if constexpr (ExecutorBackend<B>) {
            std::vector<T> host(std::size_t(n) * D);
            for (auto& v : host) v = T(temperature * rng.normal());
            upload(B{}, z, host.data(), host.size());
        } else {
            for (std::size_t k = 0; k < std::size_t(n) * D; ++k) z[k] = T(temperature * rng.normal());
        }
    }
};

/// Recipe: N(0, I) over the latent shape.
struct StandardNormal {
    static constexpr std::string_view name = "base";
    template <class S, class T, class B>
    using bind = StandardNormalDistribution<S, T, B>;
};

}  // namespace bijou
