// bijou/distributions/gaussian_mixture.hpp — a trainable mixture of K diagonal Gaussians as the base.
//
// Recipe `GaussianMixture<K = 2>`, bound to any event shape S; it acts on the flattened event of D = S::size values.
//   log π = logits − logsumexp(logits)                                        (mixture weights, softmax)
//   a_k(z) = log π_k + Σ_j [ −½ u_kj² − log_scale_kj ] − (D/2)·log 2π,   u_kj = (z_j − loc_kj)·exp(−log_scale_kj)
//   log p(z) = logsumexp_k a_k(z)                                              (max-shifted, in double)
//   backward, with responsibilities r_k = exp(a_k − log p) and dlp_i = ∂L/∂log p(z_i):
//     dz_ij           = −dlp_i · Σ_k r_ik · u_ikj · exp(−log_scale_kj)        (assigned)
//     d logits_k     += Σ_i dlp_i · (r_ik − π_k)
//     d loc_kj       += Σ_i dlp_i · r_ik · u_ikj · exp(−log_scale_kj)
//     d log_scale_kj += Σ_i dlp_i · r_ik · (u_ikj² − 1)
//   sample: k ~ Categorical(softmax(logits)), then z = loc_k + temperature · exp(log_scale_k) ⊙ ε, ε ~ N(0, I)
//           (per sample: one uniform, then D normals, in sample-major order from the Rng)
// Parameters: "logits" (K), "loc" (K, D), "log_scale" (K, D). reset_parameters: logits 0, log_scale 0,
// loc drawn N(0, 1) from the model's seeded Rng (breaks the symmetry between components; reproducible).
// Shapes: z, dz (n, D) sample-major; lp, dlp (n). O(n·K·D) time. log_prob (const) evaluates K·D
// exponentials per sample; backward caches them once per call in a scratch of K·(3D + 1) doubles owned by
// the distribution (sized at construction), which also accumulates the parameter gradients in double.
// No allocation after construction. K >= 1 is a compile-time requirement.
// Backends: log_prob, backward and sample are host code, run on host copies of the data and of the
// parameters (core/mirror.hpp). On a backend with memory of its own (Cuda) n·D values and the few
// parameter tensors cross per call (the host copies grow to the largest batch seen); a base this
// small gains nothing from device kernels. On a host backend the copies are the identity.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <string>
#include <string_view>
#include <vector>

#include "bijou/core/concepts.hpp"
#include "bijou/core/mirror.hpp"

namespace bijou {

template <int K, EventShape S, Scalar T, Backend B>
class GaussianMixtureDistribution {
    static_assert(K >= 1, "bijou: GaussianMixture<K> needs at least one component (K >= 1)");

public:
    using event_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int D = S::size;
    static constexpr int components = K;

    explicit GaussianMixtureDistribution(BuildContext&)
        : scratch_(std::size_t(K) * (3 * std::size_t(D) + 1), 0.0) {}

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        ps.add(join_name(prefix, "logits"), {std::size_t(K)}, &logits_);
        ps.add(join_name(prefix, "loc"), {std::size_t(K), std::size_t(D)}, &loc_);
        ps.add(join_name(prefix, "log_scale"), {std::size_t(K), std::size_t(D)}, &log_scale_);
    }

    void reset_parameters(Rng& rng) {
        for (int k = 0; k < K; ++k) logits_[std::size_t(k)] = T(0);
        for (std::size_t q = 0; q < std::size_t(K) * D; ++q) {
            loc_[q] = T(rng.normal());
            log_scale_[q] = T(0);
        }
    }

    /// lp[i] = log p(z_i) (assigned).
    void log_prob(const T* z, double* lp, int n) const {
        const auto host = mirror_.on_host(HostCopy::values, logits_, loc_, log_scale_);
        log_prob_host(z_host_.in(z, std::size_t(n) * D), lp_host_.out(lp, std::size_t(n)), n);
        lp_host_.finish(lp, std::size_t(n));
    }

    /// dz = dlp[i]·∇_z log p(z_i) (assigned); parameter gradients +=.
    void backward(const T* z, const T* dlp, T* dz, int n) {
        auto host = mirror_.on_host(HostCopy::both, logits_, loc_, log_scale_);
        const std::size_t nd = std::size_t(n) * D;
        backward_host(z_host_.in(z, nd), dlp_host_.in(dlp, std::size_t(n)), dz_host_.out(dz, nd), n);
        dz_host_.finish(dz, nd);
        host.send_grads();
    }

    /// n samples (the same draws from rng on every backend).
    void sample(T* z, int n, double temperature, Rng& rng) const {
        const auto host = mirror_.on_host(HostCopy::values, logits_, loc_, log_scale_);
        sample_host(z_host_.out(z, std::size_t(n) * D), n, temperature, rng);
        z_host_.finish(z, std::size_t(n) * D);
    }

    const TensorRef<T>& logits() const { return logits_; }
    const TensorRef<T>& loc() const { return loc_; }
    const TensorRef<T>& log_scale() const { return log_scale_; }

private:
    // The host code: on a backend with memory of its own the pointers and the tensors' handles are
    // host copies, sent back by the calls above.

    /// Mixture weights log π = log softmax(logits).
    std::array<double, K> log_weights() const {
        std::array<double, K> l;
        for (int k = 0; k < K; ++k) l[std::size_t(k)] = double(logits_[std::size_t(k)]);
        const double lse = log_sum_exp(l);
        for (auto& v : l) v -= lse;
        return l;
    }

    void log_prob_host(const T* z, double* lp, int n) const {
        const std::array<double, K> log_pi = log_weights();
        std::array<double, K> a;
        for (int i = 0; i < n; ++i) {
            joint(z + std::size_t(i) * D, log_pi, a, [&](std::size_t q) { return std::exp(-double(log_scale_[q])); });
            lp[i] = log_sum_exp(a);
        }
    }

    /// dz = dlp[i]·∇_z log p(z_i) (assigned); logits, loc and log_scale gradients +=.
    void backward_host(const T* z, const T* dlp, T* dz, int n) {
        const std::size_t KD = std::size_t(K) * D;
        double* inv_s = scratch_.data();  // (K, D) exp(−log_scale)
        double* g_loc = inv_s + KD;       // (K, D)
        double* g_ls = g_loc + KD;        // (K, D)
        double* g_logit = g_ls + KD;      // (K)
        std::fill(g_loc, g_logit + K, 0.0);
        for (std::size_t q = 0; q < KD; ++q) inv_s[q] = std::exp(-double(log_scale_[q]));

        const std::array<double, K> log_pi = log_weights();
        std::array<double, K> a;
        for (int i = 0; i < n; ++i) {
            const T* zi = z + std::size_t(i) * D;
            T* dzi = dz + std::size_t(i) * D;
            const double w = double(dlp[i]);
            joint(zi, log_pi, a, [&](std::size_t q) { return inv_s[q]; });
            const double lp = log_sum_exp(a);
            for (int k = 0; k < K; ++k) {
                a[std::size_t(k)] = std::exp(a[std::size_t(k)] - lp);  // a now holds r_k
                g_logit[k] += w * (a[std::size_t(k)] - std::exp(log_pi[std::size_t(k)]));
            }
            for (int j = 0; j < D; ++j) {
                double g = 0.0;  // Σ_k r_k u_kj / σ_kj  = −∂log p/∂z_j
                for (int k = 0; k < K; ++k) {
                    const std::size_t q = std::size_t(k) * D + j;
                    const double u = (double(zi[j]) - double(loc_[q])) * inv_s[q];
                    const double r = a[std::size_t(k)];
                    g += r * u * inv_s[q];
                    g_loc[q] += w * r * u * inv_s[q];
                    g_ls[q] += w * r * (u * u - 1.0);
                }
                dzi[j] = T(-w * g);
            }
        }
        for (int k = 0; k < K; ++k) logits_.grad[k] += T(g_logit[k]);
        for (std::size_t q = 0; q < KD; ++q) {
            loc_.grad[q] += T(g_loc[q]);
            log_scale_.grad[q] += T(g_ls[q]);
        }
    }

    /// For each sample: a component from softmax(logits), then loc_k + temperature·exp(log_scale_k)⊙ε.
    void sample_host(T* z, int n, double temperature, Rng& rng) const {
        std::array<double, K> pi = log_weights();
        for (auto& v : pi) v = std::exp(v);
        for (int i = 0; i < n; ++i) {
            const double u = rng.uniform();
            int k = K - 1;  // fallback if rounding leaves the cumulative sum just below u
            double c = 0.0;
            for (int m = 0; m < K; ++m) {
                c += pi[std::size_t(m)];
                if (u < c) {
                    k = m;
                    break;
                }
            }
            for (int j = 0; j < D; ++j) {
                const std::size_t q = std::size_t(k) * D + j;
                const double s = std::exp(double(log_scale_[q]));
                z[std::size_t(i) * D + j] = T(double(loc_[q]) + temperature * s * rng.normal());
            }
        }
    }

    /// a_k = log π_k + log N(z; loc_k, diag σ_k²) for one sample; inv_scale(q) = exp(−log_scale[q]).
    template <class InvScale>
    void joint(const T* zi, const std::array<double, K>& log_pi, std::array<double, K>& a, InvScale inv_scale) const {
        const double c = -0.5 * D * std::log(2.0 * std::numbers::pi);
        for (int k = 0; k < K; ++k) {
            double s = log_pi[std::size_t(k)] + c;
            for (int j = 0; j < D; ++j) {
                const std::size_t q = std::size_t(k) * D + j;
                const double u = (double(zi[j]) - double(loc_[q])) * inv_scale(q);
                s += -0.5 * u * u - double(log_scale_[q]);
            }
            a[std::size_t(k)] = s;
        }
    }

    /// log Σ_k exp(v_k), shifted by the maximum so that no term overflows.
    static double log_sum_exp(const std::array<double, K>& v) {
        const double m = *std::max_element(v.begin(), v.end());
        if (!std::isfinite(m)) return m;  // all −inf (or a +inf / nan term): the shift would give nan
        double s = 0.0;
        for (double x : v) s += std::exp(x - m);
        return m + std::log(s);
    }

    // mutable: the host code of const calls reads them through mirror_ (core/mirror.hpp)
    mutable TensorRef<T> logits_, loc_, log_scale_;
    mutable Mirror<B, T> mirror_;
    mutable HostStage<B, T> z_host_, dz_host_, dlp_host_;  // the data where the host code reads and writes it
    mutable HostStage<B, double> lp_host_;
    std::vector<double> scratch_;
};

/// Recipe: a base that is a mixture of K diagonal Gaussians with trainable weights, means and scales.
template <int K = 2>
struct GaussianMixture {
    static_assert(K >= 1, "bijou: GaussianMixture<K> needs at least one component (K >= 1)");
    static constexpr std::string_view name = "base";
    template <class S, class T, class B>
    using bind = GaussianMixtureDistribution<K, S, T, B>;
};

}  // namespace bijou
