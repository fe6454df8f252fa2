// nn::Linear over the fused linear op (core/matmul.cpp).
#include "nn/linear.h"

#include <cmath>
#include <sstream>

#include "core/check.h"
#include "core/random.h"

namespace xgrad::nn {

Linear::Linear(std::size_t in_features, std::size_t out_features, bool with_bias)
{
    XGRAD_CHECK(in_features > 0 && out_features > 0, "nn::Linear: in_features and out_features must be positive, got ",
          in_features, " and ", out_features);
    // kaiming_uniform_(a = sqrt(5)) for the weight and PyTorch's bias init both come to U(-1/sqrt(in), 1/sqrt(in))
    const float bound = 1.0f / std::sqrt(static_cast<float>(in_features));
    shape_numel(Shape{out_features, in_features}, "nn::Linear");   // before xtensor's product can wrap
    Array w(Shape{out_features, in_features});
    default_generator().uniform_(w, -bound, bound);
    weight = register_parameter("weight", Tensor(std::move(w)));
    if (with_bias) {
        Array b(Shape{out_features});
        default_generator().uniform_(b, -bound, bound);
        bias = register_parameter("bias", Tensor(std::move(b)));
    }
}

Tensor Linear::forward(const Tensor& x) const
{
    const std::size_t in = weight.shape()[1];
    XGRAD_CHECK(x.dim() >= 1 && x.shape().back() == in, "nn::Linear", name().empty() ? "" : " '" + name() + "'",
          ": expected input with last dimension ", in, " (in_features), got shape ", shape_str(x.shape()));
    return forward_hooks(linear(x, weight, bias), x);
}

std::string Linear::describe() const
{
    std::ostringstream out;
    out << "Linear(in_features=" << weight.shape()[1] << ", out_features=" << weight.shape()[0]
        << ", bias=" << (bias.defined() ? "true" : "false") << ")";
    return out.str();
}

}  // namespace xgrad::nn
