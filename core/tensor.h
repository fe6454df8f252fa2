// Tensor: a cheap handle, as torch::Tensor: copies share everything. A tensor views a storage (its
// values) through a shape, strides and an offset, so views (view, transpose, slices, expand, detach)
// share memory with what they view, and in-place ops write through them; an op's output is fresh.
//
//     Tensor w = randn({3, 4}).requires_grad_();     // a leaf that collects gradients
//     Tensor y = (w * w).sum();                      // each op records its inputs and its backward
//     y.backward();                                  // w.grad() == 2 * w
//     Tensor row = w.detach().select(0, 1);          // a view: no copy
//     row.zero_();                                   // writes w's second row
//
// Ops are written with core/autograd.h; what a handle points at is core/node.h's business.
#pragma once

#include <concepts>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <type_traits>
#include <variant>
#include <ostream>
#include <vector>

#include "core/array.h"

namespace xgrad {

struct RowSparse;
namespace detail {
struct TensorImpl;
struct Access;
}  // namespace detail

class Tensor;
class Generator;   // core/random.h

// The pieces of a basic index, as libtorch's torch::indexing: x.index({Slice(1, 3), 0, None, Ellipsis})
// is Python's x[1:3, 0, None, ...]: a view.
namespace indexing {
struct NoneIndex {};
struct EllipsisIndex {};
inline constexpr NoneIndex None{};
inline constexpr EllipsisIndex Ellipsis{};
struct SliceBound {   // a slice's start or stop: an int, or None (the end)
    SliceBound() = default;
    SliceBound(std::int64_t i) : value(i) {}
    SliceBound(int i) : value(i) {}
    SliceBound(NoneIndex) {}
    std::optional<std::int64_t> value;
};
struct Slice {        // start:stop:step, negative bounds from the end, as Python's
    Slice(SliceBound start = {}, SliceBound stop = {}, std::int64_t step = 1) : start(start.value), stop(stop.value), step(step) {}
    std::optional<std::int64_t> start, stop;
    std::int64_t step;
};
struct TensorIndex;   // after Tensor, which it may hold
}  // namespace indexing

// What a registered hook returns: remove() unregisters it (again is a no-op), as torch's
// RemovableHandle. Dropping the handle keeps the hook.
class HookHandle {
public:
    HookHandle() = default;
    explicit HookHandle(std::function<void()> remove) : remove_(std::move(remove)) {}
    void remove();

private:
    std::function<void()> remove_;
};

using GradHook = std::function<Tensor(const Tensor& grad)>;
using PostAccumulateHook = std::function<void(const Tensor& leaf)>;

class Tensor {
public:
    Tensor() = default;                                   // undefined, like a default torch::Tensor
    explicit Tensor(Array&& data, bool requires_grad = false);        // takes the array over
    explicit Tensor(const Array& data, bool requires_grad = false);   // a copy of it
    template <class Y>                                    // a float64 tensor, taking the Array64 over
        requires std::is_same_v<Y, Array64>               // (a float expression converts to an Array only)
    explicit Tensor(Y&& data, bool requires_grad = false) : Tensor(of_float64(std::move(data), requires_grad)) {}

    bool defined() const { return impl_ != nullptr; }
    Shape shape() const;
    std::size_t dim() const;
    std::size_t numel() const;
    std::size_t size(std::ptrdiff_t axis) const;          // negative axes count from the end
    float item() const;                                   // the value of a one-element tensor, as a float
    template <class T>
    T item() const;                                       // ... as T: x.item<std::int64_t>(), as libtorch's

    // ---- dtype (core/convert.cpp) -----------------------------------------------------------------
    // Every tensor has one (core/dtype.h): float32 unless made otherwise. The ops of core/ops.h compute
    // in their input's precision, float32 or float64 (the embedding and attention kernels in float32
    // only); views, copies, conversions, printing and indexing take every dtype.
    Dtype dtype() const;
    std::size_t element_size() const;                     // bytes per element
    bool is_floating_point() const;
    // x.to(dtype): this tensor itself when it has that dtype, else a converted copy (core/dtype.h's
    // convert: torch's values, 300.7 as int8 is 44). Between float32 and float64 it is recorded (the
    // gradient comes back converted); to any other dtype the copy has no gradient, as torch's.
    Tensor to(Dtype dtype) const;
    template <class T>
    const T* data_ptr() const;                            // element (0, ..., 0) as T, which must be the dtype's type
    template <class T>
    T* mutable_data_ptr() const;                          // the same, to write through (contiguous; the version moves)

    // ---- values and storage, as torch's ---------------------------------------------------------
    // A tensor views a storage (shared by all its views, with their version counter) through a shape,
    // strides (in elements) and an offset. Views share it; ops write fresh, contiguous storage.
    //
    // values(): the values row-major and contiguous, for reading (a copy only when this tensor is a
    // strided view). Inside a backward, reading an input the op recorded checks that no in-place write
    // changed it since (the version counter).
    Values values() const;
    template <class T>
    ValuesOf<T> values() const;                           // T = float for float32, double for float64
    Array to_array() const;                               // a copy of the values, as an Array
    const float* data_ptr() const;                        // element (0, ..., 0), as x.data_ptr(); follow stride()
    std::vector<std::size_t> stride() const;              // in elements, as x.stride()
    std::size_t stride(std::ptrdiff_t axis) const;
    std::size_t storage_offset() const;                   // in elements, as x.storage_offset()
    bool is_contiguous() const;                           // row-major without gaps, as torch's
    Tensor contiguous() const;                            // this when contiguous, else a row-major copy (recorded)
    Tensor clone() const;                                 // a copy, recorded; a dense layout keeps its strides
    bool is_view() const;                                 // x._is_view()
    Tensor base() const;                                  // x._base: the tensor this views, else undefined
    const void* storage_id() const;                       // the same for every tensor of one storage
    bool shares_storage(const Tensor& other) const { return storage_id() == other.storage_id(); }
    std::uint64_t version() const;                        // in-place writes so far into the storage (x._version)

    // ---- views (core/view.cpp): they share this tensor's storage and cost no allocation ----------
    // shape: one entry may be -1 (inferred). view() needs strides that allow it (else "use reshape");
    // reshape() is a view when they do and a contiguous copy when not, as torch's.
    Tensor view(std::vector<std::ptrdiff_t> shape) const;
    Tensor reshape(std::vector<std::ptrdiff_t> shape) const;
    Tensor transpose(std::ptrdiff_t dim0, std::ptrdiff_t dim1) const;
    Tensor permute(std::vector<std::ptrdiff_t> dims) const;
    Tensor t() const;                                     // 0-D, 1-D: itself; 2-D: transpose(0, 1)
    Tensor mT() const;                                    // transpose(-2, -1)
    Tensor expand(std::vector<std::ptrdiff_t> sizes) const;   // -1 keeps a size; new axes lead; stride 0
    Tensor unsqueeze(std::ptrdiff_t dim) const;
    Tensor squeeze() const;                               // every axis of size 1
    Tensor squeeze(std::ptrdiff_t dim) const;             // that axis, if it has size 1
    Tensor flatten(std::ptrdiff_t start_dim = 0, std::ptrdiff_t end_dim = -1) const;   // a copy if it must be
    Tensor unflatten(std::ptrdiff_t dim, std::vector<std::ptrdiff_t> sizes) const;
    Tensor narrow(std::ptrdiff_t dim, std::int64_t start, std::int64_t length) const;
    Tensor select(std::ptrdiff_t dim, std::int64_t index) const;
    // x[start:end:step] along dim; start and end are clamped as Python's slices (negative from the end)
    Tensor slice(std::ptrdiff_t dim, std::optional<std::int64_t> start = std::nullopt,
                 std::optional<std::int64_t> end = std::nullopt, std::int64_t step = 1) const;
    std::vector<Tensor> split(std::int64_t split_size, std::ptrdiff_t dim = 0) const;   // last piece may be smaller
    std::vector<Tensor> split_with_sizes(const std::vector<std::int64_t>& sizes, std::ptrdiff_t dim = 0) const;
    std::vector<Tensor> chunk(std::int64_t chunks, std::ptrdiff_t dim = 0) const;
    std::vector<Tensor> unbind(std::ptrdiff_t dim = 0) const;
    Tensor diagonal(std::int64_t offset = 0, std::ptrdiff_t dim1 = 0, std::ptrdiff_t dim2 = 1) const;
    Tensor as_strided(std::vector<std::size_t> size, std::vector<std::size_t> stride,
                      std::optional<std::size_t> storage_offset = std::nullopt) const;
    Tensor detach() const;                                // the same storage, no history (shares the version)
    Tensor alias() const;                                 // a view of all of it, as it is (x[...])
    // x[i, a:b:s, None, ..., ids] as x.index({i, Slice(a, b, s), None, Ellipsis, ids}), libtorch's spelling
    Tensor index(std::initializer_list<indexing::TensorIndex> index) const;
    Tensor index(const std::vector<indexing::TensorIndex>& index) const;
    // The same storage, no history, and a version counter of its own: what torch's x.data is (its
    // in-place writes are not seen by autograd: the documented way to silently wrong gradients).
    Tensor variable_data() const;

    // ---- in place (core/inplace.cpp) --------------------------------------------------------------
    // Each writes through this tensor into its storage (and so into every view of it), and bumps the
    // version. On a leaf that requires grad it is refused while grad mode is on (use NoGradGuard); on
    // a tensor with history, or a view of one, it is recorded, and backward gives torch's gradients.
    // The other operand broadcasts to this tensor's shape; a write into an expanded view is refused.
    const Tensor& copy_(const Tensor& src) const;
    const Tensor& index_put_(std::initializer_list<indexing::TensorIndex> index, const Tensor& values) const;   // x[...] = v
    const Tensor& index_put_(const std::vector<indexing::TensorIndex>& index, const Tensor& values) const;
    const Tensor& index_put_(std::initializer_list<indexing::TensorIndex> index, float value) const;
    const Tensor& add_(const Tensor& other, float alpha = 1.0f) const;
    const Tensor& sub_(const Tensor& other, float alpha = 1.0f) const;
    const Tensor& mul_(const Tensor& other) const;
    const Tensor& div_(const Tensor& other) const;
    const Tensor& add_(float value) const;
    const Tensor& sub_(float value) const;
    const Tensor& mul_(float value) const;
    const Tensor& div_(float value) const;
    const Tensor& fill_(double value) const;              // converted to the dtype, as to() converts
    const Tensor& zero_() const;
    const Tensor& clamp_(std::optional<float> min, std::optional<float> max) const;
    const Tensor& masked_fill_(const Tensor& mask, float value) const;   // where mask != 0
    const Tensor& exp_() const;
    const Tensor& log_() const;
    const Tensor& sqrt_() const;
    const Tensor& tanh_() const;
    const Tensor& sigmoid_() const;
    const Tensor& relu_() const;
    const Tensor& neg_() const;
    const Tensor& pow_(float exponent) const;
    const Tensor& pow_(const Tensor& exponent) const;   // the gradient reaches exponent too
    const Tensor& normal_(float mean = 0.0f, float std = 1.0f) const;    // from the default generator
    const Tensor& uniform_(float from = 0.0f, float to = 1.0f) const;
    // x.data = other (torch's set_data): this tensor now views other's storage, shape and strides; the
    // old storage lives on in whatever else views it (a numpy array, a view).
    void set_data(const Tensor& other) const;
    // Raw write access for kernels that update a tensor in place (the optimizers): element (0, ..., 0)
    // of this tensor, which must be contiguous; counts as one in-place write. Under NoGradGuard.
    float* mutable_data_ptr() const;

    // ---- autograd -------------------------------------------------------------------------------
    bool requires_grad() const;
    const Tensor& requires_grad_(bool requires_grad = true) const;   // leaves only, as in PyTorch
    bool is_leaf() const;                                 // made by the user (or with no grad), not by an op
    const char* op_name() const;                          // "mul", "matmul", ...; "" for a leaf
    Tensor grad() const;                                  // the dense gradient; undefined until one exists
    RowSparse* sparse_grad() const;                       // a row-sparse gradient instead, or nullptr
    void set_grad(Tensor grad) const;                     // an undefined Tensor clears it
    void zero_grad(bool set_to_none = true) const;        // PyTorch's optimizer.zero_grad semantics

    // What a backward adds into an input (see core/node.h for what the gradient is in between).
    // Tensors that do not require grad ignore them.
    void accumulate_grad(const Values& grad) const;       // grad += g (a copy the first time)
    void accumulate_grad(const Array& grad) const { accumulate_grad(Values(grad)); }
    void accumulate_grad(Array&& grad) const;             // grad += g (adopts g the first time)
    void accumulate_grad(const ValuesOf<double>& grad) const;   // the same for a float64 tensor
    void accumulate_grad(const Array64& grad) const { accumulate_grad(ValuesOf<double>(grad)); }
    void accumulate_grad(Array64&& grad) const;
    void accumulate_grad(RowSparse grad) const;           // stays row-sparse unless a dense grad exists
    Array& grad_accumulator() const;                      // the dense grad to add into in place (zeros at first)

    // ---- hooks (core/hooks.cpp), as torch.Tensor's -----------------------------------------------------
    // fn sees the gradient flowing into this tensor during backward() and may return a replacement of
    // the same shape; returning an undefined Tensor (or void) keeps it. On a non-leaf it runs before the
    // op's backward; on a leaf it sees the sum of this backward's contributions before they are added
    // to grad(). Hooks run in registration order, with grad mode off, and survive retain_graph.
    HookHandle register_hook(GradHook fn) const;
    template <class F>
        requires std::is_void_v<std::invoke_result_t<F&, const Tensor&>>
    HookHandle register_hook(F fn) const
    {
        return register_hook(GradHook([fn = std::move(fn)](const Tensor& grad) mutable {
            fn(grad);
            return Tensor();
        }));
    }
    // A leaf's fn(leaf) runs once per backward() that reached it, right after its gradient for that
    // call was accumulated into grad(): the moment data-parallel training can send it.
    HookHandle register_post_accumulate_grad_hook(PostAccumulateHook fn) const;
    // A non-leaf's grad() is empty after backward unless retain_grad() was called on it: then it holds
    // the gradient that reached it (after its hooks), summed over backward calls as a leaf's is, and
    // zero_grad/set_grad act on it. On a leaf it does nothing. As torch.Tensor.retain_grad.
    void retain_grad() const;
    bool retains_grad() const;

    // Backpropagates from this tensor. Without `grad`, the tensor must hold one element.
    // The graph's saved buffers are released afterwards unless retain_graph is true.
    void backward(const Tensor& grad = {}, bool retain_graph = false) const;

    bool is_same(const Tensor& other) const { return impl_ == other.impl_; }   // copies of one handle?
    std::weak_ptr<const void> weak_ref() const { return impl_; }               // to watch its lifetime

    // For ops whose backward needs only an operand's shape (add, sub), when the operand was passed by
    // value as a temporary: is this the last handle of a tensor whose storage nothing else views?
    // Then donate_data() moves the storage's buffer out for good, to become the op's output.
    bool expiring() const;
    template <class T = float>
    ArrayOf<T> donate_data();                             // T: float for float32, double for float64

private:
    static Tensor of_float64(Array64&& data, bool requires_grad);
    friend struct detail::Access;                         // the autograd machinery (core/node.h)
    explicit Tensor(std::shared_ptr<detail::TensorImpl> impl) : impl_(std::move(impl)) {}
    detail::TensorImpl& impl(const char* what) const;
    std::shared_ptr<detail::TensorImpl> impl_;
};

namespace indexing {
// One item of an index (core/indexing.cpp), as libtorch's and NumPy's: an int (that axis, dropped), a
// Slice, None (a new axis of 1), Ellipsis (the axes no item names), or a tensor: int64 (or other
// integer) ids, or a bool mask over as many axes as it has. Ints, slices and None make a view; a
// tensor gathers a copy (advanced indexing: the ids broadcast together, and their axes go where the
// first stands when they are adjacent, else first).
struct TensorIndex {
    TensorIndex(std::int64_t i) : value(i) {}   // implicit, as libtorch's: x.index({0, Slice(), ids})
    TensorIndex(int i) : value(std::int64_t(i)) {}
    TensorIndex(Slice s) : value(s) {}
    TensorIndex(NoneIndex n) : value(n) {}
    TensorIndex(EllipsisIndex e) : value(e) {}
    TensorIndex(Tensor t) : value(std::move(t)) {}
    std::variant<std::int64_t, Slice, NoneIndex, EllipsisIndex, Tensor> value;
};
}  // namespace indexing

// The gradient of a (V, C) table that is zero outside a few rows, as an embedding with sparse = true
// makes it: row rows[k] of the full gradient is values[k]. (PyTorch's coalesced sparse COO gradient.)
struct RowSparse {
    std::vector<std::int64_t> rows;   // sorted, unique
    Array values;                     // (rows.size(), C)

    void add_to(Array& dense) const;  // dense[rows[k]] += values[k]
    Array to_dense(std::size_t num_rows) const;
};

std::ostream& operator<<(std::ostream& out, const Tensor& t);

// ---- grad mode ------------------------------------------------------------------------------------
bool is_grad_enabled();

// Records no graph while alive, as torch::NoGradGuard: `{ NoGradGuard no_grad; w.sub_(w.grad(), 0.1f); }`
class NoGradGuard {
public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

// ---- anomaly detection ----------------------------------------------------------------------------
bool is_anomaly_enabled();

// While alive, every op checks its output for NaN or Inf, and backward() checks the gradients each
// op hands to its inputs; the first one found throws, naming the op, its input shapes and the pass.
// As torch::autograd::DetectAnomalyGuard. Off, it costs one flag test per op.
class DetectAnomalyGuard {
public:
    DetectAnomalyGuard();
    ~DetectAnomalyGuard();
    DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
    DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

private:
    bool previous_;
};

// ---- creation ---------------------------------------------------------------------------------------
Tensor zeros(const Shape& shape, bool requires_grad = false);
Tensor ones(const Shape& shape, bool requires_grad = false);
Tensor full(const Shape& shape, float value, bool requires_grad = false);
Tensor arange(float end);                                  // [0, 1, ..., end - 1]
Tensor arange(float start, float end, float step = 1.0f);
// integer bounds give int64, as torch.arange(5) (declared with the dtype forms below)
template <std::integral I>
Tensor arange(I end);
template <std::integral I>
Tensor arange(I start, I end, I step = 1);
Tensor randn(const Shape& shape, bool requires_grad = false);   // N(0, 1) from the default generator
Tensor rand(const Shape& shape, bool requires_grad = false);    // U[0, 1) from the default generator
// the same in a float dtype, from `generator` or the default one: float64 draws in double (53 random
// bits), float16/bfloat16 round float32 draws
Tensor randn(const Shape& shape, Dtype dtype, bool requires_grad = false, Generator* generator = nullptr);
Tensor rand(const Shape& shape, Dtype dtype, bool requires_grad = false, Generator* generator = nullptr);
Tensor from_vector(const std::vector<float>& values, const Shape& shape);
// ---- creation of any dtype (core/convert.cpp), as libtorch's zeros({2, 3}, kInt64) ------------------
Tensor empty(const Shape& shape, Dtype dtype);            // its values undefined
Tensor zeros(const Shape& shape, Dtype dtype);
Tensor ones(const Shape& shape, Dtype dtype);
Tensor full(const Shape& shape, double value, Dtype dtype);   // value converted as to() converts
// [start, end) by step in dtype. An integral dtype takes the bounds toward zero first, as torch's
// (arange(0, 4.2, 1, kInt64) holds 0..4); the count is ceil((end - start) / step).
Tensor arange(double start, double end, double step, Dtype dtype);
template <std::integral I>
Tensor arange(I end)
{
    return arange(0.0, static_cast<double>(end), 1.0, kInt64);
}
template <std::integral I>
Tensor arange(I start, I end, I step)
{
    return arange(static_cast<double>(start), static_cast<double>(end), static_cast<double>(step), kInt64);
}
// values of type T (float, double, std::int64_t, ..., bool) as a tensor of T's dtype and `shape`
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape);
// `size` floats at `data` that something else owns, seen as a tensor of `shape` with `strides` (in
// elements), sharing them: as torch::from_blob (and torch.from_numpy). `owner` keeps the floats alive
// until the last tensor viewing them dies.
Tensor from_blob(float* data, const Shape& shape, const std::vector<std::size_t>& strides, std::size_t size,
                 std::shared_ptr<void> owner);
// the same for `size` elements of any dtype at `data` (torch.from_numpy of a float64 or int64 array)
Tensor from_blob(void* data, Dtype dtype, const Shape& shape, const std::vector<std::size_t>& strides, std::size_t size,
                 std::shared_ptr<void> owner);
// One value of a 1-D literal: a class rather than float, so that tensor({{6}, {7}}) means a column.
struct Scalar {
    Scalar(float v) : value(v) {}   // implicit by design: tensor({1, 2.5f})
    float value;
};
Tensor tensor(std::initializer_list<Scalar> values);                                  // 1-D
Tensor tensor(std::initializer_list<std::initializer_list<float>> rows);              // 2-D

}  // namespace xgrad
