// Central differences: dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps).
#include "gradcheck.h"

#include <cmath>
#include <sstream>

namespace xgrad::testing {

namespace {

double weighted_sum(const Tensor& y, const Array& weights)
{
    double total = 0.0;
    for (std::size_t i = 0; i < y.numel(); ++i) total += double(y.data().data()[i]) * weights.data()[i];
    return total;
}

}  // namespace

Gradients gradients(const Fn& f, std::vector<Tensor> inputs, float eps)
{
    for (auto& x : inputs) {
        x.zero_grad();
        x.requires_grad_(true);
    }
    Tensor y = f(inputs);
    Generator weight_rng(1234);
    Array weights(y.data().shape());
    weight_rng.normal_(weights);
    sum(y * Tensor(weights)).backward();

    Gradients g;
    NoGradGuard no_grad;
    for (auto& input : inputs) {
        Array& x = input.data();
        Tensor grad = input.grad();
        g.backprop.push_back(grad.defined() ? grad.data() : Array(xt::zeros<float>(x.shape())));
        Array numeric(x.shape());
        for (std::size_t i = 0; i < x.size(); ++i) {
            const float saved = x.data()[i];
            x.data()[i] = saved + eps;
            const double plus = weighted_sum(f(inputs), weights);
            x.data()[i] = saved - eps;
            const double minus = weighted_sum(f(inputs), weights);
            x.data()[i] = saved;
            numeric.data()[i] = static_cast<float>((plus - minus) / (2.0 * double(eps)));
        }
        g.numeric.push_back(std::move(numeric));
    }
    return g;
}

GradcheckResult compare(const Gradients& g, double atol, double rtol)
{
    GradcheckResult result;
    std::ostringstream report;
    int shown = 0;
    for (std::size_t k = 0; k < g.backprop.size(); ++k) {
        for (std::size_t i = 0; i < g.backprop[k].size(); ++i) {
            const double analytic = g.backprop[k].data()[i], numeric = g.numeric[k].data()[i];
            if (std::abs(analytic - numeric) <= atol + rtol * std::abs(numeric)) continue;
            result.ok = false;
            if (shown++ < 8) {
                report << "input " << k << " element " << i << ": backprop " << analytic << ", numeric " << numeric << "\n";
            }
        }
    }
    result.report = report.str();
    return result;
}

}  // namespace xgrad::testing
