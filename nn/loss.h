// Losses, as torch.nn.functional.
#pragma once

#include <string>

#include "core/ops.h"

namespace xgrad::nn::functional {

struct CrossEntropyOptions {
    // Targets equal to this contribute nothing, and are not counted in the mean.
    CrossEntropyOptions& ignore_index(std::int64_t v) { ignore_index_ = v; return *this; }
    // The target distribution becomes (1 - s) one_hot + s / V, as PyTorch's label_smoothing.
    CrossEntropyOptions& label_smoothing(float v) { label_smoothing_ = v; return *this; }
    // One weight per class, shape (V), as PyTorch's `weight`: target t's loss is scaled by w[t] and the
    // mean divides by the sum of the targets' weights. A constant: no gradient flows to it (PyTorch does
    // not differentiate by it either), so one that requires grad is refused.
    CrossEntropyOptions& weight(Tensor w) { weight_ = std::move(w); return *this; }
    // "mean" (the default), "sum", or "none": one loss per target, shaped as the targets, 0 where ignored.
    CrossEntropyOptions& reduction(std::string v) { reduction_ = std::move(v); return *this; }

    std::int64_t ignore_index_ = -100;
    float label_smoothing_ = 0.0f;
    Tensor weight_;
    std::string reduction_ = "mean";
};

// logits (..., V) with targets (...): -log softmax(logits)[target] per target (with label smoothing,
// the smoothed cross-entropy; with weights, scaled by the target's), reduced as options say. Classes
// are on the last axis, as a language model produces them (PyTorch wants (B, V, T) for 3-D input;
// nanoGPT reshapes to (B*T, V), which gives the same value here).
// One fused, numerically stable op: its backward is (softmax - target distribution) times the weights.
Tensor cross_entropy(const Tensor& logits, const IdArray& targets, const CrossEntropyOptions& options = {});
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options = {});   // int64

}  // namespace xgrad::nn::functional
