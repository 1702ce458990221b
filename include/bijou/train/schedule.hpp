// bijou/train/schedule.hpp — learning-rate schedules: a pure function of the step number.
//
// LinearWarmup{base_lr, warmup_steps}: lr(step) = base_lr · min(1, (step + 1) / warmup_steps)
//   for step = 0, 1, 2, ... (the first update already uses base_lr / warmup_steps, the update with
//   index warmup_steps − 1 the full base_lr), as in openai/glow. warmup_steps <= 0 means no warm-up:
//   lr(step) = base_lr for every step. Steps before 0 give 0. O(1), no state, so resuming from a
//   checkpoint needs only the step number.
#pragma once

#include <algorithm>

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

}  // namespace bijou
