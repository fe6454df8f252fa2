// matmul and linear on sgemm (gemm in core/kernels.h). Transposes, in the backward and of an operand
// that is a transposed view (k.transpose(-2, -1)), are passed to sgemm as flags, never copied.
#include <algorithm>
#include <vector>

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/node.h"
#include "core/ops.h"

namespace xgrad {

namespace {

// How sgemm reads the matrices (..., R, C) of an operand where they lie: each row-major with its rows
// `ld` apart, or stored transposed (a transpose() or mT view: columns `ld` apart), read with sgemm's
// transpose flag. Neither is a copy. An operand whose matrices are neither (a slice with a step along
// both axes, an expanded row) is read from a contiguous copy of it.
template <class T>
struct Matrices {
    ValuesOf<T> copy;             // the contiguous copy, when one was needed
    const T* data = nullptr;      // the first matrix's first element
    bool transposed = false;
    std::size_t ld = 0;           // the leading dimension, as sgemm takes it
    Strides batch;                // the strides of the batch axes (0 along a broadcast one)
};

template <class T>
Matrices<T> matrices_of(const Tensor& t)
{
    const detail::TensorImpl& impl = detail::Access::impl(t);
    const std::size_t n = impl.shape.size(), R = impl.shape[n - 2], C = impl.shape[n - 1];
    const std::size_t sR = impl.strides[n - 2], sC = impl.strides[n - 1];
    Matrices<T> m;
    m.batch.assign(impl.strides.begin(), impl.strides.end() - 2);
    if ((C == 1 || sC == 1) && (R == 1 || sR >= std::max<std::size_t>(C, 1))) {
        m.data = t.data_ptr<T>();
        m.ld = R == 1 ? std::max<std::size_t>(C, 1) : sR;
        return m;
    }
    if ((R == 1 || sR == 1) && (C == 1 || sC >= std::max<std::size_t>(R, 1))) {
        m.data = t.data_ptr<T>();
        m.transposed = true;
        m.ld = C == 1 ? std::max<std::size_t>(R, 1) : sC;
        return m;
    }
    m.copy = t.values<T>();
    m.data = m.copy.data();
    m.ld = std::max<std::size_t>(C, 1);
    const Strides whole = contiguous_strides(impl.shape);
    m.batch.assign(whole.begin(), whole.end() - 2);
    return m;
}

// Which matrix of each operand every output matrix uses: the batch dims broadcast as NumPy's, and a
// 2-D operand is one matrix for all. For each output matrix: the index of a's matrix and of b's
// (row-major over their own batch dims: where their gradients go), and where each starts in its
// operand's memory.
struct Batches {
    Shape shape;                                   // the output's batch dims
    xt::svector<std::size_t, 4> a, b, a_at, b_at;
};

Batches broadcast_batches(const Shape& as, const Shape& bs, const Strides& a_strides, const Strides& b_strides)
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
    const std::vector<std::size_t> ia = stretch_strides(a_batch, out.shape), ib = stretch_strides(b_batch, out.shape);
    // the operands' own strides, right-aligned to the output's batch dims, 0 where broadcast
    auto memory_strides = [&](const Shape& batch, const Strides& strides) {
        std::vector<std::size_t> s(out.shape.size(), 0);
        for (std::size_t k = 0; k < batch.size(); ++k) {
            const std::size_t axis = out.shape.size() - batch.size() + k;
            s[axis] = batch[k] == out.shape[axis] ? strides[k] : 0;
        }
        return s;
    };
    const std::vector<std::size_t> ma = memory_strides(a_batch, a_strides), mb = memory_strides(b_batch, b_strides);
    const std::size_t count = shape_numel(out.shape);
    for (auto* v : {&out.a, &out.b, &out.a_at, &out.b_at}) v->resize(count);
    for (std::size_t flat = 0; flat < count; ++flat) {
        std::size_t rest = flat, index_a = 0, index_b = 0, at_a = 0, at_b = 0;
        for (std::size_t axis = out.shape.size(); axis-- > 0;) {
            const std::size_t index = rest % out.shape[axis];
            rest /= out.shape[axis];
            index_a += index * ia[axis];
            index_b += index * ib[axis];
            at_a += index * ma[axis];
            at_b += index * mb[axis];
        }
        out.a[flat] = index_a;
        out.b[flat] = index_b;
        out.a_at[flat] = at_a;
        out.b_at[flat] = at_b;
    }
    return out;
}

// Products do not promote, as torch's: both operands of one dtype ("expected scalar type Double but found Float")
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b)
{
    XGRAD_CHECK(a.dtype() == b.dtype(), op, ": expected scalar type ", scalar_type_name(a.dtype()), " but found ",
                scalar_type_name(b.dtype()), " (", shape_str(a.shape()), " ", dtype_name(a.dtype()), " and ",
                shape_str(b.shape()), " ", dtype_name(b.dtype()), "; convert one with .to())");
}

}  // namespace

// a (..., M, K) @ b (..., K, N) -> (..., M, N), the batch dims (...) broadcast: (B, nh, T, hs) @
// (B, nh, hs, T), (B, T, C) @ (C, D), (1, M, K) @ (B, K, N). Operands are read where they lie,
// transposed views (k.transpose(-2, -1)) through sgemm's transpose flag: no copies.
Tensor matmul(const Tensor& a, const Tensor& b)
{
    const OpScope scope("matmul");
    XGRAD_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: expected operands of at least 2 axes (..., M, K) @ (..., K, N), got ",
                shape_str(a.shape()), " @ ", shape_str(b.shape()));
    const Shape as = a.shape(), bs = b.shape();
    const std::size_t m = as[as.size() - 2], k = as.back(), n = bs.back();
    XGRAD_CHECK(bs[bs.size() - 2] == k, "matmul: inner dimensions differ: ", shape_str(as), " @ ", shape_str(bs));
    check_same_dtype("matmul", a, b);
    if (!a.is_floating_point()) [[unlikely]] {   // integers: dgemm's sums, exact while they stay below 2^53
        XGRAD_CHECK(a.dtype() != kBool, "matmul: not implemented for bool tensors (\"addmm_impl_cpu_\" not implemented for 'Bool')");
        return matmul(a.to(kFloat64), b.to(kFloat64)).to(a.dtype());
    }
    return compute_as(a, [&]<class T>(Tag<T>) {
        const Matrices<T> ma = matrices_of<T>(a), mb = matrices_of<T>(b);
        Batches batches = broadcast_batches(as, bs, ma.batch, mb.batch);
        const std::size_t count = batches.a.size();
        // a (..., M, K) @ b (K, N), a contiguous, is one (count M, K) @ (K, N) product
        const bool fold = count > 1 && b.dim() == 2 && a.is_contiguous() && shape_numel(Shape(as.begin(), as.end() - 2)) == count;
        const std::size_t calls = fold ? 1 : count, rows = fold ? count * m : m;

        Shape y_shape(batches.shape.size() + 2);
        std::copy(batches.shape.begin(), batches.shape.end(), y_shape.begin());
        y_shape.end()[-2] = m;
        y_shape.back() = n;
        ArrayOf<T> y(y_shape);
        if (k == 0) y.fill(T(0));
        for (std::size_t i = 0; k > 0 && i < calls; ++i) {
            gemm(ma.transposed, mb.transposed, rows, n, k, T(1), ma.data + batches.a_at[i], ma.ld, mb.data + batches.b_at[i],
                 mb.ld, T(0), y.data() + i * m * n, n);
        }

        // the backward reads the operands where they lie too, flags flipped: grad_a = g b^T, grad_b = a^T g
        return from_op(std::move(y), {a, b}, "matmul", [=, batches = std::move(batches)](GradOutput& grad_out) {
            const T* g = grad_out.read<T>().data();
            if (a.requires_grad()) {
                // grad_a = grad_out @ b^T; a broadcast matrix of a sums the products of every batch it served
                const Matrices<T> mb = matrices_of<T>(b);
                ArrayOf<T> grad_a = xt::zeros<T>(a.shape());
                for (std::size_t i = 0; n > 0 && i < calls; ++i) {
                    gemm(false, !mb.transposed, rows, k, n, T(1), g + i * m * n, n, mb.data + batches.b_at[i], mb.ld, T(1),
                         grad_a.data() + batches.a[i] * m * k, k);
                }
                a.accumulate_grad(std::move(grad_a));
            }
            if (b.requires_grad()) {
                // grad_b = a^T @ grad_out; folded, this is (K, count M) @ (count M, N) in one call
                const Matrices<T> ma = matrices_of<T>(a);
                ArrayOf<T> grad_b = xt::zeros<T>(b.shape());
                for (std::size_t i = 0; rows > 0 && i < calls; ++i) {
                    gemm(!ma.transposed, false, k, n, rows, T(1), ma.data + batches.a_at[i], ma.ld, g + i * m * n, n, T(1),
                         grad_b.data() + batches.b[i] * k * n, n);
                }
                b.accumulate_grad(std::move(grad_b));
            }
        });
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
    const Shape x_shape = x.shape();
    const std::size_t rows = shape_numel(Shape(x_shape.begin(), x_shape.end() - 1));   // every leading axis is a row
    Shape y_shape = x.shape();
    y_shape.back() = out;

    check_same_dtype("linear", x, weight);
    if (bias.defined()) check_same_dtype("linear", x, bias);
    return compute_as(x, [&]<class T>(Tag<T>) {
        ArrayOf<T> y(y_shape);
        T* yd = y.data();
        if (bias.defined()) {
            const ValuesOf<T> b = bias.values<T>();
            for (std::size_t r = 0; r < rows; ++r) std::copy_n(b.data(), out, yd + r * out);
        }
        const ValuesOf<T> xv = x.values<T>(), w = weight.values<T>();
        gemm(false, true, rows, out, in, xv.data(), w.data(), bias.defined() ? T(1) : T(0), yd);  // y = x W^T (+ b)

        std::vector<Tensor> inputs = {x, weight};
        if (bias.defined()) inputs.push_back(bias);
        return from_op(std::move(y), inputs, "linear", [=](GradOutput& grad_out) {
            const T* g = grad_out.read<T>().data();                                // (rows, out)
            if (x.requires_grad()) {
                const ValuesOf<T> w = weight.values<T>();
                ArrayOf<T> grad_x(x.shape());
                gemm(false, false, rows, in, out, g, w.data(), T(0), grad_x.data());   // g W
                x.accumulate_grad(std::move(grad_x));
            }
            if (weight.requires_grad()) {
                const ValuesOf<T> xv = x.values<T>();
                ArrayOf<T> grad_w(weight.shape());
                gemm(true, false, out, in, rows, g, xv.data(), T(0), grad_w.data());   // g^T x
                weight.accumulate_grad(std::move(grad_w));
            }
            if (bias.defined() && bias.requires_grad()) {
                ArrayOf<T> grad_b = xt::zeros<T>({out});                          // sum of g over rows
                T* gb = grad_b.data();
                // threads split the columns, each summing its columns over every row in order
                parallel_rows(out, rows, [=](std::size_t first, std::size_t last) {
                    for (std::size_t r = 0; r < rows; ++r) {
                        for (std::size_t o = first; o < last; ++o) gb[o] += g[r * out + o];
                    }
                });
                bias.accumulate_grad(std::move(grad_b));
            }
        });
    });
}

}  // namespace xgrad
