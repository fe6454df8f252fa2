// clip_grad_norm.
#include "optim/clip.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/check.h"
#include "core/kernels.h"

namespace xgrad::optim {

double clip_grad_norm(const std::vector<Tensor>& parameters, double max_norm)
{
    XGRAD_CHECK(max_norm > 0.0, "clip_grad_norm: max_norm must be positive, got ", max_norm);
    double squares = 0.0;
    for (const auto& p : parameters) {   // the float arrays that hold gradients: dense or row-sparse
        if (p.grad().defined()) {
            compute_as(p.grad(), [&]<class T>(Tag<T>) {
                const ValuesOf<T> g = p.grad().values<T>();
                squares += lane_sum_of_squares<double>(g.data(), g.size());
            });
        }
        if (const RowSparse* s = p.sparse_grad()) squares += lane_sum_of_squares<double>(s->values.data(), s->values.size());
    }
    const double total = std::sqrt(squares);
    const double coefficient = max_norm / (total + 1e-6);
    if (coefficient < 1.0) {
        const auto scale = static_cast<float>(coefficient);   // float32 gradients scale by float(c), as torch's
        NoGradGuard no_grad;
        for (const auto& p : parameters) {
            if (p.grad().defined()) p.grad().dtype() == kFloat64 ? p.grad().mul_(coefficient) : p.grad().mul_(scale);
            if (RowSparse* s = p.sparse_grad()) s->values *= scale;
        }
    }
    return total;
}

}  // namespace xgrad::optim
