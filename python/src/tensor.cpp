// The xgrad.Tensor class: construction, numpy sharing both ways (t.numpy(), from_numpy), storage and
// strides, autograd (backward, grad, requires_grad, detach, .data), indexing reads and writes (basic
// indexing is a view), and the in-place methods.
#include <cstring>
#include <tuple>

#include "python/src/pytensor.h"

namespace xgrad::python {

namespace {

// ---- numpy: t.numpy() and np.asarray(t) (through __array__) see the tensor's own memory ------------
void refuse_grad(const PyTensor& t)
{
    if (t.requires_grad()) {
        throw std::runtime_error("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.");
    }
}

// An array over `data` with the tensor's shape and strides (in elements), whose base is a capsule
// holding `keep`: so the array outlives the Python tensor object and stays valid whatever that object
// is later bound to (t.data = other rebinds the tensor, not the array). numpy writes into the memory
// behind the version counter's back, as it does into torch's.
template <class T, class Keep>
py::array array_over(const T* data, const Shape& shape, const std::vector<std::size_t>& strides, Keep keep)
{
    std::vector<py::ssize_t> dims(shape.begin(), shape.end()), bytes(strides.size());
    for (std::size_t d = 0; d < strides.size(); ++d) bytes[d] = static_cast<py::ssize_t>(strides[d] * sizeof(T));
    auto* kept = new Keep(std::move(keep));
    py::capsule base(kept, [](void* p) { delete static_cast<Keep*>(p); });
    return py::array(py::dtype::of<T>(), dims, bytes, const_cast<T*>(data), base);
}

py::array numpy(const PyTensor& t, bool force)
{
    if (!force) refuse_grad(t);
    const Tensor alias = t.value.detach();   // holds the storage itself, not the tensor that may be rebound
    py::array shared = dispatch(alias.dtype(), [&]<class T>(Tag<T>) -> py::array {
        if constexpr (std::is_same_v<T, BFloat16>) {
            throw py::type_error("Got unsupported ScalarType BFloat16: numpy has no bfloat16 (convert with .float() first)");
        } else if constexpr (std::is_same_v<T, Half>) {   // numpy's float16 has the same bits
            const auto* data = reinterpret_cast<const std::uint16_t*>(alias.data_ptr<Half>());
            return array_over(data, alias.shape(), alias.stride(), alias).attr("view")("float16");
        } else {
            return array_over(alias.data_ptr<T>(), alias.shape(), alias.stride(), alias);
        }
    });
    if (force && t.requires_grad()) return shared.attr("copy")();   // torch's numpy(force=True): a copy
    return shared;
}

// torch.from_numpy: the array's memory shared, its dtype and strides kept (the array stays alive while
// the tensor's storage does); an array in another byte order, or off its elements' boundaries, is copied.
PyTensor from_numpy(py::array a)
{
    const Dtype dtype = numpy_dtype(a);
    const auto size = static_cast<py::ssize_t>(element_size(dtype));
    if (!a.dtype().attr("isnative").cast<bool>()) return to_tensor(a);
    const std::size_t n = static_cast<std::size_t>(a.ndim());
    Shape shape(n);
    std::vector<std::size_t> strides(n);
    std::size_t extent = 1;   // the elements from the first to the last, inclusive
    bool empty = false;
    for (std::size_t d = 0; d < n; ++d) {
        const py::ssize_t bytes = a.strides()[d];
        if (bytes < 0) {
            throw std::runtime_error("At least one stride in the given numpy array is negative, and tensors with negative "
                                     "strides are not currently supported. (You can probably work around this by making a "
                                     "copy of your array  with array.copy().) ");
        }
        if (bytes % size != 0) return to_tensor(a);   // not on element boundaries: a copy
        shape[d] = static_cast<std::size_t>(a.shape()[d]);
        strides[d] = static_cast<std::size_t>(bytes / size);
        empty = empty || shape[d] == 0;
        if (shape[d] > 0) extent += (shape[d] - 1) * strides[d];
    }
    auto* owner = new py::object(py::reinterpret_borrow<py::object>(a));
    std::shared_ptr<void> keep(owner, [](void* p) {   // may run where the GIL is not held (a backward)
        py::gil_scoped_acquire gil;
        delete static_cast<py::object*>(p);
    });
    return PyTensor::of(xgrad::from_blob(a.mutable_data(), dtype, shape, strides, empty ? 0 : extent, std::move(keep)));
}

// A Python float or int beside a float32 tensor, for the in-place ops' scalar forms (which take a
// float); nullopt for anything else: scalar_operand makes it a 0-D tensor of torch's dtype
std::optional<double> float_number(const PyTensor& t, py::handle v)
{
    if (t.dtype() != kFloat32) return std::nullopt;   // float64 takes the number as a 0-D float64 tensor: exact
    if (PyFloat_Check(v.ptr()) || (PyLong_Check(v.ptr()) && !PyBool_Check(v.ptr()))) return v.cast<double>();
    return std::nullopt;
}

// where element (0, ..., 0) is, as t.data_ptr()
std::uintptr_t address(const Tensor& t)
{
    return dispatch(t.dtype(), [&]<class T>(Tag<T>) { return reinterpret_cast<std::uintptr_t>(t.data_ptr<T>()); });
}

PyTensor getitem(const PyTensor& self, py::handle index)
{
    Indexed i = index_of(self.value, index);
    if (i.view) return PyTensor::of(std::move(*i.view));
    return PyTensor::of(take(self.value, std::move(i.selection.flat), i.selection.shape, i.selection.op));
}

// x[index] = v: a basic index copies v into the view (x[1:3] = v is x[1:3].copy_(v), recorded when it
// must be); an advanced one writes at its offsets (index_put, recorded when it must be)
void setitem(PyTensor& self, py::handle index, py::handle value)
{
    // a Python number or list is taken in x's dtype (x64[0] = 0.1 keeps 0.1's double), a tensor as it is
    const Tensor values = to_tensor(value, tensor_of(value) ? std::nullopt : std::optional(self.dtype())).value;
    Indexed i = index_of(self.value, index);
    if (i.view) {
        i.view->copy_(values);
        return;
    }
    index_put_(self.value, i.selection.flat, i.selection.shape, values);
}

py::object item(const PyTensor& t)
{
    if (t.numel() != 1) {
        throw std::runtime_error("a Tensor with " + std::to_string(t.numel()) + " elements cannot be converted to Scalar");
    }
    if (t.dtype() == kBool) return py::bool_(t.value.item<bool>());
    if (t.value.is_floating_point()) return py::float_(t.value.item<double>());
    return py::int_(t.value.item<std::int64_t>());
}

}  // namespace

void bind_tensor(py::module_& m)
{
    py::enum_<Dtype> dtype(m, "dtype");   // xgrad.float32 ... : the core's dtypes, with torch's names
    for (int i = 0; i < dtype_count; ++i) dtype.value(dtype_name(static_cast<Dtype>(i)), static_cast<Dtype>(i));
    dtype.def_property_readonly("is_floating_point", [](Dtype d) { return is_floating_point(d); })
        .def_property_readonly("itemsize", [](Dtype d) { return element_size(d); });

    // no buffer protocol (as torch's tensors): np.asarray(t) goes through __array__, whose array keeps
    // the storage itself alive
    py::class_<PyTensor> tensor_class(m, "Tensor");
    tensor_class
        // Tensor(t) is t itself (nn.Parameter(t) is made this way)
        .def(py::init([](py::object data) { return to_tensor(data); }), py::arg("data"))
        .def("numpy", &numpy, py::arg("force") = false,
             "The tensor's own memory as a numpy array, its strides kept: writes show through both ways, as torch's")
        .def_property_readonly("dtype", [](const PyTensor& t) { return t.dtype(); })
        .def_property_readonly("shape", [](const PyTensor& t) { return py::tuple(py::cast(t.shape())); })
        .def("size", [](const PyTensor& t) { return py::tuple(py::cast(t.shape())); })
        .def("size", [](const PyTensor& t, std::int64_t dim) {
                 const Shape s = t.shape();
                 return s[normalize_axis("size", dim, s.size())];
             }, py::arg("dim"))
        .def("dim", [](const PyTensor& t) { return t.shape().size(); })
        .def_property_readonly("ndim", [](const PyTensor& t) { return t.shape().size(); })
        .def("numel", &PyTensor::numel)
        .def("item", &item)
        .def("__len__", [](const PyTensor& t) {
            const Shape s = t.shape();
            if (s.empty()) throw py::type_error("len() of a 0-d tensor");
            return s[0];
        })
        .def("__getitem__", &getitem)
        .def("__setitem__", &setitem)

        // ---- autograd ----
        .def_property("requires_grad", &PyTensor::requires_grad,
                      [](PyTensor& t, bool on) {
                          if (t.value.is_leaf() || on != t.value.requires_grad()) t.value.requires_grad_(on);
                      })
        .def("requires_grad_", [](py::object self, bool on) {
                 self.attr("requires_grad") = on;
                 return self;
             }, py::arg("requires_grad") = true)
        .def_property_readonly("_version", [](const PyTensor& t) { return t.value.version(); })
        .def_property_readonly("is_leaf", [](const PyTensor& t) { return t.value.is_leaf(); })
        .def_property_readonly("_op_name", [](const PyTensor& t) { return t.value.op_name(); })
        .def("retain_grad", [](const PyTensor& t) {
            if (!t.requires_grad()) throw std::runtime_error("can't retain_grad on Tensor that has requires_grad=False");
            t.value.retain_grad();
        })
        .def_property_readonly("retains_grad", [](const PyTensor& t) { return t.requires_grad() && t.value.retains_grad(); })
        .def_property("grad",
                      [](const PyTensor& t) -> py::object {
                          if (RowSparse* s = t.value.sparse_grad()) return py::cast(PyTensor::of(Tensor(s->to_dense(t.shape()[0]))));
                          Tensor g = t.value.grad();
                          return g.defined() ? py::cast(PyTensor::of(g)) : py::none();
                      },
                      [](PyTensor& t, py::object g) {
                          if (g.is_none()) return t.value.set_grad(Tensor());
                          const PyTensor& v = g.cast<const PyTensor&>();
                          if (v.shape() != t.shape()) {
                              throw std::runtime_error("assigned grad has data of a different size: " + shape_str(v.shape()) +
                                                       " for a tensor of " + shape_str(t.shape()));
                          }
                          t.value.set_grad(v.value);
                      })
        .def("backward", [](const PyTensor& t, py::object gradient, std::optional<bool> retain_graph, bool) {
                 if (!t.requires_grad()) {
                     throw std::runtime_error("element 0 of tensors does not require grad and does not have a grad_fn");
                 }
                 Tensor g = gradient.is_none() ? Tensor() : to_tensor(gradient).value;
                 py::gil_scoped_release release;   // other Python threads run during a long backward
                 t.value.backward(g, retain_graph.value_or(false));
             }, py::arg("gradient") = py::none(), py::arg("retain_graph") = py::none(), py::arg("create_graph") = false)
        .def("detach", [](const PyTensor& t) { return PyTensor::of(t.value.detach()); })
        // p.data: the same storage without autograd and with a version counter of its own (so writes
        // through it are not seen by backward, as torch's); `p.data = v` rebinds p to v's storage
        .def_property("data",
                      [](const PyTensor& t) { return PyTensor::of(t.value.variable_data()); },
                      [](PyTensor& t, const PyTensor& v) { t.value.set_data(v.value); })
        .def("_is_same", [](const PyTensor& a, const PyTensor& b) { return a.value.is_same(b.value); })
        .def("_key", [](const PyTensor& t) {   // the tensor's identity, for Python-side de-duplication
            return reinterpret_cast<std::uintptr_t>(t.value.weak_ref().lock().get());
        })

        // ---- storage and strides, as torch's ----
        .def("stride", [](const PyTensor& t) { return py::tuple(py::cast(t.value.stride())); })
        .def("stride", [](const PyTensor& t, std::int64_t dim) {
            return t.value.stride(static_cast<std::ptrdiff_t>(normalize_axis("stride", dim, t.value.dim())));
        }, py::arg("dim"))
        .def("storage_offset", [](const PyTensor& t) { return t.value.storage_offset(); })
        .def("data_ptr", [](const PyTensor& t) { return address(t.value); })
        .def("_is_view", [](const PyTensor& t) { return t.value.is_view(); })
        .def_property_readonly("_base", [](const PyTensor& t) -> py::object {
            if (!t.value.is_view()) return py::none();
            return py::cast(PyTensor::of(t.value.base()));
        })
        // the storage's identity: one value for every tensor that shares it (untyped_storage().data_ptr())
        .def("_storage_ptr", [](const PyTensor& t) {
            return address(t.value) - t.value.storage_offset() * t.value.element_size();
        })

        // ---- dtype and device ----
        .def("_to_dtype", [](const PyTensor& t, py::handle dtype) { return PyTensor::of(t.value.to(dtype_arg(dtype))); })
        .def_property_readonly("device", [](const PyTensor&) { return py::module_::import("xgrad").attr("device")("cpu"); })
        .def_property_readonly("is_cuda", [](const PyTensor&) { return false; })

        // ---- in place, through the core (any dtype): each returns the tensor itself ----
        .def("zero_", [](PyTensor& t) -> PyTensor& { t.value.zero_(); return t; }, py::return_value_policy::reference_internal)
        .def("fill_", [](PyTensor& t, py::handle value) -> PyTensor& {
            t.value.fill_(tensor_of(value) ? tensor_of(value)->value.item<double>() : value.cast<double>());
            return t;
        }, py::return_value_policy::reference_internal)
        .def("copy_", [](PyTensor& t, py::handle src) -> PyTensor& { t.value.copy_(to_tensor(src).value); return t; },
             py::return_value_policy::reference_internal)
        .def("normal_", [](PyTensor& t, float mean, float std) -> PyTensor& { t.value.normal_(mean, std); return t; },
             py::arg("mean") = 0.0f, py::arg("std") = 1.0f, py::return_value_policy::reference_internal)
        .def("uniform_", [](PyTensor& t, float from, float to) -> PyTensor& { t.value.uniform_(from, to); return t; },
             py::arg("from") = 0.0f, py::arg("to") = 1.0f, py::return_value_policy::reference_internal)
        .def("add_", [](PyTensor& t, py::handle other, float alpha) -> PyTensor& {
            const auto n = float_number(t, other);
            n ? t.value.add_(alpha * *n) : t.value.add_(scalar_operand(other, t.value), alpha);
            return t;
        }, py::arg("other"), py::arg("alpha") = 1.0f, py::return_value_policy::reference_internal)
        .def("sub_", [](PyTensor& t, py::handle other, float alpha) -> PyTensor& {
            const auto n = float_number(t, other);
            n ? t.value.sub_(alpha * *n) : t.value.sub_(scalar_operand(other, t.value), alpha);
            return t;
        }, py::arg("other"), py::arg("alpha") = 1.0f, py::return_value_policy::reference_internal)
        .def("mul_", [](PyTensor& t, py::handle other) -> PyTensor& {
            const auto n = float_number(t, other);
            n ? t.value.mul_(*n) : t.value.mul_(scalar_operand(other, t.value));
            return t;
        }, py::return_value_policy::reference_internal)
        .def("div_", [](PyTensor& t, py::handle other) -> PyTensor& {
            const auto n = float_number(t, other);
            n ? t.value.div_(*n) : t.value.div_(scalar_operand(other, t.value));
            return t;
        }, py::return_value_policy::reference_internal)
        .def("clamp_", [](PyTensor& t, std::optional<float> min, std::optional<float> max) -> PyTensor& {
            t.value.clamp_(min, max);
            return t;
        }, py::arg("min") = py::none(), py::arg("max") = py::none(), py::return_value_policy::reference_internal)
        .def("pow_", [](PyTensor& t, py::handle exponent) -> PyTensor& {
            const auto p = float_number(t, exponent);
            p ? t.value.pow_(*p) : t.value.pow_(scalar_operand(exponent, t.value));   // a tensor exponent gets its gradient
            return t;
        }, py::return_value_policy::reference_internal)
        .def("masked_fill_", [](PyTensor& t, const PyTensor& mask, py::handle value) -> PyTensor& {
            t.value.masked_fill_(mask.mask(), tensor_of(value) ? tensor_of(value)->value.item<float>() : value.cast<float>());
            return t;
        }, py::return_value_policy::reference_internal);
    tensor_class.attr("clip_") = tensor_class.attr("clamp_");

    // x.exp_() and the other one-argument maps in place
    using InPlace = const Tensor& (Tensor::*)() const;
    const std::pair<const char*, InPlace> maps[] = {
        {"exp_", &Tensor::exp_}, {"log_", &Tensor::log_}, {"sqrt_", &Tensor::sqrt_}, {"tanh_", &Tensor::tanh_},
        {"sigmoid_", &Tensor::sigmoid_}, {"relu_", &Tensor::relu_}, {"neg_", &Tensor::neg_},
    };
    for (const auto& [name, in_place] : maps) {
        tensor_class.def(name, [in_place = in_place](PyTensor& t) -> PyTensor& {
            (t.value.*in_place)();
            return t;
        }, py::return_value_policy::reference_internal);
    }
    m.def("_from_numpy", &from_numpy);
}

}  // namespace xgrad::python
