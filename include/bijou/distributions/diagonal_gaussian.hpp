// bijou/distributions/diagonal_gaussian.hpp — a trainable diagonal Gaussian base N(loc, diag exp(2·log_scale)).
//
// Recipe `DiagonalGaussian`, bound to any event shape S; it acts on the flattened event of D = S::size values.
//   log p(z) = Σ_j [ −½ u_j² − log_scale_j ] − (D/2)·log 2π,   u_j = (z_j − loc_j)·exp(−log_scale_j)
//   backward, for dlp_i = ∂L/∂log p(z_i):
//     dz_ij          = −dlp_i · u_ij · exp(−log_scale_j)                 (assigned)
//     d loc_j       += Σ_i dlp_i · u_ij · exp(−log_scale_j)
//     d log_scale_j += Σ_i dlp_i · (u_ij² − 1)
//   sample: z = loc + temperature · exp(log_scale) ⊙ ε,  ε ~ N(0, I)
// Parameters: "loc" (D) and "log_scale" (D), both 0 after reset_parameters (the standard normal).
// Shapes: z, dz (n, D) sample-major; lp, dlp (n). O(n·D) time, D exponentials per pass, no allocation.
// Arithmetic in double; parameter-gradient sums run per coordinate in sample order, so results do not
// depend on the backend or thread count. Loops are plain (the base is not a hot spot for vector flows).
// On an ExecutorBackend (Cuda) log_prob, backward and sample run this host code on copies of the
// (small) data and parameters (core/host_params.hpp): n·D values and a few parameter tensors cross
// per call; a base this small gains nothing from device kernels.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <string>
#include <vector>
#include <string_view>

#include "bijou/core/concepts.hpp"
#include "bijou/core/host_params.hpp"

namespace bijou {

template <EventShape S, Scalar T, Backend B>
class DiagonalGaussianDistribution {
public:
    using event_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int D = S::size;

    explicit DiagonalGaussianDistribution(BuildContext&) {}

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        ps.add(join_name(prefix, "loc"), {std::size_t(D)}, &loc_);
        ps.add(join_name(prefix, "log_scale"), {std::size_t(D)}, &log_scale_);
    }

    void reset_parameters(Rng&) {
        for (int j = 0; j < D; ++j) loc_[std::size_t(j)] = log_scale_[std::size_t(j)] = T(0);
    }

    /// lp[i] = log p(z_i) (assigned). On a device backend: the host code on copies (see above).
    void log_prob(const T* z, double* lp, int n) const {
        if constexpr (ExecutorBackend<B>) detail::log_prob_on_host<B>(*this, handles(), z, lp, n, D);
        else log_prob_host(z, lp, n);
    }

    /// dz = dlp[i]·∇_z log p(z_i) (assigned); parameter gradients +=.
    void backward(const T* z, const T* dlp, T* dz, int n) {
        if constexpr (ExecutorBackend<B>) detail::backward_on_host<B>(*this, handles(), z, dlp, dz, n, D);
        else backward_host(z, dlp, dz, n);
    }

    /// n samples (the same draws from rng on every backend).
    void sample(T* z, int n, double temperature, Rng& rng) const {
        if constexpr (ExecutorBackend<B>) detail::sample_on_host<B>(*this, handles(), z, n, D, temperature, rng);
        else sample_host(z, n, temperature, rng);
    }

    // The host code (also what a device backend runs, on host copies).
    void log_prob_host(const T* z, double* lp, int n) const {
        const double c = -0.5 * D * std::log(2.0 * std::numbers::pi);
        for (int i = 0; i < n; ++i) lp[i] = c;
        // coordinate-outer: one exp per coordinate, and lp[] is the only accumulator (no scratch)
        for (int j = 0; j < D; ++j) {
            const double mu = double(loc_[std::size_t(j)]), ls = double(log_scale_[std::size_t(j)]);
            const double inv_s = std::exp(-ls);
            for (int i = 0; i < n; ++i) {
                const double u = (double(z[std::size_t(i) * D + j]) - mu) * inv_s;
                lp[i] += -0.5 * u * u - ls;
            }
        }
    }

    /// dz = dlp[i]·∇_z log p(z_i) (assigned); loc and log_scale gradients +=.
    void backward_host(const T* z, const T* dlp, T* dz, int n) {
        for (int j = 0; j < D; ++j) {
            const double mu = double(loc_[std::size_t(j)]), ls = double(log_scale_[std::size_t(j)]);
            const double inv_s = std::exp(-ls);
            double g_loc = 0.0, g_ls = 0.0;
            for (int i = 0; i < n; ++i) {
                const std::size_t k = std::size_t(i) * D + j;
                const double w = double(dlp[i]);
                const double u = (double(z[k]) - mu) * inv_s;
                const double g = w * u * inv_s;  // = −dlp·∂log p/∂z = dlp·∂log p/∂loc
                dz[k] = T(-g);
                g_loc += g;
                g_ls += w * (u * u - 1.0);
            }
            loc_.grad[j] += T(g_loc);
            log_scale_.grad[j] += T(g_ls);
        }
    }

    /// z_i = loc + temperature·exp(log_scale)⊙ε_i, drawn in sample-major order from rng.
    void sample_host(T* z, int n, double temperature, Rng& rng) const {
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < D; ++j) {
                const double s = std::exp(double(log_scale_[std::size_t(j)]));
                z[std::size_t(i) * D + j] = T(double(loc_[std::size_t(j)]) + temperature * s * rng.normal());
            }
    }

    const TensorRef<T>& loc() const { return loc_; }
    const TensorRef<T>& log_scale() const { return log_scale_; }

private:
    std::array<TensorRef<T>*, 2> handles() const { return {&loc_, &log_scale_}; }

    // mutable: on a device backend the const calls point them at host mirrors for a moment (HostParams)
    mutable TensorRef<T> loc_, log_scale_;
};

/// Recipe: a diagonal Gaussian base with trainable mean and log standard deviation per latent value.
struct DiagonalGaussian {
    static constexpr std::string_view name = "base";
    template <class S, class T, class B>
    using bind = DiagonalGaussianDistribution<S, T, B>;
};

}  // namespace bijou
