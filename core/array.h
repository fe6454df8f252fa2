// The storage types under every Tensor: a float32 xtensor array, its shape, integer id arrays, and the
// read-only view of a tensor's values that ops read.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "core/check.h"
#include "core/dtype.h"
#include "core/storage.h"

namespace xgrad {

// row-major, contiguous: every Tensor's data and grad, its large blocks reused (core/storage.h): float32,
// or float64 (ArrayOf<double>) for an op computing in double precision
template <class T>
using ArrayOf = xt::xarray<T, xt::layout_type::row_major, StorageAllocator<T>>;
using Array = ArrayOf<float>;
using Array64 = ArrayOf<double>;
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

void parallel_copy(float* dst, const float* src, std::size_t n);   // core/parallel.h

// A tensor's values as an op reads them: row-major and contiguous, with the tensor's shape
// (Tensor::values()). It points into the tensor's own storage when the tensor is contiguous, and into
// a copy made for this read when it is a strided view (a transpose, a slice with a step); either way
// it keeps that memory alive while it lives. data() is for a named Values only: on a temporary
// (x.values().data()) it would point into memory about to be freed, so that does not compile.
// Values reads float32; ValuesOf<double> float64 (Tensor::values<double>()).
template <class T>
class ValuesOf {
public:
    ValuesOf() = default;
    ValuesOf(std::shared_ptr<const void> keep, const T* data, Array::shape_type shape)
        : keep_(std::move(keep)), data_(data), shape_(std::move(shape)), size_(shape_numel(shape_))
    {
    }
    explicit ValuesOf(const ArrayOf<T>& a) : data_(a.data()), shape_(a.shape()), size_(a.size()) {}   // a view of a
    const T* data() const& { return data_; }
    const T* data() const&& = delete;
    const Array::shape_type& shape() const& { return shape_; }
    Array::shape_type shape() const&& { return shape_; }
    std::size_t size() const { return size_; }
    std::size_t dimension() const { return shape_.size(); }
    T operator[](std::size_t flat) const { return data_[flat]; }
    const T* begin() const& { return data_; }
    const T* end() const& { return data_ + size_; }
    ArrayOf<T> array() const   // a copy, as an ArrayOf<T> of this shape
    {
        ArrayOf<T> a(shape_);
        if constexpr (std::is_same_v<T, float>) {
            if (size_) parallel_copy(a.data(), data_, size_);   // split across threads
        } else {
            std::copy(data_, data_ + size_, a.data());
        }
        return a;
    }

private:
    std::shared_ptr<const void> keep_;
    const T* data_ = nullptr;
    Array::shape_type shape_;
    std::size_t size_ = 0;
};
using Values = ValuesOf<float>;

}  // namespace xgrad
