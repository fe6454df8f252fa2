// nn::LayerNorm over the last axis, as torch.nn.LayerNorm(C).
#pragma once

#include "core/ops.h"
#include "nn/module.h"

namespace xgrad::nn {

class LayerNorm : public Module {
public:
    // weight (C) = 1, bias (C) = 0 when elementwise_affine
    explicit LayerNorm(std::size_t normalized_shape, float eps = 1e-5f, bool elementwise_affine = true);

    // x (..., C) -> (..., C): (x - mean) / sqrt(var + eps) * weight + bias, with the biased variance
    Tensor forward(const Tensor& x) const;
    std::string describe() const override;

    Tensor weight, bias;   // (C) each, or undefined without elementwise_affine

private:
    std::size_t size_;
    float eps_;
};

}  // namespace xgrad::nn
