// Axis normalisation, broadcasting, and reduce_to_shape.
#include "core/axes.h"

#include "core/check.h"

namespace xgrad {

std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t ndim)
{
    auto n = static_cast<std::ptrdiff_t>(ndim);
    check(axis >= -n && axis < n, op, ": axis ", axis, " is out of range for a ", ndim, "-D tensor");
    return static_cast<std::size_t>(axis < 0 ? axis + n : axis);
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b)
{
    Shape out(std::max(a.size(), b.size()));
    for (std::size_t i = 0; i < out.size(); ++i) {   // i counts from the last axis
        std::size_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
        std::size_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
        check(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
              " cannot be broadcast: sizes ", da, " and ", db, " differ at axis -", i + 1);
        out[out.size() - 1 - i] = da == 1 ? db : da;
    }
    return out;
}

Array reduce_to_shape(const Array& grad, const Shape& shape)
{
    const auto& gshape = grad.shape();
    if (Shape(gshape.begin(), gshape.end()) == shape) return grad;
    const std::size_t n = gshape.size();
    check(shape.size() <= n, "internal: cannot reduce ", shape_str(gshape), " to ", shape_str(shape));

    // Output strides over the gradient's axes: 0 along every axis that is summed away.
    std::vector<std::size_t> stride(n, 0);
    std::size_t step = 1;
    for (std::size_t k = 0; k < shape.size(); ++k) {
        std::size_t axis = n - 1 - k, d = shape[shape.size() - 1 - k];
        check(d == gshape[axis] || d == 1, "internal: cannot reduce ", shape_str(gshape), " to ", shape_str(shape));
        stride[axis] = (d == gshape[axis]) ? step : 0;
        step *= d;
    }

    Array out = xt::zeros<float>(shape);
    if (grad.size() == 0) return out;
    const std::size_t inner = gshape[n - 1];      // the last axis is walked as one contiguous row
    std::vector<std::size_t> index(n, 0);
    std::size_t offset = 0;
    for (std::size_t base = 0; base < grad.size(); base += inner) {
        const float* g = grad.data() + base;
        float* o = out.data() + offset;
        if (stride[n - 1] == 0) {
            float s = 0.0f;
            for (std::size_t j = 0; j < inner; ++j) s += g[j];
            *o += s;
        } else {
            for (std::size_t j = 0; j < inner; ++j) o[j] += g[j];
        }
        for (std::size_t axis = n - 1; axis-- > 0;) {  // odometer over the outer axes
            offset += stride[axis];
            if (++index[axis] < gshape[axis]) break;
            offset -= stride[axis] * gshape[axis];
            index[axis] = 0;
        }
    }
    return out;
}

}  // namespace xgrad
