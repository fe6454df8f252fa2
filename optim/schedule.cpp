// The learning-rate schedules.
#include "optim/schedule.h"

#include <cmath>
#include <numbers>

#include "core/check.h"

namespace xgrad::optim {

void Schedule::apply(Optimizer& optimizer, std::int64_t step) const
{
    XGRAD_CHECK(step >= 0, "Schedule: step must be non-negative, got ", step);
    for (auto& group : optimizer.param_groups()) group.lr = lr(step, group.initial_lr);
}

StepLR::StepLR(std::int64_t step_size, double gamma) : step_size_(step_size), gamma_(gamma)
{
    XGRAD_CHECK(step_size > 0, "StepLR: step_size must be positive, got ", step_size);
    XGRAD_CHECK(gamma > 0.0, "StepLR: gamma must be positive, got ", gamma);
}

double StepLR::lr(std::int64_t step, double initial_lr) const
{
    return initial_lr * std::pow(gamma_, static_cast<double>(step / step_size_));
}

WarmupCosine::WarmupCosine(std::int64_t warmup_steps, std::int64_t decay_steps, double min_lr_ratio)
    : warmup_(warmup_steps), decay_(decay_steps), min_ratio_(min_lr_ratio)
{
    XGRAD_CHECK(warmup_steps >= 0, "WarmupCosine: warmup_steps must be non-negative, got ", warmup_steps);
    XGRAD_CHECK(decay_steps > warmup_steps, "WarmupCosine: decay_steps (", decay_steps, ") must exceed warmup_steps (",
          warmup_steps, ")");
    XGRAD_CHECK(min_lr_ratio >= 0.0 && min_lr_ratio <= 1.0, "WarmupCosine: min_lr_ratio must be in [0, 1], got ", min_lr_ratio);
}

double WarmupCosine::lr(std::int64_t step, double initial_lr) const
{
    const double min_lr = min_ratio_ * initial_lr;
    if (step < warmup_) return initial_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_ + 1);
    if (step > decay_) return min_lr;
    const double progress = static_cast<double>(step - warmup_) / static_cast<double>(decay_ - warmup_);
    return min_lr + 0.5 * (1.0 + std::cos(std::numbers::pi * progress)) * (initial_lr - min_lr);
}

}  // namespace xgrad::optim
