// Shape arithmetic shared by the ops: axis normalisation, NumPy broadcasting (forward and its adjoint,
// the reduction back to an input's shape), written as plain loops: xtensor's broadcasting steppers and
// axis reductions cost far more than the arithmetic at the sizes xgrad works with.
#pragma once

#include <algorithm>
#include <array>
#include <vector>

#include "core/array.h"
#include "core/parallel.h"

namespace xgrad {

// -1 -> ndim - 1; throws "<op>: axis 3 is out of range for a 2-D tensor".
std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t ndim);

// The NumPy broadcast of two shapes; throws "<op>: shapes (2, 3) and (4,) cannot be broadcast ...".
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

// Element strides of an array of `shape` read as if stretched to `out` (right-aligned): 0 on every
// axis where it is stretched.
std::vector<std::size_t> stretch_strides(const Shape& shape, const Shape& out);

// Walks `shape` row by row (a row is the last axis), keeping the offset of K operands that may be
// stretched along any axis.
template <std::size_t K>
class RowWalker {
public:
    RowWalker(const Shape& shape, std::array<std::vector<std::size_t>, K> strides)
        : shape_(shape), strides_(std::move(strides)), index_(shape.size(), 0)
    {
    }
    std::size_t offset(std::size_t k) const { return offset_[k]; }
    void seek(std::size_t row)   // jump to row number `row` (rows counted in order from 0)
    {
        offset_ = {};
        for (std::size_t axis = shape_.size() - 1; axis-- > 0;) {
            index_[axis] = row % shape_[axis];
            row /= shape_[axis];
            for (std::size_t k = 0; k < K; ++k) offset_[k] += index_[axis] * strides_[k][axis];
        }
    }
    std::size_t inner_stride(std::size_t k) const { return strides_[k].back(); }
    void next_row()
    {
        if (shape_.size() < 2) return;                              // one row at most: nothing to advance
        for (std::size_t axis = shape_.size() - 1; axis-- > 0;) {   // an odometer over the outer axes
            for (std::size_t k = 0; k < K; ++k) offset_[k] += strides_[k][axis];
            if (++index_[axis] < shape_[axis]) return;
            for (std::size_t k = 0; k < K; ++k) offset_[k] -= strides_[k][axis] * shape_[axis];
            index_[axis] = 0;
        }
    }

private:
    Shape shape_;
    std::array<std::vector<std::size_t>, K> strides_;
    std::array<std::size_t, K> offset_{};
    std::vector<std::size_t> index_;
};

// out = f(a, b) element by element, with a and b broadcast to out's shape (their broadcast shape); a
// and b are Arrays or Values (anything row-major with data(), shape() and size()). Large outputs are
// split across threads by rows. `out` may be a or b itself when it has out's shape: each element is
// read before the same element is written.
template <class O, class A, class B, class F>
void broadcast_apply_into(O* po, const Shape& out_shape, const A& a, const B& b, F f)
{
    const std::size_t out_size = shape_numel(out_shape);
    const auto* pa = a.data();
    const auto* pb = b.data();
    if (std::equal(a.shape().begin(), a.shape().end(), b.shape().begin(), b.shape().end()) && a.size() == out_size) {
        parallel_rows(out_size, 1, [=](std::size_t begin, std::size_t end) {   // not two 0-D operands stretched to out
            for (std::size_t i = begin; i < end; ++i) po[i] = f(pa[i], pb[i]);
        });
        return;
    }
    if (out_size == 0) return;
    // The common broadcast, a bias or a position table over leading axes: one operand has out's shape
    // and the other is out's trailing dimensions, 16 floats or more. Whole blocks, no walker.
    const auto trailing = [&](const auto& small) {
        const std::size_t d = small.dimension();
        return d <= out_shape.size() && small.size() >= 16 &&
               std::equal(small.shape().begin(), small.shape().end(), out_shape.end() - static_cast<std::ptrdiff_t>(d));
    };
    const bool b_small = a.size() == out_size && trailing(b);
    if (b_small || (b.size() == out_size && trailing(a))) {
        const std::size_t block = b_small ? b.size() : a.size(), blocks = out_size / block;
        parallel_rows(blocks, block, [=](std::size_t first, std::size_t last) {
            for (std::size_t k = first; k < last; ++k) {
                const auto* ra = pa + (b_small ? k * block : 0);
                const auto* rb = pb + (b_small ? 0 : k * block);
                O* ro = po + k * block;
                for (std::size_t j = 0; j < block; ++j) ro[j] = f(ra[j], rb[j]);
            }
        });
        return;
    }
    const Shape sa(a.shape().begin(), a.shape().end()), sb(b.shape().begin(), b.shape().end());
    const RowWalker<2> start(out_shape, {stretch_strides(sa, out_shape), stretch_strides(sb, out_shape)});
    const std::size_t inner = out_shape.empty() ? 1 : out_shape.back(), rows = out_size / inner;
    const bool a_row = start.inner_stride(0) != 0, b_row = start.inner_stride(1) != 0;
    parallel_rows(rows, inner, [&](std::size_t first, std::size_t last) {
        RowWalker<2> walk = start;
        walk.seek(first);
        for (std::size_t row = first; row < last; ++row, walk.next_row()) {
            const auto* ra = pa + walk.offset(0);
            const auto* rb = pb + walk.offset(1);
            O* ro = po + row * inner;
            // four plain loops, so that each one vectorises
            if (a_row && b_row) for (std::size_t j = 0; j < inner; ++j) ro[j] = f(ra[j], rb[j]);
            else if (a_row)     for (std::size_t j = 0; j < inner; ++j) ro[j] = f(ra[j], *rb);
            else if (b_row)     for (std::size_t j = 0; j < inner; ++j) ro[j] = f(*ra, rb[j]);
            else                for (std::size_t j = 0; j < inner; ++j) ro[j] = f(*ra, *rb);
        }
    });
}

template <class T, class A, class B, class F>
void broadcast_apply_into(ArrayOf<T>& out, const A& a, const B& b, F f)
{
    broadcast_apply_into(out.data(), to_shape(out.shape()), a, b, f);
}

// The output has a's element type (float, or double for float64 ops).
template <class A, class B, class F>
auto broadcast_apply(const A& a, const B& b, const Shape& out_shape, F f)
{
    ArrayOf<std::remove_cvref_t<decltype(*a.data())>> out(out_shape);
    broadcast_apply_into(out.data(), out_shape, a, b, f);
    return out;
}

// x stretched to `shape` (x's shape must broadcast to it): the forward of broadcasting.
template <class T>
ArrayOf<T> broadcast_to(const ValuesOf<T>& x, const Shape& shape);
template <class T>
ArrayOf<T> broadcast_to(const ArrayOf<T>& x, const Shape& shape) { return broadcast_to(ValuesOf<T>(x), shape); }
inline Array broadcast_to(const Array& x, const Shape& shape) { return broadcast_to(Values(x), shape); }   // and float expressions

// Sums `grad` over the axes along which an input of `shape` was broadcast, giving an array of `shape`:
// the adjoint of broadcast_to. Also the engine of sum(x, axes): summing an axis reduces it to size 1.
template <class T>
ArrayOf<T> reduce_to_shape(const ValuesOf<T>& grad, const Shape& shape);
template <class T>
ArrayOf<T> reduce_to_shape(const ArrayOf<T>& grad, const Shape& shape) { return reduce_to_shape(ValuesOf<T>(grad), shape); }
inline Array reduce_to_shape(const Array& grad, const Shape& shape) { return reduce_to_shape(Values(grad), shape); }   // and float expressions
template <class T>
ArrayOf<T> reduce_to_shape(ArrayOf<T>&& grad, const Shape& shape);   // no copy when nothing is summed

}  // namespace xgrad
