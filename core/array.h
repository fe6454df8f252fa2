// The storage types under every Tensor: a float32 xtensor array, its shape, and integer id arrays.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "core/check.h"
#include "core/storage.h"

namespace xgrad {

// row-major, contiguous: every Tensor's data and grad, its large blocks reused (core/storage.h)
using Array = xt::xarray<float, xt::layout_type::row_major, StorageAllocator<float>>;
using IdArray = xt::xarray<std::int64_t>;    // integer ids (token ids, positions), int64 as in PyTorch
using BoolArray = xt::xarray<bool>;          // masks
using Shape = std::vector<std::size_t>;

// "(2, 3)": how shapes appear in every error message and printout.
template <class S>
std::string shape_str(const S& shape)
{
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        s += (i ? ", " : "") + std::to_string(shape[i]);
    }
    return s + (shape.size() == 1 ? ",)" : ")");
}

// "(3, 12)": the multi-index of element `flat` of a row-major array of `shape`, for error messages.
template <class S>
std::string position_str(std::size_t flat, const S& shape)
{
    Shape index(shape.size());
    for (std::size_t axis = shape.size(); axis-- > 0;) {
        index[axis] = flat % shape[axis];
        flat /= shape[axis];
    }
    return shape_str(index);
}

inline Shape to_shape(const Array::shape_type& s) { return Shape(s.begin(), s.end()); }

// The number of elements an array of `shape` holds (a Shape or an Array's own shape type). Every
// shape the library is handed goes through here before anything is allocated for it: a product past
// 2^64 would otherwise wrap around (zeros({2^40, 2^40}) would hold 0 elements, an embedding table
// too few rows), so it is refused, naming `op` and the shape. A shape with a 0 holds 0 elements.
template <class S>
std::size_t shape_numel(const S& shape, const char* op = "shape")
{
    for (auto d : shape) {
        if (d == 0) return 0;
    }
    std::size_t n = 1;
    for (auto d : shape) {
        if (__builtin_mul_overflow(n, static_cast<std::size_t>(d), &n)) {
            long double product = 1;
            for (auto e : shape) product *= static_cast<long double>(e);
            fail(op, ": shape ", shape_str(shape), " has about ", static_cast<double>(product),
                 " elements, more than a size_t can count (", static_cast<double>(SIZE_MAX), ")");
        }
    }
    return n;
}

}  // namespace xgrad
