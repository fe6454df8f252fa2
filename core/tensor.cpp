// The Tensor handle: its data, its gradient's accessors, printing, and the creation functions.
#include "core/tensor.h"

#include <algorithm>
#include <cmath>

#include <xtensor/xio.hpp>

#include "core/autograd.h"
#include "core/node.h"
#include "core/random.h"

namespace xgrad {

using detail::Node;

Tensor::Tensor(Array&& data, bool requires_grad) : node_(std::make_shared<Node>(std::move(data)))
{
    node_->requires_grad = requires_grad;
}

Tensor::Tensor(const Array& data, bool requires_grad) : Tensor(Array(data), requires_grad) {}

Node& Tensor::node(const char* what) const
{
    if (node_ == nullptr) {
        if (const char* op = OpScope::current()) {
            fail(op, OpScope::in_backward() ? " (backward)" : "", ": an input tensor is undefined (a default-constructed ",
                 "Tensor(), or one moved from); its ", what, "() was read");
        }
        fail(what, ": the tensor is undefined (a default-constructed Tensor(), or one moved from)");
    }
    return *node_;
}

const Array& Tensor::data() const
{
    Node& n = node("data");
    XGRAD_CHECK(!n.data_donated, "internal: the buffer of this tensor was donated to a later op's output");
    if (detail::running_backward) [[unlikely]] detail::check_saved_version(n);
    if (n.lazy_transpose_of.defined()) [[unlikely]] detail::materialize_transpose(n);
    return n.data;
}

Array& Tensor::mutable_data() const
{
    Node& n = node("mutable_data");
    XGRAD_CHECK(!n.data_donated, "internal: the buffer of this tensor was donated to a later op's output");
    if (n.lazy_transpose_of.defined()) [[unlikely]] detail::materialize_transpose(n);
    ++n.version;
    return n.data;
}

std::uint64_t Tensor::version() const { return node("version").version; }

Shape Tensor::shape() const { return to_shape(node("shape").shape()); }
std::size_t Tensor::dim() const { return node("dim").shape().size(); }
std::size_t Tensor::numel() const { return shape_numel(node("numel").shape()); }

std::size_t Tensor::size(std::ptrdiff_t axis) const
{
    auto n = static_cast<std::ptrdiff_t>(dim());
    XGRAD_CHECK(axis >= -n && axis < n, "size: axis ", axis, " is out of range for a ", n, "-D tensor");
    return node_->shape()[static_cast<std::size_t>(axis < 0 ? axis + n : axis)];
}

float Tensor::item() const
{
    XGRAD_CHECK(numel() == 1, "item: expected a tensor with one element, got shape ", shape_str(shape()));
    return *data().data();
}

bool Tensor::expiring() const
{
    return node_ && node_.use_count() == 1 && !node_->backward_reads_output && !node_->data_donated &&
           !node_->lazy_transpose_of.defined();
}

Array Tensor::donate_data()
{
    XGRAD_CHECK(expiring(), "internal: donate_data on a tensor that other handles or its backward still read");
    node_->donated_shape = node_->shape();
    node_->data_donated = true;
    return std::move(node_->data);
}

// ---- autograd accessors -------------------------------------------------------------------------------
bool Tensor::requires_grad() const { return node_ && node_->requires_grad; }
bool Tensor::is_leaf() const { return node("is_leaf").is_leaf(); }
const char* Tensor::op_name() const { return is_leaf() ? "" : node_->op; }

Tensor& Tensor::requires_grad_(bool requires_grad)
{
    XGRAD_CHECK(is_leaf(), "requires_grad_: can only change it on a leaf tensor; this one is the output of '",
          node_->op, "' (use detach() first)");
    node_->requires_grad = requires_grad;
    return *this;
}

namespace {

// the gradient grad() shows: the node's own, or for a non-leaf that retains its gradient, that one
detail::GradSlot& shown_grad(Node& n) { return n.hooks && n.hooks->retains ? n.hooks->retained : n.grad; }

}  // namespace

Tensor Tensor::grad() const
{
    const Tensor* dense = shown_grad(node("grad")).dense();
    return dense ? *dense : Tensor();
}

RowSparse* Tensor::sparse_grad() const { return shown_grad(node("sparse_grad")).sparse(); }

void Tensor::set_grad(Tensor grad) const
{
    XGRAD_CHECK(!grad.defined() || grad.shape() == shape(), "set_grad: expected a gradient of shape ",
          shape_str(shape()), ", got ", shape_str(grad.defined() ? grad.shape() : Shape{}));
    shown_grad(node("set_grad")).set(std::move(grad));
}

void Tensor::zero_grad(bool set_to_none) const
{
    detail::GradSlot& slot = shown_grad(node("zero_grad"));
    const Tensor* dense = slot.dense();
    if (set_to_none || dense == nullptr) {
        slot.clear();   // an empty sparse gradient is all zeros too
    } else {
        parallel_zero(dense->mutable_data().data(), dense->numel());
    }
}

namespace {

void check_grad_shape(const Node& n, const Array::shape_type& grad_shape)
{
    XGRAD_CHECK(grad_shape == n.shape(), "internal: gradient of shape ", shape_str(grad_shape), " for a tensor of shape ",
          shape_str(n.shape()), n.is_leaf() ? "" : " from '", n.is_leaf() ? "" : n.op, n.is_leaf() ? "" : "'");
}

}  // namespace

void Tensor::accumulate_grad(const Array& grad) const
{
    if (!requires_grad()) return;
    check_grad_shape(*node_, grad.shape());
    ++node_->grad_writes;
    node_->grad.add(grad);
}

void Tensor::accumulate_grad(Array&& grad) const
{
    if (!requires_grad()) return;
    check_grad_shape(*node_, grad.shape());
    ++node_->grad_writes;
    node_->grad.add(std::move(grad));
}

void Tensor::accumulate_grad(RowSparse grad) const
{
    if (!requires_grad()) return;
    XGRAD_CHECK(dim() == 2 && grad.values.dimension() == 2 && grad.values.shape()[1] == node_->shape()[1] &&
              grad.rows.size() == grad.values.shape()[0],
          "internal: a row-sparse gradient of ", grad.rows.size(), " rows and values ", shape_str(grad.values.shape()),
          " does not fit a tensor of shape ", shape_str(node_->shape()));
    ++node_->grad_writes;
    node_->grad.add(std::move(grad), node_->shape());
}

Array& Tensor::grad_accumulator() const
{
    XGRAD_CHECK(requires_grad(), "internal: grad_accumulator of a tensor that does not require grad");
    ++node_->grad_writes;
    return node_->grad.accumulator(node_->shape());
}

Tensor Tensor::detach() const
{
    return Tensor(Array(data()));            // xt::xarray has value semantics: a copy of the values
}

void RowSparse::add_to(Array& dense) const
{
    const std::size_t C = values.size() / std::max<std::size_t>(rows.size(), 1);
    for (std::size_t k = 0; k < rows.size(); ++k) {
        float* dst = dense.data() + static_cast<std::size_t>(rows[k]) * C;
        const float* src = values.data() + k * C;
        for (std::size_t c = 0; c < C; ++c) dst[c] += src[c];
    }
}

Array RowSparse::to_dense(std::size_t num_rows) const
{
    Array dense = xt::zeros<float>({num_rows, values.dimension() == 2 ? values.shape()[1] : std::size_t{0}});
    add_to(dense);
    return dense;
}

std::ostream& operator<<(std::ostream& out, const Tensor& t)
{
    if (!t.defined()) return out << "tensor(undefined)";
    out << "tensor(" << t.data() << ", shape=" << shape_str(t.shape());
    if (t.requires_grad()) out << (t.is_leaf() ? ", requires_grad" : ", op=") << t.op_name();
    return out << ")";
}

// ---- creation ---------------------------------------------------------------------------------------
Tensor zeros(const Shape& shape, bool requires_grad)
{
    shape_numel(shape, "zeros");
    return full(shape, 0.0f, requires_grad);
}

Tensor ones(const Shape& shape, bool requires_grad)
{
    shape_numel(shape, "ones");
    return full(shape, 1.0f, requires_grad);
}

Tensor full(const Shape& shape, float value, bool requires_grad)
{
    shape_numel(shape, "full");                 // refuses a shape whose element count overflows
    Array data(shape);
    data.fill(value);
    return Tensor(std::move(data), requires_grad);
}

Tensor arange(float end) { return arange(0.0f, end); }

Tensor arange(float start, float end, float step)
{
    XGRAD_CHECK(step != 0.0f, "arange: step must be nonzero");
    XGRAD_CHECK((end - start) / step >= 0.0f, "arange: cannot go from ", start, " to ", end, " by ", step);
    auto n = static_cast<std::size_t>(std::ceil((end - start) / step));
    Array data(Shape{n});
    for (std::size_t i = 0; i < n; ++i) data(i) = start + static_cast<float>(i) * step;
    return Tensor(std::move(data));
}

Tensor randn(const Shape& shape, bool requires_grad)
{
    shape_numel(shape, "randn");
    Array data(shape);
    default_generator().normal_(data);
    return Tensor(std::move(data), requires_grad);
}

Tensor rand(const Shape& shape, bool requires_grad)
{
    shape_numel(shape, "rand");
    Array data(shape);
    default_generator().uniform_(data);
    return Tensor(std::move(data), requires_grad);
}

Tensor from_vector(const std::vector<float>& values, const Shape& shape)
{
    const std::size_t numel = shape_numel(shape, "from_vector");
    XGRAD_CHECK(values.size() == numel, "from_vector: ", values.size(), " values do not fill shape ", shape_str(shape),
          " (", numel, " elements)");
    Array data(shape);
    std::copy(values.begin(), values.end(), data.begin());
    return Tensor(std::move(data));
}

Tensor tensor(std::initializer_list<Scalar> values)
{
    std::vector<float> v;
    for (Scalar s : values) v.push_back(s.value);
    return from_vector(v, {values.size()});
}

Tensor tensor(std::initializer_list<std::initializer_list<float>> rows)
{
    std::size_t columns = rows.size() ? rows.begin()->size() : 0;
    std::vector<float> values;
    for (const auto& row : rows) {
        XGRAD_CHECK(row.size() == columns, "tensor: rows have different lengths (", columns, " and ", row.size(), ")");
        values.insert(values.end(), row.begin(), row.end());
    }
    return from_vector(values, {rows.size(), columns});
}

}  // namespace xgrad
