// Python's x[index] and x[index] = v: the index's Python objects (ints, slices, None, ..., lists,
// numpy arrays, tensors, masks, or a tuple of them) as the core's index items; the core's
// Tensor::index and index_put_ (core/indexing.cpp) do the indexing, as torch's and NumPy's.
#include "python/src/pytensor.h"

namespace xgrad::python {

namespace {

indexing::TensorIndex item_of(py::handle obj)
{
    if (obj.is_none()) return indexing::None;
    if (obj.ptr() == Py_Ellipsis) return indexing::Ellipsis;
    if (PySlice_Check(obj.ptr())) {
        auto* s = reinterpret_cast<PySliceObject*>(obj.ptr());
        const std::int64_t step = s->step == Py_None ? 1 : index_value(s->step);
        if (step <= 0) throw py::value_error("step must be greater than zero");
        const auto bound = [](PyObject* b) { return b == Py_None ? indexing::SliceBound() : indexing::SliceBound(index_value(b)); };
        return indexing::Slice(bound(s->start), bound(s->stop), step);
    }
    if (PyBool_Check(obj.ptr())) throw py::index_error("xgrad: indexing with a Python bool is not supported; use a bool tensor as a mask");
    if (PyRange_Check(obj.ptr())) return to_tensor(py::list(py::reinterpret_borrow<py::object>(obj))).value;   // logprobs[range(n), ys]: the list of its ints, as torch's
    if (const PyTensor* t = tensor_of(obj)) return t->value;
    if (!py::isinstance<py::array>(obj) && PyIndex_Check(obj.ptr())) return index_value(obj);   // int, numpy integer
    if (!py::isinstance<py::array>(obj) && !py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj)) {
        throw py::index_error("only integers, slices (`:`), ellipsis (`...`), None and long or bool tensors are valid indices (got " +
                              std::string(Py_TYPE(obj.ptr())->tp_name) + ")");
    }
    const Tensor t = to_tensor(obj).value;
    return py::isinstance<py::list>(obj) && t.numel() == 0 ? t.to(kInt64) : t;   // x[[]]: no ids, as torch's
}

}  // namespace

std::vector<indexing::TensorIndex> index_items(py::handle index)
{
    std::vector<indexing::TensorIndex> items;
    if (PyTuple_Check(index.ptr())) {
        for (py::handle obj : py::reinterpret_borrow<py::tuple>(index)) items.push_back(item_of(obj));
    } else {
        items.push_back(item_of(index));
    }
    return items;
}

}  // namespace xgrad::python
