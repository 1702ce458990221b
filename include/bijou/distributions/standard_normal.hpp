// bijou/distributions/standard_normal.hpp — the standard normal base N(0, I).
//
// Recipe `StandardNormal`, bound to any event shape S with D = S::size values:
//   log p(z) = −½‖z‖² − (D/2)·log 2π;  sample: z = temperature·ε, ε ~ N(0, I).
// No parameters. O(n·D). log_prob and backward are kernels (kernels/*/standard_normal.hpp); sample
// draws on the host (core/memory.hpp's fill_normal_from_host, which uploads on a backend with memory
// of its own): the same seed gives the same samples on every backend and thread count.
#pragma once

#include <cstddef>
#include <string>

#include "bijou/core/concepts.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/kernels/cpu/standard_normal.hpp"
#include "bijou/kernels/cuda/standard_normal.hpp"
#include "bijou/kernels/reference/standard_normal.hpp"

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

    void log_prob(const T* z, double* lp, int n) const { kernels::standard_normal_log_prob(B{}, z, lp, n, D); }

    void backward(const T* z, const T* dlp, T* dz, int n) { kernels::standard_normal_backward(B{}, z, dlp, dz, n, D); }

    void sample(T* z, int n, double temperature, Rng& rng) const {
        fill_normal_from_host(B{}, z, std::size_t(n) * D, temperature, rng);
    }
};

/// Recipe: N(0, I) over the latent shape.
struct StandardNormal {
    static constexpr std::string_view name = "base";
    template <class S, class T, class B>
    using bind = StandardNormalDistribution<S, T, B>;
};

}  // namespace bijou
