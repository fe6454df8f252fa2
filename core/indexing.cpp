// x.index({...}) and x.index_put_({...}, v): NumPy's and PyTorch's indexing, which Python's x[...]
// is (python/src/index.cpp only turns Python's index objects into these items).
//
//   basic     ints (negative from the end), Slices, None (a new axis of 1), Ellipsis (the axes not
//             named; a second one names none): a view of x (select, slice, unsqueeze), which shares its memory, so
//             x.index({Slice(1, 3)}).copy_(v) and x.index({0}).zero_() write into x
//   advanced  integer tensors of ids, broadcast together; bool masks (the positions where they are
//             true, one id tensor per axis they cover). Their axes go where the first of them stands
//             when they are adjacent, else first, as NumPy puts them; an int beside them is a select,
//             as torch's (not one of them, as NumPy's). A copy (take); a write through them is
//             index_put_.
#include <algorithm>

#include "core/autograd.h"
#include "core/ops.h"

namespace xgrad {

namespace {

using indexing::TensorIndex;

struct Item {
    enum Kind { integer, slice, new_axis, ellipsis, array } kind = integer;
    std::int64_t value = 0;   // integer; the size of a new axis (1, or 0 for a false 0-d mask)
    indexing::Slice range;    // slice
    std::optional<IdArray> ids;   // array (a mask is one array per axis it covers); none otherwise: an empty
                                  // xarray would still allocate its one element
};

template <class... Parts>
[[noreturn]] void index_error(const Parts&... parts)
{
    fail_as<IndexError>(parts...);
}

std::int64_t in_range(std::int64_t i, std::size_t size, std::size_t dim)
{
    const auto n = static_cast<std::int64_t>(size);
    if (i < -n || i >= n) index_error("index ", i, " is out of bounds for dimension ", dim, " with size ", size);
    return i < 0 ? i + n : i;
}

// start and length of a slice of an axis of n, with Python's clamping (negative bounds from the end)
std::pair<std::size_t, std::size_t> slice_range(const indexing::Slice& s, std::size_t size)
{
    XGRAD_CHECK(s.step > 0, "step must be greater than zero");
    const auto n = static_cast<std::int64_t>(size);
    auto clamp = [n](std::int64_t v) { return std::clamp<std::int64_t>(v < 0 ? v + n : v, 0, n); };
    const std::int64_t first = s.start ? clamp(*s.start) : 0, last = std::max(first, s.stop ? clamp(*s.stop) : n);
    return {static_cast<std::size_t>(first), static_cast<std::size_t>((last - first + s.step - 1) / s.step)};
}

// A mask over the axes from `dim` on: one id array per axis it covers (its true positions), or for a
// 0-d mask a new axis of 1 (true) or 0 (false), as NumPy's x[True]
void mask_items(const Tensor& t, const Shape& shape, std::size_t dim, std::vector<Item>& out, std::size_t& consumed)
{
    const Tensor dense = t.contiguous();
    const Shape ms = dense.shape();
    const bool* mask = dense.data_ptr<bool>();
    for (std::size_t a = 0; a < ms.size(); ++a) {
        if (dim + a >= shape.size() || ms[a] != shape[dim + a]) {
            index_error("The shape of the mask ", shape_str(ms), " at index ", a, " does not match the shape of the indexed tensor ",
                        shape_str(shape), " at index ", dim + a);
        }
    }
    if (ms.empty()) {
        Item item;
        item.kind = Item::new_axis, item.value = mask[0] ? 1 : 0;
        out.push_back(std::move(item));
        return;
    }
    const std::size_t n = dense.numel(), count = static_cast<std::size_t>(std::count(mask, mask + n, true));
    std::vector<IdArray> axes(ms.size(), IdArray::from_shape({count}));
    for (std::size_t flat = 0, j = 0; flat < n; ++flat) {
        if (!mask[flat]) continue;
        for (std::size_t a = ms.size(), rest = flat; a-- > 0; rest /= ms[a]) axes[a](j) = static_cast<std::int64_t>(rest % ms[a]);
        ++j;
    }
    for (auto& ids : axes) {
        Item item;
        item.kind = Item::array, item.ids = std::move(ids);
        out.push_back(std::move(item)), ++consumed;
    }
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

Parsed parse(const Shape& shape, const std::vector<TensorIndex>& index)
{
    Parsed p;
    for (const TensorIndex& entry : index) {
        Item item;
        if (const auto* i = std::get_if<std::int64_t>(&entry.value)) {
            item.value = *i, ++p.consumed;
        } else if (const auto* s = std::get_if<indexing::Slice>(&entry.value)) {
            item.kind = Item::slice, item.range = *s, ++p.consumed;
        } else if (std::holds_alternative<indexing::NoneIndex>(entry.value)) {
            item.kind = Item::new_axis, item.value = 1;
        } else if (std::holds_alternative<indexing::EllipsisIndex>(entry.value)) {
            item.kind = Item::ellipsis;   // a second one expands to nothing, as torch's
        } else {
            const Tensor& t = std::get<Tensor>(entry.value);
            if (t.is_floating_point()) {
                index_error("tensors used as indices must be long, int, byte or bool tensors (got a ", dtype_name(t.dtype()), " tensor)");
            }
            if (t.dtype() == kBool) {
                mask_items(t, shape, p.consumed, p.items, p.consumed);
                continue;
            }
            if (t.dim() == 0) {   // a 0-d integer tensor indexes as an int
                item.value = t.item<std::int64_t>(), ++p.consumed;
            } else {
                item.kind = Item::array, item.ids = id_array(t.to(kInt64), "index"), ++p.consumed;
            }
        }
        p.items.push_back(std::move(item));
    }
    if (p.consumed > shape.size()) index_error("too many indices for tensor of dimension ", shape.size());
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
            dim += skipped, of_x += skipped, consumed = shape.size();
            break;
        }
        case Item::slice: {
            const auto [start, length] = slice_range(item.range, shape[of_x]);
            if (recorded || start != 0 || item.range.step != 1 || length != shape[of_x]) {
                const auto step = static_cast<std::size_t>(item.range.step);
                y = y.slice(static_cast<std::ptrdiff_t>(dim), static_cast<std::int64_t>(start),
                            static_cast<std::int64_t>(start + length * step), item.range.step);
                changed = true;
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

// The flat offsets an advanced index selects in a row-major array of `shape`, and the result's shape
struct Selection {
    std::vector<std::size_t> flat;
    Shape shape;
};

// The output axes of an advanced index: each a size and a stride, or the one block of broadcast
// advanced indices (stride 0 here, its offsets apart); and where that block starts in x's memory
struct Axes {
    struct Axis {
        std::size_t size, stride;
        bool advanced;
    };
    std::vector<Axis> axes;
    std::size_t base = 0;
    std::vector<std::pair<IdArray, std::size_t>> arrays;   // (ids, the axis of x they index)
    std::ptrdiff_t adv_at = -1;
    bool adjacent = true;
};

Axes axes_of(const Shape& shape, const std::vector<std::size_t>& strides, Parsed parsed)
{
    Axes out;
    std::size_t consumed = parsed.consumed, dim = 0;
    bool since_adv = false;
    auto basic_axis = [&](std::size_t size, std::size_t stride) {
        out.axes.push_back({size, stride, false});
        if (out.adv_at >= 0) since_adv = true;
    };
    for (Item& item : parsed.items) {
        switch (item.kind) {
        case Item::new_axis: basic_axis(static_cast<std::size_t>(item.value), 0); break;
        case Item::ellipsis:
            for (std::size_t n = shape.size() - consumed; n-- > 0; ++dim) basic_axis(shape[dim], strides[dim]);
            consumed = shape.size();
            break;
        case Item::slice: {
            const auto [start, length] = slice_range(item.range, shape[dim]);
            out.base += start * strides[dim];
            basic_axis(length, strides[dim] * static_cast<std::size_t>(item.range.step));
            ++dim;
            break;
        }
        case Item::integer:   // a select, even beside ids (torch's rule: x[0, :, [0, 1]] is (3, 2) where NumPy's is (2, 3))
            out.base += static_cast<std::size_t>(in_range(item.value, shape[dim], dim)) * strides[dim];
            ++dim;
            break;
        case Item::array:
            if (out.adv_at < 0) {
                out.adv_at = static_cast<std::ptrdiff_t>(out.axes.size());
                out.axes.push_back({0, 0, true});
            } else if (since_adv) {
                out.adjacent = false;
            }
            since_adv = false;
            out.arrays.emplace_back(std::move(*item.ids), dim++);
            break;
        }
    }
    for (; dim < shape.size(); ++dim) basic_axis(shape[dim], strides[dim]);
    return out;
}

Selection selection(const Shape& shape, Parsed parsed, bool reading)
{
    std::vector<std::size_t> strides(shape.size(), 1);
    for (std::size_t d = shape.size(); d-- > 1;) strides[d - 1] = strides[d] * shape[d];
    Axes a = axes_of(shape, strides, std::move(parsed));

    // the advanced block: the ids broadcast together, each checked, summed into offsets (a read that the
    // other axes leave empty reads nothing, and checks nothing, as torch's; a write checks them all)
    std::vector<std::size_t> adv_offsets;
    Shape adv_shape;
    std::size_t others = 1;
    for (const Axes::Axis& axis : a.axes) others *= axis.advanced ? 1 : axis.size;
    if (!a.arrays.empty()) {
        for (const auto& [ids, d] : a.arrays) adv_shape = broadcast_shapes("index", adv_shape, Shape(ids.shape().begin(), ids.shape().end()));
        adv_offsets.assign(shape_numel(adv_shape, "index"), 0);
        for (const auto& [ids, d] : a.arrays) {
            if (reading && others == 0) break;
            const auto stretch = stretch_strides(Shape(ids.shape().begin(), ids.shape().end()), adv_shape);
            for (std::size_t k = 0; k < adv_offsets.size(); ++k) {
                std::size_t from = 0;
                for (std::size_t ax = adv_shape.size(), rest = k; ax-- > 0; rest /= adv_shape[ax]) from += (rest % adv_shape[ax]) * stretch[ax];
                adv_offsets[k] += static_cast<std::size_t>(in_range(ids.data()[from], shape[d], d)) * strides[d];
            }
        }
        a.axes[static_cast<std::size_t>(a.adv_at)].size = adv_offsets.size();
        if (!a.adjacent) std::rotate(a.axes.begin(), a.axes.begin() + a.adv_at, a.axes.begin() + a.adv_at + 1);
    }

    Selection out;
    std::size_t n = 1;
    for (const Axes::Axis& axis : a.axes) {
        if (axis.advanced) out.shape.insert(out.shape.end(), adv_shape.begin(), adv_shape.end());
        else out.shape.push_back(axis.size);
        n *= axis.size;
    }
    out.flat.resize(n);
    std::vector<std::size_t> counter(a.axes.size(), 0);   // an odometer over the output axes, the last fastest
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t offset = a.base;
        for (std::size_t ax = 0; ax < a.axes.size(); ++ax) {
            offset += a.axes[ax].advanced ? adv_offsets[counter[ax]] : counter[ax] * a.axes[ax].stride;
        }
        out.flat[i] = offset;
        for (std::size_t ax = a.axes.size(); ax-- > 0;) {
            if (++counter[ax] < a.axes[ax].size) break;
            counter[ax] = 0;
        }
    }
    return out;
}

}  // namespace

Tensor Tensor::index(const std::vector<TensorIndex>& index) const
{
    const OpScope scope("index");
    const Shape s = shape();
    Parsed parsed = parse(s, index);
    if (!parsed.advanced()) return view_of(*this, s, parsed);
    Selection at = selection(s, std::move(parsed), true);
    return take(*this, std::move(at.flat), at.shape, "index");
}

Tensor Tensor::index(std::initializer_list<TensorIndex> index) const { return this->index(std::vector<TensorIndex>(index)); }

// x[index] = v: a basic index copies v into the view (recorded when it must be); an advanced one
// writes at its offsets (index_put, recorded when it must be)
const Tensor& Tensor::index_put_(const std::vector<TensorIndex>& index, const Tensor& values) const
{
    const OpScope scope("index_put_");
    const Shape s = shape();
    Parsed parsed = parse(s, index);
    if (!parsed.advanced()) {
        view_of(*this, s, parsed).copy_(values);
        return *this;
    }
    XGRAD_CHECK(values.dtype() == dtype(), "Index put requires the source and destination dtypes match, got ", scalar_type_name(dtype()),
                " for the destination and ", scalar_type_name(values.dtype()), " for the source.");
    const Selection at = selection(s, std::move(parsed), false);
    xgrad::index_put_(*this, at.flat, at.shape, values);
    return *this;
}

const Tensor& Tensor::index_put_(std::initializer_list<TensorIndex> index, const Tensor& values) const
{
    return index_put_(std::vector<TensorIndex>(index), values);
}

const Tensor& Tensor::index_put_(std::initializer_list<TensorIndex> index, float value) const
{
    const OpScope scope("index_put_");
    const std::vector<TensorIndex> items(index);
    const Shape s = shape();
    Parsed parsed = parse(s, items);
    if (!parsed.advanced()) {
        view_of(*this, s, parsed).fill_(value);
        return *this;
    }
    return index_put_(items, full({}, value, dtype()));
}

}  // namespace xgrad
