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

GradcheckResult gradcheck(const Fn& f, std::vector<Tensor> inputs, float eps, double atol, double rtol)
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

    GradcheckResult result;
    std::ostringstream report;
    int shown = 0;
    NoGradGuard no_grad;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        Array& x = inputs[k].data();
        Tensor grad = inputs[k].grad();
        for (std::size_t i = 0; i < x.size(); ++i) {
            const float saved = x.data()[i];
            x.data()[i] = saved + eps;
            const double plus = weighted_sum(f(inputs), weights);
            x.data()[i] = saved - eps;
            const double minus = weighted_sum(f(inputs), weights);
            x.data()[i] = saved;
            const double numeric = (plus - minus) / (2.0 * double(eps));
            const double analytic = grad.defined() ? grad.data().data()[i] : 0.0;
            const double excess = std::abs(analytic - numeric) - (atol + rtol * std::abs(numeric));
            if (excess > 0) {
                result.ok = false;
                if (shown++ < 8) {
                    report << "input " << k << " element " << i << ": backprop " << analytic << ", numeric " << numeric
                           << "\n";
                }
            }
        }
    }
    result.report = report.str();
    return result;
}

}  // namespace xgrad::testing
