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
// Backends: log_prob, backward and sample are host code, run on host copies of the data and of the
// parameters (core/mirror.hpp). On a backend with memory of its own (Cuda) n·D values and the few
// parameter tensors cross per call (the host copies grow to the largest batch seen); a base this
// small gains nothing from device kernels. On a host backend the copies are the identity.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <string>
#include <vector>
#include <string_view>

#include "bijou/core/concepts.hpp"
#include "bijou/core/mirror.hpp"

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

    /// lp[i] = log p(z_i) (assigned).
    void log_prob(const T* z, double* lp, int n) const {
        const auto host = mirror_.on_host(HostCopy::values, loc_, log_scale_);
        log_prob_host(z_host_.in(z, std::size_t(n) * D), lp_host_.out(lp, std::size_t(n)), n);
        lp_host_.finish(lp, std::size_t(n));
    }

    /// dz = dlp[i]·∇_z log p(z_i) (assigned); parameter gradients +=.
    void backward(const T* z, const T* dlp, T* dz, int n) {
        auto host = mirror_.on_host(HostCopy::both, loc_, log_scale_);
        const std::size_t nd = std::size_t(n) * D;
        backward_host(z_host_.in(z, nd), dlp_host_.in(dlp, std::size_t(n)), dz_host_.out(dz, nd), n);
        dz_host_.finish(dz, nd);
        host.send_grads();
    }

    /// n samples (the same draws from rng on every backend).
    void sample(T* z, int n, double temperature, Rng& rng) const {
        const auto host = mirror_.on_host(HostCopy::values, loc_, log_scale_);
        sample_host(z_host_.out(z, std::size_t(n) * D), n, temperature, rng);
        z_host_.finish(z, std::size_t(n) * D);
    }

    const TensorRef<T>& loc() const { return loc_; }
    const TensorRef<T>& log_scale() const { return log_scale_; }

private:
    // The host code: on a backend with memory of its own the pointers and the tensors' handles are
    // host copies, sent back by the calls above.
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

    // mutable: the host code of const calls reads them through mirror_ (core/mirror.hpp)
    mutable TensorRef<T> loc_, log_scale_;
    mutable Mirror<B, T> mirror_;
    mutable HostStage<B, T> z_host_, dz_host_, dlp_host_;  // the data where the host code reads and writes it
    mutable HostStage<B, double> lp_host_;
};

/// Recipe: a diagonal Gaussian base with trainable mean and log standard deviation per latent value.
struct DiagonalGaussian {
    static constexpr std::string_view name = "base";
    template <class S, class T, class B>
    using bind = DiagonalGaussianDistribution<S, T, B>;
};

}  // namespace bijou
