// The ops of core/ops.h for Python, as Tensor methods, operators and xgrad.* functions, with
// PyTorch's names, dims and numbers: one line each in the table at the end (table.h says how a line
// reads). Every dtype goes to the core as itself, which promotes, computes integers exactly and
// refuses what torch refuses; this file turns Python's arguments into tensors.
#include <cmath>

#include "python/src/table.h"

namespace xgrad::python {

namespace {

// The shape `spec` (one -1 inferred) for `numel` elements, or PyTorch's error.
std::vector<std::ptrdiff_t> infer_shape(const std::vector<std::int64_t>& spec, std::size_t numel)
{
    std::size_t known = 1;
    std::ptrdiff_t inferred = -1;
    for (std::size_t i = 0; i < spec.size(); ++i) {
        if (spec[i] == -1 && inferred < 0) inferred = static_cast<std::ptrdiff_t>(i);
        else if (spec[i] < 0) throw std::runtime_error("invalid shape dimension " + std::to_string(spec[i]));
        else known *= static_cast<std::size_t>(spec[i]);
    }
    std::vector<std::ptrdiff_t> out(spec.begin(), spec.end());
    if (inferred >= 0 && known > 0 && numel % known == 0) out[static_cast<std::size_t>(inferred)] = static_cast<std::ptrdiff_t>(numel / known);
    else if (inferred >= 0 || known != numel) {
        throw std::runtime_error("shape '" + shape_str(spec) + "' is invalid for input of size " + std::to_string(numel));
    }
    return out;
}

int axis_of(const char* op, std::int64_t dim, std::size_t ndim) { return static_cast<int>(normalize_axis(op, dim, ndim)); }

std::vector<Tensor> split_any(const Tensor& t, py::handle sizes, std::int64_t dim)
{
    const Shape s = t.shape();
    const std::size_t axis = normalize_axis("split", dim, s.size());
    if (PyIndex_Check(sizes.ptr())) {
        const std::int64_t size = index_value(sizes);
        XGRAD_CHECK(size > 0 || s[axis] == 0, "split: split_size must be positive, got ", size);
        return split(t, static_cast<std::size_t>(std::max<std::int64_t>(size, 1)), static_cast<int>(axis));
    }
    std::vector<std::int64_t> lengths;
    std::int64_t total = 0;
    for (py::handle h : sizes) total += lengths.emplace_back(h.cast<std::int64_t>());
    XGRAD_CHECK(total == static_cast<std::int64_t>(s[axis]), "split_with_sizes expects split_sizes to sum exactly to ", s[axis],
                " (input tensor's size at dimension ", axis, "), but got split_sizes=", shape_str(lengths));
    return t.split_with_sizes(lengths, static_cast<std::ptrdiff_t>(axis));
}

// ---- arithmetic ---------------------------------------------------------------------------------------
Tensor tensor_binary(const Tensor& a, const Tensor& b, Bin op)
{
    switch (op) {
    case Bin::add: return add(a, b);
    case Bin::sub: return sub(a, b);
    case Bin::mul: return mul(a, b);
    case Bin::div: return div(a, b);
    case Bin::pow: return pow(a, b);
    case Bin::floordiv: return floor_divide(a, b);
    case Bin::mod: return remainder(a, b);
    }
    throw std::logic_error("tensor_binary");
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
    return reflected ? tensor_binary(st, x, op) : tensor_binary(x, st, op);
}

bool is_number(py::handle h)
{
    return PyFloat_Check(h.ptr()) || PyLong_Check(h.ptr()) ||
           (!tensor_of(h) && !py::isinstance<py::array>(h) && PyNumber_Check(h.ptr()) && py::hasattr(h, "dtype"));   // numpy scalars
}

// the other operand of an operator: a tensor, a number (as torch's 0-D operand), a list or an array;
// nullopt for anything else (the operator then returns NotImplemented)
std::optional<Tensor> operand(py::handle other, const Tensor& x)
{
    if (const PyTensor* b = tensor_of(other)) return b->value;
    if (is_number(other)) return scalar_operand(other, x);
    if (py::isinstance<py::array>(other) || py::isinstance<py::list>(other)) return to_tensor(other).value;
    return std::nullopt;
}

// a Python or numpy int or float (no bool) as a double
std::optional<double> real_number(py::handle h)
{
    if (PyFloat_CheckExact(h.ptr())) return PyFloat_AS_DOUBLE(h.ptr());
    if (PyBool_Check(h.ptr())) return std::nullopt;
    if (PyFloat_Check(h.ptr()) || PyLong_Check(h.ptr())) {
        const double v = PyFloat_Check(h.ptr()) ? PyFloat_AsDouble(h.ptr()) : PyLong_AsDouble(h.ptr());
        if (v == -1.0 && PyErr_Occurred()) throw py::error_already_set();   // an OverflowError past a double
        return v;
    }
    if (!is_number(h)) return std::nullopt;   // numpy scalars: their ints and floats, not their bools
    const char kind = py::str(h.attr("dtype").attr("kind")).cast<std::string>()[0];
    if (kind != 'f' && kind != 'i' && kind != 'u') return std::nullopt;
    return py::float_(py::reinterpret_borrow<py::object>(h)).cast<double>();
}

py::object not_implemented() { return py::reinterpret_borrow<py::object>(Py_NotImplemented); }

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

// dim=, or its numpy alias axis= (one of them); keepdim=, or its alias keepdims=
// (makemore writes N.sum(1, keepdims=True))
py::handle dim_or_axis(py::handle dim, py::handle axis)
{
    if (axis.is_none()) return dim;
    if (!dim.is_none()) throw py::type_error("got both dim= and its alias axis=; pass one of them");
    return axis;
}

py::object return_types(const char* name)
{
    static py::dict* types = new py::dict();   // leaked on purpose: never destroyed after the interpreter
    if (!types->contains(name)) {
        (*types)[name] = py::module_::import("collections").attr("namedtuple")(name, py::make_tuple("values", "indices"));
    }
    return (*types)[name];
}

py::object max_any(const Tensor& t, py::handle dim, bool keepdim, bool largest)
{
    const char* name = largest ? "max" : "min";
    if (dim.is_none()) return py::reinterpret_steal<py::object>(to_python(largest ? max(t) : min(t)));   // ties share the gradient
    const int axis = axis_of(name, dim.cast<std::int64_t>(), t.dim());
    Tensor values = largest ? max(t, axis, keepdim) : min(t, axis, keepdim);
    Tensor indices = largest ? argmax(t, axis, keepdim) : argmin(t, axis, keepdim);
    return return_types(name)(PyTensor::of(values), PyTensor::of(indices));
}

Tensor arg_any(const Tensor& t, py::handle dim, bool keepdim, bool largest)
{
    std::optional<int> axis;
    if (!dim.is_none()) axis = axis_of("argmax", dim.cast<std::int64_t>(), std::max<std::size_t>(t.dim(), 1));
    return largest ? argmax(t, axis, keepdim) : argmin(t, axis, keepdim);
}

Tensor reduced(const Tensor& t, py::handle dim, py::handle axis, bool keepdim, std::optional<bool> keepdims,
               Tensor (*all)(const Tensor&), Tensor (*along)(const Tensor&, std::vector<int>, bool))
{
    const py::handle d = dim_or_axis(dim, axis);
    keepdim = keepdims.value_or(keepdim);
    return d.is_none() && !keepdim ? all(t) : along(t, axes_arg(d, t.dim()), keepdim);
}
Tensor sum_all(const Tensor& t) { return sum(t); }
Tensor sum_along(const Tensor& t, std::vector<int> axes, bool keepdim) { return sum(t, std::move(axes), keepdim); }
Tensor mean_all(const Tensor& t) { return mean(t); }
Tensor mean_along(const Tensor& t, std::vector<int> axes, bool keepdim) { return mean(t, std::move(axes), keepdim); }

std::pair<Tensor, Tensor> topk_along(const Tensor& x, std::int64_t k, std::int64_t dim, bool largest)
{
    XGRAD_CHECK(k >= 0, "topk: selected index k out of range (k=", k, ")");
    Tensor v = x;
    const std::size_t n = v.dim();
    const int a = axis_of("topk", dim, std::max<std::size_t>(n, 1)), last = static_cast<int>(std::max<std::size_t>(n, 1) - 1);
    if (n == 0) v = reshape(v, {1});
    auto [values, indices] = topk(a == last ? v : transpose(v, a, last), static_cast<std::size_t>(k), largest);
    if (a != last) values = transpose(values, a, last), indices = transpose(indices, a, last);
    return {values, indices};
}

Tensor joined(const std::vector<Tensor>& xs, std::int64_t dim, bool new_axis)
{
    const char* name = new_axis ? "stack" : "cat";
    XGRAD_CHECK(!xs.empty(), name, ": expected a non-empty list of Tensors");
    const int axis = axis_of(name, dim, xs[0].dim() + (new_axis ? 1 : 0));
    return new_axis ? stack(xs, axis) : concat(xs, axis);
}

Tensor where_of(const PyTensor& condition, py::handle a, py::handle b)
{
    const Tensor ta = tensor_of(a) || !tensor_of(b) ? to_tensor(a).value : scalar_operand(a, tensor_of(b)->value);
    return xgrad::where(condition.mask(), ta, scalar_operand(b, ta));
}

std::optional<double> clamp_bound(py::handle b, const char* name)
{
    if (b.is_none()) return std::nullopt;
    if (const PyTensor* t = tensor_of(b); t && t->numel() == 1) return t->value.item<double>();
    if (!PyNumber_Check(b.ptr()) || PyUnicode_Check(b.ptr()) || tensor_of(b)) {
        throw py::type_error(std::string("clamp(): argument '") + name + "' must be a number, not " + Py_TYPE(b.ptr())->tp_name);
    }
    return b.cast<double>();
}

// A generator= argument (an xgrad.Generator) draws from it, else from the default generator
Generator& generator_of(py::handle g) { return g.is_none() ? default_generator() : g.cast<Generator&>(); }

// ids drawn into a fresh int64 tensor (its allocation checks the size: a huge one is an error, not an abort)
std::pair<Tensor, std::int64_t*> int64s(const Shape& s)
{
    Tensor out = empty(s, kInt64);
    return {out, const_cast<std::int64_t*>(out.data_ptr<std::int64_t>())};
}

Tensor randint(std::int64_t low, std::int64_t high, const Shape& s, Generator& rng)
{
    XGRAD_CHECK(high > low, "random_ expects 'from' to be less than 'to', but got from=", low, " >= to=", high);
    auto [out, v] = int64s(s);
    for (std::size_t i = 0; i < out.numel(); ++i) v[i] = low + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(high - low)));
    return out;
}

Tensor randperm(std::int64_t count, Generator& rng)
{
    XGRAD_CHECK(count >= 0, "randperm: n must be non-negative, got ", count);
    const auto n = static_cast<std::size_t>(count);
    auto [out, v] = int64s({n});
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::int64_t>(i);
    for (std::size_t i = n; i-- > 1;) std::swap(v[i], v[rng.below(i + 1)]);   // Fisher-Yates
    return out;
}

Shape shape_of(const std::vector<std::int64_t>& sizes) { return shape_from("shape", py::cast(sizes)); }

// x op other for the named forms (x.add(y), xgrad.mul(x, 2)), which the operators share
template <Bin op>
struct Named {
    py::object operator()(const PyTensor& a, py::handle other) const { return arithmetic(a, other, op, false); }
};

template <int op>
struct Compared {
    py::object operator()(const PyTensor& a, py::handle other) const { return compare(a, other, op); }
};

template <Tensor (*f)(const Tensor&, const Tensor&)>
struct Logical {
    Tensor operator()(const Tensor& a, py::handle other) const { return f(a, scalar_operand(other, a)); }
};

// ---- the table --------------------------------------------------------------------------------------------
const Def ops[] = {
    // ---- arithmetic (the operators + - * / // % ** are the type's slots, on `arithmetic` below) ----
    {"add(input, other, *, alpha=1)", both, [](const PyTensor& a, py::handle b, double alpha) {
         return alpha == 1.0 ? arithmetic(a, b, Bin::add, false) : arithmetic(a, py::cast(PyTensor::of(mul(to_tensor(b).value, alpha))), Bin::add, false);
     }},
    {"sub(input, other)", both, Named<Bin::sub>{}},
    {"mul(input, other)", both, Named<Bin::mul>{}},
    {"div(input, other)", both, Named<Bin::div>{}},
    {"floor_divide(input, other)", both, Named<Bin::floordiv>{}},
    {"remainder(input, other)", both, Named<Bin::mod>{}},
    {"pow(input, exponent)", both, [](py::handle base, py::handle exponent) {   // torch.pow(2.0, x) too
         if (const PyTensor* b = tensor_of(base)) return arithmetic(*b, exponent, Bin::pow, false);
         if (const PyTensor* e = tensor_of(exponent)) return arithmetic(*e, base, Bin::pow, true);
         throw py::type_error(std::string("pow(): expected a Tensor as input or exponent, got ") + Py_TYPE(base.ptr())->tp_name + " and " +
                              Py_TYPE(exponent.ptr())->tp_name);
     }},
    {"eq(input, other)", both, Compared<Py_EQ>{}},
    {"ne(input, other)", both, Compared<Py_NE>{}},
    {"lt(input, other)", both, Compared<Py_LT>{}},
    {"le(input, other)", both, Compared<Py_LE>{}},
    {"gt(input, other)", both, Compared<Py_GT>{}},
    {"ge(input, other)", both, Compared<Py_GE>{}},
    {"bitwise_and(input, other)", both, Logical<bitwise_and>{}},
    {"bitwise_or(input, other)", both, Logical<bitwise_or>{}},
    {"bitwise_xor(input, other)", both, Logical<bitwise_xor>{}},
    {"logical_and(input, other)", both, Logical<logical_and>{}},
    {"logical_or(input, other)", both, Logical<logical_or>{}},
    {"logical_xor(input, other)", both, Logical<logical_xor>{}},
    {"logical_not(input)", both, [](const Tensor& x) { return logical_not(x); }},
    {"maximum(input, other)", both, [](const Tensor& a, const Tensor& b) { return maximum(a, b); }},
    {"minimum(input, other)", both, [](const Tensor& a, const Tensor& b) { return minimum(a, b); }},
    {"matmul(input, other)", both, [](const Tensor& a, const Tensor& b) { return matmul_releasing_gil(a, b); }},

    // ---- element-wise ----
    {"exp(input)", both, [](const Tensor& x) { return exp(x); }},
    {"log(input)", both, [](const Tensor& x) { return log(x); }},
    {"sqrt(input)", both, [](const Tensor& x) { return sqrt(x); }},
    {"rsqrt(input)", both, [](const Tensor& x) { return rdiv(1.0f, sqrt(x)); }},   // NaN at -inf, and in its gradient
    {"tanh(input)", both, [](const Tensor& x) { return tanh(x); }},
    {"sin(input)", both, [](const Tensor& x) { return sin(x); }},
    {"cos(input)", both, [](const Tensor& x) { return cos(x); }},
    {"sigmoid(input)", both, [](const Tensor& x) { return sigmoid(x); }},
    {"relu(input)", both, [](const Tensor& x) { return relu(x); }},
    {"neg(input)", both, [](const Tensor& x) { return neg(x); }},
    {"abs(input)", both, [](const Tensor& x) { return xgrad::abs(x); }},
    {"square(input)", both, [](const Tensor& x) {   // torch's pow(x, 2): a bool tensor squares as int64
         const Tensor v = x.dtype() == kBool ? x.to(kInt64) : x;
         return mul(v, v);
     }},
    // integers keep their dtype between int bounds; a float bound makes them the default float dtype, as torch's
    {"clamp(input, min=None, max=None)", both, [](const PyTensor& x, py::handle min, py::handle max) {
         const bool float_bound = PyFloat_Check(min.ptr()) || PyFloat_Check(max.ptr());
         return xgrad::clamp(float_bound ? x.f() : x.value, clamp_bound(min, "min"), clamp_bound(max, "max"));
     }},
    {"masked_fill(input, mask, value)", both, [](const Tensor& x, const PyTensor& mask, double value) { return masked_fill(x, mask.mask(), value); }},
    // where(condition, input, other): a number beside a tensor is torch's 0-D operand; x.where(condition, y) the same
    {"where(condition, input, other)", function, [](const PyTensor& condition, py::handle a, py::handle b) { return where_of(condition, a, b); }},
    {"where(input, condition, other)", method, [](py::handle a, const PyTensor& condition, py::handle b) { return where_of(condition, a, b); }},

    // ---- shape: views of any dtype (the core's) ----
    {"view(input, *shape)", method, [](const Tensor& t, const std::vector<std::int64_t>& shape) { return t.view(infer_shape(shape, t.numel())); }},
    {"reshape(input, *shape)", both, [](const Tensor& t, const std::vector<std::int64_t>& shape) { return t.reshape(infer_shape(shape, t.numel())); }},
    {"permute(input, *dims)", both, [](const Tensor& t, const std::vector<std::int64_t>& dims) {
         std::vector<int> perm;   // each dim checked while 64-bit: 2**32 must not wrap to 0
         for (std::int64_t d : dims) perm.push_back(axis_of("permute", d, t.dim()));
         return permute(t, perm);
     }},
    {"transpose(input, dim0, dim1)", both, [](const Tensor& t, std::int64_t d0, std::int64_t d1) {
         return transpose(t, axis_of("transpose", d0, t.dim()), axis_of("transpose", d1, t.dim()));
     }},
    {"t(input)", both, [](const Tensor& t) {
         if (t.dim() > 2) throw std::runtime_error("t() expects a tensor with <= 2 dimensions, but self is " + std::to_string(t.dim()) + "D");
         return t.t();
     }},
    {"unsqueeze(input, dim)", both, [](const Tensor& t, std::int64_t dim) { return t.unsqueeze(dim); }},
    {"squeeze(input, dim=None)", both, [](const Tensor& t, std::optional<std::int64_t> dim) { return dim ? t.squeeze(*dim) : t.squeeze(); }},
    {"flatten(input, start_dim=0, end_dim=-1)", both, [](const Tensor& t, std::int64_t start, std::int64_t end) { return t.flatten(start, end); }},
    {"unflatten(input, dim, sizes)", both, [](const Tensor& t, std::int64_t dim, const std::vector<std::int64_t>& sizes) {
         return t.unflatten(dim, std::vector<std::ptrdiff_t>(sizes.begin(), sizes.end()));
     }},
    {"contiguous(input)", method, [](py::handle self) {
         const Tensor& t = tensor_of(self)->value;
         return t.is_contiguous() ? py::reinterpret_borrow<py::object>(self) : py::reinterpret_steal<py::object>(to_python(t.contiguous()));
     }},
    {"is_contiguous(input)", method, [](const Tensor& t) { return t.is_contiguous(); }},
    {"clone(input)", both, [](const Tensor& t) { return t.clone(); }},
    {"unbind(input, dim=0)", both, [](const Tensor& t, std::int64_t dim) { return t.unbind(dim); }},
    {"narrow(input, dim, start, length)", both, [](const Tensor& t, std::int64_t dim, std::int64_t start, std::int64_t length) {
         return t.narrow(dim, start, length);
     }},
    {"select(input, dim, index)", both, [](const Tensor& t, std::int64_t dim, std::int64_t index) {
         XGRAD_CHECK(t.dim() > 0, "select: cannot be applied to a 0-d tensor");
         return xgrad::select(t, axis_of("select", dim, t.dim()), index);
     }},
    {"diagonal(input, offset=0, dim1=0, dim2=1)", both, [](const Tensor& t, std::int64_t offset, std::int64_t dim1, std::int64_t dim2) {
         return t.diagonal(offset, dim1, dim2);
     }},
    {"as_strided(input, size, stride, storage_offset=None)", both,
     [](const Tensor& t, const std::vector<std::int64_t>& size, const std::vector<std::int64_t>& stride, std::optional<std::int64_t> offset) {
         for (std::int64_t v : size) XGRAD_CHECK(v >= 0, "as_strided: negative size ", v);
         for (std::int64_t v : stride) XGRAD_CHECK(v >= 0, "as_strided: negative strides are not supported, got ", v);
         XGRAD_CHECK(offset.value_or(0) >= 0, "as_strided: negative storage offset ", *offset);
         std::optional<std::size_t> o;
         if (offset) o = static_cast<std::size_t>(*offset);
         return t.as_strided(std::vector<std::size_t>(size.begin(), size.end()), std::vector<std::size_t>(stride.begin(), stride.end()), o);
     }},
    {"expand(input, *sizes)", method, [](const Tensor& t, const std::vector<std::int64_t>& sizes) {
         return t.expand(std::vector<std::ptrdiff_t>(sizes.begin(), sizes.end()));
     }},
    {"expand_as(input, other)", method, [](const Tensor& t, const Tensor& other) {
         const Shape s = other.shape();
         return t.expand(std::vector<std::ptrdiff_t>(s.begin(), s.end()));
     }},
    {"cat(tensors, dim=0)", function, [](const std::vector<Tensor>& xs, std::int64_t dim) { return joined(xs, dim, false); }},
    {"stack(tensors, dim=0)", function, [](const std::vector<Tensor>& xs, std::int64_t dim) { return joined(xs, dim, true); }},
    {"split(input, split_size_or_sections, dim=0)", both, [](const Tensor& t, py::handle sizes, std::int64_t dim) { return split_any(t, sizes, dim); }},
    {"chunk(input, chunks, dim=0)", both, [](const Tensor& t, std::int64_t chunks, std::int64_t dim) {
         XGRAD_CHECK(chunks > 0, "chunk expects `chunks` to be greater than 0, got: ", chunks);
         const std::size_t n = t.shape()[normalize_axis("chunk", dim, t.dim())];
         const auto size = static_cast<std::int64_t>((n + static_cast<std::size_t>(chunks) - 1) / static_cast<std::size_t>(chunks));
         return split_any(t, py::int_(std::max<std::int64_t>(size, 1)), dim);
     }},
    {"flip(input, *dims)", both, [](const Tensor& t, const std::vector<std::int64_t>& dims) { return flip(t, dims); }},
    {"roll(input, shifts, dims=None)", both, [](const Tensor& t, const std::vector<std::int64_t>& shifts, std::optional<std::vector<std::int64_t>> dims) {
         return roll(t, shifts, dims.value_or(std::vector<std::int64_t>{}));
     }},
    {"repeat(input, *repeats)", method, [](const Tensor& t, const std::vector<std::int64_t>& repeats) { return repeat(t, repeats); }},
    {"gather(input, dim, index)", both, [](const Tensor& t, std::int64_t dim, const PyTensor& index) {
         return gather(t, dim, index.ids("gather"));
     }},
    {"tril(input, diagonal=0)", both, [](const Tensor& t, std::int64_t diagonal) { return tril(t, diagonal); }},
    {"triu(input, diagonal=0)", both, [](const Tensor& t, std::int64_t diagonal) { return triu(t, diagonal); }},

    // ---- reductions: each takes torch's numpy aliases too, axis= and keepdims= ----
    {"sum(input, dim=None, keepdim=False, *, axis=None, keepdims=None)", both,
     [](const Tensor& t, py::handle dim, bool keepdim, py::handle axis, std::optional<bool> keepdims) {
         return reduced(t, dim, axis, keepdim, keepdims, &sum_all, &sum_along);
     }},
    {"mean(input, dim=None, keepdim=False, *, axis=None, keepdims=None)", both,
     [](const Tensor& t, py::handle dim, bool keepdim, py::handle axis, std::optional<bool> keepdims) {
         return reduced(t, dim, axis, keepdim, keepdims, &mean_all, &mean_along);
     }},
    {"max(input, dim=None, keepdim=False, *, axis=None, keepdims=None)", both,
     [](const Tensor& t, py::handle dim, bool keepdim, py::handle axis, std::optional<bool> keepdims) {
         return max_any(t, dim_or_axis(dim, axis), keepdims.value_or(keepdim), true);
     }},
    {"min(input, dim=None, keepdim=False, *, axis=None, keepdims=None)", both,
     [](const Tensor& t, py::handle dim, bool keepdim, py::handle axis, std::optional<bool> keepdims) {
         return max_any(t, dim_or_axis(dim, axis), keepdims.value_or(keepdim), false);
     }},
    {"argmax(input, dim=None, keepdim=False, *, axis=None, keepdims=None)", both,
     [](const Tensor& t, py::handle dim, bool keepdim, py::handle axis, std::optional<bool> keepdims) {
         return arg_any(t, dim_or_axis(dim, axis), keepdims.value_or(keepdim), true);
     }},
    {"argmin(input, dim=None, keepdim=False, *, axis=None, keepdims=None)", both,
     [](const Tensor& t, py::handle dim, bool keepdim, py::handle axis, std::optional<bool> keepdims) {
         return arg_any(t, dim_or_axis(dim, axis), keepdims.value_or(keepdim), false);
     }},
    {"var(input, dim=None, unbiased=True, keepdim=False, *, axis=None, keepdims=None)", both, floating,
     [](const Tensor& x, py::handle dim, bool unbiased, bool keepdim, py::handle axis, std::optional<bool> keepdims) {
         return var(x, axes_arg(dim_or_axis(dim, axis), x.dim()), unbiased, keepdims.value_or(keepdim));
     }},
    {"std(input, dim=None, unbiased=True, keepdim=False, *, axis=None, keepdims=None)", both, floating,
     [](const Tensor& x, py::handle dim, bool unbiased, bool keepdim, py::handle axis, std::optional<bool> keepdims) {
         return std_dev(x, axes_arg(dim_or_axis(dim, axis), x.dim()), unbiased, keepdims.value_or(keepdim));
     }},
    {"softmax(input, dim)", both, floating, [](const Tensor& x, std::int64_t dim) {
         return softmax(x, axis_of("softmax", dim, std::max<std::size_t>(x.dim(), 1)));
     }},
    {"log_softmax(input, dim)", both, floating, [](const Tensor& x, std::int64_t dim) {
         return log_softmax(x, axis_of("log_softmax", dim, std::max<std::size_t>(x.dim(), 1)));
     }},
    {"topk(input, k, dim=-1, largest=True, sorted=True)", both, [](const Tensor& x, std::int64_t k, std::int64_t dim, bool largest, bool) {
         auto [values, indices] = topk_along(x, k, dim, largest);
         return return_types("topk")(PyTensor::of(values), PyTensor::of(indices));
     }},
    {"multinomial(input, num_samples, replacement=False, *, generator=None)", both, floating,
     [](const Tensor& probs, std::int64_t num_samples, bool replacement, py::handle generator) {
         XGRAD_CHECK(num_samples > 0, "multinomial: cannot sample n_sample <= 0 samples, got ", num_samples);
         return multinomial(probs, static_cast<std::size_t>(num_samples), replacement, generator_of(generator));
     }},

    // ---- creation, for the Python wrappers in xgrad/__init__.py ----
    {"_zeros(size, dtype)", function, [](const std::vector<std::int64_t>& s, Dtype d) { return zeros(shape_of(s), d); }},
    {"_full(size, fill_value, dtype)", function, [](const std::vector<std::int64_t>& s, double v, Dtype d) { return full(shape_of(s), v, d); }},
    {"_randn(size, generator, dtype)", function, [](const std::vector<std::int64_t>& s, py::handle g, Dtype d) {
         return randn(shape_of(s), d, false, &generator_of(g));
     }},
    {"_rand(size, generator, dtype)", function, [](const std::vector<std::int64_t>& s, py::handle g, Dtype d) {
         return rand(shape_of(s), d, false, &generator_of(g));
     }},
    {"_randint(low, high, size, generator)", function, [](std::int64_t low, std::int64_t high, const std::vector<std::int64_t>& s, py::handle g) {
         return randint(low, high, shape_of(s), generator_of(g));
     }},
    {"_randperm(n, generator)", function, [](std::int64_t n, py::handle g) { return randperm(n, generator_of(g)); }},
    {"_arange(start, end, step, dtype)", function, [](double start, double end, double step, Dtype d) { return arange(start, end, step, d); }},
    {"_tensor(data, dtype)", function, [](py::handle data, std::optional<Dtype> dtype) { return to_tensor(data, dtype).value; }},
    {"_dtype(dtype)", function, [](Dtype d) { return py::cast(d); }},
    {"_get_default_dtype()", function, [] { return py::cast(default_dtype()); }},
    {"_set_default_dtype(dtype)", function, [](Dtype d) { set_default_dtype(d); }},
    {"_shape(op, *size=())", function, [](const std::string& op, py::handle sizes) { return py::cast(shape_arg(op.c_str(), py::reinterpret_borrow<py::args>(sizes))); }},
    {"_check_device(device)", function, [](py::handle device) { check_device(device); }},
};

}  // namespace

py::object arithmetic(const PyTensor& a, py::handle other, Bin op, bool reflected)
{
    if (const auto n = a.is_float() ? real_number(other) : std::nullopt) {
        return py::reinterpret_steal<py::object>(to_python(float_scalar(a.value, *n, op, reflected)));   // a number in a's float type
    }
    if (op == Bin::pow && !reflected && !a.value.is_floating_point() && PyLong_Check(other.ptr()) && other.cast<double>() < 0) {
        throw std::runtime_error("Integers to negative integer powers are not allowed.");
    }
    const std::optional<Tensor> b = operand(other, a.value);
    if (!b) return not_implemented();
    return py::reinterpret_steal<py::object>(to_python(reflected ? tensor_binary(*b, a.value, op) : tensor_binary(a.value, *b, op)));
}

py::object compare(const PyTensor& a, py::handle other, int op)
{
    const std::optional<Tensor> b = operand(other, a.value);
    if (!b) return not_implemented();
    switch (op) {
    case Py_EQ: return py::cast(PyTensor::of(eq(a.value, *b)));
    case Py_NE: return py::cast(PyTensor::of(ne(a.value, *b)));
    case Py_LT: return py::cast(PyTensor::of(lt(a.value, *b)));
    case Py_LE: return py::cast(PyTensor::of(le(a.value, *b)));
    case Py_GT: return py::cast(PyTensor::of(gt(a.value, *b)));
    case Py_GE: return py::cast(PyTensor::of(ge(a.value, *b)));
    }
    throw std::logic_error("compare");
}

Tensor matmul_releasing_gil(const Tensor& a, const Tensor& b)
{
    // a tiny product ends before another thread could take the GIL and do anything with it
    if (b.dim() == 0 || a.numel() * b.size(-1) < 32768) return matmul(a, b);
    py::gil_scoped_release release;
    return matmul(a, b);
}

void bind_ops(py::module_& m)
{
    install(m, ops);
    for (py::handle owner : {py::handle(m), py::handle(reinterpret_cast<PyObject*>(tensor_type))}) {   // torch's aliases
        owner.attr("clip") = owner.attr("clamp");
        owner.attr("mm") = owner.attr("matmul");
        owner.attr("bmm") = owner.attr("matmul");
    }
    m.attr("concat") = m.attr("cat");
    m.attr("concatenate") = m.attr("cat");
    py::handle(reinterpret_cast<PyObject*>(tensor_type)).attr("clip_") = py::handle(reinterpret_cast<PyObject*>(tensor_type)).attr("clamp_");
}

}  // namespace xgrad::python
