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

struct GradcheckResult {
    bool ok = true;
    std::string report;         // the first mismatches, element by element
};

// Every input must be a leaf; gradcheck makes it require grad. Float32 forward, double accumulation.
GradcheckResult gradcheck(const Fn& f, std::vector<Tensor> inputs, float eps = 1e-2f, double atol = 2e-3,
                          double rtol = 2e-2);

}  // namespace xgrad::testing
