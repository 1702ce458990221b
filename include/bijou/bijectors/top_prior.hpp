// bijou/bijectors/top_prior.hpp — Glow's learned top prior, written as a bijection.
//
// Recipe `TopPrior` (state_dict name "prior"), bound to Shape<D> (per feature) or Shape<C, H, W>
// (per channel). The last level of a multi-scale model leaves as standardised noise
//   forward  ε = (z − mean) ⊙ exp(−log_scale)      log|det ∂ε/∂z| = −H·W·Σ_c log_scale_c
//   inverse  z = mean + ε ⊙ exp(log_scale)
// so that N(ε; 0, I) is N(z; mean, exp(log_scale)²), Glow's learned prior (openai/glow learn_top:
// a zero-initialised conv of a zero tensor, i.e. one mean and one log-scale per channel). The base
// distribution stays standard normal and sampling at temperature t scales ε.
// Parameters "mean" (C), "log_scale" (C), zero at start (the standard normal). Cost O(n·D);
// plain loops on host backends (memory-bound, next to nothing beside the convolutions), device
// kernels on an ExecutorBackend (kernels/cuda/priors.hpp).
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "bijou/core/concepts.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/kernels/cuda/priors.hpp"

namespace bijou {

template <EventShape S, Scalar T, Backend B>
class TopPriorBijector {
public:
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int C = channels_of<S>;
    static constexpr int HW = spatial_of<S>;

    explicit TopPriorBijector(BuildContext&) {}

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        ps.add(join_name(prefix, "mean"), {std::size_t(C)}, &mean_);
        ps.add(join_name(prefix, "log_scale"), {std::size_t(C)}, &log_scale_);
    }
    void reset_parameters(Rng&) {
        for (int c = 0; c < C; ++c) mean_[std::size_t(c)] = log_scale_[std::size_t(c)] = T(0);
    }
    std::size_t workspace_size(int) const { return 0; }

    void forward(const T* z, T* eps, double* ld, int n, T*) const {
        if constexpr (ExecutorBackend<B>) {
            kernels::cuda_body::top_prior_apply(typename B::executor{}, z, eps, mean_.value, log_scale_.value, n, C,
                                                HW, true);
            add_total(B{}, ld, std::size_t(n), log_scale_.value, std::size_t(C), -double(HW));
        } else {
            for_each(n, [&](std::size_t k, int c) {
                eps[k] = (z[k] - mean_[std::size_t(c)]) * T(std::exp(-double(log_scale_[std::size_t(c)])));
            });
            add_log_det(ld, n, -1.0);
        }
    }

    void inverse(const T* eps, T* z, double* ld, int n, T*) const {
        if constexpr (ExecutorBackend<B>) {
            kernels::cuda_body::top_prior_apply(typename B::executor{}, eps, z, mean_.value, log_scale_.value, n, C,
                                                HW, false);
            add_total(B{}, ld, std::size_t(n), log_scale_.value, std::size_t(C), double(HW));
        } else {
            for_each(n, [&](std::size_t k, int c) {
                z[k] = mean_[std::size_t(c)] + eps[k] * T(std::exp(double(log_scale_[std::size_t(c)])));
            });
            add_log_det(ld, n, +1.0);
        }
    }

    void backward(const T*, const T* eps, const T* deps, const T* dld, T* dz, int n, T*) {
        if constexpr (ExecutorBackend<B>) {
            kernels::cuda_body::top_prior_backward(typename B::executor{}, eps, deps, dz, log_scale_.value,
                                                   mean_.grad, log_scale_.grad, n, C, HW);
            add_total(B{}, log_scale_.grad, std::size_t(C), dld, std::size_t(n), -double(HW));
        } else {
            double sum_dld = 0.0;
            for (int i = 0; i < n; ++i) sum_dld += double(dld[i]);
            for (int c = 0; c < C; ++c) {
                const double inv = std::exp(-double(log_scale_[std::size_t(c)]));
                double gm = 0.0, gs = 0.0;
                for (int i = 0; i < n; ++i) {
                    const std::size_t k0 = (std::size_t(i) * C + std::size_t(c)) * HW;
                    for (std::size_t k = k0; k < k0 + HW; ++k) {
                        dz[k] = T(double(deps[k]) * inv);
                        gm -= double(deps[k]) * inv;
                        gs -= double(deps[k]) * double(eps[k]);
                    }
                }
                mean_.grad[std::size_t(c)] += T(gm);
                log_scale_.grad[std::size_t(c)] += T(gs - sum_dld * HW);
            }
        }
    }

    const TensorRef<T>& mean() const { return mean_; }
    const TensorRef<T>& log_scale() const { return log_scale_; }

private:
    template <class F>
    static void for_each(int n, F&& f) {
        for (int i = 0; i < n; ++i)
            for (int c = 0; c < C; ++c) {
                const std::size_t k0 = (std::size_t(i) * C + std::size_t(c)) * HW;
                for (std::size_t k = k0; k < k0 + HW; ++k) f(k, c);
            }
    }
    void add_log_det(double* ld, int n, double sign) const {
        double s = 0.0;
        for (int c = 0; c < C; ++c) s += double(log_scale_[std::size_t(c)]);
        s *= sign * HW;
        for (int i = 0; i < n; ++i) ld[i] += s;
    }

    TensorRef<T> mean_, log_scale_;
};

/// Recipe: learned per-channel Gaussian prior of the top level, as ε = (z − mean)·exp(−log_scale).
struct TopPrior {
    static constexpr std::string_view name = "prior";
    template <class S, class T, class B>
    using bind = TopPriorBijector<S, T, B>;
};

}  // namespace bijou
