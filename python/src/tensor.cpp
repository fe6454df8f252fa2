// The xgrad.Tensor class: construction, numpy sharing both ways (t.numpy(), from_numpy), storage and
// strides, autograd (backward, grad, requires_grad, detach, .data), indexing reads and writes (basic
// indexing is a view), and the in-place methods.
#include <cstring>
#include <tuple>

#include "python/src/table.h"

#include <structmember.h>   // after Python.h, which table.h brings

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

// x[index]: x[i] of a tensor with dimensions is select (the everyday case, taken first); any other
// index the core's x.index (a view for a basic index, a copy for an advanced one)
Tensor getitem(const Tensor& x, py::handle index)
{
    if (PyLong_CheckExact(index.ptr()) && x.dim() > 0) return select(x, 0, index_value(index));
    return x.index(index_items(index));
}

// x[index] = v, the core's index_put_ (x[1:3] = v is x[1:3].copy_(v)); a Python number or list is taken
// in x's dtype (x64[0] = 0.1 keeps 0.1's double), a tensor as it is
void setitem(const PyTensor& self, py::handle index, py::handle value)
{
    self.value.index_put_(index_items(index), to_tensor(value, tensor_of(value) ? std::nullopt : std::optional(self.dtype())).value);
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

double number_or_item(py::handle v) { return tensor_of(v) ? tensor_of(v)->value.item<double>() : v.cast<double>(); }

// ---- the object ----------------------------------------------------------------------------------------
// xgrad.Tensor() is an empty float tensor, Tensor(2, 3) one of that shape (zeros, where torch's are
// uninitialized), Tensor(t) is t itself (nn.Parameter(t) is made this way), Tensor(data) a copy of
// the data in the default dtype (as torch.Tensor([1, 2]) is float32)
PyObject* tensor_new(PyTypeObject* type, PyObject*, PyObject*)
{
    PyObject* self = type->tp_alloc(type, 0);
    if (self == nullptr) return nullptr;
    return guarded([&] {
        new (&reinterpret_cast<TensorObject*>(self)->tensor) PyTensor{empty({0}, default_dtype())};
        return self;
    });
}

int tensor_init(PyObject* self, PyObject* args, PyObject* kwargs)
{
    return guarded([&]() -> PyObject* {
        if (kwargs != nullptr && PyDict_GET_SIZE(kwargs) > 0) throw py::type_error("Tensor(): takes no keyword arguments");
        const py::tuple a = py::reinterpret_borrow<py::tuple>(args);
        PyTensor& t = *tensor_of(self);
        bool sizes = a.size() > 0;
        for (py::handle h : a) sizes = sizes && PyLong_Check(h.ptr());
        if (a.size() == 0) t.value = empty({0}, default_dtype());
        else if (sizes) t.value = zeros(shape_arg("Tensor", py::reinterpret_borrow<py::args>(args)), default_dtype());
        else if (a.size() > 1) throw py::type_error("Tensor(): expected sizes (ints) or one sequence of data");
        else if (const PyTensor* other = tensor_of(a[0])) t.value = other->value;
        else t.value = to_tensor(a[0], default_dtype()).value;
        return Py_None;
    }) ? 0 : -1;
}

int tensor_traverse(PyObject* self, visitproc visit, void* arg)
{
    Py_VISIT(reinterpret_cast<TensorObject*>(self)->dict);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

int tensor_clear(PyObject* self)
{
    Py_CLEAR(reinterpret_cast<TensorObject*>(self)->dict);
    return 0;
}

void tensor_dealloc(PyObject* self)
{
    auto* obj = reinterpret_cast<TensorObject*>(self);
    PyTypeObject* type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (obj->weakrefs != nullptr) PyObject_ClearWeakRefs(self);
    Py_CLEAR(obj->dict);
    obj->tensor.~PyTensor();
    type->tp_free(self);
    Py_DECREF(type);
}

// ---- the operators: a op b for a tensor and a tensor, a number, a list or an array ------------------
template <Bin op>
PyObject* arithmetic_slot(PyObject* a, PyObject* b)
{
    return guarded([&] {
        if (const PyTensor* x = tensor_of(a)) return to_python(arithmetic(*x, b, op, false));
        return to_python(arithmetic(*tensor_of(b), a, op, true));
    });
}

PyObject* power_slot(PyObject* a, PyObject* b, PyObject* modulo)
{
    if (modulo != Py_None) Py_RETURN_NOTIMPLEMENTED;
    return arithmetic_slot<Bin::pow>(a, b);
}

PyObject* matmul_slot(PyObject* a, PyObject* b)
{
    return guarded([&] {
        const PyTensor* x = tensor_of(a);
        const PyTensor* y = tensor_of(b);
        if (!x || !y) return to_python(py::reinterpret_borrow<py::object>(Py_NotImplemented));
        return to_python(matmul_releasing_gil(x->value, y->value));
    });
}

template <Tensor (*f)(const Tensor&, const Tensor&)>
PyObject* bitwise_slot(PyObject* a, PyObject* b)   // & | ^: the same both ways round
{
    return guarded([&] {
        const PyTensor* x = tensor_of(a) ? tensor_of(a) : tensor_of(b);
        return to_python(f(x->value, scalar_operand(x == tensor_of(a) ? b : a, x->value)));
    });
}

PyObject* invert_slot(PyObject* a)
{
    return guarded([&] {
        const Tensor& x = tensor_of(a)->value;
        if (x.is_floating_point()) throw py::type_error("~ (operator.invert) is only implemented on integer and Boolean-type tensors");
        return to_python(bitwise_not(x));
    });
}

PyObject* negative_slot(PyObject* a) { return guarded([&] { return to_python(neg(tensor_of(a)->value)); }); }
PyObject* positive_slot(PyObject* a) { return Py_INCREF(a), a; }

PyObject* compare_slot(PyObject* a, PyObject* b, int op)
{
    return guarded([&] {
        const PyTensor* x = tensor_of(a);
        if (x == nullptr) return to_python(py::reinterpret_borrow<py::object>(Py_NotImplemented));
        return to_python(compare(*x, b, op));
    });
}

Py_hash_t hash_slot(PyObject* self)   // by identity, as torch's
{
    const auto h = static_cast<Py_hash_t>(reinterpret_cast<std::uintptr_t>(self) >> 4);
    return h == -1 ? -2 : h;
}

PyObject* subscript_slot(PyObject* self, PyObject* index)
{
    return guarded([&] { return to_python(getitem(tensor_of(self)->value, index)); });
}

int assign_subscript_slot(PyObject* self, PyObject* index, PyObject* value)
{
    if (value == nullptr) {
        PyErr_SetString(PyExc_TypeError, "a tensor's elements cannot be deleted");
        return -1;
    }
    return guarded([&]() -> PyObject* {
        setitem(*tensor_of(self), index, value);
        return Py_None;
    }) ? 0 : -1;
}

Py_ssize_t length_slot(PyObject* self)
{
    const Tensor& t = tensor_of(self)->value;
    if (t.dim() == 0) {
        PyErr_SetString(PyExc_TypeError, "len() of a 0-d tensor");
        return -1;
    }
    return static_cast<Py_ssize_t>(t.size(0));
}

// ---- properties -------------------------------------------------------------------------------------------
const Property properties[] = {
    {"dtype", [](const PyTensor& t) { return py::cast(t.dtype()); }},
    {"shape", [](const PyTensor& t) { return py::object(py::tuple(py::cast(t.shape()))); }},
    {"ndim", [](const PyTensor& t) { return t.value.dim(); }},
    {"device", [](const PyTensor&) { return py::module_::import("xgrad").attr("device")("cpu"); }},
    {"is_cuda", [](const PyTensor&) { return false; }},
    {"requires_grad", [](const PyTensor& t) { return t.requires_grad(); },
     [](PyTensor& t, py::handle on) {
         const bool requested = on.cast<bool>();
         if (t.value.is_leaf() || requested != t.value.requires_grad()) t.value.requires_grad_(requested);
     }},
    {"is_leaf", [](const PyTensor& t) { return t.value.is_leaf(); }},
    {"retains_grad", [](const PyTensor& t) { return t.requires_grad() && t.value.retains_grad(); }},
    {"_version", [](const PyTensor& t) { return t.value.version(); }},
    {"_op_name", [](const PyTensor& t) { return py::object(py::str(t.value.op_name())); }},
    {"grad",
     [](const PyTensor& t) -> py::object {
         if (RowSparse* s = t.value.sparse_grad()) return py::cast(PyTensor::of(Tensor(s->to_dense(t.shape()[0]))));
         Tensor g = t.value.grad();
         return g.defined() ? py::cast(PyTensor::of(g)) : py::none();
     },
     [](PyTensor& t, py::handle g) {
         if (g.is_none()) return t.value.set_grad(Tensor());
         const PyTensor* v = tensor_of(g);
         if (v == nullptr) throw py::type_error(std::string("assigned grad expected to be a Tensor or None but got grad of type ") + Py_TYPE(g.ptr())->tp_name);
         if (v->shape() != t.shape()) {
             throw std::runtime_error("assigned grad has data of a different size: " + shape_str(v->shape()) + " for a tensor of " +
                                      shape_str(t.shape()));
         }
         t.value.set_grad(v->value);
     }},
    // p.data: the same storage without autograd and with a version counter of its own (so writes
    // through it are not seen by backward, as torch's); `p.data = v` rebinds p to v's storage
    {"data", [](const PyTensor& t) { return t.value.variable_data(); },
     [](PyTensor& t, py::handle v) {
         const PyTensor* other = tensor_of(v);
         if (other == nullptr) throw py::type_error(std::string("data must be a Tensor, not ") + Py_TYPE(v.ptr())->tp_name);
         t.value.set_data(other->value);
     }},
    {"_base", [](const PyTensor& t) -> py::object { return t.value.is_view() ? py::cast(PyTensor::of(t.value.base())) : py::none(); }},
    {"T", [](const PyTensor& t) {
         std::vector<int> perm;
         for (std::size_t i = t.value.dim(); i-- > 0;) perm.push_back(static_cast<int>(i));
         return permute(t.value, perm);
     }},
    {"mT", [](const PyTensor& t) {
         if (t.value.dim() < 2) {
             throw std::runtime_error("tensor.mT is only supported on matrices or batches of matrices. Got " + std::to_string(t.value.dim()) + "-D tensor.");
         }
         return transpose(t.value, -2, -1);
     }},
};

// ---- methods ----------------------------------------------------------------------------------------------
const Def methods[] = {
    {"numpy(input, force=False)", method, [](const PyTensor& t, bool force) { return numpy(t, force); }},
    {"size(input, dim=None)", method, [](const Tensor& t, std::optional<std::int64_t> dim) -> py::object {
         const Shape s = t.shape();
         if (dim) return py::int_(s[normalize_axis("size", *dim, s.size())]);
         return py::tuple(py::cast(s));
     }},
    {"dim(input)", method, [](const Tensor& t) { return t.dim(); }},
    {"numel(input)", both, [](const Tensor& t) { return t.numel(); }},
    {"item(input)", method, [](const PyTensor& t) { return item(t); }},
    {"stride(input, dim=None)", method, [](const Tensor& t, std::optional<std::int64_t> dim) -> py::object {
         if (dim) return py::int_(t.stride(static_cast<std::ptrdiff_t>(normalize_axis("stride", *dim, t.dim()))));
         return py::tuple(py::cast(t.stride()));
     }},
    {"storage_offset(input)", method, [](const Tensor& t) { return t.storage_offset(); }},
    {"data_ptr(input)", method, [](const Tensor& t) { return address(t); }},
    {"_is_view(input)", method, [](const Tensor& t) { return t.is_view(); }},
    // the storage's identity: one value for every tensor that shares it (untyped_storage().data_ptr())
    {"_storage_ptr(input)", method, [](const Tensor& t) { return address(t) - t.storage_offset() * t.element_size(); }},
    {"_is_same(input, other)", method, [](const Tensor& a, const Tensor& b) { return a.is_same(b); }},
    {"_key(input)", method, [](const Tensor& t) {   // the tensor's identity, for Python-side de-duplication
         return reinterpret_cast<std::uintptr_t>(t.weak_ref().lock().get());
     }},
    {"_to_dtype(input, dtype)", method, [](const Tensor& t, Dtype d) { return t.to(d); }},

    // ---- autograd ----
    {"requires_grad_(input, requires_grad=True)", method, [](const PyTensor& t, bool on) {
         if (t.value.is_leaf() || on != t.value.requires_grad()) t.value.requires_grad_(on);
         return InPlace{};
     }},
    {"retain_grad(input)", method, [](const Tensor& t) {
         if (!t.requires_grad()) throw std::runtime_error("can't retain_grad on Tensor that has requires_grad=False");
         t.retain_grad();
     }},
    {"backward(input, gradient=None, retain_graph=None, create_graph=False)", method,
     [](const Tensor& t, py::handle gradient, std::optional<bool> retain_graph, bool) {
         if (!t.requires_grad()) throw std::runtime_error("element 0 of tensors does not require grad and does not have a grad_fn");
         Tensor g = gradient.is_none() ? Tensor() : to_tensor(gradient).value;
         py::gil_scoped_release release;   // other Python threads run during a long backward
         t.backward(g, retain_graph.value_or(false));
     }},
    {"detach(input)", both, [](const Tensor& t) { return t.detach(); }},

    // ---- in place, through the core (any dtype): each returns the tensor itself ----
    {"zero_(input)", method, [](const Tensor& t) { t.zero_(); return InPlace{}; }},
    {"fill_(input, value)", method, [](const Tensor& t, py::handle v) { t.fill_(number_or_item(v)); return InPlace{}; }},
    {"copy_(input, src)", method, [](const Tensor& t, py::handle src) { t.copy_(to_tensor(src).value); return InPlace{}; }},
    {"normal_(input, mean=0.0, std=1.0)", method, [](const Tensor& t, float mean, float std) { t.normal_(mean, std); return InPlace{}; }},
    {"uniform_(input, from=0.0, to=1.0)", method, [](const Tensor& t, float from, float to) { t.uniform_(from, to); return InPlace{}; }},
    {"add_(input, other, *, alpha=1)", method, [](const PyTensor& t, py::handle other, float alpha) {
         const auto n = float_number(t, other);
         n ? t.value.add_(alpha * *n) : t.value.add_(scalar_operand(other, t.value), alpha);
         return InPlace{};
     }},
    {"sub_(input, other, *, alpha=1)", method, [](const PyTensor& t, py::handle other, float alpha) {
         const auto n = float_number(t, other);
         n ? t.value.sub_(alpha * *n) : t.value.sub_(scalar_operand(other, t.value), alpha);
         return InPlace{};
     }},
    {"mul_(input, other)", method, [](const PyTensor& t, py::handle other) {
         const auto n = float_number(t, other);
         n ? t.value.mul_(*n) : t.value.mul_(scalar_operand(other, t.value));
         return InPlace{};
     }},
    {"div_(input, other)", method, [](const PyTensor& t, py::handle other) {
         const auto n = float_number(t, other);
         n ? t.value.div_(*n) : t.value.div_(scalar_operand(other, t.value));
         return InPlace{};
     }},
    {"pow_(input, exponent)", method, [](const PyTensor& t, py::handle exponent) {
         const auto p = float_number(t, exponent);
         p ? t.value.pow_(*p) : t.value.pow_(scalar_operand(exponent, t.value));   // a tensor exponent gets its gradient
         return InPlace{};
     }},
    {"clamp_(input, min=None, max=None)", method, [](const Tensor& t, std::optional<float> min, std::optional<float> max) {
         t.clamp_(min, max);
         return InPlace{};
     }},
    {"masked_fill_(input, mask, value)", method, [](const Tensor& t, const PyTensor& mask, py::handle v) {
         t.masked_fill_(mask.mask(), static_cast<float>(number_or_item(v)));
         return InPlace{};
     }},
    {"exp_(input)", method, [](const Tensor& t) { t.exp_(); return InPlace{}; }},
    {"log_(input)", method, [](const Tensor& t) { t.log_(); return InPlace{}; }},
    {"sqrt_(input)", method, [](const Tensor& t) { t.sqrt_(); return InPlace{}; }},
    {"tanh_(input)", method, [](const Tensor& t) { t.tanh_(); return InPlace{}; }},
    {"sigmoid_(input)", method, [](const Tensor& t) { t.sigmoid_(); return InPlace{}; }},
    {"relu_(input)", method, [](const Tensor& t) { t.relu_(); return InPlace{}; }},
    {"neg_(input)", method, [](const Tensor& t) { t.neg_(); return InPlace{}; }},
    {"_from_numpy(ndarray)", function, [](py::handle a) {
         if (!py::isinstance<py::array>(a)) throw py::type_error(std::string("expected np.ndarray (got ") + Py_TYPE(a.ptr())->tp_name + ")");
         return from_numpy(py::reinterpret_borrow<py::array>(a)).value;
     }},
};

}  // namespace

PyTypeObject* tensor_type = nullptr;

PyObject* new_tensor(Tensor t)
{
    PyObject* self = tensor_type->tp_alloc(tensor_type, 0);
    if (self == nullptr) throw py::error_already_set();
    new (&reinterpret_cast<TensorObject*>(self)->tensor) PyTensor{std::move(t)};
    return self;
}

void set_python_error() noexcept
{
    try {
        throw;
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (const py::builtin_exception& e) {
        e.set_error();
    } catch (const IndexError& e) {
        PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const Error& e) {   // PyTorch raises IndexError for an index or id out of range, RuntimeError for the rest
        const bool out_of_range = std::strstr(e.what(), "out of range") || std::strstr(e.what(), "out of bounds");
        PyErr_SetString(out_of_range ? PyExc_IndexError : PyExc_RuntimeError, e.what());
    } catch (const std::bad_alloc& e) {
        PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const std::out_of_range& e) {
        PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const std::invalid_argument& e) {
        PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::length_error& e) {
        PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::overflow_error& e) {
        PyErr_SetString(PyExc_OverflowError, e.what());
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (...) {
        PyErr_SetString(PyExc_SystemError, "xgrad: an unknown C++ exception");
    }
}

void bind_tensor(py::module_& m)
{
    py::enum_<Dtype> dtype(m, "dtype");   // xgrad.float32 ... : the core's dtypes, with torch's names
    for (int i = 0; i < dtype_count; ++i) dtype.value(dtype_name(static_cast<Dtype>(i)), static_cast<Dtype>(i));
    dtype.def_property_readonly("is_floating_point", [](Dtype d) { return is_floating_point(d); })
        .def_property_readonly("itemsize", [](Dtype d) { return element_size(d); });

    static std::vector<PyGetSetDef> getset;   // CPython keeps pointers to them
    for (const Property& p : properties) getset.push_back({p.name, p.get, p.set, nullptr, nullptr});
    getset.push_back({"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, nullptr, nullptr});   // a subclass's attributes
    getset.push_back({});
    static PyMemberDef members[] = {
        {"__dictoffset__", T_PYSSIZET, offsetof(TensorObject, dict), READONLY, nullptr},
        {"__weaklistoffset__", T_PYSSIZET, offsetof(TensorObject, weakrefs), READONLY, nullptr},
        {},
    };
    // no buffer protocol (as torch's tensors): np.asarray(t) goes through __array__, whose array keeps
    // the storage itself alive
    static PyType_Slot slots[] = {
        {Py_tp_doc, const_cast<char*>("A tensor of any dtype, with autograd on float32 and float64 (as torch.Tensor)")},
        {Py_tp_new, reinterpret_cast<void*>(tensor_new)},
        {Py_tp_init, reinterpret_cast<void*>(tensor_init)},
        {Py_tp_dealloc, reinterpret_cast<void*>(tensor_dealloc)},
        {Py_tp_traverse, reinterpret_cast<void*>(tensor_traverse)},
        {Py_tp_clear, reinterpret_cast<void*>(tensor_clear)},
        {Py_tp_getset, getset.data()},
        {Py_tp_members, members},
        {Py_tp_hash, reinterpret_cast<void*>(hash_slot)},
        {Py_tp_richcompare, reinterpret_cast<void*>(compare_slot)},
        {Py_nb_add, reinterpret_cast<void*>(arithmetic_slot<Bin::add>)},
        {Py_nb_subtract, reinterpret_cast<void*>(arithmetic_slot<Bin::sub>)},
        {Py_nb_multiply, reinterpret_cast<void*>(arithmetic_slot<Bin::mul>)},
        {Py_nb_true_divide, reinterpret_cast<void*>(arithmetic_slot<Bin::div>)},
        {Py_nb_floor_divide, reinterpret_cast<void*>(arithmetic_slot<Bin::floordiv>)},
        {Py_nb_remainder, reinterpret_cast<void*>(arithmetic_slot<Bin::mod>)},
        {Py_nb_power, reinterpret_cast<void*>(power_slot)},
        {Py_nb_matrix_multiply, reinterpret_cast<void*>(matmul_slot)},
        {Py_nb_negative, reinterpret_cast<void*>(negative_slot)},
        {Py_nb_positive, reinterpret_cast<void*>(positive_slot)},
        {Py_nb_invert, reinterpret_cast<void*>(invert_slot)},
        {Py_nb_and, reinterpret_cast<void*>(bitwise_slot<bitwise_and>)},
        {Py_nb_or, reinterpret_cast<void*>(bitwise_slot<bitwise_or>)},
        {Py_nb_xor, reinterpret_cast<void*>(bitwise_slot<bitwise_xor>)},
        {Py_mp_subscript, reinterpret_cast<void*>(subscript_slot)},
        {Py_mp_ass_subscript, reinterpret_cast<void*>(assign_subscript_slot)},
        {Py_mp_length, reinterpret_cast<void*>(length_slot)},
        {0, nullptr},
    };
    static PyType_Spec spec = {"xgrad.Tensor", sizeof(TensorObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, slots};
    PyObject* type = PyType_FromSpec(&spec);
    if (type == nullptr) throw py::error_already_set();
    tensor_type = reinterpret_cast<PyTypeObject*>(type);
    m.add_object("Tensor", type);
    install(m, methods);
}

}  // namespace xgrad::python
