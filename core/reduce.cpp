// Reductions (sum, mean, max) and the row-wise softmax family. The hot loops are written by hand:
// xtensor's axis reductions are slow on the small arrays a toy model is made of.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/ops.h"

namespace xgrad {

namespace {

// The shape `x` has after reducing `axes` to size 1, and the shape without them.
struct Reduced {
    Shape kept;      // keepdim = true
    Shape dropped;   // keepdim = false
    std::size_t count = 1;   // how many elements fall into each output element
};

Reduced reduced_shapes(const char* op, const Shape& shape, std::vector<int> axes)
{
    std::vector<bool> reduce(shape.size(), axes.empty());   // no axes: all of them, as PyTorch's dim=[]
    for (int axis : axes) {
        std::size_t a = normalize_axis(op, axis, shape.size());
        XGRAD_CHECK(!reduce[a] || axes.empty(), op, ": axis ", axis, " appears twice");
        reduce[a] = true;
    }
    Reduced r;
    for (std::size_t a = 0; a < shape.size(); ++a) {
        r.kept.push_back(reduce[a] ? 1 : shape[a]);
        if (reduce[a]) r.count *= shape[a]; else r.dropped.push_back(shape[a]);
    }
    return r;
}

// grad of shape `kept` (or `dropped`), repeated along the reduced axes back to `shape`
template <class T>
ArrayOf<T> expand_back(const ArrayOf<T>& grad_out, const Shape& kept, const Shape& shape, T scale)
{
    ArrayOf<T> g = grad_out * scale;
    g.reshape(kept);
    return broadcast_to(g, shape);
}

}  // namespace

Tensor sum(const Tensor& x, std::vector<int> axes, bool keepdim)
{
    const OpScope scope("sum");
    if (!x.is_floating_point()) [[unlikely]] return detail::integral_sum(x, std::move(axes), keepdim);   // int64
    Reduced r = reduced_shapes("sum", x.shape(), std::move(axes));
    return compute_as(x, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = reduce_to_shape(x.values<T>(), r.kept);   // summing over an axis is reducing it to 1
        if (!keepdim) y.reshape(r.dropped);
        return from_op(std::move(y), {x}, "sum", [x, r = std::move(r)](GradOutput& grad_out) {
            x.accumulate_grad(expand_back(grad_out.read<T>(), r.kept, x.shape(), T(1)));   // d sum / dx_i = 1
        });
    });
}

Tensor mean(const Tensor& x, std::vector<int> axes, bool keepdim)
{
    const OpScope scope("mean");
    XGRAD_CHECK(x.is_floating_point(), "mean(): could not infer output dtype. Input dtype must be either a floating point ",
                "or complex dtype. Got: ", dtype_name(x.dtype()), " (convert it with .to(kFloat32) first)");
    Reduced r = reduced_shapes("mean", x.shape(), std::move(axes));
    XGRAD_CHECK(r.count > 0, "mean: cannot average over an empty axis of shape ", shape_str(x.shape()));
    return compute_as(x, [&]<class T>(Tag<T>) {
        const T scale = T(1) / static_cast<T>(r.count);
        ArrayOf<T> y = reduce_to_shape(x.values<T>(), r.kept) * scale;
        if (!keepdim) y.reshape(r.dropped);
        return from_op(std::move(y), {x}, "mean", [x, r = std::move(r), scale](GradOutput& grad_out) {
            x.accumulate_grad(expand_back(grad_out.read<T>(), r.kept, x.shape(), scale));  // d mean / dx_i = 1/n
        });
    });
}

Tensor sum(const Tensor& x) { return sum(x, {}, false); }
Tensor mean(const Tensor& x) { return mean(x, {}, false); }

// x (..., N, ...) -> (..., ...): the largest value along `axis`. Its gradient flows to the first
// position that holds the maximum.
Tensor max(const Tensor& x, int axis, bool keepdim)
{
    const OpScope scope("max");
    if (!x.is_floating_point()) [[unlikely]] return detail::integral_extreme("max", x, axis, keepdim, true);
    const Shape shape = x.shape();
    const std::size_t a = normalize_axis("max", axis, shape.size());
    const std::size_t n = shape[a];
    XGRAD_CHECK(n > 0, "max: cannot take the max over axis ", axis, " of size 0 in shape ", shape_str(shape));
    const std::size_t outer = shape_numel(Shape(shape.begin(), shape.begin() + a));
    const std::size_t inner = shape_numel(Shape(shape.begin() + a + 1, shape.end()));

    Shape kept = shape;
    kept[a] = 1;
    return compute_as(x, [&]<class T>(Tag<T>) {
        ArrayOf<T> y(kept);
        std::vector<std::size_t> argmax(outer * inner);       // flat index into x of each maximum
        const ValuesOf<T> xv = x.values<T>();
        const T* xd = xv.data();
        for (std::size_t o = 0; o < outer; ++o) {
            for (std::size_t i = 0; i < inner; ++i) {
                std::size_t best = o * n * inner + i;
                for (std::size_t k = 1; k < n; ++k) {
                    std::size_t at = (o * n + k) * inner + i;
                    if (xd[at] > xd[best] || std::isnan(xd[at])) best = at;
                }
                argmax[o * inner + i] = best;
                y.data()[o * inner + i] = xd[best];
            }
        }
        if (!keepdim) {
            Shape dropped = shape;
            dropped.erase(dropped.begin() + static_cast<std::ptrdiff_t>(a));
            y.reshape(dropped);
        }
        return from_op(std::move(y), {x}, "max", [x, argmax = std::move(argmax)](GradOutput& grad_out) {
            ArrayOf<T> grad_input = xt::zeros<T>(x.shape());
            const T* g = grad_out.read<T>().data();
            for (std::size_t j = 0; j < argmax.size(); ++j) grad_input.data()[argmax[j]] += g[j];   // 1 at the argmax
            x.accumulate_grad(std::move(grad_input));
        });
    });
}

Tensor min(const Tensor& x, int axis, bool keepdim)
{
    const OpScope scope("min");
    if (!x.is_floating_point()) [[unlikely]] return detail::integral_extreme("min", x, axis, keepdim, false);
    return neg(max(neg(x), axis, keepdim));   // the smallest is the largest of -x
}

namespace {

// The largest (or smallest) of n >= 1 floats, NaN if any is NaN, in eight lanes as lane_sum's (plain loops
// of selects that GCC turns into maxps/minps): the lanes pass over NaN, since a comparison with it is
// false, and eight counters note whether one went by.
template <bool largest, class T>
T extreme_value(const T* v, std::size_t n)
{
    const auto better = [](T a, T b) { return largest ? a > b : a < b; };
    T lanes[8];
    int seen[8] = {};
    for (T& lane : lanes) lane = v[0];
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (std::size_t k = 0; k < 8; ++k) {
            lanes[k] = better(v[i + k], lanes[k]) ? v[i + k] : lanes[k];
            seen[k] |= v[i + k] != v[i + k];
        }
    }
    T best = v[0];
    bool nan = false;
    for (; i < n; ++i) {
        best = better(v[i], best) ? v[i] : best;
        nan = nan || std::isnan(v[i]);
    }
    for (std::size_t k = 0; k < 8; ++k) {
        best = better(lanes[k], best) ? lanes[k] : best;
        nan = nan || seen[k] != 0 || std::isnan(lanes[k]);
    }
    return nan ? T(NAN) : best;
}

// x (...) -> (): the largest (or smallest) element, NaN if any is NaN, as torch's max() and min(). The
// gradient is shared evenly by every element equal to it (torch's evenly_distribute_backward; 0 == -0.0 is
// a tie), or by the NaNs when it is NaN: g / count each, where max(x, axis) gives it all to the first.
Tensor extreme(const char* op, const Tensor& x, bool largest)
{
    const OpScope scope(op);
    XGRAD_CHECK(x.numel() > 0, op, "(): Expected reduction dim to be specified for input.numel() == 0");
    if (!x.is_floating_point()) [[unlikely]] return detail::integral_extreme(op, x, std::nullopt, false, largest);
    return compute_as(x, [&]<class T>(Tag<T>) {
        const ValuesOf<T> xv = x.values<T>();
        const T best = largest ? extreme_value<true>(xv.data(), xv.size()) : extreme_value<false>(xv.data(), xv.size());
        return from_op(ArrayOf<T>(best), {x}, op, [x, best](GradOutput& grad_out) {
            const ValuesOf<T> xv = x.values<T>();
            const T* xd = xv.data();
            const std::size_t n = xv.size();
            ArrayOf<T> grad_input(x.shape());
            T* gd = grad_input.data();
            const T g = grad_out.read<T>().data()[0];
            std::size_t count = 0;   // loops of compares and selects, which vectorise; NaN's apart
            if (std::isnan(best)) {
                for (std::size_t i = 0; i < n; ++i) count += std::isnan(xd[i]) ? 1 : 0;
                const T share = g / static_cast<T>(count);   // d/dx_i = 1/count at each tie
                for (std::size_t i = 0; i < n; ++i) gd[i] = std::isnan(xd[i]) ? share : T(0);
            } else {
                for (std::size_t i = 0; i < n; ++i) count += xd[i] == best ? 1 : 0;
                const T share = g / static_cast<T>(count);
                for (std::size_t i = 0; i < n; ++i) gd[i] = xd[i] == best ? share : T(0);
            }
            x.accumulate_grad(std::move(grad_input));
        });
    });
}

}  // namespace

Tensor max(const Tensor& x) { return extreme("max", x, true); }
Tensor min(const Tensor& x) { return extreme("min", x, false); }

// x (...) -> the variance over `axes` (all of them when empty): the sum of squared deviations from the
// mean, over n - 1 (unbiased) or n, composed from primitives
Tensor var(const Tensor& x, std::vector<int> axes, bool unbiased, bool keepdim)
{
    const OpScope scope("var");
    const Reduced r = reduced_shapes("var", x.shape(), axes);
    Tensor centred = sub(x, mean(x, axes, true));
    Tensor ss = sum(mul(centred, centred), axes, keepdim);
    return mul(ss, 1.0 / (static_cast<double>(r.count) - (unbiased ? 1.0 : 0.0)));
}

// sqrt(var). Its own node rather than sqrt's: where the deviation is 0, the gradient is 0 (torch's
// std_backward), not the NaN of g / (2 sqrt(0)) times var's zero slope
Tensor std_dev(const Tensor& x, std::vector<int> axes, bool unbiased, bool keepdim)
{
    const OpScope scope("std");
    const Tensor v = var(x, std::move(axes), unbiased, keepdim);
    return compute_as(v, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = xt::sqrt(v.values<T>().array());
        return from_op(std::move(y), {v}, "std", [v](GradOutput& grad_out, const ValuesOf<T>& y) {
            ArrayOf<T> g = grad_out.take<T>();
            const T* yd = y.data();
            T* gd = g.data();
            for (std::size_t i = 0; i < g.size(); ++i) gd[i] = yd[i] == T(0) ? T(0) : gd[i] / (T(2) * yd[i]);   // d sqrt(v)
            v.accumulate_grad(std::move(g));
        });
    });
}

// ---- softmax over the last axis: x (..., C) -> (..., C) ---------------------------------------------------
// Forward by core/kernels.h's softmax_rows; the backward's rows split across threads the same way.

namespace {

std::size_t last_axis(const char* op, const Tensor& x)
{
    XGRAD_CHECK(x.dim() >= 1, op, ": expected at least 1 axis, got a 0-D tensor");
    return x.shape().back();
}

}  // namespace

namespace {

// softmax_rows and log_softmax_rows (core/kernels.h) for float; plainly, the same steps, for double
template <class T>
void softmax_rows_of(const T* x, T* y, std::size_t rows, std::size_t C, bool log)
{
    if constexpr (std::is_same_v<T, float>) {
        log ? log_softmax_rows(x, y, rows, C) : softmax_rows(x, y, rows, C);
    } else {
        parallel_rows(rows, C, [=](std::size_t first, std::size_t last) {
            for (std::size_t r = first; r < last; ++r) {
                const T* in = x + r * C;
                T* out = y + r * C;
                const T top = *std::max_element(in, in + C);
                T total = 0;
                for (std::size_t j = 0; j < C; ++j) total += std::exp(in[j] - top);
                const T log_total = std::log(total);
                for (std::size_t j = 0; j < C; ++j) out[j] = log ? in[j] - top - log_total : std::exp(in[j] - top) / total;
            }
        });
    }
}

}  // namespace

Tensor softmax(const Tensor& x)
{
    const OpScope scope("softmax");
    const std::size_t C = last_axis("softmax", x), rows = C ? x.numel() / C : 0;
    return compute_as(x, [&]<class T>(Tag<T>) {
        const ValuesOf<T> xv = x.values<T>();
        ArrayOf<T> y(xv.shape());
        softmax_rows_of(xv.data(), y.data(), rows, C, false);
        return from_op(std::move(y), {x}, "softmax", [x, rows, C](GradOutput& grad_out, const ValuesOf<T>& y) {
            ArrayOf<T> g = grad_out.take<T>();           // overwritten with dx_j = y_j (g_j - sum_k g_k y_k)
            T* gd = g.data();
            const T* yd = y.data();
            parallel_rows(rows, C, [=](std::size_t first, std::size_t last) {
                for (std::size_t r = first; r < last; ++r) {
                    T* gr = gd + r * C;
                    const T* s = yd + r * C;
                    T dot = 0;
                    for (std::size_t j = 0; j < C; ++j) dot += gr[j] * s[j];
                    for (std::size_t j = 0; j < C; ++j) gr[j] = s[j] * (gr[j] - dot);
                }
            });
            x.accumulate_grad(std::move(g));
        });
    });
}

Tensor log_softmax(const Tensor& x)
{
    const OpScope scope("log_softmax");
    const std::size_t C = last_axis("log_softmax", x), rows = C ? x.numel() / C : 0;
    return compute_as(x, [&]<class T>(Tag<T>) {
        const ValuesOf<T> xv = x.values<T>();
        ArrayOf<T> y(xv.shape());
        softmax_rows_of(xv.data(), y.data(), rows, C, true);
        return from_op(std::move(y), {x}, "log_softmax", [x, rows, C](GradOutput& grad_out, const ValuesOf<T>& y) {
            ArrayOf<T> g = grad_out.take<T>();           // overwritten with dx_j = g_j - softmax_j sum_k g_k, softmax = exp(y)
            T* gd = g.data();
            const T* yd = y.data();
            parallel_rows(rows, C, [=](std::size_t first, std::size_t last) {
                for (std::size_t r = first; r < last; ++r) {
                    T* gr = gd + r * C;
                    const T total = lane_sum(gr, C);
                    for (std::size_t j = 0; j < C; ++j) gr[j] -= std::exp(yd[r * C + j]) * total;
                }
            });
            x.accumulate_grad(std::move(g));
        });
    });
}

namespace {

// op over `dim`: the row kernels work on the last axis, so another is moved there and back (views)
Tensor along(const char* name, const Tensor& x, int dim, Tensor (*op)(const Tensor&))
{
    const OpScope scope(name);
    const std::size_t n = x.dim();
    if (n == 0) return op(x.reshape({1})).reshape({});
    const auto axis = static_cast<int>(normalize_axis(name, dim, n)), last = static_cast<int>(n - 1);
    return axis == last ? op(x) : transpose(op(transpose(x, axis, last)), axis, last);
}

}  // namespace

Tensor softmax(const Tensor& x, int dim) { return along("softmax", x, dim, [](const Tensor& v) { return softmax(v); }); }
Tensor log_softmax(const Tensor& x, int dim) { return along("log_softmax", x, dim, [](const Tensor& v) { return log_softmax(v); }); }

}  // namespace xgrad
