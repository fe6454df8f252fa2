// gradcheck: backprop against central finite differences.
// The outputs are weighted by fixed random values, L = sum(w * f(x)), so that a backward that swaps
// or mixes up output elements cannot hide behind a plain sum.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "xgrad.h"

namespace xgrad::testing {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct Gradients {
    std::vector<Array> backprop;   // dL/dx for each input, by sum(w * f(x)).backward(): the walk's own upstream
    std::vector<Array> borrowed;   // the same by f(x).backward(w): the op gets the caller's w, read-only
    std::vector<Array> numeric;    // the same by central differences, in double precision
};

// Every input must be a leaf; this makes it require grad. Float32 forward, double accumulation.
Gradients gradients(const Fn& f, std::vector<Tensor> inputs, float eps = 1e-2f);

struct GradcheckResult {
    bool ok = true;
    std::string report;            // the first mismatches, element by element
};

// |backprop - numeric| <= atol + rtol |numeric| for every element of every input, both ways of backprop.
GradcheckResult compare(const Gradients& g, double atol = 2e-3, double rtol = 2e-2);

inline GradcheckResult gradcheck(const Fn& f, std::vector<Tensor> inputs, float eps = 1e-2f)
{
    return compare(gradients(f, std::move(inputs), eps));
}

}  // namespace xgrad::testing
