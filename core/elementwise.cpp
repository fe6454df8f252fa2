// Element-wise ops. Binary ops broadcast as NumPy does; their backward sums the gradient back to
// each input's shape with reduce_to_shape.
#include <array>
#include <cmath>
#include <numbers>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xoperation.hpp>

#include "core/axes.h"
#include "core/check.h"
#include "core/ops.h"

namespace xgrad {

namespace {

// The backward of an element-wise op: grad_out taken and overwritten, element by element, with the
// input's gradient grad(g), and handed on without a new array (a copy only of a caller's upstream).
template <class F>
Array in_place(Grad& grad_out, F&& grad)
{
    Array g = grad_out.take();
    xt::noalias(g) = grad(g);
    return g;
}

// Hands grad_out on to an input of a broadcasting op: unchanged, or summed over the broadcast axes.
void pass_reduced(Grad& grad_out, const Tensor& input)
{
    const Shape shape = input.shape();
    if (std::equal(shape.begin(), shape.end(), grad_out->shape().begin(), grad_out->shape().end())) {
        input.accumulate_grad(grad_out);
    } else {
        input.accumulate_grad(reduce_to_shape(*grad_out, shape));
    }
}

// f(a, b) broadcast to `out`, written over the buffer of an operand that expires here and has the
// output's shape (a temporary, as in tok(ids) + pos(t)), or else into a fresh array. For add and sub,
// whose backward reads neither operand's values.
template <class F>
Array apply_reusing_expiring(Tensor& a, Tensor& b, const Shape& out, F f)
{
    const bool into_a = a.expiring() && a.shape() == out;
    const bool into_b = !into_a && b.expiring() && b.shape() == out;
    if (!into_a && !into_b) return broadcast_apply(a.data(), b.data(), out, f);
    Array y = into_a ? a.lend_data() : b.lend_data();
    broadcast_apply_into(y, into_a ? y : a.data(), into_b ? y : b.data(), f);
    return y;
}

}  // namespace

// ---- binary, broadcasting ------------------------------------------------------------------------------

Tensor add(Tensor a, Tensor b)
{
    const Shape out = broadcast_shapes("add", a.shape(), b.shape());
    Array y = apply_reusing_expiring(a, b, out, [](float u, float v) { return u + v; });
    return Tensor::from_op(std::move(y), {a, b}, "add", [a, b](Grad& grad_out, const Array&) {
        if (b.requires_grad()) b.accumulate_grad(reduce_to_shape(*grad_out, b.shape()));   // d(a + b)/db = 1
        if (a.requires_grad()) pass_reduced(grad_out, a);                                  // d(a + b)/da = 1
    }, ReadsOutput::no);
}

Tensor sub(Tensor a, Tensor b)
{
    const Shape out = broadcast_shapes("sub", a.shape(), b.shape());
    Array y = apply_reusing_expiring(a, b, out, [](float u, float v) { return u - v; });
    return Tensor::from_op(std::move(y), {a, b}, "sub", [a, b](Grad& grad_out, const Array&) {
        if (b.requires_grad()) b.accumulate_grad(reduce_to_shape(-*grad_out, b.shape()));  // d(a - b)/db = -1
        if (a.requires_grad()) pass_reduced(grad_out, a);                                  // d(a - b)/da = 1
    }, ReadsOutput::no);
}

Tensor mul(const Tensor& a, const Tensor& b)
{
    const Shape out = broadcast_shapes("mul", a.shape(), b.shape());
    auto times = [](float u, float v) { return u * v; };
    Array y = broadcast_apply(a.data(), b.data(), out, times);
    return Tensor::from_op(std::move(y), {a, b}, "mul", [a, b, out, times](Grad& grad_out, const Array&) {
        if (a.requires_grad()) {
            a.accumulate_grad(reduce_to_shape(broadcast_apply(*grad_out, b.data(), out, times), a.shape()));  // b
        }
        if (b.requires_grad()) {
            b.accumulate_grad(reduce_to_shape(broadcast_apply(*grad_out, a.data(), out, times), b.shape()));  // a
        }
    }, ReadsOutput::no);
}

Tensor div(const Tensor& a, const Tensor& b)
{
    const Shape out = broadcast_shapes("div", a.shape(), b.shape());
    Array y = broadcast_apply(a.data(), b.data(), out, [](float u, float v) { return u / v; });
    return Tensor::from_op(std::move(y), {a, b}, "div", [a, b, out](Grad& grad_out, const Array& y) {
        if (a.requires_grad()) {                                      // d(a/b)/da = 1/b
            Array g = broadcast_apply(*grad_out, b.data(), out, [](float g, float v) { return g / v; });
            a.accumulate_grad(reduce_to_shape(std::move(g), a.shape()));
        }
        if (b.requires_grad()) {                                      // d(a/b)/db = -a/b^2 = -y/b
            Array gy = *grad_out * y;
            Array g = broadcast_apply(gy, b.data(), out, [](float gy, float v) { return -gy / v; });
            b.accumulate_grad(reduce_to_shape(std::move(g), b.shape()));
        }
    });
}

// ---- with a scalar ---------------------------------------------------------------------------------------

Tensor add(const Tensor& x, float s)
{
    return Tensor::from_op(x.data() + s, {x}, "add_scalar", [x](Grad& grad_out, const Array&) {
        x.accumulate_grad(grad_out);   // d(x + s)/dx = 1
    }, ReadsOutput::no);
}

Tensor mul(const Tensor& x, float s)
{
    return Tensor::from_op(x.data() * s, {x}, "mul_scalar", [x, s](Grad& grad_out, const Array&) {
        x.accumulate_grad(in_place(grad_out, [&](const Array& g) { return g * s; }));   // d(x s)/dx = s
    }, ReadsOutput::no);
}

Tensor rsub(float s, const Tensor& x)
{
    return Tensor::from_op(s - x.data(), {x}, "rsub_scalar", [x](Grad& grad_out, const Array&) {
        x.accumulate_grad(in_place(grad_out, [&](const Array& g) { return -g; }));   // d(s - x)/dx = -1
    }, ReadsOutput::no);
}

Tensor rdiv(float s, const Tensor& x)
{
    return Tensor::from_op(s / x.data(), {x}, "rdiv_scalar", [x](Grad& grad_out, const Array& y) {
        // d(s/x)/dx = -s/x^2 = -y/x
        x.accumulate_grad(in_place(grad_out, [&](const Array& g) { return -g * y / x.data(); }));
    });
}

Tensor pow(const Tensor& x, float exponent)
{
    return Tensor::from_op(xt::pow(x.data(), exponent), {x}, "pow", [x, exponent](Grad& grad_out, const Array&) {
        x.accumulate_grad(in_place(grad_out, [&](const Array& g) {   // d x^p = p x^(p-1)
            return g * exponent * xt::pow(x.data(), exponent - 1.0f);
        }));
    }, ReadsOutput::no);
}

// ---- functions -------------------------------------------------------------------------------------------

Tensor neg(const Tensor& x)
{
    return Tensor::from_op(-x.data(), {x}, "neg", [x](Grad& grad_out, const Array&) {
        x.accumulate_grad(in_place(grad_out, [&](const Array& g) { return -g; }));   // d(-x)/dx = -1
    }, ReadsOutput::no);
}

Tensor exp(const Tensor& x)
{
    return Tensor::from_op(xt::exp(x.data()), {x}, "exp", [x](Grad& grad_out, const Array& y) {
        x.accumulate_grad(in_place(grad_out, [&](const Array& g) { return g * y; }));   // d e^x = e^x
    });
}

Tensor log(const Tensor& x)
{
    return Tensor::from_op(xt::log(x.data()), {x}, "log", [x](Grad& grad_out, const Array&) {
        x.accumulate_grad(in_place(grad_out, [&](const Array& g) { return g / x.data(); }));   // d log x = 1/x
    }, ReadsOutput::no);
}

Tensor sqrt(const Tensor& x)
{
    return Tensor::from_op(xt::sqrt(x.data()), {x}, "sqrt", [x](Grad& grad_out, const Array& y) {
        // d sqrt(x) = 1 / (2 sqrt(x))
        x.accumulate_grad(in_place(grad_out, [&](const Array& g) { return g * 0.5f / y; }));
    });
}

Tensor tanh(const Tensor& x)
{
    return Tensor::from_op(xt::tanh(x.data()), {x}, "tanh", [x](Grad& grad_out, const Array& y) {
        // d tanh = 1 - tanh^2
        x.accumulate_grad(in_place(grad_out, [&](const Array& g) { return g * (1.0f - y * y); }));
    });
}

Tensor sigmoid(const Tensor& x)
{
    Array y = 1.0f / (1.0f + xt::exp(-x.data()));
    return Tensor::from_op(std::move(y), {x}, "sigmoid", [x](Grad& grad_out, const Array& y) {
        // d sigmoid = s (1 - s)
        x.accumulate_grad(in_place(grad_out, [&](const Array& g) { return g * y * (1.0f - y); }));
    });
}

Tensor relu(const Tensor& x)
{
    return Tensor::from_op(xt::maximum(x.data(), 0.0f), {x}, "relu", [x](Grad& grad_out, const Array&) {
        // d relu = 1 where x > 0, else 0
        x.accumulate_grad(in_place(grad_out, [&](const Array& g) { return xt::where(x.data() > 0.0f, g, 0.0f); }));
    }, ReadsOutput::no);
}

// gelu(x) = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3): PyTorch's approximate='tanh'.
// Written as xtensor expressions so that tanh runs on xsimd's vectorised kernel, over blocks of 4096
// floats split across threads. The backward computes tanh(u) again instead of keeping an array of it
// from the forward: one more tanh costs less than holding one more activation-sized array through
// the whole step.
Tensor gelu(const Tensor& x)
{
    static constexpr float k = 0.7978845608028654f;   // sqrt(2 / pi)
    static constexpr float c = 0.044715f;
    static constexpr std::size_t block = 4096;
    // body(begin, n) for the blocks [begin, begin + n) of `size` floats, n <= block, split across threads
    const auto by_blocks = [](std::size_t size, auto body) {
        parallel_for((size + block - 1) / block, parallel_floats / block, [&](std::size_t first, std::size_t last) {
            for (std::size_t b = first; b < last; ++b) body(b * block, std::min(block, size - b * block));
        });
    };
    const float* xd = x.data().data();
    Array y(x.data().shape());
    by_blocks(y.size(), [&](std::size_t begin, std::size_t n) {
        const std::array<std::size_t, 1> shape{n};
        auto v = xt::adapt(xd + begin, n, xt::no_ownership(), shape);
        auto out = xt::adapt(y.data() + begin, n, xt::no_ownership(), shape);
        xt::noalias(out) = 0.5f * v * (1.0f + xt::tanh(k * (v + c * v * v * v)));
    });
    return Tensor::from_op(std::move(y), {x}, "gelu", [x, by_blocks](Grad& grad_out, const Array&) {
        // d/dx = (1 + t)/2 + x/2 (1 - t^2) du/dx,  t = tanh(u),  du/dx = k (1 + 3c x^2)
        Array grad = grad_out.take();
        const float* xd = x.data().data();
        by_blocks(grad.size(), [&](std::size_t begin, std::size_t n) {
            const std::array<std::size_t, 1> shape{n};
            std::array<float, block> t_block;
            auto v = xt::adapt(xd + begin, n, xt::no_ownership(), shape);
            auto g = xt::adapt(grad.data() + begin, n, xt::no_ownership(), shape);
            auto t = xt::adapt(t_block.data(), n, xt::no_ownership(), shape);
            xt::noalias(t) = xt::tanh(k * (v + c * v * v * v));
            xt::noalias(g) = g * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * k * (1.0f + 3.0f * c * v * v));
        });
        x.accumulate_grad(std::move(grad));
    }, ReadsOutput::no);
}

}  // namespace xgrad
