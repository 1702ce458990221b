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

/// Recipe: learned per-channel Gaussian prior of the top level, as ε = (z − mean)·exp(−log_scale).
struct TopPrior {
    static constexpr std::string_view name = "prior";
    template <class S, class T, class B>
    using bind = TopPriorBijector<S, T, B>;
};

}  // namespace bijou
