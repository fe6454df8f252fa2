// In-place ops: each writes through its tensor into the storage (so every view of it sees the write)
// and bumps the version counter. With autograd, as torch's:
//   - on a leaf that requires grad (or a view of one) it is refused while grad mode is on;
//   - recorded, it computes the op out of place, writes the result in, and then the tensor is the
//     op's output: its node becomes the op's, whose input is the node it had ("rebase"). A write
//     through a view makes the base the output of a copy_slices node, which sends the gradient of the
//     written positions through the op and the rest of it to the base's earlier history; the view, and
//     any other view of the base, then follow the base (refresh_view).
//   - otherwise it writes straight into the storage, nothing recorded.
#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/random.h"

namespace xgrad {

using detail::Access;
using detail::TensorImpl;

namespace {

// The checks every in-place op makes before it writes.
void check_writable(const char* op, const TensorImpl& t)
{
    XGRAD_CHECK(!has_overlap(t.shape, t.strides), op, ": unsupported operation: more than one element of the written-to ",
                "tensor refers to a single memory location (shape ", shape_str(t.shape), ", strides ", shape_str(t.strides),
                ", an expand()ed view?). Please clone() the tensor before performing the operation.");
    if (!is_grad_enabled()) return;
    XGRAD_CHECK(!(t.node && t.node->is_leaf() && t.node->requires_grad), op, ": a leaf Variable that requires grad is ",
                "being used in an in-place operation (wrap the write in NoGradGuard, or in Python `with xgrad.no_grad():`)");
    const TensorImpl* base = t.base.get();
    XGRAD_CHECK(!(base && base->node && base->node->is_leaf() && base->node->requires_grad), op, ": a view of a leaf ",
                "Variable that requires grad is being used in an in-place operation (wrap the write in NoGradGuard, or in ",
                "Python `with xgrad.no_grad():`)");
}

// Writes `values` (row-major, of t's shape) into t's elements, and counts the write.
void write_values(TensorImpl& t, const float* values)
{
    scatter(values, t.shape, t.strides, t.mutable_data());
    ++t.version();
}

// t = f(t, operand) element by element, the operand broadcast to t's shape, straight into the storage.
template <class F>
void write_elementwise(TensorImpl& t, const Values& operand, F f)
{
    const Shape shape = to_shape(t.shape);
    broadcast_shapes("in-place", shape, to_shape(operand.shape()));
    if (t.contiguous) {
        const Values self(t.storage, t.data(), t.shape);   // read before written, element by element
        broadcast_apply_into(t.mutable_data(), shape, self, operand, f);
        ++t.version();
        return;
    }
    const Values self = Access::wrap(t.shared_from_this()).values();
    Array result(t.shape);
    broadcast_apply_into(result, self, operand, f);
    write_values(t, result.data());
}

// The operand's values, copied first when they live in the memory about to be written
// (x[1:].copy_(x[:-1])), so that no element is read after it was overwritten.
Values operand_values(const Tensor& operand, const TensorImpl& t)
{
    Values v = operand.values();
    if (Access::impl(operand).storage != t.storage) return v;
    auto copy = std::make_shared<Array>(v.array());
    const float* data = copy->data();
    return Values(std::move(copy), data, v.shape());
}

// Every element of t set to `value`: written without being read (memset for zeros), split across threads.
void write_constant(TensorImpl& t, float value)
{
    if (t.contiguous) {
        float* data = t.mutable_data();
        const std::size_t n = shape_numel(t.shape);
        if (value == 0.0f) {
            parallel_zero(data, n);
        } else {
            parallel_rows(n, 1, [=](std::size_t begin, std::size_t end) { std::fill(data + begin, data + end, value); });
        }
    } else {
        const std::size_t inner = t.shape.empty() ? 1 : t.shape.back(), step = t.shape.empty() ? 1 : t.strides.back();
        float* data = t.mutable_data();
        for_each_row(t.shape, t.strides, [&](std::size_t, std::size_t offset) {
            for (std::size_t j = 0; j < inner; ++j) data[offset + j * step] = value;
        });
    }
    ++t.version();
}

// The op's operand must broadcast to the written tensor's shape: the written tensor cannot grow.
void check_broadcasts_to(const char* op, const TensorImpl& t, const Tensor& operand)
{
    const Shape shape = to_shape(t.shape), other = operand.shape();
    XGRAD_CHECK(broadcast_shapes(op, shape, other) == shape, op, ": output with shape ", shape_str(shape),
                " doesn't match the broadcast shape ", shape_str(broadcast_shapes(op, shape, other)),
                " (the operand ", shape_str(other), " would make it larger; use the out-of-place op)");
}

// The written tensor becomes `out`'s output: its node is out's (whose inputs hold the node it had),
// or, through a view, its base becomes a copy_slices of its history and out.
void rebase(TensorImpl& t, const Tensor& out)
{
    detail::Node& made = *Access::impl(out).node;
    if (!t.base) {
        if (made.saved_output.storage == Access::impl(out).storage) made.saved_output.save(t);   // the output it reads is t
        made.shape = t.shape;
        t.node = Access::impl(out).node;
        return;
    }
    TensorImpl& base = *t.base;
    const detail::Positions at = detail::positions_in_base(t, made.op);
    Tensor b = Access::wrap(t.base);
    // the base's gradient: the written positions' goes to out, the others' to the base's earlier history
    base.node = detail::make_node(base, {b, out}, "copy_slices", [b, out, at](GradOutput& grad_out, const OutputValues&) {
        for_grad_type(grad_out, [&]<class T>(Tag<T>) {
            if (out.requires_grad()) out.accumulate_grad(detail::gather_from(grad_out.read<T>(), at));
            if (!b.requires_grad()) return;
            ArrayOf<T> g = grad_out.take<T>();
            ArrayOf<T> zeros = xt::zeros<T>(at.shape);
            scatter_elements(zeros.data(), at.shape, at.strides, g.data() + at.offset, sizeof(T));   // overwritten: no gradient
            b.accumulate_grad(std::move(g));
        });
    });
    t.view_version = t.version() - 1;   // so that the view follows the base's new history
    detail::refresh_view(t);
}

// The write of copy_ or fill_ into a tensor of a dtype without autograd (an integer, bool or half type):
// `values`, broadcast to t's shape and converted to its dtype, copied first (they may view t's storage)
void write_any_dtype(const char* op, TensorImpl& t, const Tensor& values)
{
    const OpScope scope(op);
    check_writable(op, t);
    const Tensor written = values.detach().expand({t.shape.begin(), t.shape.end()}).to(t.dtype()).clone();
    scatter_elements(Access::impl(written).bytes(), t.shape, t.strides, t.bytes(), element_size(t.dtype()));
    ++t.version();
}

// The in-place op `op` on `self`: recorded as `recorded(self)` (the out-of-place op) when autograd
// must see it, else `direct(self)` writes straight into the storage. `operands` are the op's other
// tensors; `reads_self` says whether the recorded op's backward reads self's values, which are about to
// be overwritten, so that it is given a copy of them (torch's original_self).
template <class Recorded, class Direct>
const Tensor& in_place(const Tensor& self, const char* op, std::initializer_list<Tensor> operands, bool reads_self,
                       Recorded recorded, Direct direct)
{
    const OpScope scope(op);
    TensorImpl& t = detail::refresh_view(Access::impl(self));
    if (!is_floating_point(t.dtype())) [[unlikely]] {   // integers and bools: computed out of place, written in
        const Tensor out = [&] {
            NoGradGuard no_grad;
            return recorded(self.detach());
        }();
        XGRAD_CHECK(!out.is_floating_point(), op, ": result type ", dtype_name(out.dtype()), " can't be cast to the desired ",
                    "output type ", dtype_name(t.dtype()), " (torch's rule: an in-place op keeps its tensor's dtype)");
        XGRAD_CHECK(out.shape() == to_shape(t.shape), op, ": the result ", shape_str(out.shape()), " does not fit the tensor ",
                    shape_str(t.shape), " it would be written into");
        write_any_dtype(op, t, out);
        return self;
    }
    if (t.dtype() != Dtype::Double && t.dtype() != Dtype::Float) refuse_non_floating(self);
    check_writable(op, t);
    bool record = is_grad_enabled() && (self.requires_grad() || (t.base && Access::wrap(t.base).requires_grad()));
    for (const Tensor& operand : operands) record = record || (is_grad_enabled() && operand.requires_grad());
    const bool mixed = std::any_of(operands.begin(), operands.end(), [&t](const Tensor& o) { return o.dtype() != t.dtype(); });
    if (t.dtype() == Dtype::Double || mixed) {   // computed out of place (promoted), then written in self's dtype
        Tensor out;
        if (record) {
            out = recorded(reads_self ? self.clone() : self);
        } else {
            NoGradGuard no_grad;
            out = recorded(self.detach());
        }
        const Tensor written = out.detach().to(t.dtype()).contiguous();
        XGRAD_CHECK(written.shape() == to_shape(t.shape), op, ": the result ", shape_str(written.shape()),
                    " does not fit the tensor ", shape_str(t.shape), " it would be written into");
        scatter_elements(Access::impl(written).bytes(), t.shape, t.strides, t.bytes(), element_size(t.dtype()));
        ++t.version();
        if (record) rebase(t, out.dtype() == t.dtype() ? out : out.to(t.dtype()));
        return self;
    }
    if (!record) {
        direct(t);
        return self;
    }
    const Tensor out = recorded(reads_self ? self.clone() : self);
    const Values written = out.values();
    write_values(t, written.data());
    rebase(t, out);
    return self;
}

// A node that gives its input no gradient (fill_, zero_, normal_: the old values do not reach the new);
// its output is `values` in self's dtype
Tensor overwritten(const Tensor& self, const Tensor& values, const char* op)
{
    return compute_as(self, [&]<class T>(Tag<T>) {
        return from_op(values.to(self.dtype()).template values<T>().array(), {self}, op, [](GradOutput&) {});
    });
}

}  // namespace

const Tensor& Tensor::copy_(const Tensor& src) const
{
    check_broadcasts_to("copy_", impl("copy_"), src);
    if (dtype() != Dtype::Float && dtype() != Dtype::Double) {
        write_any_dtype("copy_", *impl_, src);
        return *this;
    }
    // converted as torch's: the gradient goes back through the conversion (none to ints)
    if (src.dtype() != dtype()) return copy_(src.to(dtype()));
    const Shape shape = this->shape();
    return in_place(*this, "copy_", {src}, false,
        [&](const Tensor& self) {
            return compute_as(self, [&]<class T>(Tag<T>) {
                return from_op(broadcast_to(src.values<T>(), shape), {self, src}, "copy_", [src](GradOutput& grad_out) {
                    if (src.requires_grad()) src.accumulate_grad(reduce_to_shape(grad_out.read<T>(), src.shape()));   // copied
                });
            });
        },
        [&](TensorImpl& t) {
            const Values v = operand_values(src, t);
            write_elementwise(t, v, [](float, float s) { return s; });
        });
}

const Tensor& Tensor::add_(const Tensor& other, float alpha) const
{
    check_broadcasts_to("add_", impl("add_"), other);
    return in_place(*this, "add_", {other}, false,
        [&](const Tensor& self) { return add(self, alpha == 1.0f ? other : mul(other, alpha)); },
        [&](TensorImpl& t) {
            const Values v = operand_values(other, t);
            write_elementwise(t, v, [alpha](float x, float y) { return x + alpha * y; });
        });
}

const Tensor& Tensor::sub_(const Tensor& other, float alpha) const
{
    check_broadcasts_to("sub_", impl("sub_"), other);
    return in_place(*this, "sub_", {other}, false,
        [&](const Tensor& self) { return sub(self, alpha == 1.0f ? other : mul(other, alpha)); },
        [&](TensorImpl& t) {
            const Values v = operand_values(other, t);
            write_elementwise(t, v, [alpha](float x, float y) { return x - alpha * y; });
        });
}

const Tensor& Tensor::mul_(const Tensor& other) const
{
    check_broadcasts_to("mul_", impl("mul_"), other);
    return in_place(*this, "mul_", {other}, other.requires_grad(),
        [&](const Tensor& self) { return mul(self, other); },
        [&](TensorImpl& t) {
            const Values v = operand_values(other, t);
            write_elementwise(t, v, [](float x, float y) { return x * y; });
        });
}

const Tensor& Tensor::div_(const Tensor& other) const
{
    check_broadcasts_to("div_", impl("div_"), other);
    return in_place(*this, "div_", {other}, other.requires_grad(),
        [&](const Tensor& self) { return div(self, other); },
        [&](TensorImpl& t) {
            const Values v = operand_values(other, t);
            write_elementwise(t, v, [](float x, float y) { return x / y; });
        });
}

void index_put_(const Tensor& x, const std::vector<std::size_t>& flat, const Shape& shape, const Tensor& values)
{
    XGRAD_CHECK(broadcast_shapes("index_put_", shape, values.shape()) == shape, "index_put_: shape mismatch: value tensor of ",
                "shape ", shape_str(values.shape()), " cannot be broadcast to indexing result of shape ", shape_str(shape));
    const std::size_t n = x.numel();
    XGRAD_CHECK(flat.size() == shape_numel(shape) && std::all_of(flat.begin(), flat.end(), [n](std::size_t f) { return f < n; }),
                "internal: index_put_ offsets do not fit a tensor of ", n, " elements");
    in_place(x, "index_put_", {values}, false, [&](const Tensor& self) { return index_put(self, flat, shape, values); },
             [&](TensorImpl& t) {
                 const Array v = broadcast_to(operand_values(values, t), shape);
                 XGRAD_CHECK(flat.size() == v.size(), "index_put_: ", flat.size(), " offsets for ", v.size(), " values");
                 if (t.contiguous) {
                     float* data = t.mutable_data();
                     for (std::size_t i = 0; i < flat.size(); ++i) data[flat[i]] = v.data()[i];
                     ++t.version();
                     return;
                 }
                 Array a = Access::wrap(t.shared_from_this()).to_array();   // a strided view: its values, then back
                 for (std::size_t i = 0; i < flat.size(); ++i) a.data()[flat[i]] = v.data()[i];
                 write_values(t, a.data());
             });
}

namespace {

const Values& no_operand()
{
    static const Array zero = xt::zeros<float>(Shape{});
    static const Values values(zero);
    return values;
}

}  // namespace

const Tensor& Tensor::add_(float value) const
{
    return in_place(*this, "add_", {}, false, [&](const Tensor& self) { return add(self, value); },
                    [&](TensorImpl& t) { write_elementwise(t, no_operand(), [value](float x, float) { return x + value; }); });
}

const Tensor& Tensor::sub_(float value) const { return add_(-value); }

const Tensor& Tensor::mul_(float value) const
{
    return in_place(*this, "mul_", {}, false, [&](const Tensor& self) { return mul(self, value); },
                    [&](TensorImpl& t) { write_elementwise(t, no_operand(), [value](float x, float) { return x * value; }); });
}

const Tensor& Tensor::div_(float value) const
{
    return in_place(*this, "div_", {}, false, [&](const Tensor& self) { return div(self, full({}, value)); },
                    [&](TensorImpl& t) { write_elementwise(t, no_operand(), [value](float x, float) { return x / value; }); });
}

const Tensor& Tensor::fill_(double number) const
{
    if (dtype() != Dtype::Float && dtype() != Dtype::Double) {
        write_any_dtype("fill_", *impl_, full({}, number, Dtype::Double));
        return *this;
    }
    const float value = static_cast<float>(number);
    return in_place(*this, "fill_", {}, false,
                    [&](const Tensor& self) { return overwritten(self, full(self.shape(), number, self.dtype()), "fill_"); },
                    [&](TensorImpl& t) { write_constant(t, value); });
}

const Tensor& Tensor::zero_() const
{
    if (dtype() != Dtype::Float) return fill_(0.0);
    return in_place(*this, "zero_", {}, false,
                    [&](const Tensor& self) { return overwritten(self, zeros(self.shape(), self.dtype()), "zero_"); },
                    [&](TensorImpl& t) { write_constant(t, 0.0f); });
}

const Tensor& Tensor::clamp_(std::optional<float> min, std::optional<float> max) const
{
    return in_place(*this, "clamp_", {}, true, [&](const Tensor& self) { return clamp(self, min, max); },
                    [&](TensorImpl& t) {
                        // clamp's values (core/elementwise.cpp): max wins over a larger min, and a NaN bound
                        // gives NaN when both are given, else leaves x as it is
                        const float lo = min.value_or(-INFINITY), hi = max.value_or(INFINITY);
                        const bool nan_bound = min && max && (std::isnan(lo) || std::isnan(hi));
                        write_elementwise(t, no_operand(), [lo, hi, nan_bound](float x, float) {
                            const float v = x < lo ? lo : x;
                            return nan_bound ? NAN : (v > hi ? hi : v);
                        });
                    });
}

const Tensor& Tensor::masked_fill_(const Tensor& mask, float value) const
{
    check_broadcasts_to("masked_fill_", impl("masked_fill_"), mask);
    const Tensor keep = mask.dtype() == kFloat32 ? mask : mask.detach().to(kBool).to(kFloat32);   // a bool mask: 0 or 1
    return in_place(*this, "masked_fill_", {}, false, [&](const Tensor& self) { return masked_fill(self, mask, value); },
                    [&](TensorImpl& t) {
                        const Values m = operand_values(keep, t);
                        write_elementwise(t, m, [value](float x, float keep) { return keep != 0.0f ? value : x; });
                    });
}

namespace {

// x = f(x) in place: recorded as `op` (whose backward reads x itself when reads_self, else at most its
// own output), else f straight into the storage
template <class Recorded, class F>
const Tensor& map_in_place(const Tensor& self, const char* name, bool reads_self, Recorded op, F f)
{
    return in_place(self, name, {}, reads_self, op,
                    [&](TensorImpl& t) { write_elementwise(t, no_operand(), [f](float x, float) { return f(x); }); });
}

}  // namespace

const Tensor& Tensor::exp_() const
{
    return map_in_place(*this, "exp_", false, [](const Tensor& x) { return exp(x); }, [](float x) { return std::exp(x); });
}

const Tensor& Tensor::log_() const
{
    return map_in_place(*this, "log_", true, [](const Tensor& x) { return log(x); }, [](float x) { return std::log(x); });
}

const Tensor& Tensor::sqrt_() const
{
    return map_in_place(*this, "sqrt_", false, [](const Tensor& x) { return sqrt(x); }, [](float x) { return std::sqrt(x); });
}

const Tensor& Tensor::tanh_() const
{
    return map_in_place(*this, "tanh_", false, [](const Tensor& x) { return tanh(x); }, [](float x) { return std::tanh(x); });
}

const Tensor& Tensor::sigmoid_() const
{
    return map_in_place(*this, "sigmoid_", false, [](const Tensor& x) { return sigmoid(x); },
                        [](float x) { return 1.0f / (1.0f + std::exp(-x)); });
}

const Tensor& Tensor::relu_() const
{
    return map_in_place(*this, "relu_", false, [](const Tensor& x) { return relu(x); },
                        [](float x) { return x < 0.0f ? 0.0f : x; });   // NaN and -0.0 kept, as relu's
}

const Tensor& Tensor::neg_() const
{
    return map_in_place(*this, "neg_", false, [](const Tensor& x) { return neg(x); }, [](float x) { return -x; });
}

const Tensor& Tensor::pow_(float exponent) const
{
    return map_in_place(*this, "pow_", true, [exponent](const Tensor& x) { return pow(x, exponent); },
                        [exponent](float x) { return power(x, exponent); });
}

const Tensor& Tensor::pow_(const Tensor& exponent) const
{
    check_broadcasts_to("pow_", impl("pow_"), exponent);
    return in_place(*this, "pow_", {exponent}, true,
        [&](const Tensor& self) { return pow(self, exponent); },
        [&](TensorImpl& t) {
            const Values v = operand_values(exponent, t);
            write_elementwise(t, v, [](float x, float p) { return std::pow(x, p); });
        });
}

namespace {

Array drawn(const Array::shape_type& shape, bool normal, float a, float b)
{
    Array values(shape);
    if (normal) default_generator().normal_(values, a, b); else default_generator().uniform_(values, a, b);
    return values;
}

// the draws for a tensor like `self`: float64 ones in double, others in float32
Tensor drawn_like(const Tensor& self, bool normal, float a, float b)
{
    if (self.dtype() != kFloat64) return Tensor(drawn(self.shape(), normal, a, b));
    Array64 values(self.shape());
    if (normal) default_generator().normal_(values, a, b); else default_generator().uniform_(values, a, b);
    return Tensor(std::move(values));
}

}  // namespace

const Tensor& Tensor::normal_(float mean, float std) const
{
    XGRAD_CHECK(std >= 0.0f, "normal_: expects std >= 0.0, but found std ", std);
    return in_place(*this, "normal_", {}, false,
                    [&](const Tensor& self) { return overwritten(self, drawn_like(self, true, mean, std), "normal_"); },
                    [&](TensorImpl& t) { write_values(t, drawn(t.shape, true, mean, std).data()); });
}

const Tensor& Tensor::uniform_(float from, float to) const
{
    XGRAD_CHECK(from <= to, "uniform_: expects to return a [from, to) range, but found from=", from, " > to=", to);
    return in_place(*this, "uniform_", {}, false,
                    [&](const Tensor& self) { return overwritten(self, drawn_like(self, false, from, to), "uniform_"); },
                    [&](TensorImpl& t) { write_values(t, drawn(t.shape, false, from, to).data()); });
}

}  // namespace xgrad
