// bijou/train/adam.hpp — Adam and Adamax over flat parameter spans (ensmallen style).
//
// An optimizer knows nothing of models: it is built for a parameter count and updates a span of
// parameters in place from a span of gradients of the same length, at a learning rate the caller
// passes each step (so schedules stay outside). Both keep their state in the parameter's scalar type,
// as torch.optim does, and compute each element's update in T (bias corrections in double).
//
//   Adam<T>   (Kingma & Ba 2015, Algorithm 1; identical to torch.optim.Adam, amsgrad off):
//       g ← g + weight_decay·θ                      (L2 added to the gradient; not AdamW's decoupled decay)
//       m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²,   t ← t + 1
//       θ ← θ − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε)
//   Adamax<T> (Kingma & Ba 2015, §7.1, Algorithm 2; the paper suggests lr = 0.002):
//       g ← g + weight_decay·θ
//       m ← β1·m + (1 − β1)·g,   u ← max(β2·u, |g|),   t ← t + 1
//       θ ← θ − lr/(1 − β1^t) · m / (u + ε)
//     ε is not in the paper: it only guards 0/0 for a parameter whose gradient has been exactly zero
//     since the start (m = u = 0). torch.optim.Adamax puts it inside the max instead (max(β2·u, |g| + ε));
//     the two agree to O(ε/u).
// Defaults β1 = 0.9, β2 = 0.999, ε = 1e-8, weight_decay = 0; invalid options throw bijou::invalid_argument.
// State (for checkpoints): the moment vectors through m()/v() (Adam) or m()/u() (Adamax), or generically
// state_tensors() with torch's state names, the step count t through step_count()/set_step_count(),
// and the options through options()/set_options() (a loaded checkpoint restores the saved options).
// step(params, grads, lr, grad_scale = 1): the update from grads·grad_scale (the factor rounded to T
// once and applied as each gradient is read; train_step passes its clipping factor there, so that
// clipping takes no pass of its own, and leaves the gradient span unchanged).
// step(): O(P) for P parameters, no allocation; elementwise, so the result does not depend on the
// thread count (OpenMP splits large spans). A length mismatch throws bijou::invalid_argument. The
// per-element update is a kernel of the backend (kernels/*/optim.hpp); the optimizer computes its
// coefficients.
// Backend: Adam<T, B> and Adamax<T, B> keep m and v (u) where backend B's kernels work, and update
// the parameter span there (B = Cpu by default; Adam<float, bijou::Cuda> updates a Cuda model's
// device parameters with one kernel per step). An optimizer must match its model's backend
// (train_step checks this at compile time); state_tensors()/m()/v() are spans of backend memory.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bijou/core/backend.hpp"
#include "bijou/core/error.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/kernels/cpu/optim.hpp"
#include "bijou/kernels/cuda/optim.hpp"
#include "bijou/kernels/reference/optim.hpp"

namespace bijou {

/// An optimizer: `o.step(params, grads, lr)` updates the parameter span in place from the gradient span.
template <class O, class T>
concept Optimizer = Scalar<T> && requires(O& o, std::span<T> params, std::span<const T> grads, double lr) {
    o.step(params, grads, lr);
};

/// Hyper-parameters shared by Adam and Adamax (β2 is the decay of v for Adam, of u for Adamax).
struct AdamOptions {
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;
};

namespace detail {

/// An AdamOptions field outside its valid range: its name, its value and the range ("in [0, 1)").
struct AdamOptionsProblem {
    const char* field;
    double value;
    const char* range;
};

/// The first invalid field of `o`, if any (the one definition of the valid ranges: the optimizers'
/// constructors and set_options, and checkpoint loading, use it).
inline std::optional<AdamOptionsProblem> adam_options_problem(const AdamOptions& o) {
    if (!(o.beta1 >= 0.0 && o.beta1 < 1.0)) return AdamOptionsProblem{"beta1", o.beta1, "in [0, 1)"};
    if (!(o.beta2 >= 0.0 && o.beta2 < 1.0)) return AdamOptionsProblem{"beta2", o.beta2, "in [0, 1)"};
    if (!(o.eps >= 0.0) || !std::isfinite(o.eps)) return AdamOptionsProblem{"eps", o.eps, "finite and >= 0"};
    if (!(o.weight_decay >= 0.0) || !std::isfinite(o.weight_decay))
        return AdamOptionsProblem{"weight_decay", o.weight_decay, "finite and >= 0"};
    return std::nullopt;
}

inline void check_adam_options(const AdamOptions& o, const char* who) {
    if (const auto p = adam_options_problem(o))
        throw invalid_argument(std::string(who) + ": option " + p->field + " = " + std::to_string(p->value) +
                               " must be " + p->range);
}

inline void check_step_sizes(const char* who, std::size_t expected, std::size_t np, std::size_t ng) {
    if (np != expected || ng != expected)
        throw invalid_argument(std::string(who) + "::step: built for " + std::to_string(expected) +
                               " parameters, got " + std::to_string(np) + " parameters and " + std::to_string(ng) +
                               " gradients");
}


/// What Adam and Adamax share: options, the first moment m, a second statistic s (Adam's v,
/// Adamax's u), the step count t, and the accessors a checkpoint needs.
template <Scalar T, Backend B>
class MomentOptimizer {
public:
    using scalar = T;
    using backend = B;

    std::size_t size() const { return m_.size(); }
    const AdamOptions& options() const { return options_; }
    /// Replaces the options (load_checkpoint restores the saved ones); invalid options throw
    /// bijou::invalid_argument and change nothing.
    void set_options(const AdamOptions& options) {
        check_adam_options(options, who_);
        options_ = options;
    }

    /// Steps taken (t in the bias corrections); restore it together with the state vectors.
    long step_count() const { return t_; }
    void set_step_count(long t) { t_ = t; }

    /// First moment m ("exp_avg"), in backend memory.
    std::span<T> m() { return {m_.data(), m_.size()}; }
    std::span<const T> m() const { return {m_.data(), m_.size()}; }

    /// Forget the state (as if just constructed).
    void reset() {
        fill(B{}, m_.data(), m_.size(), T(0));
        fill(B{}, s_.data(), s_.size(), T(0));
        t_ = 0;
    }

protected:
    MomentOptimizer(std::size_t parameter_count, const AdamOptions& options, const char* who)
        : options_(options), m_(parameter_count), s_(parameter_count), who_(who) {
        check_adam_options(options_, who);
    }

    std::span<T> s() { return {s_.data(), s_.size()}; }
    std::span<const T> s() const { return {s_.data(), s_.size()}; }

    AdamOptions options_;
    Buffer<B, T> m_, s_;
    long t_ = 0;
    const char* who_;  // "Adam" or "Adamax", for messages
};

}  // namespace detail


/// Adam (torch.optim.Adam semantics). See the contract at the top of this header.
template <Scalar T, Backend B = Cpu>
class Adam : public detail::MomentOptimizer<T, B> {
    using base = detail::MomentOptimizer<T, B>;
    using base::m_, base::s_, base::options_, base::t_;

public:
    /// The same optimizer with its state in host memory (checkpoints of a device optimizer use it).
    using host_type = Adam<T, Cpu>;

    explicit Adam(std::size_t parameter_count, const AdamOptions& options = {})
        : base(parameter_count, options, "Adam") {}

    /// One update from the gradients times grad_scale (rounded to T once and applied as each gradient
    /// is read: train_step's clipping factor, without a pass over the gradients of its own; the
    /// gradient span is not changed).
    void step(std::span<T> params, std::span<const T> grads, double lr, double grad_scale = 1.0) {
        detail::check_step_sizes("Adam", m_.size(), params.size(), grads.size());
        ++t_;
        const double b1 = options_.beta1, b2 = options_.beta2, eps = options_.eps, wd = options_.weight_decay;
        const double step_size = lr / (1.0 - std::pow(b1, double(t_)));
        const double inv_sqrt_bc2 = 1.0 / std::sqrt(1.0 - std::pow(b2, double(t_)));
        const kernels::AdamCoefficients<T> k{T(b1), T(1.0 - b1), T(b2), T(1.0 - b2), T(wd), T(step_size),
                                             T(inv_sqrt_bc2), T(eps), T(grad_scale)};
        kernels::adam_step(B{}, params.data(), grads.data(), m_.data(), s_.data(), m_.size(), k);
    }

    /// Second raw moment v ("exp_avg_sq").
    std::span<T> v() { return this->s(); }
    std::span<const T> v() const { return this->s(); }

    /// The state vectors with torch.optim's names, for checkpoints.
    std::array<std::pair<std::string_view, std::span<T>>, 2> state_tensors() {
        return {{{"exp_avg", this->m()}, {"exp_avg_sq", this->s()}}};
    }
    std::array<std::pair<std::string_view, std::span<const T>>, 2> state_tensors() const {
        return {{{"exp_avg", this->m()}, {"exp_avg_sq", this->s()}}};
    }
};

/// Adamax (Adam with the infinity norm). See the contract at the top of this header.
template <Scalar T, Backend B = Cpu>
class Adamax : public detail::MomentOptimizer<T, B> {
    using base = detail::MomentOptimizer<T, B>;
    using base::m_, base::s_, base::options_, base::t_;

public:
    using host_type = Adamax<T, Cpu>;

    explicit Adamax(std::size_t parameter_count, const AdamOptions& options = {})
        : base(parameter_count, options, "Adamax") {}

    /// One update from the gradients times grad_scale (see Adam::step).
    void step(std::span<T> params, std::span<const T> grads, double lr, double grad_scale = 1.0) {
        detail::check_step_sizes("Adamax", m_.size(), params.size(), grads.size());
        ++t_;
        const double b1 = options_.beta1, b2 = options_.beta2, eps = options_.eps, wd = options_.weight_decay;
        const double step_size = lr / (1.0 - std::pow(b1, double(t_)));
        const kernels::AdamCoefficients<T> k{T(b1), T(1.0 - b1), T(b2), T(1.0 - b2), T(wd), T(step_size), T(0),
                                             T(eps), T(grad_scale)};
        kernels::adamax_step(B{}, params.data(), grads.data(), m_.data(), s_.data(), m_.size(), k);
    }

    /// Exponentially weighted infinity norm u ("exp_inf").
    std::span<T> u() { return this->s(); }
    std::span<const T> u() const { return this->s(); }

    /// The state vectors with torch.optim's names, for checkpoints.
    std::array<std::pair<std::string_view, std::span<T>>, 2> state_tensors() {
        return {{{"exp_avg", this->m()}, {"exp_inf", this->s()}}};
    }
    std::array<std::pair<std::string_view, std::span<const T>>, 2> state_tensors() const {
        return {{{"exp_avg", this->m()}, {"exp_inf", this->s()}}};
    }
};

}  // namespace bijou
