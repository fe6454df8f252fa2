// nn::Linear: y = x W^T + b, as torch.nn.Linear.
#pragma once

#include "core/ops.h"
#include "nn/module.h"

namespace xgrad::nn {

class Linear : public Module {
public:
    // weight (out_features, in_features) and bias (out_features) ~ U(-1/sqrt(in), 1/sqrt(in)), PyTorch's default
    Linear(std::size_t in_features, std::size_t out_features, bool bias = true);

    // x (..., in_features) -> (..., out_features)
    Tensor forward(const Tensor& x) const;
    std::string describe() const override;

    Tensor weight;   // (out_features, in_features)
    Tensor bias;     // (out_features), or undefined
};

}  // namespace xgrad::nn
