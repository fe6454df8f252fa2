// Views: tensors that share their input's storage through another shape, strides and offset, as
// torch's view ops. Each costs a TensorImpl and, when its input requires grad, a node; never a copy.
// Each backward takes the view's gradient back to the input's shape: a reshape, a permutation, a sum
// over an expanded axis, or an add into the viewed positions of a gradient of zeros.
#include <algorithm>
#include <numeric>

#include "core/autograd.h"
#include "core/node.h"
#include "core/ops.h"

namespace xgrad {

using detail::Positions;
using detail::scatter_into_zeros;

namespace {

// A view of x: x's storage seen through (shape, strides, offset). When x requires grad (and grad mode
// is on) it is recorded as `op` with the backward make_backward() returns, made only then: most views
// (an index, a reshape of a batch) record nothing and should cost nothing more.
template <class MakeBackward>
Tensor make_view(const Tensor& x, Array::shape_type shape, Strides strides, std::size_t offset, const char* op,
                 MakeBackward make_backward)
{
    const std::shared_ptr<detail::TensorImpl>& source = detail::Access::ptr(x);
    auto v = std::make_shared<detail::TensorImpl>();
    v->storage = source->storage;
    v->contiguous = is_contiguous(shape, strides);
    v->shape = std::move(shape);
    v->strides = std::move(strides);
    v->offset = offset;
    v->own_version = source->own_version;
    v->view_version = v->version();
    v->base = source->base ? source->base : source;
    if (detail::records(std::span<const Tensor>(&x, 1))) v->node = detail::make_node(*v, {x}, op, make_backward());
    return detail::Access::wrap(std::move(v));
}

std::size_t wrap_dim(const char* op, std::ptrdiff_t dim, std::size_t ndim) { return normalize_axis(op, dim, ndim); }

const detail::TensorImpl& layout_of(const Tensor& x) { return detail::Access::impl(x); }

// The backward of a view whose elements are `at` in the input: the gradient scattered back.
BackwardFn scatter_backward(const Tensor& x, Positions at)
{
    return [x, at = std::move(at)](GradOutput& grad_out, const OutputValues&) {
        if (!x.requires_grad()) return;
        for_grad_type(grad_out, [&]<class T>(Tag<T>) {
            x.accumulate_grad(scatter_into_zeros(grad_out.read<T>(), detail::Access::impl(x).shape, at));
        });
    };
}

// The backward of a view with the input's elements in another shape, in order: a reshape.
BackwardFn reshape_backward(const Tensor& x)
{
    return [x](GradOutput& grad_out, const OutputValues&) {
        for_grad_type(grad_out, [&]<class T>(Tag<T>) {
            ArrayOf<T> g = grad_out.take<T>();
            g.reshape(detail::Access::impl(x).shape);
            x.accumulate_grad(std::move(g));
        });
    };
}

// a (contiguous) with its axes reordered: out.shape[i] = a.shape[perm[i]].
template <class T>
ArrayOf<T> permuted(const ArrayOf<T>& a, const std::vector<std::size_t>& perm)
{
    const Strides in = contiguous_strides(a.shape());
    Array::shape_type shape(perm.size());
    Strides strides(perm.size());
    for (std::size_t i = 0; i < perm.size(); ++i) shape[i] = a.shape()[perm[i]], strides[i] = in[perm[i]];
    ArrayOf<T> out(shape);
    gather_elements(a.data(), shape, strides, out.data(), sizeof(T));
    return out;
}

// The shape `sizes` asks for, for `numel` elements, with one -1 inferred.
Array::shape_type infer_shape(const char* op, const std::vector<std::ptrdiff_t>& sizes, const Array::shape_type& input)
{
    const std::size_t n = shape_numel(input);
    std::size_t known = 1;
    std::ptrdiff_t inferred = -1;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        if (sizes[i] == -1) {
            XGRAD_CHECK(inferred < 0, op, ": only one dimension can be inferred (-1)");
            inferred = static_cast<std::ptrdiff_t>(i);
        } else {
            XGRAD_CHECK(sizes[i] >= 0, op, ": invalid shape dimension ", sizes[i], " at axis ", i);
            // a product that wraps around could match the input's size: (2^32, 2^32, 6) "holds" 6
            XGRAD_CHECK(!__builtin_mul_overflow(known, static_cast<std::size_t>(sizes[i]), &known), op, ": shape ",
                        shape_str(sizes), " has more elements than a size_t can count, but the input ", shape_str(input),
                        " has ", n);
        }
    }
    Array::shape_type out(sizes.size());
    for (std::size_t i = 0; i < sizes.size(); ++i) out[i] = sizes[i] < 0 ? 0 : static_cast<std::size_t>(sizes[i]);
    if (inferred >= 0) {
        XGRAD_CHECK(known > 0 && n % known == 0, op, ": cannot infer the -1 axis: ", n, " elements of ", shape_str(input),
                    " do not divide into blocks of ", known);
        out[static_cast<std::size_t>(inferred)] = n / known;
    }
    const std::size_t out_numel = shape_numel(out, op);
    XGRAD_CHECK(out_numel == n, op, ": shape ", shape_str(out), " holds ", out_numel, " elements, but the input ",
                shape_str(input), " has ", n);
    return out;
}

// The strides that view (shape, strides) as `target` without a copy, if there are any: torch's
// computeStride. Runs of input axes that are contiguous with one another may be split or merged
// freely; a target axis that would span two such runs cannot be viewed.
std::optional<Strides> view_strides(const Array::shape_type& shape, const Strides& strides, const Array::shape_type& target)
{
    Strides out(target.size());
    if (shape_numel(shape) == 0) return contiguous_strides(target);
    std::ptrdiff_t view_d = static_cast<std::ptrdiff_t>(target.size()) - 1;
    std::size_t chunk_base_stride = strides.empty() ? 1 : strides.back();
    std::size_t tensor_numel = 1, view_numel = 1;
    for (std::ptrdiff_t d = static_cast<std::ptrdiff_t>(shape.size()) - 1; d >= 0; --d) {
        tensor_numel *= shape[static_cast<std::size_t>(d)];
        // the end of a chunk of axes that are contiguous with one another
        if (d == 0 || (shape[static_cast<std::size_t>(d - 1)] != 1 &&
                       strides[static_cast<std::size_t>(d - 1)] != tensor_numel * chunk_base_stride)) {
            while (view_d >= 0 && (view_numel < tensor_numel || target[static_cast<std::size_t>(view_d)] == 1)) {
                out[static_cast<std::size_t>(view_d)] = view_numel * chunk_base_stride;
                view_numel *= target[static_cast<std::size_t>(view_d)];
                --view_d;
            }
            if (view_numel != tensor_numel) return std::nullopt;
            if (d > 0) {
                chunk_base_stride = strides[static_cast<std::size_t>(d - 1)];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    if (view_d != -1) return std::nullopt;
    return out;
}

}  // namespace

// ---- same elements, another shape ----------------------------------------------------------------------
Tensor Tensor::view(std::vector<std::ptrdiff_t> sizes) const
{
    const OpScope scope("view");
    const detail::TensorImpl& t = layout_of(*this);
    Array::shape_type shape = infer_shape("view", sizes, t.shape);
    std::optional<Strides> strides = view_strides(t.shape, t.strides, shape);
    XGRAD_CHECK(strides.has_value(), "view: view size is not compatible with input tensor's size and stride (at least one ",
                "dimension spans across two contiguous subspaces): shape ", shape_str(t.shape), " with strides ",
                shape_str(t.strides), " cannot be viewed as ", shape_str(shape), ". Use .reshape(...) instead.");
    return make_view(*this, std::move(shape), std::move(*strides), t.offset, "view", [this] { return reshape_backward(*this); });
}

Tensor Tensor::reshape(std::vector<std::ptrdiff_t> sizes) const
{
    const OpScope scope("reshape");
    const detail::TensorImpl& t = layout_of(*this);
    Array::shape_type shape = infer_shape("reshape", sizes, t.shape);
    if (std::optional<Strides> strides = view_strides(t.shape, t.strides, shape)) {
        return make_view(*this, std::move(shape), std::move(*strides), t.offset, "view", [this] { return reshape_backward(*this); });
    }
    if (dtype() != Dtype::Float && dtype() != Dtype::Double) return contiguous().view(sizes);   // no autograd there
    Tensor x = *this;
    return compute_as(x, [&]<class T>(Tag<T>) {
        ArrayOf<T> y = x.values<T>().array();   // strides that no view can follow: a copy, as torch's
        y.reshape(shape);
        return from_op(std::move(y), {x}, "reshape", [x](GradOutput& grad_out) {
            ArrayOf<T> g = grad_out.take<T>();
            g.reshape(detail::Access::impl(x).shape);
            x.accumulate_grad(std::move(g));
        });
    });
}

Tensor Tensor::flatten(std::ptrdiff_t start_dim, std::ptrdiff_t end_dim) const
{
    const OpScope scope("flatten");
    const Shape s = shape();
    if (s.empty()) return reshape({1});
    const std::size_t start = wrap_dim("flatten", start_dim, s.size()), end = wrap_dim("flatten", end_dim, s.size());
    XGRAD_CHECK(start <= end, "flatten: start_dim (", start_dim, ") cannot come after end_dim (", end_dim, ")");
    if (start == end) return *this;
    std::vector<std::ptrdiff_t> sizes(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(start));
    std::size_t merged = 1;
    for (std::size_t d = start; d <= end; ++d) merged *= s[d];
    sizes.push_back(static_cast<std::ptrdiff_t>(merged));
    sizes.insert(sizes.end(), s.begin() + static_cast<std::ptrdiff_t>(end) + 1, s.end());
    return reshape(sizes);
}

Tensor Tensor::unflatten(std::ptrdiff_t dim_, std::vector<std::ptrdiff_t> sizes) const
{
    const OpScope scope("unflatten");
    const Shape s = shape();
    const std::size_t d = wrap_dim("unflatten", dim_, s.size());
    XGRAD_CHECK(!sizes.empty(), "unflatten: sizes must be non-empty");
    std::vector<std::ptrdiff_t> out(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(d));
    std::size_t known = 1;
    bool inferred = false;
    for (std::ptrdiff_t v : sizes) {
        if (v == -1) inferred = true; else known *= static_cast<std::size_t>(std::max<std::ptrdiff_t>(v, 0));
    }
    XGRAD_CHECK(inferred ? (known > 0 && s[d] % known == 0) : known == s[d], "unflatten: provided sizes ", shape_str(sizes),
                " don't multiply up to the size of dim ", dim_, " (", s[d], ") in the input tensor");
    out.insert(out.end(), sizes.begin(), sizes.end());
    out.insert(out.end(), s.begin() + static_cast<std::ptrdiff_t>(d) + 1, s.end());
    return view(out);
}

// ---- axes reordered --------------------------------------------------------------------------------------
Tensor Tensor::permute(std::vector<std::ptrdiff_t> dims) const
{
    const OpScope scope("permute");
    const detail::TensorImpl& t = layout_of(*this);
    const std::size_t n = t.shape.size();
    XGRAD_CHECK(dims.size() == n, "permute: expected ", n, " axes for shape ", shape_str(t.shape), ", got ", dims.size());
    std::vector<std::size_t> perm(n), inverse(n);
    std::vector<bool> seen(n, false);
    Array::shape_type shape(n);
    Strides strides(n);
    for (std::size_t i = 0; i < n; ++i) {
        perm[i] = wrap_dim("permute", dims[i], n);
        XGRAD_CHECK(!seen[perm[i]], "permute: axis ", dims[i], " appears twice");
        seen[perm[i]] = true;
        inverse[perm[i]] = i;
        shape[i] = t.shape[perm[i]];
        strides[i] = t.strides[perm[i]];
    }
    Tensor x = *this;
    return make_view(*this, std::move(shape), std::move(strides), t.offset, "permute", [&] {
        return BackwardFn([x, inverse](GradOutput& grad_out, const OutputValues&) {
            for_grad_type(grad_out, [&]<class T>(Tag<T>) { x.accumulate_grad(permuted(grad_out.read<T>(), inverse)); });   // back
        });
    });
}

Tensor Tensor::transpose(std::ptrdiff_t dim0, std::ptrdiff_t dim1) const
{
    const OpScope scope("transpose");
    const detail::TensorImpl& t = layout_of(*this);
    const std::size_t n = t.shape.size(), a = wrap_dim("transpose", dim0, std::max<std::size_t>(n, 1)),
                      b = wrap_dim("transpose", dim1, std::max<std::size_t>(n, 1));
    if (n == 0) return make_view(*this, t.shape, t.strides, t.offset, "transpose", [this] { return reshape_backward(*this); });
    Array::shape_type shape = t.shape;
    Strides strides = t.strides;
    std::swap(shape[a], shape[b]);
    std::swap(strides[a], strides[b]);
    std::vector<std::size_t> swap(n);
    std::iota(swap.begin(), swap.end(), 0);
    std::swap(swap[a], swap[b]);
    Tensor x = *this;
    return make_view(*this, std::move(shape), std::move(strides), t.offset, "transpose", [&] {
        return BackwardFn([x, swap](GradOutput& grad_out, const OutputValues&) {
            for_grad_type(grad_out, [&]<class T>(Tag<T>) { x.accumulate_grad(permuted(grad_out.read<T>(), swap)); });   // back
        });
    });
}

Tensor Tensor::t() const
{
    XGRAD_CHECK(dim() <= 2, "t: expects a tensor with <= 2 dimensions, but self is ", dim(), "D");
    return dim() < 2 ? make_view(*this, layout_of(*this).shape, layout_of(*this).strides, layout_of(*this).offset, "t",
                                 [this] { return reshape_backward(*this); })
                     : transpose(0, 1);
}

Tensor Tensor::mT() const
{
    XGRAD_CHECK(dim() >= 2, "mT: tensor.mT is only supported on matrices or batches of matrices. Got ", dim(), "-D tensor.");
    return transpose(-2, -1);
}

// ---- axes added, stretched, removed ---------------------------------------------------------------------
Tensor Tensor::expand(std::vector<std::ptrdiff_t> sizes) const
{
    const OpScope scope("expand");
    const detail::TensorImpl& t = layout_of(*this);
    XGRAD_CHECK(sizes.size() >= t.shape.size(), "expand: the number of sizes provided (", sizes.size(), ") must be greater ",
                "or equal to the number of dimensions in the tensor (", t.shape.size(), ")");
    const std::size_t lead = sizes.size() - t.shape.size();
    Array::shape_type shape(sizes.size());
    Strides strides(sizes.size(), 0);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        if (i < lead) {
            XGRAD_CHECK(sizes[i] >= 0, "expand: the expanded size of the tensor (", sizes[i], ") isn't allowed in a leading, ",
                        "non-existing dimension ", i);
            shape[i] = static_cast<std::size_t>(sizes[i]);
            continue;
        }
        const std::size_t have = t.shape[i - lead];
        const std::size_t want = sizes[i] == -1 ? have : static_cast<std::size_t>(std::max<std::ptrdiff_t>(sizes[i], 0));
        XGRAD_CHECK(sizes[i] >= -1 && (want == have || have == 1), "expand: the expanded size of the tensor (", sizes[i],
                    ") must match the existing size (", have, ") at non-singleton dimension ", i, ".  Target sizes: ",
                    shape_str(sizes), ".  Tensor sizes: ", shape_str(t.shape));
        shape[i] = want;
        strides[i] = want == have ? t.strides[i - lead] : 0;
    }
    shape_numel(shape, "expand");
    Tensor x = *this;
    return make_view(*this, std::move(shape), std::move(strides), t.offset, "expand", [&] {
        return BackwardFn([x](GradOutput& grad_out, const OutputValues&) {
            for_grad_type(grad_out, [&]<class T>(Tag<T>) { x.accumulate_grad(reduce_to_shape(grad_out.read<T>(), x.shape())); });
        });
    });
}

Tensor Tensor::unsqueeze(std::ptrdiff_t dim_) const
{
    const OpScope scope("unsqueeze");
    const detail::TensorImpl& t = layout_of(*this);
    const std::size_t d = wrap_dim("unsqueeze", dim_, t.shape.size() + 1);
    Array::shape_type shape = t.shape;
    Strides strides = t.strides;
    const std::size_t stride = d < t.shape.size() ? t.strides[d] * t.shape[d] : 1;
    shape.insert(shape.begin() + static_cast<std::ptrdiff_t>(d), 1);
    strides.insert(strides.begin() + static_cast<std::ptrdiff_t>(d), stride);
    return make_view(*this, std::move(shape), std::move(strides), t.offset, "unsqueeze", [this] { return reshape_backward(*this); });
}

Tensor Tensor::squeeze() const
{
    const OpScope scope("squeeze");
    const detail::TensorImpl& t = layout_of(*this);
    Array::shape_type shape;
    Strides strides;
    for (std::size_t i = 0; i < t.shape.size(); ++i) {
        if (t.shape[i] != 1) shape.push_back(t.shape[i]), strides.push_back(t.strides[i]);
    }
    return make_view(*this, std::move(shape), std::move(strides), t.offset, "squeeze", [this] { return reshape_backward(*this); });
}

Tensor Tensor::squeeze(std::ptrdiff_t dim_) const
{
    const OpScope scope("squeeze");
    const detail::TensorImpl& t = layout_of(*this);
    Array::shape_type shape = t.shape;
    Strides strides = t.strides;
    if (!t.shape.empty()) {
        const std::size_t d = wrap_dim("squeeze", dim_, t.shape.size());
        if (t.shape[d] == 1) {
            shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(d));
            strides.erase(strides.begin() + static_cast<std::ptrdiff_t>(d));
        }
    } else {
        wrap_dim("squeeze", dim_, 1);
    }
    return make_view(*this, std::move(shape), std::move(strides), t.offset, "squeeze_dim",
                     [this] { return reshape_backward(*this); });
}

// ---- parts of the elements ------------------------------------------------------------------------------
// Each view below keeps some positions of its input: its layout is the input's with one axis
// shortened, stepped or dropped, and the same change to a row-major layout of the input's shape gives
// the positions its backward scatters into.

namespace {

// x's layout with axis d cut to [start, start + length) with `step`, and the same positions in x.
Tensor sliced(const Tensor& x, std::size_t d, std::size_t start, std::size_t length, std::size_t step, const char* op)
{
    const detail::TensorImpl& t = layout_of(x);
    Array::shape_type shape = t.shape;
    Strides strides = t.strides;
    shape[d] = length;
    strides[d] *= step;
    Positions at{shape, contiguous_strides(t.shape), 0};
    at.offset = start * at.strides[d];
    at.strides[d] *= step;
    return make_view(x, std::move(shape), std::move(strides), t.offset + start * t.strides[d], op,
                     [&] { return scatter_backward(x, std::move(at)); });
}

}  // namespace

Tensor Tensor::narrow(std::ptrdiff_t dim_, std::int64_t start, std::int64_t length) const
{
    const OpScope scope("narrow");
    XGRAD_CHECK(this->dim() > 0, "narrow: narrow() cannot be applied to a 0-dim tensor.");
    const std::size_t d = wrap_dim("narrow", dim_, this->dim());
    const auto n = static_cast<std::int64_t>(size(static_cast<std::ptrdiff_t>(d)));
    XGRAD_CHECK(start >= -n && start <= n, "narrow: start (", start, ") is out of range for dimension ", d, " of size ", n,
                " (expected to be in range of [", -n, ", ", n, "])");
    if (start < 0) start += n;
    XGRAD_CHECK(length >= 0 && start + length <= n, "narrow: start (", start, ") + length (", length,
                ") exceeds dimension size (", n, ").");
    return sliced(*this, d, static_cast<std::size_t>(start), static_cast<std::size_t>(length), 1, "slice");
}

Tensor Tensor::slice(std::ptrdiff_t dim_, std::optional<std::int64_t> start, std::optional<std::int64_t> end,
                     std::int64_t step) const
{
    const OpScope scope("slice");
    XGRAD_CHECK(this->dim() > 0, "slice() cannot be applied to a 0-dim tensor.");
    XGRAD_CHECK(step > 0, "slice: slice step must be positive, got ", step);
    const std::size_t d = wrap_dim("slice", dim_, this->dim());
    const auto n = static_cast<std::int64_t>(size(static_cast<std::ptrdiff_t>(d)));
    auto clamp = [n](std::int64_t v) { return std::clamp<std::int64_t>(v < 0 ? v + n : v, 0, n); };   // Python's rule
    const std::int64_t first = start ? clamp(*start) : 0, last = std::max(first, end ? clamp(*end) : n);
    const std::int64_t length = (last - first + step - 1) / step;
    return sliced(*this, d, static_cast<std::size_t>(first), static_cast<std::size_t>(length), static_cast<std::size_t>(step),
                  "slice");
}

namespace {

// x without axis d: its slice at `at`, recorded as `op`
Tensor selected(const Tensor& x, std::size_t d, std::size_t at, const char* op)
{
    const detail::TensorImpl& t = layout_of(x);
    Array::shape_type shape = t.shape;
    Strides strides = t.strides;
    shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(d));
    strides.erase(strides.begin() + static_cast<std::ptrdiff_t>(d));
    return make_view(x, shape, std::move(strides), t.offset + at * t.strides[d], op, [&] {
        const Strides row_major = contiguous_strides(t.shape);
        Positions positions{shape, row_major, at * row_major[d]};
        positions.strides.erase(positions.strides.begin() + static_cast<std::ptrdiff_t>(d));
        return scatter_backward(x, std::move(positions));
    });
}

}  // namespace

Tensor Tensor::select(std::ptrdiff_t dim_, std::int64_t index) const
{
    const OpScope scope("select");
    XGRAD_CHECK(this->dim() > 0, "select: cannot be applied to a 0-d tensor");
    const std::size_t d = wrap_dim("select", dim_, dim());
    const auto n = static_cast<std::int64_t>(size(static_cast<std::ptrdiff_t>(d)));
    XGRAD_CHECK(index >= -n && index < n, "select: index ", index, " is out of bounds for dimension ", d, " with size ", n);
    return selected(*this, d, static_cast<std::size_t>(index < 0 ? index + n : index), "select");
}

namespace {

// x cut along dim into pieces of `sizes`, each a view recorded as `op` (torch names split's pieces
// SplitBackward0 and split_with_sizes' SplitWithSizesBackward0)
std::vector<Tensor> pieces(const Tensor& x, const std::vector<std::int64_t>& sizes, std::ptrdiff_t dim_, const char* op)
{
    const OpScope scope(op);
    XGRAD_CHECK(x.dim() > 0, op, ": split expects at least a 1-dimensional tensor");
    const std::size_t d = wrap_dim(op, dim_, x.dim());
    const auto n = static_cast<std::int64_t>(x.size(static_cast<std::ptrdiff_t>(d)));
    std::int64_t total = 0;
    for (std::int64_t s : sizes) {
        XGRAD_CHECK(s >= 0, "split_with_sizes: expects split_sizes have only non-negative entries, but got split_sizes=",
                    shape_str(sizes));
        total += s;
    }
    XGRAD_CHECK(total == n, "split_with_sizes: expects split_sizes to sum exactly to ", n, " (input tensor's size at ",
                "dimension ", d, "), but got split_sizes=", shape_str(sizes));
    std::vector<Tensor> out;
    std::size_t start = 0;
    for (std::int64_t s : sizes) {
        out.push_back(sliced(x, d, start, static_cast<std::size_t>(s), 1, op));
        start += static_cast<std::size_t>(s);
    }
    return out;
}

}  // namespace

std::vector<Tensor> Tensor::split_with_sizes(const std::vector<std::int64_t>& sizes, std::ptrdiff_t dim_) const
{
    return pieces(*this, sizes, dim_, "split_with_sizes");
}

std::vector<Tensor> Tensor::split(std::int64_t split_size, std::ptrdiff_t dim_) const
{
    XGRAD_CHECK(split_size > 0 || (split_size == 0 && dim() > 0 && size(dim_) == 0), "split: split_size must be positive, got ",
                split_size);
    const std::int64_t n = dim() > 0 ? static_cast<std::int64_t>(size(dim_)) : 0;
    std::vector<std::int64_t> sizes;
    for (std::int64_t start = 0; start < n; start += split_size) sizes.push_back(std::min(split_size, n - start));
    if (sizes.empty()) sizes.push_back(0);
    return pieces(*this, sizes, dim_, "split");
}

std::vector<Tensor> Tensor::chunk(std::int64_t chunks, std::ptrdiff_t dim_) const
{
    XGRAD_CHECK(chunks > 0, "chunk: chunk expects `chunks` to be greater than 0, got: ", chunks);
    XGRAD_CHECK(dim() > 0, "chunk: chunk expects at least a 1-dimensional tensor");
    const auto n = static_cast<std::int64_t>(size(dim_));
    return split(std::max<std::int64_t>((n + chunks - 1) / chunks, n == 0 ? 0 : 1), dim_);
}

std::vector<Tensor> Tensor::unbind(std::ptrdiff_t dim_) const
{
    const OpScope scope("unbind");
    XGRAD_CHECK(dim() > 0, "unbind: dimension specified as ", dim_, " but tensor has no dimensions");
    const std::size_t d = wrap_dim("unbind", dim_, dim());
    std::vector<Tensor> out;
    for (std::size_t i = 0, n = size(static_cast<std::ptrdiff_t>(d)); i < n; ++i) out.push_back(selected(*this, d, i, "unbind"));
    return out;
}

Tensor Tensor::diagonal(std::int64_t offset, std::ptrdiff_t dim1, std::ptrdiff_t dim2) const
{
    const OpScope scope("diagonal");
    const detail::TensorImpl& t = layout_of(*this);
    const std::size_t n = t.shape.size();
    XGRAD_CHECK(n >= 2, "diagonal: expected a tensor of at least 2 dimensions, got ", n);
    const std::size_t a = wrap_dim("diagonal", dim1, n), b = wrap_dim("diagonal", dim2, n);
    XGRAD_CHECK(a != b, "diagonal: diagonal dimensions cannot be identical ", dim1, ", ", dim2);
    const auto rows = static_cast<std::int64_t>(t.shape[a]), cols = static_cast<std::int64_t>(t.shape[b]);
    const std::int64_t length = std::max<std::int64_t>(0, offset >= 0 ? std::min(rows, cols - offset) : std::min(rows + offset, cols));
    const std::size_t row0 = offset >= 0 ? 0 : static_cast<std::size_t>(-offset), col0 = offset >= 0 ? static_cast<std::size_t>(offset) : 0;
    // the other axes in order, then the diagonal's, as torch.diagonal
    auto layout = [&](const Strides& s, std::size_t base) {
        Positions p;
        for (std::size_t i = 0; i < n; ++i) {
            if (i != a && i != b) p.shape.push_back(t.shape[i]), p.strides.push_back(s[i]);
        }
        p.shape.push_back(static_cast<std::size_t>(length));
        p.strides.push_back(s[a] + s[b]);
        p.offset = base + (length > 0 ? row0 * s[a] + col0 * s[b] : 0);
        return p;
    };
    Positions view = layout(t.strides, t.offset), at = layout(contiguous_strides(t.shape), 0);
    return make_view(*this, std::move(view.shape), std::move(view.strides), view.offset, "diagonal",
                     [&] { return scatter_backward(*this, std::move(at)); });
}

Tensor Tensor::as_strided(std::vector<std::size_t> size_, std::vector<std::size_t> stride_,
                          std::optional<std::size_t> storage_offset) const
{
    const OpScope scope("as_strided");
    const detail::TensorImpl& t = layout_of(*this);
    XGRAD_CHECK(size_.size() == stride_.size(), "as_strided: mismatch in length of strides and shape: ", size_.size(),
                " sizes and ", stride_.size(), " strides");
    const Array::shape_type shape(size_.begin(), size_.end());
    const Strides strides(stride_.begin(), stride_.end());
    const std::size_t offset = storage_offset.value_or(t.offset);
    std::size_t last = offset;   // the farthest element it reaches
    if (shape_numel(shape, "as_strided") > 0) {
        for (std::size_t i = 0; i < shape.size(); ++i) last += (shape[i] - 1) * strides[i];
    }
    XGRAD_CHECK(shape_numel(shape) == 0 || last < t.storage->size(), "as_strided: setStorage: sizes ", shape_str(shape),
                ", strides ", shape_str(strides), ", storage offset ", offset, " require a storage of ", last + 1,
                " elements, but the storage holds ", t.storage->size());
    XGRAD_CHECK(!requires_grad() || (t.contiguous && offset >= t.offset),
                "as_strided: the input of shape ", shape_str(t.shape), " requires grad and is not contiguous (or the view ",
                "starts before it); its gradient could not be mapped back. Call contiguous() first");
    Positions at{shape, strides, offset >= t.offset ? offset - t.offset : 0};
    XGRAD_CHECK(!requires_grad() || shape_numel(shape) == 0 || last - t.offset < shape_numel(t.shape),
                "as_strided: the view reaches past the input of shape ", shape_str(t.shape), ", which requires grad");
    return make_view(*this, shape, strides, offset, "as_strided", [&] { return scatter_backward(*this, std::move(at)); });
}

Tensor Tensor::alias() const
{
    const detail::TensorImpl& t = layout_of(*this);
    return make_view(*this, t.shape, t.strides, t.offset, "alias", [this] { return reshape_backward(*this); });
}

// ---- a view's positions in its base ---------------------------------------------------------------------
namespace detail {

template <class T>
ArrayOf<T> scatter_into_zeros(const ArrayOf<T>& g, const Array::shape_type& input_shape, const Positions& at)
{
    ArrayOf<T> grad = xt::zeros<T>(input_shape);
    const std::size_t inner = at.shape.empty() ? 1 : at.shape.back(), step = at.shape.empty() ? 1 : at.strides.back();
    const T* src = g.data();
    T* dst = grad.data() + at.offset;
    if (has_overlap(at.shape, at.strides)) {   // positions reached twice: one thread, in order
        for (std::size_t i = 0; i < g.size(); ++i) dst[row_offset(i / inner, at.shape, at.strides) + i % inner * step] += src[i];
        return grad;
    }
    for_each_row(at.shape, at.strides, [&](std::size_t row, std::size_t offset) {
        for (std::size_t j = 0; j < inner; ++j) dst[offset + j * step] += src[row * inner + j];
    });
    return grad;
}

template <class T>
ArrayOf<T> gather_from(const ArrayOf<T>& g, const Positions& at)
{
    ArrayOf<T> out(at.shape);
    gather_elements(g.data() + at.offset, at.shape, at.strides, out.data(), sizeof(T));
    return out;
}

template Array scatter_into_zeros(const Array&, const Array::shape_type&, const Positions&);
template Array64 scatter_into_zeros(const Array64&, const Array::shape_type&, const Positions&);
template Array gather_from(const Array&, const Positions&);
template Array64 gather_from(const Array64&, const Positions&);

Positions positions_in_base(const TensorImpl& v, const char* op)
{
    const TensorImpl& base = *v.base;
    XGRAD_CHECK(base.contiguous && v.offset >= base.offset, op, ": the tensor of shape ", shape_str(v.shape),
                " views a base of shape ", shape_str(base.shape), " that is not contiguous; its gradient cannot be mapped ",
                "back to it. clone() the base first");
    return {v.shape, v.strides, v.offset - base.offset};
}

TensorImpl& refresh_view(TensorImpl& t)
{
    if (!t.base || t.view_version == t.version()) return t;
    t.view_version = t.version();
    const std::shared_ptr<TensorImpl>& base = t.base;
    if (!base->node || !base->node->requires_grad || (t.node && t.node->is_leaf() && t.node->requires_grad)) return t;
    Tensor b = Access::wrap(base);
    t.node = make_node(t, {b}, "as_strided", scatter_backward(b, positions_in_base(t, "as_strided")));   // as it is now
    return t;
}

}  // namespace detail

// ---- the functional forms -----------------------------------------------------------------------------------
Tensor reshape(Tensor x, std::vector<std::ptrdiff_t> shape) { return x.reshape(std::move(shape)); }
Tensor view(Tensor x, std::vector<std::ptrdiff_t> shape) { return x.view(std::move(shape)); }
Tensor transpose(const Tensor& x, int axis0, int axis1) { return x.transpose(axis0, axis1); }
Tensor permute(const Tensor& x, std::vector<int> axes) { return x.permute({axes.begin(), axes.end()}); }
Tensor select(const Tensor& x, int dim, std::int64_t index) { return x.select(dim, index); }
std::vector<Tensor> split(const Tensor& x, std::size_t split_size, int axis)
{
    return x.split(static_cast<std::int64_t>(split_size), axis);
}

}  // namespace xgrad
