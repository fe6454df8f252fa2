// cross_entropy: softmax rows (core/kernels.h), the negative log-likelihood and the mean, in one op.
#include "nn/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/autograd.h"
#include "core/kernels.h"

namespace xgrad::nn::functional {

Tensor cross_entropy(const Tensor& logits, const IdArray& targets, const CrossEntropyOptions& options)
{
    const Shape shape = logits.shape();
    XGRAD_CHECK(shape.size() == 2 || shape.size() == 3, "cross_entropy: expected logits (N, V) or (B, T, V), got ",
          shape_str(shape));
    const Shape rows_shape(shape.begin(), shape.end() - 1);
    XGRAD_CHECK(Shape(targets.shape().begin(), targets.shape().end()) == rows_shape, "cross_entropy: targets of shape ",
          shape_str(targets.shape()), " do not match logits ", shape_str(shape), " (expected targets ",
          shape_str(rows_shape), ")");
    const float smoothing = options.label_smoothing_;
    XGRAD_CHECK(smoothing >= 0.0f && smoothing <= 1.0f, "cross_entropy: label_smoothing must be in [0, 1], got ", smoothing);
    const std::size_t V = shape.back(), R = targets.size();
    const auto Vi = static_cast<std::int64_t>(V);
    const std::int64_t* target = targets.data();
    std::size_t count = 0;                                     // targets that are not ignored
    for (std::size_t r = 0; r < R; ++r) {
        if (target[r] == options.ignore_index_) continue;
        XGRAD_CHECK(target[r] >= 0 && target[r] < Vi, "cross_entropy: target ", target[r], " at position ",
              position_str(r, targets.shape()), " is out of range for ", V, " classes (valid targets are 0 to ",
              Vi - 1, ", or ignore_index = ", options.ignore_index_, ")");
        ++count;
    }

    // forward: loss_r = -(1 - s) log p[t] - s * mean_c log p[c],  log p = x - log(sum(exp(x)))
    const float* x = logits.data().data();
    Array probs(Shape{R, V});                                  // softmax(x), kept for the backward
    std::vector<float> log_sum_exp(R, 0.0f);
    softmax_rows(x, probs.data(), R, V, log_sum_exp.data());
    double total = 0.0;
    for (std::size_t r = 0; r < R; ++r) {
        if (target[r] == options.ignore_index_) continue;
        const float* row = x + r * V;
        const float log_p_target = row[target[r]] - log_sum_exp[r];
        const float mean_log_p = smoothing > 0.0f ? lane_sum(row, V) / static_cast<float>(V) - log_sum_exp[r] : 0.0f;
        total += -(1.0f - smoothing) * log_p_target - smoothing * mean_log_p;
    }
    const float loss = count ? static_cast<float>(total / static_cast<double>(count))
                             : std::numeric_limits<float>::quiet_NaN();   // PyTorch: mean over nothing

    return from_op(Array(loss), {logits}, "cross_entropy",
                   [logits, targets, probs = std::move(probs), options, count](GradOutput& grad_out) {
        // d loss / d x[r, c] = (p[c] - q[c]) / count,  p = softmax(x),  q = (1 - s) one_hot(t) + s / V;
        // ignored rows: 0
        const std::size_t R = probs.shape()[0], V = probs.shape()[1];
        const float s = options.label_smoothing_, scale = grad_out.read()() / static_cast<float>(count);
        const float uniform = s / static_cast<float>(V);
        Array grad(logits.data().shape());
        float* gd = grad.data();
        const float* pd = probs.data();
        const std::int64_t* target = targets.data();
        const std::int64_t ignore = options.ignore_index_;
        parallel_rows(R, V, [=](std::size_t first, std::size_t last) {
            for (std::size_t r = first; r < last; ++r) {
                float* g = gd + r * V;
                if (target[r] == ignore) {
                    std::fill_n(g, V, 0.0f);
                    continue;
                }
                const float* p = pd + r * V;
                for (std::size_t c = 0; c < V; ++c) g[c] = (p[c] - uniform) * scale;
                g[target[r]] -= (1.0f - s) * scale;
            }
        });
        logits.accumulate_grad(std::move(grad));
    });
}

}  // namespace xgrad::nn::functional
