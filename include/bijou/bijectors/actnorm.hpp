// bijou/bijectors/actnorm.hpp — activation normalisation (Kingma & Dhariwal 2018, §3.1).
//
// Recipe `ActNorm`, bound to Shape<D> (per feature) or Shape<C, H, W> (per channel).
//   forward  z = (x + loc) ⊙ exp(log_scale)          log|det ∂z/∂x| = H·W·Σ_c log_scale_c
//   inverse  x = z ⊙ exp(−log_scale) − loc           (the negative log-det)
// Parameters: "loc" (C), "log_scale" (C); buffer "initialized" (1): 1 once initialize() has run.
// Starts as the identity. initialize(x) is the data-dependent initialisation: afterwards the
// forward output of that batch has zero mean and unit variance per channel (Glow's init). It is
// explicit (call it on a batch before training) and recorded in the "initialized" buffer so that a
// loaded checkpoint is not re-initialised. In a data-parallel job the batch statistics are summed
// over the processes (core/statistics_reducer.hpp): the initialisation is that of the global batch. Cost O(n·D) per pass. The constant log-det and the
// log_scale gradient's Σ dld term are kernels::add_total (kernels/*/totals.hpp: device reductions on
// a backend with memory of its own), and initialize brings the channel moments to the host and sends
// the new parameters back.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "bijou/core/concepts.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/core/statistics_reducer.hpp"
#include "bijou/kernels/cpu/actnorm.hpp"
#include "bijou/kernels/cuda/actnorm.hpp"
#include "bijou/kernels/cpu/totals.hpp"
#include "bijou/kernels/cuda/totals.hpp"
#include "bijou/kernels/reference/actnorm.hpp"
#include "bijou/kernels/reference/totals.hpp"

namespace bijou {

template <EventShape S, Scalar T, Backend B>
class ActNormBijector {
public:
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int C = channels_of<S>;
    static constexpr int HW = spatial_of<S>;

    explicit ActNormBijector(BuildContext&) {}

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        ps.add(join_name(prefix, "loc"), {std::size_t(C)}, &loc_);
        ps.add(join_name(prefix, "log_scale"), {std::size_t(C)}, &log_scale_);
        ps.add_buffer(join_name(prefix, "initialized"), {1}, &initialized_);
    }

    void reset_parameters(Rng&) {
        for (int c = 0; c < C; ++c) loc_[c] = log_scale_[c] = T(0);
        initialized_[0] = T(0);
    }

    bool initialized() const {
        T flag = T(0);
        download(B{}, &flag, initialized_.value, 1);
        return flag != T(0);
    }

    std::size_t workspace_size(int) const { return 0; }

    void forward(const T* x, T* z, double* ld, int n, T*) const {
        kernels::actnorm_forward(B{}, x, z, loc_.value, log_scale_.value, n, C, HW);
        add_log_det(ld, n, +1.0);
    }

    void inverse(const T* z, T* x, double* ld, int n, T*) const {
        kernels::actnorm_inverse(B{}, z, x, loc_.value, log_scale_.value, n, C, HW);
        add_log_det(ld, n, -1.0);
    }

    void backward(const T*, const T* z, const T* dz, const T* dld, T* dx, int n, T*) {
        kernels::actnorm_backward(B{}, z, dz, dx, log_scale_.value, loc_.grad, log_scale_.grad, n, C, HW);
        // ∂ld_i/∂log_scale_c = HW for every sample
        kernels::add_total(B{}, log_scale_.grad, std::size_t(C), dld, std::size_t(n), double(HW));
    }

    /// Data-dependent initialisation from a batch x (n, C, HW): zero mean, unit variance per channel.
    void initialize(const T* x, int n, T*) {
        if (n < 1) throw invalid_argument("ActNorm::initialize needs a non-empty batch");
        // Σ x and Σ x² per channel, then the element count: summed over the processes of a
        // data-parallel job when one has installed a reducer (core/statistics_reducer.hpp).
        std::vector<double> sums(2 * std::size_t(C) + 1);
        kernels::channel_sums(B{}, x, sums.data(), n, C, HW);
        sums[2 * std::size_t(C)] = double(n) * HW;
        reduce_statistics(sums);
        const double count = sums[2 * std::size_t(C)];
        std::vector<T> loc(C), log_scale(C);
        for (int c = 0; c < C; ++c) {
            const double mean = sums[2 * c] / count, var = sums[2 * c + 1] / count - mean * mean;
            const double sd = std::sqrt(var > 0.0 ? var : 0.0);
            if (!std::isfinite(mean) || !std::isfinite(sd))
                throw numerical_error("ActNorm::initialize: channel " + std::to_string(c) +
                                      " of the initialisation batch is not finite");
            loc[c] = T(-mean);
            log_scale[c] = T(-std::log(sd + 1e-6));
        }
        const T one = T(1);
        upload(B{}, loc_.value, loc.data(), std::size_t(C));
        upload(B{}, log_scale_.value, log_scale.data(), std::size_t(C));
        upload(B{}, initialized_.value, &one, 1);
    }

    const TensorRef<T>& loc() const { return loc_; }
    const TensorRef<T>& log_scale() const { return log_scale_; }

private:
    void add_log_det(double* ld, int n, double sign) const {
        kernels::add_total(B{}, ld, std::size_t(n), log_scale_.value, std::size_t(C), sign * HW);
    }

    TensorRef<T> loc_, log_scale_, initialized_;
};

/// Recipe: per-channel affine normalisation with data-dependent initialisation.
struct ActNorm {
    static constexpr std::string_view name = "actnorm";
    template <class S, class T, class B>
    using bind = ActNormBijector<S, T, B>;
};

}  // namespace bijou
