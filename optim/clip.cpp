// clip_grad_norm.
#include "optim/clip.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace xgrad::optim {

namespace {

// The sum of the squares of n floats in double precision, in eight lanes that the compiler keeps in
// vector registers (a single running sum is one long chain of dependent additions).
double sum_of_squares(const float* v, std::size_t n)
{
    double lanes[8] = {};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (std::size_t k = 0; k < 8; ++k) lanes[k] += double(v[i + k]) * double(v[i + k]);
    }
    double total = 0.0;
    for (; i < n; ++i) total += double(v[i]) * double(v[i]);
    for (double lane : lanes) total += lane;
    return total;
}

}  // namespace

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
    each_gradient([&](const Array& g) { squares += sum_of_squares(g.data(), g.size()); });
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
