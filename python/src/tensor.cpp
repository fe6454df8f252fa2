// The xgrad.Tensor class: construction, numpy sharing (t.numpy(), the buffer protocol), autograd
// (backward, grad, requires_grad, detach), indexing reads and writes, and the in-place methods.
#include <cstring>

#include "python/src/pytensor.h"

namespace xgrad::python {

namespace {

// ---- numpy: t.numpy() and np.asarray(t) see the tensor's own buffer -------------------------------
void refuse_grad(const PyTensor& t)
{
    if (t.requires_grad()) {
        throw std::runtime_error("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.");
    }
}

// numpy writes into the tensor's memory behind the version counter's back, as it does into torch's
template <class T>
py::buffer_info buffer_of(const T* values, const Shape& shape, bool readonly = false)
{
    T* data = const_cast<T*>(values);
    std::vector<py::ssize_t> dims(shape.begin(), shape.end()), strides(shape.size(), sizeof(T));
    for (std::size_t d = shape.size(); d-- > 1;) strides[d - 1] = strides[d] * static_cast<py::ssize_t>(shape[d]);
    return py::buffer_info(data, sizeof(T), py::format_descriptor<T>::format(), static_cast<py::ssize_t>(shape.size()),
                           dims, strides, readonly);
}

py::buffer_info buffer(PyTensor& t)
{
    refuse_grad(t);
    switch (t.dtype) {
    case DType::float32: return buffer_of(t.value.data().data(), t.shape());
    case DType::int64: return buffer_of(t.ints->data(), t.shape());
    case DType::bool_: return buffer_of(t.bools->data(), t.shape());
    }
    throw std::logic_error("buffer: unknown dtype");
}

// The array's base is a capsule holding its own handle on the storage, so the array outlives the
// Python tensor object, and stays valid whatever that object is later bound to.
py::array numpy(const PyTensor& t, bool force)
{
    if (!force) refuse_grad(t);
    auto* keep = new PyTensor(t);
    py::capsule base(keep, [](void* p) { delete static_cast<PyTensor*>(p); });
    const py::buffer_info info = force && t.requires_grad() ? buffer_of(t.value.data().data(), t.shape()) : buffer(*keep);
    py::array shared(py::dtype(info), info.shape, info.strides, info.ptr, base);
    if (force && t.requires_grad()) return shared.attr("copy")();   // torch's numpy(force=True): a copy
    return shared;
}

// ---- in-place methods -------------------------------------------------------------------------------
// A write into a tensor that is part of a graph replaces the Python object's handle with the
// result of the out-of-place op, so the graph sees it as PyTorch's autograd does; a leaf that
// requires grad refuses, as in PyTorch. Otherwise the values are written into the tensor's own
// buffer, where numpy arrays of it see them.
template <class Op>
PyTensor& inplace(PyTensor& self, const char* name, Op op)
{
    if (!self.is_float()) {
        PyTensor result = op(self.f());
        PyTensor converted = as_dtype(result, self.dtype);
        if (self.dtype == DType::int64) *self.ints = *converted.ints;
        else *self.bools = *converted.bools;
        return self;
    }
    if (is_grad_enabled() && self.requires_grad()) {
        if (self.value.is_leaf()) {
            throw std::runtime_error(std::string(name) + ": a leaf Variable that requires grad is being used in an "
                                     "in-place operation (wrap it in `with xgrad.no_grad():`)");
        }
        self.value = op(self.value).f();
        return self;
    }
    Tensor result;
    {
        NoGradGuard no_grad;
        result = op(self.value).f();
    }
    Array& data = self.value.mutable_data();
    XGRAD_CHECK(result.shape() == self.shape(), name, ": the result ", shape_str(result.shape()),
                " does not fit the tensor ", shape_str(self.shape()), " it would be written into");
    if (data.size()) std::memcpy(data.data(), result.data().data(), data.size() * sizeof(float));
    return self;
}

PyTensor getitem(const PyTensor& self, py::handle index)
{
    Selection s = select(self.shape(), index);
    switch (self.dtype) {
    case DType::float32: return PyTensor::of(take(self.f(), std::move(s.flat), s.shape, s.op));
    case DType::int64: {
        IdArray out = IdArray::from_shape(s.shape);
        for (std::size_t i = 0; i < s.flat.size(); ++i) out.data()[i] = self.ints->data()[s.flat[i]];
        return PyTensor::of(std::move(out));
    }
    case DType::bool_: {
        BoolArray out = BoolArray::from_shape(s.shape);
        for (std::size_t i = 0; i < s.flat.size(); ++i) out.data()[i] = self.bools->data()[s.flat[i]];
        return PyTensor::of(std::move(out));
    }
    }
    return self;
}

void setitem(PyTensor& self, py::handle index, py::handle value)
{
    const Selection s = select(self.shape(), index);
    PyTensor v = to_tensor(value, self.dtype == DType::float32 && py::isinstance<PyTensor>(value) ? std::nullopt
                                                                                                   : std::optional(self.dtype));
    if (self.is_float()) {
        Tensor values = v.f();
        if (is_grad_enabled() && (self.requires_grad() || values.requires_grad())) {
            if (self.requires_grad() && self.value.is_leaf()) {
                throw std::runtime_error("a leaf Variable that requires grad is being used in an in-place operation "
                                         "(x[...] = v); wrap it in `with xgrad.no_grad():`");
            }
            self.value = index_put(self.value, s.flat, s.shape, values);
            return;
        }
        const Array b = broadcast_to(values.data(), s.shape);
        float* data = self.value.mutable_data().data();
        for (std::size_t i = 0; i < s.flat.size(); ++i) data[s.flat[i]] = b.data()[i];
        return;
    }
    PyTensor w = as_dtype(v, self.dtype);
    if (self.dtype == DType::int64) {
        const IdArray b = xt::broadcast(*w.ints, s.shape);
        for (std::size_t i = 0; i < s.flat.size(); ++i) self.ints->data()[s.flat[i]] = b.data()[i];
    } else {
        const BoolArray b = xt::broadcast(*w.bools, s.shape);
        for (std::size_t i = 0; i < s.flat.size(); ++i) self.bools->data()[s.flat[i]] = b.data()[i];
    }
}

py::object item(const PyTensor& t)
{
    if (t.numel() != 1) {
        throw std::runtime_error("a Tensor with " + std::to_string(t.numel()) + " elements cannot be converted to Scalar");
    }
    switch (t.dtype) {
    case DType::float32: return py::float_(t.value.data().data()[0]);
    case DType::int64: return py::int_(t.ints->data()[0]);
    case DType::bool_: return py::bool_(t.bools->data()[0]);
    }
    return py::none();
}

}  // namespace

void bind_tensor(py::module_& m)
{
    py::enum_<DType>(m, "dtype")
        .value("float32", DType::float32)
        .value("int64", DType::int64)
        .value("bool", DType::bool_)
        .def("__repr__", [](DType d) { return std::string("xgrad.") + dtype_name(d); })
        .def("__str__", [](DType d) { return std::string("xgrad.") + dtype_name(d); })
        .def_property_readonly("is_floating_point", [](DType d) { return d == DType::float32; })
        .def_property_readonly("itemsize", [](DType d) { return d == DType::float32 ? 4 : d == DType::int64 ? 8 : 1; });

    py::class_<PyTensor>(m, "Tensor", py::buffer_protocol())
        // Tensor(t) shares t's node (nn.Parameter(t) is made this way), as a tensor of its own, not a .data view
        .def(py::init([](py::object data) {
                 PyTensor t = to_tensor(data);
                 t.data_view = false;
                 return t;
             }), py::arg("data"))
        .def_buffer([](PyTensor& t) { return buffer(t); })
        .def("numpy", &numpy, py::arg("force") = false,
             "The tensor's own buffer as a numpy array: writes show through both ways, as torch's numpy()")
        .def_property_readonly("dtype", [](const PyTensor& t) { return t.dtype; })
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
                          if (!t.is_float()) {
                              if (on) throw std::runtime_error("only Tensors of floating point dtype can require gradients");
                              return;
                          }
                          if (t.value.is_leaf() || on != t.value.requires_grad()) t.value.requires_grad_(on);
                      })
        .def("requires_grad_", [](py::object self, bool on) {
                 self.attr("requires_grad") = on;
                 return self;
             }, py::arg("requires_grad") = true)
        .def_property_readonly("_version", [](const PyTensor& t) { return t.is_float() ? t.value.version() : 0; })
        .def_property_readonly("is_leaf", [](const PyTensor& t) { return !t.is_float() || t.value.is_leaf(); })
        .def_property_readonly("_op_name", [](const PyTensor& t) { return t.is_float() ? t.value.op_name() : ""; })
        .def("retain_grad", [](const PyTensor& t) {
            if (!t.requires_grad()) throw std::runtime_error("can't retain_grad on Tensor that has requires_grad=False");
            t.value.retain_grad();
        })
        .def_property_readonly("retains_grad", [](const PyTensor& t) { return t.requires_grad() && t.value.retains_grad(); })
        .def_property("grad",
                      [](const PyTensor& t) -> py::object {
                          if (!t.is_float()) return py::none();
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
                          t.value.set_grad(v.f());
                      })
        .def("backward", [](const PyTensor& t, py::object gradient, std::optional<bool> retain_graph, bool) {
                 if (!t.requires_grad()) {
                     throw std::runtime_error("element 0 of tensors does not require grad and does not have a grad_fn");
                 }
                 Tensor g = gradient.is_none() ? Tensor() : to_tensor(gradient).f();
                 py::gil_scoped_release release;   // other Python threads run during a long backward
                 t.value.backward(g, retain_graph.value_or(false));
             }, py::arg("gradient") = py::none(), py::arg("retain_graph") = py::none(), py::arg("create_graph") = false)
        .def("detach", [](const PyTensor& t) { return t.is_float() ? PyTensor::of(t.value.detach()) : t; })
        // p.data: the same storage without autograd; `p.data = v` (and so `p.data += v`) sets the values
        .def_property("data",
                      [](const PyTensor& t) {
                          PyTensor view = t;
                          view.data_view = t.is_float();
                          return view;
                      },
                      [](PyTensor& t, const PyTensor& v) {
                          if (v.is_float() && t.is_float() && v.value.is_same(t.value)) return;   // x.data += ...: done in place
                          if (!t.is_float() || !v.is_float()) {
                              throw py::type_error("xgrad: .data can only be set on float tensors, from a float tensor");
                          }
                          t.value.mutable_data() = v.value.data();   // a copy of the values (and of the shape, as torch's)
                      })
        .def("_is_same", [](const PyTensor& a, const PyTensor& b) {
            return a.is_float() && b.is_float() ? a.value.is_same(b.value)
                   : a.dtype == DType::int64    ? a.ints == b.ints
                                                : a.bools == b.bools;
        })
        .def("_key", [](const PyTensor& t) {   // the storage's identity, for Python-side de-duplication
            return reinterpret_cast<std::uintptr_t>(t.is_float() ? t.value.weak_ref().lock().get()
                                                    : t.dtype == DType::int64 ? static_cast<const void*>(t.ints.get())
                                                                              : static_cast<const void*>(t.bools.get()));
        })

        // ---- dtype and device ----
        .def("_to_dtype", [](const PyTensor& t, py::handle dtype) { return as_dtype(t, dtype_arg(dtype)); })
        .def_property_readonly("device", [](const PyTensor&) { return py::module_::import("xgrad").attr("device")("cpu"); })
        .def_property_readonly("is_cuda", [](const PyTensor&) { return false; })

        // ---- in place ----
        .def("zero_", [](PyTensor& t) -> PyTensor& {
            return inplace(t, "zero_", [](const Tensor& x) { return PyTensor::of(zeros(x.shape())); });
        }, py::return_value_policy::reference_internal)
        .def("fill_", [](PyTensor& t, float v) -> PyTensor& {
            return inplace(t, "fill_", [v](const Tensor& x) { return PyTensor::of(full(x.shape(), v)); });
        }, py::return_value_policy::reference_internal)
        .def("copy_", [](PyTensor& t, py::handle src) -> PyTensor& {
            Tensor s = to_tensor(src).f();
            return inplace(t, "copy_", [s](const Tensor& x) {
                return PyTensor::of(add(mul(x, 0.0f), s));   // s broadcast to x's shape, the gradient to s
            });
        }, py::return_value_policy::reference_internal)
        .def("normal_", [](PyTensor& t, float mean, float std) -> PyTensor& {
            return inplace(t, "normal_", [=](const Tensor& x) {
                Array a = Array::from_shape(x.shape());
                default_generator().normal_(a, mean, std);
                return PyTensor::of(Tensor(std::move(a)));
            });
        }, py::arg("mean") = 0.0f, py::arg("std") = 1.0f, py::return_value_policy::reference_internal)
        .def("uniform_", [](PyTensor& t, float from, float to) -> PyTensor& {
            return inplace(t, "uniform_", [=](const Tensor& x) {
                Array a = Array::from_shape(x.shape());
                default_generator().uniform_(a, from, to);
                return PyTensor::of(Tensor(std::move(a)));
            });
        }, py::arg("from") = 0.0f, py::arg("to") = 1.0f, py::return_value_policy::reference_internal)
        .def("add_", [](PyTensor& t, py::handle other, float alpha) -> PyTensor& {
            Tensor o = to_tensor(other).f();
            return inplace(t, "add_", [o, alpha](const Tensor& x) { return PyTensor::of(add(x, alpha == 1.0f ? o : mul(o, alpha))); });
        }, py::arg("other"), py::arg("alpha") = 1.0f, py::return_value_policy::reference_internal)
        .def("sub_", [](PyTensor& t, py::handle other, float alpha) -> PyTensor& {
            Tensor o = to_tensor(other).f();
            return inplace(t, "sub_", [o, alpha](const Tensor& x) { return PyTensor::of(sub(x, alpha == 1.0f ? o : mul(o, alpha))); });
        }, py::arg("other"), py::arg("alpha") = 1.0f, py::return_value_policy::reference_internal)
        .def("mul_", [](PyTensor& t, py::handle other) -> PyTensor& {
            Tensor o = to_tensor(other).f();
            return inplace(t, "mul_", [o](const Tensor& x) { return PyTensor::of(mul(x, o)); });
        }, py::return_value_policy::reference_internal)
        .def("div_", [](PyTensor& t, py::handle other) -> PyTensor& {
            Tensor o = to_tensor(other).f();
            return inplace(t, "div_", [o](const Tensor& x) { return PyTensor::of(div(x, o)); });
        }, py::return_value_policy::reference_internal)
        .def("masked_fill_", [](PyTensor& t, const PyTensor& mask, float v) -> PyTensor& {
            Tensor m(Array(xt::cast<float>(mask.mask())));
            return inplace(t, "masked_fill_", [m, v](const Tensor& x) { return PyTensor::of(masked_fill(x, m, v)); });
        }, py::return_value_policy::reference_internal);
}

}  // namespace xgrad::python
