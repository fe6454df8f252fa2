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

// xgrad.Tensor's pybind11 type record, looked up once it exists (pybind11 itself looks it up in a hash
// table by std::type_info for every argument and every return value).
inline const py::detail::type_info* tensor_type()
{
    static const py::detail::type_info* info = nullptr;
    if (info == nullptr) info = py::detail::get_type_info(typeid(PyTensor));   // null until bind_tensor ran
    return info;
}

// ---- helpers shared by the binding files ------------------------------------------------------------
// The PyTensor inside a Python object, or nullptr if it is no xgrad.Tensor (a subclass counts): one
// type check against a cached type, where py::isinstance and cast each look the type up by name,
// which is a good part of a tiny op's cost from Python.
inline const PyTensor* tensor_of(py::handle h)
{
    const py::detail::type_info* info = tensor_type();
    if (!PyObject_TypeCheck(h.ptr(), info->type)) return nullptr;
    auto* inst = reinterpret_cast<py::detail::instance*>(h.ptr());
    return static_cast<const PyTensor*>(inst->get_value_and_holder(info).value_ptr());
}

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
Dtype dtype_arg(py::handle dtype);
Dtype numpy_dtype(const py::array& a);   // an array's own dtype, or torch's TypeError for one it lacks   // xgrad.float32 / xgrad.long / float / int / bool / "float32"

// The flat offsets an index (int, slice, None, Ellipsis, list, tensor, mask, or a tuple of them)
// selects in a row-major array of `shape`, and the shape of the result, with NumPy's and PyTorch's rules.
struct Selection {
    std::vector<std::size_t> flat;
    Shape shape;
    // torch's name for what the index does, which its grad_fn shows: "index" for any advanced index,
    // else the last of "select" (an int), "slice" and "unsqueeze" (None); "alias" for ... alone
    const char* op = "index";
};
Selection select(const Shape& shape, py::handle index);
// x[index] of a float tensor: a view of x when the index is basic (ints, slices, None, ...), else the
// selection an advanced index gathers
struct Indexed {
    std::optional<Tensor> view;
    Selection selection;
};
Indexed index_of(const Tensor& x, py::handle index);

void check_device(py::handle device);

// The arithmetic operators: a op b for tensors of any dtypes (the core promotes), and x op s for a
// Python float s (s op x when reflected), taken in x's float type as torch's
enum class Bin { add, sub, mul, div, pow, floordiv, mod };
Tensor tensor_binary(const Tensor& a, const Tensor& b, Bin op);
Tensor float_scalar(const Tensor& x, double s, Bin op, bool reflected);
// a @ b, with the GIL released while it runs, unless it is too small for that to matter
Tensor matmul_releasing_gil(const Tensor& a, const Tensor& b);

// obj.__index__() as an int64 (an int, a numpy integer, a one-element long tensor); its own error if
// it has none or it fails (a TypeError, an OverflowError past int64).
inline std::int64_t index_value(py::handle obj)
{
    PyObject* i = PyNumber_Index(obj.ptr());
    if (i == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::int_>(i).cast<std::int64_t>();
}                // None, "cpu", or a device whose type is cpu

void bind_tensor(py::module_& m);
void bind_ops(py::module_& m);
void bind_nn(py::module_& m);
void bind_optim(py::module_& m);
void bind_text(py::module_& m);
void bind_bench(py::module_& m);
void install_fast_paths(py::module_& m);   // after the bindings it speeds up (fast.cpp)

}  // namespace xgrad::python

namespace pybind11::detail {

// PyTensor's caster: pybind11's own generic one for a bound class (type_caster_base), given the type
// record looked up once. Every binding that takes or returns an xgrad.Tensor goes through it; it must
// be seen before any of them: every binding file includes this header.
template <>
class type_caster<xgrad::python::PyTensor> : public type_caster_generic {
    using Value = xgrad::python::PyTensor;
    static void* copy(const void* p) { return new Value(*static_cast<const Value*>(p)); }
    static void* move(const void* p) { return new Value(std::move(*const_cast<Value*>(static_cast<const Value*>(p)))); }

public:
    static constexpr auto name = const_name<Value>();
    type_caster() : type_caster_generic(xgrad::python::tensor_type()) {}

    static handle cast(const Value& src, return_value_policy policy, handle parent)
    {
        if (policy == return_value_policy::automatic || policy == return_value_policy::automatic_reference) {
            policy = return_value_policy::copy;
        }
        return cast(&src, policy, parent);
    }
    static handle cast(Value&& src, return_value_policy, handle parent) { return cast(&src, return_value_policy::move, parent); }
    static handle cast(const Value* src, return_value_policy policy, handle parent)
    {
        return type_caster_generic::cast(src, policy, parent, xgrad::python::tensor_type(), copy, move);
    }

    template <typename T>
    using cast_op_type = detail::cast_op_type<T>;
    operator Value*() { return static_cast<Value*>(value); }
    operator Value&()
    {
        if (value == nullptr) throw reference_cast_error();
        return *static_cast<Value*>(value);
    }
};

}  // namespace pybind11::detail
