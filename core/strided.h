// Where a tensor's elements sit in its storage: element (i0, i1, ...) of a tensor of `shape` is at
// offset + i0 strides[0] + i1 strides[1] + ... (strides in elements, as torch's stride()). A fresh
// tensor is row-major (contiguous); a view may be anything: a transpose swaps strides, an expand
// sets one to 0, a slice with a step multiplies one. The loops here walk such a layout in row-major
// order, one row (the last axis) at a time, split across threads.
#pragma once

#include <cstring>

#include "core/array.h"
#include "core/parallel.h"

namespace xgrad {

using Strides = Array::shape_type;   // in elements; never negative

// The strides of a row-major tensor of `shape`: (3, 4) -> (4, 1).
Strides contiguous_strides(const Array::shape_type& shape);

// torch's is_contiguous(): the strides are row-major, ignoring those of axes of size 1 (whose stride
// never matters); an empty tensor is contiguous.
bool is_contiguous(const Array::shape_type& shape, const Strides& strides);

// The offset of row `row` (rows counted in row-major order over every axis but the last) from the
// layout's first element.
std::size_t row_offset(std::size_t row, const Array::shape_type& shape, const Strides& strides);

// body(first, last, offset_of) over the rows [0, rows) of a layout, split across threads: offset_of(r)
// is row r's offset, for r in [first, last), asked for in increasing order (an odometer, not a division
// per row). A 0-D layout is one row of one element.
template <class Body>
void for_each_row(const Array::shape_type& shape, const Strides& strides, Body body)
{
    const std::size_t inner = shape.empty() ? 1 : shape.back();
    const std::size_t rows = inner == 0 ? 0 : shape_numel(shape) / inner;
    parallel_rows(rows, inner, [&](std::size_t first, std::size_t last) {
        if (first >= last) return;
        // an odometer over the outer axes, started at row `first`
        const std::size_t outer = shape.empty() ? 0 : shape.size() - 1;
        Array::shape_type index(outer, 0);
        std::size_t rest = first, offset = 0;
        for (std::size_t axis = outer; axis-- > 0;) {
            index[axis] = rest % shape[axis];
            rest /= shape[axis];
            offset += index[axis] * strides[axis];
        }
        for (std::size_t row = first; row < last; ++row) {
            body(row, offset);
            for (std::size_t axis = outer; axis-- > 0;) {   // the next row's offset
                offset += strides[axis];
                if (++index[axis] < shape[axis]) break;
                offset -= strides[axis] * shape[axis];
                index[axis] = 0;
            }
        }
    });
}

// dst (contiguous) = the elements of the layout (shape, strides) starting at src, in row-major order.
void gather(const float* src, const Array::shape_type& shape, const Strides& strides, float* dst);

// The elements of the layout (shape, strides) starting at dst = src (contiguous), in row-major order.
// Every element of the layout must be its own memory (no stride-0 axis of size > 1).
void scatter(const float* src, const Array::shape_type& shape, const Strides& strides, float* dst);

// The same for elements of any dtype, `size` bytes each (1, 2, 4 or 8).
void gather_elements(const void* src, const Array::shape_type& shape, const Strides& strides, void* dst, std::size_t size);
void scatter_elements(const void* src, const Array::shape_type& shape, const Strides& strides, void* dst, std::size_t size);

// Whether two elements of the layout share memory: an expanded axis (stride 0, size > 1), or strides
// that fold axes onto one another (as_strided). Writing into such a layout is refused, as torch does.
bool has_overlap(const Array::shape_type& shape, const Strides& strides);

}  // namespace xgrad
