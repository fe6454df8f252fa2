// cross_entropy: log-softmax, the negative log-likelihood and the mean in one pass per row.
#include "nn/loss.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "core/axes.h"
#include "core/check.h"

namespace xgrad::nn::functional {

namespace {

// The largest of n >= 1 floats, eight lanes at a time. GCC will not vectorise a float maximum by
// itself (nor, for rows as short as a toy vocabulary, through `omp simd` without stalls), so the
// lanes are a vector type of GCC and Clang.
float row_max(const float* v, std::size_t n)
{
    using Lanes = float __attribute__((vector_size(32)));
    float best = v[0];
    std::size_t c = 0;
    if (n >= 8) {
        Lanes lanes;
        std::memcpy(&lanes, v, sizeof lanes);
        for (c = 8; c + 8 <= n; c += 8) {
            Lanes next;
            std::memcpy(&next, v + c, sizeof next);
            lanes = next > lanes ? next : lanes;
        }
        for (int k = 0; k < 8; ++k) best = lanes[k] > best ? lanes[k] : best;
    }
    for (; c < n; ++c) best = v[c] > best ? v[c] : best;
    return best;
}

}  // namespace

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

    // forward: loss_r = -(1 - s) log p[t] - s * mean_c log p[c],  log p = x - m - log(sum exp(x - m))
    const float* x = logits.data().data();
    std::vector<float> row_max_of(R), inverse_sum(R);          // per row: max, and 1 / sum exp(x - max)
    Array exps(Shape{R, V});                                   // exp(x - max), kept for the backward
    for (std::size_t r = 0; r < R; ++r) {
        const float* row = x + r * V;
        const float m = row_max_of[r] = V ? row_max(row, V) : 0.0f;
        float* e = exps.data() + r * V;
        for (std::size_t c = 0; c < V; ++c) e[c] = row[c] - m;
    }
    xt::noalias(exps) = xt::exp(exps);                         // one vectorised pass (xsimd), in place
    double total = 0.0;
    for (std::size_t r = 0; r < R; ++r) {
        const float* row = x + r * V;
        const float sum_exp = lane_sum(exps.data() + r * V, V);
        inverse_sum[r] = 1.0f / sum_exp;
        if (target[r] == options.ignore_index_) continue;
        // sum_c (x_c - m), for the smoothing term only
        const float sum_x = smoothing > 0.0f ? lane_sum(row, V) - static_cast<float>(V) * row_max_of[r] : 0.0f;
        const float log_sum = std::log(sum_exp);               // logsumexp(x) - m
        const float log_p_target = (row[target[r]] - row_max_of[r]) - log_sum;
        const float mean_log_p = sum_x / static_cast<float>(V) - log_sum;
        total += -(1.0f - smoothing) * log_p_target - smoothing * mean_log_p;
    }
    const float loss = count ? static_cast<float>(total / static_cast<double>(count))
                             : std::numeric_limits<float>::quiet_NaN();   // PyTorch: mean over nothing

    return Tensor::from_op(Array(loss), {logits}, "cross_entropy",
                           [logits, targets, exps = std::move(exps), inverse_sum = std::move(inverse_sum), options,
                            count](Grad& grad_out, const Array&) {
        // d loss / d x[r, c] = (p[c] - q[c]) / count,  p = softmax(x),  q = (1 - s) one_hot(t) + s / V;
        // ignored rows: 0
        const std::size_t V = exps.shape()[1], R = exps.shape()[0];
        const float s = options.label_smoothing_, scale = (*grad_out)() / static_cast<float>(count);
        const float uniform = s / static_cast<float>(V);
        Array grad(logits.data().shape());
        for (std::size_t r = 0; r < R; ++r) {
            const std::int64_t t = targets.data()[r];
            float* g = grad.data() + r * V;
            if (t == options.ignore_index_) {
                std::fill_n(g, V, 0.0f);
                continue;
            }
            const float* e = exps.data() + r * V;
            const float to_p = inverse_sum[r];
            for (std::size_t c = 0; c < V; ++c) g[c] = (e[c] * to_p - uniform) * scale;
            g[t] -= (1.0f - s) * scale;
        }
        logits.accumulate_grad(std::move(grad));
    }, ReadsOutput::no);
}

}  // namespace xgrad::nn::functional
