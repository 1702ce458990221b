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
// state_tensors() with torch's state names, and the step count t through step_count()/set_step_count().
// step(): O(P) for P parameters, no allocation; elementwise, so the result does not depend on the
// thread count (OpenMP splits large spans). A length mismatch throws bijou::invalid_argument.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/core/error.hpp"

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

inline void check_adam_options(const AdamOptions& o, const char* who) {
    auto bad = [&](const char* field, double v, const char* range) {
        throw invalid_argument(std::string(who) + ": option " + field + " = " + std::to_string(v) + " must be " +
                               range);
    };
    if (!(o.beta1 >= 0.0 && o.beta1 < 1.0)) bad("beta1", o.beta1, "in [0, 1)");
    if (!(o.beta2 >= 0.0 && o.beta2 < 1.0)) bad("beta2", o.beta2, "in [0, 1)");
    if (!(o.eps >= 0.0) || !std::isfinite(o.eps)) bad("eps", o.eps, "finite and >= 0");
    if (!(o.weight_decay >= 0.0) || !std::isfinite(o.weight_decay))
        bad("weight_decay", o.weight_decay, "finite and >= 0");
}

inline void check_step_sizes(const char* who, std::size_t expected, std::size_t np, std::size_t ng) {
    if (np != expected || ng != expected)
        throw invalid_argument(std::string(who) + "::step: built for " + std::to_string(expected) +
                               " parameters, got " + std::to_string(np) + " parameters and " + std::to_string(ng) +
                               " gradients");
}

/// Spans this long are updated by all OpenMP threads; shorter ones serially.
inline constexpr std::size_t parallel_threshold = std::size_t(1) << 16;

/// f(lo, hi) over [0, n) in fixed blocks of 4096 (multiples of any SIMD width), OpenMP across blocks.
template <class F>
void for_each_block(std::size_t n, F&& f) {
    constexpr std::size_t block = 4096;
    const std::ptrdiff_t blocks = std::ptrdiff_t((n + block - 1) / block);
    bijou::detail::parallel_for(std::ptrdiff_t(blocks), n > parallel_threshold, [&](std::ptrdiff_t b) {
        f(std::size_t(b) * block, std::min(n, std::size_t(b + 1) * block));
    });
}

}  // namespace detail

namespace detail {

/// What Adam and Adamax share: options, the first moment m, a second statistic s (Adam's v,
/// Adamax's u), the step count t, and the accessors a checkpoint needs.
template <Scalar T>
class MomentOptimizer {
public:
    std::size_t size() const { return m_.size(); }
    const AdamOptions& options() const { return options_; }

    /// Steps taken (t in the bias corrections); restore it together with the state vectors.
    long step_count() const { return t_; }
    void set_step_count(long t) { t_ = t; }

    /// First moment m ("exp_avg").
    std::span<T> m() { return m_; }
    std::span<const T> m() const { return m_; }

    /// Forget the state (as if just constructed).
    void reset() {
        std::fill(m_.begin(), m_.end(), T(0));
        std::fill(s_.begin(), s_.end(), T(0));
        t_ = 0;
    }

protected:
    MomentOptimizer(std::size_t parameter_count, const AdamOptions& options, const char* who)
        : options_(options), m_(parameter_count, T(0)), s_(parameter_count, T(0)) {
        check_adam_options(options_, who);
    }

    AdamOptions options_;
    std::vector<T> m_, s_;
    long t_ = 0;
};

}  // namespace detail


/// Adam (torch.optim.Adam semantics). See the contract at the top of this header.
template <Scalar T>
class Adam : public detail::MomentOptimizer<T> {
    using base = detail::MomentOptimizer<T>;
    using base::m_, base::s_, base::options_, base::t_;

public:
    explicit Adam(std::size_t parameter_count, const AdamOptions& options = {})
        : base(parameter_count, options, "Adam") {}

    void step(std::span<T> params, std::span<const T> grads, double lr) {
        detail::check_step_sizes("Adam", m_.size(), params.size(), grads.size());
        ++t_;
        const double b1 = options_.beta1, b2 = options_.beta2, eps = options_.eps, wd = options_.weight_decay;
        const double step_size = lr / (1.0 - std::pow(b1, double(t_)));
        const double inv_sqrt_bc2 = 1.0 / std::sqrt(1.0 - std::pow(b2, double(t_)));
        T* p = params.data();
        const T* g = grads.data();
        T* m = m_.data();
        T* v = s_.data();
        const std::size_t n = m_.size();
        const T c1 = T(b1), c1m = T(1.0 - b1), c2 = T(b2), c2m = T(1.0 - b2), cwd = T(wd);
        const T cstep = T(step_size), cbc = T(inv_sqrt_bc2), ceps = T(eps);
        // Per-element arithmetic in T, as torch does. The body goes through xsimd because std::sqrt
        // does not vectorise without -fno-math-errno, which a header-only library cannot impose.
        auto update = [=](auto gi, auto pi, auto mi, auto vi, auto& p_out, auto& m_out, auto& v_out) {
            gi = gi + cwd * pi;
            mi = c1 * mi + c1m * gi;
            vi = c2 * vi + c2m * gi * gi;
            m_out = mi;
            v_out = vi;
            p_out = pi - cstep * mi / (xsimd::sqrt(vi) * cbc + ceps);
        };
        detail::for_each_block(n, [&](std::size_t lo, std::size_t hi) {
            using V = xsimd::batch<T>;
            std::size_t i = lo;
            for (; i + V::size <= hi; i += V::size) {
                V po, mo, vo;
                update(V::load_unaligned(g + i), V::load_unaligned(p + i), V::load_unaligned(m + i),
                       V::load_unaligned(v + i), po, mo, vo);
                po.store_unaligned(p + i);
                mo.store_unaligned(m + i);
                vo.store_unaligned(v + i);
            }
            for (; i < hi; ++i) update(g[i], p[i], m[i], v[i], p[i], m[i], v[i]);
        });
    }

    /// Second raw moment v ("exp_avg_sq").
    std::span<T> v() { return s_; }
    std::span<const T> v() const { return s_; }

    /// The state vectors with torch.optim's names, for checkpoints.
    std::array<std::pair<std::string_view, std::span<T>>, 2> state_tensors() {
        return {{{"exp_avg", std::span<T>(m_)}, {"exp_avg_sq", std::span<T>(s_)}}};
    }
    std::array<std::pair<std::string_view, std::span<const T>>, 2> state_tensors() const {
        return {{{"exp_avg", std::span<const T>(m_)}, {"exp_avg_sq", std::span<const T>(s_)}}};
    }
};

/// Adamax (Adam with the infinity norm). See the contract at the top of this header.
template <Scalar T>
class Adamax : public detail::MomentOptimizer<T> {
    using base = detail::MomentOptimizer<T>;
    using base::m_, base::s_, base::options_, base::t_;

public:
    explicit Adamax(std::size_t parameter_count, const AdamOptions& options = {})
        : base(parameter_count, options, "Adamax") {}

    void step(std::span<T> params, std::span<const T> grads, double lr) {
        detail::check_step_sizes("Adamax", m_.size(), params.size(), grads.size());
        ++t_;
        const double b1 = options_.beta1, b2 = options_.beta2, eps = options_.eps, wd = options_.weight_decay;
        const double step_size = lr / (1.0 - std::pow(b1, double(t_)));
        T* p = params.data();
        const T* g = grads.data();
        T* m = m_.data();
        T* u = s_.data();
        const std::ptrdiff_t n = std::ptrdiff_t(m_.size());
        bijou::detail::parallel_for(std::ptrdiff_t(n), std::size_t(n) > detail::parallel_threshold, [&](std::ptrdiff_t i) {
            const T gi = g[i] + T(wd) * p[i];
            const T mi = T(b1) * m[i] + T(1.0 - b1) * gi;
            const T ui = std::max(T(b2) * u[i], std::abs(gi));
            m[i] = mi;
            u[i] = ui;
            p[i] -= T(step_size) * mi / (ui + T(eps));
        });
    }

    /// Exponentially weighted infinity norm u ("exp_inf").
    std::span<T> u() { return s_; }
    std::span<const T> u() const { return s_; }

    /// The state vectors with torch.optim's names, for checkpoints.
    std::array<std::pair<std::string_view, std::span<T>>, 2> state_tensors() {
        return {{{"exp_avg", std::span<T>(m_)}, {"exp_inf", std::span<T>(s_)}}};
    }
    std::array<std::pair<std::string_view, std::span<const T>>, 2> state_tensors() const {
        return {{{"exp_avg", std::span<const T>(m_)}, {"exp_inf", std::span<const T>(s_)}}};
    }
};

}  // namespace bijou
