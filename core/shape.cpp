// Ops that move data without changing it: reshape, permute, concat, split, and masked_fill.
#include <algorithm>
#include <cstring>
#include <numeric>

#include <xtensor/xmanipulation.hpp>
#include <xtensor/xoperation.hpp>

#include "core/autograd.h"
#include "core/node.h"   // the lazy transpose's fields
#include "core/ops.h"

namespace xgrad {

// x (...) -> shape with the same number of elements; one -1 entry is inferred.
Tensor reshape(Tensor x, std::vector<std::ptrdiff_t> shape)
{
    const OpScope scope("reshape");
    const std::size_t n = x.numel();
    std::size_t known = 1;
    std::ptrdiff_t inferred = -1;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1) {
            XGRAD_CHECK(inferred < 0, "reshape: only one axis can be -1");
            inferred = static_cast<std::ptrdiff_t>(i);
        } else {
            XGRAD_CHECK(shape[i] >= 0, "reshape: invalid size ", shape[i], " at axis ", i);
            // a product that wraps around could match the input's size: (2^32, 2^32, 6) "holds" 6
            XGRAD_CHECK(!__builtin_mul_overflow(known, static_cast<std::size_t>(shape[i]), &known), "reshape: shape ",
                  shape_str(shape), " has more elements than a size_t can count, but the input ", shape_str(x.shape()),
                  " has ", n);
        }
    }
    Shape out(shape.size());
    for (std::size_t i = 0; i < shape.size(); ++i) out[i] = shape[i] < 0 ? 0 : static_cast<std::size_t>(shape[i]);
    if (inferred >= 0) {
        XGRAD_CHECK(known > 0 && n % known == 0, "reshape: cannot infer the -1 axis: ", n, " elements of ",
              shape_str(x.shape()), " do not divide into blocks of ", known);
        out[static_cast<std::size_t>(inferred)] = n / known;
    }
    const std::size_t out_numel = shape_numel(out, "reshape");
    XGRAD_CHECK(out_numel == n, "reshape: shape ", shape_str(out), " holds ", out_numel, " elements, but the input ",
          shape_str(x.shape()), " has ", n);

    Array y = x.expiring() ? x.donate_data() : x.data();   // a temporary's buffer is taken over, not copied
    y.reshape(out);
    return from_op(std::move(y), {x}, "reshape", [x](GradOutput& grad_out) {
        Array grad = grad_out.take();
        grad.reshape(x.shape());                                     // the same values, the old shape
        x.accumulate_grad(std::move(grad));
    });
}

Tensor view(Tensor x, std::vector<std::ptrdiff_t> shape) { return reshape(std::move(x), std::move(shape)); }

namespace {

// a with its axes reordered, out.shape[i] = a.shape[perm[i]]. When the last axis stays last (the heads
// of attention: (B, T, nh, hs) <-> (B, nh, T, hs)), whole rows are copied, split across threads;
// otherwise xtensor's strided copy.
Array permuted(const Array& a, const std::vector<std::size_t>& perm)
{
    const std::size_t n = perm.size();
    if (n < 2 || perm.back() != n - 1) return xt::transpose(a, perm);
    const Shape in = to_shape(a.shape());
    Shape out(n);
    std::vector<std::size_t> in_strides(n, 1), stride_of_out_axis(n);
    for (std::size_t i = n - 1; i-- > 0;) in_strides[i] = in_strides[i + 1] * in[i + 1];
    for (std::size_t i = 0; i < n; ++i) out[i] = in[perm[i]], stride_of_out_axis[i] = in_strides[perm[i]];
    Array y(out);
    const std::size_t inner = in.back(), rows = inner ? a.size() / inner : 0;
    const float* src = a.data();
    float* dst = y.data();
    parallel_rows(rows, inner, [&](std::size_t first, std::size_t last) {
        for (std::size_t row = first; row < last; ++row) {   // out row -> its source row
            std::size_t rest = row, offset = 0;
            for (std::size_t axis = n - 1; axis-- > 0;) {
                offset += (rest % out[axis]) * stride_of_out_axis[axis];
                rest /= out[axis];
            }
            std::memcpy(dst + row * inner, src + offset, inner * sizeof(float));
        }
    });
    return y;
}

// a with its last two axes swapped
Array swap_last_axes(const Array& a)
{
    std::vector<std::size_t> perm(a.dimension());
    std::iota(perm.begin(), perm.end(), 0);
    std::swap(perm[perm.size() - 2], perm[perm.size() - 1]);
    return permuted(a, perm);
}

}  // namespace

// x with its axes reordered: out.shape[i] = x.shape[axes[i]].
Tensor permute(const Tensor& x, std::vector<int> axes)
{
    const OpScope scope("permute");
    const std::size_t n = x.dim();
    XGRAD_CHECK(axes.size() == n, "permute: expected ", n, " axes for shape ", shape_str(x.shape()), ", got ", axes.size());
    std::vector<std::size_t> perm(n), inverse(n);
    std::vector<bool> seen(n, false);
    for (std::size_t i = 0; i < n; ++i) {
        perm[i] = normalize_axis("permute", axes[i], n);
        XGRAD_CHECK(!seen[perm[i]], "permute: axis ", axes[i], " appears twice");
        seen[perm[i]] = true;
        inverse[perm[i]] = i;
    }
    Array y = permuted(x.data(), perm);
    return from_op(std::move(y), {x}, "permute", [x, inverse](GradOutput& grad_out) {
        x.accumulate_grad(permuted(grad_out.read(), inverse));   // permuting back
    });
}

// Swapping the last two axes (k.transpose(-2, -1)) copies nothing until the values are read: a matmul
// reads x with sgemm's transpose flag instead (lazy_transpose_source). Other axes: permute.
Tensor transpose(const Tensor& x, int axis0, int axis1)
{
    const OpScope scope("transpose");
    const std::size_t d = x.dim(), a0 = normalize_axis("transpose", axis0, d), a1 = normalize_axis("transpose", axis1, d);
    std::vector<int> axes(d);
    std::iota(axes.begin(), axes.end(), 0);
    std::swap(axes[a0], axes[a1]);
    const bool last_two = d >= 2 && std::min(a0, a1) == d - 2 && std::max(a0, a1) == d - 1;
    if (!last_two) return permute(x, axes);
    Tensor y = from_op(Array(Array::shape_type{0}), {x}, "transpose", [x](GradOutput& grad_out) {   // no values yet
        x.accumulate_grad(swap_last_axes(grad_out.read()));
    });
    detail::Node& n = detail::Access::node(y);
    const Shape shape = x.shape();
    n.donated_shape = Array::shape_type(shape.begin(), shape.end());
    std::swap(n.donated_shape[d - 2], n.donated_shape[d - 1]);
    n.lazy_transpose_of = x;
    return y;
}

Tensor lazy_transpose_source(const Tensor& t)
{
    return t.defined() ? detail::Access::node(t).lazy_transpose_of : Tensor();
}

void detail::materialize_transpose(Node& n)
{
    Tensor source = std::move(n.lazy_transpose_of);
    n.lazy_transpose_of = Tensor();
    n.data = swap_last_axes(source.data());
}

// ---- concat and split ---------------------------------------------------------------------------------------
// Both see an array as (outer, size along axis, inner) and copy blocks of `inner` contiguous floats.

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
template <bool Add>
void copy_along(const Array& src, std::size_t src_start, Array& dst, std::size_t dst_start, std::size_t len,
                std::size_t axis)
{
    Blocks b = blocks_around(to_shape(src.shape()), axis);
    const std::size_t src_n = src.shape()[axis], dst_n = dst.shape()[axis], run = len * b.inner;
    for (std::size_t o = 0; o < b.outer; ++o) {
        const float* from = src.data() + (o * src_n + src_start) * b.inner;
        float* to = dst.data() + (o * dst_n + dst_start) * b.inner;
        if constexpr (Add) {
            for (std::size_t j = 0; j < run; ++j) to[j] += from[j];
        } else {
            std::memcpy(to, from, run * sizeof(float));
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
    Array y(out);
    std::vector<std::size_t> starts;                       // where each input begins along the axis
    std::size_t offset = 0;
    for (const auto& x : xs) {
        starts.push_back(offset);
        copy_along<false>(x.data(), 0, y, offset, x.shape()[a], a);
        offset += x.shape()[a];
    }
    return from_op(std::move(y), xs, "concat", [xs, starts, a](GradOutput& grad_out) {
        for (std::size_t i = 0; i < xs.size(); ++i) {
            if (!xs[i].requires_grad()) continue;
            Array g(xs[i].shape());
            copy_along<false>(grad_out.read(), starts[i], g, 0, g.shape()[a], a);   // each input's own slice
            xs[i].accumulate_grad(std::move(g));
        }
    });
}

// x (..., n, ...) -> pieces (..., split_size, ...), the last one holding what remains.
std::vector<Tensor> split(const Tensor& x, std::size_t split_size, int axis)
{
    const OpScope scope("split");
    XGRAD_CHECK(split_size > 0, "split: split_size must be positive");
    const Shape shape = x.shape();
    const std::size_t a = normalize_axis("split", axis, shape.size());
    std::vector<Tensor> pieces;
    for (std::size_t start = 0; start < shape[a]; start += split_size) {
        Shape piece_shape = shape;
        piece_shape[a] = std::min(split_size, shape[a] - start);
        Array y(piece_shape);
        copy_along<false>(x.data(), start, y, 0, piece_shape[a], a);
        pieces.push_back(from_op(std::move(y), {x}, "split", [x, start, a](GradOutput& grad_out) {
            const Array& piece = grad_out.read();
            Array g = xt::zeros<float>(x.shape());                   // zero outside this piece's slice
            copy_along<true>(piece, 0, g, start, piece.shape()[a], a);
            x.accumulate_grad(std::move(g));
        }));
    }
    return pieces;
}

// ---- masked_fill: x (...), mask broadcastable to x -> (...) ---------------------------------------------------
Tensor masked_fill(const Tensor& x, const Tensor& mask, float value)
{
    const OpScope scope("masked_fill");
    XGRAD_CHECK(broadcast_shapes("masked_fill", x.shape(), mask.shape()) == x.shape(), "masked_fill: mask of shape ",
          shape_str(mask.shape()), " does not broadcast to the input's shape ", shape_str(x.shape()));
    Array y = xt::where(xt::not_equal(mask.data(), 0.0f), value, x.data());
    return from_op(std::move(y), {x}, "masked_fill", [x, mask](GradOutput& grad_out) {
        x.accumulate_grad(Array(xt::where(xt::not_equal(mask.data(), 0.0f), 0.0f, grad_out.read())));   // filled: 0
    });
}

}  // namespace xgrad
