// The everyday Tensor operators and methods as CPython's own functions: + - * / @ and unary -,
// x[i], view, reshape, transpose, detach, and the element-wise maps and full reductions called with no
// arguments (x.relu(), x.sum()). On (4, 4) tensors pybind11's generic call (a call record, the
// overload loop, an argument caster per parameter, and for an operator a bound method and an argument
// tuple) costs as much as the op itself. These take the common call, float tensors and positional
// Python ints or numbers, straight to the op. Any other call goes to the pybind11 binding each
// replaces, which keeps all the conversions, checks and messages: only the path is new.
//
// Tensor's own type gets the functions in its slots (nb_add, mp_subscript, ...). Its Python
// subclasses (nn.Parameter, nn.Buffer) reach them through the method of the same name.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "python/src/pytensor.h"

namespace xgrad::python {

namespace {

// The bindings the fast functions stand in for; each hands them every call it does not take itself.
enum Binding {
    add, radd, sub, rsub, mul, rmul, truediv, rtruediv, matmul_op, getitem, view, reshape_op, transpose_op,
    neg_op, exp_op, log_op, sqrt_op, tanh_op, sigmoid_op, relu_op, sum_op, mean_op, detach_op, count
};
PyObject* binding[count] = {};   // the pybind11 function objects (owned references)

// f(), with a C++ exception turned into a Python one by the module's translators (xgrad::Error to
// IndexError or RuntimeError...), as pybind11's dispatcher does. nullptr means "raised".
template <class F>
PyObject* guarded(F f) noexcept
{
    try {
        return f();
    } catch (...) {
        if (py::detail::apply_exception_translators(py::detail::get_local_internals().registered_exception_translators) ||
            py::detail::apply_exception_translators(py::detail::get_internals().registered_exception_translators)) {
            return nullptr;
        }
        PyErr_SetString(PyExc_SystemError, "xgrad: an exception escaped the exception translators");
        return nullptr;
    }
}

PyObject* wrap(Tensor t)
{
    return py::detail::type_caster<PyTensor>::cast(PyTensor::of(std::move(t)), py::return_value_policy::move, nullptr).ptr();
}

// the float tensor inside h for a fast call, or nullptr (ids, masks, `.data` views and non-tensors
// take the binding's path)
const Tensor* float_tensor(PyObject* h)
{
    const PyTensor* t = tensor_of(h);
    return t && t->is_float() ? &t->value : nullptr;
}

// binding b called as b(self, *args, **kwargs), the arguments as CPython's vectorcall passes them
PyObject* call_binding(Binding b, PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames)
{
    return guarded([&] {
        const Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
        std::vector<PyObject*> all(static_cast<std::size_t>(total) + 1);
        all[0] = self;
        std::copy_n(args, total, all.begin() + 1);
        return PyObject_Vectorcall(binding[b], all.data(), static_cast<std::size_t>(nargs) + 1, kwnames);
    });
}

// a Python float or int as a double, or nullopt for anything else (numpy scalars, bools: the binding's)
std::optional<double> python_number(PyObject* h)
{
    if (PyFloat_CheckExact(h)) return PyFloat_AS_DOUBLE(h);
    if (!PyLong_CheckExact(h)) return std::nullopt;
    const double v = PyLong_AsDouble(h);   // an OverflowError past a double, as the binding raises
    if (v == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    return v;
}

// ---- + - * / : the type's slot sees both operands in the expression's order ----------------------
template <Bin op, Binding forward, Binding reflected>
PyObject* binary_slot(PyObject* a, PyObject* b)
{
    return guarded([&]() -> PyObject* {
        const Tensor* x = float_tensor(a);
        const Tensor* y = float_tensor(b);
        if (x && y) return wrap(tensor_binary(*x, *y, op));
        if (x) {
            if (auto s = python_number(b)) return wrap(float_scalar(*x, *s, op, false));
        } else if (y) {
            if (auto s = python_number(a)) return wrap(float_scalar(*y, *s, op, true));
        }
        if (tensor_of(a)) return call_binding(forward, a, &b, 1, nullptr);
        return call_binding(reflected, b, &a, 1, nullptr);
    });
}

// the same as methods, which subclasses' slots call: x.__add__(y), x.__radd__(y)
template <Bin op, Binding forward, Binding reflected, bool is_reflected>
PyObject* binary_method(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames)
{
    if (nargs != 1 || kwnames) return call_binding(is_reflected ? reflected : forward, self, args, nargs, kwnames);
    return is_reflected ? binary_slot<op, forward, reflected>(args[0], self) : binary_slot<op, forward, reflected>(self, args[0]);
}

PyObject* matmul_slot(PyObject* a, PyObject* b)
{
    return guarded([&]() -> PyObject* {
        const Tensor* x = float_tensor(a);
        const Tensor* y = float_tensor(b);
        if (!x || !y) return call_binding(matmul_op, a, &b, 1, nullptr);
        return wrap(matmul_releasing_gil(*x, *y));
    });
}

PyObject* matmul_method(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames)
{
    if (nargs != 1 || kwnames) return call_binding(matmul_op, self, args, nargs, kwnames);
    return matmul_slot(self, args[0]);
}

// ---- x[i] ---------------------------------------------------------------------------------------
PyObject* subscript_slot(PyObject* self, PyObject* index)
{
    return guarded([&]() -> PyObject* {
        const Tensor* x = float_tensor(self);
        if (!x || !PyLong_CheckExact(index) || x->dim() == 0) return call_binding(getitem, self, &index, 1, nullptr);
        const long long i = PyLong_AsLongLong(index);
        if (i == -1 && PyErr_Occurred()) return nullptr;
        return wrap(select(*x, 0, i));
    });
}

PyObject* subscript_method(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames)
{
    if (nargs != 1 || kwnames) return call_binding(getitem, self, args, nargs, kwnames);
    return subscript_slot(self, args[0]);
}

// ---- x.view(2, -1), x.reshape(...), x.transpose(0, 1): Python ints -------------------------------
// view is strict (a view, or torch's error); reshape copies when no view can follow the strides
template <Binding b, bool strict>
PyObject* reshape_method(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames)
{
    const Tensor* x = float_tensor(self);
    bool ints = x && !kwnames && nargs > 0;
    for (Py_ssize_t i = 0; ints && i < nargs; ++i) ints = PyLong_CheckExact(args[i]);
    if (!ints) return call_binding(b, self, args, nargs, kwnames);
    return guarded([&]() -> PyObject* {
        std::vector<std::ptrdiff_t> spec(static_cast<std::size_t>(nargs));
        for (Py_ssize_t i = 0; i < nargs; ++i) {
            spec[static_cast<std::size_t>(i)] = PyLong_AsSsize_t(args[i]);
            if (spec[static_cast<std::size_t>(i)] == -1 && PyErr_Occurred()) return nullptr;
        }
        return wrap(strict ? x->view(std::move(spec)) : x->reshape(std::move(spec)));
    });
}

PyObject* transpose_method(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames)
{
    const Tensor* x = float_tensor(self);
    if (!x || kwnames || nargs != 2 || !PyLong_CheckExact(args[0]) || !PyLong_CheckExact(args[1])) {
        return call_binding(transpose_op, self, args, nargs, kwnames);
    }
    return guarded([&]() -> PyObject* {
        const Py_ssize_t d0 = PyLong_AsSsize_t(args[0]), d1 = PyLong_AsSsize_t(args[1]);
        if ((d0 == -1 || d1 == -1) && PyErr_Occurred()) return nullptr;
        const std::size_t n = x->dim();   // checked here, where they are still 64-bit
        return wrap(xgrad::transpose(*x, static_cast<int>(normalize_axis("transpose", d0, n)),
                                     static_cast<int>(normalize_axis("transpose", d1, n))));
    });
}

// ---- x.relu(), x.sum(), -x ...: no arguments ------------------------------------------------------
template <Tensor (*f)(const Tensor&), Binding b>
PyObject* unary_method(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames)
{
    const Tensor* x = float_tensor(self);
    if (!x || nargs != 0 || kwnames) return call_binding(b, self, args, nargs, kwnames);
    return guarded([&] { return wrap(f(*x)); });
}

PyObject* negative_slot(PyObject* self) { return unary_method<xgrad::neg, neg_op>(self, nullptr, 0, nullptr); }

using Fast = PyObject* (*)(PyObject*, PyObject* const*, Py_ssize_t, PyObject*);
Tensor sum_all(const Tensor& x) { return xgrad::sum(x); }
Tensor mean_all(const Tensor& x) { return xgrad::mean(x); }
Tensor detach_of(const Tensor& x) { return x.detach(); }

struct Method {
    const char* name;
    Binding replaces;
    Fast fast;
};

// one per Binding (install_fast_paths indexes by `replaces`, not by position)
const Method methods[count] = {
    {"__add__", add, binary_method<Bin::add, add, radd, false>},
    {"__radd__", radd, binary_method<Bin::add, add, radd, true>},
    {"__sub__", sub, binary_method<Bin::sub, sub, rsub, false>},
    {"__rsub__", rsub, binary_method<Bin::sub, sub, rsub, true>},
    {"__mul__", mul, binary_method<Bin::mul, mul, rmul, false>},
    {"__rmul__", rmul, binary_method<Bin::mul, mul, rmul, true>},
    {"__truediv__", truediv, binary_method<Bin::div, truediv, rtruediv, false>},
    {"__rtruediv__", rtruediv, binary_method<Bin::div, truediv, rtruediv, true>},
    {"__matmul__", matmul_op, matmul_method},
    {"__getitem__", getitem, subscript_method},
    {"view", view, reshape_method<view, true>},
    {"reshape", reshape_op, reshape_method<reshape_op, false>},
    {"transpose", transpose_op, transpose_method},
    {"__neg__", neg_op, unary_method<xgrad::neg, neg_op>},
    {"exp", exp_op, unary_method<xgrad::exp, exp_op>},
    {"log", log_op, unary_method<xgrad::log, log_op>},
    {"sqrt", sqrt_op, unary_method<xgrad::sqrt, sqrt_op>},
    {"tanh", tanh_op, unary_method<xgrad::tanh, tanh_op>},
    {"sigmoid", sigmoid_op, unary_method<xgrad::sigmoid, sigmoid_op>},
    {"relu", relu_op, unary_method<xgrad::relu, relu_op>},
    {"sum", sum_op, unary_method<sum_all, sum_op>},
    {"mean", mean_op, unary_method<mean_all, mean_op>},
    {"detach", detach_op, unary_method<detach_of, detach_op>},
};

}  // namespace

void install_fast_paths(py::module_& m)
{
    py::object tensor = m.attr("Tensor");
    auto* type = reinterpret_cast<PyTypeObject*>(tensor.ptr());
    static PyMethodDef defs[count];       // CPython keeps pointers to them
    static std::string docs[count];
    for (const Method& method : methods) {
        py::object replaced = tensor.attr("__dict__")[method.name];
        // a pybind11 method is an instancemethod around the function; the function takes self first
        PyObject* fn = PyInstanceMethod_Check(replaced.ptr()) ? PyInstanceMethod_GET_FUNCTION(replaced.ptr()) : replaced.ptr();
        binding[method.replaces] = py::reinterpret_borrow<py::object>(fn).release().ptr();
        docs[method.replaces] = py::str(replaced.attr("__doc__"));   // help() shows the binding's signatures
        PyMethodDef& def = defs[method.replaces];
        def = {method.name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(method.fast)), METH_FASTCALL | METH_KEYWORDS,
               docs[method.replaces].c_str()};
        py::object descr = py::reinterpret_steal<py::object>(PyDescr_NewMethod(type, &def));
        if (!descr) throw py::error_already_set();
        tensor.attr(method.name) = descr;   // setattr on a type: CPython re-derives its slots from the new method
    }
    // then the type's own slots, which call the ops directly (subclasses' slots call the methods above)
    auto* heap = reinterpret_cast<PyHeapTypeObject*>(type);
    heap->as_number.nb_add = binary_slot<Bin::add, add, radd>;
    heap->as_number.nb_subtract = binary_slot<Bin::sub, sub, rsub>;
    heap->as_number.nb_multiply = binary_slot<Bin::mul, mul, rmul>;
    heap->as_number.nb_true_divide = binary_slot<Bin::div, truediv, rtruediv>;
    heap->as_number.nb_matrix_multiply = matmul_slot;
    heap->as_number.nb_negative = negative_slot;
    heap->as_mapping.mp_subscript = subscript_slot;
    PyType_Modified(type);
}

}  // namespace xgrad::python
