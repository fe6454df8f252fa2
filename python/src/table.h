// The op table: how an op of the core becomes a Tensor method and an xgrad function. Each op is one
// line, as torch's native_functions.yaml declares each of its ops once:
//
//     {"softmax(input, dim)", both, floating, [](const Tensor& x, std::int64_t dim) { return softmax(x, dim); }},
//
// its signature as Python sees it (names, defaults, `*` before keyword-only parameters, `*size` for
// ints given one by one or as a tuple), where it is reachable (a Tensor method, where self is the
// first parameter; an xgrad function; or both), the dtypes its input takes, and the C++ function,
// whose parameter types say how each argument converts (Arg below). CPython calls the generated
// functions directly (vectorcall): there is no other path, and no fast path beside it.
#pragma once

#include <span>
#include <utility>

#include "python/src/pytensor.h"

namespace xgrad::python {

enum class Door { method, function, both };
// floating: an integer or bool input is refused, as torch's "\"softmax\" not implemented for 'Long'"
enum class Dtypes { any, floating };

struct Param {
    std::string name;
    py::object interned;        // the name as a Python string, to match keywords
    py::object default_value;   // null when the argument is required
    bool keyword_only = false;
    bool variadic = false;      // *size: the remaining positional arguments, or one sequence of them
};

struct Signature {
    std::string name;
    std::string text;
    std::vector<Param> params;
    Dtypes dtypes = Dtypes::any;
};

// where an argument came from, for its error: "softmax(): argument 'dim' (position 2) must be int, not str"
struct Where {
    const Signature& sig;
    std::size_t index;
};
[[noreturn]] void argument_error(const Where& w, PyObject* obj, const char* expected);

// The arguments of one call in signature order; those not passed hold their defaults (borrowed)
constexpr std::size_t max_params = 8;
struct Slots {
    PyObject* at[max_params] = {};
    py::object variadic;   // the tuple a *size parameter collected
};
void collect(const Signature& sig, PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, Slots& out);

// ---- argument conversion, by the C++ parameter's type ------------------------------------------------
template <class T>
struct Arg;

template <>
struct Arg<PyTensor> {   // the object's own tensor: no copy
    static const PyTensor& get(PyObject* o, const Where& w)
    {
        if (const PyTensor* t = tensor_of(o)) return *t;
        argument_error(w, o, "Tensor");
    }
};
template <>
struct Arg<Tensor> {
    static const Tensor& get(PyObject* o, const Where& w) { return Arg<PyTensor>::get(o, w).value; }
};
template <>
struct Arg<py::handle> {   // anything: a number, a list, a tensor, None
    static py::handle get(PyObject* o, const Where&) { return o; }
};
template <>
struct Arg<py::object> {
    static py::object get(PyObject* o, const Where&) { return py::reinterpret_borrow<py::object>(o); }
};
template <>
struct Arg<double> {   // a Python or numpy number, or a one-element tensor
    static double get(PyObject* o, const Where& w);
};
template <>
struct Arg<float> {
    static float get(PyObject* o, const Where& w) { return static_cast<float>(Arg<double>::get(o, w)); }
};
template <>
struct Arg<std::int64_t> {   // anything with __index__: an int, a numpy integer, a one-element long tensor
    static std::int64_t get(PyObject* o, const Where& w);
};
template <>
struct Arg<bool> {
    static bool get(PyObject* o, const Where& w);
};
template <>
struct Arg<Dtype> {
    static Dtype get(PyObject* o, const Where&) { return dtype_arg(o); }
};
template <>
struct Arg<std::string> {
    static std::string get(PyObject* o, const Where& w);
};
template <>
struct Arg<std::vector<std::int64_t>> {   // a tuple, list or torch.Size of ints, or one int
    static std::vector<std::int64_t> get(PyObject* o, const Where& w);
};
template <>
struct Arg<std::vector<Tensor>> {   // a list or tuple of tensors
    static std::vector<Tensor> get(PyObject* o, const Where& w);
};
template <class T>
struct Arg<std::optional<T>> {   // None, or the value
    static std::optional<T> get(PyObject* o, const Where& w)
    {
        if (o == Py_None) return std::nullopt;
        return Arg<T>::get(o, w);
    }
};

// ---- results ----------------------------------------------------------------------------------------
struct InPlace {};   // what an in-place method returns: the result is the tensor it was called on

inline PyObject* to_python(Tensor t) { return new_tensor(std::move(t)); }
inline PyObject* to_python(py::object o) { return o.release().ptr(); }
inline PyObject* to_python(bool b) { return PyBool_FromLong(b); }
template <std::integral I>
PyObject* to_python(I v)
{
    if constexpr (std::is_signed_v<I>) return PyLong_FromLongLong(v);
    else return PyLong_FromUnsignedLongLong(v);
}
inline PyObject* to_python(double v) { return PyFloat_FromDouble(v); }
PyObject* to_python(std::vector<Tensor> pieces);   // a tuple, as torch's split and unbind

void check_dtypes(const Signature& sig, const Slots& slots);

// f() with any C++ exception turned into the Python error torch raises (nullptr: raised)
template <class F>
PyObject* guarded(F&& f) noexcept
{
    try {
        return f();
    } catch (...) {
        set_python_error();
        return nullptr;
    }
}

// ---- the generated functions, one set per table line (F is the line's lambda) ------------------------
template <class F>
struct Op {
    static inline const Signature* sig = nullptr;   // parsed from the line when the table is installed

    template <class R, class... A, std::size_t... I>
    static PyObject* invoke(R (F::*)(A...) const, Slots& s, std::index_sequence<I...>)
    {
        static_assert(sizeof...(A) <= max_params, "an op takes at most max_params arguments");
        if constexpr (std::is_void_v<R>) {
            F{}(Arg<std::remove_cvref_t<A>>::get(s.at[I], Where{*sig, I})...);
            Py_RETURN_NONE;
        } else if constexpr (std::is_same_v<R, InPlace>) {
            F{}(Arg<std::remove_cvref_t<A>>::get(s.at[I], Where{*sig, I})...);
            Py_INCREF(s.at[0]);
            return s.at[0];
        } else {
            return to_python(F{}(Arg<std::remove_cvref_t<A>>::get(s.at[I], Where{*sig, I})...));
        }
    }
    template <class R, class... A>
    static PyObject* run(R (F::*member)(A...) const, PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames)
    {
        Slots s;
        collect(*sig, self, args, nargs, kwnames, s);
        if (sig->dtypes != Dtypes::any) check_dtypes(*sig, s);
        return invoke(member, s, std::index_sequence_for<A...>{});
    }
    static PyObject* method(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) noexcept
    {
        return guarded([&] { return run(&F::operator(), self, args, nargs, kwnames); });
    }
    static PyObject* function(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) noexcept
    {
        return guarded([&] { return run(&F::operator(), nullptr, args, nargs, kwnames); });
    }
};

using FastCall = PyObject* (*)(PyObject*, PyObject* const*, Py_ssize_t, PyObject*) noexcept;

// One line of the table
struct Def {
    const char* signature;
    Door door;
    Dtypes dtypes;
    FastCall method;
    FastCall function;
    const Signature** parsed;

    template <class F>
    Def(const char* signature, Door door, Dtypes dtypes, F)
        : signature(signature), door(door), dtypes(dtypes), method(&Op<F>::method), function(&Op<F>::function), parsed(&Op<F>::sig)
    {
    }
    template <class F>
    Def(const char* signature, Door door, F f) : Def(signature, door, Dtypes::any, f)
    {
    }
};

// The table's lines as methods of xgrad.Tensor and functions of the module
void install(py::module_& m, std::span<const Def> table);

// ---- properties: x.grad, x.shape ... ------------------------------------------------------------------
template <class Get>
PyObject* property_get(PyObject* self, void*) noexcept
{
    return guarded([&] { return to_python(Get{}(*tensor_of(self))); });
}
template <class Set>
int property_set(PyObject* self, PyObject* value, void*) noexcept
{
    if (value == nullptr) {
        PyErr_SetString(PyExc_AttributeError, "can't delete this attribute of a tensor");
        return -1;
    }
    return guarded([&]() -> PyObject* {
        Set{}(*tensor_of(self), py::handle(value));
        return Py_None;
    }) ? 0 : -1;
}

struct Property {
    const char* name;
    getter get;
    setter set;

    template <class Get>
    Property(const char* name, Get) : name(name), get(&property_get<Get>), set(nullptr)
    {
    }
    template <class Get, class Set>
    Property(const char* name, Get, Set) : name(name), get(&property_get<Get>), set(&property_set<Set>)
    {
    }
};

constexpr Door method = Door::method;
constexpr Door function = Door::function;
constexpr Door both = Door::both;
constexpr Dtypes floating = Dtypes::floating;

}  // namespace xgrad::python
