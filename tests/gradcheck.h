// gradcheck: backprop against central finite differences, in float32 and, as torch.autograd.gradcheck,
// in float64.
// The outputs are weighted by fixed random values, L = sum(w * f(x)), so that a backward that swaps
// or mixes up output elements cannot hide behind a plain sum.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "xgrad.h"

namespace xgrad::testing {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// T: float (float32 inputs) or double (float64 inputs)
template <class T>
struct GradientsOf {
    std::vector<ArrayOf<T>> backprop;   // dL/dx for each input, by sum(w * f(x)).backward(): the walk's own upstream
    std::vector<ArrayOf<T>> borrowed;   // the same by f(x).backward(w): the op gets the caller's w, read-only
    std::vector<ArrayOf<T>> numeric;    // the same by central differences, accumulated in double precision
};
using Gradients = GradientsOf<float>;

// Every input must be a leaf of dtype T's; this makes it require grad.
template <class T>
GradientsOf<T> gradients_of(const Fn& f, std::vector<Tensor> inputs, T eps);
inline Gradients gradients(const Fn& f, std::vector<Tensor> inputs, float eps = 1e-2f)
{
    return gradients_of<float>(f, std::move(inputs), eps);
}

struct GradcheckResult {
    bool ok = true;
    std::string report;            // the first mismatches, element by element
};

// |backprop - numeric| <= atol + rtol |numeric| for every element of every input, both ways of backprop.
template <class T>
GradcheckResult compare(const GradientsOf<T>& g, double atol, double rtol);
inline GradcheckResult compare(const Gradients& g, double atol = 2e-3, double rtol = 2e-2) { return compare<float>(g, atol, rtol); }

inline GradcheckResult gradcheck(const Fn& f, std::vector<Tensor> inputs, float eps = 1e-2f)
{
    return compare(gradients(f, std::move(inputs), eps));
}

// In float64, as torch.autograd.gradcheck: the inputs converted to float64, differences over eps = 1e-6,
// and tolerances of 1e-6 (torch's own defaults are atol 1e-5, rtol 1e-3).
inline GradcheckResult gradcheck64(const Fn& f, const std::vector<Tensor>& inputs)
{
    std::vector<Tensor> doubles;
    for (const Tensor& x : inputs) doubles.push_back(x.detach().to(kFloat64));
    return compare<double>(gradients_of<double>(f, std::move(doubles), 1e-6), 1e-6, 1e-6);
}

}  // namespace xgrad::testing
