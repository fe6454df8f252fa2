// The ops of core/ops.h for Python, as Tensor methods, operators and xgrad.* functions, with
// PyTorch's names, dims and numbers: every dtype goes to the core as itself, which promotes, computes
// integers exactly and refuses what torch refuses; this file turns Python's arguments into tensors.
#include <cmath>

#include "python/src/pytensor.h"

namespace xgrad::python {

namespace {

PyTensor T(Tensor t) { return PyTensor::of(std::move(t)); }

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
std::vector<std::ptrdiff_t> infer_shape(const std::vector<std::ptrdiff_t>& spec, std::size_t numel)
{
    std::size_t known = 1;
    std::ptrdiff_t inferred = -1;
    for (std::size_t i = 0; i < spec.size(); ++i) {
        if (spec[i] == -1 && inferred < 0) inferred = static_cast<std::ptrdiff_t>(i);
        else if (spec[i] < 0) throw std::runtime_error("invalid shape dimension " + std::to_string(spec[i]));
        else known *= static_cast<std::size_t>(spec[i]);
    }
    std::vector<std::ptrdiff_t> out = spec;
    if (inferred >= 0 && known > 0 && numel % known == 0) out[static_cast<std::size_t>(inferred)] = static_cast<std::ptrdiff_t>(numel / known);
    else if (inferred >= 0 || known != numel) {
        throw std::runtime_error("shape '" + shape_str(spec) + "' is invalid for input of size " + std::to_string(numel));
    }
    return out;
}

std::vector<int> reversed_axes(std::size_t n)
{
    std::vector<int> perm;
    for (std::size_t i = n; i-- > 0;) perm.push_back(static_cast<int>(i));
    return perm;
}

std::vector<PyTensor> wrap_all(std::vector<Tensor> pieces)
{
    std::vector<PyTensor> out;
    for (Tensor& piece : pieces) out.push_back(T(std::move(piece)));
    return out;
}

std::vector<PyTensor> split_any(const PyTensor& t, py::handle sizes, std::int64_t dim)
{
    const Shape s = t.shape();
    const std::size_t axis = normalize_axis("split", dim, s.size());
    if (PyIndex_Check(sizes.ptr())) {
        const auto size = sizes.cast<std::int64_t>();
        XGRAD_CHECK(size > 0 || s[axis] == 0, "split: split_size must be positive, got ", size);
        return wrap_all(split(t.value, static_cast<std::size_t>(std::max<std::int64_t>(size, 1)), static_cast<int>(axis)));
    }
    std::vector<std::int64_t> lengths;
    std::int64_t total = 0;
    for (py::handle h : sizes) total += lengths.emplace_back(h.cast<std::int64_t>());
    XGRAD_CHECK(total == static_cast<std::int64_t>(s[axis]), "split_with_sizes expects split_sizes to sum exactly to ", s[axis],
                " (input tensor's size at dimension ", axis, "), but got split_sizes=", shape_str(lengths));
    return wrap_all(t.value.split_with_sizes(lengths, static_cast<std::ptrdiff_t>(axis)));
}

}  // namespace

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

Tensor matmul_releasing_gil(const Tensor& a, const Tensor& b)
{
    // a tiny product ends before another thread could take the GIL and do anything with it
    if (b.dim() == 0 || a.numel() * b.size(-1) < 32768) return matmul(a, b);
    py::gil_scoped_release release;
    return matmul(a, b);
}

namespace {

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
    if (PyBool_Check(h.ptr())) return std::nullopt;
    if (PyFloat_Check(h.ptr()) || PyLong_Check(h.ptr())) return h.cast<double>();
    if (!is_number(h)) return std::nullopt;   // numpy scalars: their ints and floats, not their bools
    const char kind = py::str(h.attr("dtype").attr("kind")).cast<std::string>()[0];
    if (kind != 'f' && kind != 'i' && kind != 'u') return std::nullopt;
    return py::float_(py::reinterpret_borrow<py::object>(h)).cast<double>();
}

py::object binary(const PyTensor& a, py::handle other, Bin op, bool reflected)
{
    if (const auto n = a.is_float() ? real_number(other) : std::nullopt) {
        return py::cast(T(float_scalar(a.value, *n, op, reflected)));   // a number in a's float type
    }
    if (op == Bin::pow && !reflected && !a.value.is_floating_point() && PyLong_Check(other.ptr()) && other.cast<double>() < 0) {
        throw std::runtime_error("Integers to negative integer powers are not allowed.");
    }
    const std::optional<Tensor> b = operand(other, a.value);
    if (!b) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
    return py::cast(T(reflected ? tensor_binary(*b, a.value, op) : tensor_binary(a.value, *b, op)));
}

py::object comparison(const PyTensor& a, py::handle other, Comparison op)
{
    const std::optional<Tensor> b = operand(other, a.value);
    if (!b) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
    switch (op) {
    case Comparison::eq: return py::cast(T(eq(a.value, *b)));
    case Comparison::ne: return py::cast(T(ne(a.value, *b)));
    case Comparison::lt: return py::cast(T(lt(a.value, *b)));
    case Comparison::le: return py::cast(T(le(a.value, *b)));
    case Comparison::gt: return py::cast(T(gt(a.value, *b)));
    case Comparison::ge: return py::cast(T(ge(a.value, *b)));
    }
    throw std::logic_error("comparison");
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
    if (dim.is_none()) return py::cast(T(largest ? max(t.value) : min(t.value)));   // ties share the gradient
    const auto axis = static_cast<int>(normalize_axis(name, dim.cast<std::ptrdiff_t>(), t.value.dim()));
    Tensor values = largest ? max(t.value, axis, keepdim) : min(t.value, axis, keepdim);
    Tensor indices = largest ? argmax(t.value, axis, keepdim) : argmin(t.value, axis, keepdim);
    return return_types(name)(T(values), T(indices));
}

PyTensor arg_any(const PyTensor& t, py::object dim, bool keepdim, bool largest)
{
    std::optional<int> axis;
    if (!dim.is_none()) axis = static_cast<int>(normalize_axis("argmax", dim.cast<std::ptrdiff_t>(), std::max<std::size_t>(t.value.dim(), 1)));
    return T(largest ? argmax(t.value, axis, keepdim) : argmin(t.value, axis, keepdim));
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
        return alpha == 1.0f ? binary(a, b, Bin::add, false) : binary(a, py::cast(T(mul(to_tensor(b).value, alpha))), Bin::add, false);
    }, A("other"), A("alpha") = 1.0f);
    both("sub", [](const PyTensor& a, py::handle b) { return binary(a, b, Bin::sub, false); });
    both("mul", [](const PyTensor& a, py::handle b) { return binary(a, b, Bin::mul, false); });
    both("div", [](const PyTensor& a, py::handle b) { return binary(a, b, Bin::div, false); });
    both("pow", [](const PyTensor& a, py::handle b) { return binary(a, b, Bin::pow, false); });
    both("floor_divide", [](const PyTensor& a, py::handle b) { return binary(a, b, Bin::floordiv, false); });
    both("remainder", [](const PyTensor& a, py::handle b) { return binary(a, b, Bin::mod, false); });
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
    using Bitwise = Tensor (*)(const Tensor&, const Tensor&);
    const std::tuple<const char*, const char*, Bitwise> bitwise[] = {{"__and__", "bitwise_and", &bitwise_and},
        {"__or__", "bitwise_or", &bitwise_or}, {"__xor__", "bitwise_xor", &bitwise_xor}, {"logical_and", nullptr, &logical_and},
        {"logical_or", nullptr, &logical_or}, {"logical_xor", nullptr, &logical_xor}};
    for (auto [op, name, f] : bitwise) {
        auto call = [f = f](const PyTensor& a, py::handle b) { return T(f(a.value, scalar_operand(b, a.value))); };
        if (name) tensor.def(op, call, py::is_operator()), both(name, call);
        else both(op, call);
    }
    tensor.def("__invert__", [](const PyTensor& a) {
        if (a.value.is_floating_point()) throw py::type_error("~ (operator.invert) is only implemented on integer and Boolean-type tensors");
        return T(bitwise_not(a.value));
    });
    both("logical_not", [](const PyTensor& a) { return T(logical_not(a.value)); });
    tensor.def("__neg__", [](const PyTensor& a) { return T(neg(a.value)); });
    tensor.def("__pos__", [](const PyTensor& a) { return a; });
    tensor.def("__matmul__", [](const PyTensor& a, const PyTensor& b) { return T(matmul_releasing_gil(a.value, b.value)); },
               py::is_operator());
    both("matmul", [](const PyTensor& a, const PyTensor& b) { return T(matmul_releasing_gil(a.value, b.value)); });
    m.attr("mm") = m.attr("matmul");
    m.attr("bmm") = m.attr("matmul");
    tensor.attr("mm") = tensor.attr("matmul");
    tensor.attr("bmm") = tensor.attr("matmul");

    // ---- element-wise ----
    using Map = Tensor (*)(const Tensor&);
    const std::pair<const char*, Map> maps[] = {{"exp", &exp}, {"log", &log}, {"sqrt", &sqrt}, {"tanh", &tanh}, {"sin", &sin},
        {"cos", &cos}, {"sigmoid", &sigmoid}, {"relu", &relu}, {"neg", &neg}, {"abs", &xgrad::abs}};
    for (auto [name, f] : maps) both(name, [f = f](const PyTensor& x) { return T(f(x.value)); });
    both("rsqrt", [](const PyTensor& x) { return T(rdiv(1.0f, sqrt(x.value))); });   // NaN at -inf, and in its gradient
    both("square", [](const PyTensor& x) {   // torch's pow(x, 2): a bool tensor squares as int64
        const Tensor v = x.dtype() == kBool ? x.value.to(kInt64) : x.value;
        return T(mul(v, v));
    });
    both("clamp", [](const PyTensor& x, std::optional<float> min, std::optional<float> max) {
        return T(xgrad::clamp(x.f(), min, max));
    }, A("min") = py::none(), A("max") = py::none());
    m.attr("clip") = m.attr("clamp");
    tensor.attr("clip") = tensor.attr("clamp");
    both("masked_fill", [](const PyTensor& x, const PyTensor& mask, py::handle value) {
        const double v = tensor_of(value) ? tensor_of(value)->value.item<double>() : value.cast<double>();
        return T(masked_fill(x.value, mask.mask(), v));
    }, A("mask"), A("value"));
    // where(condition, a, b): a number beside a tensor is torch's 0-D operand
    const auto where_of = [](const PyTensor& condition, py::handle a, py::handle b) {
        const Tensor ta = tensor_of(a) || !tensor_of(b) ? to_tensor(a).value : scalar_operand(a, tensor_of(b)->value);
        return T(xgrad::where(condition.mask(), ta, scalar_operand(b, ta)));
    };
    m.def("where", where_of, A("condition"), A("input"), A("other"));
    tensor.def("where", [where_of](py::handle self, const PyTensor& condition, py::handle other) {
        return where_of(condition, self, other);
    }, A("condition"), A("other"));

    // ---- shape: views of any dtype (the core's) ----
    tensor.def("view", [](const PyTensor& t, py::args shape) { return T(t.value.view(infer_shape(dims_arg(shape), t.numel()))); });
    tensor.def("reshape", [](const PyTensor& t, py::args shape) { return T(t.value.reshape(infer_shape(dims_arg(shape), t.numel()))); });
    m.def("reshape", [](const PyTensor& t, py::handle shape) {
        return T(t.value.reshape(infer_shape(dims_arg(py::make_tuple(shape)), t.numel())));
    });
    tensor.def("permute", [](const PyTensor& t, py::args dims) {
        std::vector<int> perm;   // each dim checked while 64-bit: 2**32 must not wrap to 0
        for (std::ptrdiff_t d : dims_arg(dims)) perm.push_back(static_cast<int>(normalize_axis("permute", d, t.value.dim())));
        return T(permute(t.value, perm));
    });
    m.def("permute", [](const PyTensor& t, std::vector<int> dims) { return T(permute(t.value, dims)); });
    both("transpose", [](const PyTensor& t, std::int64_t d0, std::int64_t d1) {
        const std::size_t n = t.value.dim();
        return T(transpose(t.value, static_cast<int>(normalize_axis("transpose", d0, n)), static_cast<int>(normalize_axis("transpose", d1, n))));
    }, A("dim0"), A("dim1"));
    tensor.def_property_readonly("T", [](const PyTensor& t) { return T(permute(t.value, reversed_axes(t.value.dim()))); });
    tensor.def_property_readonly("mT", [](const PyTensor& t) {
        if (t.value.dim() < 2) {
            throw std::runtime_error("tensor.mT is only supported on matrices or batches of matrices. Got " +
                                     std::to_string(t.value.dim()) + "-D tensor.");
        }
        return T(transpose(t.value, -2, -1));
    });
    tensor.def("t", [](const PyTensor& t) {
        if (t.value.dim() > 2) {
            throw std::runtime_error("t() expects a tensor with <= 2 dimensions, but self is " + std::to_string(t.value.dim()) + "D");
        }
        return T(t.value.t());
    });
    both("unsqueeze", [](const PyTensor& t, std::int64_t dim) { return T(t.value.unsqueeze(dim)); }, A("dim"));
    both("squeeze", [](const PyTensor& t, std::optional<std::int64_t> dim) {
        return T(dim ? t.value.squeeze(*dim) : t.value.squeeze());
    }, A("dim") = py::none());
    both("flatten", [](const PyTensor& t, std::int64_t start, std::int64_t end) { return T(t.value.flatten(start, end)); },
         A("start_dim") = 0, A("end_dim") = -1);
    tensor.def("contiguous", [](py::object self) {
        const PyTensor& t = self.cast<const PyTensor&>();
        return t.value.is_contiguous() ? self : py::cast(T(t.value.contiguous()));
    });
    tensor.def("is_contiguous", [](const PyTensor& t) { return t.value.is_contiguous(); });
    both("clone", [](const PyTensor& t) { return T(t.value.clone()); });
    m.def("_unbind", [](const PyTensor& t, std::int64_t dim) { return wrap_all(t.value.unbind(dim)); });
    both("narrow", [](const PyTensor& t, std::int64_t dim, std::int64_t start, std::int64_t length) {
        return T(t.value.narrow(dim, start, length));
    }, A("dim"), A("start"), A("length"));
    tensor.def("unflatten", [](const PyTensor& t, std::int64_t dim, std::vector<std::ptrdiff_t> sizes) {
        return T(t.value.unflatten(dim, sizes));
    }, A("dim"), A("sizes"));
    both("diagonal", [](const PyTensor& t, std::int64_t offset, std::int64_t dim1, std::int64_t dim2) {
        return T(t.value.diagonal(offset, dim1, dim2));
    }, A("offset") = 0, A("dim1") = 0, A("dim2") = 1);
    both("as_strided", [](const PyTensor& t, std::vector<std::size_t> size, std::vector<std::size_t> stride,
                          std::optional<std::size_t> storage_offset) {
        return T(t.value.as_strided(std::move(size), std::move(stride), storage_offset));
    }, A("size"), A("stride"), A("storage_offset") = py::none());
    tensor.def("expand", [](const PyTensor& t, py::args sizes) { return T(t.value.expand(dims_arg(sizes))); });
    tensor.def("expand_as", [](const PyTensor& t, const PyTensor& other) {
        const Shape s = other.shape();
        return T(t.value.expand(std::vector<std::ptrdiff_t>(s.begin(), s.end())));
    });
    const auto joined = [](const std::vector<PyTensor>& xs, std::int64_t dim, bool new_axis) {
        const char* name = new_axis ? "stack" : "cat";
        XGRAD_CHECK(!xs.empty(), name, ": expected a non-empty list of Tensors");
        std::vector<Tensor> parts;
        for (const PyTensor& x : xs) parts.push_back(x.value);
        const auto axis = static_cast<int>(normalize_axis(name, dim, xs[0].value.dim() + (new_axis ? 1 : 0)));
        return T(new_axis ? stack(parts, axis) : concat(parts, axis));
    };
    m.def("cat", [joined](const std::vector<PyTensor>& xs, std::int64_t dim) { return joined(xs, dim, false); },
          A("tensors"), A("dim") = 0);
    m.attr("concat") = m.attr("cat");
    m.attr("concatenate") = m.attr("cat");
    m.def("stack", [joined](const std::vector<PyTensor>& xs, std::int64_t dim) { return joined(xs, dim, true); },
          A("tensors"), A("dim") = 0);
    both("split", &split_any, A("split_size_or_sections"), A("dim") = 0);
    both("chunk", [](const PyTensor& t, std::int64_t chunks, std::int64_t dim) {
        XGRAD_CHECK(chunks > 0, "chunk expects `chunks` to be greater than 0, got: ", chunks);
        const std::size_t n = t.shape()[normalize_axis("chunk", dim, t.shape().size())];
        const auto size = static_cast<std::int64_t>((n + static_cast<std::size_t>(chunks) - 1) / static_cast<std::size_t>(chunks));
        return split_any(t, py::int_(std::max<std::int64_t>(size, 1)), dim);
    }, A("chunks"), A("dim") = 0);
    both("select", [](const PyTensor& t, std::int64_t dim, std::int64_t index) {
        XGRAD_CHECK(t.value.dim() > 0, "select: cannot be applied to a 0-d tensor");
        return T(xgrad::select(t.value, static_cast<int>(normalize_axis("select", dim, t.value.dim())), index));
    }, A("dim"), A("index"));
    both("tril", [](const PyTensor& t, std::int64_t diagonal) { return T(tril(t.value, diagonal)); }, A("diagonal") = 0);
    both("triu", [](const PyTensor& t, std::int64_t diagonal) { return T(triu(t.value, diagonal)); }, A("diagonal") = 0);

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
    reduction("sum", [](const PyTensor& t, py::object dim, bool keepdim) {
        return T(dim.is_none() && !keepdim ? sum(t.value) : sum(t.value, axes_arg(dim, t.value.dim()), keepdim));
    });
    reduction("mean", [](const PyTensor& t, py::object dim, bool keepdim) {
        return T(dim.is_none() && !keepdim ? mean(t.value) : mean(t.value, axes_arg(dim, t.value.dim()), keepdim));
    });
    reduction("max", [](const PyTensor& t, py::object dim, bool keepdim) { return max_any(t, dim, keepdim, true); });
    reduction("min", [](const PyTensor& t, py::object dim, bool keepdim) { return max_any(t, dim, keepdim, false); });
    reduction("argmax", [](const PyTensor& t, py::object dim, bool keepdim) { return arg_any(t, dim, keepdim, true); });
    reduction("argmin", [](const PyTensor& t, py::object dim, bool keepdim) { return arg_any(t, dim, keepdim, false); });
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
        return T(softmax(x.f(), static_cast<int>(normalize_axis("softmax", dim, std::max<std::size_t>(x.value.dim(), 1)))));
    }, A("dim"));
    both("log_softmax", [](const PyTensor& x, std::int64_t dim) {
        return T(log_softmax(x.f(), static_cast<int>(normalize_axis("log_softmax", dim, std::max<std::size_t>(x.value.dim(), 1)))));
    }, A("dim"));
    both("topk", [](const PyTensor& x, std::size_t k, std::int64_t dim, bool largest, bool) {
        Tensor v = x.value;
        const std::size_t n = v.dim(), axis = normalize_axis("topk", dim, std::max<std::size_t>(n, 1));
        if (n == 0) v = reshape(v, {1});
        const int a = static_cast<int>(axis), last = static_cast<int>(std::max<std::size_t>(n, 1) - 1);
        auto [values, indices] = topk(a == last ? v : transpose(v, a, last), k, largest);
        if (a != last) values = transpose(values, a, last), indices = transpose(indices, a, last);
        return return_types("topk")(T(values), T(indices));
    }, A("k"), A("dim") = -1, A("largest") = true, A("sorted") = true);
    // A generator= argument (an xgrad.Generator) draws from it, else from the default generator
    auto gen = [](py::handle g) -> Generator& { return g.is_none() ? default_generator() : g.cast<Generator&>(); };
    both("multinomial", [gen](const PyTensor& probs, std::size_t num_samples, bool replacement, py::object generator) {
        return T(multinomial(probs.f(), num_samples, replacement, gen(generator)));
    }, A("num_samples"), A("replacement") = false, A("generator") = py::none());

    // ---- creation, for the Python wrappers in xgrad/__init__.py ----
    m.def("_zeros", [](const Shape& s, Dtype d) { return T(zeros(s, d)); });
    m.def("_full", [](const Shape& s, double v, Dtype d) { return T(full(s, v, d)); });
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
    // ids drawn into a fresh int64 tensor (its allocation checks the size: a huge one is an error, not an abort)
    const auto int64s = [](const Shape& s) {
        Tensor out = empty(s, kInt64);
        return std::pair(out, const_cast<std::int64_t*>(out.data_ptr<std::int64_t>()));
    };
    m.def("_randint", [gen, int64s](std::int64_t low, std::int64_t high, const Shape& s, py::object g) {
        XGRAD_CHECK(high > low, "random_ expects 'from' to be less than 'to', but got from=", low, " >= to=", high);
        Generator& rng = gen(g);
        auto [out, v] = int64s(s);
        for (std::size_t i = 0; i < out.numel(); ++i) v[i] = low + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(high - low)));
        return T(out);
    });
    m.def("_randperm", [gen, int64s](std::size_t n, py::object g) {
        Generator& rng = gen(g);
        auto [out, v] = int64s({n});
        for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::int64_t>(i);
        for (std::size_t i = n; i-- > 1;) std::swap(v[i], v[rng.below(i + 1)]);   // Fisher-Yates
        return T(out);
    });
    m.def("_arange", [](double start, double end, double step, Dtype d) { return T(arange(start, end, step, d)); });
    m.def("_tensor", [](py::handle data, py::object dtype) {
        return to_tensor(data, dtype.is_none() ? std::nullopt : std::optional(dtype_arg(dtype)));
    });
    m.def("_dtype", [](py::handle d) { return dtype_arg(d); });
    m.def("_get_default_dtype", [] { return default_dtype(); });
    m.def("_set_default_dtype", [](Dtype d) { set_default_dtype(d); });
    m.def("_shape", [](const char* op, py::args args) { return shape_arg(op, args); });
    m.def("_check_device", [](py::handle device) { check_device(device); });
}

}  // namespace xgrad::python
