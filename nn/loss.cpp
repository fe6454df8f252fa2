// cross_entropy: log-softmax, the negative log-likelihood and the mean in one pass per row.
#include "nn/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace xgrad::nn::functional {

Tensor cross_entropy(const Tensor& logits, const IdArray& targets, const CrossEntropyOptions& options)
{
    const Shape shape = logits.shape();
    check(shape.size() == 2 || shape.size() == 3, "cross_entropy: expected logits (N, V) or (B, T, V), got ",
          shape_str(shape));
    const Shape rows_shape(shape.begin(), shape.end() - 1);
    check(Shape(targets.shape().begin(), targets.shape().end()) == rows_shape, "cross_entropy: targets of shape ",
          shape_str(targets.shape()), " do not match logits ", shape_str(shape), " (expected targets ",
          shape_str(rows_shape), ")");
    const float smoothing = options.label_smoothing_;
    check(smoothing >= 0.0f && smoothing <= 1.0f, "cross_entropy: label_smoothing must be in [0, 1], got ", smoothing);
    const std::size_t V = shape.back(), R = targets.size();
    const auto Vi = static_cast<std::int64_t>(V);
    const std::int64_t* target = targets.data();
    std::size_t count = 0;                                     // targets that are not ignored
    for (std::size_t r = 0; r < R; ++r) {
        if (target[r] == options.ignore_index_) continue;
        check(target[r] >= 0 && target[r] < Vi, "cross_entropy: target ", target[r], " at position ",
              position_str(r, targets.shape()), " is out of range for ", V, " classes (valid targets are 0 to ",
              Vi - 1, ", or ignore_index = ", options.ignore_index_, ")");
        ++count;
    }

    // forward, row by row: loss_r = -(1 - s) log p[t] - s * mean_c log p[c],  log p = x - logsumexp(x)
    Array probs(Shape{R, V});                                       // softmax, kept for the backward
    double total = 0.0;
    const float* x = logits.data().data();
    for (std::size_t r = 0; r < R; ++r) {
        const float* row = x + r * V;
        float* p = probs.data() + r * V;
        const float m = *std::max_element(row, row + V);
        float sum_exp = 0.0f, sum_x = 0.0f;
        for (std::size_t c = 0; c < V; ++c) {
            p[c] = std::exp(row[c] - m);
            sum_exp += p[c];
            sum_x += row[c] - m;
        }
        for (std::size_t c = 0; c < V; ++c) p[c] /= sum_exp;
        if (target[r] == options.ignore_index_) continue;
        const float log_sum = std::log(sum_exp);               // logsumexp(x) - m
        const float log_p_target = (row[target[r]] - m) - log_sum;
        const float mean_log_p = sum_x / static_cast<float>(V) - log_sum;
        total += -(1.0f - smoothing) * log_p_target - smoothing * mean_log_p;
    }
    const float loss = count ? static_cast<float>(total / static_cast<double>(count))
                             : std::numeric_limits<float>::quiet_NaN();   // PyTorch: mean over nothing

    return Tensor::from_op(Array(loss), {logits}, "cross_entropy",
                           [logits, targets, probs = std::move(probs), options, count](const Array& grad_out, const Array&) {
        // d loss / d x[r, c] = (p[c] - q[c]) / count,  q = (1 - s) one_hot(t) + s / V; ignored rows: 0
        const std::size_t V = probs.shape()[1], R = probs.shape()[0];
        const float s = options.label_smoothing_, scale = grad_out() / static_cast<float>(count);
        Array grad = xt::zeros<float>(logits.data().shape());
        for (std::size_t r = 0; r < R; ++r) {
            const std::int64_t t = targets.data()[r];
            if (t == options.ignore_index_) continue;
            const float* p = probs.data() + r * V;
            float* g = grad.data() + r * V;
            for (std::size_t c = 0; c < V; ++c) g[c] = (p[c] - s / static_cast<float>(V)) * scale;
            g[t] -= (1.0f - s) * scale;
        }
        logits.accumulate_grad(std::move(grad));
    });
}

}  // namespace xgrad::nn::functional
