// bijou/train/schedule.hpp — learning-rate schedules: pure functions of the step number (an anneal
// also of the run's progress), O(1), with no state, so resuming from a checkpoint needs only the step.
//
// LinearWarmup{base_lr, warmup_steps}: lr(step) = base_lr · min(1, (step + 1) / warmup_steps)
//   for step = 0, 1, 2, ... (the first update already uses base_lr / warmup_steps, the update with
//   index warmup_steps − 1 the full base_lr), as in openai/glow. warmup_steps <= 0 means no warm-up:
//   lr(step) = base_lr for every step. Steps before 0 give 0.
//
// Anneals are multipliers of the rate that fall from 1 over a run. Each is evaluated either at a step
// of a run of `steps` steps, with progress p = step / (steps − 1) clamped to [0, 1] (the first step
// has p = 0, the last, steps − 1, has p = 1), or with at(p) at a progress the caller measures itself
// (a run that ends on a time budget); a p outside [0, 1] counts as 0 or 1.
//   NoAnneal{}                         1
//   LinearAnneal{steps, fraction = 1}  1 until p = 1 − fraction, then linearly to 0 at p = 1:
//                                      min(1, (1 − p) / fraction). fraction = 0: no anneal (1).
//   CosineAnneal{steps, floor = 0}     floor + (1 − floor) · ½(1 + cos πp): from 1 to floor (one cycle
//                                      of SGDR, Loshchilov & Hutter 2017, eq. 5, in units of the rate).
//
// Schedule{base_lr, warmup_steps, anneal} composes them: warm-up, then anneal.
//   lr(step) = LinearWarmup{base_lr · anneal(step), warmup_steps}.lr(step), i.e. base_lr · anneal ·
//   warm-up: the two factors multiply and the anneal's progress counts from step 0, so during a short
//   warm-up the anneal is still ≈ 1 (not Hugging Face's warm-up-then-cosine-over-the-rest).
//
// Validation: a field out of range throws bijou::invalid_argument naming the type, the field and its
// value (steps < 1 when a step is given, fraction or floor outside [0, 1], a non-finite progress;
// Schedule: base_lr negative or not finite, warmup_steps < 0). LinearWarmup keeps its documented
// semantics and accepts any value.
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <variant>

#include "bijou/core/error.hpp"

namespace bijou {

struct LinearWarmup {
    double base_lr = 1e-3;
    long warmup_steps = 0;

    double lr(long step) const {
        if (warmup_steps <= 0) return base_lr;
        const double f = double(step + 1) / double(warmup_steps);
        return base_lr * std::clamp(f, 0.0, 1.0);
    }
    double operator()(long step) const { return lr(step); }
};

namespace detail {

inline void check_unit_interval(const char* type, const char* field, double v) {
    if (!(v >= 0.0 && v <= 1.0))
        throw invalid_argument(std::string(type) + ": " + field + " = " + std::to_string(v) + " must be in [0, 1]");
}

/// A caller's progress, clamped to [0, 1]; a non-finite one throws.
inline double checked_progress(const char* type, double p) {
    if (!std::isfinite(p))
        throw invalid_argument(std::string(type) + ": progress = " + std::to_string(p) + " must be finite");
    return std::clamp(p, 0.0, 1.0);
}

/// step / (steps − 1) clamped to [0, 1]: 0 at the first step, 1 at the last.
inline double step_progress(const char* type, long step, long steps) {
    if (steps < 1)
        throw invalid_argument(std::string(type) + ": steps = " + std::to_string(steps) +
                               " must be >= 1 (the run's length, for an anneal by step)");
    return std::clamp(double(step) / double(std::max(1L, steps - 1)), 0.0, 1.0);
}

}  // namespace detail

/// The rate is not annealed: a multiplier of 1.
struct NoAnneal {
    void check() const {}
    double at(double progress) const {
        detail::checked_progress("NoAnneal", progress);
        return 1.0;
    }
    double operator()(long) const { return 1.0; }
};

/// 1 until the final `fraction` of the run, then linearly to 0 (see the top of this header).
struct LinearAnneal {
    long steps = 0;         ///< the run's length (operator()(step) only; at(progress) does not use it)
    double fraction = 1.0;  ///< the final fraction of the run over which the multiplier falls to 0 (0: none)

    void check() const { detail::check_unit_interval("LinearAnneal", "fraction", fraction); }
    double at(double progress) const {
        check();
        const double p = detail::checked_progress("LinearAnneal", progress);
        return fraction == 0.0 ? 1.0 : std::clamp((1.0 - p) / fraction, 0.0, 1.0);
    }
    double operator()(long step) const { return at(detail::step_progress("LinearAnneal", step, steps)); }
};

/// Half a cosine from 1 down to `floor` over the run (see the top of this header).
struct CosineAnneal {
    long steps = 0;      ///< the run's length (operator()(step) only; at(progress) does not use it)
    double floor = 0.0;  ///< the final multiplier, a fraction of the base rate

    void check() const { detail::check_unit_interval("CosineAnneal", "floor", floor); }
    double at(double progress) const {
        check();
        const double p = detail::checked_progress("CosineAnneal", progress);
        return floor + (1 - floor) * 0.5 * (1 + std::cos(std::numbers::pi * p));
    }
    double operator()(long step) const { return at(detail::step_progress("CosineAnneal", step, steps)); }
};

/// One of the anneals; a value type, so a TrainConfig or a Schedule holding it stays an aggregate.
using Anneal = std::variant<NoAnneal, LinearAnneal, CosineAnneal>;

/// Warm-up, then anneal: lr(step) = LinearWarmup{base_lr · anneal(step), warmup_steps}.lr(step).
struct Schedule {
    double base_lr = 1e-3;
    long warmup_steps = 0;
    Anneal anneal = NoAnneal{};

    void check() const {
        if (!(base_lr >= 0.0) || !std::isfinite(base_lr))
            throw invalid_argument("Schedule: base_lr = " + std::to_string(base_lr) + " must be finite and >= 0");
        if (warmup_steps < 0)
            throw invalid_argument("Schedule: warmup_steps = " + std::to_string(warmup_steps) + " must be >= 0");
        std::visit([](const auto& a) { a.check(); }, anneal);
    }
    double lr(long step) const {
        check();
        const double a = std::visit([step](const auto& an) { return an(step); }, anneal);
        return LinearWarmup{base_lr * a, warmup_steps}.lr(step);
    }
    double operator()(long step) const { return lr(step); }
};

}  // namespace bijou
