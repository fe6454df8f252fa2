// From Python values to tensors and shapes: numbers, nested lists, numpy arrays, dtypes, devices.
#include <cstring>

#include "python/src/pytensor.h"

namespace xgrad::python {

const Tensor& PyTensor::ids(const char* who) const
{
    if (value.dtype() != kInt64) {   // RuntimeError, as torch's; never truncated (1.7 -> 1, NaN -> INT64_MIN)
        throw std::runtime_error(std::string(who) + ": expected a tensor of ids of dtype xgrad.long (int64), got " +
                                 dtype_name(value.dtype()) + " (convert with .long(), or build it with dtype=xgrad.long)");
    }
    return value;
}

Tensor id_tensor(const IdArray& ids)
{
    return from_vector(std::vector<std::int64_t>(ids.begin(), ids.end()), Shape(ids.shape().begin(), ids.shape().end()));
}

namespace {

std::size_t size_arg(const char* op, py::handle obj)
{
    if (PyBool_Check(obj.ptr()) || !PyIndex_Check(obj.ptr())) {
        throw py::type_error(std::string(op) + "(): sizes must be ints, got " +
                             std::string(py::str(py::type::of(obj).attr("__name__"))));
    }
    const auto v = index_value(obj);
    if (v < 0) throw std::runtime_error(std::string(op) + "(): trying to create a tensor with negative dimension " + std::to_string(v));
    return static_cast<std::size_t>(v);
}

}  // namespace

Shape shape_from(const char* op, py::handle sizes)
{
    Shape shape;
    if (py::isinstance<py::tuple>(sizes) || py::isinstance<py::list>(sizes)) {
        for (py::handle s : sizes) shape.push_back(size_arg(op, s));
    } else {
        shape.push_back(size_arg(op, sizes));
    }
    shape_numel(shape, op);   // a product past 2^64 is an error here, not a tiny allocation
    return shape;
}

Shape shape_arg(const char* op, const py::args& args)
{
    if (args.size() == 1 && (py::isinstance<py::tuple>(args[0]) || py::isinstance<py::list>(args[0]))) {
        return shape_from(op, args[0]);
    }
    Shape shape;
    for (py::handle s : args) shape.push_back(size_arg(op, s));
    shape_numel(shape, op);
    return shape;
}

Dtype dtype_arg(py::handle dtype)
{
    if (py::isinstance<Dtype>(dtype)) return dtype.cast<Dtype>();
    if (dtype.ptr() == reinterpret_cast<PyObject*>(&PyFloat_Type)) return default_dtype();   // as torch: float is the default
    if (dtype.ptr() == reinterpret_cast<PyObject*>(&PyLong_Type)) return kInt64;
    if (dtype.ptr() == reinterpret_cast<PyObject*>(&PyBool_Type)) return kBool;
    if (py::isinstance<py::str>(dtype)) {
        const auto s = dtype.cast<std::string>();
        for (int i = 0; i < dtype_count; ++i) {
            if (s == dtype_name(static_cast<Dtype>(i))) return static_cast<Dtype>(i);
        }
    }
    throw py::type_error("xgrad: dtype must be one of xgrad's dtypes (xgrad.float32, xgrad.float64, xgrad.long, xgrad.int32, "
                         "xgrad.bool, ...), got " + std::string(py::repr(dtype)));
}

void check_device(py::handle device)
{
    if (device.is_none()) return;
    std::string s = py::str(device);
    if (py::hasattr(device, "type")) s = py::str(device.attr("type"));
    if (s == "cpu" || s.rfind("cpu:", 0) == 0) return;
    throw std::runtime_error("xgrad runs on the CPU only: device '" + s + "' is not available (use device='cpu')");
}

// The dtype torch gives a numpy array (its own), or a TypeError naming the ones it takes
Dtype numpy_dtype(const py::array& a)
{
    const char kind = a.dtype().kind();
    const auto size = a.itemsize();
    if (kind == 'f' && size == 4) return kFloat32;
    if (kind == 'f' && size == 8) return kFloat64;
    if (kind == 'f' && size == 2) return kFloat16;
    if (kind == 'i' && size == 8) return kInt64;
    if (kind == 'i' && size == 4) return kInt32;
    if (kind == 'i' && size == 2) return kInt16;
    if (kind == 'i' && size == 1) return kInt8;
    if (kind == 'u' && size == 1) return kUInt8;
    if (kind == 'b') return kBool;
    throw py::type_error("can't convert np.ndarray of type numpy." + std::string(py::str(a.dtype())) + ". The only supported " +
                         "types are: float64, float32, float16, int64, int32, int16, int8, uint8, and bool.");
}

namespace {

// The dtype torch.tensor infers for Python data (lists, numbers): floats the default, ints int64
Dtype python_dtype(const py::array& a)
{
    const char kind = a.dtype().kind();
    if (kind == 'f') return default_dtype();
    if (kind == 'i' || kind == 'u') return kInt64;
    if (kind == 'b') return kBool;
    throw py::type_error("xgrad: could not infer a dtype for " + std::string(py::str(a.dtype())) + " data");
}

// a row-major copy of a numpy array of dtype `d` (float16 through float32: pybind11 has no half type)
Tensor from_array(const py::array& a, Dtype d)
{
    const Shape shape(a.shape(), a.shape() + a.ndim());
    const Dtype held = d == kFloat16 ? kFloat32 : d;
    Tensor out = empty(shape, held);
    dispatch(held, [&]<class T>(Tag<T>) {
        if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
            fail("internal: a numpy copy into a half type");
        } else {
            auto c = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
            if (!c) throw py::error_already_set();
            if (out.numel() > 0) std::memcpy(const_cast<T*>(out.data_ptr<T>()), c.data(), out.numel() * sizeof(T));
        }
    });
    return out.to(d);
}

}  // namespace

PyTensor to_tensor(py::handle data, std::optional<Dtype> dtype)
{
    if (const PyTensor* t = tensor_of(data)) return dtype ? PyTensor::of(t->value.to(*dtype)) : *t;
    if (data.is_none()) throw py::type_error("xgrad: expected a tensor, a number, a list or a numpy array, got None");
    const bool numpy = py::isinstance<py::array>(data) || py::hasattr(data, "dtype");   // an array or a numpy scalar
    py::array a = py::module_::import("numpy").attr("asarray")(data);
    const Tensor t = from_array(a, numpy_dtype(a));   // then converted as the core converts (torch's values)
    return PyTensor::of(t.to(dtype.value_or(numpy ? t.dtype() : python_dtype(a))));
}

Tensor scalar_operand(py::handle v, const Tensor& x)
{
    if (const PyTensor* t = tensor_of(v)) return t->value;
    if (PyBool_Check(v.ptr())) return full({}, v.ptr() == Py_True ? 1.0 : 0.0, kBool);
    if (PyLong_Check(v.ptr())) return from_vector<std::int64_t>({v.cast<std::int64_t>()}, {});
    if (PyFloat_Check(v.ptr())) return full({}, v.cast<double>(), x.is_floating_point() ? x.dtype() : default_dtype());
    return to_tensor(v).value;
}

}  // namespace xgrad::python
