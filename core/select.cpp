// Selecting elements: take and index_put (what advanced indexing, x[list], x[mask], reads and writes:
// core/indexing.cpp turns an index into flat offsets, so one gather and one scatter carry every such
// pattern), flip and roll (gathers too), stack, tril/triu, topk, multinomial and where. (Basic
// indexing, x[i], x[1:3], is a view: core/view.cpp.)
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/random.h"

namespace xgrad {

namespace {

void check_offsets(const char* op, const std::vector<std::size_t>& flat, const Shape& shape, std::size_t numel)
{
    XGRAD_CHECK(flat.size() == shape_numel(shape, op), op, ": ", flat.size(), " offsets for an output of shape ",
                shape_str(shape));
    for (std::size_t i = 0; i < flat.size(); ++i) {
        XGRAD_CHECK(flat[i] < numel, op, ": offset ", flat[i], " is out of range for a tensor of ", numel, " elements");
    }
}

}  // namespace

// x (...), flat (n) -> shape (n elements): out.flat[i] = x.flat[flat[i]]
Tensor take(const Tensor& x, std::vector<std::size_t> flat, const Shape& shape, const char* op)
{
    const OpScope scope(op);
    check_offsets(op, flat, shape, x.numel());
    if (!x.is_floating_point()) [[unlikely]] return detail::take_any(x, flat, shape);
    return compute_as(x, [&]<class T>(Tag<T>) {
        ArrayOf<T> y(shape);
        const ValuesOf<T> v = x.values<T>();
        for (std::size_t i = 0; i < flat.size(); ++i) y.data()[i] = v[flat[i]];
        return from_op(std::move(y), {x}, op, [x, flat = std::move(flat)](GradOutput& grad_out) {
            // An offset may repeat (x[[0, 0]]): its element's gradient is the sum of both reads, so the
            // upstream values are added, never assigned. One thread, in order: deterministic.
            const T* g = grad_out.read<T>().data();
            if constexpr (std::is_same_v<T, float>) {
                Array& grad = x.grad_accumulator();   // into the gradient already there
                for (std::size_t i = 0; i < flat.size(); ++i) grad.data()[flat[i]] += g[i];
            } else {
                ArrayOf<T> grad = xt::zeros<T>(x.shape());
                for (std::size_t i = 0; i < flat.size(); ++i) grad.data()[flat[i]] += g[i];
                x.accumulate_grad(std::move(grad));
            }
        });
    });
}

namespace {

std::vector<std::size_t> row_major_strides(const Shape& s)
{
    std::vector<std::size_t> strides(s.size(), 1);
    for (std::size_t d = s.size(); d-- > 1;) strides[d - 1] = strides[d] * s[d];
    return strides;
}

// y of shape `out` with y[i] = x.flat[offset(i)], for i's multi-index in `out`: a gather whose gradient
// scatters back. offset(d, i_d) gives axis d's part of the flat offset.
template <class F>
Tensor gathered(const Tensor& x, const Shape& out, const char* op, F offset)
{
    // the offsets are as many as out's elements, which x need not bound (repeat): the storage allocator
    // is asked for them first, so that a size no memory holds is its MemoryError, not std::vector's
    // abort under ASan
    (void)empty(out, kInt64);
    const std::vector<std::size_t> strides = row_major_strides(out);
    std::vector<std::size_t> flat(shape_numel(out, op));
    for (std::size_t i = 0; i < flat.size(); ++i) {
        for (std::size_t d = 0; d < out.size(); ++d) flat[i] += offset(d, i / strides[d] % out[d]);
    }
    return take(x, std::move(flat), out, op);
}

// y of x's shape with y[i] = x[j], j_d = source(d, i_d) on every axis d
template <class F>
Tensor rearranged(const Tensor& x, const char* op, F source)
{
    const Shape s = x.shape();
    const std::vector<std::size_t> strides = row_major_strides(s);
    return gathered(x, s, op, [&](std::size_t d, std::size_t i) { return source(d, i) * strides[d]; });
}

}  // namespace

Tensor flip(const Tensor& x, const std::vector<std::int64_t>& dims)
{
    const OpScope scope("flip");
    const Shape s = x.shape();
    std::vector<bool> flipped(std::max<std::size_t>(s.size(), 1), false);
    for (std::int64_t d : dims) {
        const std::size_t axis = normalize_axis("flip", d, flipped.size());
        XGRAD_CHECK(!flipped[axis], "flip: dim ", axis, " appears multiple times in the list of dims");
        flipped[axis] = true;
    }
    return rearranged(x, "flip", [&](std::size_t d, std::size_t i) { return flipped[d] ? s[d] - 1 - i : i; });
}

Tensor roll(const Tensor& x, const std::vector<std::int64_t>& shifts, const std::vector<std::int64_t>& dims)
{
    const OpScope scope("roll");
    if (x.numel() == 0) return x.clone();   // nothing to move: no dim is checked, as torch's
    const auto wrapped = [](std::int64_t i, std::int64_t shift, std::int64_t n) {   // (i - shift) mod n, in [0, n)
        return static_cast<std::size_t>(((i - shift % n) % n + n) % n);
    };
    if (dims.empty()) {   // over the flattened x, in its shape
        XGRAD_CHECK(shifts.size() == 1, "roll: shifts and dimensions must align. shifts: ", shifts.size(), ", dims:0");
        const auto n = static_cast<std::int64_t>(x.numel());
        std::vector<std::size_t> flat(x.numel());
        for (std::int64_t i = 0; i < n; ++i) flat[static_cast<std::size_t>(i)] = wrapped(i, shifts[0], n);
        return take(x, std::move(flat), x.shape(), "roll");
    }
    XGRAD_CHECK(shifts.size() == dims.size(), "roll: shifts and dimensions must align. shifts: ", shifts.size(), ", dims:", dims.size());
    const Shape s = x.shape();
    std::vector<std::int64_t> by(std::max<std::size_t>(s.size(), 1), 0);
    for (std::size_t k = 0; k < dims.size(); ++k) by[normalize_axis("roll", dims[k], by.size())] += shifts[k];
    return rearranged(x, "roll", [&](std::size_t d, std::size_t i) {
        return wrapped(static_cast<std::int64_t>(i), by[d], static_cast<std::int64_t>(s[d]));
    });
}

Tensor repeat(const Tensor& x, const std::vector<std::int64_t>& repeats)
{
    const OpScope scope("repeat");
    const Shape s = x.shape();
    XGRAD_CHECK(repeats.size() >= s.size(), "repeat: Number of dimensions of repeat dims can not be smaller than number of ",
                "dimensions of tensor (", repeats.size(), " repeats for a ", s.size(), "-D tensor)");
    const std::size_t lead = repeats.size() - s.size();   // new leading axes, of size 1 before they repeat
    Shape in(lead, 1), out;
    in.insert(in.end(), s.begin(), s.end());
    for (std::size_t d = 0; d < repeats.size(); ++d) {
        XGRAD_CHECK(repeats[d] >= 0, "repeat: Trying to create tensor with negative dimension ", repeats[d], ": ", shape_str(repeats));
        out.push_back(in[d] * static_cast<std::size_t>(repeats[d]));
    }
    const std::vector<std::size_t> strides = row_major_strides(in);
    return gathered(x, out, "repeat", [&](std::size_t d, std::size_t i) { return i % in[d] * strides[d]; });
}

Tensor gather(const Tensor& x, std::int64_t dim, const Tensor& index)
{
    const OpScope scope("gather");
    const Shape s = x.shape(), is = index.shape();
    const std::size_t n = std::max<std::size_t>(s.size(), 1), axis = normalize_axis("gather", dim, n);
    XGRAD_CHECK(std::max<std::size_t>(is.size(), 1) == n, "gather: Index tensor must have the same number of dimensions as input tensor (",
                is.size(), " and ", s.size(), ")");
    for (std::size_t d = 0; d < is.size() && s.size() == is.size(); ++d) {
        XGRAD_CHECK(d == axis || is[d] <= s[d], "gather: Size does not match at dimension ", d, " expected index ", shape_str(is),
                    " to be smaller than self ", shape_str(s), " apart from dimension ", axis);
    }
    const IdArray ids = id_array(index, "gather");
    const std::vector<std::size_t> strides = row_major_strides(s), index_strides = row_major_strides(is);
    const auto size = static_cast<std::int64_t>(s.empty() ? 1 : s[axis]);
    std::vector<std::size_t> flat(ids.size());
    for (std::size_t i = 0; i < flat.size(); ++i) {
        const std::int64_t id = ids.data()[i];
        // a RuntimeError, as torch's (whose gather does not count negative ids from the end)
        XGRAD_CHECK(id >= 0 && id < size, "gather: index ", id, " is out of bounds for dimension ", axis, " with size ", size);
        for (std::size_t d = 0; d < is.size(); ++d) {
            const std::size_t at = d == axis ? static_cast<std::size_t>(id) : i / index_strides[d] % is[d];
            flat[i] += at * strides[d];
        }
    }
    return take(x, std::move(flat), is, "gather");
}

// x (...), flat (n), values broadcast to `shape` (n elements) -> x with out.flat[flat[i]] = values[i]
Tensor index_put(const Tensor& x, const std::vector<std::size_t>& flat, const Shape& shape, const Tensor& values)
{
    const OpScope scope("index_put");
    check_offsets("index_put", flat, shape, x.numel());
    if (values.dtype() != x.dtype()) return index_put(x, flat, shape, values.to(x.dtype()));   // written in x's dtype
    if (!x.is_floating_point()) [[unlikely]] return detail::index_put_any(x, flat, shape, values);
    return compute_as(x, [&]<class T>(Tag<T>) {
        const ArrayOf<T> v = broadcast_to(values.values<T>(), shape);
        ArrayOf<T> y = x.values<T>().array();
        for (std::size_t i = 0; i < flat.size(); ++i) y.data()[flat[i]] = v.data()[i];
        return from_op(std::move(y), {x, values}, "index_put", [x, values, flat, shape](GradOutput& grad_out) {
            const ArrayOf<T>& g = grad_out.read<T>();
            if (values.requires_grad()) {   // d out[flat[i]] / d values[i] = 1, summed where values broadcast
                ArrayOf<T> gv(shape);
                for (std::size_t i = 0; i < flat.size(); ++i) gv.data()[i] = g.data()[flat[i]];
                values.accumulate_grad(reduce_to_shape(std::move(gv), values.shape()));
            }
            if (x.requires_grad()) {        // the overwritten elements of x no longer reach the output
                ArrayOf<T> gx = g;
                for (std::size_t f : flat) gx.data()[f] = T(0);
                x.accumulate_grad(std::move(gx));
            }
        });
    });
}

// xs: n tensors of one shape (...) -> (..., n, ...) with the new axis at `axis`
Tensor stack(const std::vector<Tensor>& xs, int axis)
{
    const OpScope scope("stack");
    XGRAD_CHECK(!xs.empty(), "stack: expected a non-empty list of tensors");
    const Shape shape = xs[0].shape();
    const std::size_t at = normalize_axis("stack", axis, shape.size() + 1);
    std::vector<std::ptrdiff_t> expanded(shape.begin(), shape.end());
    expanded.insert(expanded.begin() + static_cast<std::ptrdiff_t>(at), 1);
    std::vector<Tensor> parts;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        XGRAD_CHECK(xs[i].shape() == shape, "stack: expects each tensor to be equal size, but got ", shape_str(shape),
                    " at entry 0 and ", shape_str(xs[i].shape()), " at entry ", i);
        parts.push_back(reshape(xs[i], expanded));
    }
    return concat(parts, static_cast<int>(at));
}


namespace {

// in (..., M, N) -> out, a copy with +0.0 outside the triangle; out may be in. Selects, not a product with
// a 0/1 mask: NaN or inf outside the triangle must give 0 (not NaN), and -x must not give -0.0, as torch's.
template <class T>
void keep_triangle(const T* in, T* out, std::size_t matrices, std::size_t M, std::size_t N, std::int64_t diagonal,
                   bool lower)
{
    for (std::size_t m = 0; m < matrices; ++m) {
        for (std::size_t i = 0; i < M; ++i) {
            const std::size_t row = (m * M + i) * N;
            for (std::size_t j = 0; j < N; ++j) {
                const auto d = static_cast<std::int64_t>(j) - static_cast<std::int64_t>(i);
                out[row + j] = (lower ? d <= diagonal : d >= diagonal) ? in[row + j] : T(0);
            }
        }
    }
}

Tensor triangle(const char* op, const Tensor& x, std::int64_t diagonal, bool lower)
{
    const OpScope scope(op);
    XGRAD_CHECK(x.dim() >= 2, op, ": input tensor must have at least 2 dimensions, got ", shape_str(x.shape()));
    const std::size_t M = x.size(-2), N = x.size(-1), matrices = M * N != 0 ? x.numel() / (M * N) : 0;
    if (!x.is_floating_point()) [[unlikely]] return detail::triangle_any(x, diagonal, lower);
    return compute_as(x, [&]<class T>(Tag<T>) {
        const ValuesOf<T> xv = x.values<T>();
        ArrayOf<T> y(xv.shape());
        keep_triangle(xv.data(), y.data(), matrices, M, N, diagonal, lower);
        return from_op(std::move(y), {x}, op, [x, matrices, M, N, diagonal, lower](GradOutput& grad_out) {
            ArrayOf<T> g = grad_out.take<T>();   // d/dx = 1 inside the triangle, 0 outside: the gradient's own triangle
            keep_triangle(g.data(), g.data(), matrices, M, N, diagonal, lower);
            x.accumulate_grad(std::move(g));
        });
    });
}

}  // namespace

Tensor tril(const Tensor& x, std::int64_t diagonal) { return triangle("tril", x, diagonal, true); }
Tensor triu(const Tensor& x, std::int64_t diagonal) { return triangle("triu", x, diagonal, false); }

// x (..., N) -> values (..., k) with their gradient, and indices (..., k) along the last axis
std::pair<Tensor, Tensor> topk(const Tensor& x, std::size_t k, bool largest)
{
    const OpScope scope("topk");
    XGRAD_CHECK(x.dim() >= 1, "topk: expected a tensor of at least 1 dimension, got a 0-d one");
    const std::size_t N = x.size(-1);
    XGRAD_CHECK(k <= N, "topk: selected k (", k, ") is larger than the last dimension of size ", N);
    Shape out_shape = x.shape();
    out_shape.back() = k;
    const std::size_t rows = N ? x.numel() / N : 0;
    std::vector<std::int64_t> indices(rows * k);
    std::vector<std::size_t> flat(rows * k);
    std::vector<std::size_t> order(N);
    XGRAD_CHECK(x.dtype() != kBool && x.dtype() != kFloat16 && x.dtype() != kBFloat16, "topk: not implemented for ",
                dtype_name(x.dtype()), " tensors");
    const Tensor dense = x.detach().contiguous();   // any computing dtype: the values are only compared
    dispatch(x.dtype(), [&]<class T>(Tag<T>) {
        if constexpr (std::is_arithmetic_v<T>) {
            const T* px = dense.data_ptr<T>();
            for (std::size_t r = 0; r < rows; ++r) {
                const T* row = px + r * N;
                std::iota(order.begin(), order.end(), 0);
                // ties keep the lower index first, and NaN counts as larger than any number, as in PyTorch
                auto before = [row, largest](std::size_t a, std::size_t b) {
                    const T va = row[a], vb = row[b];
                    const bool nan_a = va != va, nan_b = vb != vb;
                    if (nan_a != nan_b) return largest ? nan_a : nan_b;
                    if (!nan_a && va != vb) return largest ? va > vb : va < vb;
                    return a < b;
                };
                std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), before);
                for (std::size_t j = 0; j < k; ++j) {
                    indices[r * k + j] = static_cast<std::int64_t>(order[j]);
                    flat[r * k + j] = r * N + order[j];
                }
            }
        }
    });
    return {take(x, flat, out_shape), from_vector(indices, out_shape)};
}

// probs (N) or (B, N), non-negative weights -> ids (num_samples) or (B, num_samples), as torch.multinomial
Tensor multinomial(const Tensor& probs, std::size_t num_samples, bool replacement, Generator& rng)
{
    const OpScope scope("multinomial");
    XGRAD_CHECK(probs.dim() == 1 || probs.dim() == 2, "multinomial: prob_dist must be 1 or 2 dim, got ",
                shape_str(probs.shape()));
    const std::size_t N = probs.size(-1), rows = probs.dim() == 2 ? probs.size(0) : 1;
    XGRAD_CHECK(N > 0, "multinomial: the number of categories cannot be 0");
    XGRAD_CHECK(num_samples > 0, "multinomial: cannot sample n_sample <= 0 samples");
    XGRAD_CHECK(replacement || num_samples <= N, "multinomial: cannot sample n_sample > prob_dist.size(-1) samples ",
                "without replacement (", num_samples, " > ", N, ")");
    // the draws' storage first: a huge num_samples is the allocator's MemoryError before any work
    Tensor draws = empty(probs.dim() == 2 ? Shape{rows, num_samples} : Shape{num_samples}, kInt64);
    std::int64_t* out = const_cast<std::int64_t*>(draws.data_ptr<std::int64_t>());
    std::vector<double> weight(N);
    const Values pv = probs.values();
    for (std::size_t r = 0; r < rows; ++r) {
        const float* p = pv.data() + r * N;
        double total = 0.0;
        for (std::size_t j = 0; j < N; ++j) {
            XGRAD_CHECK(std::isfinite(p[j]) && p[j] >= 0.0f, "multinomial: probability tensor contains either inf, nan ",
                        "or element < 0 (", p[j], " at row ", r, ", column ", j, ")");
            total += weight[j] = p[j];
        }
        for (std::size_t s = 0; s < num_samples; ++s) {
            XGRAD_CHECK(total > 0.0, "multinomial: invalid multinomial distribution (sum of probabilities <= 0) at row ", r);
            // inverse CDF of one uniform draw; rounding past the top lands on the last category with weight
            double u = rng.uniform() * total;
            std::size_t pick = 0;
            for (std::size_t j = 0; j < N; ++j) {
                if (weight[j] <= 0.0) continue;
                pick = j;
                if (u < weight[j]) break;
                u -= weight[j];
            }
            out[r * num_samples + s] = static_cast<std::int64_t>(pick);
            if (!replacement) total -= weight[pick], weight[pick] = 0.0;   // each category at most once
        }
    }
    return draws;
}

// condition (...) bool, a (...), b (...) broadcast together -> a where condition, else b
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b)
{
    const OpScope scope("where");
    XGRAD_CHECK(condition.dtype() == kBool, "where: expected a condition of dtype bool, got ", dtype_name(condition.dtype()));
    const Shape shape = broadcast_shapes("where", broadcast_shapes("where", condition.shape(), a.shape()), b.shape());
    if (a.dtype() != b.dtype()) {   // torch's promotion: both in the dtype they meet in
        const Dtype common = result_type(a, b);
        return xgrad::where(condition, a.to(common), b.to(common));
    }
    if (!a.is_floating_point()) [[unlikely]] return detail::where_any(condition, a, b);   // integers and bools: no gradient
    return compute_as(a, [&]<class T>(Tag<T>) {
        const ArrayOf<T> keep = broadcast_to(condition.detach().to(a.dtype()).template values<T>(), shape);   // 1 or 0
        const ArrayOf<T> va = broadcast_to(a.values<T>(), shape), vb = broadcast_to(b.values<T>(), shape);
        ArrayOf<T> y(shape);
        for (std::size_t i = 0; i < y.size(); ++i) y.data()[i] = keep.data()[i] != T(0) ? va.data()[i] : vb.data()[i];
        return from_op(std::move(y), {a, b}, "where", [a, b, keep](GradOutput& grad_out) {
            const ArrayOf<T>& g = grad_out.read<T>();   // d/da = keep, d/db = 1 - keep, each summed to its shape
            if (a.requires_grad()) a.accumulate_grad(reduce_to_shape(ArrayOf<T>(g * keep), a.shape()));
            if (b.requires_grad()) b.accumulate_grad(reduce_to_shape(ArrayOf<T>(g * (T(1) - keep)), b.shape()));
        });
    });
}

}  // namespace xgrad
