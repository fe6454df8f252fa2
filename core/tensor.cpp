// The Tensor handle: its values and storage, its gradient's accessors, printing, and the creation
// functions.
#include "core/tensor.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/autograd.h"
#include "core/node.h"
#include "core/random.h"

namespace xgrad {

using detail::Access;
using detail::Node;
using detail::TensorImpl;

namespace detail {

template <class T>
ArrayOf<T>& Storage::array(const Array::shape_type& shape)
{
    ArrayOf<T>* values = std::get_if<ArrayOf<T>>(&values_);
    XGRAD_CHECK(owns() && !donated_ && values && shape_numel(shape) == values->size(), "internal: storage of ",
                size_, " ", dtype_name(dtype_), " elements read as an array of ", dtype_name(dtype_of<T>()), " of shape ",
                shape_str(shape), donated_ ? " after it was donated" : "", owns() ? "" : " (the elements are borrowed)");
    if (!std::equal(shape.begin(), shape.end(), values->shape().begin(), values->shape().end())) values->reshape(shape);
    return *values;
}

template <class T>
ArrayOf<T> Storage::donate(const Array::shape_type& shape)
{
    ArrayOf<T> values = std::move(array<T>(shape));
    donated_ = true;
    return values;
}

template Array& Storage::array<float>(const Array::shape_type&);
template Array64& Storage::array<double>(const Array::shape_type&);
template Array Storage::donate<float>(const Array::shape_type&);
template Array64 Storage::donate<double>(const Array::shape_type&);

template <class T>
std::shared_ptr<TensorImpl> make_impl(ArrayOf<T>&& values)
{
    auto t = std::make_shared<TensorImpl>();
    t->shape = values.shape();
    t->strides = contiguous_strides(t->shape);
    t->storage = std::make_shared<Storage>(std::move(values));
    return t;
}

template std::shared_ptr<TensorImpl> make_impl(Array&&);
template std::shared_ptr<TensorImpl> make_impl(Array64&&);

Node& ensure_node(TensorImpl& t)
{
    if (!t.node) {
        t.node = std::make_shared<Node>();
        t.node->shape = t.shape;
        t.node->dtype = t.dtype();
        t.node->leaf = t.weak_from_this();
    }
    return *t.node;
}

}  // namespace detail

Tensor::Tensor(Array&& data, bool requires_grad) : impl_(detail::make_impl(std::move(data)))
{
    if (requires_grad) detail::ensure_node(*impl_).requires_grad = true;
}

Tensor Tensor::of_float64(Array64&& data, bool requires_grad)
{
    Tensor t(detail::make_impl(std::move(data)));
    if (requires_grad) detail::ensure_node(*t.impl_).requires_grad = true;
    return t;
}

Tensor::Tensor(const Array& data, bool requires_grad) : Tensor(Array(data), requires_grad) {}

TensorImpl& Tensor::impl(const char* what) const
{
    if (impl_ == nullptr) {
        if (const char* op = OpScope::current()) {
            fail(op, OpScope::in_backward() ? " (backward)" : "", ": an input tensor is undefined (a default-constructed ",
                 "Tensor(), or one moved from); its ", what, "() was read");
        }
        fail(what, ": the tensor is undefined (a default-constructed Tensor(), or one moved from)");
    }
    return *impl_;
}

Shape Tensor::shape() const { return to_shape(impl("shape").shape); }
std::size_t Tensor::dim() const { return impl("dim").shape.size(); }
std::size_t Tensor::numel() const { return shape_numel(impl("numel").shape); }

std::size_t Tensor::size(std::ptrdiff_t axis) const
{
    const auto n = static_cast<std::ptrdiff_t>(dim());
    XGRAD_CHECK(axis >= -n && axis < n, "size: axis ", axis, " is out of range for a ", n, "-D tensor");
    return impl_->shape[static_cast<std::size_t>(axis < 0 ? axis + n : axis)];
}

// ---- values and storage -------------------------------------------------------------------------------
namespace {

// Tensor::values<T>(), inlined into values() itself: the read every float32 op makes
template <class T>
[[gnu::always_inline]] inline ValuesOf<T> values_of(const TensorImpl& t)
{
    if (t.dtype() != dtype_of<T>()) [[unlikely]] {
        if constexpr (std::is_same_v<T, float>) detail::refuse_dtype(t, "values");
        fail("internal: values<", dtype_name(dtype_of<T>()), "> of a ", dtype_name(t.dtype()), " tensor");
    }
    if (detail::running_backward) [[unlikely]] detail::check_saved_version(t);
    XGRAD_CHECK(!t.storage->donated(), "internal: the buffer of this tensor was donated to a later op's output");
    const T* data = reinterpret_cast<const T*>(t.bytes());
    if (t.contiguous) return ValuesOf<T>(t.storage, data, t.shape);
    auto copy = std::make_shared<ArrayOf<T>>(t.shape);   // a strided view: its elements gathered, row-major
    gather_elements(data, t.shape, t.strides, copy->data(), sizeof(T));
    const T* gathered = copy->data();
    return ValuesOf<T>(std::move(copy), gathered, t.shape);
}

}  // namespace

template <class T>
ValuesOf<T> Tensor::values() const
{
    return values_of<T>(impl("values"));
}
template Values Tensor::values<float>() const;
template ValuesOf<double> Tensor::values<double>() const;

Values Tensor::values() const { return values_of<float>(impl("values")); }

Array Tensor::to_array() const { return values().array(); }

const float* Tensor::data_ptr() const
{
    const TensorImpl& t = impl("data_ptr");
    detail::check_float32(t, "data_ptr");
    if (detail::running_backward) [[unlikely]] detail::check_saved_version(t);
    return t.data();
}

std::vector<std::size_t> Tensor::stride() const
{
    const TensorImpl& t = impl("stride");
    return {t.strides.begin(), t.strides.end()};
}

std::size_t Tensor::stride(std::ptrdiff_t axis) const
{
    const TensorImpl& t = impl("stride");
    return t.strides[normalize_axis("stride", axis, t.shape.size())];
}

std::size_t Tensor::storage_offset() const { return impl("storage_offset").offset; }
bool Tensor::is_contiguous() const { return impl("is_contiguous").contiguous; }
bool Tensor::is_view() const { return impl("is_view").base != nullptr; }
Tensor Tensor::base() const { return Tensor(impl("base").base); }
const void* Tensor::storage_id() const { return impl_ ? impl_->storage.get() : nullptr; }
std::uint64_t Tensor::version() const { return impl("version").version(); }

Tensor Tensor::contiguous() const
{
    if (is_contiguous()) return *this;
    const OpScope scope("contiguous");
    const Dtype d = dtype();
    if (d != Dtype::Float && d != Dtype::Double) return Access::wrap(detail::dense_copy(*impl_, d));   // no autograd there
    Tensor x = *this;
    return compute_as(x, [&]<class T>(Tag<T>) {   // row-major
        return from_op(x.values<T>().array(), {x}, "clone", [x](GradOutput& grad_out) { grad_out.pass_to(x); });
    });
}

namespace {

// The axes of t from the largest stride to the smallest, when t's elements fill their span without
// gaps or overlaps (a transpose, a permute of a fresh tensor) but not row-major; else empty.
std::vector<std::size_t> dense_order(const TensorImpl& t)
{
    if (t.contiguous) return {};
    std::vector<std::size_t> order(t.shape.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return t.strides[a] > t.strides[b]; });
    Array::shape_type shape(order.size());
    Strides strides(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) shape[i] = t.shape[order[i]], strides[i] = t.strides[order[i]];
    return is_contiguous(shape, strides) ? order : std::vector<std::size_t>{};
}

}  // namespace

// A copy with its own storage. As torch's (preserve_format): a dense layout keeps its strides (the
// clone of a transpose is a transposed copy); any other is row-major.
Tensor Tensor::clone() const
{
    const OpScope scope("clone");
    Tensor x = *this;
    const std::vector<std::size_t> order = dense_order(impl("clone"));
    const Dtype d = impl_->dtype();
    // the elements in memory order (row-major when order is empty), then the copy laid out as x is
    const Tensor in_memory_order = order.empty() ? *this : detach().permute({order.begin(), order.end()});
    Tensor out;
    if (d != Dtype::Float && d != Dtype::Double) {   // no autograd there
        out = Access::wrap(detail::dense_copy(Access::impl(in_memory_order), d));
    } else {
        out = compute_as(x, [&]<class T>(Tag<T>) {
            return from_op(in_memory_order.values<T>().array(), {x}, "clone", [x](GradOutput& grad_out) { grad_out.pass_to(x); });
        });
    }
    if (order.empty()) return out;
    TensorImpl& o = Access::impl(out);
    const Strides physical = contiguous_strides(o.shape);
    o.shape = impl_->shape;
    for (std::size_t i = 0; i < order.size(); ++i) o.strides[order[i]] = physical[i];
    o.contiguous = false;
    if (o.node) o.node->shape = o.shape;
    return out;
}

bool Tensor::expiring() const
{
    return impl_ && impl_.use_count() == 1 && impl_->storage.use_count() == 1 && impl_->whole() && !impl_->storage->donated();
}

template <class T>
ArrayOf<T> Tensor::donate_data()
{
    XGRAD_CHECK(expiring(), "internal: donate_data on a tensor that other handles or its backward still read");
    return impl_->storage->donate<T>(impl_->shape);
}
template Array Tensor::donate_data<float>();
template Array64 Tensor::donate_data<double>();

float* Tensor::mutable_data_ptr() const
{
    TensorImpl& t = impl("mutable_data_ptr");
    detail::check_float32(t, "mutable_data_ptr");
    XGRAD_CHECK(t.contiguous, "mutable_data_ptr: the tensor of shape ", shape_str(t.shape), " and strides ",
                shape_str(t.strides), " is not contiguous; write into it with an in-place op (copy_, add_, ...)");
    ++t.version();
    return t.mutable_data();
}

void Tensor::set_data(const Tensor& other) const
{
    TensorImpl& t = impl("set_data");
    const TensorImpl& o = other.impl("set_data");
    if (t.node && !t.node->is_leaf()) {
        XGRAD_CHECK(o.shape == t.shape, "set_data: cannot give the output of '", t.node->op, "' (shape ", shape_str(t.shape),
                    ") data of another shape ", shape_str(o.shape), "; its backward expects the old one");
    }
    if (!t.own_version) t.own_version = t.storage->share_counter();   // x keeps its version counter, as torch's
    t.storage = o.storage;
    t.shape = o.shape;
    t.strides = o.strides;
    t.offset = o.offset;
    t.contiguous = o.contiguous;
    t.base = nullptr;
    if (t.node && t.node->is_leaf()) t.node->shape = t.shape;
}

// ---- autograd accessors -------------------------------------------------------------------------------
// A view written through since it was made follows its base first (refresh_view): its node, and so
// what these say, is as torch's regenerated grad_fn.
bool Tensor::requires_grad() const
{
    return impl_ && detail::refresh_view(*impl_).node && impl_->node->requires_grad;
}
bool Tensor::is_leaf() const
{
    const TensorImpl& t = detail::refresh_view(impl("is_leaf"));
    return t.node == nullptr || t.node->is_leaf();
}
const char* Tensor::op_name() const { return is_leaf() ? "" : impl_->node->op; }

const Tensor& Tensor::requires_grad_(bool requires_grad) const
{
    XGRAD_CHECK(is_leaf(), "requires_grad_: can only change it on a leaf tensor; this one is the output of '",
                impl_->node->op, "' (use detach() first)");
    const Dtype d = impl_->dtype();
    XGRAD_CHECK(!requires_grad || xgrad::is_floating_point(d), "requires_grad_: only Tensors of floating point dtype can require ",
                "gradients; this one is ", dtype_name(d));
    XGRAD_CHECK(!requires_grad || d == Dtype::Float || d == Dtype::Double, "requires_grad_: autograd runs in float32 and ",
                "float64; this tensor is ", dtype_name(d), " (convert it with to(kFloat32) first)");
    if (requires_grad || impl_->node) detail::ensure_node(*impl_).requires_grad = requires_grad;
    return *this;
}

namespace {

// the gradient grad() shows: the node's own, or for a non-leaf that retains its gradient, that one
detail::GradSlot& shown_grad(Node& n) { return n.hooks && n.hooks->retains ? n.hooks->retained : n.grad; }

}  // namespace

Tensor Tensor::grad() const
{
    Node* n = impl("grad").node.get();
    const Tensor* dense = n ? shown_grad(*n).dense() : nullptr;
    return dense ? *dense : Tensor();
}

RowSparse* Tensor::sparse_grad() const
{
    Node* n = impl("sparse_grad").node.get();
    return n ? shown_grad(*n).sparse() : nullptr;
}

void Tensor::set_grad(Tensor grad) const
{
    XGRAD_CHECK(!grad.defined() || grad.shape() == shape(), "set_grad: expected a gradient of shape ",
          shape_str(shape()), ", got ", shape_str(grad.defined() ? grad.shape() : Shape{}));
    shown_grad(detail::ensure_node(impl("set_grad"))).set(std::move(grad));
}

void Tensor::zero_grad(bool set_to_none) const
{
    Node* n = impl("zero_grad").node.get();
    if (n == nullptr) return;
    detail::GradSlot& slot = shown_grad(*n);
    const Tensor* dense = slot.dense();
    if (set_to_none || dense == nullptr) {
        slot.clear();   // an empty sparse gradient is all zeros too
    } else if (dense->is_contiguous()) {
        parallel_zero(dense->mutable_data_ptr(), dense->numel());   // what zero_() does, without its checks
    } else {
        NoGradGuard no_grad;
        dense->zero_();
    }
}

namespace {

// The node a backward adds this tensor's gradient into, if it requires grad; else null.
Node* grad_target(const TensorImpl& t, const Array::shape_type& grad_shape, Dtype dtype = Dtype::Float)
{
    Node* n = detail::grad_node(t);
    if (n == nullptr || !n->requires_grad) return nullptr;
    XGRAD_CHECK(grad_shape == n->shape && dtype == n->dtype, "internal: ", dtype_name(dtype), " gradient of shape ",
                shape_str(grad_shape), " for a ", dtype_name(n->dtype), " tensor of shape ", shape_str(n->shape),
                n->is_leaf() ? "" : " from '", n->is_leaf() ? "" : n->op, n->is_leaf() ? "" : "'");
    ++n->grad_writes;
    return n;
}

}  // namespace

void Tensor::accumulate_grad(const Values& grad) const
{
    if (Node* n = grad_target(impl("accumulate_grad"), grad.shape())) n->grad.add(grad);
}

void Tensor::accumulate_grad(Array&& grad) const
{
    if (Node* n = grad_target(impl("accumulate_grad"), grad.shape())) n->grad.add(std::move(grad));
}

void Tensor::accumulate_grad(const ValuesOf<double>& grad) const
{
    if (Node* n = grad_target(impl("accumulate_grad"), grad.shape(), Dtype::Double)) n->grad.add(grad);
}

void Tensor::accumulate_grad(Array64&& grad) const
{
    if (Node* n = grad_target(impl("accumulate_grad"), grad.shape(), Dtype::Double)) n->grad.add(std::move(grad));
}

void Tensor::accumulate_grad(RowSparse grad) const
{
    Node* n = detail::grad_node(impl("accumulate_grad"));
    if (n == nullptr || !n->requires_grad) return;
    XGRAD_CHECK(n->shape.size() == 2 && grad.values.dimension() == 2 && grad.values.shape()[1] == n->shape[1] &&
                    grad.rows.size() == grad.values.shape()[0],
                "internal: a row-sparse gradient of ", grad.rows.size(), " rows and values ", shape_str(grad.values.shape()),
                " does not fit a tensor of shape ", shape_str(n->shape));
    ++n->grad_writes;
    n->grad.add(std::move(grad), n->shape);
}

Array& Tensor::grad_accumulator() const
{
    Node* n = detail::grad_node(impl("grad_accumulator"));
    XGRAD_CHECK(n != nullptr && n->requires_grad, "internal: grad_accumulator of a tensor that does not require grad");
    ++n->grad_writes;
    return n->grad.accumulator(n->shape);
}

Tensor Tensor::detach() const
{
    const TensorImpl& t = impl("detach");
    auto d = std::make_shared<TensorImpl>();
    d->storage = t.storage;
    d->shape = t.shape;
    d->strides = t.strides;
    d->offset = t.offset;
    d->contiguous = t.contiguous;
    d->own_version = t.own_version;   // the version counter is shared: autograd sees writes through it
    return Tensor(std::move(d));
}

Tensor Tensor::variable_data() const
{
    Tensor d = detach();
    Access::impl(d).own_version = std::make_shared<std::uint64_t>(0);
    return d;
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

namespace {

Tensor drawn_as(const char* op, const Shape& shape, Dtype dtype, bool requires_grad, Generator& rng)
{
    XGRAD_CHECK(is_floating_point(dtype), op, ": expected a floating-point dtype, got ", dtype_name(dtype));
    shape_numel(shape, op);
    const bool normal = std::string_view(op) == "randn";
    Tensor out;
    if (dtype == kFloat64) {
        Array64 data(shape);
        normal ? rng.normal_(data) : rng.uniform_(data);
        out = Tensor(std::move(data));
    } else {
        Array data(shape);
        normal ? rng.normal_(data) : rng.uniform_(data);
        out = Tensor(std::move(data)).to(dtype);
    }
    return requires_grad ? out.requires_grad_() : out;
}

}  // namespace

Tensor randn(const Shape& shape, Dtype dtype, bool requires_grad, Generator* generator)
{
    return drawn_as("randn", shape, dtype, requires_grad, generator ? *generator : default_generator());
}

Tensor rand(const Shape& shape, Dtype dtype, bool requires_grad, Generator* generator)
{
    return drawn_as("rand", shape, dtype, requires_grad, generator ? *generator : default_generator());
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

Tensor from_blob(float* data, const Shape& shape, const std::vector<std::size_t>& strides, std::size_t size,
                 std::shared_ptr<void> owner)
{
    return from_blob(data, kFloat32, shape, strides, size, std::move(owner));
}

Tensor from_blob(void* data, Dtype dtype, const Shape& shape, const std::vector<std::size_t>& strides, std::size_t size,
                 std::shared_ptr<void> owner)
{
    XGRAD_CHECK(strides.size() == shape.size(), "from_blob: ", strides.size(), " strides for shape ", shape_str(shape));
    std::size_t last = 0;
    for (std::size_t d = 0; d < shape.size(); ++d) last += shape[d] ? (shape[d] - 1) * strides[d] : 0;
    XGRAD_CHECK(shape_numel(shape, "from_blob") == 0 || last < size, "from_blob: shape ", shape_str(shape), " with strides ",
                shape_str(strides), " reaches element ", last, " of a block of ", size);
    auto t = std::make_shared<TensorImpl>();
    t->storage = std::make_shared<detail::Storage>(data, size, dtype, std::move(owner));
    t->shape.assign(shape.begin(), shape.end());
    t->strides.assign(strides.begin(), strides.end());
    t->contiguous = is_contiguous(t->shape, t->strides);
    return Access::wrap(std::move(t));
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
