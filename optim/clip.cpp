// clip_grad_norm.
#include "optim/clip.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/kernels.h"

namespace xgrad::optim {

double clip_grad_norm(const std::vector<Tensor>& parameters, double max_norm)
{
    XGRAD_CHECK(max_norm > 0.0, "clip_grad_norm: max_norm must be positive, got ", max_norm);
    auto each_gradient = [&](auto fn) {   // the float arrays that hold gradients
        for (const auto& p : parameters) {
            if (p.grad().defined()) fn(p.grad().data());
            if (RowSparse* s = p.sparse_grad()) fn(s->values);
        }
    };
    double squares = 0.0;
    each_gradient([&](const Array& g) { squares += lane_sum_of_squares<double>(g.data(), g.size()); });
    const double total = std::sqrt(squares);
    const double coefficient = max_norm / (total + 1e-6);
    if (coefficient < 1.0) {
        const auto scale = static_cast<float>(coefficient);
        each_gradient([&](Array& g) {
            float* v = g.data();
            for (std::size_t i = 0, n = g.size(); i < n; ++i) v[i] *= scale;
        });
    }
    return total;
}

}  // namespace xgrad::optim
