// Strided layouts: their contiguity, overlap, and the gather and scatter between them and a
// contiguous buffer.
#include "core/strided.h"

#include <algorithm>
#include <numeric>
#include <type_traits>
#include <vector>

namespace xgrad {

Strides contiguous_strides(const Array::shape_type& shape)
{
    Strides strides(shape.size(), 1);
    for (std::size_t axis = shape.size(); axis-- > 1;) strides[axis - 1] = strides[axis] * std::max<std::size_t>(shape[axis], 1);
    return strides;
}

bool is_contiguous(const Array::shape_type& shape, const Strides& strides)
{
    std::size_t expected = 1;
    for (std::size_t axis = shape.size(); axis-- > 0;) {
        if (shape[axis] == 0) return true;
        if (shape[axis] == 1) continue;
        if (strides[axis] != expected) return false;
        expected *= shape[axis];
    }
    return true;
}

std::size_t row_offset(std::size_t row, const Array::shape_type& shape, const Strides& strides)
{
    std::size_t offset = 0;
    for (std::size_t axis = shape.empty() ? 0 : shape.size() - 1; axis-- > 0;) {
        offset += (row % shape[axis]) * strides[axis];
        row /= shape[axis];
    }
    return offset;
}

namespace {

// The one loop of gather and scatter: `strided` is the strided side, `dense` the row-major one, and
// ToDense says which way the elements (of type T) go.
template <bool ToDense, class T = float>
void copy_rows(T* dense, const Array::shape_type& shape, const Strides& strides, T* strided)
{
    if (is_contiguous(shape, strides)) {
        const std::size_t n = shape_numel(shape);
        if constexpr (std::is_same_v<T, float>) {
            ToDense ? parallel_copy(dense, strided, n) : parallel_copy(strided, dense, n);
        } else if (n > 0) {
            ToDense ? std::memcpy(dense, strided, n * sizeof(T)) : std::memcpy(strided, dense, n * sizeof(T));
        }
        return;
    }
    const std::size_t inner = shape.empty() ? 1 : shape.back();
    const std::size_t step = shape.empty() ? 1 : strides.back();
    for_each_row(shape, strides, [&](std::size_t row, std::size_t offset) {
        T* d = dense + row * inner;
        T* s = strided + offset;
        if (step == 1) {
            ToDense ? std::memcpy(d, s, inner * sizeof(T)) : std::memcpy(s, d, inner * sizeof(T));
        } else if (ToDense) {
            for (std::size_t j = 0; j < inner; ++j) d[j] = s[j * step];
        } else {
            for (std::size_t j = 0; j < inner; ++j) s[j * step] = d[j];
        }
    });
}

}  // namespace

void gather(const float* src, const Array::shape_type& shape, const Strides& strides, float* dst)
{
    copy_rows<true>(dst, shape, strides, const_cast<float*>(src));   // src is only read
}

void scatter(const float* src, const Array::shape_type& shape, const Strides& strides, float* dst)
{
    copy_rows<false>(const_cast<float*>(src), shape, strides, dst);  // src is only read
}

namespace {

// copy_rows over elements of `size` bytes, moved as unsigned integers of that size
template <bool ToDense>
void copy_elements(void* dense, const Array::shape_type& shape, const Strides& strides, void* strided, std::size_t size)
{
    switch (size) {
    case 1: return copy_rows<ToDense>(static_cast<std::uint8_t*>(dense), shape, strides, static_cast<std::uint8_t*>(strided));
    case 2: return copy_rows<ToDense>(static_cast<std::uint16_t*>(dense), shape, strides, static_cast<std::uint16_t*>(strided));
    case 4: return copy_rows<ToDense>(static_cast<std::uint32_t*>(dense), shape, strides, static_cast<std::uint32_t*>(strided));
    case 8: return copy_rows<ToDense>(static_cast<std::uint64_t*>(dense), shape, strides, static_cast<std::uint64_t*>(strided));
    }
    fail("internal: elements of ", size, " bytes");
}

}  // namespace

void gather_elements(const void* src, const Array::shape_type& shape, const Strides& strides, void* dst, std::size_t size)
{
    copy_elements<true>(dst, shape, strides, const_cast<void*>(src), size);   // src is only read
}

void scatter_elements(const void* src, const Array::shape_type& shape, const Strides& strides, void* dst, std::size_t size)
{
    copy_elements<false>(const_cast<void*>(src), shape, strides, dst, size);  // src is only read
}

bool has_overlap(const Array::shape_type& shape, const Strides& strides)
{
    if (is_contiguous(shape, strides)) return false;
    // Sorted by stride, each axis of size > 1 must step past everything the smaller axes span; that is
    // torch's test too (it refuses some layouts that do not overlap, never one that does).
    std::vector<std::size_t> axes;
    for (std::size_t axis = 0; axis < shape.size(); ++axis) {
        if (shape[axis] == 0) return false;
        if (shape[axis] > 1) axes.push_back(axis);
    }
    std::sort(axes.begin(), axes.end(), [&](std::size_t a, std::size_t b) { return strides[a] < strides[b]; });
    std::size_t span = 0;   // the largest offset the axes so far reach
    for (std::size_t axis : axes) {
        if (strides[axis] <= span) return true;
        span += strides[axis] * (shape[axis] - 1);
    }
    return false;
}

}  // namespace xgrad
