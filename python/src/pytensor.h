// PyTensor: what a Python xgrad.Tensor holds: the core's Tensor, of any dtype. Views, autograd (float32
// and float64), in-place writes, the version counter, promotion and the integer rules are all the
// core's; the bindings only turn Python values into tensors and back.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/axes.h"
#include "xgrad.h"

namespace xgrad::python {

namespace py = pybind11;

struct PyTensor {
    Tensor value;

    static PyTensor of(Tensor t) { return PyTensor{std::move(t)}; }

    Dtype dtype() const { return value.dtype(); }
    bool is_float() const { return value.dtype() == kFloat32 || value.dtype() == kFloat64; }   // what autograd runs in
    Shape shape() const { return value.shape(); }
    std::size_t numel() const { return value.numel(); }
    bool requires_grad() const { return value.requires_grad(); }

    // The tensor for a float-only op (matmul, the nn functions): itself, or an integer or bool one in
    // the default float dtype, as torch promotes them.
    Tensor f() const { return value.is_floating_point() ? value : value.to(default_dtype()); }
    // ids for an embedding or a loss: an int64 tensor; a float one is refused naming `who`, never truncated
    const Tensor& ids(const char* who) const;
    // a mask: a bool tensor as it is, any other read as != 0
    Tensor mask() const { return value.dtype() == kBool ? value : ne(value, zeros({}, value.dtype())); }
};

// The ids of the text tools' arrays as an int64 tensor
Tensor id_tensor(const IdArray& ids);

// ---- the Python object -----------------------------------------------------------------------------
// An xgrad.Tensor (or an instance of a Python subclass: nn.Parameter) is this object: CPython's
// header, the tensor, and the instance's attribute dict and weak references (tensor.cpp).
struct TensorObject {
    PyObject_HEAD
    PyTensor tensor;
    PyObject* dict;
    PyObject* weakrefs;
};
extern PyTypeObject* tensor_type;   // xgrad.Tensor, once bind_tensor made it

// The PyTensor inside a Python object, or nullptr if it is no xgrad.Tensor (a subclass counts)
inline PyTensor* tensor_of(py::handle h)
{
    if (!PyObject_TypeCheck(h.ptr(), tensor_type)) return nullptr;
    return &reinterpret_cast<TensorObject*>(h.ptr())->tensor;
}
// A new xgrad.Tensor holding t (a new reference)
PyObject* new_tensor(Tensor t);

// Inside a catch block: the exception in flight as the Python error torch would raise (xgrad::Error
// as IndexError for an index out of range, else RuntimeError; pybind11's and the standard library's
// exceptions as pybind11 maps them)
void set_python_error() noexcept;

// A Python shape: a tuple/list of ints, torch.Size, or the ints themselves (zeros(2, 3)). Negative
// sizes are a RuntimeError naming the op, as PyTorch's.
Shape shape_arg(const char* op, const py::args& args);
Shape shape_from(const char* op, py::handle sizes);

// Anything Python may hand where a tensor is expected: a Tensor, a number, a list, a numpy array. A
// numpy array keeps its dtype; Python floats make the default dtype, ints int64, bools bool (torch's).
PyTensor to_tensor(py::handle data, std::optional<Dtype> dtype = std::nullopt);
// A Python number as the 0-D tensor torch makes of it beside x (a bool as bool, an int as int64, a
// float in x's float dtype, or the default beside integers); a tensor as it is; anything else converted
Tensor scalar_operand(py::handle v, const Tensor& x);
Dtype dtype_arg(py::handle dtype);       // xgrad.float32 / xgrad.long / float / int / bool / "float32"
Dtype numpy_dtype(const py::array& a);   // an array's own dtype, or torch's TypeError for one it lacks

// An index of Python objects (ints, slices, None, ..., lists, arrays, tensors, masks, or a tuple of
// them) as the core's items, for x.index / x.index_put_ (index.cpp)
std::vector<indexing::TensorIndex> index_items(py::handle index);

void check_device(py::handle device);   // None, "cpu", or a device whose type is cpu

// a op other, for the operators and the methods: other a tensor, a number (torch's 0-D operand; beside
// a float tensor, a Python number is taken in its dtype), a list or an array; NotImplemented for
// anything else. other op a when reflected.
enum class Bin { add, sub, mul, div, pow, floordiv, mod };
py::object arithmetic(const PyTensor& a, py::handle other, Bin op, bool reflected);
py::object compare(const PyTensor& a, py::handle other, int op);   // op: Py_LT ... Py_GE, a bool tensor
// a @ b, with the GIL released while it runs, unless it is too small for that to matter
Tensor matmul_releasing_gil(const Tensor& a, const Tensor& b);

// obj.__index__() as an int64 (an int, a numpy integer, a one-element long tensor); its own error if
// it has none or it fails (a TypeError, an OverflowError past int64).
inline std::int64_t index_value(py::handle obj)
{
    PyObject* i = PyNumber_Index(obj.ptr());
    if (i == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::int_>(i).cast<std::int64_t>();
}

void bind_tensor(py::module_& m);
void bind_ops(py::module_& m);
void bind_nn(py::module_& m);
void bind_optim(py::module_& m);
void bind_text(py::module_& m);
void bind_bench(py::module_& m);

}  // namespace xgrad::python

// PyTensor as an argument or a result of the pybind11 bindings (nn.cpp, optim.cpp, ...): pybind11's
// documented extension point for a type it does not own ("Custom type casters"), which must be
// declared in its namespace. The table-driven bindings (table.h) do not go through it.
namespace pybind11::detail {

template <>
struct type_caster<xgrad::python::PyTensor> {
    PYBIND11_TYPE_CASTER(xgrad::python::PyTensor, const_name("Tensor"));

    bool load(handle src, bool)
    {
        const xgrad::python::PyTensor* t = xgrad::python::tensor_of(src);
        if (t == nullptr) return false;
        value = *t;
        return true;
    }
    static handle cast(const xgrad::python::PyTensor& src, return_value_policy, handle)
    {
        return xgrad::python::new_tensor(src.value);
    }
};

}  // namespace pybind11::detail
