// LayerNorm as one op: each row's mean and 1/std kept, the normalised values recomputed in the backward.
#include "nn/norm.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "core/autograd.h"
#include "core/check.h"
#include "core/kernels.h"
#include "core/parallel.h"

namespace xgrad::nn {

LayerNorm::LayerNorm(std::size_t normalized_shape, float eps, bool elementwise_affine, bool with_bias)
    : size_(normalized_shape), eps_(eps)
{
    XGRAD_CHECK(normalized_shape > 0, "nn::LayerNorm: normalized_shape must be positive");
    XGRAD_CHECK(eps >= 0.0f, "nn::LayerNorm: eps must be non-negative, got ", eps);
    if (elementwise_affine) {
        weight = register_parameter("weight", ones({normalized_shape}));
        if (with_bias) bias = register_parameter("bias", zeros({normalized_shape}));
    }
}

Tensor LayerNorm::forward(const Tensor& x) const
{
    XGRAD_CHECK(x.dim() >= 1 && x.shape().back() == size_, "nn::LayerNorm", name().empty() ? "" : " '" + name() + "'",
          ": expected input with last dimension ", size_, ", got shape ", shape_str(x.shape()));
    return forward_hooks(functional::layer_norm(x, {size_}, weight, bias, eps_), x);
}

namespace functional {

namespace {

// float64: the same function composed of the core's ops, which compute and differentiate in double
Tensor composed_layer_norm(const Tensor& x, std::size_t k, const Tensor& weight, const Tensor& bias, float eps)
{
    std::vector<int> axes;
    for (std::size_t i = 0; i < k; ++i) axes.push_back(-1 - static_cast<int>(i));
    const Tensor centered = x - mean(x, axes, true);
    Tensor y = centered / sqrt(var(x, axes, false, true) + static_cast<double>(eps));   // the biased variance
    if (weight.defined()) y = y * weight;
    if (bias.defined()) y = y + bias;
    return y;
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias, float eps)
{
    const Shape shape = x.shape();
    const std::size_t k = normalized_shape.size();
    XGRAD_CHECK(k >= 1 && k <= shape.size() && std::equal(normalized_shape.begin(), normalized_shape.end(), shape.end() - k),
          "layer_norm: normalized_shape ", shape_str(normalized_shape), " must be the trailing dimensions of the input, got ",
          shape_str(shape));
    for (const Tensor* t : {&weight, &bias}) {
        XGRAD_CHECK(!t->defined() || t->shape() == normalized_shape, "layer_norm: expected ", t == &weight ? "weight" : "bias",
              " of shape ", shape_str(normalized_shape), ", got ", shape_str(t->defined() ? t->shape() : Shape{}));
    }
    XGRAD_CHECK(eps >= 0.0f, "layer_norm: eps must be non-negative, got ", eps);
    if (x.dtype() == kFloat64) [[unlikely]] return composed_layer_norm(x, k, weight, bias, eps);
    const std::size_t C = shape_numel(normalized_shape), R = C ? x.numel() / C : 0;

    // forward, per row of C values: mu = mean(x), rstd = 1 / sqrt(mean((x - mu)^2) + eps) (the biased
    // variance, as PyTorch), xhat = (x - mu) rstd, y = xhat w + b
    std::vector<float> mu(R), rstd(R);
    const Values xv = x.values(), wv = weight.defined() ? weight.values() : Values(),
                 bv = bias.defined() ? bias.values() : Values();
    Array y(xv.shape());
    const float* xd = xv.data();
    const float* w = weight.defined() ? wv.data() : nullptr;
    const float* b = bias.defined() ? bv.data() : nullptr;
    float* yd = y.data();
    parallel_rows(R, C, [&](std::size_t first, std::size_t last) {
        for (std::size_t r = first; r < last; ++r) {
            const float* row = xd + r * C;
            float* out = yd + r * C;
            const float mean = lane_sum(row, C) / static_cast<float>(C);
            for (std::size_t c = 0; c < C; ++c) out[c] = row[c] - mean;
            const float inverse_std = 1.0f / std::sqrt(lane_sum_of_squares(out, C) / static_cast<float>(C) + eps);
            for (std::size_t c = 0; c < C; ++c) {
                out[c] *= inverse_std;
                if (w) out[c] *= w[c];
                if (b) out[c] += b[c];
            }
            mu[r] = mean, rstd[r] = inverse_std;
        }
    });

    std::vector<Tensor> inputs = {x};
    if (weight.defined()) inputs.push_back(weight);
    if (bias.defined()) inputs.push_back(bias);
    return from_op(std::move(y), inputs, "layer_norm",
                   [x, weight, bias, mu = std::move(mu), rstd = std::move(rstd), C, R](GradOutput& grad_out) {
        // g = dy w;  dx = rstd (g - mean(g) - xhat mean(g xhat));  dw = sum over rows of dy xhat;  db = sum of dy
        check_saved(bias);   // torch's saves the bias too: a write into it is refused, as there
        const float* dy = grad_out.read().data();
        const Values xv = x.values(), wv = weight.defined() ? weight.values() : Values();
        const float* xd = xv.data();
        const float* w = weight.defined() ? wv.data() : nullptr;
        const float* m = mu.data();
        const float* s = rstd.data();
        if (x.requires_grad()) {
            Array dx(xv.shape());
            float* dxd = dx.data();
            parallel_rows(R, C, [=](std::size_t first, std::size_t last) {
                for (std::size_t r = first; r < last; ++r) {
                    const float* row = xd + r * C;
                    const float* up = dy + r * C;
                    float* out = dxd + r * C;
                    float sum_g = 0.0f, sum_g_xhat = 0.0f;
                    for (std::size_t c = 0; c < C; ++c) {
                        const float g = w ? up[c] * w[c] : up[c];
                        out[c] = (row[c] - m[r]) * s[r];            // xhat, for the second pass
                        sum_g += g;
                        sum_g_xhat += g * out[c];
                    }
                    const float mean_g = sum_g / static_cast<float>(C), mean_g_xhat = sum_g_xhat / static_cast<float>(C);
                    for (std::size_t c = 0; c < C; ++c) {
                        const float g = w ? up[c] * w[c] : up[c];
                        out[c] = s[r] * (g - mean_g - out[c] * mean_g_xhat);
                    }
                }
            });
            x.accumulate_grad(std::move(dx));
        }
        const bool dw = weight.defined() && weight.requires_grad(), db = bias.defined() && bias.requires_grad();
        if (dw || db) {
            Array grad_w = xt::zeros<float>({C}), grad_b = xt::zeros<float>({C});
            float* gw = grad_w.data();
            float* gb = grad_b.data();
            // threads split the columns, each summing its columns over every row in order
            parallel_rows(C, R, [=](std::size_t first, std::size_t last) {
                for (std::size_t r = 0; r < R; ++r) {
                    const float* row = xd + r * C;
                    const float* up = dy + r * C;
                    for (std::size_t c = first; c < last; ++c) {
                        gw[c] += up[c] * (row[c] - m[r]) * s[r];
                        gb[c] += up[c];
                    }
                }
            });
            grad_w.reshape(weight.defined() ? weight.shape() : Shape{C});
            grad_b.reshape(bias.defined() ? bias.shape() : Shape{C});
            if (dw) weight.accumulate_grad(std::move(grad_w));
            if (db) bias.accumulate_grad(std::move(grad_b));
        }
    });
}

}  // namespace functional

std::string LayerNorm::describe() const
{
    std::ostringstream out;
    out << "LayerNorm((" << size_ << ",), eps=" << eps_ << ", elementwise_affine=" << (weight.defined() ? "true" : "false");
    if (weight.defined() && !bias.defined()) out << ", bias=false";
    out << ")";
    return out.str();
}

}  // namespace xgrad::nn
