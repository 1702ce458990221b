// bijou/bijectors/top_prior.hpp — Glow's learned top prior, written as a bijection.
//
// Recipe `TopPrior` (state_dict name "prior"), bound to Shape<D> (per feature) or Shape<C, H, W>
// (per channel). The last level of a multi-scale model leaves as standardised noise
//   forward  ε = (z − mean) ⊙ exp(−log_scale)      log|det ∂ε/∂z| = −H·W·Σ_c log_scale_c
//   inverse  z = mean + ε ⊙ exp(log_scale)
// so that N(ε; 0, I) is N(z; mean, exp(log_scale)²), Glow's learned prior (openai/glow learn_top:
// a zero-initialised conv of a zero tensor, i.e. one mean and one log-scale per channel). The base
// distribution stays standard normal and sampling at temperature t scales ε.
// Parameters "mean" (C), "log_scale" (C), zero at start (the standard normal). Cost O(n·D),
// memory-bound, next to nothing beside the convolutions. Kernels: kernels/*/priors.hpp (the passes)
// and kernels/*/totals.hpp (the constant log-det).
// Recipe `ConditionalTopPrior<Ctx>` (core/context.hpp; what a multi-scale model with a conditional body
// uses, as openai/glow's ycond prior): per sample i, [mean_i | log_scale_i] = bias + W·c_i (2C values),
//   forward  ε = (z − mean_i) ⊙ exp(−log_scale_i)   log|det| = −H·W·Σ_c log_scale_{i,c}
// Parameters "bias" (2C) and "context.weight" (2C, K), zero at start (the standard normal, whatever c).
// Workspace: the per-sample statistics (n, 2C), kept by forward (and inverse) for backward, and their
// gradient. Kernels: kernels/*/context.hpp (sample_prior_*), the bias those of nn/mlp.hpp.
#pragma once

#include <cstddef>
#include <string>

#include "bijou/core/concepts.hpp"
#include "bijou/kernels/cpu/priors.hpp"
#include "bijou/kernels/cpu/totals.hpp"
#include "bijou/kernels/cuda/priors.hpp"
#include "bijou/kernels/cuda/totals.hpp"
#include "bijou/kernels/reference/priors.hpp"
#include "bijou/kernels/reference/totals.hpp"
#include "bijou/kernels/cpu/mlp.hpp"
#include "bijou/kernels/cuda/mlp.hpp"
#include "bijou/kernels/reference/mlp.hpp"
#include "bijou/nn/context_projection.hpp"

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
        kernels::top_prior_apply(B{}, z, eps, mean_.value, log_scale_.value, n, C, HW, true);
        kernels::add_total(B{}, ld, std::size_t(n), log_scale_.value, std::size_t(C), -double(HW));
    }

    void inverse(const T* eps, T* z, double* ld, int n, T*) const {
        kernels::top_prior_apply(B{}, eps, z, mean_.value, log_scale_.value, n, C, HW, false);
        kernels::add_total(B{}, ld, std::size_t(n), log_scale_.value, std::size_t(C), double(HW));
    }

    void backward(const T*, const T* eps, const T* deps, const T* dld, T* dz, int n, T*) {
        kernels::top_prior_backward(B{}, eps, deps, dld, dz, log_scale_.value, mean_.grad, log_scale_.grad, n, C, HW);
    }

    const TensorRef<T>& mean() const { return mean_; }
    const TensorRef<T>& log_scale() const { return log_scale_; }

private:
    TensorRef<T> mean_, log_scale_;
};

/// Glow's top prior conditioned on a context (see the contract at the top of this header).
template <EventShape S, Scalar T, Backend B, class Ctx>
class ConditionalTopPriorBijector : public conditional_on<Ctx> {
public:
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int C = channels_of<S>;
    static constexpr int HW = spatial_of<S>;
    static constexpr int K = Ctx::size;

    explicit ConditionalTopPriorBijector(BuildContext& ctx) : proj_(2 * C, K), context_(ctx.template context<T>()) {}

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        ps.add(join_name(prefix, "bias"), {std::size_t(2 * C)}, &bias_);
        proj_.declare(ps, join_name(prefix, "context.weight"));
    }
    void reset_parameters(Rng& rng) {
        for (std::size_t k = 0; k < bias_.size; ++k) bias_[k] = T(0);
        proj_.reset_parameters(rng, /*zero=*/true);
    }
    std::size_t workspace_size(int n) const { return 4 * std::size_t(n) * C; }

    void forward(const T* z, T* eps, double* ld, int n, T* ws) const {
        kernels::sample_prior_apply(B{}, z, eps, stats(n, ws), ld, n, C, HW, true);
    }
    void inverse(const T* eps, T* z, double* ld, int n, T* ws) const {
        kernels::sample_prior_apply(B{}, eps, z, stats(n, ws), ld, n, C, HW, false);
    }
    void backward(const T*, const T* eps, const T* deps, const T* dld, T* dz, int n, T* ws) {
        T* st = ws;  // as forward left it
        T* dst = ws + 2 * std::size_t(n) * C;
        kernels::sample_prior_backward(B{}, eps, deps, dld, dz, st, dst, n, C, HW);
        kernels::mlp_bias_grad(B{}, dst, bias_.grad, n, 2 * C);
        proj_.backward_rows(context_.values(n, "prior"), dst, context_.grad(), n);
    }

    const TensorRef<T>& bias() const { return bias_; }

private:
    // [mean_i | log_scale_i] = bias + W·c_i into ws (n, 2C).
    const T* stats(int n, T* ws) const {
        fill(B{}, ws, std::size_t(n) * 2 * C, T(0));
        proj_.add_rows(context_.values(n, "prior"), ws, n);
        kernels::mlp_bias(B{}, ws, bias_.value, n, 2 * C);
        return ws;
    }

    TensorRef<T> bias_;
    ContextProjection<T, B> proj_;
    ContextRef<T> context_;
};

/// Recipe: learned per-channel Gaussian prior of the top level, as ε = (z − mean)·exp(−log_scale).
struct TopPrior {
    static constexpr std::string_view name = "prior";
    template <class S, class T, class B>
    using bind = TopPriorBijector<S, T, B>;
};

/// Recipe: the top prior conditioned on a context Ctx = Shape<K> (openai/glow's ycond prior).
template <class Ctx>
struct ConditionalTopPrior {
    using context_shape = Ctx;
    static constexpr std::string_view name = "prior";
    template <class S, class T, class B>
    using bind = ConditionalTopPriorBijector<S, T, B, Ctx>;
};

}  // namespace bijou
