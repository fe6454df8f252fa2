// nn::LayerNorm over the last axis, as torch.nn.LayerNorm(C), and functional::layer_norm.
#pragma once

#include "core/ops.h"
#include "nn/module.h"

namespace xgrad::nn {

namespace functional {

// x (..., *normalized_shape) -> the same: normalised over its last normalized_shape.size() axes,
// (x - mean) / sqrt(var + eps) with the biased variance, then * weight + bias when given (each of
// shape normalized_shape), as torch.nn.functional.layer_norm.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {}, const Tensor& bias = {},
                  float eps = 1e-5f);

}  // namespace functional

class LayerNorm : public Module {
public:
    // weight (C) = 1 and bias (C) = 0 when elementwise_affine (bias = false: no bias, as PyTorch 2.1's)
    explicit LayerNorm(std::size_t normalized_shape, float eps = 1e-5f, bool elementwise_affine = true, bool bias = true);

    // x (..., C) -> (..., C): (x - mean) / sqrt(var + eps) * weight + bias, with the biased variance
    Tensor forward(const Tensor& x) const;
    std::string describe() const override;

    Tensor weight, bias;   // (C) each, or undefined without elementwise_affine (bias: or without bias)

private:
    std::size_t size_;
    float eps_;
};

}  // namespace xgrad::nn
