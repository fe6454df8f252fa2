// matmul and linear on sgemm (gemm in core/kernels.h). Transposes, in the backward and of an operand
// made by transpose(x, -2, -1), are passed to sgemm as flags, never copied.
#include <algorithm>
#include <vector>

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/ops.h"

namespace xgrad {

namespace {

// Which matrix of each operand every output matrix uses: the batch dims broadcast as NumPy's, and a
// 2-D operand is one matrix for all.
struct Batches {
    Shape shape;                                   // the output's batch dims
    xt::svector<std::size_t, 4> a, b;              // per output matrix: the index of a's matrix and of b's
};

Batches broadcast_batches(const Shape& as, const Shape& bs)
{
    const Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
    Batches out;
    for (std::size_t i = 0; i < std::max(a_batch.size(), b_batch.size()); ++i) {   // i counts from the last batch axis
        const std::size_t da = i < a_batch.size() ? a_batch[a_batch.size() - 1 - i] : 1;
        const std::size_t db = i < b_batch.size() ? b_batch[b_batch.size() - 1 - i] : 1;
        XGRAD_CHECK(da == db || da == 1 || db == 1, "matmul: batch dims ", shape_str(a_batch), " and ", shape_str(b_batch),
                    " cannot be broadcast: ", shape_str(as), " @ ", shape_str(bs));
        out.shape.insert(out.shape.begin(), std::max(da, db));
    }
    const std::vector<std::size_t> sa = stretch_strides(a_batch, out.shape), sb = stretch_strides(b_batch, out.shape);
    const std::size_t count = shape_numel(out.shape);
    out.a.resize(count);
    out.b.resize(count);
    for (std::size_t flat = 0; flat < count; ++flat) {
        std::size_t rest = flat, ia = 0, ib = 0;
        for (std::size_t axis = out.shape.size(); axis-- > 0;) {
            const std::size_t index = rest % out.shape[axis];
            rest /= out.shape[axis];
            ia += index * sa[axis];
            ib += index * sb[axis];
        }
        out.a[flat] = ia;
        out.b[flat] = ib;
    }
    return out;
}

}  // namespace

// a (..., M, K) @ b (..., K, N) -> (..., M, N), the batch dims (...) broadcast: (B, nh, T, hs) @
// (B, nh, hs, T), (B, T, C) @ (C, D), (1, M, K) @ (B, K, N).
Tensor matmul(const Tensor& a, const Tensor& b)
{
    const OpScope scope("matmul");
    XGRAD_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: expected operands of at least 2 axes (..., M, K) @ (..., K, N), got ",
                shape_str(a.shape()), " @ ", shape_str(b.shape()));
    const Shape as = a.shape(), bs = b.shape();
    const std::size_t m = as[as.size() - 2], k = as.back(), n = bs.back();
    XGRAD_CHECK(bs[bs.size() - 2] == k, "matmul: inner dimensions differ: ", shape_str(as), " @ ", shape_str(bs));
    Batches batches = broadcast_batches(as, bs);
    const std::size_t count = batches.a.size();
    // An operand made by transpose(x, -2, -1) is read from x with sgemm's transpose flag: never copied.
    const Tensor a_source = lazy_transpose_source(a), b_source = lazy_transpose_source(b);
    const bool ta = a_source.defined(), tb = b_source.defined();
    const Tensor& a_stored = ta ? a_source : a;
    const Tensor& b_stored = tb ? b_source : b;
    // a (..., M, K) @ b (K, N), a's matrices one after another, is one (count M, K) @ (K, N) product
    const bool fold = !ta && count > 1 && b.dim() == 2 && shape_numel(Shape(as.begin(), as.end() - 2)) == count;
    const std::size_t calls = fold ? 1 : count, rows = fold ? count * m : m;

    Shape y_shape(batches.shape.size() + 2);
    std::copy(batches.shape.begin(), batches.shape.end(), y_shape.begin());
    y_shape.end()[-2] = m;
    y_shape.back() = n;
    Array y(y_shape);
    const float* ad = a_stored.data().data();
    const float* bd = b_stored.data().data();
    for (std::size_t i = 0; i < calls; ++i) {
        gemm(ta, tb, rows, n, k, ad + batches.a[i] * m * k, bd + batches.b[i] * k * n, 0.0f, y.data() + i * m * n);
    }

    // the backward reads the stored operands too, flags flipped: grad_a = g b^T, grad_b = a^T g
    return from_op(std::move(y), {a, b}, "matmul", [=, batches = std::move(batches)](GradOutput& grad_out) {
        const float* g = grad_out.read().data();
        if (a.requires_grad()) {
            // grad_a = grad_out @ b^T; a broadcast matrix of a sums the products of every batch it served
            Array grad_a = xt::zeros<float>(a.shape());
            for (std::size_t i = 0; i < calls; ++i) {
                gemm(false, !tb, rows, k, n, g + i * m * n, b_stored.data().data() + batches.b[i] * k * n, 1.0f,
                     grad_a.data() + batches.a[i] * m * k);
            }
            a.accumulate_grad(std::move(grad_a));
        }
        if (b.requires_grad()) {
            // grad_b = a^T @ grad_out; folded, this is (K, count M) @ (count M, N) in one call
            Array grad_b = xt::zeros<float>(b.shape());
            for (std::size_t i = 0; i < calls; ++i) {
                gemm(!ta, false, k, n, rows, a_stored.data().data() + batches.a[i] * m * k, g + i * m * n, 1.0f,
                     grad_b.data() + batches.b[i] * k * n);
            }
            b.accumulate_grad(std::move(grad_b));
        }
    });
}

// x (..., in), weight (out, in), bias (out) -> (..., out)
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias)
{
    const OpScope scope("linear");
    XGRAD_CHECK(weight.dim() == 2, "linear: expected a 2-D weight (out_features, in_features), got ", shape_str(weight.shape()));
    const std::size_t out = weight.shape()[0], in = weight.shape()[1];
    XGRAD_CHECK(x.dim() >= 1 && x.shape().back() == in, "linear: expected input with last dimension ", in,
          " (in_features), got shape ", shape_str(x.shape()));
    XGRAD_CHECK(!bias.defined() || bias.shape() == Shape{out}, "linear: expected a bias of shape ", shape_str(Shape{out}),
          ", got ", shape_str(bias.defined() ? bias.shape() : Shape{}));
    const std::size_t rows = x.numel() / std::max<std::size_t>(in, 1);   // every leading axis is a row
    Shape y_shape = x.shape();
    y_shape.back() = out;

    Array y(y_shape);
    float* yd = y.data();
    if (bias.defined()) {
        for (std::size_t r = 0; r < rows; ++r) std::copy_n(bias.data().data(), out, yd + r * out);
    }
    gemm(false, true, rows, out, in, x.data().data(), weight.data().data(), bias.defined() ? 1.0f : 0.0f, yd);  // y = x W^T (+ b)

    std::vector<Tensor> inputs = {x, weight};
    if (bias.defined()) inputs.push_back(bias);
    return from_op(std::move(y), inputs, "linear", [=](GradOutput& grad_out) {
        const float* g = grad_out.read().data();                               // (rows, out)
        if (x.requires_grad()) {
            Array grad_x(x.data().shape());
            gemm(false, false, rows, in, out, g, weight.data().data(), 0.0f, grad_x.data());   // g W
            x.accumulate_grad(std::move(grad_x));
        }
        if (weight.requires_grad()) {
            Array grad_w(weight.data().shape());
            gemm(true, false, out, in, rows, g, x.data().data(), 0.0f, grad_w.data());         // g^T x
            weight.accumulate_grad(std::move(grad_w));
        }
        if (bias.defined() && bias.requires_grad()) {
            Array grad_b = xt::zeros<float>({out});                          // sum of g over rows
            float* gb = grad_b.data();
            // threads split the columns, each summing its columns over every row in order
            parallel_rows(out, rows, [=](std::size_t first, std::size_t last) {
                for (std::size_t r = 0; r < rows; ++r) {
                    for (std::size_t o = first; o < last; ++o) gb[o] += g[r * out + o];
                }
            });
            bias.accumulate_grad(std::move(grad_b));
        }
    });
}

}  // namespace xgrad
