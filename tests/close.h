// check_close: element-wise comparison of two arrays of the same shape, reporting the element.
#pragma once

#include <catch2/catch.hpp>

#include "core/array.h"

namespace xgrad::testing {

inline void check_close(const Array& got, const Array& expected, float tolerance = 1e-5f)
{
    REQUIRE(got.shape() == expected.shape());
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i);
        CHECK(got.data()[i] == Approx(expected.data()[i]).margin(tolerance));
    }
}

}  // namespace xgrad::testing
