// Central differences: dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps).
#include "gradcheck.h"

#include <cmath>
#include <sstream>

#include <catch2/catch.hpp>

namespace xgrad::testing {

namespace {

template <class T>
double weighted_sum(const Tensor& y, const ArrayOf<T>& weights)
{
    double total = 0.0;
    const ValuesOf<T> v = y.template values<T>();
    for (std::size_t i = 0; i < v.size(); ++i) total += double(v[i]) * double(weights.data()[i]);
    return total;
}

}  // namespace

template <class T>
GradientsOf<T> gradients_of(const Fn& f, std::vector<Tensor> inputs, T eps)
{
    for (auto& x : inputs) {
        x.zero_grad();
        x.requires_grad_(true);
    }
    auto grads_of_inputs = [&inputs] {
        std::vector<ArrayOf<T>> grads;
        for (auto& input : inputs) {
            Tensor grad = input.grad();
            grads.push_back(grad.defined() ? grad.template values<T>().array() : ArrayOf<T>(xt::zeros<T>(input.shape())));
            input.zero_grad();
        }
        return grads;
    };
    Tensor y = f(inputs);
    Generator weight_rng(1234);
    Array drawn(y.shape());
    weight_rng.normal_(drawn);
    const ArrayOf<T> weights = drawn;   // the same weights in either type
    const Tensor w{ArrayOf<T>(weights)};
    sum(y * w).backward();

    GradientsOf<T> g;
    g.backprop = grads_of_inputs();
    f(inputs).backward(w);
    g.borrowed = grads_of_inputs();
    const bool upstream_unchanged = w.template values<T>().array() == weights;
    CHECK(upstream_unchanged);   // the caller's upstream is never written

    NoGradGuard no_grad;
    for (auto& input : inputs) {
        T* x = const_cast<T*>(input.template data_ptr<T>());   // the inputs are contiguous leaves; f makes any views of them
        ArrayOf<T> numeric(input.shape());
        for (std::size_t i = 0; i < numeric.size(); ++i) {
            const T saved = x[i];
            x[i] = saved + eps;
            const double plus = weighted_sum(f(inputs), weights);
            x[i] = saved - eps;
            const double minus = weighted_sum(f(inputs), weights);
            x[i] = saved;
            numeric.data()[i] = static_cast<T>((plus - minus) / (2.0 * double(eps)));
        }
        g.numeric.push_back(std::move(numeric));
    }
    return g;
}

template <class T>
GradcheckResult compare(const GradientsOf<T>& g, double atol, double rtol)
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

template GradientsOf<float> gradients_of(const Fn&, std::vector<Tensor>, float);
template GradientsOf<double> gradients_of(const Fn&, std::vector<Tensor>, double);
template GradcheckResult compare(const GradientsOf<float>&, double, double);
template GradcheckResult compare(const GradientsOf<double>&, double, double);

}  // namespace xgrad::testing
