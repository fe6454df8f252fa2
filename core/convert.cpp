// Tensors of every dtype: the dtype accessors, conversion (to), the copies that keep a dtype
// (contiguous, clone, reshape's copy), fill_ and copy_ into a tensor of any dtype, the creation
// functions that take a dtype, item<T> and data_ptr<T>, and printing.
#include <algorithm>
#include <cmath>

#include <xtensor/xio.hpp>

#include "core/autograd.h"
#include "core/node.h"
#include "core/ops.h"

namespace xgrad {

using detail::Access;
using detail::Storage;
using detail::TensorImpl;

namespace detail {

std::shared_ptr<Storage> Storage::allocate(Dtype dtype, std::size_t size)
{
    if (dtype == Dtype::Float) return std::make_shared<Storage>(Array(Array::shape_type{size}));
    if (dtype == Dtype::Double) return std::make_shared<Storage>(Array64(Array::shape_type{size}));   // autograd's buffers
    const std::size_t itemsize = element_size(dtype);
    if (size > SIZE_MAX / itemsize) throw_too_many_elements(size, itemsize);
    const std::size_t bytes = size * itemsize;
    void* block = allocate_storage(bytes);
    std::shared_ptr<void> owner(block, [bytes](void* p) { free_storage(p, bytes); });
    return std::make_shared<Storage>(block, size, dtype, std::move(owner));
}

// A row-major tensor of `shape` over a fresh storage of `dtype`, its values undefined
std::shared_ptr<TensorImpl> make_impl(Dtype dtype, const Array::shape_type& shape)
{
    auto t = std::make_shared<TensorImpl>();
    t->storage = Storage::allocate(dtype, shape_numel(shape));
    t->shape = shape;
    t->strides = contiguous_strides(shape);
    return t;
}

// n elements at src, of dtype `from`, written at dst as `to`, as convert() converts each
void convert_elements(const void* src, Dtype from, void* dst, Dtype to, std::size_t n)
{
    dispatch(from, [&]<class F>(Tag<F>) {
        dispatch(to, [&]<class T>(Tag<T>) {
            const F* s = static_cast<const F*>(src);
            T* d = static_cast<T*>(dst);
            parallel_rows(n, 1, [=](std::size_t begin, std::size_t end) {
                for (std::size_t i = begin; i < end; ++i) d[i] = convert<T>(s[i]);
            });
        });
    });
}

// t's elements row-major in a fresh storage of `dtype`, converted if it differs from t's
std::shared_ptr<TensorImpl> dense_copy(const TensorImpl& t, Dtype dtype)
{
    std::shared_ptr<TensorImpl> out = make_impl(dtype, t.shape);
    const std::size_t n = shape_numel(t.shape), size = element_size(t.dtype());
    if (n == 0) return out;
    if (t.dtype() == dtype) {
        gather_elements(t.bytes(), t.shape, t.strides, out->bytes(), size);
    } else if (t.contiguous) {
        convert_elements(t.bytes(), t.dtype(), out->bytes(), dtype, n);
    } else {
        std::shared_ptr<Storage> dense = Storage::allocate(t.dtype(), n);
        gather_elements(t.bytes(), t.shape, t.strides, dense->bytes(), size);
        convert_elements(dense->bytes(), t.dtype(), out->bytes(), dtype, n);
    }
    return out;
}

}  // namespace detail

void detail::refuse_dtype(const TensorImpl& t, const char* what)
{
    const char* op = OpScope::current() ? OpScope::current() : what;
    fail(op, ": expected a float32 tensor, got one of dtype ", dtype_name(t.dtype()), " (shape ", shape_str(t.shape),
         "); ", op, " computes in float32 only: convert the input with .to(kFloat32)");
}

void refuse_non_floating(const Tensor& x)
{
    const char* op = OpScope::current() ? OpScope::current() : "op";
    fail(op, ": expected a float32 or float64 tensor, got one of dtype ", dtype_name(x.dtype()), " (shape ",
         shape_str(x.shape()), "); convert it with .to(kFloat32) or .to(kFloat64)");
}

Dtype Tensor::dtype() const { return impl("dtype").dtype(); }
std::size_t Tensor::element_size() const { return xgrad::element_size(dtype()); }
bool Tensor::is_floating_point() const { return xgrad::is_floating_point(dtype()); }

namespace {

// x (float32 or float64, requiring grad) as the other of the two, recorded: the gradient goes back
// converted, as torch's ToCopyBackward
template <class To, class From>
Tensor converted(const Tensor& x)
{
    const ValuesOf<From> v = x.values<From>();
    ArrayOf<To> y(v.shape());
    detail::convert_elements(v.data(), dtype_of<From>(), y.data(), dtype_of<To>(), v.size());
    return from_op(std::move(y), {x}, "to", [x](GradOutput& grad_out) {
        const ArrayOf<To>& g = grad_out.read<To>();
        ArrayOf<From> back(g.shape());
        detail::convert_elements(g.data(), dtype_of<To>(), back.data(), dtype_of<From>(), g.size());
        x.accumulate_grad(std::move(back));
    });
}

}  // namespace

Tensor Tensor::to(Dtype dtype) const
{
    const TensorImpl& t = impl("to");
    if (t.dtype() == dtype) return *this;
    if (is_grad_enabled() && requires_grad() && (dtype == Dtype::Float || dtype == Dtype::Double)) {
        const OpScope scope("to");
        return dtype == Dtype::Double ? converted<double, float>(*this) : converted<float, double>(*this);
    }   // to any other dtype: a copy without gradient, as torch's
    if (detail::running_backward) [[unlikely]] detail::check_saved_version(t);
    return Access::wrap(detail::dense_copy(t, dtype));
}

Dtype result_type(const Tensor& a, const Tensor& b)
{
    const auto operand = [](const Tensor& t) {
        return DtypeOperand{t.dtype(), t.dim() == 0 ? OperandRank::zero_dim : OperandRank::dimensioned};
    };
    return result_type(operand(a), operand(b));
}

Tensor with_promoted(const Tensor& a, const Tensor& b, Tensor (*op)(const Tensor&, const Tensor&))
{
    const Dtype common = result_type(a, b);
    return op(a.to(common), b.to(common));
}

template <class T>
T Tensor::item() const
{
    const TensorImpl& t = impl("item");
    XGRAD_CHECK(shape_numel(t.shape) == 1, "item: expected a tensor with one element, got shape ", shape_str(t.shape));
    if (detail::running_backward) [[unlikely]] detail::check_saved_version(t);
    return dispatch(t.dtype(), [&]<class S>(Tag<S>) { return convert<T>(*reinterpret_cast<const S*>(t.bytes())); });
}

float Tensor::item() const { return item<float>(); }

template <class T>
const T* Tensor::data_ptr() const
{
    const TensorImpl& t = impl("data_ptr");
    if (t.dtype() != dtype_of<T>()) [[unlikely]] {
        if (OpScope::current() && std::is_same_v<T, float>) detail::refuse_dtype(t, "data_ptr");   // an op's input
        fail("data_ptr: the tensor holds ", dtype_name(t.dtype()), ", not ", dtype_name(dtype_of<T>()));
    }
    if (detail::running_backward) [[unlikely]] detail::check_saved_version(t);
    return reinterpret_cast<const T*>(t.bytes());
}

#define XGRAD_EACH_TYPE(X) X(float) X(double) X(Half) X(BFloat16) X(std::int64_t) X(std::int32_t) X(std::int16_t) \
    X(std::int8_t) X(std::uint8_t) X(bool)
template <class T>
T* Tensor::mutable_data_ptr() const
{
    TensorImpl& t = impl("mutable_data_ptr");
    XGRAD_CHECK(t.dtype() == dtype_of<T>(), "mutable_data_ptr: the tensor holds ", dtype_name(t.dtype()), ", not ", dtype_name(dtype_of<T>()));
    XGRAD_CHECK(t.contiguous, "mutable_data_ptr: the tensor of shape ", shape_str(t.shape), " and strides ", shape_str(t.strides),
                " is not contiguous; write into it with an in-place op (copy_, add_, ...)");
    ++t.version();
    return reinterpret_cast<T*>(t.bytes());
}

#define XGRAD_INSTANTIATE(T) \
    template T Tensor::item<T>() const; template const T* Tensor::data_ptr<T>() const; template T* Tensor::mutable_data_ptr<T>() const;
XGRAD_EACH_TYPE(XGRAD_INSTANTIATE)
#undef XGRAD_INSTANTIATE

// ---- creation -------------------------------------------------------------------------------------------
Tensor empty(const Shape& shape, Dtype dtype)
{
    shape_numel(shape, "empty");
    return Access::wrap(detail::make_impl(dtype, Array::shape_type(shape.begin(), shape.end())));
}

Tensor full(const Shape& shape, double value, Dtype dtype)
{
    shape_numel(shape, "full");
    Tensor t = empty(shape, dtype);
    dispatch(dtype, [&]<class T>(Tag<T>) {
        const T v = convert<T>(value);
        T* d = const_cast<T*>(t.data_ptr<T>());
        parallel_rows(t.numel(), 1, [=](std::size_t begin, std::size_t end) { std::fill(d + begin, d + end, v); });
    });
    return t;
}

Tensor zeros(const Shape& shape, Dtype dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, Dtype dtype) { return full(shape, 1.0, dtype); }

Tensor arange(double start, double end, double step, Dtype dtype)
{
    XGRAD_CHECK(std::isfinite(start) && std::isfinite(end), "arange: unsupported range: ", start, " -> ", end);
    const bool truncated = is_integral(dtype) && step != std::trunc(step);
    if (is_integral(dtype)) start = std::trunc(start), end = std::trunc(end), step = std::trunc(step);
    XGRAD_CHECK(step != 0.0, "arange: step must be nonzero", truncated ? " (an integral dtype truncates it toward zero)" : "");
    XGRAD_CHECK((end - start) / step >= 0.0, "arange: upper bound and larger bound inconsistent with step sign (from ",
                start, " to ", end, " by ", step, ")");
    XGRAD_CHECK(is_arithmetic(dtype) || dtype == Dtype::Half || dtype == Dtype::BFloat16,
                "arange: not implemented for '", dtype_name(dtype), "'");
    const double count = std::ceil((end - start) / step);
    XGRAD_CHECK(count < 0x1p62, "arange: ", count, " elements are too many");
    const auto n = static_cast<std::size_t>(count);
    Tensor t = empty({n}, dtype);
    dispatch(dtype, [&]<class T>(Tag<T>) {
        T* d = const_cast<T*>(t.data_ptr<T>());
        for (std::size_t i = 0; i < n; ++i) d[i] = convert<T>(start + static_cast<double>(i) * step);
    });
    return t;
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape)
{
    const std::size_t numel = shape_numel(shape, "from_vector");
    XGRAD_CHECK(values.size() == numel, "from_vector: ", values.size(), " values do not fill shape ", shape_str(shape),
                " (", numel, " elements)");
    Tensor t = empty(shape, dtype_of<T>());
    T* d = const_cast<T*>(t.data_ptr<T>());
    for (std::size_t i = 0; i < numel; ++i) d[i] = values[i];
    return t;
}

#define XGRAD_INSTANTIATE(T) template Tensor from_vector<T>(const std::vector<T>&, const Shape&);
XGRAD_EACH_TYPE(XGRAD_INSTANTIATE)
#undef XGRAD_INSTANTIATE
#undef XGRAD_EACH_TYPE

// ---- printing ---------------------------------------------------------------------------------------------
// tensor(<the values as xtensor prints them>, shape=(2, 3)[, dtype=int64][, requires_grad | op=mul])
std::ostream& operator<<(std::ostream& out, const Tensor& t)
{
    if (!t.defined()) return out << "tensor(undefined)";
    const TensorImpl& x = Access::impl(t);
    const std::shared_ptr<TensorImpl> dense = detail::dense_copy(x, x.dtype());
    dispatch(x.dtype(), [&]<class T>(Tag<T>) {
        using Shown = std::conditional_t<std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>, float,
                                         std::conditional_t<sizeof(T) == 1 && !std::is_same_v<T, bool>, int, T>>;
        xt::xarray<Shown> shown(x.shape);
        const T* d = reinterpret_cast<const T*>(dense->bytes());
        for (std::size_t i = 0; i < shown.size(); ++i) shown.data()[i] = convert<Shown>(d[i]);
        out << "tensor(" << shown;
    });
    out << ", shape=" << shape_str(x.shape);
    if (x.dtype() != Dtype::Float) out << ", dtype=" << dtype_name(x.dtype());
    if (t.requires_grad()) out << (t.is_leaf() ? ", requires_grad" : ", op=") << t.op_name();
    return out << ")";
}

}  // namespace xgrad
