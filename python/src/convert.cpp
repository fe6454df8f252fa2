// From Python values to tensors and shapes: numbers, nested lists, numpy arrays, dtypes, devices.
#include <cstring>

#include "python/src/pytensor.h"

namespace xgrad::python {

const char* dtype_name(DType d)
{
    switch (d) {
    case DType::float32: return "float32";
    case DType::int64: return "int64";
    case DType::bool_: return "bool";
    case DType::float64: return "float64";
    case DType::float16: return "float16";
    case DType::bfloat16: return "bfloat16";
    case DType::uint8: return "uint8";
    case DType::int8: return "int8";
    case DType::int16: return "int16";
    }
    return "?";
}

void unsupported_dtype(DType d)
{
    throw py::type_error(std::string("xgrad: tensors of dtype xgrad.") + dtype_name(d) + " are not supported from Python " +
                         "yet (its C++ core stores them: Tensor::to(k...)); use xgrad.float32, xgrad.float64, " +
                         "xgrad.long or xgrad.bool");
}

Shape PyTensor::shape() const
{
    switch (dtype) {
    case DType::float32:
    case DType::float64: return value.shape();
    case DType::int64: return Shape(ints->shape().begin(), ints->shape().end());
    case DType::bool_: return Shape(bools->shape().begin(), bools->shape().end());
    default: break;   // a dtype no tensor holds (refused when made: unsupported_dtype)
    }
    return {};
}

std::size_t PyTensor::numel() const
{
    switch (dtype) {
    case DType::float32:
    case DType::float64: return value.numel();
    case DType::int64: return ints->size();
    case DType::bool_: return bools->size();
    default: break;   // a dtype no tensor holds (refused when made: unsupported_dtype)
    }
    return 0;
}

Tensor PyTensor::f() const
{
    switch (dtype) {
    case DType::float32:
    case DType::float64: return value;
    case DType::int64: return Tensor(Array(xt::cast<float>(*ints)));
    case DType::bool_: return Tensor(Array(xt::cast<float>(*bools)));
    default: break;   // a dtype no tensor holds (refused when made: unsupported_dtype)
    }
    return {};
}

const IdArray& PyTensor::ids(const char* who) const
{
    if (dtype != DType::int64) {   // RuntimeError, as torch's; never truncated (1.7 -> 1, NaN -> INT64_MIN)
        throw std::runtime_error(std::string(who) + ": expected a tensor of ids of dtype xgrad.long (int64), got " +
                                 dtype_name(dtype) + " (convert with .long(), or build it with dtype=xgrad.long)");
    }
    return *ints;
}

BoolArray PyTensor::mask() const
{
    switch (dtype) {
    case DType::bool_: return *bools;
    case DType::int64: return BoolArray(xt::not_equal(*ints, std::int64_t(0)));
    case DType::float32: return BoolArray(xt::not_equal(value.to_array(), 0.0f));
    case DType::float64: {
        const Tensor m = value.detach().to(Dtype::Bool);   // != 0, NaN true
        BoolArray out = BoolArray::from_shape(shape());
        if (out.size()) std::memcpy(out.data(), m.data_ptr<bool>(), out.size());
        return out;
    }
    default: break;   // a dtype no tensor holds (refused when made: unsupported_dtype)
    }
    return {};
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

DType dtype_arg(py::handle dtype)
{
    if (py::isinstance<DType>(dtype)) return dtype.cast<DType>();
    if (dtype.ptr() == reinterpret_cast<PyObject*>(&PyFloat_Type)) return DType::float32;
    if (dtype.ptr() == reinterpret_cast<PyObject*>(&PyLong_Type)) return DType::int64;
    if (dtype.ptr() == reinterpret_cast<PyObject*>(&PyBool_Type)) return DType::bool_;
    if (py::isinstance<py::str>(dtype)) {
        const auto s = dtype.cast<std::string>();
        if (s == "float32" || s == "float") return DType::float32;
        if (s == "int64" || s == "long") return DType::int64;
        if (s == "float64" || s == "double") return DType::float64;
        if (s == "float16" || s == "half") return DType::float16;
        if (s == "bfloat16") return DType::bfloat16;
        if (s == "bool") return DType::bool_;
    }
    throw py::type_error("xgrad: dtype must be xgrad.float32, xgrad.float64, xgrad.long (int64) or xgrad.bool, got " +
                         std::string(py::repr(dtype)));
}

void check_device(py::handle device)
{
    if (device.is_none()) return;
    std::string s = py::str(device);
    if (py::hasattr(device, "type")) s = py::str(device.attr("type"));
    if (s == "cpu" || s.rfind("cpu:", 0) == 0) return;
    throw std::runtime_error("xgrad runs on the CPU only: device '" + s + "' is not available (use device='cpu')");
}

PyTensor as_dtype(const PyTensor& t, DType dtype)
{
    if (t.dtype == dtype) return t;
    switch (dtype) {
    case DType::float16: case DType::bfloat16: case DType::uint8: case DType::int8: case DType::int16:
        unsupported_dtype(dtype);
    case DType::float32:   // from float64 recorded, as torch's .float()
        return PyTensor::of(t.dtype == DType::float64 ? t.value.to(Dtype::Float) : t.f().detach());
    case DType::float64: return PyTensor::of(t.is_float() ? t.value.to(Dtype::Double) : t.f().to(Dtype::Double));
    case DType::int64: {
        if (t.dtype == DType::bool_) return PyTensor::of(IdArray(xt::cast<std::int64_t>(*t.bools)));
        const Tensor ids = t.value.detach().to(Dtype::Long).contiguous();   // toward 0, as PyTorch's
        IdArray out = IdArray::from_shape(t.shape());
        if (out.size()) std::memcpy(out.data(), ids.data_ptr<std::int64_t>(), out.size() * sizeof(std::int64_t));
        return PyTensor::of(std::move(out));
    }
    case DType::bool_: return PyTensor::of(t.mask());
    }
    return t;
}

PyTensor to_tensor(py::handle data, std::optional<DType> dtype)
{
    if (py::isinstance<PyTensor>(data)) {
        const auto& t = data.cast<const PyTensor&>();
        return dtype ? as_dtype(t, *dtype) : t;
    }
    if (data.is_none()) throw py::type_error("xgrad: expected a tensor, a number, a list or a numpy array, got None");
    py::array a = py::module_::import("numpy").attr("asarray")(data);
    const char kind = a.dtype().kind();
    DType want;
    if (dtype) {
        want = *dtype;
    } else if (kind == 'f') {
        want = DType::float32;
    } else if (kind == 'i' || kind == 'u') {
        want = DType::int64;
    } else if (kind == 'b') {
        want = DType::bool_;
    } else {
        throw py::type_error("xgrad: can't convert np.ndarray of type numpy." + std::string(py::str(a.dtype())) +
                             ". The only supported types are: float32 (float64 and float16 converted to it), int64 "
                             "(other integer types converted to it), and bool.");
    }
    if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b') {
        throw py::type_error("xgrad: can't convert np.ndarray of type numpy." + std::string(py::str(a.dtype())) +
                             " to a tensor of " + dtype_name(want));
    }
    Shape shape(a.shape(), a.shape() + a.ndim());
    switch (want) {
    case DType::float16: case DType::bfloat16: case DType::uint8: case DType::int8: case DType::int16:
        unsupported_dtype(want);
    case DType::float64: {
        auto c = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
        Array64 out = Array64::from_shape(shape);
        if (out.size()) std::memcpy(out.data(), c.data(), out.size() * sizeof(double));
        return PyTensor::of(Tensor(std::move(out)));
    }
    case DType::float32: {
        auto c = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
        Array out = Array::from_shape(shape);
        if (out.size()) std::memcpy(out.data(), c.data(), out.size() * sizeof(float));
        return PyTensor::of(Tensor(std::move(out)));
    }
    case DType::int64: {
        if (kind == 'f') a = a.attr("astype")("int64");
        auto c = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
        IdArray out = IdArray::from_shape(shape);
        if (out.size()) std::memcpy(out.data(), c.data(), out.size() * sizeof(std::int64_t));
        return PyTensor::of(std::move(out));
    }
    case DType::bool_: {
        py::array b = a.attr("astype")("bool");
        auto c = py::array_t<bool, py::array::c_style | py::array::forcecast>::ensure(b);
        BoolArray out = BoolArray::from_shape(shape);
        if (out.size()) std::memcpy(out.data(), c.data(), out.size() * sizeof(bool));
        return PyTensor::of(std::move(out));
    }
    }
    return {};
}

}  // namespace xgrad::python
