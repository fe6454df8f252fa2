// LayerNorm, composed from primitive ops: each has its own checked backward, so this needs none.
#include "nn/norm.h"

#include <sstream>

#include "core/check.h"

namespace xgrad::nn {

LayerNorm::LayerNorm(std::size_t normalized_shape, float eps, bool elementwise_affine)
    : size_(normalized_shape), eps_(eps)
{
    XGRAD_CHECK(normalized_shape > 0, "nn::LayerNorm: normalized_shape must be positive");
    XGRAD_CHECK(eps >= 0.0f, "nn::LayerNorm: eps must be non-negative, got ", eps);
    if (elementwise_affine) {
        weight = register_parameter("weight", ones({normalized_shape}));
        bias = register_parameter("bias", zeros({normalized_shape}));
    }
}

Tensor LayerNorm::forward(const Tensor& x) const
{
    XGRAD_CHECK(x.dim() >= 1 && x.shape().back() == size_, "nn::LayerNorm", name().empty() ? "" : " '" + name() + "'",
          ": expected input with last dimension ", size_, ", got shape ", shape_str(x.shape()));
    Tensor centered = x - mean(x, {-1}, true);                            // (..., C)
    Tensor variance = mean(centered * centered, {-1}, true);              // (..., 1), biased as PyTorch
    Tensor y = centered / sqrt(variance + eps_);
    return weight.defined() ? y * weight + bias : y;
}

std::string LayerNorm::describe() const
{
    std::ostringstream out;
    out << "LayerNorm((" << size_ << ",), eps=" << eps_ << ", elementwise_affine=" << (weight.defined() ? "true" : "false") << ")";
    return out.str();
}

}  // namespace xgrad::nn
