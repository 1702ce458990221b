// bijou/train/trainer.hpp — one guarded training step: loss and gradient, clipping, lr schedule, update.
//
// train_step(model, opt, x, cfg, step[, on_skip]):
//   1. loss = model.nll_and_gradient(x)            (mean NLL in nats; sets model.gradients())
//   2. norm = ‖model.gradients()‖₂                 (double, kernels::sum_squares of the model's backend:
//             thread-count independent; on Cpu exactly clip.hpp's grad_norm)
//   3. lr   = Schedule{cfg.lr, cfg.warmup, cfg.anneal}.lr(step)   (schedule.hpp: warm-up, then anneal;
//             with the default anneal, NoAnneal, exactly LinearWarmup{cfg.lr, cfg.warmup}.lr(step))
//   4. if loss or norm is not finite: on_skip("bijou: step N: non-finite loss (nan); update skipped")
//      (or "... non-finite gradient norm (inf) ...") and return with skipped = true. The parameters
//      and the optimizer state are left untouched, bit for bit (design §6: never silently applied).
//   5. otherwise update from the gradients clipped to cfg.clip (when cfg.clip > 0 and norm > cfg.clip:
//      scaled by f = cfg.clip / norm): opt.step(model.parameters(), model.gradients(), lr, f) for an
//      optimizer that takes a gradient scale (Adam, Adamax: f rounded to T, applied as it reads each
//      gradient; the gradients themselves stay unclipped), else the gradients scaled in place by f
//      (in double, rounded to T once) and opt.step(model.parameters(), model.gradients(), lr).
//   Returns {step, loss, norm before clipping, lr, skipped}.
// `step` is the caller's 0-based update counter; it drives the schedule and names the step in reports.
// The raw overload takes (const T* x, int n) and calls model.nll_and_gradient_raw(x, n).
// Conditional models (core/context.hpp): train_step(model, opt, x, c, cfg, step[, on_skip]) with the
// batch's contexts c (n, K), and the raw train_step(model, opt, x, c, n, cfg, step) with host pointers;
// step 1 is then model.nll_and_gradient(x, c) (which also sets model.context_gradient()).
// on_skip is any callable taking const std::string& (a template parameter: nothing is wrapped in a
// std::function); the default, default_report, writes the message and a newline to std::cerr.
// Allocation: none beyond what the model does (Flow: none after the first call at a batch size), except
// for building the message when a step is skipped. An invalid TrainConfig throws bijou::invalid_argument.
// Repeatability: with the same seed, data order and thread count, two runs produce the same parameters
// bit for bit (every reduction in bijou has a fixed order for a fixed thread count).
#pragma once

#include <cmath>
#include <concepts>
#include <iostream>
#include <span>
#include <string>
#include <type_traits>
#include <variant>

#include "bijou/core/error.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/kernels/cpu/totals.hpp"
#include "bijou/kernels/cuda/totals.hpp"
#include "bijou/kernels/reference/totals.hpp"
#include "bijou/train/adam.hpp"
#include "bijou/train/clip.hpp"
#include "bijou/train/schedule.hpp"

namespace bijou {

/// Hyper-parameters of train_step.
struct TrainConfig {
    double lr = 1e-3;  ///< base learning rate (after warm-up)
    int warmup = 0;    ///< linear warm-up steps (0: none)
    double clip = 0;   ///< max global gradient L2 norm (0: no clipping)
    Anneal anneal{};   ///< multiplies the rate: NoAnneal, LinearAnneal or CosineAnneal (schedule.hpp)
};

/// What happened in one train_step.
struct StepReport {
    long step = 0;         ///< the step number passed in
    double loss = 0;       ///< mean NLL of the batch (nats) before the update
    double grad_norm = 0;  ///< global gradient L2 norm before clipping
    double lr = 0;         ///< learning rate used (or that would have been used, when skipped)
    bool skipped = false;  ///< true: non-finite loss or gradient norm; nothing was updated
};

/// The default skip reporter: one line to std::cerr.
struct default_report_t {
    void operator()(const std::string& message) const { std::cerr << message << '\n'; }
};
inline constexpr default_report_t default_report{};

/// A model train_step can drive: a scalar type, a batch type, the loss-and-gradient call, and flat spans.
template <class M>
concept TrainableModel = Scalar<typename M::scalar> && requires(M& m, const typename M::data_tensor& x) {
    { m.nll_and_gradient(x) } -> std::convertible_to<double>;
    { m.parameters() } -> std::convertible_to<std::span<typename M::scalar>>;
    { m.gradients() } -> std::convertible_to<std::span<typename M::scalar>>;
};

/// A conditional model train_step can drive: the same, with a context batch beside the data.
template <class M>
concept ConditionalTrainableModel =
    Scalar<typename M::scalar> &&
    requires(M& m, const typename M::data_tensor& x, const typename M::context_tensor& c) {
        { m.nll_and_gradient(x, c) } -> std::convertible_to<double>;
        { m.parameters() } -> std::convertible_to<std::span<typename M::scalar>>;
        { m.gradients() } -> std::convertible_to<std::span<typename M::scalar>>;
    };

namespace detail {

inline void check_train_config(const TrainConfig& cfg) {
    if (!(cfg.lr >= 0.0) || !std::isfinite(cfg.lr))
        throw invalid_argument("TrainConfig: lr = " + std::to_string(cfg.lr) + " must be finite and >= 0");
    if (cfg.warmup < 0)
        throw invalid_argument("TrainConfig: warmup = " + std::to_string(cfg.warmup) + " must be >= 0");
    std::visit([](const auto& a) { (void)a(0); }, cfg.anneal);  // an anneal out of range throws
    if (!(cfg.clip >= 0.0) || !std::isfinite(cfg.clip))
        throw invalid_argument("TrainConfig: clip = " + std::to_string(cfg.clip) +
                               " must be finite and >= 0 (0: no clipping)");
}

inline std::string nonfinite_name(double v) { return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"); }

/// The model's backend (Cpu for a model type that does not name one).
template <class M>
struct model_backend {
    using type = Cpu;
};
template <class M>
    requires requires { typename M::backend; }
struct model_backend<M> {
    using type = typename M::backend;
};

template <class Model, class Opt, class OnSkip>
StepReport guarded_update(Model& model, Opt& opt, double loss, const TrainConfig& cfg, long step, OnSkip& on_skip) {
    using T = typename Model::scalar;
    using B = typename model_backend<Model>::type;
    if constexpr (requires { typename Opt::backend; })  // host backends share memory; others must match
        static_assert(std::is_same_v<typename Opt::backend, B> ||
                          (!ExecutorBackend<typename Opt::backend> && !ExecutorBackend<B>),
                      "bijou: the optimizer must be built for the model's backend (e.g. Adam<float, bijou::Cuda> "
                      "for a model whose backend is bijou::Cuda)");
    const std::span<T> g = model.gradients();
    const double norm = std::sqrt(kernels::sum_squares(B{}, g.data(), g.size()));
    StepReport r{step, loss, norm, Schedule{cfg.lr, cfg.warmup, cfg.anneal}.lr(step), false};
    const char* what = !std::isfinite(loss) ? "loss" : !std::isfinite(norm) ? "gradient norm" : nullptr;
    if (what) {
        r.skipped = true;
        on_skip("bijou: step " + std::to_string(step) + ": non-finite " + what + " (" +
                nonfinite_name(std::isfinite(loss) ? norm : loss) + "); update skipped");
        return r;
    }
    const double factor = cfg.clip > 0.0 && norm > cfg.clip ? cfg.clip / norm : 1.0;
    if constexpr (requires { opt.step(model.parameters(), std::span<const T>(g), r.lr, factor); }) {
        opt.step(model.parameters(), std::span<const T>(g), r.lr, factor);  // scaled as it reads them
    } else {
        if (factor != 1.0) kernels::scale(B{}, g.data(), g.size(), factor);
        opt.step(model.parameters(), std::span<const T>(g), r.lr);
    }
    return r;
}

}  // namespace detail

/// One guarded training step on the batch x (see the contract at the top of this header).
template <TrainableModel Model, class Opt, class OnSkip = default_report_t>
    requires Optimizer<Opt, typename Model::scalar> && std::invocable<OnSkip&, const std::string&>
StepReport train_step(Model& model, Opt& opt, const typename Model::data_tensor& x, const TrainConfig& cfg, long step,
                      OnSkip&& on_skip = OnSkip{}) {
    detail::check_train_config(cfg);
    const double loss = model.nll_and_gradient(x);
    return detail::guarded_update(model, opt, loss, cfg, step, on_skip);
}

/// The same on a raw batch of n samples, x: (n, data_size) sample-major.
template <TrainableModel Model, class Opt, class OnSkip = default_report_t>
    requires Optimizer<Opt, typename Model::scalar> && std::invocable<OnSkip&, const std::string&> &&
             requires(Model& m, const typename Model::scalar* p, int k) {
                 { m.nll_and_gradient_raw(p, k) } -> std::convertible_to<double>;
             }
StepReport train_step(Model& model, Opt& opt, const typename Model::scalar* x, int n, const TrainConfig& cfg, long step,
                      OnSkip&& on_skip = OnSkip{}) {
    detail::check_train_config(cfg);
    const double loss = model.nll_and_gradient_raw(x, n);
    return detail::guarded_update(model, opt, loss, cfg, step, on_skip);
}

/// One guarded training step of a conditional model on the batch x with contexts c.
template <ConditionalTrainableModel Model, class Opt, class OnSkip = default_report_t>
    requires Optimizer<Opt, typename Model::scalar> && std::invocable<OnSkip&, const std::string&>
StepReport train_step(Model& model, Opt& opt, const typename Model::data_tensor& x,
                      const typename Model::context_tensor& c, const TrainConfig& cfg, long step,
                      OnSkip&& on_skip = OnSkip{}) {
    detail::check_train_config(cfg);
    const double loss = model.nll_and_gradient(x, c);
    return detail::guarded_update(model, opt, loss, cfg, step, on_skip);
}

/// The same on raw host batches: x (n, data_size) and c (n, K), sample-major.
template <ConditionalTrainableModel Model, class Opt, class OnSkip = default_report_t>
    requires Optimizer<Opt, typename Model::scalar> && std::invocable<OnSkip&, const std::string&>
StepReport train_step(Model& model, Opt& opt, const typename Model::scalar* x, const typename Model::scalar* c, int n,
                      const TrainConfig& cfg, long step, OnSkip&& on_skip = OnSkip{}) {
    detail::check_train_config(cfg);
    const double loss = model.nll_and_gradient_raw(x, c, n);
    return detail::guarded_update(model, opt, loss, cfg, step, on_skip);
}

}  // namespace bijou
