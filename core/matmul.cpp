// matmul and linear on sgemm (gemm in core/kernels.h). Transposes in the backward are passed to
// sgemm as flags, never copied.
#include <algorithm>

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/ops.h"

namespace xgrad {

namespace {

// An operand seen as a batch of matrices: (batch, rows, cols); a 2-D operand is a batch of one.
struct Batched {
    std::size_t batch, rows, cols;
};

Batched as_batched(const char* side, const Tensor& a, const Tensor& b, const Tensor& x)
{
    XGRAD_CHECK(x.dim() == 2 || x.dim() == 3, "matmul: expected 2-D or 3-D operands, got ", shape_str(a.shape()),
          " @ ", shape_str(b.shape()), " (the ", side, " one has ", x.dim(), " axes)");
    Shape s = x.shape();
    return s.size() == 2 ? Batched{1, s[0], s[1]} : Batched{s[0], s[1], s[2]};
}

}  // namespace

// (M, K) @ (K, N) -> (M, N); (B, M, K) @ (B, K, N) -> (B, M, N); a batch of 1 broadcasts.
Tensor matmul(const Tensor& a, const Tensor& b)
{
    const Batched A = as_batched("left", a, b, a), B = as_batched("right", a, b, b);
    XGRAD_CHECK(A.cols == B.rows, "matmul: inner dimensions differ: ", shape_str(a.shape()), " @ ", shape_str(b.shape()));
    XGRAD_CHECK(A.batch == B.batch || A.batch == 1 || B.batch == 1, "matmul: batch sizes ", A.batch, " and ", B.batch,
          " cannot be broadcast: ", shape_str(a.shape()), " @ ", shape_str(b.shape()));
    const std::size_t batch = std::max(A.batch, B.batch), m = A.rows, k = A.cols, n = B.cols;
    const bool batched_out = a.dim() == 3 || b.dim() == 3;
    // a (B, M, K) @ b (K, N) is one (B*M, K) @ (K, N) product: one sgemm call instead of B
    const bool fold = batch > 1 && A.batch == batch && B.batch == 1;
    const std::size_t calls = fold ? 1 : batch, rows = fold ? batch * m : m;

    Array y(batched_out ? Shape{batch, m, n} : Shape{m, n});
    const float* ad = a.data().data();
    const float* bd = b.data().data();
    for (std::size_t i = 0; i < calls; ++i) {
        gemm(false, false, rows, n, k, ad + (A.batch > 1 ? i * m * k : 0), bd + (B.batch > 1 ? i * k * n : 0), 0.0f,
             y.data() + i * m * n);
    }

    return from_op(std::move(y), {a, b}, "matmul", [=](GradOutput& grad_out) {
        const float* g = grad_out.read().data();
        if (a.requires_grad()) {
            // grad_a = grad_out @ b^T; a broadcast a sums the products of every batch (beta = 1)
            Array grad_a = xt::zeros<float>(a.shape());
            for (std::size_t i = 0; i < calls; ++i) {
                gemm(false, true, rows, k, n, g + i * m * n, b.data().data() + (B.batch > 1 ? i * k * n : 0), 1.0f,
                     grad_a.data() + (A.batch > 1 ? i * m * k : 0));
            }
            a.accumulate_grad(std::move(grad_a));
        }
        if (b.requires_grad()) {
            // grad_b = a^T @ grad_out; folded, this is (K, B*M) @ (B*M, N) in one call
            Array grad_b = xt::zeros<float>(b.shape());
            for (std::size_t i = 0; i < calls; ++i) {
                gemm(true, false, k, n, rows, a.data().data() + (A.batch > 1 ? i * m * k : 0), g + i * m * n, 1.0f,
                     grad_b.data() + (B.batch > 1 ? i * k * n : 0));
            }
            b.accumulate_grad(std::move(grad_b));
        }
    });
}

// x (..., in), weight (out, in), bias (out) -> (..., out)
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias)
{
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
