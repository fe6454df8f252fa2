// LayerNorm, composed from primitive ops: each has its own checked backward, so this needs none.
#include "nn/norm.h"

#include <algorithm>
#include <sstream>

#include "core/check.h"

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
    std::vector<int> axes;
    for (std::size_t i = 0; i < k; ++i) axes.push_back(-1 - static_cast<int>(i));
    Tensor centered = x - mean(x, axes, true);                            // (..., C)
    Tensor variance = mean(centered * centered, axes, true);              // (..., 1), biased as PyTorch
    Tensor y = centered / sqrt(variance + eps);
    if (weight.defined()) y = y * weight;
    return bias.defined() ? std::move(y) + bias : y;   // moved: add may write over y
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
