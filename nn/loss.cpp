// cross_entropy: softmax rows (core/kernels.h), the negative log-likelihood and the mean, in one op.
#include "nn/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/autograd.h"
#include "core/kernels.h"

namespace xgrad::nn::functional {

namespace {

// float64: the same loss composed of the core's ops (log_softmax, take, sums), in double with autograd.
// The arguments are checked by the caller.
Tensor composed_cross_entropy(const Tensor& logits, const IdArray& targets, const CrossEntropyOptions& options)
{
    const std::size_t V = logits.shape().back(), R = targets.size();
    const double s = options.label_smoothing_;
    const Tensor w = options.weight_.defined() ? options.weight_.to(kFloat64) : ones({V}, kFloat64);
    const Tensor lp = log_softmax(logits.reshape({static_cast<std::ptrdiff_t>(R), static_cast<std::ptrdiff_t>(V)}));
    std::vector<std::size_t> at, counted;   // the target's offset in lp of each counted row, and the row
    for (std::size_t r = 0; r < R; ++r) {
        if (targets.data()[r] == options.ignore_index_) continue;
        at.push_back(r * V + static_cast<std::size_t>(targets.data()[r]));
        counted.push_back(r);
    }
    const Shape n{at.size()};
    std::vector<std::size_t> classes;
    for (std::size_t i : at) classes.push_back(i % V);
    const Tensor w_t = take(w, classes, n);
    // per counted row: -(1 - s) w[t] lp[t] - (s / V) sum_c w[c] lp[c]
    Tensor loss = neg(take(lp, at, n) * w_t) * (1.0 - s);
    if (s > 0.0) {   // the smoothing's share of each counted row: (s / V) sum_c w[c] lp[c]
        std::vector<std::size_t> row_values;
        for (std::size_t r : counted) {
            for (std::size_t c = 0; c < V; ++c) row_values.push_back(r * V + c);
        }
        loss = loss - sum(take(lp * w, row_values, {at.size(), V}), {1}) * (s / static_cast<double>(V));
    }
    if (options.reduction_ == "sum") return sum(loss);
    if (options.reduction_ == "mean") return sum(loss) / sum(w_t);   // 0/0: NaN, as PyTorch
    const Shape shape = logits.shape(), rows_shape(shape.begin(), shape.end() - 1);
    return index_put(zeros(rows_shape, kFloat64), counted, n, loss);   // ignored rows: 0
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const IdArray& targets, const CrossEntropyOptions& options)
{
    const OpScope scope("cross_entropy");
    const Shape shape = logits.shape();
    XGRAD_CHECK(!shape.empty(), "cross_entropy: expected logits (..., V) with the classes last, got a 0-D tensor");
    const Shape rows_shape(shape.begin(), shape.end() - 1);
    XGRAD_CHECK(Shape(targets.shape().begin(), targets.shape().end()) == rows_shape, "cross_entropy: targets of shape ",
          shape_str(targets.shape()), " do not match logits ", shape_str(shape), " (expected targets ",
          shape_str(rows_shape), ")");
    const float s = options.label_smoothing_;
    XGRAD_CHECK(s >= 0.0f && s <= 1.0f, "cross_entropy: label_smoothing must be in [0, 1], got ", s);
    const std::string& reduction = options.reduction_;
    XGRAD_CHECK(reduction == "mean" || reduction == "sum" || reduction == "none",
          "cross_entropy: reduction must be \"mean\", \"sum\" or \"none\", got \"", reduction, "\"");
    const std::size_t V = shape.back(), R = targets.size();
    const Tensor& weight = options.weight_;
    if (weight.defined()) {
        XGRAD_CHECK(weight.shape() == Shape{V}, "cross_entropy: weight must hold one value per class, shape ",
              shape_str(Shape{V}), ", got ", shape_str(weight.shape()));
        XGRAD_CHECK(!weight.requires_grad(), "cross_entropy: weight requires grad, but no gradient flows to the class "
              "weights (nor in PyTorch); pass weight.detach()");
    }
    if (logits.dtype() == kFloat64) [[unlikely]] return composed_cross_entropy(logits, targets, options);
    const Values wv = weight.defined() ? weight.values() : Values();
    const float* w = weight.defined() ? wv.data() : nullptr;   // null: every class weighs 1
    const float w_sum = w ? lane_sum(w, V) : static_cast<float>(V);
    const auto Vi = static_cast<std::int64_t>(V);
    const std::int64_t* target = targets.data();
    double denominator = 0.0;                                  // the mean's: the counted targets' weights
    for (std::size_t r = 0; r < R; ++r) {
        if (target[r] == options.ignore_index_) continue;
        XGRAD_CHECK(target[r] >= 0 && target[r] < Vi, "cross_entropy: target ", target[r], " at position ",
              position_str(r, targets.shape()), " is out of range for ", V, " classes (valid targets are 0 to ",
              Vi - 1, ", or ignore_index = ", options.ignore_index_, ")");
        denominator += w ? w[target[r]] : 1.0f;
    }

    // forward, per target t of row x:  log p = (x - max) - log(sum(exp(x - max))), x - max first: exact
    // however huge the logits (1e20 - (1e20 + log 3) would be 0 in float)
    //   loss = -(1 - s) w[t] log p[t] - (s / V) sum_c w[c] log p[c]
    const Values xv = logits.values();
    const float* x = xv.data();
    Array probs(Shape{R, V});                                  // softmax(x), kept for the backward
    std::vector<float> row_max(R, 0.0f), log_total(R, 0.0f);
    softmax_rows(x, probs.data(), R, V, row_max.data(), log_total.data());
    Array losses = xt::zeros<float>(reduction == "none" ? rows_shape : Shape{R});
    double total = 0.0;
    for (std::size_t r = 0; r < R; ++r) {
        if (target[r] == options.ignore_index_) continue;
        const float* row = x + r * V;
        const float m = row_max[r];
        const float w_t = w ? w[target[r]] : 1.0f;
        float loss = -(1.0f - s) * w_t * ((row[target[r]] - m) - log_total[r]);
        if (s > 0.0f) {
            float weighted = 0.0f;                             // sum_c w[c] (x[c] - max)
            for (std::size_t c = 0; c < V; ++c) weighted += (w ? w[c] : 1.0f) * (row[c] - m);
            loss -= s / static_cast<float>(V) * (weighted - w_sum * log_total[r]);
        }
        losses.data()[r] = loss;
        total += loss;
    }
    Array out = reduction == "none" ? std::move(losses)
              : reduction == "sum"  ? Array(static_cast<float>(total))
                                    : Array(static_cast<float>(total / denominator));   // 0/0: NaN, as PyTorch

    return from_op(std::move(out), {logits}, "cross_entropy",
                   [logits, targets, probs = std::move(probs), options, denominator, w_sum](GradOutput& grad_out) {
        // d loss / d x[c] = u ((1 - s) w[t] + s W / V) p[c] - u s w[c] / V - [c = t] u (1 - s) w[t],
        //   u the row's upstream (divided by the mean's denominator), W = sum_c w[c]; ignored rows: 0
        const std::size_t R = probs.shape()[0], V = probs.shape()[1];
        const float s = options.label_smoothing_, smooth = s / static_cast<float>(V);
        const bool per_row = options.reduction_ == "none";
        const float* up = grad_out.read().data();
        const float whole = per_row ? 0.0f
                          : options.reduction_ == "sum" ? up[0] : static_cast<float>(up[0] / denominator);
        const Values wv = options.weight_.defined() ? options.weight_.values() : Values();
        const float* w = options.weight_.defined() ? wv.data() : nullptr;
        Array grad(to_shape(logits.shape()));
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
                const float u = per_row ? up[r] : whole;
                const float w_t = w ? w[target[r]] : 1.0f;
                const float* p = pd + r * V;
                const float p_scale = u * ((1.0f - s) * w_t + smooth * w_sum);
                if (w) {
                    for (std::size_t c = 0; c < V; ++c) g[c] = p_scale * p[c] - u * smooth * w[c];
                } else {
                    for (std::size_t c = 0; c < V; ++c) g[c] = p_scale * p[c] - u * smooth;
                }
                g[target[r]] -= u * (1.0f - s) * w_t;
            }
        });
        logits.accumulate_grad(std::move(grad));
    });
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options)
{
    return cross_entropy(logits, id_array(targets, "cross_entropy"), options);
}

}  // namespace xgrad::nn::functional
