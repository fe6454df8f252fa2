// Learning-rate schedules, usable with any optimizer: each maps a step (0, 1, ...) and a group's
// initial lr to that step's lr. apply() sets every group of an optimizer.
//
//     optim::WarmupCosine schedule(/*warmup_steps=*/100, /*decay_steps=*/5000, /*min_lr_ratio=*/0.1);
//     for (int step = 0; step < 5000; ++step) { schedule.apply(adam, step); ... adam.step(); }
#pragma once

#include <cstdint>

#include "optim/optimizer.h"

namespace xgrad::optim {

class Schedule {
public:
    virtual ~Schedule() = default;
    virtual double lr(std::int64_t step, double initial_lr) const = 0;
    void apply(Optimizer& optimizer, std::int64_t step) const;   // every group: lr(step, its initial_lr)
};

// lr = initial_lr at every step
class ConstantLR : public Schedule {
public:
    double lr(std::int64_t, double initial_lr) const override { return initial_lr; }
};

// lr = initial_lr * gamma^(step / step_size), as torch.optim.lr_scheduler.StepLR
class StepLR : public Schedule {
public:
    StepLR(std::int64_t step_size, double gamma = 0.1);
    double lr(std::int64_t step, double initial_lr) const override;

private:
    std::int64_t step_size_;
    double gamma_;
};

// nanoGPT's schedule: a linear warmup to initial_lr over warmup_steps, then a cosine decay to
// min_lr_ratio * initial_lr at decay_steps, and that floor afterwards:
//   step < warmup:  initial_lr (step + 1) / (warmup + 1)
//   step > decay:   min_lr
//   otherwise:      min_lr + (initial_lr - min_lr) (1 + cos(pi (step - warmup) / (decay - warmup))) / 2
class WarmupCosine : public Schedule {
public:
    WarmupCosine(std::int64_t warmup_steps, std::int64_t decay_steps, double min_lr_ratio = 0.1);
    double lr(std::int64_t step, double initial_lr) const override;

private:
    std::int64_t warmup_, decay_;
    double min_ratio_;
};

}  // namespace xgrad::optim
