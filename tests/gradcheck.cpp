// Central differences: dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps).
#include "gradcheck.h"

#include <cmath>
#include <sstream>

#include <catch2/catch.hpp>

namespace xgrad::testing {

namespace {

double weighted_sum(const Tensor& y, const Array& weights)
{
    double total = 0.0;
    const Values v = y.values();
    for (std::size_t i = 0; i < v.size(); ++i) total += double(v[i]) * weights.data()[i];
    return total;
}

}  // namespace

Gradients gradients(const Fn& f, std::vector<Tensor> inputs, float eps)
{
    for (auto& x : inputs) {
        x.zero_grad();
        x.requires_grad_(true);
    }
    auto grads_of_inputs = [&inputs] {
        std::vector<Array> grads;
        for (auto& input : inputs) {
            Tensor grad = input.grad();
            grads.push_back(grad.defined() ? grad.to_array() : Array(xt::zeros<float>(input.shape())));
            input.zero_grad();
        }
        return grads;
    };
    Tensor y = f(inputs);
    Generator weight_rng(1234);
    Array weights(y.to_array().shape());
    weight_rng.normal_(weights);
    const Tensor w(weights);
    sum(y * w).backward();

    Gradients g;
    g.backprop = grads_of_inputs();
    f(inputs).backward(w);
    g.borrowed = grads_of_inputs();
    const bool upstream_unchanged = w.to_array() == weights;
    CHECK(upstream_unchanged);   // the caller's upstream is never written

    NoGradGuard no_grad;
    for (auto& input : inputs) {
        float* x = input.mutable_data_ptr();   // the inputs are contiguous leaves; f makes any views of them
        Array numeric(input.shape());
        for (std::size_t i = 0; i < numeric.size(); ++i) {
            const float saved = x[i];
            x[i] = saved + eps;
            const double plus = weighted_sum(f(inputs), weights);
            x[i] = saved - eps;
            const double minus = weighted_sum(f(inputs), weights);
            x[i] = saved;
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
    for (const auto* backprop : {&g.backprop, &g.borrowed}) {
        const char* how = backprop == &g.backprop ? "backprop" : "backprop from a borrowed upstream";
        for (std::size_t k = 0; k < backprop->size(); ++k) {
            for (std::size_t i = 0; i < (*backprop)[k].size(); ++i) {
                const double analytic = (*backprop)[k].data()[i], numeric = g.numeric[k].data()[i];
                if (std::abs(analytic - numeric) <= atol + rtol * std::abs(numeric)) continue;
                result.ok = false;
                if (shown++ < 8) {
                    report << "input " << k << " element " << i << ": " << how << " " << analytic << ", numeric "
                           << numeric << "\n";
                }
            }
        }
    }
    result.report = report.str();
    return result;
}

}  // namespace xgrad::testing
