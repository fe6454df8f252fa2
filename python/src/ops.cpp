// The ops of core/ops.h for Python, as Tensor methods, operators and xgrad.* functions, with
// PyTorch's names, dims and dtype rules: ids (int64) and masks (bool) go through the shape ops,
// indexing and comparisons as themselves; arithmetic that needs floats promotes them to float32.
#include <cmath>

#include "python/src/pytensor.h"

namespace xgrad::python {

namespace {

PyTensor T(Tensor t) { return PyTensor::of(std::move(t)); }

// ---- shape ops on any dtype: float tensors through the differentiable op, arrays directly ---------
template <class FloatOp, class ArrayOp>
PyTensor shape_op(const PyTensor& t, FloatOp float_op, ArrayOp array_op)
{
    if (t.is_float()) return T(float_op(t.f()));
    if (t.dtype == DType::int64) return PyTensor::of(IdArray(array_op(*t.ints)));
    return PyTensor::of(BoolArray(array_op(*t.bools)));
}

std::vector<std::ptrdiff_t> dims_arg(const py::args& args)
{
    std::vector<std::ptrdiff_t> out;
    if (args.size() == 1 && (py::isinstance<py::tuple>(args[0]) || py::isinstance<py::list>(args[0]))) {
        for (py::handle d : args[0]) out.push_back(d.cast<std::ptrdiff_t>());
    } else {
        for (py::handle d : args) out.push_back(d.cast<std::ptrdiff_t>());
    }
    return out;
}

// The shape `spec` (one -1 inferred) for `numel` elements, or PyTorch's error.
Shape infer_shape(const std::vector<std::ptrdiff_t>& spec, std::size_t numel)
{
    std::size_t known = 1;
    std::ptrdiff_t inferred = -1;
    for (std::size_t i = 0; i < spec.size(); ++i) {
        if (spec[i] == -1 && inferred < 0) inferred = static_cast<std::ptrdiff_t>(i);
        else if (spec[i] < 0) throw std::runtime_error("invalid shape dimension " + std::to_string(spec[i]));
        else known *= static_cast<std::size_t>(spec[i]);
    }
    Shape out(spec.begin(), spec.end());
    if (inferred >= 0 && known > 0 && numel % known == 0) out[static_cast<std::size_t>(inferred)] = numel / known;
    else if (inferred >= 0 || known != numel) {
        throw std::runtime_error("shape '" + shape_str(spec) + "' is invalid for input of size " + std::to_string(numel));
    }
    return out;
}

// x.view(...) (strict: a view, or torch's "use .reshape" error) and x.reshape(...) (a view when the
// strides allow, else a copy); ids and masks are always copies
PyTensor reshape_any(const PyTensor& t, std::vector<std::ptrdiff_t> spec, bool strict = false)
{
    const Shape shape = infer_shape(spec, t.numel());   // torch's message for a shape that does not fit
    const std::vector<std::ptrdiff_t> sizes(shape.begin(), shape.end());
    return shape_op(t, [&](const Tensor& x) { return strict ? x.view(sizes) : x.reshape(sizes); },
                    [&](const auto& a) {
                        auto out = a;
                        out.reshape(shape);
                        return out;
                    });
}

PyTensor permute_any(const PyTensor& t, std::vector<int> perm)
{
    return shape_op(t, [&](const Tensor& x) { return permute(x, perm); },
                    [&](const auto& a) {
                        std::vector<std::size_t> p;
                        for (int d : perm) p.push_back(normalize_axis("permute", d, a.dimension()));
                        return std::decay_t<decltype(a)>(xt::transpose(a, p));
                    });
}

PyTensor transpose_any(const PyTensor& t, std::int64_t d0, std::int64_t d1)
{
    const std::size_t n = t.shape().size();
    const auto a = static_cast<int>(normalize_axis("transpose", d0, n)), b = static_cast<int>(normalize_axis("transpose", d1, n));
    if (t.is_float()) return T(transpose(t.f(), a, b));
    std::vector<int> perm(n);
    for (std::size_t i = 0; i < n; ++i) perm[i] = static_cast<int>(i);
    std::swap(perm[static_cast<std::size_t>(a)], perm[static_cast<std::size_t>(b)]);
    return permute_any(t, perm);
}

PyTensor unsqueeze(const PyTensor& t, std::int64_t dim)
{
    if (t.is_float()) return T(t.value.unsqueeze(dim));
    Shape s = t.shape();
    const std::size_t at = normalize_axis("unsqueeze", dim, s.size() + 1);
    std::vector<std::ptrdiff_t> spec(s.begin(), s.end());
    spec.insert(spec.begin() + static_cast<std::ptrdiff_t>(at), 1);
    return reshape_any(t, spec);
}

PyTensor squeeze(const PyTensor& t, std::optional<std::int64_t> dim)
{
    if (t.is_float()) return T(dim ? t.value.squeeze(*dim) : t.value.squeeze());
    const Shape s = t.shape();
    std::vector<std::ptrdiff_t> spec;
    const std::size_t only = dim ? normalize_axis("squeeze", *dim, s.size()) : s.size();
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == 1 && (!dim || i == only)) continue;
        spec.push_back(static_cast<std::ptrdiff_t>(s[i]));
    }
    return reshape_any(t, spec);
}

PyTensor flatten(const PyTensor& t, std::int64_t start, std::int64_t end)
{
    if (t.is_float()) return T(t.value.flatten(start, end));
    const Shape s = t.shape();
    if (s.empty()) return reshape_any(t, {1});
    const std::size_t a = normalize_axis("flatten", start, s.size()), b = normalize_axis("flatten", end, s.size());
    std::vector<std::ptrdiff_t> spec;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i <= a || i > b) spec.push_back(static_cast<std::ptrdiff_t>(s[i]));
        else spec.back() *= static_cast<std::ptrdiff_t>(s[i]);
    }
    return reshape_any(t, spec);
}

// xs along `axis`, for arrays of ids or masks (floats go through the differentiable concat)
template <class A>
A concat_arrays(const std::vector<const A*>& xs, std::size_t axis)
{
    Shape shape(xs[0]->shape().begin(), xs[0]->shape().end());
    shape[axis] = 0;
    for (const A* x : xs) {
        XGRAD_CHECK(x->dimension() == shape.size(), "cat: tensors must have the same number of dimensions");
        for (std::size_t d = 0; d < shape.size(); ++d) {
            XGRAD_CHECK(d == axis || x->shape()[d] == xs[0]->shape()[d], "cat: sizes of tensors must match except in dimension ",
                        axis, ": ", shape_str(xs[0]->shape()), " and ", shape_str(x->shape()));
        }
        shape[axis] += x->shape()[axis];
    }
    A out = A::from_shape(shape);
    std::size_t outer = 1, inner = 1;
    for (std::size_t d = 0; d < axis; ++d) outer *= shape[d];
    for (std::size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
    std::size_t at = 0;
    for (const A* x : xs) {
        const std::size_t run = x->shape()[axis] * inner;
        for (std::size_t o = 0; o < outer; ++o) {
            std::copy_n(x->data() + o * run, run, out.data() + (o * shape[axis]) * inner + at);
        }
        at += run;
    }
    return out;
}

PyTensor cat(const std::vector<PyTensor>& xs, std::int64_t dim)
{
    XGRAD_CHECK(!xs.empty(), "cat: expected a non-empty list of Tensors");
    const bool ints = std::all_of(xs.begin(), xs.end(), [](const PyTensor& t) { return t.dtype == DType::int64; });
    const bool bools = std::all_of(xs.begin(), xs.end(), [](const PyTensor& t) { return t.dtype == DType::bool_; });
    const std::size_t axis = normalize_axis("cat", dim, xs[0].shape().size());
    if (ints) {
        std::vector<const IdArray*> arrays;
        for (const auto& t : xs) arrays.push_back(t.ints.get());
        return PyTensor::of(concat_arrays(arrays, axis));
    }
    if (bools) {
        std::vector<const BoolArray*> arrays;
        for (const auto& t : xs) arrays.push_back(t.bools.get());
        return PyTensor::of(concat_arrays(arrays, axis));
    }
    std::vector<Tensor> parts;
    for (const auto& t : xs) parts.push_back(t.f());
    return T(concat(parts, static_cast<int>(axis)));
}

PyTensor stack_any(const std::vector<PyTensor>& xs, std::int64_t dim)
{
    XGRAD_CHECK(!xs.empty(), "stack: expected a non-empty list of Tensors");
    std::vector<PyTensor> parts;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        XGRAD_CHECK(xs[i].shape() == xs[0].shape(), "stack: expects each tensor to be equal size, but got ",
                    shape_str(xs[0].shape()), " at entry 0 and ", shape_str(xs[i].shape()), " at entry ", i);
        parts.push_back(unsqueeze(xs[i], dim));
    }
    return cat(parts, dim);
}

}  // namespace

// ---- arithmetic ---------------------------------------------------------------------------------------
// the ops of the arithmetic operators on float tensors (pytensor.h)
Tensor float_binary(const Tensor& a, const Tensor& b, Bin op)
{
    switch (op) {
    case Bin::add: return add(a, b);
    case Bin::sub: return sub(a, b);
    case Bin::mul: return mul(a, b);
    case Bin::div: return div(a, b);
    case Bin::pow: return pow(a, b);
    case Bin::floordiv: return Tensor(Array(xt::floor(div(a, b).to_array())));
    case Bin::mod: {
        Tensor q(Array(xt::floor(div(a, b).to_array())));
        return sub(a, mul(q, b));   // d/da = 1: the floor is piecewise constant
    }
    }
    throw std::logic_error("float_binary");
}

// s is taken in x's type, as torch's: a float32 tensor computes with float(s)
Tensor float_scalar(const Tensor& x, double s, Bin op, bool reflected)
{
    const bool double_precision = x.dtype() == Dtype::Double;
    switch (op) {
    case Bin::add: return add(x, s);
    case Bin::sub: return reflected ? rsub(s, x) : add(x, -s);
    case Bin::mul: return mul(x, s);
    case Bin::div:   // x / s: float32 multiplies by float(1 / s), float64 divides
        if (reflected) return rdiv(s, x);
        return double_precision ? div(x, full({}, s, Dtype::Double)) : mul(x, 1.0f / static_cast<float>(s));
    case Bin::pow: return reflected ? pow(full({}, s, x.dtype()), x) : pow(x, s);
    default: break;
    }
    Tensor st = full({}, s, x.dtype());
    return reflected ? float_binary(st, x, op) : float_binary(x, st, op);
}

Tensor matmul_releasing_gil(const Tensor& a, const Tensor& b)
{
    // a tiny product ends before another thread could take the GIL and do anything with it
    if (b.dim() == 0 || a.numel() * b.size(-1) < 32768) return matmul(a, b);
    py::gil_scoped_release release;
    return matmul(a, b);
}

namespace {

// A Python number (int, float, bool, numpy scalar), as the scalar operand of an op.
struct Number {
    double value;
    bool integral;   // and within int64's range
};
std::optional<Number> number(py::handle h)
{
    if (tensor_of(h) || py::isinstance<py::array>(h)) return std::nullopt;
    if (PyFloat_Check(h.ptr())) return Number{PyFloat_AsDouble(h.ptr()), false};
    if (PyLong_Check(h.ptr())) {
        const double v = PyLong_AsDouble(h.ptr());   // a Python int of any size: an OverflowError past a double
        if (v == -1.0 && PyErr_Occurred()) throw py::error_already_set();
        return Number{v, std::fabs(v) < 9.2e18};
    }
    if (PyIndex_Check(h.ptr())) return Number{py::int_(py::reinterpret_borrow<py::object>(h)).cast<double>(), true};   // numpy ints fit int64   // numpy integers
    if (PyNumber_Check(h.ptr()) && py::hasattr(h, "__float__")) return Number{py::float_(py::reinterpret_borrow<py::object>(h)).cast<double>(), false};
    return std::nullopt;
}

template <class F>
IdArray int_op(const IdArray& a, const IdArray& b, F f)
{
    const Shape shape = broadcast_shapes("arithmetic", Shape(a.shape().begin(), a.shape().end()),
                                         Shape(b.shape().begin(), b.shape().end()));
    const IdArray va = xt::broadcast(a, shape), vb = xt::broadcast(b, shape);
    IdArray out = IdArray::from_shape(shape);
    for (std::size_t i = 0; i < out.size(); ++i) out.data()[i] = f(va.data()[i], vb.data()[i]);
    return out;
}

IdArray int_binary(const IdArray& a, const IdArray& b, Bin op)
{
    switch (op) {
    // int64 wraps around as torch's does (two's complement), computed unsigned: signed overflow is
    // undefined in C++ (UBSan caught 2^40 * 2^40)
    using U = std::uint64_t;
    case Bin::add: return int_op(a, b, [](std::int64_t x, std::int64_t y) { return std::int64_t(U(x) + U(y)); });
    case Bin::sub: return int_op(a, b, [](std::int64_t x, std::int64_t y) { return std::int64_t(U(x) - U(y)); });
    case Bin::mul: return int_op(a, b, [](std::int64_t x, std::int64_t y) { return std::int64_t(U(x) * U(y)); });
    case Bin::floordiv:
    case Bin::mod:
        return int_op(a, b, [op](std::int64_t x, std::int64_t y) {
            if (y == 0) throw std::runtime_error("ZeroDivisionError: integer division by zero");
            if (y == -1) return op == Bin::floordiv ? std::int64_t(U(0) - U(x)) : std::int64_t(0);   // INT64_MIN / -1 traps
            std::int64_t q = x / y, r = x % y;
            if (r != 0 && ((r < 0) != (y < 0))) --q, r += y;   // Python's floor rounding
            return op == Bin::floordiv ? q : r;
        });
    default: break;
    }
    throw std::logic_error("int_binary");
}

py::object binary(const PyTensor& a, py::handle other, Bin op, bool reflected)
{
    if (const PyTensor* b = tensor_of(other); b && a.is_float() && b->is_float() && op != Bin::pow && op != Bin::floordiv &&
                                              op != Bin::mod) {
        // the common case, two float tensors: straight to the op
        return py::cast(T(reflected ? float_binary(b->value, a.value, op) : float_binary(a.value, b->value, op)));
    }
    const bool int_op_ok = op == Bin::add || op == Bin::sub || op == Bin::mul || op == Bin::floordiv || op == Bin::mod;
    if (auto n = number(other)) {
        if (a.dtype == DType::int64 && n->integral && int_op_ok) {
            const IdArray s(static_cast<std::int64_t>(n->value));
            return py::cast(PyTensor::of(reflected ? int_binary(s, *a.ints, op) : int_binary(*a.ints, s, op)));
        }
        return py::cast(T(float_scalar(a.f(), n->value, op, reflected)));
    }
    if (!py::isinstance<PyTensor>(other) && !py::isinstance<py::array>(other) && !py::isinstance<py::list>(other)) {
        return py::reinterpret_borrow<py::object>(Py_NotImplemented);
    }
    const PyTensor b = to_tensor(other);
    if (a.dtype == DType::int64 && b.dtype == DType::int64 && int_op_ok) {
        return py::cast(PyTensor::of(reflected ? int_binary(*b.ints, *a.ints, op) : int_binary(*a.ints, *b.ints, op)));
    }
    return py::cast(T(reflected ? float_binary(b.f(), a.f(), op) : float_binary(a.f(), b.f(), op)));
}

py::object comparison(const PyTensor& a, py::handle other, Comparison op)
{
    PyTensor b;
    if (auto n = number(other)) {
        if (a.is_float()) return py::cast(PyTensor::of(compare(a.value, static_cast<float>(n->value), op)));
        b = PyTensor::of(IdArray(static_cast<std::int64_t>(n->value)));
        if (!n->integral) b = PyTensor::of(full({}, static_cast<float>(n->value)));
    } else if (py::isinstance<PyTensor>(other) || py::isinstance<py::array>(other) || py::isinstance<py::list>(other)) {
        b = to_tensor(other);
    } else {
        return py::reinterpret_borrow<py::object>(Py_NotImplemented);
    }
    if (a.is_float() || b.is_float()) return py::cast(PyTensor::of(compare(a.f(), b.f(), op)));
    const IdArray x = *as_dtype(a, DType::int64).ints, y = *as_dtype(b, DType::int64).ints;
    const Shape shape = broadcast_shapes("compare", Shape(x.shape().begin(), x.shape().end()), Shape(y.shape().begin(), y.shape().end()));
    const IdArray vx = xt::broadcast(x, shape), vy = xt::broadcast(y, shape);
    BoolArray out = BoolArray::from_shape(shape);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const auto p = vx.data()[i], q = vy.data()[i];
        out.data()[i] = op == Comparison::eq ? p == q : op == Comparison::ne ? p != q : op == Comparison::lt ? p < q
                      : op == Comparison::le ? p <= q : op == Comparison::gt ? p > q : p >= q;
    }
    return py::cast(PyTensor::of(std::move(out)));
}

PyTensor logical(const PyTensor& a, py::handle other, char op)
{
    const PyTensor b = to_tensor(other);
    if (a.dtype == DType::bool_ && b.dtype == DType::bool_) {
        const BoolArray& x = *a.bools;
        const BoolArray& y = *b.bools;
        if (op == '&') return PyTensor::of(BoolArray(x && y));
        if (op == '|') return PyTensor::of(BoolArray(x || y));
        return PyTensor::of(BoolArray(xt::not_equal(x, y)));
    }
    if (a.dtype == DType::int64 && b.dtype == DType::int64) {
        return PyTensor::of(int_op(*a.ints, *b.ints, [op](std::int64_t x, std::int64_t y) {
            return op == '&' ? x & y : op == '|' ? x | y : x ^ y;
        }));
    }
    throw py::type_error(std::string("bitwise ") + op + " is only defined for bool and int64 tensors, got " +
                         dtype_name(a.dtype) + " and " + dtype_name(b.dtype));
}

// ---- reductions ---------------------------------------------------------------------------------------
std::vector<int> axes_arg(py::handle dim, std::size_t ndim)
{
    std::vector<int> axes;
    if (dim.is_none()) {
        for (std::size_t i = 0; i < ndim; ++i) axes.push_back(static_cast<int>(i));
    } else if (py::isinstance<py::tuple>(dim) || py::isinstance<py::list>(dim)) {
        for (py::handle d : dim) axes.push_back(d.cast<int>());
    } else {
        axes.push_back(dim.cast<int>());
    }
    return axes;
}

// dim=, or its numpy alias axis= (one of them)
py::object dim_or_axis(py::object dim, py::object axis)
{
    if (axis.is_none()) return dim;
    if (!dim.is_none()) throw py::type_error("got both dim= and its alias axis=; pass one of them");
    return axis;
}

PyTensor sum_any(const PyTensor& t, py::handle dim, bool keepdim)
{
    if (t.is_float()) {
        if (dim.is_none() && !keepdim) return T(sum(t.f()));
        return T(sum(t.f(), axes_arg(dim, t.shape().size()), keepdim));
    }
    const IdArray ids = *as_dtype(t, DType::int64).ints;   // sums of ids and of masks are counts: int64, as PyTorch
    std::vector<std::size_t> axes;
    if (dim.is_none()) {
        for (std::size_t a = 0; a < ids.dimension(); ++a) axes.push_back(a);
    } else {
        for (int a : axes_arg(dim, ids.dimension())) {
            const std::size_t axis = normalize_axis("sum", a, ids.dimension());
            if (std::find(axes.begin(), axes.end(), axis) != axes.end()) {
                throw std::runtime_error("dim " + std::to_string(axis) + " appears multiple times in the list of dims");
            }
            axes.push_back(axis);
        }
    }
    Shape kept(ids.shape().begin(), ids.shape().end()), dropped;
    for (std::size_t a : axes) kept[a] = 1;
    for (std::size_t a = 0; a < kept.size(); ++a) {
        if (std::find(axes.begin(), axes.end(), a) == axes.end()) dropped.push_back(kept[a]);
    }
    // the sum of nothing is 0 (xtensor's reducer would step a null pointer over an empty array)
    IdArray out = ids.size() == 0 ? IdArray(xt::zeros<std::int64_t>(dropped)) : IdArray(xt::sum(ids, axes));
    if (keepdim) out.reshape(kept);
    return PyTensor::of(std::move(out));
}

PyTensor mean_any(const PyTensor& t, py::handle dim, bool keepdim)
{
    if (!t.is_float()) {
        throw std::runtime_error(std::string("mean(): could not infer output dtype. Input dtype must be floating point, got ") +
                                 dtype_name(t.dtype) + " (use .float() first)");
    }
    if (dim.is_none() && !keepdim) return T(mean(t.f()));
    return T(mean(t.f(), axes_arg(dim, t.shape().size()), keepdim));
}

// the index of the first largest (or smallest) value along `axis`; NaN counts as the largest
IdArray arg_extreme(const Array& a, std::size_t axis, bool keepdim, bool largest)
{
    Shape shape(a.shape().begin(), a.shape().end());
    const std::size_t n = shape[axis];
    XGRAD_CHECK(n > 0, "argmax(): Expected reduction dim ", axis, " to have non-zero size");
    std::size_t outer = 1, inner = 1;
    for (std::size_t d = 0; d < axis; ++d) outer *= shape[d];
    for (std::size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
    Shape out_shape = shape;
    if (keepdim) out_shape[axis] = 1;
    else out_shape.erase(out_shape.begin() + static_cast<std::ptrdiff_t>(axis));
    IdArray out = IdArray::from_shape(out_shape);
    for (std::size_t o = 0; o < outer; ++o) {
        for (std::size_t i = 0; i < inner; ++i) {
            const float* p = a.data() + o * n * inner + i;
            std::size_t best = 0;
            for (std::size_t k = 1; k < n && !std::isnan(p[best * inner]); ++k) {
                const float v = p[k * inner], b = p[best * inner];
                if (std::isnan(v) || (largest ? v > b : v < b)) best = k;
            }
            out.data()[o * inner + i] = static_cast<std::int64_t>(best);
        }
    }
    return out;
}

py::object return_types(const char* name)
{
    static py::dict* types = new py::dict();   // leaked on purpose: never destroyed after the interpreter
    if (!types->contains(name)) {
        (*types)[name] = py::module_::import("collections").attr("namedtuple")(name, py::make_tuple("values", "indices"));
    }
    return (*types)[name];
}

py::object max_any(const PyTensor& t, py::object dim, bool keepdim, bool largest)
{
    const char* name = largest ? "max" : "min";
    if (!t.is_float()) {
        const IdArray ids = *as_dtype(t, DType::int64).ints;
        if (dim.is_none()) {
            XGRAD_CHECK(ids.size() > 0, name, "(): Expected reduction dim to be specified for input.numel() == 0");
            return py::cast(PyTensor::of(IdArray(largest ? xt::amax(ids)() : xt::amin(ids)())));
        }
        py::tuple r = max_any(as_dtype(t, DType::float32), dim, keepdim, largest);   // ids below 2^24 are exact in float32
        return return_types(name)(as_dtype(r[0].cast<PyTensor>(), DType::int64), r[1]);
    }
    if (dim.is_none()) return py::cast(T(largest ? max(t.f()) : min(t.f())));   // ties share the gradient
    Tensor x = largest ? t.f() : neg(t.f());
    const auto axis = normalize_axis(name, dim.cast<std::ptrdiff_t>(), t.shape().size());
    Tensor m = max(x, static_cast<int>(axis), keepdim);
    IdArray indices = arg_extreme(t.value.to_array(), axis, keepdim, largest);
    return return_types(name)(T(largest ? m : neg(m)), PyTensor::of(std::move(indices)));
}

PyTensor argmax_any(const PyTensor& t, py::object dim, bool keepdim, bool largest)
{
    const Array a = t.f().to_array();
    if (dim.is_none()) {
        Array flat = a;
        flat.reshape({a.size()});
        return PyTensor::of(arg_extreme(flat, 0, false, largest));
    }
    return PyTensor::of(arg_extreme(a, normalize_axis("argmax", dim.cast<std::ptrdiff_t>(), a.dimension()), keepdim, largest));
}

// softmax over any dim: the op works on the last, so another dim is moved there and back
template <class Op>
Tensor along(const Tensor& x, std::int64_t dim, Op op)
{
    const std::size_t n = x.dim();
    if (n == 0) return reshape(op(reshape(x, {1})), {});
    const std::size_t axis = normalize_axis("softmax", dim, n);
    if (axis == n - 1) return op(x);
    const int a = static_cast<int>(axis), last = static_cast<int>(n - 1);
    return transpose(op(transpose(x, a, last)), a, last);
}

Tensor tri(const PyTensor& t, std::int64_t diagonal, bool lower, PyTensor* out)
{
    if (t.is_float()) return lower ? tril(t.f(), diagonal) : triu(t.f(), diagonal);
    const Shape s = t.shape();
    XGRAD_CHECK(s.size() >= 2, lower ? "tril" : "triu", ": input tensor must have at least 2 dimensions");
    const BoolArray keep = triangle_mask(s[s.size() - 2], s.back(), diagonal, lower);
    // element by element, each matrix against the (M, N) mask: xtensor's broadcast `&&` of bool arrays gave
    // wrong values for a batch of 1-row matrices
    const auto keep_triangle = [&keep](auto values) {
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (!keep.data()[i % keep.size()]) values.data()[i] = 0;
        }
        return values;
    };
    if (t.dtype == DType::int64) *out = PyTensor::of(keep_triangle(IdArray(*t.ints)));
    else *out = PyTensor::of(keep_triangle(BoolArray(*t.bools)));
    return {};
}

std::vector<PyTensor> split_any(const PyTensor& t, py::handle sizes, std::int64_t dim)
{
    const Shape s = t.shape();
    const std::size_t axis = normalize_axis("split", dim, s.size());
    std::vector<std::size_t> lengths;
    if (PyIndex_Check(sizes.ptr())) {
        const auto size = sizes.cast<std::int64_t>();
        XGRAD_CHECK(size > 0 || s[axis] == 0, "split: split_size must be positive, got ", size);
        if (t.is_float()) {
            std::vector<PyTensor> out;
            for (auto& piece : split(t.f(), static_cast<std::size_t>(size), static_cast<int>(axis))) out.push_back(T(piece));
            return out;
        }
        for (std::size_t at = 0; at < s[axis]; at += static_cast<std::size_t>(size)) {
            lengths.push_back(std::min<std::size_t>(static_cast<std::size_t>(size), s[axis] - at));
        }
    } else {
        std::size_t total = 0;
        for (py::handle h : sizes) total += lengths.emplace_back(h.cast<std::size_t>());
        XGRAD_CHECK(total == s[axis], "split_with_sizes expects split_sizes to sum exactly to ", s[axis],
                    " (input tensor's size at dimension ", axis, "), but got split_sizes=", shape_str(lengths));
        if (t.is_float()) {
            std::vector<PyTensor> out;
            const std::vector<std::int64_t> sizes(lengths.begin(), lengths.end());
            for (auto& piece : t.value.split_with_sizes(sizes, static_cast<std::ptrdiff_t>(axis))) out.push_back(T(piece));
            return out;
        }
    }
    std::vector<PyTensor> out;
    std::size_t at = 0;
    for (std::size_t len : lengths) {
        py::tuple index(axis + 1);
        for (std::size_t d = 0; d < axis; ++d) index[d] = py::slice(py::none(), py::none(), py::none());
        index[axis] = py::slice(static_cast<py::ssize_t>(at), static_cast<py::ssize_t>(at + len), 1);
        const Selection sel = select(s, index);
        if (t.is_float()) {
            out.push_back(T(take(t.f(), sel.flat, sel.shape, "split_with_sizes")));
        } else {
            py::object piece = py::cast(t).attr("__getitem__")(index);
            out.push_back(piece.cast<PyTensor>());
        }
        at += len;
    }
    return out;
}

}  // namespace

void bind_ops(py::module_& m)
{
    auto tensor = py::reinterpret_borrow<py::class_<PyTensor>>(m.attr("Tensor"));
    // one lambda, two doors: x.exp() and xgrad.exp(x)
    auto both = [&](const char* name, auto fn, auto... extra) {
        tensor.def(name, fn, extra...);
        if constexpr (sizeof...(extra) > 0) m.def(name, fn, py::arg("input"), extra...);
        else m.def(name, fn);
    };
    using A = py::arg;

    // ---- operators ----
    const std::pair<const char*, Bin> arithmetic[] = {{"add", Bin::add}, {"sub", Bin::sub}, {"mul", Bin::mul},
        {"truediv", Bin::div}, {"pow", Bin::pow}, {"floordiv", Bin::floordiv}, {"mod", Bin::mod}};
    for (auto [name, op] : arithmetic) {
        tensor.def(("__" + std::string(name) + "__").c_str(), [op = op](const PyTensor& a, py::handle b) { return binary(a, b, op, false); },
                   py::is_operator());
        tensor.def(("__r" + std::string(name) + "__").c_str(), [op = op](const PyTensor& a, py::handle b) { return binary(a, b, op, true); },
                   py::is_operator());
    }
    both("add", [](const PyTensor& a, py::handle b, float alpha) {
        return alpha == 1.0f ? binary(a, b, Bin::add, false) : binary(a, py::cast(T(mul(to_tensor(b).f(), alpha))), Bin::add, false);
    }, A("other"), A("alpha") = 1.0f);
    both("sub", [](const PyTensor& a, py::handle b) { return binary(a, b, Bin::sub, false); });
    both("mul", [](const PyTensor& a, py::handle b) { return binary(a, b, Bin::mul, false); });
    both("div", [](const PyTensor& a, py::handle b) { return binary(a, b, Bin::div, false); });
    both("pow", [](const PyTensor& a, py::handle b) { return binary(a, b, Bin::pow, false); });
    m.def("pow", [](double base, const PyTensor& exponent) { return binary(exponent, py::float_(base), Bin::pow, true); },
          A("self"), A("exponent"));   // torch.pow(2.0, x): a number's power
    const std::pair<const char*, Comparison> comparisons[] = {{"eq", Comparison::eq}, {"ne", Comparison::ne},
        {"lt", Comparison::lt}, {"le", Comparison::le}, {"gt", Comparison::gt}, {"ge", Comparison::ge}};
    for (auto [name, op] : comparisons) {
        tensor.def(("__" + std::string(name) + "__").c_str(), [op = op](const PyTensor& a, py::handle b) { return comparison(a, b, op); },
                   py::is_operator());
        both(name, [op = op](const PyTensor& a, py::handle b) { return comparison(a, b, op); });
    }
    tensor.def("__hash__", [](py::handle self) { return reinterpret_cast<std::intptr_t>(self.ptr()); });
    tensor.def("__and__", [](const PyTensor& a, py::handle b) { return logical(a, b, '&'); }, py::is_operator());
    tensor.def("__or__", [](const PyTensor& a, py::handle b) { return logical(a, b, '|'); }, py::is_operator());
    tensor.def("__xor__", [](const PyTensor& a, py::handle b) { return logical(a, b, '^'); }, py::is_operator());
    tensor.def("__invert__", [](const PyTensor& a) {
        if (a.dtype == DType::bool_) return PyTensor::of(BoolArray(!*a.bools));
        if (a.dtype == DType::int64) return PyTensor::of(IdArray(-*a.ints - std::int64_t(1)));
        throw py::type_error("~ (bitwise not) is only defined for bool and int64 tensors, got float32");
    });
    tensor.def("__neg__", [](const PyTensor& a) {
        return a.dtype == DType::int64 ? PyTensor::of(IdArray(-*a.ints)) : T(neg(a.f()));
    });
    tensor.def("__pos__", [](const PyTensor& a) { return a; });
    tensor.def("__matmul__", [](const PyTensor& a, const PyTensor& b) { return T(matmul_releasing_gil(a.f(), b.f())); },
               py::is_operator());
    both("matmul", [](const PyTensor& a, const PyTensor& b) { return T(matmul_releasing_gil(a.f(), b.f())); });
    m.attr("mm") = m.attr("matmul");
    m.attr("bmm") = m.attr("matmul");
    tensor.attr("mm") = tensor.attr("matmul");
    tensor.attr("bmm") = tensor.attr("matmul");

    // ---- element-wise ----
    both("exp", [](const PyTensor& x) { return T(exp(x.f())); });
    both("log", [](const PyTensor& x) { return T(log(x.f())); });
    both("sqrt", [](const PyTensor& x) { return T(sqrt(x.f())); });
    both("rsqrt", [](const PyTensor& x) { return T(rdiv(1.0f, sqrt(x.f()))); });   // NaN at -inf, and in its gradient
    both("tanh", [](const PyTensor& x) { return T(tanh(x.f())); });
    both("sin", [](const PyTensor& x) { return T(sin(x.f())); });
    both("cos", [](const PyTensor& x) { return T(cos(x.f())); });
    both("sigmoid", [](const PyTensor& x) { return T(sigmoid(x.f())); });
    both("relu", [](const PyTensor& x) { return T(relu(x.f())); });
    both("neg", [](const PyTensor& x) { return T(neg(x.f())); });
    both("square", [](const PyTensor& x) { Tensor v = x.f(); return T(mul(v, v)); });
    both("abs", [](const PyTensor& x) { return T(xgrad::abs(x.f())); });
    both("clamp", [](const PyTensor& x, std::optional<float> min, std::optional<float> max) {
        return T(xgrad::clamp(x.f(), min, max));
    }, A("min") = py::none(), A("max") = py::none());
    m.attr("clip") = m.attr("clamp");
    tensor.attr("clip") = tensor.attr("clamp");
    both("masked_fill", [](const PyTensor& x, const PyTensor& mask, py::handle value) {
        const float v = py::isinstance<PyTensor>(value) ? value.cast<PyTensor>().f().item() : value.cast<float>();
        return T(masked_fill(x.f(), Tensor(Array(xt::cast<float>(mask.mask()))), v));
    }, A("mask"), A("value"));
    m.def("where", [](const PyTensor& condition, py::handle a, py::handle b) {
        return T(xgrad::where(condition.mask(), to_tensor(a).f(), to_tensor(b).f()));
    }, A("condition"), A("input"), A("other"));
    tensor.def("where", [](const PyTensor& self, const PyTensor& condition, py::handle other) {
        return T(xgrad::where(condition.mask(), self.f(), to_tensor(other).f()));
    }, A("condition"), A("other"));

    // ---- shape ----
    tensor.def("view", [](const PyTensor& t, py::args shape) { return reshape_any(t, dims_arg(shape), /*strict=*/true); });
    tensor.def("reshape", [](const PyTensor& t, py::args shape) { return reshape_any(t, dims_arg(shape)); });
    m.def("reshape", [](const PyTensor& t, py::handle shape) { return reshape_any(t, dims_arg(py::make_tuple(shape))); });
    tensor.def("permute", [](const PyTensor& t, py::args dims) {
        std::vector<int> perm;   // each dim checked while 64-bit: 2**32 must not wrap to 0
        for (std::ptrdiff_t d : dims_arg(dims)) perm.push_back(static_cast<int>(normalize_axis("permute", d, t.shape().size())));
        return permute_any(t, perm);
    });
    m.def("permute", [](const PyTensor& t, std::vector<int> dims) { return permute_any(t, dims); });
    both("transpose", &transpose_any, A("dim0"), A("dim1"));
    tensor.def_property_readonly("T", [](const PyTensor& t) {
        std::vector<int> perm;
        for (std::size_t i = t.shape().size(); i-- > 0;) perm.push_back(static_cast<int>(i));
        return permute_any(t, perm);
    });
    tensor.def_property_readonly("mT", [](const PyTensor& t) {
        if (t.shape().size() < 2) {
            throw std::runtime_error("tensor.mT is only supported on matrices or batches of matrices. Got " +
                                     std::to_string(t.shape().size()) + "-D tensor.");
        }
        return transpose_any(t, -2, -1);
    });
    tensor.def("t", [](const PyTensor& t) {
        if (t.shape().size() > 2) {
            throw std::runtime_error("t() expects a tensor with <= 2 dimensions, but self is " +
                                     std::to_string(t.shape().size()) + "D");
        }
        return t.is_float() ? T(t.value.t()) : t.shape().size() < 2 ? t : transpose_any(t, 0, 1);
    });
    both("unsqueeze", &unsqueeze, A("dim"));
    both("squeeze", &squeeze, A("dim") = py::none());
    both("flatten", &flatten, A("start_dim") = 0, A("end_dim") = -1);
    tensor.def("contiguous", [](py::object self) {
        const PyTensor& t = self.cast<const PyTensor&>();
        return t.is_float() && !t.value.is_contiguous() ? py::cast(T(t.value.contiguous())) : self;
    });
    tensor.def("is_contiguous", [](const PyTensor& t) { return !t.is_float() || t.value.is_contiguous(); });
    both("clone", [](const PyTensor& t) {
        return shape_op(t, [](const Tensor& x) { return x.clone(); }, [](const auto& a) { return a; });
    });
    m.def("_unbind", [](const PyTensor& t, std::int64_t dim) {
        std::vector<PyTensor> out;
        for (auto& piece : t.value.unbind(dim)) out.push_back(T(piece));
        return out;
    });
    both("narrow", [](const PyTensor& t, std::int64_t dim, std::int64_t start, std::int64_t length) {
        if (t.is_float()) return T(t.value.narrow(dim, start, length));
        py::tuple at(normalize_axis("narrow", dim, t.shape().size()) + 1);
        for (std::size_t d = 0; d + 1 < at.size(); ++d) at[d] = py::slice(py::none(), py::none(), py::none());
        const auto n = static_cast<std::int64_t>(t.shape()[at.size() - 1]);
        if (start < 0) start += n;
        at[at.size() - 1] = py::slice(static_cast<py::ssize_t>(start), static_cast<py::ssize_t>(start + length), 1);
        return py::cast(t).attr("__getitem__")(at).cast<PyTensor>();
    }, A("dim"), A("start"), A("length"));
    tensor.def("unflatten", [](const PyTensor& t, std::int64_t dim, std::vector<std::ptrdiff_t> sizes) {
        if (t.is_float()) return T(t.value.unflatten(dim, sizes));
        const Shape s = t.shape();
        const std::size_t d = normalize_axis("unflatten", dim, s.size());
        std::vector<std::ptrdiff_t> spec(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(d));
        spec.insert(spec.end(), sizes.begin(), sizes.end());
        spec.insert(spec.end(), s.begin() + static_cast<std::ptrdiff_t>(d) + 1, s.end());
        return reshape_any(t, spec);
    }, A("dim"), A("sizes"));
    both("diagonal", [](const PyTensor& t, std::int64_t offset, std::int64_t dim1, std::int64_t dim2) {
        if (!t.is_float()) throw py::type_error("xgrad: diagonal() of an int64 or bool tensor is not supported yet");
        return T(t.value.diagonal(offset, dim1, dim2));
    }, A("offset") = 0, A("dim1") = 0, A("dim2") = 1);
    both("as_strided", [](const PyTensor& t, std::vector<std::size_t> size, std::vector<std::size_t> stride,
                          std::optional<std::size_t> storage_offset) {
        if (!t.is_float()) throw py::type_error("xgrad: as_strided() of an int64 or bool tensor is not supported yet");
        return T(t.value.as_strided(std::move(size), std::move(stride), storage_offset));
    }, A("size"), A("stride"), A("storage_offset") = py::none());
    tensor.def("expand", [](const PyTensor& t, py::args sizes) {
        const std::vector<std::ptrdiff_t> spec = dims_arg(sizes);
        if (t.is_float()) return T(t.value.expand(spec));
        Shape shape;   // ids and masks: a copy, stretched
        const Shape s = t.shape();
        for (std::size_t i = 0; i < spec.size(); ++i) {
            const std::size_t lead = spec.size() - s.size();
            shape.push_back(spec[i] == -1 && i >= lead ? s[i - lead] : static_cast<std::size_t>(spec[i]));
        }
        if (t.dtype == DType::int64) return PyTensor::of(IdArray(xt::broadcast(*t.ints, shape)));
        return PyTensor::of(BoolArray(xt::broadcast(*t.bools, shape)));
    });
    tensor.def("expand_as", [](const PyTensor& t, const PyTensor& other) {
        const Shape s = other.shape();
        return py::cast(t).attr("expand")(py::tuple(py::cast(s))).cast<PyTensor>();
    });
    m.def("cat", &cat, A("tensors"), A("dim") = 0);
    m.attr("concat") = m.attr("cat");
    m.attr("concatenate") = m.attr("cat");
    m.def("stack", &stack_any, A("tensors"), A("dim") = 0);
    both("split", &split_any, A("split_size_or_sections"), A("dim") = 0);
    both("chunk", [](const PyTensor& t, std::int64_t chunks, std::int64_t dim) {
        XGRAD_CHECK(chunks > 0, "chunk expects `chunks` to be greater than 0, got: ", chunks);
        const std::size_t n = t.shape()[normalize_axis("chunk", dim, t.shape().size())];
        const auto size = static_cast<std::int64_t>((n + static_cast<std::size_t>(chunks) - 1) / static_cast<std::size_t>(chunks));
        return split_any(t, py::int_(std::max<std::int64_t>(size, 1)), dim);
    }, A("chunks"), A("dim") = 0);
    both("select", [](const PyTensor& t, std::int64_t dim, std::int64_t index) {
        XGRAD_CHECK(!t.shape().empty(), "select: cannot be applied to a 0-d tensor");
        const std::size_t axis = normalize_axis("select", dim, t.shape().size());   // while 64-bit
        if (t.is_float()) return T(xgrad::select(t.f(), static_cast<int>(axis), index));
        // ids and masks: the same slice as x[:, ..., index] reads
        py::tuple at(axis + 1);
        for (std::size_t d = 0; d < axis; ++d) at[d] = py::slice(py::none(), py::none(), py::none());
        at[axis] = py::int_(index);
        return py::cast(t).attr("__getitem__")(at).cast<PyTensor>();
    }, A("dim"), A("index"));
    both("tril", [](const PyTensor& t, std::int64_t diagonal) {
        PyTensor out;
        Tensor f = tri(t, diagonal, true, &out);
        return t.is_float() ? T(f) : out;
    }, A("diagonal") = 0);
    both("triu", [](const PyTensor& t, std::int64_t diagonal) {
        PyTensor out;
        Tensor f = tri(t, diagonal, false, &out);
        return t.is_float() ? T(f) : out;
    }, A("diagonal") = 0);

    // ---- reductions ----
    // each takes torch's numpy aliases too, axis= and keepdims= (makemore writes N.sum(1, keepdims=True))
    const auto aliases = [&](auto reduce) {
        return [reduce](const PyTensor& t, py::object dim, bool keepdim, py::object axis, std::optional<bool> keepdims) {
            return reduce(t, dim_or_axis(std::move(dim), std::move(axis)), keepdims.value_or(keepdim));
        };
    };
    const auto reduction = [&](const char* name, auto reduce) {
        both(name, aliases(reduce), A("dim") = py::none(), A("keepdim") = false, py::kw_only(), A("axis") = py::none(),
             A("keepdims") = py::none());
    };
    reduction("sum", [](const PyTensor& t, py::object dim, bool keepdim) { return sum_any(t, dim, keepdim); });
    reduction("mean", [](const PyTensor& t, py::object dim, bool keepdim) { return mean_any(t, dim, keepdim); });
    reduction("max", [](const PyTensor& t, py::object dim, bool keepdim) { return max_any(t, dim, keepdim, true); });
    reduction("min", [](const PyTensor& t, py::object dim, bool keepdim) { return max_any(t, dim, keepdim, false); });
    reduction("argmax", [](const PyTensor& t, py::object dim, bool keepdim) { return argmax_any(t, dim, keepdim, true); });
    reduction("argmin", [](const PyTensor& t, py::object dim, bool keepdim) { return argmax_any(t, dim, keepdim, false); });
    both("var", [](const PyTensor& t, py::object dim, bool unbiased, bool keepdim, py::object axis, std::optional<bool> keepdims) {
        Tensor x = t.f();
        return T(var(x, axes_arg(dim_or_axis(std::move(dim), std::move(axis)), x.dim()), unbiased, keepdims.value_or(keepdim)));
    }, A("dim") = py::none(), A("unbiased") = true, A("keepdim") = false, py::kw_only(), A("axis") = py::none(),
       A("keepdims") = py::none());
    m.def("_std", [](const PyTensor& t, py::object dim, bool unbiased, bool keepdim, py::object axis, std::optional<bool> keepdims) {
        Tensor x = t.f();   // xgrad.std and Tensor.std (xgrad/__init__.py)
        return T(std_dev(x, axes_arg(dim_or_axis(std::move(dim), std::move(axis)), x.dim()), unbiased, keepdims.value_or(keepdim)));
    }, A("input"), A("dim") = py::none(), A("unbiased") = true, A("keepdim") = false, py::kw_only(), A("axis") = py::none(),
       A("keepdims") = py::none());
    both("softmax", [](const PyTensor& x, std::int64_t dim) {
        return T(along(x.f(), dim, [](const Tensor& v) { return softmax(v); }));
    }, A("dim"));
    both("log_softmax", [](const PyTensor& x, std::int64_t dim) {
        return T(along(x.f(), dim, [](const Tensor& v) { return log_softmax(v); }));
    }, A("dim"));
    both("topk", [](const PyTensor& x, std::size_t k, std::int64_t dim, bool largest, bool) {
        Tensor v = x.f();
        const std::size_t n = v.dim(), axis = normalize_axis("topk", dim, std::max<std::size_t>(n, 1));
        if (n == 0) v = reshape(v, {1});
        const int a = static_cast<int>(axis), last = static_cast<int>(std::max<std::size_t>(n, 1) - 1);
        auto [values, indices] = topk(a == last ? v : transpose(v, a, last), k, largest);
        PyTensor ids = PyTensor::of(std::move(indices));
        if (a != last) values = transpose(values, a, last), ids = transpose_any(ids, a, last);
        return return_types("topk")(T(values), ids);
    }, A("k"), A("dim") = -1, A("largest") = true, A("sorted") = true);
    // A generator= argument (an xgrad.Generator) draws from it, else from the default generator
    auto gen = [](py::handle g) -> Generator& { return g.is_none() ? default_generator() : g.cast<Generator&>(); };
    both("multinomial", [gen](const PyTensor& probs, std::size_t num_samples, bool replacement, py::object generator) {
        return PyTensor::of(multinomial(probs.f(), num_samples, replacement, gen(generator)));
    }, A("num_samples"), A("replacement") = false, A("generator") = py::none());

    // ---- creation, for the Python wrappers in xgrad/__init__.py ----
    m.def("_zeros", [](const Shape& s, DType d) {
        if (d == DType::int64) return PyTensor::of(IdArray(xt::zeros<std::int64_t>(s)));
        if (d == DType::bool_) return PyTensor::of(BoolArray(xt::zeros<bool>(s)));
        if (d == DType::float64) return T(zeros(s, Dtype::Double));
        return T(zeros(s));
    });
    m.def("_full", [](const Shape& s, double v, DType d) {
        if (d == DType::int64) return PyTensor::of(IdArray(xt::ones<std::int64_t>(s) * static_cast<std::int64_t>(v)));
        if (d == DType::bool_) return PyTensor::of(BoolArray(xt::ones<bool>(s) && (v != 0.0)));
        if (d == DType::float64) return T(full(s, v, Dtype::Double));
        return T(full(s, static_cast<float>(v)));
    });
    m.def("_randn", [gen](const Shape& s, py::object g) {
        Array a = Array::from_shape(s);
        gen(g).normal_(a);
        return T(Tensor(std::move(a)));
    });
    m.def("_rand", [gen](const Shape& s, py::object g) {
        Array a = Array::from_shape(s);
        gen(g).uniform_(a);
        return T(Tensor(std::move(a)));
    });
    m.def("_randint", [gen](std::int64_t low, std::int64_t high, const Shape& s, py::object g) {
        XGRAD_CHECK(high > low, "random_ expects 'from' to be less than 'to', but got from=", low, " >= to=", high);
        Generator& rng = gen(g);
        IdArray out = IdArray::from_shape(s);
        for (auto& v : out) v = low + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(high - low)));
        return PyTensor::of(std::move(out));
    });
    m.def("_randperm", [gen](std::size_t n, py::object g) {
        Generator& rng = gen(g);
        IdArray out = IdArray::from_shape({n});
        for (std::size_t i = 0; i < n; ++i) out(i) = static_cast<std::int64_t>(i);
        for (std::size_t i = n; i-- > 1;) std::swap(out(i), out(rng.below(i + 1)));   // Fisher-Yates
        return PyTensor::of(std::move(out));
    });
    m.def("_arange", [](double start, double end, double step, DType d) {
        XGRAD_CHECK(step != 0, "arange: step must be nonzero");
        const double count = std::ceil((end - start) / step);
        XGRAD_CHECK(std::isfinite(count), "arange: unsupported range: ", start, " -> ", end);
        const std::size_t n = count > 0 ? static_cast<std::size_t>(count) : 0;
        shape_numel(Shape{n}, "arange");
        if (d == DType::int64) {
            IdArray out = IdArray::from_shape({n});
            for (std::size_t i = 0; i < n; ++i) out(i) = static_cast<std::int64_t>(start + step * static_cast<double>(i));
            return PyTensor::of(std::move(out));
        }
        if (d == DType::float64) {
            Array64 out = Array64::from_shape({n});
            for (std::size_t i = 0; i < n; ++i) out(i) = start + step * static_cast<double>(i);
            return T(Tensor(std::move(out)));
        }
        Array out = Array::from_shape({n});
        for (std::size_t i = 0; i < n; ++i) out(i) = static_cast<float>(start + step * static_cast<double>(i));
        return T(Tensor(std::move(out)));
    });
    m.def("_tensor", [](py::handle data, py::object dtype) {
        return to_tensor(data, dtype.is_none() ? std::nullopt : std::optional(dtype_arg(dtype)));
    });
    m.def("_dtype", [](py::handle d) { return dtype_arg(d); });
    m.def("_shape", [](const char* op, py::args args) { return shape_arg(op, args); });
    m.def("_check_device", [](py::handle device) { check_device(device); });
}

}  // namespace xgrad::python
