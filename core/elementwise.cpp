// Element-wise ops. Binary ops broadcast as NumPy does; their backward sums the gradient back to
// each input's shape with reduce_to_shape. Unary maps run over core/kernels.h's vector blocks.
#include <array>
#include <cmath>
#include <string_view>
#include <vector>

#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/ops.h"
#include "core/random.h"

namespace xgrad {

namespace {

// The input's gradient f(g, operands...) of an element-wise op, written over the upstream buffer g
// (of type T: float, or double for float64). f takes its operands as `const auto&` and returns an
// xtensor expression over them (see map).
template <class T, class F, class... In>
ArrayOf<T> overwrite(GradOutput& grad_out, F f, const In&... operands)
{
    ArrayOf<T> g = grad_out.take<T>();
    map(g, f, g, operands...);
    return g;
}

// y = f(x) element by element, threaded and vectorised (see map); x is an ArrayOf<T> or ValuesOf<T>.
template <class In, class F>
auto map_of(const In& x, F f)
{
    ArrayOf<std::remove_cvref_t<decltype(*x.data())>> y(x.shape());
    map(y, f, x);
    return y;
}

// y = f(x) element by element by a scalar function, over the same blocks as map: for functions whose
// vectorised forms differ from the standard library's at the edges (std::pow).
template <class T, class F>
ArrayOf<T> map_scalar(const ValuesOf<T>& x, F f)
{
    ArrayOf<T> y(x.shape());
    const T* in = x.data();
    T* out = y.data();
    map_blocks(y.size(), [=](const Block& b) {
        for (std::size_t i = b.begin; i < b.begin + b.size; ++i) out[i] = f(in[i]);
    });
    return y;
}

// f(a, b) broadcast to `out`, written over the buffer of an operand that expires here and has the
// output's shape (a temporary, as in tok(ids) + pos(t)), or else into a fresh array. For add and sub,
// whose backward reads neither operand's values.
template <class T, class F>
ArrayOf<T> apply_reusing_expiring(Tensor& a, Tensor& b, const Shape& out, F f)
{
    const bool into_a = a.expiring() && a.shape() == out;
    const bool into_b = !into_a && b.expiring() && b.shape() == out;
    if (!into_a && !into_b) return broadcast_apply(a.values<T>(), b.values<T>(), out, f);
    ArrayOf<T> y = into_a ? a.donate_data<T>() : b.donate_data<T>();
    if (into_a) {
        broadcast_apply_into(y, y, b.values<T>(), f);
    } else {
        broadcast_apply_into(y, a.values<T>(), y, f);
    }
    return y;
}

}  // namespace

// Each op below is written once for float (float32) and double (float64): compute_as picks the type of
// its input, and a binary op given two dtypes first converts both to the one torch's promotion gives.

// ---- binary, broadcasting: a (...), b (...) -> broadcast(a, b) ------------------------------------------

Tensor add(Tensor a, Tensor b)
{
    const OpScope scope("add");
    if (a.dtype() != b.dtype()) [[unlikely]] return with_promoted(a, b, [](const Tensor& a, const Tensor& b) { return add(a, b); });
    if (!a.is_floating_point()) [[unlikely]] return detail::integral_binary("add", a, b);   // no gradient: exact
    const Shape out = broadcast_shapes("add", a.shape(), b.shape());
    return compute_as(a, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = apply_reusing_expiring<T>(a, b, out, [](T u, T v) { return u + v; });
        return from_op(std::move(y), {a, b}, "add", [a, b](GradOutput& grad_out) {
            if (b.requires_grad()) b.accumulate_grad(reduce_to_shape(grad_out.read<T>(), b.shape()));   // d(a + b)/db = 1
            grad_out.pass_to(a);                                                                       // d(a + b)/da = 1
        });
    });
}

Tensor sub(Tensor a, Tensor b)
{
    const OpScope scope("sub");
    XGRAD_CHECK(a.dtype() != kBool && b.dtype() != kBool, "sub: subtraction, the `-` operator, with a bool tensor is not ",
                "supported; to invert a mask use `~` or logical_not(), to compare two use `^` or logical_xor()");
    if (a.dtype() != b.dtype()) [[unlikely]] return with_promoted(a, b, [](const Tensor& a, const Tensor& b) { return sub(a, b); });
    if (!a.is_floating_point()) [[unlikely]] return detail::integral_binary("sub", a, b);   // no gradient: exact
    const Shape out = broadcast_shapes("sub", a.shape(), b.shape());
    return compute_as(a, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = apply_reusing_expiring<T>(a, b, out, [](T u, T v) { return u - v; });
        return from_op(std::move(y), {a, b}, "sub", [a, b](GradOutput& grad_out) {
            if (b.requires_grad()) b.accumulate_grad(reduce_to_shape(ArrayOf<T>(-grad_out.read<T>()), b.shape()));   // -1
            grad_out.pass_to(a);                                                                                  // 1
        });
    });
}

Tensor mul(const Tensor& a, const Tensor& b)
{
    const OpScope scope("mul");
    if (a.dtype() != b.dtype()) [[unlikely]] return with_promoted(a, b, [](const Tensor& a, const Tensor& b) { return mul(a, b); });
    if (!a.is_floating_point()) [[unlikely]] return detail::integral_binary("mul", a, b);   // no gradient: exact
    const Shape out = broadcast_shapes("mul", a.shape(), b.shape());
    return compute_as(a, [&]<class T>(Tag<T>) {
        auto times = [](T u, T v) { return u * v; };
        ArrayOf<T> y = broadcast_apply(a.values<T>(), b.values<T>(), out, times);
        return from_op(std::move(y), {a, b}, "mul", [a, b, out, times](GradOutput& grad_out) {
            const ArrayOf<T>& g = grad_out.read<T>();
            if (a.requires_grad()) a.accumulate_grad(reduce_to_shape(broadcast_apply(g, b.values<T>(), out, times), a.shape()));  // b
            if (b.requires_grad()) b.accumulate_grad(reduce_to_shape(broadcast_apply(g, a.values<T>(), out, times), b.shape()));  // a
        });
    });
}

Tensor div(const Tensor& a, const Tensor& b)
{
    const OpScope scope("div");
    if (a.dtype() != b.dtype()) [[unlikely]] return with_promoted(a, b, [](const Tensor& a, const Tensor& b) { return div(a, b); });
    if (!a.is_floating_point()) [[unlikely]] return div(a.to(default_dtype()), b.to(default_dtype()));   // true division
    const Shape out = broadcast_shapes("div", a.shape(), b.shape());
    return compute_as(a, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = broadcast_apply(a.values<T>(), b.values<T>(), out, [](T u, T v) { return u / v; });
        return from_op(std::move(y), {a, b}, "div", [a, b, out](GradOutput& grad_out) {
            const ArrayOf<T>& g = grad_out.read<T>();
            if (a.requires_grad()) {                                      // d(a/b)/da = 1/b
                ArrayOf<T> ga = broadcast_apply(g, b.values<T>(), out, [](T g, T v) { return g / v; });
                a.accumulate_grad(reduce_to_shape(std::move(ga), a.shape()));
            }
            if (b.requires_grad()) {                                      // d(a/b)/db = -a/b^2 (a, not y: torch's saves)
                ArrayOf<T> ab = broadcast_apply(a.values<T>(), b.values<T>(), out, [](T u, T v) { return -u / (v * v); });
                broadcast_apply_into(ab, g, ab, [](T g, T d) { return g * d; });
                b.accumulate_grad(reduce_to_shape(std::move(ab), b.shape()));
            }
        });
    });
}

namespace {

Tensor extremum(const Tensor& a, const Tensor& b, bool larger)
{
    const char* op = larger ? "maximum" : "minimum";
    if (a.dtype() != b.dtype()) [[unlikely]] return with_promoted(a, b, larger ? &maximum : &minimum);
    if (!a.is_floating_point()) [[unlikely]] return xgrad::where(larger ? ge(a, b) : le(a, b), a, b);   // no gradient
    const Shape out = broadcast_shapes(op, a.shape(), b.shape());
    return compute_as(a, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = broadcast_apply(a.values<T>(), b.values<T>(), out, [larger](T u, T v) {
            if (std::isnan(u) || std::isnan(v)) return u + v;   // NaN
            return larger ? (u >= v ? u : v) : (u <= v ? u : v);   // a tie of 0 and -0 gives a, as torch's same-shape kernels
        });
        return from_op(std::move(y), {a, b}, op, [a, b, out, larger](GradOutput& grad_out) {
            // an input's share: none where it lost, half at a tie, all elsewhere (NaN included), as torch's
            const auto share = [larger](T mine, T theirs) { return mine == theirs ? T(0.5) : T(larger ? !(mine < theirs) : !(mine > theirs)); };
            const ArrayOf<T>& g = grad_out.read<T>();
            const auto pass = [&](const Tensor& x, const Tensor& other) {
                if (!x.requires_grad()) return;
                ArrayOf<T> gx = broadcast_apply(x.values<T>(), other.values<T>(), out, share);
                broadcast_apply_into(gx, g, gx, [](T g, T s) { return g * s; });
                x.accumulate_grad(reduce_to_shape(std::move(gx), x.shape()));
            };
            pass(a, b);
            pass(b, a);
        });
    });
}

}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b)
{
    const OpScope scope("maximum");
    return extremum(a, b, true);
}

Tensor minimum(const Tensor& a, const Tensor& b)
{
    const OpScope scope("minimum");
    return extremum(a, b, false);
}

// a^b by std::pow, as torch.pow of two tensors: (-2)^3 = -8, 0^0 = 1. The derivatives are torch's, zeros included:
//   d/da = b a^(b-1), taken as 0 where b = 0 (so 0^0 has gradient 0, not 0 * 0^-1 = NaN)
//   d/db = a^b log(a), taken as 0 where a = 0 and b >= 0 (0^b is flat there, not 0 * -inf = NaN)
Tensor pow(const Tensor& a, const Tensor& b)
{
    const OpScope scope("pow");
    if (a.dtype() != b.dtype()) [[unlikely]] return with_promoted(a, b, [](const Tensor& a, const Tensor& b) { return pow(a, b); });
    if (!a.is_floating_point()) [[unlikely]] return detail::integral_binary("pow", a, b);
    const Shape out = broadcast_shapes("pow", a.shape(), b.shape());
    return compute_as(a, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = broadcast_apply(a.values<T>(), b.values<T>(), out, [](T u, T v) { return std::pow(u, v); });
        return from_op(std::move(y), {a, b}, "pow", [a, b, out](GradOutput& grad_out) {
            const ArrayOf<T>& g = grad_out.read<T>();
            if (a.requires_grad()) {
                ArrayOf<T> slope = broadcast_apply(a.values<T>(), b.values<T>(), out,
                                                   [](T u, T v) { return v * std::pow(u, v - T(1)); });   // b a^(b-1)
                const ArrayOf<T> b_out = broadcast_apply(a.values<T>(), b.values<T>(), out, [](T, T v) { return v; });
                for (std::size_t i = 0; i < slope.size(); ++i) {
                    slope.data()[i] = b_out.data()[i] == T(0) ? T(0) : g.data()[i] * slope.data()[i];
                }
                a.accumulate_grad(reduce_to_shape(std::move(slope), a.shape()));
            }
            if (b.requires_grad()) {
                ArrayOf<T> gb = broadcast_apply(a.values<T>(), b.values<T>(), out, [](T u, T v) {
                    return u == T(0) && v >= T(0) ? T(0) : std::pow(u, v) * std::log(u);           // a^b log a
                });
                broadcast_apply_into(gb, g, gb, [](T g, T d) { return g * d; });
                b.accumulate_grad(reduce_to_shape(std::move(gb), b.shape()));
            }
        });
    });
}

// a // b: no gradient (torch defines none), values as torch's div_floor
Tensor floor_divide(const Tensor& a, const Tensor& b)
{
    const OpScope scope("floor_divide");
    if (a.dtype() != b.dtype()) [[unlikely]] return with_promoted(a, b, [](const Tensor& a, const Tensor& b) { return floor_divide(a, b); });
    if (!a.is_floating_point()) [[unlikely]] return detail::integral_floor_divide(a, b);
    const Shape out = broadcast_shapes("floor_divide", a.shape(), b.shape());
    return compute_as(a, [&]<class T>(Tag<T>) {
        return Tensor(broadcast_apply(a.detach().values<T>(), b.detach().values<T>(), out, [](T u, T v) { return floor_div(u, v); }));
    });
}

// a % b, with b's sign: d/da = 1, d/db = -(a // b), as torch's
Tensor remainder(const Tensor& a, const Tensor& b)
{
    const OpScope scope("remainder");
    if (a.dtype() != b.dtype()) [[unlikely]] return with_promoted(a, b, [](const Tensor& a, const Tensor& b) { return remainder(a, b); });
    if (!a.is_floating_point()) [[unlikely]] return detail::integral_remainder(a, b);
    const Shape out = broadcast_shapes("remainder", a.shape(), b.shape());
    return compute_as(a, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = broadcast_apply(a.values<T>(), b.values<T>(), out, [](T u, T v) { return floor_mod(u, v); });
        return from_op(std::move(y), {a, b}, "remainder", [a, b, out](GradOutput& grad_out) {
            if (b.requires_grad()) {
                ArrayOf<T> gb = broadcast_apply(a.values<T>(), b.values<T>(), out, [](T u, T v) { return -floor_div(u, v); });
                broadcast_apply_into(gb, grad_out.read<T>(), gb, [](T g, T d) { return g * d; });
                b.accumulate_grad(reduce_to_shape(std::move(gb), b.shape()));
            }
            if (a.requires_grad()) a.accumulate_grad(reduce_to_shape(grad_out.read<T>(), a.shape()));
        });
    });
}

// ---- with a scalar: x (...) -> (...) ----------------------------------------------------------------------
// The number is taken in the tensor's type, as torch's: a float32 tensor computes with float(s).

Tensor add(const Tensor& x, double number)
{
    const OpScope scope("add");
    if (!x.is_floating_point()) [[unlikely]] return add(x.to(default_dtype()), number);   // a float number
    return compute_as(x, [&]<class T>(Tag<T>) {
        const T s = static_cast<T>(number);
        return from_op(map_of(x.values<T>(), [s](const auto& v) { return v + s; }), {x}, "add_scalar", [x](GradOutput& grad_out) {
            grad_out.pass_to(x);   // d(x + s)/dx = 1
        });
    });
}

Tensor mul(const Tensor& x, double number)
{
    const OpScope scope("mul");
    if (!x.is_floating_point()) [[unlikely]] return mul(x.to(default_dtype()), number);   // a float number
    return compute_as(x, [&]<class T>(Tag<T>) {
        const T s = static_cast<T>(number);
        return from_op(map_of(x.values<T>(), [s](const auto& v) { return v * s; }), {x}, "mul_scalar", [x, s](GradOutput& grad_out) {
            x.accumulate_grad(overwrite<T>(grad_out, [s](const auto& g) { return g * s; }));   // d(x s)/dx = s
        });
    });
}

Tensor rsub(double number, const Tensor& x)
{
    const OpScope scope("rsub");
    if (!x.is_floating_point()) [[unlikely]] return rsub(number, x.to(default_dtype()));   // a float number
    return compute_as(x, [&]<class T>(Tag<T>) {
        const T s = static_cast<T>(number);
        return from_op(map_of(x.values<T>(), [s](const auto& v) { return s - v; }), {x}, "rsub_scalar", [x](GradOutput& grad_out) {
            x.accumulate_grad(overwrite<T>(grad_out, [](const auto& g) { return -g; }));   // d(s - x)/dx = -1
        });
    });
}

Tensor rdiv(double number, const Tensor& x)
{
    const OpScope scope("rdiv");
    if (!x.is_floating_point()) [[unlikely]] return rdiv(number, x.to(default_dtype()));   // a float number
    return compute_as(x, [&]<class T>(Tag<T>) {
        const T s = static_cast<T>(number);
        // as torch's: s * reciprocal(x), the reciprocal kept for the backward, where no in-place write reaches it
        ArrayOf<T> r = map_of(x.values<T>(), [](const auto& v) { return T(1) / v; });
        ArrayOf<T> y = map_of(r, [s](const auto& r) { return s * r; });
        if (!detail::records({&x, 1})) return from_op(std::move(y), {x}, "rdiv_scalar", [](GradOutput&) {});
        return from_op(std::move(y), {x}, "rdiv_scalar", [x, s, r = std::move(r)](GradOutput& grad_out) {
            // d(s/x)/dx = -s/x^2 = -s r^2
            x.accumulate_grad(overwrite<T>(grad_out, [s](const auto& g, const auto& r) { return -s * g * r * r; }, r));
        });
    });
}

// x (...) -> (...): x^p, as torch.pow(x, p) (see power in core/kernels.h)
Tensor pow(const Tensor& x, double p)
{
    const OpScope scope("pow");
    if (!x.is_floating_point()) [[unlikely]] return pow(x.to(default_dtype()), p);   // a float number
    return compute_as(x, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = map_scalar(x.values<T>(), [p](T v) { return power(v, p); });
        return from_op(std::move(y), {x}, "pow", [x, p](GradOutput& grad_out) {
            if (p == 0.0) {                                        // x^0 = 1: gradient 0, even at x = 0 (torch's)
                x.accumulate_grad(ArrayOf<T>(xt::zeros<T>(x.shape())));
                return;
            }
            ArrayOf<T> g = grad_out.take<T>();                     // d x^p = p x^(p-1)
            const ValuesOf<T> xv = x.values<T>();
            const T* xd = xv.data();
            T* gd = g.data();
            const T pt = static_cast<T>(p);
            map_blocks(g.size(), [=](const Block& b) {
                for (std::size_t i = b.begin; i < b.begin + b.size; ++i) gd[i] *= pt * power(xd[i], p - 1.0);
            });
            x.accumulate_grad(std::move(g));
        });
    });
}

// ---- functions: x (...) -> (...) ------------------------------------------------------------------------

Tensor neg(const Tensor& x)
{
    const OpScope scope("neg");
    if (!x.is_floating_point()) [[unlikely]] return detail::integral_unary("neg", x);
    return compute_as(x, [&]<class T>(Tag<T>) {
        return from_op(map_of(x.values<T>(), [](const auto& v) { return -v; }), {x}, "neg", [x](GradOutput& grad_out) {
            x.accumulate_grad(overwrite<T>(grad_out, [](const auto& g) { return -g; }));   // d(-x)/dx = -1
        });
    });
}

Tensor abs(const Tensor& x)
{
    const OpScope scope("abs");
    if (!x.is_floating_point()) [[unlikely]] return detail::integral_unary("abs", x);
    return compute_as(x, [&]<class T>(Tag<T>) {
        // xsimd's abs clears the sign bit: abs(-0.0) = 0.0 and NaN stays NaN, as torch's
        return from_op(map_of(x.values<T>(), [](const auto& v) { return xt::abs(v); }), {x}, "abs", [x](GradOutput& grad_out) {
            // d|x| = sign(x), with sign(0) = sign(NaN) = 0 (torch's sgn): no gradient at the kink. A product, not a
            // select, so that an infinite g at x = 0 gives NaN, as torch's g * sgn(x). Selects that GCC vectorises.
            ArrayOf<T> g = grad_out.take<T>();
            const ValuesOf<T> xv = x.values<T>();
            const T* xd = xv.data();
            T* gd = g.data();
            map_blocks(g.size(), [=](const Block& b) {
                for (std::size_t i = b.begin; i < b.begin + b.size; ++i) {
                    gd[i] *= xd[i] > T(0) ? T(1) : (xd[i] < T(0) ? T(-1) : T(0));
                }
            });
            x.accumulate_grad(std::move(g));
        });
    });
}

Tensor exp(const Tensor& x)
{
    const OpScope scope("exp");
    if (!x.is_floating_point()) [[unlikely]] return exp(x.to(default_dtype()));   // an integer input: as torch's
    return compute_as(x, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = map_of(x.values<T>(), [](const auto& x) { return xt::exp(x); });
        return from_op(std::move(y), {x}, "exp", [x](GradOutput& grad_out, const ValuesOf<T>& y) {
            x.accumulate_grad(overwrite<T>(grad_out, [](const auto& g, const auto& y) { return g * y; }, y));   // d e^x = e^x
        });
    });
}

Tensor log(const Tensor& x)
{
    const OpScope scope("log");
    if (!x.is_floating_point()) [[unlikely]] return log(x.to(default_dtype()));   // an integer input: as torch's
    return compute_as(x, [&]<class T>(Tag<T>) {
        return from_op(map_of(x.values<T>(), [](const auto& v) { return xt::log(v); }), {x}, "log", [x](GradOutput& grad_out) {
            x.accumulate_grad(overwrite<T>(grad_out, [](const auto& g, const auto& x) { return g / x; }, x.values<T>()));   // 1/x
        });
    });
}

Tensor sqrt(const Tensor& x)
{
    const OpScope scope("sqrt");
    if (!x.is_floating_point()) [[unlikely]] return sqrt(x.to(default_dtype()));   // an integer input: as torch's
    return compute_as(x, [&]<class T>(Tag<T>) {
        return from_op(map_of(x.values<T>(), [](const auto& v) { return xt::sqrt(v); }), {x}, "sqrt",
                       [x](GradOutput& grad_out, const ValuesOf<T>& y) {
            // d sqrt(x) = 1 / (2 sqrt(x))
            x.accumulate_grad(overwrite<T>(grad_out, [](const auto& g, const auto& y) { return g * T(0.5) / y; }, y));
        });
    });
}

Tensor tanh(const Tensor& x)
{
    const OpScope scope("tanh");
    if (!x.is_floating_point()) [[unlikely]] return tanh(x.to(default_dtype()));   // an integer input: as torch's
    return compute_as(x, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = map_of(x.values<T>(), [](const auto& x) { return xt::tanh(x); });
        return from_op(std::move(y), {x}, "tanh", [x](GradOutput& grad_out, const ValuesOf<T>& y) {
            // d tanh = 1 - tanh^2
            x.accumulate_grad(overwrite<T>(grad_out, [](const auto& g, const auto& y) { return g * (T(1) - y * y); }, y));
        });
    });
}

Tensor sin(const Tensor& x)
{
    const OpScope scope("sin");
    if (!x.is_floating_point()) [[unlikely]] return sin(x.to(default_dtype()));   // an integer input: as torch's
    return compute_as(x, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = map_of(x.values<T>(), [](const auto& x) { return xt::sin(x); });
        return from_op(std::move(y), {x}, "sin", [x](GradOutput& grad_out) {
            x.accumulate_grad(overwrite<T>(grad_out, [](const auto& g, const auto& x) { return g * xt::cos(x); }, x.values<T>()));
        });
    });
}

Tensor cos(const Tensor& x)
{
    const OpScope scope("cos");
    if (!x.is_floating_point()) [[unlikely]] return cos(x.to(default_dtype()));   // an integer input: as torch's
    return compute_as(x, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = map_of(x.values<T>(), [](const auto& x) { return xt::cos(x); });
        return from_op(std::move(y), {x}, "cos", [x](GradOutput& grad_out) {
            x.accumulate_grad(overwrite<T>(grad_out, [](const auto& g, const auto& x) { return -g * xt::sin(x); }, x.values<T>()));
        });
    });
}

Tensor sigmoid(const Tensor& x)
{
    const OpScope scope("sigmoid");
    if (!x.is_floating_point()) [[unlikely]] return sigmoid(x.to(default_dtype()));   // an integer input: as torch's
    return compute_as(x, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = map_of(x.values<T>(), [](const auto& x) { return T(1) / (T(1) + xt::exp(-x)); });
        return from_op(std::move(y), {x}, "sigmoid", [x](GradOutput& grad_out, const ValuesOf<T>& y) {
            // d sigmoid = s (1 - s)
            x.accumulate_grad(overwrite<T>(grad_out, [](const auto& g, const auto& y) { return g * y * (T(1) - y); }, y));
        });
    });
}

Tensor relu(const Tensor& x)
{
    const OpScope scope("relu");
    if (!x.is_floating_point()) [[unlikely]] return detail::integral_unary("relu", x);
    return compute_as(x, [&]<class T>(Tag<T>) {
        // 0 where x < 0, else x itself: NaN stays NaN and -0.0 stays -0.0, as torch's (max(x, 0) would give 0 for
        // both). A plain loop of selects, which GCC vectorises; xt::where with a scalar runs element by element.
        const ValuesOf<T> xv = x.values<T>();
        const T* in = xv.data();
        ArrayOf<T> y(xv.shape());
        T* out = y.data();
        map_blocks(y.size(), [=](const Block& b) {
            for (std::size_t i = b.begin; i < b.begin + b.size; ++i) out[i] = in[i] < T(0) ? T(0) : in[i];
        });
        return from_op(std::move(y), {x}, "relu", [x](GradOutput& grad_out, const ValuesOf<T>& y) {
            // d relu = 0 where y <= 0, else 1 (torch's threshold_backward on the saved output: NaN passes g)
            x.accumulate_grad(overwrite<T>(grad_out, [](const auto& g, const auto& y) { return xt::where(y <= T(0), T(0), g); }, y));
        });
    });
}

// min(max(x, min), max), as torch 1.13's clamp: NaN in x stays NaN, and min > max gives max. With both
// bounds given, a NaN bound makes every element NaN (torch's vectorised minimum and maximum propagate it);
// a lone NaN bound leaves x as it is (its clamp_min and clamp_max kernels do not), as do the selects below,
// since v < NaN is false. The gradient passes where min <= x <= max: nowhere for a NaN x or bound.
Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max)
{
    const OpScope scope("clamp");
    XGRAD_CHECK(min || max, "clamp: at least one of 'min' or 'max' must not be None");
    if (!x.is_floating_point()) [[unlikely]] return detail::integral_clamp(x, min, max);
    return compute_as(x, [&]<class T>(Tag<T>) {
        const T lo = min ? static_cast<T>(*min) : -INFINITY, hi = max ? static_cast<T>(*max) : INFINITY;
        const bool nan_bound = min && max && (std::isnan(lo) || std::isnan(hi));
        const ValuesOf<T> xv = x.values<T>();
        const T* in = xv.data();
        ArrayOf<T> y(xv.shape());
        T* out = y.data();
        map_blocks(y.size(), [=](const Block& b) {   // plain selects, which GCC vectorises
            for (std::size_t i = b.begin; i < b.begin + b.size; ++i) {
                const T v = in[i] < lo ? lo : in[i];
                out[i] = nan_bound ? T(NAN) : (v > hi ? hi : v);
            }
        });
        return from_op(std::move(y), {x}, "clamp", [x, lo, hi](GradOutput& grad_out) {
            x.accumulate_grad(overwrite<T>(grad_out, [lo, hi](const auto& g, const auto& x) {
                return xt::where(x >= lo && x <= hi, g, T(0));   // 1 inside the bounds, 0 where clamped
            }, x.values<T>()));
        });
    });
}

namespace {
constexpr double inv_sqrt2 = 0.7071067811865476, inv_sqrt_2pi = 0.3989422804014327;
constexpr double k = 0.7978845608028654, c = 0.044715;   // gelu tanh's sqrt(2 / pi), and its cubic's weight

// erf: in float by erf_approx, in loops that vectorise; in double by std::erf
template <class T>
T erf_of(T x)
{
    if constexpr (std::is_same_v<T, float>) {
        return erf_approx(x);
    } else {
        return std::erf(x);
    }
}
}  // namespace

// gelu(x) = x Phi(x), Phi the standard normal CDF: PyTorch's default, approximate = "none".
// approximate = "tanh" (GPT-2's): x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
// Neither backward keeps an array from the forward: recomputing erf or tanh costs less than holding
// one more activation-sized array through the whole step.
Tensor gelu(const Tensor& x, std::string_view approximate)
{
    const OpScope scope("gelu");
    XGRAD_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be \"none\" or \"tanh\", got \"",
                approximate, "\"");
    return compute_as(x, [&]<class T>(Tag<T>) {
        const T ks = static_cast<T>(k), cs = static_cast<T>(c), inv_sqrt_2pi_t = static_cast<T>(inv_sqrt_2pi);
        if (approximate == "none") {
            // x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2, in plain loops that vectorise (erf_approx in float)
            const ValuesOf<T> xv = x.values<T>();
            ArrayOf<T> y(xv.shape());
            const T* xd = xv.data();
            T* yd = y.data();
            map_blocks(y.size(), [=](const Block& b) {
                const T* __restrict in = xd + b.begin;
                T* __restrict out = yd + b.begin;
                for (std::size_t i = 0; i < b.size; ++i) out[i] = T(0.5) * in[i] * (T(1) + erf_of(in[i] * T(inv_sqrt2)));
            });
            return from_op(std::move(y), {x}, "gelu", [x, inv_sqrt_2pi_t](GradOutput& grad_out) {
                // d/dx = Phi(x) + x phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
                ArrayOf<T> g = grad_out.take<T>();
                T* gd = g.data();
                const ValuesOf<T> xv = x.values<T>();
                const T* xd = xv.data();
                map_blocks(g.size(), [&](const Block& b) {
                    std::array<T, map_block> cdf_block;
                    const T* __restrict in = xd + b.begin;
                    for (std::size_t i = 0; i < b.size; ++i) cdf_block[i] = T(0.5) * (T(1) + erf_of(in[i] * T(inv_sqrt2)));
                    auto v = b.at(xd);
                    auto grad = b.at(gd);
                    auto cdf = Block{0, b.size}.at(cdf_block.data());
                    xt::noalias(grad) = grad * (cdf + v * xt::exp(T(-0.5) * v * v) * inv_sqrt_2pi_t);
                });
                x.accumulate_grad(std::move(g));
            });
        }
        ArrayOf<T> y = map_of(x.values<T>(), [=](const auto& x) { return T(0.5) * x * (T(1) + xt::tanh(ks * (x + cs * x * x * x))); });
        return from_op(std::move(y), {x}, "gelu", [x, ks, cs](GradOutput& grad_out) {
            // d/dx = (1 + t)/2 + x/2 (1 - t^2) du/dx,  t = tanh(u),  du/dx = k (1 + 3c x^2)
            ArrayOf<T> g = grad_out.take<T>();
            T* gd = g.data();
            const ValuesOf<T> xv = x.values<T>();
            const T* xd = xv.data();
            map_blocks(g.size(), [&](const Block& b) {
                std::array<T, map_block> t_block;                   // t once per element, not at each use
                auto v = b.at(xd);
                auto grad = b.at(gd);
                auto t = Block{0, b.size}.at(t_block.data());
                xt::noalias(t) = xt::tanh(ks * (v + cs * v * v * v));
                xt::noalias(grad) = grad * (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * ks * (T(1) + T(3) * cs * v * v));
            });
            x.accumulate_grad(std::move(g));
        });
    });
}

// x (...) -> (...). The mask is drawn by counter_uniform from one seed of the default generator, and
// recomputed in the backward rather than kept: element i is kept when counter_uniform(seed, i) >= p.
Tensor dropout(const Tensor& x, float p, bool training)
{
    const OpScope scope("dropout");
    XGRAD_CHECK(p >= 0.0f && p < 1.0f, "dropout: p must be in [0, 1), got ", p);
    if (p == 0.0f || !training) return x;
    const std::uint64_t seed = default_generator().bits();
    return compute_as(x, [&]<class T>(Tag<T>) {
        const T keep_scale = T(1) / (T(1) - static_cast<T>(p));
        const ValuesOf<T> xv = x.values<T>();
        const T* in = xv.data();
        ArrayOf<T> y(xv.shape());
        T* out = y.data();
        parallel_rows(y.size(), 1, [=](std::size_t begin, std::size_t end) {
            for (std::size_t i = begin; i < end; ++i) out[i] = counter_uniform(seed, i) >= p ? in[i] * keep_scale : T(0);
        });
        return from_op(std::move(y), {x}, "dropout", [x, p, seed, keep_scale](GradOutput& grad_out) {
            ArrayOf<T> g = grad_out.take<T>();
            T* gd = g.data();
            parallel_rows(g.size(), 1, [=](std::size_t begin, std::size_t end) {   // d/dx = Z / (1 - p)
                for (std::size_t i = begin; i < end; ++i) gd[i] *= counter_uniform(seed, i) >= p ? keep_scale : T(0);
            });
            x.accumulate_grad(std::move(g));
        });
    });
}

// -- softplus: the worked example of docs/writing-an-op.md, which quotes it from here --
// x (...) -> (...): y = log(1 + exp(beta x)) / beta, or y = x where beta x > threshold (exp would
// overflow there, and the two agree), as torch.nn.functional.softplus. In float32 and float64.
Tensor softplus(const Tensor& x, float beta, float threshold)
{
    const OpScope scope("softplus");
    XGRAD_CHECK(beta > 0.0f, "softplus: beta must be positive, got ", beta);
    return compute_as(x, [&]<class T>(Tag<T>) {      // T: float, or double for a float64 x
        const ValuesOf<T> xv = x.values<T>();        // row-major: a copy only if x is a strided view
        const T* in = xv.data();
        ArrayOf<T> y(xv.shape());
        T* out = y.data();
        parallel_rows(y.size(), 1, [=](std::size_t begin, std::size_t end) {   // each thread its own elements
            for (std::size_t i = begin; i < end; ++i) {
                const T bx = beta * in[i];
                out[i] = bx > threshold ? in[i] : std::log1p(std::exp(bx)) / beta;
            }
        });
        return from_op(std::move(y), {x}, "softplus", [x, beta, threshold](GradOutput& grad_out) {
            ArrayOf<T> g = grad_out.take<T>();       // overwritten in place with the input's gradient
            T* gd = g.data();
            const ValuesOf<T> xv = x.values<T>();
            const T* in = xv.data();
            parallel_rows(g.size(), 1, [=](std::size_t begin, std::size_t end) {
                for (std::size_t i = begin; i < end; ++i) {
                    const T bx = beta * in[i];
                    gd[i] *= bx > threshold ? T(1) : T(1) / (T(1) + std::exp(-bx));   // d/dx = sigmoid(beta x)
                }
            });
            x.accumulate_grad(std::move(g));
        });
    });
}
// -- end of the worked example --

}  // namespace xgrad
