// The ops that carry no gradient, on every dtype that computes (float16 and bfloat16 are storage only):
// comparisons; integer and bool arithmetic with torch's wrap-around and floor rounding; floor division;
// bitwise and logical ops; the sums and extremes of integers; and the ops that only move elements
// (concat, take, index_put, where, masked_fill, tril) for the dtypes without autograd. The float ops
// hand their integral inputs here (detail::, core/autograd.h); nothing here is recorded.
#include <cmath>
#include <numeric>

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/ops.h"

namespace xgrad {

namespace {

// The elements of a tensor made here and seen by no one yet, to write.
template <class T>
T* elements(const Tensor& fresh)
{
    return const_cast<T*>(fresh.data_ptr<T>());
}

// t in dtype d, broadcast to `shape` and laid out row-major
Tensor dense(const Tensor& t, Dtype d, const Shape& shape)
{
    return t.detach().to(d).expand(std::vector<std::ptrdiff_t>(shape.begin(), shape.end())).contiguous();
}

void refuse_storage_only(const char* op, Dtype d)
{
    XGRAD_CHECK(d != kFloat16 && d != kBFloat16, op, ": not implemented for '", dtype_name(d), "': float16 and bfloat16 are ",
                "storage types in xgrad (convert with .to(kFloat32) to compute)");
}

// f(Tag<T>) for the computing dtypes: the integers and bool, and float32/float64 when `floats`
template <bool floats, class F>
void dispatch_computed(Dtype d, F&& f)
{
    dispatch(d, [&]<class T>(Tag<T>) {
        if constexpr (std::is_integral_v<T> || (floats && std::is_floating_point_v<T>)) f(Tag<T>{});
        else fail("internal: no kernel for ", dtype_name(d));
    });
}

// out[i] = f(u[i], v[i]) over a and b broadcast, both converted to `common`; out is of `common`, or bool
template <bool floats, class F>
Tensor pairwise(const char* op, const Tensor& a, const Tensor& b, Dtype common, bool to_bool, F f)
{
    refuse_storage_only(op, common);
    const Shape shape = broadcast_shapes(op, a.shape(), b.shape());
    const Tensor x = dense(a, common, shape), y = dense(b, common, shape);
    Tensor out = empty(shape, to_bool ? kBool : common);
    const std::size_t n = out.numel();
    dispatch_computed<floats>(common, [&]<class T>(Tag<T>) {
        const T* u = x.data_ptr<T>();
        const T* v = y.data_ptr<T>();
        if (to_bool) {
            bool* o = elements<bool>(out);
            for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<bool>(f(u[i], v[i]));
        } else {
            T* o = elements<T>(out);
            for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<T>(f(u[i], v[i]));
        }
    });
    return out;
}

// out[i] = f(x[i]) in x's dtype (or bool)
template <bool floats, class F>
Tensor elementwise(const char* op, const Tensor& x, bool to_bool, F f)
{
    refuse_storage_only(op, x.dtype());
    const Tensor u = x.detach().contiguous();
    Tensor out = empty(x.shape(), to_bool ? kBool : x.dtype());
    const std::size_t n = out.numel();
    dispatch_computed<floats>(x.dtype(), [&]<class T>(Tag<T>) {
        const T* in = u.data_ptr<T>();
        if (to_bool) {
            bool* o = elements<bool>(out);
            for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<bool>(f(in[i]));
        } else {
            T* o = elements<T>(out);
            for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<T>(f(in[i]));
        }
    });
    return out;
}

// Integer arithmetic wraps around (two's complement) as torch's; computed in uint64 (signed overflow is
// undefined in C++, and so is int's, which narrower types promote to) and cut back to T's bits. bool + bool
// is or, bool * bool is and, as torch's.
template <class T, class F>
T wrapping(T u, T v, F f)
{
    if constexpr (std::is_same_v<T, bool> || std::is_floating_point_v<T>) return static_cast<T>(f(u, v));
    else return static_cast<T>(f(static_cast<std::uint64_t>(u), static_cast<std::uint64_t>(v)));
}

// base^exponent for integers by squaring, wrapping around; a negative exponent gives what torch's does
// (1 for base 1, +-1 for base -1, else 0)
template <class T>
T integer_power(T base, T exponent)
{
    if constexpr (std::is_same_v<T, bool>) return base || !exponent;
    else {
        if constexpr (std::is_signed_v<T>) {
            if (exponent < 0) return base == 1 ? T(1) : base == -1 ? (exponent % 2 == 0 ? T(1) : T(-1)) : T(0);
        }
        T result = 1;
        for (auto e = exponent; e > 0; e /= 2) {
            if (e % 2 == 1) result = wrapping(result, base, [](auto x, auto y) { return x * y; });
            base = wrapping(base, base, [](auto x, auto y) { return x * y; });
        }
        return result;
    }
}

void refuse_bool(const char* op, const Tensor& x, const char* instead)
{
    XGRAD_CHECK(x.dtype() != kBool, op, ": not supported for a bool tensor", instead);
}

// the dtype of two integral or bool tensors' bitwise or logical op, or torch's error for a float one
Dtype bitwise_type(const char* op, const Tensor& a, const Tensor& b)
{
    const Dtype common = result_type(a, b);
    XGRAD_CHECK(!is_floating_point(common), op, ": only integral and bool tensors have bits, got ", dtype_name(a.dtype()),
                " and ", dtype_name(b.dtype()), " (\"", op, "_cpu\" not implemented for '", dtype_name(common), "')");
    return common;
}

// x with the axes to reduce moved last and laid out row-major, as rows of `count` elements
struct Rows {
    Tensor values;
    std::size_t count = 1;
    Shape kept, dropped;
};
Rows reduction_rows(const char* op, const Tensor& x, std::vector<int> axes, Dtype d)
{
    const Shape shape = x.shape();
    std::vector<bool> reduce(shape.size(), axes.empty());
    for (int axis : axes) {
        const std::size_t a = normalize_axis(op, axis, shape.size());
        XGRAD_CHECK(!reduce[a], op, ": dim ", a, " appears multiple times in the list of dims");
        reduce[a] = true;
    }
    Rows r;
    std::vector<int> order;
    for (std::size_t a = 0; a < shape.size(); ++a) {
        r.kept.push_back(reduce[a] ? 1 : shape[a]);
        if (!reduce[a]) r.dropped.push_back(shape[a]), order.push_back(static_cast<int>(a));
    }
    for (std::size_t a = 0; a < shape.size(); ++a) {
        if (reduce[a]) r.count *= shape[a], order.push_back(static_cast<int>(a));
    }
    r.values = (shape.empty() ? x.detach() : permute(x.detach(), order)).to(d).contiguous();
    return r;
}

}  // namespace

// ---- comparisons ------------------------------------------------------------------------------------------------
namespace {

// a op b for tensors of any dtypes, both in the dtype they promote to, as torch's comparisons
Tensor compare_any(const char* name, const Tensor& a, const Tensor& b, Comparison op)
{
    const OpScope scope(name);
    return pairwise<true>(name, a, b, result_type(a, b), true, [op](auto u, auto v) {
        switch (op) {
        case Comparison::eq: return u == v;
        case Comparison::ne: return u != v;
        case Comparison::lt: return u < v;
        case Comparison::le: return u <= v;
        case Comparison::gt: return u > v;
        case Comparison::ge: return u >= v;
        }
        return false;
    });
}

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare_any("eq", a, b, Comparison::eq); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare_any("ne", a, b, Comparison::ne); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare_any("lt", a, b, Comparison::lt); }
Tensor le(const Tensor& a, const Tensor& b) { return compare_any("le", a, b, Comparison::le); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare_any("gt", a, b, Comparison::gt); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare_any("ge", a, b, Comparison::ge); }

Tensor number_tensor(std::int64_t s) { return from_vector<std::int64_t>({s}, {}); }

// ---- integer arithmetic: what add, sub, mul, pow and neg do with integral tensors -------------------------------
Tensor detail::integral_binary(const char* op, const Tensor& a, const Tensor& b)
{
    const std::string_view name = op;
    const Dtype d = a.dtype();
    const auto plus = [](auto x, auto y) { return x + y; };
    const auto minus = [](auto x, auto y) { return x - y; };
    const auto times = [](auto x, auto y) { return x * y; };
    if (name == "add") return pairwise<false>(op, a, b, d, false, [plus](auto u, auto v) { return wrapping(u, v, plus); });
    if (name == "mul") return pairwise<false>(op, a, b, d, false, [times](auto u, auto v) { return wrapping(u, v, times); });
    if (name == "pow") {
        XGRAD_CHECK(d != kBool, "pow: not implemented for two bool tensors (\"pow\" not implemented for 'Bool')");
        return pairwise<false>(op, a, b, d, false, [](auto u, auto v) { return integer_power(u, v); });
    }
    XGRAD_CHECK(name == "sub", "internal: integral_binary(", op, ")");
    return pairwise<false>(op, a, b, d, false, [minus](auto u, auto v) { return wrapping(u, v, minus); });
}

Tensor detail::integral_unary(const char* op, const Tensor& x)
{
    const std::string_view name = op;
    if (name == "neg") {
        refuse_bool("neg", x, "; the `-` operator on a mask is not supported: to invert it, use `~` or logical_not()");
        return elementwise<false>(op, x, false, [](auto v) { return wrapping(decltype(v)(0), v, [](auto a, auto b) { return a - b; }); });
    }
    if (name == "relu") {
        refuse_bool("relu", x, " (\"clamp_min_cpu\" not implemented for 'Bool')");
        return elementwise<false>(op, x, false, [](auto v) { return v < decltype(v)(0) ? decltype(v)(0) : v; });
    }
    refuse_bool(op, x, " (\"abs_cpu\" not implemented for 'Bool')");
    return elementwise<false>(op, x, false, [](auto v) {   // abs; abs(INT_MIN) wraps to INT_MIN, as torch's
        using T = decltype(v);
        if constexpr (std::is_signed_v<T>) return v < T(0) ? wrapping(T(0), v, [](auto a, auto b) { return a - b; }) : v;
        else return v;
    });
}

// clamp of integers: whole bounds keep the dtype (a bool tensor clamps as int64, as torch's with int
// bounds); a bound with a fraction computes in the default float dtype, as torch's promotion. A bound
// the dtype cannot hold is torch's error; an unsigned dtype takes a negative bound down to -max,
// wrapped as two's complement (uint8's -1 is 255), as c10's checked conversion does.
Tensor detail::integral_clamp(const Tensor& x, std::optional<double> min, std::optional<double> max)
{
    const auto whole = [](std::optional<double> b) { return !b || std::floor(*b) == *b; };
    if (!whole(min) || !whole(max)) return clamp(x.to(default_dtype()), min, max);
    const Tensor v = x.dtype() == kBool ? x.to(kInt64) : x;
    Tensor out;
    dispatch_computed<false>(v.dtype(), [&]<class T>(Tag<T>) {
        constexpr double top = double(std::numeric_limits<T>::max());
        constexpr double bottom = std::is_signed_v<T> ? double(std::numeric_limits<T>::lowest()) : -top;
        for (std::optional<double> b : {min, max}) {
            XGRAD_CHECK(!b || (*b >= bottom && *b <= top), "clamp: value cannot be converted to type ", dtype_name(v.dtype()),
                        " without overflow (the bound ", *b, ")");
        }
        const auto as_t = [](double b) { return static_cast<T>(static_cast<std::int64_t>(b)); };   // wraps a negative into unsigned
        const T lo = min ? as_t(*min) : std::numeric_limits<T>::lowest();
        const T hi = max ? as_t(*max) : std::numeric_limits<T>::max();
        out = elementwise<false>("clamp", v, false, [lo, hi](auto e) {   // min(max(e, lo), hi): lo > hi gives hi, as torch's
            const auto above = e < lo ? lo : e;
            return above > hi ? hi : above;
        });
    });
    return out;
}

Tensor detail::integral_floor_divide(const Tensor& a, const Tensor& b)
{
    XGRAD_CHECK(a.dtype() != kBool, "floor_divide: not implemented for two bool tensors (\"div_floor_cpu\" not implemented ",
                "for 'Bool')");
    return pairwise<false>("floor_divide", a, b, a.dtype(), false, [](auto u, auto v) { return floor_div(u, v); });
}

Tensor detail::integral_remainder(const Tensor& a, const Tensor& b)
{
    XGRAD_CHECK(a.dtype() != kBool, "remainder: not implemented for two bool tensors (\"remainder_cpu\" not implemented ",
                "for 'Bool')");
    return pairwise<false>("remainder", a, b, a.dtype(), false, [](auto u, auto v) { return floor_mod(u, v); });
}

// ---- bitwise and logical ----------------------------------------------------------------------------------------
Tensor bitwise_and(const Tensor& a, const Tensor& b)
{
    const OpScope scope("bitwise_and");
    return pairwise<false>("bitwise_and", a, b, bitwise_type("bitwise_and", a, b), false, [](auto u, auto v) { return u & v; });
}
Tensor bitwise_or(const Tensor& a, const Tensor& b)
{
    const OpScope scope("bitwise_or");
    return pairwise<false>("bitwise_or", a, b, bitwise_type("bitwise_or", a, b), false, [](auto u, auto v) { return u | v; });
}
Tensor bitwise_xor(const Tensor& a, const Tensor& b)
{
    const OpScope scope("bitwise_xor");
    return pairwise<false>("bitwise_xor", a, b, bitwise_type("bitwise_xor", a, b), false, [](auto u, auto v) { return u ^ v; });
}
Tensor bitwise_not(const Tensor& x)
{
    const OpScope scope("bitwise_not");
    XGRAD_CHECK(!x.is_floating_point(), "bitwise_not: ~ is only implemented on integer and bool tensors, got ", dtype_name(x.dtype()));
    return elementwise<false>("bitwise_not", x, false, [](auto v) {
        if constexpr (std::is_same_v<decltype(v), bool>) return !v;
        else return static_cast<decltype(v)>(~v);
    });
}
Tensor logical_not(const Tensor& x)
{
    const OpScope scope("logical_not");
    return elementwise<true>("logical_not", x, true, [](auto v) { return v == decltype(v)(0); });
}
Tensor logical_and(const Tensor& a, const Tensor& b)
{
    const OpScope scope("logical_and");
    return pairwise<true>("logical_and", a, b, result_type(a, b), true, [](auto u, auto v) { return u != decltype(u)(0) && v != decltype(v)(0); });
}
Tensor logical_or(const Tensor& a, const Tensor& b)
{
    const OpScope scope("logical_or");
    return pairwise<true>("logical_or", a, b, result_type(a, b), true, [](auto u, auto v) { return u != decltype(u)(0) || v != decltype(v)(0); });
}
Tensor logical_xor(const Tensor& a, const Tensor& b)
{
    const OpScope scope("logical_xor");
    return pairwise<true>("logical_xor", a, b, result_type(a, b), true, [](auto u, auto v) { return (u != decltype(u)(0)) != (v != decltype(v)(0)); });
}

// ---- reductions of integers -------------------------------------------------------------------------------------
// the sum of integers or bools, as int64 (wrapping around), as torch's
Tensor detail::integral_sum(const Tensor& x, std::vector<int> axes, bool keepdim)
{
    Rows r = reduction_rows("sum", x, std::move(axes), kInt64);
    Tensor out = empty(keepdim ? r.kept : r.dropped, kInt64);
    const std::int64_t* in = r.values.data_ptr<std::int64_t>();
    std::int64_t* o = elements<std::int64_t>(out);
    for (std::size_t row = 0; row < out.numel(); ++row) {
        std::int64_t total = 0;
        for (std::size_t i = 0; i < r.count; ++i) total = wrapping(total, in[row * r.count + i], [](auto a, auto b) { return a + b; });
        o[row] = total;
    }
    return out;
}

namespace {

// the index of the first largest (or smallest) element of each row; NaN counts as beyond every number
std::vector<std::size_t> row_extremes(const char* op, const Rows& r, std::size_t rows, Dtype d, bool largest)
{
    XGRAD_CHECK(r.count > 0, op, ": expected a reduction dim with non-zero size (the input has no elements to choose from)");
    std::vector<std::size_t> best(rows, 0);
    dispatch_computed<true>(d, [&]<class T>(Tag<T>) {
        const T* in = r.values.data_ptr<T>();
        for (std::size_t row = 0; row < rows; ++row) {
            const T* v = in + row * r.count;
            std::size_t b = 0;
            for (std::size_t k = 1; k < r.count; ++k) {
                if constexpr (std::is_floating_point_v<T>) {
                    if (std::isnan(v[b])) break;
                    if (std::isnan(v[k])) { b = k; break; }
                }
                if (largest ? v[k] > v[b] : v[k] < v[b]) b = k;
            }
            best[row] = row * r.count + b;
        }
    });
    return best;
}

}  // namespace

Tensor argmax(const Tensor& x, std::optional<int> dim, bool keepdim) { return detail::arg_extreme("argmax", x, dim, keepdim, true); }
Tensor argmin(const Tensor& x, std::optional<int> dim, bool keepdim) { return detail::arg_extreme("argmin", x, dim, keepdim, false); }

Tensor detail::arg_extreme(const char* op, const Tensor& x, std::optional<int> dim, bool keepdim, bool largest)
{
    const OpScope scope(op);
    XGRAD_CHECK(x.dtype() != kBool, op, ": not implemented for bool tensors (\"", op, "_cpu\" not implemented for 'Bool')");
    refuse_storage_only(op, x.dtype());
    const Tensor flat = dim ? x : x.reshape({-1});
    const Rows r = reduction_rows(op, flat, {dim.value_or(0)}, x.dtype());
    Shape shape = keepdim ? r.kept : r.dropped;
    if (!dim && keepdim) shape = Shape(x.dim(), 1);
    Tensor out = empty(shape, kInt64);
    const std::vector<std::size_t> best = row_extremes(op, r, out.numel(), x.dtype(), largest);
    std::int64_t* o = elements<std::int64_t>(out);
    for (std::size_t row = 0; row < best.size(); ++row) o[row] = static_cast<std::int64_t>(best[row] - row * r.count);
    return out;
}

// the largest (smallest) of an integral x along `axis`, or of all of it
Tensor detail::integral_extreme(const char* op, const Tensor& x, std::optional<int> axis, bool keepdim, bool largest)
{
    const Rows r = reduction_rows(op, axis ? x : x.reshape({-1}), {axis.value_or(0)}, x.dtype());
    const Shape shape = !axis ? Shape{} : keepdim ? r.kept : r.dropped;
    const std::vector<std::size_t> best = row_extremes(op, r, shape_numel(shape), x.dtype(), largest);
    return take(r.values, best, shape, op);
}

// ---- the ops that move elements, for the dtypes without autograd ------------------------------------------------
Tensor detail::take_any(const Tensor& x, const std::vector<std::size_t>& flat, const Shape& shape)
{
    const Tensor in = x.detach().contiguous();
    Tensor out = empty(shape, x.dtype());
    dispatch(x.dtype(), [&]<class T>(Tag<T>) {
        const T* v = in.data_ptr<T>();
        T* o = elements<T>(out);
        for (std::size_t i = 0; i < flat.size(); ++i) o[i] = v[flat[i]];
    });
    return out;
}

Tensor detail::index_put_any(const Tensor& x, const std::vector<std::size_t>& flat, const Shape& shape, const Tensor& values)
{
    const Tensor v = dense(values, x.dtype(), shape);
    Tensor out = x.detach().clone();
    dispatch(x.dtype(), [&]<class T>(Tag<T>) {
        const T* in = v.data_ptr<T>();
        T* o = elements<T>(out);
        for (std::size_t i = 0; i < flat.size(); ++i) o[flat[i]] = in[i];
    });
    return out;
}

Tensor detail::concat_any(const std::vector<Tensor>& xs, std::size_t axis, const Shape& shape)
{
    Tensor out = empty(shape, xs[0].dtype());
    const std::size_t outer = shape_numel(Shape(shape.begin(), shape.begin() + static_cast<std::ptrdiff_t>(axis)));
    const std::size_t inner = shape_numel(Shape(shape.begin() + static_cast<std::ptrdiff_t>(axis) + 1, shape.end()));
    dispatch(xs[0].dtype(), [&]<class T>(Tag<T>) {
        T* o = elements<T>(out);
        std::size_t at = 0;
        for (const Tensor& x : xs) {
            if (x.numel() == 0) continue;
            const Tensor in = x.detach().contiguous();
            const std::size_t run = x.size(static_cast<std::ptrdiff_t>(axis)) * inner;
            for (std::size_t r = 0; r < outer; ++r) std::copy_n(in.data_ptr<T>() + r * run, run, o + r * shape[axis] * inner + at);
            at += run;
        }
    });
    return out;
}

Tensor detail::where_any(const Tensor& condition, const Tensor& a, const Tensor& b)
{
    const Shape shape = broadcast_shapes("where", broadcast_shapes("where", condition.shape(), a.shape()), b.shape());
    const Tensor c = dense(condition, kBool, shape), x = dense(a, a.dtype(), shape), y = dense(b, a.dtype(), shape);
    Tensor out = empty(shape, a.dtype());
    dispatch(a.dtype(), [&]<class T>(Tag<T>) {
        const bool* keep = c.data_ptr<bool>();
        const T* u = x.data_ptr<T>();
        const T* v = y.data_ptr<T>();
        T* o = elements<T>(out);
        for (std::size_t i = 0; i < out.numel(); ++i) o[i] = keep[i] ? u[i] : v[i];
    });
    return out;
}

Tensor detail::masked_fill_any(const Tensor& x, const Tensor& mask, double value)
{
    return where_any(mask.dtype() == kBool ? mask : ne(mask, zeros({}, mask.dtype())), full({}, value, x.dtype()), x);
}

Tensor detail::triangle_any(const Tensor& x, std::int64_t diagonal, bool lower)
{
    const std::size_t M = x.size(-2), N = x.size(-1);
    Tensor keep = empty({M, N}, kBool);
    bool* k = elements<bool>(keep);
    for (std::size_t i = 0; i < M; ++i) {
        for (std::size_t j = 0; j < N; ++j) {
            const auto d = static_cast<std::int64_t>(j) - static_cast<std::int64_t>(i);
            k[i * N + j] = lower ? d <= diagonal : d >= diagonal;
        }
    }
    return where_any(keep, x, zeros({}, x.dtype()));
}

}  // namespace xgrad
