// Shape arithmetic shared by the ops: axis normalisation, NumPy broadcasting, and the reduction that
// takes a broadcast gradient back to an input's shape.
#pragma once

#include <vector>

#include "core/array.h"

namespace xgrad {

// -1 -> ndim - 1; throws "<op>: axis 3 is out of range for a 2-D tensor".
std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t ndim);

// The NumPy broadcast of two shapes; throws "<op>: shapes (2, 3) and (4,) cannot be broadcast".
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

// Sums `grad` over the axes along which an input of `shape` was broadcast, giving an array of `shape`.
// Also the engine behind sum(x, axes): summing over an axis is reducing it to size 1.
Array reduce_to_shape(const Array& grad, const Shape& shape);

}  // namespace xgrad
