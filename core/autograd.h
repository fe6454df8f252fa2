// What an op author needs, and nothing else: from_op, the upstream gradient's three verbs, the
// broadcasting helpers, XGRAD_CHECK and parallel_rows. docs/writing-an-op.md walks through one op.
//
//     // x (...) -> (...): y = x^2
//     Tensor square(const Tensor& x)
//     {
//         const Values v = x.values();               // row-major: a copy only if x is a strided view
//         Array y(v.shape());
//         for (std::size_t i = 0; i < y.size(); ++i) y.data()[i] = v[i] * v[i];
//         return from_op(std::move(y), {x}, "square", [x](GradOutput& grad_out) {
//             Array g = grad_out.take();              // overwritten in place with the input's gradient
//             const Values v = x.values();
//             for (std::size_t i = 0; i < g.size(); ++i) g.data()[i] *= 2.0f * v[i];   // d x^2 = 2 x
//             x.accumulate_grad(std::move(g));
//         });
//     }
#pragma once

#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "core/axes.h"
#include "core/check.h"
#include "core/parallel.h"
#include "core/strided.h"
#include "core/tensor.h"

namespace xgrad {

// The gradient of an op's output, as the backward walk hands it to the op's backward, once. A
// backward does one of three things with it, each named for what it does:
//   read()        look at the values (to compute an input's gradient from them);
//   take()        get the buffer to overwrite in place with an input's gradient: the walk's own
//                 buffer, or a copy when it is the caller's upstream of backward(upstream), which is
//                 never written;
//   pass_to(x)    hand it on to input x unchanged, summed over the axes x was broadcast along.
// take() and pass_to() use it up: any verb after them throws an internal error, so a backward whose
// lines were swapped (add's) fails loudly instead of reading a moved-from array.
class GradOutput {
public:
    // the walk's own buffer (float32 or float64), or the caller's upstream of backward(upstream)
    explicit GradOutput(Array&& owned) : owned_(std::move(owned)), values_(&std::get<Array>(owned_)), owns_(true) {}
    explicit GradOutput(Array64&& owned)
        : owned_(std::move(owned)), values_(&std::get<Array64>(owned_)), dtype_(Dtype::Double), owns_(true)
    {
    }
    explicit GradOutput(const Array* borrowed) : values_(borrowed) {}
    explicit GradOutput(const Array64* borrowed) : values_(borrowed), dtype_(Dtype::Double) {}
    GradOutput(const GradOutput&) = delete;
    GradOutput& operator=(const GradOutput&) = delete;

    // T is the gradient's type: float (float32 ops, the default) or double (float64)
    template <class T = float>
    const ArrayOf<T>& read() const
    {
        check_unused("read", dtype_of<T>());
        return *static_cast<const ArrayOf<T>*>(values_);
    }
    template <class T = float>
    ArrayOf<T> take()
    {
        check_unused("take", dtype_of<T>());
        const auto* values = static_cast<const ArrayOf<T>*>(values_);
        values_ = nullptr;
        return owns_ ? std::move(std::get<ArrayOf<T>>(owned_)) : ValuesOf<T>(*values).array();
    }
    void pass_to(const Tensor& input);
    Dtype dtype() const { return dtype_; }

private:
    void check_unused(const char* verb, Dtype as) const;

    std::variant<Array, Array64> owned_;
    const void* values_;   // into owned_, or the caller's upstream; nullptr once used up
    Dtype dtype_ = Dtype::Float;
    bool owns_ = false;
};

// f(Tag<T>{}) with T the gradient's type, float (float32) or double (float64): a backward written once
// for both, as the views' are.
template <class F>
void for_grad_type(const GradOutput& grad_out, F&& f)
{
    if (grad_out.dtype() == Dtype::Double) {
        f(Tag<double>{});
    } else {
        f(Tag<float>{});
    }
}

// f(Tag<T>{}) with T the type an op computes x in: double for a float64 tensor, float for a float32
// one; any other dtype is refused, naming the op that runs. An op written once for both.
[[noreturn]] void refuse_non_floating(const Tensor& x);
template <class F>
decltype(auto) compute_as(const Tensor& x, F&& f)
{
    const Dtype d = x.dtype();
    if (d == Dtype::Double) return f(Tag<double>{});
    if (d != Dtype::Float) [[unlikely]] refuse_non_floating(x);
    return f(Tag<float>{});
}

// op(a', b') for a and b of two dtypes, converted (recorded, so gradients reach a and b) to the dtype
// torch's promotion gives them (result_type: float32 with float64 is float64, an integer tensor with
// a float one is the float's, a 0-D tensor does not widen a tensor with dimensions of its category).
Tensor with_promoted(const Tensor& a, const Tensor& b, Tensor (*op)(const Tensor&, const Tensor&));

// Names the op a user called while it runs, for the errors raised below it that cannot know it: an
// accessor reading an undefined input ("matmul: an input tensor is undefined"), an allocation that
// fails ("... for the output of 'matmul'"). Each op's first line. The outermost op wins: linear, not
// the matmul inside it. The backward walk sets it to the op whose backward runs.
class OpScope {
public:
    explicit OpScope(const char* op, bool backward = false) noexcept : set_(current_ == nullptr)
    {
        if (set_) current_ = op, backward_ = backward;
    }
    ~OpScope()
    {
        if (set_) current_ = nullptr;
    }
    OpScope(const OpScope&) = delete;
    OpScope& operator=(const OpScope&) = delete;
    static const char* current() noexcept { return current_; }   // nullptr outside any op
    static bool in_backward() noexcept { return backward_; }

private:
    bool set_;
    static inline thread_local const char* current_ = nullptr;
    static inline thread_local bool backward_ = false;
};

// Inside a backward: the version counter's error if x was written since the op used it, as when its
// values are read. For an input torch's backward saves though it needs only its shape (an
// embedding's table, layer_norm's bias), so that xgrad refuses exactly where torch does.
void check_saved(const Tensor& x);

// An op's backward, as the walk stores it: the upstream gradient and the op's output y (its values, if
// the backward reads them; else empty): float32 values, or float64 ones for an op that computed in double.
using OutputValues = std::variant<Values, ValuesOf<double>>;
using BackwardFn = std::function<void(GradOutput& grad_out, const OutputValues& y)>;

namespace detail {
bool records(std::span<const Tensor> inputs);   // grad mode is on and an input requires grad
// y is moved once, into the node: an Array is 240 bytes of shape, strides and the buffer's handle.
// T is float or double.
template <class T>
Tensor untracked_op(ArrayOf<T>&& y, std::span<const Tensor> inputs, const char* op);   // y alone, no history
template <class T>
Tensor record_op(ArrayOf<T>&& y, std::vector<Tensor> inputs, const char* op, BackwardFn backward, bool reads_output);

// The backward as the walk stores it. Taken by reference down to here and moved once into the
// std::function: a capture of a const reference (`[ids]` of a `const IdArray& ids`) is a const member,
// which every move of the lambda copies.
template <class Backward>
BackwardFn as_backward_fn(Backward&& backward)
{
    using B = std::remove_cvref_t<Backward>;
    if constexpr (std::is_invocable_v<B&, GradOutput&>) {
        return [backward = std::move(backward)](GradOutput& grad_out, const OutputValues&) mutable { backward(grad_out); };
    } else if constexpr (std::is_invocable_v<B&, GradOutput&, const Values&>) {
        return [backward = std::move(backward)](GradOutput& grad_out, const OutputValues& y) mutable {
            backward(grad_out, std::get<Values>(y));
        };
    } else {
        static_assert(std::is_invocable_v<B&, GradOutput&, const ValuesOf<double>&>,
                      "a backward takes (GradOutput& grad_out) or (GradOutput& grad_out, const ValuesOf<T>& y)");
        return [backward = std::move(backward)](GradOutput& grad_out, const OutputValues& y) mutable {
            backward(grad_out, std::get<ValuesOf<double>>(y));
        };
    }
}

template <class T, class Backward>
Tensor recorded(ArrayOf<T>&& y, std::vector<Tensor> inputs, const char* op, Backward&& backward)
{
    constexpr bool reads_output = !std::is_invocable_v<std::remove_cvref_t<Backward>&, GradOutput&>;
    return record_op(std::move(y), std::move(inputs), op, as_backward_fn(std::move(backward)), reads_output);
}

template <class T, class Inputs, class Backward>
Tensor from_op(ArrayOf<T>&& y, const Inputs& inputs, const char* op, Backward& backward)
{
    // most calls record nothing (no_grad, or no input requires grad): they make no vector of inputs
    if (!records(inputs)) return untracked_op(std::move(y), inputs, op);
    return recorded(std::move(y), std::vector<Tensor>(inputs.begin(), inputs.end()), op, std::move(backward));
}

// The integral (and bool) side of the ops in core/ops.h, which carries no gradient (core/nograd.cpp):
// the float ops hand an integral input here, already promoted to one dtype.
Tensor integral_binary(const char* op, const Tensor& a, const Tensor& b);   // "add", "sub", "mul", "pow"
Tensor integral_unary(const char* op, const Tensor& x);                     // "neg", "abs", "relu"
Tensor integral_clamp(const Tensor& x, std::optional<double> min, std::optional<double> max);
Tensor integral_floor_divide(const Tensor& a, const Tensor& b);
Tensor integral_remainder(const Tensor& a, const Tensor& b);
Tensor integral_sum(const Tensor& x, std::vector<int> axes, bool keepdim);   // int64, as torch's
Tensor integral_extreme(const char* op, const Tensor& x, std::optional<int> axis, bool keepdim, bool largest);
Tensor arg_extreme(const char* op, const Tensor& x, std::optional<int> dim, bool keepdim, bool largest);
// the ops that only move elements, for every dtype without autograd
Tensor take_any(const Tensor& x, const std::vector<std::size_t>& flat, const Shape& shape);
Tensor index_put_any(const Tensor& x, const std::vector<std::size_t>& flat, const Shape& shape, const Tensor& values);
Tensor concat_any(const std::vector<Tensor>& xs, std::size_t axis, const Shape& shape);
Tensor where_any(const Tensor& condition, const Tensor& a, const Tensor& b);
Tensor masked_fill_any(const Tensor& x, const Tensor& mask, double value);
Tensor triangle_any(const Tensor& x, std::int64_t diagonal, bool lower);

}  // namespace detail

// The result y of an op over `inputs`: an Array (float32) or an Array64 (float64). When grad mode is on
// and an input requires grad, it records the inputs and the backward, which accumulates into each input
// with accumulate_grad or pass_to. The backward captures its inputs, never its output (a reference
// cycle), and says by its signature alone whether it reads the output:
//     [..](GradOutput& grad_out)                   does not: y's buffer may become a later op's output
//     [..](GradOutput& grad_out, const Values& y)  does: y is kept for it (and checked for in-place writes)
//                                                  (const ValuesOf<double>& y for a float64 output)
template <class Backward>
Tensor from_op(Array&& y, std::initializer_list<Tensor> inputs, const char* op, Backward backward)
{
    return detail::from_op(std::move(y), std::span<const Tensor>(inputs.begin(), inputs.size()), op, backward);
}
template <class Y, class Backward>
    requires std::is_same_v<Y, Array64>   // an Array64 itself: a float expression converts to Array only
Tensor from_op(Y&& y, std::initializer_list<Tensor> inputs, const char* op, Backward backward)
{
    return detail::from_op(std::move(y), std::span<const Tensor>(inputs.begin(), inputs.size()), op, backward);
}

// the same, for a number of inputs known only at run time (concat, an optional bias)
template <class Backward>
Tensor from_op(Array&& y, std::vector<Tensor> inputs, const char* op, Backward backward)
{
    if (!detail::records(inputs)) return detail::untracked_op(std::move(y), inputs, op);
    return detail::recorded(std::move(y), std::move(inputs), op, std::move(backward));
}
template <class Y, class Backward>
    requires std::is_same_v<Y, Array64>
Tensor from_op(Y&& y, std::vector<Tensor> inputs, const char* op, Backward backward)
{
    if (!detail::records(inputs)) return detail::untracked_op(std::move(y), inputs, op);
    return detail::recorded(std::move(y), std::move(inputs), op, std::move(backward));
}

}  // namespace xgrad
