// check_close: the test suite's one closeness check. got and expected element by element, each within
// margin + relative * |expected| (Catch's Approx; relative 0 keeps Approx's default of 100 float
// epsilons), each mismatch reported with its element.
#pragma once

#include <vector>

#include <catch2/catch.hpp>

#include "core/tensor.h"

namespace xgrad::testing {

inline void check_close(const Array& got, const Array& expected, double margin = 1e-5, double relative = 0.0)
{
    REQUIRE(got.shape() == expected.shape());
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("element " << position_str(i, got.shape()) << " of " << shape_str(got.shape()));
        Approx close = Approx(expected.data()[i]).margin(margin);
        if (relative > 0.0) close.epsilon(relative);
        CHECK(got.data()[i] == close);
    }
}

// The same against values written out flat, in row-major order.
inline void check_close(const Tensor& got, const std::vector<float>& expected, double margin = 1e-5,
                        double relative = 0.0)
{
    REQUIRE(got.defined());
    REQUIRE(got.numel() == expected.size());
    check_close(got.to_array(), from_vector(expected, got.shape()).to_array(), margin, relative);
}

// t's values replaced by `values` (a test setting a parameter), as an in-place write outside autograd.
inline void assign(const Tensor& t, const Array& values)
{
    NoGradGuard no_grad;
    t.copy_(Tensor(values));
}

}  // namespace xgrad::testing
