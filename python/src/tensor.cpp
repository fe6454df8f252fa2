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

std::vector<std::size_t> row_major(const Shape& shape)
{
    std::vector<std::size_t> strides(shape.size(), 1);
    for (std::size_t d = shape.size(); d-- > 1;) strides[d - 1] = strides[d] * shape[d];
    return strides;
}

py::array numpy(const PyTensor& t, bool force)
{
    if (!force) refuse_grad(t);
    switch (t.dtype) {
    case DType::float32:
    case DType::float64: {
        Tensor alias = t.value.detach();   // holds the storage itself, not the tensor that may be rebound
        py::array shared = t.dtype == DType::float64
                               ? array_over(alias.data_ptr<double>(), alias.shape(), alias.stride(), alias)
                               : array_over(alias.data_ptr(), alias.shape(), alias.stride(), alias);
        if (force && t.requires_grad()) return shared.attr("copy")();   // torch's numpy(force=True): a copy
        return shared;
    }
    case DType::int64: return array_over(t.ints->data(), t.shape(), row_major(t.shape()), t.ints);
    case DType::bool_: return array_over(t.bools->data(), t.shape(), row_major(t.shape()), t.bools);
    default: break;   // a dtype no tensor holds (refused when made: unsupported_dtype)
    }
    throw std::logic_error("numpy: unknown dtype");
}

// torch.from_numpy: a float32 array's memory shared, its strides kept (the array stays alive while the
// tensor's storage does); other dtypes are converted, a copy.
PyTensor from_numpy(py::array a)
{
    if (!py::isinstance<py::array_t<float>>(a) || a.dtype().kind() != 'f' || a.itemsize() != 4) return to_tensor(a);
    const std::size_t n = static_cast<std::size_t>(a.ndim());
    Shape shape(n);
    std::vector<std::size_t> strides(n);
    std::size_t extent = 1;   // the floats from the first element to the last, inclusive
    bool empty = false;
    for (std::size_t d = 0; d < n; ++d) {
        const py::ssize_t bytes = a.strides()[d];
        if (bytes < 0) {
            throw std::runtime_error("At least one stride in the given numpy array is negative, and tensors with negative "
                                     "strides are not currently supported. (You can probably work around this by making a "
                                     "copy of your array  with array.copy().) ");
        }
        if (bytes % 4 != 0) return to_tensor(a);   // not on float boundaries: a copy
        shape[d] = static_cast<std::size_t>(a.shape()[d]);
        strides[d] = static_cast<std::size_t>(bytes / 4);
        empty = empty || shape[d] == 0;
        if (shape[d] > 0) extent += (shape[d] - 1) * strides[d];
    }
    auto* owner = new py::object(py::reinterpret_borrow<py::object>(a));
    std::shared_ptr<void> keep(owner, [](void* p) {   // may run where the GIL is not held (a backward)
        py::gil_scoped_acquire gil;
        delete static_cast<py::object*>(p);
    });
    return PyTensor::of(xgrad::from_blob(static_cast<float*>(a.mutable_data()), shape, strides, empty ? 0 : extent,
                                         std::move(keep)));
}

// ---- in-place methods -------------------------------------------------------------------------------
// Float tensors write through the core's in-place ops: into their storage, every view of it, and
// numpy arrays of it, with autograd (a leaf that requires grad refuses while grad is on, as torch's;
// one with history is rebased onto the op). Ids and masks take the result's values.
template <class FloatOp, class Fallback>
PyTensor& inplace(PyTensor& self, FloatOp float_op, Fallback fallback)
{
    if (self.is_float()) {
        float_op(self.value);
        return self;
    }
    PyTensor converted = as_dtype(fallback(self.f()), self.dtype);
    XGRAD_CHECK(converted.shape() == self.shape(), "in-place: the result ", shape_str(converted.shape()),
                " does not fit the tensor ", shape_str(self.shape()), " it would be written into");
    if (self.dtype == DType::int64) *self.ints = *converted.ints;
    else *self.bools = *converted.bools;
    return self;
}

// An operand of an in-place op: a Python number, or a tensor (anything else converted to one)
std::optional<float> number_of(py::handle v)
{
    if (PyFloat_Check(v.ptr()) || (PyLong_Check(v.ptr()) && !PyBool_Check(v.ptr()))) return v.cast<float>();
    return std::nullopt;
}

PyTensor getitem(const PyTensor& self, py::handle index)
{
    if (self.is_float()) {
        Indexed i = index_of(self.value, index);
        if (i.view) return PyTensor::of(std::move(*i.view));
        return PyTensor::of(take(self.value, std::move(i.selection.flat), i.selection.shape, i.selection.op));
    }
    Selection s = select(self.shape(), index);
    switch (self.dtype) {
    case DType::float32:
    case DType::float64: return PyTensor::of(take(self.f(), std::move(s.flat), s.shape, s.op));
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
    default: break;   // a dtype no tensor holds (refused when made: unsupported_dtype)
    }
    return self;
}

// x[index] = v: a basic index copies v into the view (x[1:3] = v is x[1:3].copy_(v), recorded when it
// must be); an advanced one writes at its offsets (index_put, recorded when it must be)
void setitem(PyTensor& self, py::handle index, py::handle value)
{
    PyTensor v = to_tensor(value, self.is_float() && py::isinstance<PyTensor>(value) ? std::nullopt
                                                                                      : std::optional(self.dtype));
    if (self.is_float()) {
        const Tensor values = v.f();
        Indexed i = index_of(self.value, index);
        if (i.view) {
            i.view->copy_(values);
            return;
        }
        const Selection& s = i.selection;
        index_put_(self.value, s.flat, s.shape, values);
        return;
    }
    const Selection s = select(self.shape(), index);
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
    case DType::float32: return py::float_(t.value.item());
    case DType::float64: return py::float_(t.value.item<double>());
    case DType::int64: return py::int_(t.ints->data()[0]);
    case DType::bool_: return py::bool_(t.bools->data()[0]);
    default: break;   // a dtype no tensor holds (refused when made: unsupported_dtype)
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
        .value("float64", DType::float64)
        .value("float16", DType::float16)
        .value("bfloat16", DType::bfloat16)
        .value("uint8", DType::uint8)
        .value("int8", DType::int8)
        .value("int16", DType::int16)
        .def("__repr__", [](DType d) { return std::string("xgrad.") + dtype_name(d); })
        .def("__str__", [](DType d) { return std::string("xgrad.") + dtype_name(d); })
        .def_property_readonly("is_floating_point", [](DType d) {
            return d == DType::float32 || d == DType::float64 || d == DType::float16 || d == DType::bfloat16;
        })
        .def_property_readonly("itemsize", [](DType d) {
            switch (d) {
            case DType::float32: return 4;
            case DType::int64: case DType::float64: return 8;
            case DType::float16: case DType::bfloat16: case DType::int16: return 2;
            default: return 1;   // bool, uint8, int8
            }
        });

    // no buffer protocol (as torch's tensors): np.asarray(t) goes through __array__, whose array keeps
    // the storage itself alive
    py::class_<PyTensor> tensor_class(m, "Tensor");
    tensor_class
        // Tensor(t) is t itself (nn.Parameter(t) is made this way)
        .def(py::init([](py::object data) { return to_tensor(data); }), py::arg("data"))
        .def("numpy", &numpy, py::arg("force") = false,
             "The tensor's own memory as a numpy array, its strides kept: writes show through both ways, as torch's")
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
        // p.data: the same storage without autograd and with a version counter of its own (so writes
        // through it are not seen by backward, as torch's); `p.data = v` rebinds p to v's storage
        .def_property("data",
                      [](const PyTensor& t) { return t.is_float() ? PyTensor::of(t.value.variable_data()) : t; },
                      [](PyTensor& t, const PyTensor& v) {
                          if (!t.is_float() || !v.is_float()) {
                              throw py::type_error("xgrad: .data can only be set on float tensors, from a float tensor");
                          }
                          t.value.set_data(v.value);
                      })
        .def("_is_same", [](const PyTensor& a, const PyTensor& b) {
            return a.is_float() && b.is_float() ? a.value.is_same(b.value)
                   : a.dtype == DType::int64    ? a.ints == b.ints
                                                : a.bools == b.bools;
        })
        .def("_key", [](const PyTensor& t) {   // the tensor's identity, for Python-side de-duplication
            return reinterpret_cast<std::uintptr_t>(t.is_float() ? t.value.weak_ref().lock().get()
                                                    : t.dtype == DType::int64 ? static_cast<const void*>(t.ints.get())
                                                                              : static_cast<const void*>(t.bools.get()));
        })

        // ---- storage and strides, as torch's ----
        .def("stride", [](const PyTensor& t) {
            return py::tuple(py::cast(t.is_float() ? t.value.stride() : row_major(t.shape())));
        })
        .def("stride", [](const PyTensor& t, std::int64_t dim) {
            const Shape s = t.shape();
            const std::size_t d = normalize_axis("stride", dim, s.size());
            return t.is_float() ? t.value.stride(static_cast<std::ptrdiff_t>(d)) : row_major(s)[d];
        }, py::arg("dim"))
        .def("storage_offset", [](const PyTensor& t) { return t.is_float() ? t.value.storage_offset() : 0; })
        .def("data_ptr", [](const PyTensor& t) {
            return reinterpret_cast<std::uintptr_t>(t.is_float() ? static_cast<const void*>(t.value.data_ptr())
                                                    : t.dtype == DType::int64 ? static_cast<const void*>(t.ints->data())
                                                                              : static_cast<const void*>(t.bools->data()));
        })
        .def("_is_view", [](const PyTensor& t) { return t.is_float() && t.value.is_view(); })
        .def_property_readonly("_base", [](const PyTensor& t) -> py::object {
            if (!t.is_float() || !t.value.is_view()) return py::none();
            return py::cast(PyTensor::of(t.value.base()));
        })
        // the storage's identity: one value for every tensor that shares it (untyped_storage().data_ptr())
        .def("_storage_ptr", [](const PyTensor& t) {
            if (!t.is_float()) return reinterpret_cast<std::uintptr_t>(t.dtype == DType::int64 ? static_cast<const void*>(t.ints->data())
                                                                                              : static_cast<const void*>(t.bools->data()));
            return reinterpret_cast<std::uintptr_t>(t.value.data_ptr() - t.value.storage_offset());
        })

        // ---- dtype and device ----
        .def("_to_dtype", [](const PyTensor& t, py::handle dtype) { return as_dtype(t, dtype_arg(dtype)); })
        .def_property_readonly("device", [](const PyTensor&) { return py::module_::import("xgrad").attr("device")("cpu"); })
        .def_property_readonly("is_cuda", [](const PyTensor&) { return false; })

        // ---- in place: each returns the tensor itself ----
        .def("zero_", [](PyTensor& t) -> PyTensor& {
            return inplace(t, [](const Tensor& x) { x.zero_(); }, [](const Tensor& x) { return PyTensor::of(zeros(x.shape())); });
        }, py::return_value_policy::reference_internal)
        .def("fill_", [](PyTensor& t, py::handle value) -> PyTensor& {
            const float v = number_of(value) ? *number_of(value) : to_tensor(value).f().item();
            return inplace(t, [v](const Tensor& x) { x.fill_(v); }, [v](const Tensor& x) { return PyTensor::of(full(x.shape(), v)); });
        }, py::return_value_policy::reference_internal)
        .def("copy_", [](PyTensor& t, py::handle src) -> PyTensor& {
            const Tensor s = to_tensor(src).f();
            return inplace(t, [&s](const Tensor& x) { x.copy_(s); },
                           [&s](const Tensor& x) { return PyTensor::of(add(mul(x, 0.0f), s)); });
        }, py::return_value_policy::reference_internal)
        .def("normal_", [](PyTensor& t, float mean, float std) -> PyTensor& {
            return inplace(t, [=](const Tensor& x) { x.normal_(mean, std); }, [](const Tensor& x) { return PyTensor::of(x); });
        }, py::arg("mean") = 0.0f, py::arg("std") = 1.0f, py::return_value_policy::reference_internal)
        .def("uniform_", [](PyTensor& t, float from, float to) -> PyTensor& {
            return inplace(t, [=](const Tensor& x) { x.uniform_(from, to); }, [](const Tensor& x) { return PyTensor::of(x); });
        }, py::arg("from") = 0.0f, py::arg("to") = 1.0f, py::return_value_policy::reference_internal)
        .def("add_", [](PyTensor& t, py::handle other, float alpha) -> PyTensor& {
            const std::optional<float> n = number_of(other);
            const Tensor o = n ? Tensor() : to_tensor(other).f();
            return inplace(t, [&](const Tensor& x) { n ? x.add_(alpha * *n) : x.add_(o, alpha); },
                           [&](const Tensor& x) { return PyTensor::of(n ? add(x, alpha * *n) : add(x, mul(o, alpha))); });
        }, py::arg("other"), py::arg("alpha") = 1.0f, py::return_value_policy::reference_internal)
        .def("sub_", [](PyTensor& t, py::handle other, float alpha) -> PyTensor& {
            const std::optional<float> n = number_of(other);
            const Tensor o = n ? Tensor() : to_tensor(other).f();
            return inplace(t, [&](const Tensor& x) { n ? x.sub_(alpha * *n) : x.sub_(o, alpha); },
                           [&](const Tensor& x) { return PyTensor::of(n ? add(x, -alpha * *n) : sub(x, mul(o, alpha))); });
        }, py::arg("other"), py::arg("alpha") = 1.0f, py::return_value_policy::reference_internal)
        .def("mul_", [](PyTensor& t, py::handle other) -> PyTensor& {
            const std::optional<float> n = number_of(other);
            const Tensor o = n ? Tensor() : to_tensor(other).f();
            return inplace(t, [&](const Tensor& x) { n ? x.mul_(*n) : x.mul_(o); },
                           [&](const Tensor& x) { return PyTensor::of(n ? mul(x, *n) : mul(x, o)); });
        }, py::return_value_policy::reference_internal)
        .def("div_", [](PyTensor& t, py::handle other) -> PyTensor& {
            const std::optional<float> n = number_of(other);
            const Tensor o = n ? Tensor() : to_tensor(other).f();
            return inplace(t, [&](const Tensor& x) { n ? x.div_(*n) : x.div_(o); },
                           [&](const Tensor& x) { return PyTensor::of(n ? mul(x, 1.0f / *n) : div(x, o)); });
        }, py::return_value_policy::reference_internal)
        .def("clamp_", [](PyTensor& t, std::optional<float> min, std::optional<float> max) -> PyTensor& {
            return inplace(t, [&](const Tensor& x) { x.clamp_(min, max); },
                           [&](const Tensor& x) { return PyTensor::of(clamp(x, min, max)); });
        }, py::arg("min") = py::none(), py::arg("max") = py::none(), py::return_value_policy::reference_internal)
        .def("pow_", [](PyTensor& t, py::handle exponent) -> PyTensor& {
            if (const auto p = number_of(exponent)) {
                return inplace(t, [p](const Tensor& x) { x.pow_(*p); }, [p](const Tensor& x) { return PyTensor::of(pow(x, *p)); });
            }
            const Tensor e = to_tensor(exponent).f();   // a tensor exponent, which gets its gradient
            return inplace(t, [&e](const Tensor& x) { x.pow_(e); }, [&e](const Tensor& x) { return PyTensor::of(pow(x, e)); });
        }, py::return_value_policy::reference_internal)
        .def("masked_fill_", [](PyTensor& t, const PyTensor& mask, py::handle value) -> PyTensor& {
            const float v = number_of(value) ? *number_of(value) : to_tensor(value).f().item();
            const Tensor m(Array(xt::cast<float>(mask.mask())));
            return inplace(t, [&](const Tensor& x) { x.masked_fill_(m, v); },
                           [&](const Tensor& x) { return PyTensor::of(masked_fill(x, m, v)); });
        }, py::return_value_policy::reference_internal);
    tensor_class.attr("clip_") = tensor_class.attr("clamp_");

    // x.exp_() and the other one-argument maps in place; an int64 or bool tensor gets the float map's
    // result cast back, as inplace() does for every in-place op
    using InPlace = const Tensor& (Tensor::*)() const;
    using Map = Tensor (*)(const Tensor&);
    const std::tuple<const char*, InPlace, Map> maps[] = {
        {"exp_", &Tensor::exp_, &xgrad::exp}, {"log_", &Tensor::log_, &xgrad::log},
        {"sqrt_", &Tensor::sqrt_, &xgrad::sqrt}, {"tanh_", &Tensor::tanh_, &xgrad::tanh},
        {"sigmoid_", &Tensor::sigmoid_, &xgrad::sigmoid}, {"relu_", &Tensor::relu_, &xgrad::relu},
        {"neg_", &Tensor::neg_, &xgrad::neg},
    };
    for (const auto& [name, in_place, map] : maps) {
        tensor_class.def(name, [in_place = in_place, map = map](PyTensor& t) -> PyTensor& {
            return inplace(t, [&](const Tensor& x) { (x.*in_place)(); },
                           [&](const Tensor& x) { return PyTensor::of(map(x)); });
        }, py::return_value_policy::reference_internal);
    }
    m.def("_from_numpy", &from_numpy);
}

}  // namespace xgrad::python
