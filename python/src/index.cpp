// Python indexing, x[index], as PyTorch's (which are NumPy's).
//
//   basic     ints (negative from the end), slices, None (a new axis of 1), ... (the axes not named):
//             a view of a float tensor (index_of: select, slice, unsqueeze), which shares its
//             memory, so x[1:3] = v and x[0].zero_() write into x
//   advanced  lists, numpy arrays and int64 tensors of indices, broadcast together; bool masks (the
//             positions where they are true). Their axes go where the first of them stands when
//             they are adjacent, else first, as NumPy puts them. A copy, as torch's.
//
// An advanced index (and any index of an id or mask tensor) is a list of flat offsets into x and the
// result's shape (select), which take (reading, with gradients) and index_put (writing) use.
#include <algorithm>
#include <optional>

#include "python/src/pytensor.h"

namespace xgrad::python {

namespace {

struct Item {
    enum Kind { integer, slice, new_axis, ellipsis, array } kind = integer;
    std::int64_t value = 0;   // integer; the size of a new axis (1, or 0 for a false 0-d mask)
    py::object range;         // slice
    std::optional<IdArray> ids;   // array (masks are turned into one array per axis they cover)
};

[[noreturn]] void index_error(const std::string& message) { throw py::index_error(message); }

// One element of an index, classified. A mask becomes one index array per axis it covers (its
// nonzero positions), so from here on only integer arrays remain.
void classify(py::handle obj, const Shape& shape, std::size_t dim, std::vector<Item>& out, std::size_t& consumed)
{
    Item item;
    if (obj.is_none()) {
        item.kind = Item::new_axis, item.value = 1;
        out.push_back(item);
        return;
    }
    if (obj.ptr() == Py_Ellipsis) {
        item.kind = Item::ellipsis;
        out.push_back(item);
        return;
    }
    if (py::isinstance<py::slice>(obj)) {
        item.kind = Item::slice;
        item.range = py::reinterpret_borrow<py::object>(obj);
        out.push_back(item), ++consumed;
        return;
    }
    if (PyBool_Check(obj.ptr())) {
        index_error("xgrad: indexing with a Python bool is not supported; use a bool tensor as a mask");
    }
    if (PyRange_Check(obj.ptr())) {   // logprobs[range(n), ys]: a range reads as the list of its ints, as in torch
        classify(py::list(py::reinterpret_borrow<py::object>(obj)), shape, dim, out, consumed);
        return;
    }
    const bool is_tensor = tensor_of(obj) != nullptr;
    if (!is_tensor && !py::isinstance<py::array>(obj) && PyIndex_Check(obj.ptr())) {   // int, numpy integer
        item.value = index_value(obj);
        out.push_back(item), ++consumed;
        return;
    }
    if (!is_tensor && !py::isinstance<py::array>(obj) && !py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj)) {
        index_error("only integers, slices (`:`), ellipsis (`...`), None and long or bool tensors are valid indices (got " +
                    std::string(py::str(py::type::of(obj).attr("__name__"))) + ")");
    }
    const Tensor t = is_tensor ? tensor_of(obj)->value : to_tensor(obj).value;
    if (t.is_floating_point()) {
        index_error(std::string("tensors used as indices must be long, int, byte or bool tensors (got a ") + dtype_name(t.dtype()) +
                    " tensor)");
    }
    if (t.dtype() != kBool && t.dim() == 0) {   // a 0-d integer tensor indexes as an int
        item.value = t.item<std::int64_t>();
        out.push_back(item), ++consumed;
        return;
    }
    if (t.dtype() != kBool) {
        item.kind = Item::array;
        item.ids = id_array(t.to(kInt64), "index");
        out.push_back(item), ++consumed;
        return;
    }
    const Tensor dense = t.contiguous();
    BoolArray mask = BoolArray::from_shape(dense.shape());
    if (mask.size() > 0) std::copy_n(dense.data_ptr<bool>(), mask.size(), mask.data());
    const std::size_t k = mask.dimension();
    for (std::size_t a = 0; a < k; ++a) {
        if (dim + a >= shape.size() || mask.shape()[a] != shape[dim + a]) {
            index_error("The shape of the mask " + shape_str(mask.shape()) + " at index " + std::to_string(a) +
                        " does not match the shape of the indexed tensor " + shape_str(shape) + " at index " +
                        std::to_string(dim + a));
        }
    }
    std::size_t count = std::count(mask.begin(), mask.end(), true);
    std::vector<IdArray> axes(k, IdArray::from_shape({count}));
    std::size_t j = 0;
    for (std::size_t flat = 0; flat < mask.size(); ++flat) {
        if (!mask.data()[flat]) continue;
        for (std::size_t a = k, rest = flat; a-- > 0; rest /= mask.shape()[a]) axes[a](j) = rest % mask.shape()[a];
        ++j;
    }
    for (auto& ids : axes) {
        Item a;
        a.kind = Item::array;
        a.ids = std::move(ids);
        out.push_back(std::move(a)), ++consumed;
    }
    if (k == 0) {   // a 0-d mask: a new axis of 1 (true) or 0 (false), as NumPy's x[True]
        Item a;
        a.kind = Item::new_axis;
        a.value = mask() ? 1 : 0;
        out.push_back(a);
    }
}

std::int64_t in_range(std::int64_t i, std::size_t size, std::size_t dim)
{
    const auto n = static_cast<std::int64_t>(size);
    if (i < -n || i >= n) {
        index_error("index " + std::to_string(i) + " is out of bounds for dimension " + std::to_string(dim) +
                    " with size " + std::to_string(size));
    }
    return i < 0 ? i + n : i;
}

// An index taken apart: its items, and how many axes of x they name.
struct Parsed {
    std::vector<Item> items;
    std::size_t consumed = 0;
    bool advanced() const
    {
        return std::any_of(items.begin(), items.end(),
                           [](const Item& i) { return i.kind == Item::array || (i.kind == Item::new_axis && i.value != 1); });
    }
};

Parsed parse(const Shape& shape, py::handle index)
{
    Parsed p;
    if (py::isinstance<py::tuple>(index)) {
        for (py::handle obj : py::reinterpret_borrow<py::tuple>(index)) classify(obj, shape, p.consumed, p.items, p.consumed);
    } else {
        classify(index, shape, 0, p.items, p.consumed);
    }
    if (p.consumed > shape.size()) index_error("too many indices for tensor of dimension " + std::to_string(shape.size()));
    return p;
}

// x[index] for a basic index: each item applied as a view (select, slice, unsqueeze). A slice that
// keeps a whole axis is no view of its own unless the graph records it (torch's SliceBackward0).
Tensor view_of(const Tensor& x, const Shape& shape, const Parsed& parsed)
{
    const bool recorded = is_grad_enabled() && x.requires_grad();
    Tensor y = x;
    bool changed = false;
    std::size_t dim = 0, of_x = 0, consumed = parsed.consumed;   // the axis of y the next item indexes, of x it was
    for (const Item& item : parsed.items) {
        switch (item.kind) {
        case Item::new_axis: y = y.unsqueeze(static_cast<std::ptrdiff_t>(dim++)), changed = true; break;
        case Item::ellipsis: {
            const std::size_t skipped = shape.size() - consumed;
            dim += skipped, of_x += skipped, consumed = shape.size();   // a second ... expands to nothing
            break;
        }
        case Item::slice: {
            py::ssize_t start = 0, stop = 0, step = 0, length = 0;
            if (!py::reinterpret_borrow<py::slice>(item.range).compute(static_cast<py::ssize_t>(shape[of_x]), &start, &stop,
                                                                      &step, &length)) {
                throw py::error_already_set();
            }
            if (step <= 0) throw py::value_error("step must be greater than zero");
            if (recorded || start != 0 || step != 1 || static_cast<std::size_t>(length) != shape[of_x]) {
                y = y.slice(static_cast<std::ptrdiff_t>(dim), start, start + length * step, step), changed = true;
            }
            ++dim, ++of_x;
            break;
        }
        case Item::integer:
            y = y.select(static_cast<std::ptrdiff_t>(dim), in_range(item.value, shape[of_x], of_x)), changed = true;
            ++of_x;
            break;
        case Item::array: break;
        }
    }
    return changed ? y : x.alias();   // x[...], x[:]
}

Selection select(const Shape& shape, Parsed parsed);

}  // namespace

Indexed index_of(const Tensor& x, py::handle index)
{
    if (PyLong_CheckExact(index.ptr()) && x.dim() > 0) {   // the common x[i]
        const std::int64_t i = index.cast<std::int64_t>();
        return {x.select(0, in_range(i, x.size(0), 0)), {}};
    }
    const Shape shape = x.shape();
    Parsed parsed = parse(shape, index);
    if (!parsed.advanced()) return {view_of(x, shape, parsed), {}};
    return {std::nullopt, select(shape, std::move(parsed))};
}

Selection select(const Shape& shape, py::handle index) { return select(shape, parse(shape, index)); }

namespace {

Selection select(const Shape& shape, Parsed parsed)
{
    std::vector<Item>& items = parsed.items;
    std::size_t consumed = parsed.consumed;
    const bool any_array = std::any_of(items.begin(), items.end(), [](const Item& i) { return i.kind == Item::array; });

    // Row-major strides, and the output axes: each a size and a stride, or the one block of broadcast
    // advanced indices (stride 0 here, its offsets in adv_offsets).
    std::vector<std::size_t> strides(shape.size(), 1);
    for (std::size_t d = shape.size(); d-- > 1;) strides[d - 1] = strides[d] * shape[d];
    struct Axis {
        std::size_t size, stride;
        bool advanced;
    };
    std::vector<Axis> axes;
    std::size_t base = 0, dim = 0;
    std::vector<std::pair<IdArray, std::size_t>> arrays;   // (indices, the axis of x they index)
    std::ptrdiff_t adv_at = -1;
    bool adjacent = true, since_adv = false;
    auto basic_axis = [&](std::size_t size, std::size_t stride) {
        axes.push_back({size, stride, false});
        if (adv_at >= 0) since_adv = true;
    };
    for (const Item& item : items) {
        switch (item.kind) {
        case Item::new_axis: basic_axis(static_cast<std::size_t>(item.value), 0); break;
        case Item::ellipsis:
            for (std::size_t n = shape.size() - consumed; n-- > 0; ++dim) basic_axis(shape[dim], strides[dim]);
            consumed = shape.size();   // a second ... expands to nothing
            break;
        case Item::slice: {
            py::ssize_t start = 0, stop = 0, step = 0, length = 0;
            if (!py::reinterpret_borrow<py::slice>(item.range).compute(static_cast<py::ssize_t>(shape[dim]), &start, &stop, &step, &length)) {
                throw py::error_already_set();
            }
            if (step <= 0) throw py::value_error("step must be greater than zero");
            base += static_cast<std::size_t>(start) * strides[dim];
            basic_axis(static_cast<std::size_t>(length), strides[dim] * static_cast<std::size_t>(step));
            ++dim;
            break;
        }
        case Item::integer:
            if (!any_array) {
                base += static_cast<std::size_t>(in_range(item.value, shape[dim], dim)) * strides[dim];
                ++dim;
                break;
            }
            [[fallthrough]];   // beside advanced indices an int is one of them (a 0-d array), as in NumPy
        case Item::array: {
            IdArray ids = item.kind == Item::array ? *item.ids : IdArray(item.value);
            if (adv_at < 0) {
                adv_at = static_cast<std::ptrdiff_t>(axes.size());
                axes.push_back({0, 0, true});
            } else if (since_adv) {
                adjacent = false;
            }
            since_adv = false;
            arrays.emplace_back(std::move(ids), dim++);
            break;
        }
        }
    }
    for (; dim < shape.size(); ++dim) basic_axis(shape[dim], strides[dim]);

    // the advanced block: the indices broadcast together, each checked, summed into offsets
    std::vector<std::size_t> adv_offsets;
    Shape adv_shape;
    if (!arrays.empty()) {
        for (const auto& [ids, d] : arrays) {
            adv_shape = broadcast_shapes("index", adv_shape, Shape(ids.shape().begin(), ids.shape().end()));
        }
        adv_offsets.assign(shape_numel(adv_shape, "index"), 0);
        for (const auto& [ids, d] : arrays) {
            const Shape s(ids.shape().begin(), ids.shape().end());
            const auto stretch = stretch_strides(s, adv_shape);
            for (std::size_t k = 0; k < adv_offsets.size(); ++k) {
                std::size_t from = 0;
                for (std::size_t a = adv_shape.size(), rest = k; a-- > 0; rest /= adv_shape[a]) {
                    from += (rest % adv_shape[a]) * stretch[a];
                }
                adv_offsets[k] += static_cast<std::size_t>(in_range(ids.data()[from], shape[d], d)) * strides[d];
            }
        }
        axes[static_cast<std::size_t>(adv_at)].size = adv_offsets.size();
        if (!adjacent) std::rotate(axes.begin(), axes.begin() + adv_at, axes.begin() + adv_at + 1);
    }

    Selection out;
    if (!any_array) {
        out.op = "alias";
        for (const Item& item : items) {
            if (item.kind == Item::integer) out.op = "select";
            else if (item.kind == Item::slice) out.op = "slice";
            else if (item.kind == Item::new_axis) out.op = "unsqueeze";
        }
    }
    for (const Axis& a : axes) {
        if (a.advanced) {
            out.shape.insert(out.shape.end(), adv_shape.begin(), adv_shape.end());
        } else {
            out.shape.push_back(a.size);
        }
    }
    std::size_t n = 1;
    for (const Axis& a : axes) n *= a.size;
    out.flat.resize(n);
    if (n == 0) return out;
    // an odometer over the output axes, the last fastest
    std::vector<std::size_t> counter(axes.size(), 0);
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t offset = base;
        for (std::size_t a = 0; a < axes.size(); ++a) {
            offset += axes[a].advanced ? adv_offsets[counter[a]] : counter[a] * axes[a].stride;
        }
        out.flat[i] = offset;
        for (std::size_t a = axes.size(); a-- > 0;) {
            if (++counter[a] < axes[a].size) break;
            counter[a] = 0;
        }
    }
    return out;
}

}  // namespace

}  // namespace xgrad::python
