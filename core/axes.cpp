// Axis normalisation, broadcasting, and reduce_to_shape.
#include "core/axes.h"

#include <algorithm>

#include "core/check.h"
#include "core/kernels.h"

namespace xgrad {

std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t ndim)
{
    auto n = static_cast<std::ptrdiff_t>(ndim);
    XGRAD_CHECK(axis >= -n && axis < n, op, ": axis ", axis, " is out of range for a ", ndim, "-D tensor");
    return static_cast<std::size_t>(axis < 0 ? axis + n : axis);
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b)
{
    Shape out(std::max(a.size(), b.size()));
    for (std::size_t i = 0; i < out.size(); ++i) {   // i counts from the last axis
        std::size_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
        std::size_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
        XGRAD_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
              " cannot be broadcast: sizes ", da, " and ", db, " differ at axis -", i + 1);
        out[out.size() - 1 - i] = da == 1 ? db : da;
    }
    // (2^32, 1) and (1, 2^32) broadcast to a shape no array can have
    shape_numel(out, op);
    return out;
}

std::vector<std::size_t> stretch_strides(const Shape& shape, const Shape& out)
{
    std::vector<std::size_t> strides(out.size(), 0);
    std::size_t step = 1;
    for (std::size_t k = 0; k < shape.size(); ++k) {   // k counts from the last axis
        std::size_t axis = out.size() - 1 - k, d = shape[shape.size() - 1 - k];
        XGRAD_CHECK(d == out[axis] || d == 1, "internal: ", shape_str(shape), " does not broadcast to ", shape_str(out));
        strides[axis] = d == out[axis] ? step : 0;
        step *= d;
    }
    return strides;
}

template <class T>
ArrayOf<T> broadcast_to(const ValuesOf<T>& x, const Shape& shape)
{
    if (Shape(x.shape().begin(), x.shape().end()) == shape) return x.array();
    const ArrayOf<T> unused = xt::zeros<T>(Shape{});   // a 0-D second operand stretches for free
    return broadcast_apply(x, unused, shape, [](T v, T) { return v; });
}

template <class T>
ArrayOf<T> reduce_to_shape(const ValuesOf<T>& grad, const Shape& shape)
{
    const Shape gshape(grad.shape().begin(), grad.shape().end());
    if (gshape == shape) return grad.array();
    XGRAD_CHECK(shape.size() <= gshape.size(), "internal: cannot reduce ", shape_str(gshape), " to ", shape_str(shape));
    ArrayOf<T> out = xt::zeros<T>(shape);
    if (grad.size() == 0) return out;

    // Only leading axes summed away (a (T, C) table added to a (B, T, C) batch): a sum of whole blocks,
    // when the blocks are wide enough to vectorise (a sum of everything goes by rows, below).
    const auto first_kept = std::find_if(shape.begin(), shape.end(), [](std::size_t d) { return d != 1; });
    const auto kept = static_cast<std::size_t>(shape.end() - first_kept);
    if (out.size() >= 16 && std::equal(first_kept, shape.end(), gshape.end() - static_cast<std::ptrdiff_t>(kept))) {
        // each thread sums its own columns of the block, over every block in order
        const std::size_t block = out.size(), blocks = grad.size() / block;
        const T* g = grad.data();
        T* o = out.data();
        parallel_rows(block, blocks, [=](std::size_t begin, std::size_t end) {
            for (std::size_t base = 0; base < blocks * block; base += block) {
                for (std::size_t j = begin; j < end; ++j) o[j] += g[base + j];
            }
        });
        return out;
    }

    RowWalker<1> rows(gshape, {stretch_strides(shape, gshape)});   // where each grad row lands in `out`
    const std::size_t inner = gshape.back();
    const T* g = grad.data();
    for (std::size_t base = 0; base < grad.size(); base += inner, rows.next_row()) {
        T* o = out.data() + rows.offset(0);
        if (rows.inner_stride(0) == 0) {              // the last axis is summed away: a row total
            *o += lane_sum(g + base, inner);
        } else {
            for (std::size_t j = 0; j < inner; ++j) o[j] += g[base + j];
        }
    }
    return out;
}

template <class T>
ArrayOf<T> reduce_to_shape(ArrayOf<T>&& grad, const Shape& shape)
{
    if (std::equal(grad.shape().begin(), grad.shape().end(), shape.begin(), shape.end())) return std::move(grad);
    return reduce_to_shape(ValuesOf<T>(grad), shape);
}

template Array broadcast_to(const Values&, const Shape&);
template Array64 broadcast_to(const ValuesOf<double>&, const Shape&);
template Array reduce_to_shape(const Values&, const Shape&);
template Array64 reduce_to_shape(const ValuesOf<double>&, const Shape&);
template Array reduce_to_shape(Array&&, const Shape&);
template Array64 reduce_to_shape(Array64&&, const Shape&);

}  // namespace xgrad
