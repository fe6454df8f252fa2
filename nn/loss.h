// Losses, as torch.nn.functional.
#pragma once

#include "core/ops.h"

namespace xgrad::nn::functional {

struct CrossEntropyOptions {
    // Targets equal to this contribute nothing, and are not counted in the mean.
    CrossEntropyOptions& ignore_index(std::int64_t v) { ignore_index_ = v; return *this; }
    // The target distribution becomes (1 - s) one_hot + s / V, as PyTorch's label_smoothing.
    CrossEntropyOptions& label_smoothing(float v) { label_smoothing_ = v; return *this; }

    std::int64_t ignore_index_ = -100;
    float label_smoothing_ = 0.0f;
};

// logits (N, V) with targets (N), or logits (B, T, V) with targets (B, T) -> () : the mean over the
// non-ignored targets of -log softmax(logits)[target] (with label smoothing, of the smoothed
// cross-entropy). Classes are on the last axis, as a language model produces them (PyTorch wants
// (B, V, T) for 3-D input; nanoGPT reshapes to (B*T, V), which gives the same value here).
// One fused, numerically stable op: its backward is (softmax - target distribution) / count.
Tensor cross_entropy(const Tensor& logits, const IdArray& targets, const CrossEntropyOptions& options = {});

}  // namespace xgrad::nn::functional
