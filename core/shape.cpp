// Ops that move data without changing it: concat, and masked_fill. (The views, which move nothing, are
// core/view.cpp's.)
#include <algorithm>
#include <cstring>

#include "core/autograd.h"
#include "core/ops.h"

namespace xgrad {

// ---- concat ---------------------------------------------------------------------------------------
// It sees an array as (outer, size along axis, inner) and copies blocks of `inner` contiguous floats.

namespace {

struct Blocks {
    std::size_t outer, inner;
};

Blocks blocks_around(const Shape& shape, std::size_t axis)
{
    return {shape_numel(Shape(shape.begin(), shape.begin() + static_cast<std::ptrdiff_t>(axis))),
            shape_numel(Shape(shape.begin() + static_cast<std::ptrdiff_t>(axis) + 1, shape.end()))};
}

// dst[..., dst_start : dst_start + len, ...] (op)= src[..., src_start : src_start + len, ...]
template <bool Add, class Src, class T>
void copy_along(const Src& src, std::size_t src_start, ArrayOf<T>& dst, std::size_t dst_start, std::size_t len,
                std::size_t axis)
{
    Blocks b = blocks_around(to_shape(src.shape()), axis);
    const std::size_t src_n = src.shape()[axis], dst_n = dst.shape()[axis], run = len * b.inner;
    if (run == 0) return;   // an empty array's data may be null, which memcpy must not get even for 0 bytes
    for (std::size_t o = 0; o < b.outer; ++o) {
        const T* from = src.data() + (o * src_n + src_start) * b.inner;
        T* to = dst.data() + (o * dst_n + dst_start) * b.inner;
        if constexpr (Add) {
            for (std::size_t j = 0; j < run; ++j) to[j] += from[j];
        } else {
            std::memcpy(to, from, run * sizeof(T));
        }
    }
}

}  // namespace

// xs[i] (..., n_i, ...) -> (..., sum n_i, ...)
Tensor concat(const std::vector<Tensor>& xs, int axis)
{
    const OpScope scope("concat");
    XGRAD_CHECK(!xs.empty(), "concat: expected at least one tensor");
    const Shape first = xs[0].shape();
    const std::size_t a = normalize_axis("concat", axis, first.size());
    Shape out = first;
    out[a] = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        Shape s = xs[i].shape();
        Shape s_other = s, first_other = first;
        if (s.size() == first.size()) s_other[a] = first_other[a] = 0;
        XGRAD_CHECK(s_other == first_other, "concat: tensor ", i, " has shape ", shape_str(s), ", which does not match ",
              shape_str(first), " outside axis ", axis);
        out[a] += s[a];
    }
    shape_numel(out, "concat");
    Dtype common = xs[0].dtype();   // torch's promotion: every input in the dtype they all meet in
    for (const Tensor& x : xs) common = promote_types(common, x.dtype());
    if (std::any_of(xs.begin(), xs.end(), [common](const Tensor& x) { return x.dtype() != common; })) {
        std::vector<Tensor> converted;
        for (const Tensor& x : xs) converted.push_back(x.to(common));
        return concat(converted, axis);
    }
    if (!is_floating_point(common)) [[unlikely]] return detail::concat_any(xs, a, out);
    return compute_as(xs[0], [&]<class T>(Tag<T>) {
        ArrayOf<T> y(out);
        std::vector<std::size_t> starts;                       // where each input begins along the axis
        std::size_t offset = 0;
        for (const auto& x : xs) {
            starts.push_back(offset);
            const ValuesOf<T> v = x.values<T>();
            copy_along<false>(v, 0, y, offset, v.shape()[a], a);
            offset += v.shape()[a];
        }
        return from_op(std::move(y), xs, "concat", [xs, starts, a](GradOutput& grad_out) {
            for (std::size_t i = 0; i < xs.size(); ++i) {
                if (!xs[i].requires_grad()) continue;
                ArrayOf<T> g(xs[i].shape());
                copy_along<false>(grad_out.read<T>(), starts[i], g, 0, g.shape()[a], a);   // each input's own slice
                xs[i].accumulate_grad(std::move(g));
            }
        });
    });
}

// ---- masked_fill: x (...), mask broadcastable to x -> (...) ---------------------------------------------------
// The mask is a bool tensor, as torch's, or any tensor read as != 0.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double number)
{
    const OpScope scope("masked_fill");
    const Shape shape = x.shape();
    XGRAD_CHECK(broadcast_shapes("masked_fill", shape, mask.shape()) == shape, "masked_fill: mask of shape ",
          shape_str(mask.shape()), " does not broadcast to the input's shape ", shape_str(shape));
    if (!x.is_floating_point()) [[unlikely]] return detail::masked_fill_any(x, mask, number);
    return compute_as(x, [&]<class T>(Tag<T>) {
        const T value = static_cast<T>(number);
        const Tensor m = mask.dtype() == x.dtype() ? mask : mask.detach().to(x.dtype());   // bool: 0 or 1
        ArrayOf<T> y = broadcast_apply(x.values<T>(), m.values<T>(), shape, [value](T v, T m) { return m != T(0) ? value : v; });
        return from_op(std::move(y), {x, m}, "masked_fill", [x, m, shape](GradOutput& grad_out) {
            x.accumulate_grad(broadcast_apply(grad_out.read<T>(), m.values<T>(), shape,
                                              [](T g, T m) { return m != T(0) ? T(0) : g; }));   // filled: 0
        });
    });
}

}  // namespace xgrad
