// What a Tensor handle points at, as PyTorch has it: a TensorImpl (a view of a Storage: shape,
// strides, offset) and, when the tensor takes part in autograd, a Node (its gradient, and the op that
// made it with that op's inputs and backward). An implementation detail of core/tensor.cpp,
// core/autograd.cpp, core/hooks.cpp and core/view.cpp: ops never see it.
//
//     Tensor x ──> TensorImpl { storage ─────────────> Storage { Array, version }
//                               shape, strides, offset      ^
//                               node ──> Node                |  a view shares it
//                               base }                       |
//     Tensor v = x.view(6) ──> TensorImpl { storage ────────┘, base = x's TensorImpl, node ──> Node "view" }
//
// A Tensor's node can change while the TensorImpl stays: an in-place op on a tensor with history
// makes the tensor the output of that op (torch's rebase), and the node it had lives on as the input
// of the new one. So an op records its inputs as edges that hold the node each input had then.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <variant>
#include <vector>

#include "core/autograd.h"
#include "core/strided.h"

namespace xgrad::detail {

// The memory of one or more tensors: an op's output Array, kept whole, whatever shapes the tensors
// viewing it give it; and the version counter they share (torch's x._version): every in-place write
// through any of them bumps it.
class Storage {
public:
    explicit Storage(Array&& values)
        : values_(std::move(values)), data_(std::get<Array>(values_).data()), size_(std::get<Array>(values_).size())
    {
    }
    explicit Storage(Array64&& values)
        : values_(std::move(values)), data_(std::get<Array64>(values_).data()), size_(std::get<Array64>(values_).size()),
          dtype_(Dtype::Double)
    {
    }
    // Elements that something else owns (a numpy array's, for from_numpy; the block of a storage of
    // another dtype than float32), kept alive by `owner` until the storage dies.
    Storage(void* data, std::size_t size, Dtype dtype, std::shared_ptr<void> owner)
        : data_(data), size_(size), owner_(std::move(owner)), dtype_(dtype)
    {
    }
    // A fresh block of `size` elements of `dtype`, its contents undefined.
    static std::shared_ptr<Storage> allocate(Dtype dtype, std::size_t size);
    Dtype dtype() const { return dtype_; }
    float* data() { return static_cast<float*>(data_); }   // a float32 storage's
    const float* data() const { return static_cast<const float*>(data_); }
    void* bytes() { return data_; }                         // any dtype's
    const void* bytes() const { return data_; }
    std::size_t size() const { return size_; }   // elements
    std::uint64_t& version() { return counter_ ? *counter_ : version_; }
    // The counter as an object of its own, for a tensor that leaves this storage but keeps its counter
    // (set_data, as torch's x.data = v keeps x's)
    std::shared_ptr<std::uint64_t> share_counter()
    {
        if (!counter_) counter_ = std::make_shared<std::uint64_t>(version_);
        return counter_;
    }
    // The whole block as an Array of `shape` (which holds size() elements): for the autograd's own
    // buffers (a gradient added into in place, handed over without a copy). Not for borrowed floats.
    // T is the storage's type: float for float32, double for float64.
    template <class T = float>
    ArrayOf<T>& array(const Array::shape_type& shape);
    bool donated() const { return donated_; }
    bool owns() const { return owner_ == nullptr; }
    template <class T = float>
    ArrayOf<T> donate(const Array::shape_type& shape);   // moves the block out for good (add's buffer reuse)

private:
    std::variant<Array, Array64> values_;   // the elements, when the storage owns them (float32 or float64)
    void* data_;
    std::size_t size_;
    std::shared_ptr<void> owner_;   // null: values_ holds the elements
    Dtype dtype_ = Dtype::Float;
    std::uint64_t version_ = 0;
    std::shared_ptr<std::uint64_t> counter_;   // set once share_counter() was asked for
    bool donated_ = false;
};

struct Node;

// One tensor's view of a storage.
struct TensorImpl : std::enable_shared_from_this<TensorImpl> {
    std::shared_ptr<Storage> storage;
    Array::shape_type shape;
    Strides strides;                     // in elements; 0 along an expanded axis
    std::size_t offset = 0;              // of element (0, ..., 0), in elements from the storage's start
    bool contiguous = true;              // row-major without gaps: is_contiguous(shape, strides)
    std::shared_ptr<Node> node;          // null: no history, and grad not required (most tensors)
    std::shared_ptr<TensorImpl> base;    // the tensor this one views (torch's x._base); null if none
    // Its version counter: the storage's, shared by every view, unless it has one of its own (torch's
    // `.data`, whose writes autograd does not see), which its own views then share.
    std::shared_ptr<std::uint64_t> own_version;
    // A view's node follows its base's history: when the storage's version moves past view_version (an
    // in-place write through the base or another view), the node is made afresh as a view of the base's
    // node as it is now (refresh_view), as torch regenerates a view's grad_fn.
    std::uint64_t view_version = 0;

    std::uint64_t& version() const { return own_version ? *own_version : storage->version(); }
    Dtype dtype() const { return storage->dtype(); }
    const float* data() const { return storage->data() + offset; }   // float32 tensors
    float* mutable_data() { return storage->data() + offset; }
    char* bytes() const { return static_cast<char*>(storage->bytes()) + offset * element_size(storage->dtype()); }
    // Does it view the whole of a storage of its own floats, row-major, from its start? Then
    // storage->array(shape) is it.
    bool whole() const { return contiguous && offset == 0 && shape_numel(shape) == storage->size() && storage->owns(); }
};

// A node's gradient, in one of four states:
//   empty     nothing has reached the node (yet, or since zero_grad)
//   dense     a Tensor the node owns; what grad() returns
//   sparse    a RowSparse of a (V, C) table: only the rows that sparse ops (an embedding) wrote
//   borrowed  the caller's upstream of backward(upstream), read-only, handed on by pass_to to a
//             non-leaf that nothing else has reached; never written
//
//   state \ event   add dense g     add row-sparse s   borrow u       accumulator()
//   empty           dense(g)        sparse(s)          borrowed(u)    dense(zeros)
//   dense           dense += g      dense += s         dense += u     dense
//   sparse          dense(s + g)    sparse(s + s)      dense(s + u)   dense(s)
//   borrowed        dense(u + g)    dense(u + s)       dense(u + u')  dense(u)
//
// dense(u) is a copy, so the caller's array is never written. Leaves never borrow (a leaf's gradient
// outlives the call). The backward walk releases a non-leaf's gradient, leaving it empty, once every
// op that uses the node has added to it.
class GradSlot {
public:
    bool empty() const { return std::holds_alternative<std::monostate>(state_); }
    bool borrowed() const { return std::holds_alternative<const Array*>(state_) || std::holds_alternative<const Array64*>(state_); }
    const Tensor* dense() const { return std::get_if<Tensor>(&state_); }
    RowSparse* sparse() { return std::get_if<RowSparse>(&state_); }

    // T is the gradient's type: float for float32 tensors, double for float64 ones
    template <class T>
    void add(const ValuesOf<T>& g);
    template <class T>
    void add(ArrayOf<T>&& g);
    void add(const Tensor& g);   // a dense gradient of either type
    void add(RowSparse s, const Array::shape_type& shape);
    template <class T>
    void borrow(const ArrayOf<T>* upstream);
    template <class T = float>
    ArrayOf<T>& accumulator(const Array::shape_type& shape);
    void set(Tensor grad);                    // set_grad; an undefined Tensor empties it
    void clear() { state_ = std::monostate{}; }
    // for the walk: hands it over as a gradient of `dtype`, leaves it empty
    GradOutput release(const Array::shape_type& shape, Dtype dtype);

private:
    template <class T>
    GradOutput release_as(const Array::shape_type& shape);

    std::variant<std::monostate, Tensor, RowSparse, const Array*, const Array64*> state_;
};

// The hooks registered on a node (core/hooks.cpp). Most nodes have none and pay one null test.
struct Hooks {
    std::uint64_t next_id = 0;
    std::vector<std::pair<std::uint64_t, GradHook>> grad;                 // register_hook, in order
    std::vector<std::pair<std::uint64_t, PostAccumulateHook>> post_accumulate;
    // During a backward, a leaf with grad hooks keeps its gradient from earlier calls here, so that its
    // slot sums only this call's contributions for the hooks to see (PyTorch's semantics).
    GradSlot earlier;
    std::uint64_t writes_at_start = 0;  // Node::grad_writes when this backward began
    // retain_grad() on a non-leaf: each backward's gradient, after the grad hooks, summed here; what
    // grad() returns for it (the walk's own slot is transient)
    bool retains = false;
    GradSlot retained;
};

// The output an op's backward reads, kept without its TensorImpl (which holds the node: a cycle) and
// without an allocation of its own: its storage, where it lies there, its version counter and the
// version it had.
struct SavedOutput {
    std::shared_ptr<Storage> storage;    // null: the backward does not read the output
    Array::shape_type shape;
    Strides strides;
    std::size_t offset = 0;
    bool contiguous = true;
    std::shared_ptr<std::uint64_t> own_version;
    std::uint64_t version = 0;           // the one it had when saved

    void save(const TensorImpl& t);
    std::uint64_t current_version() const { return own_version ? *own_version : storage->version(); }
    OutputValues values() const;         // row-major (a copy only if it is a strided view)
};

// An op's input as the op recorded it: the tensor (whose values its backward may read), the node the
// tensor had then (where its gradient goes, even if the tensor was rebased since), and the storage and
// version it had (a backward reading it later checks both: the version counter).
struct Edge {
    Tensor tensor;
    std::shared_ptr<Node> node;          // null: the input had no history and did not require grad
    const Storage* storage = nullptr;
    std::uint64_t version = 0;
};

// A leaf (op == nullptr: made by the user, holds its gradient across calls) or an op's output
// (holds the op's backward, and its gradient only while the walk passes it on).
struct Node {
    GradSlot grad;                       // leaves: accumulated across backward calls; others: transient
    bool requires_grad = false;
    bool graph_freed = false;            // backward() ran without retain_graph and dropped the buffers
    const char* op = nullptr;            // the op that made this node; nullptr for a leaf
    Array::shape_type shape;             // of the tensor it was made for: what its gradient must have
    Dtype dtype = Dtype::Float;          // ... and its dtype
    std::vector<Edge> inputs;
    BackwardFn backward;
    SavedOutput saved_output;            // the output, when the backward reads it
    std::uint64_t visit_mark = 0;        // used by the topological walk in backward()
    std::uint64_t grad_writes = 0;       // counts the accumulations into `grad`: did a backward reach it?
    std::unique_ptr<Hooks> hooks;        // null unless a hook was registered
    std::weak_ptr<TensorImpl> leaf;      // a leaf's tensor, for its post-accumulate hooks and the graph

    ~Node();                             // frees long chains iteratively, so deep graphs cannot overflow
    bool is_leaf() const { return op == nullptr; }
};

// The backward walk's calls into core/hooks.cpp, made only for nodes whose `hooks` is set.
void hooks_before_backward(Node& n);                        // before the seed gradient is passed in
GradOutput run_grad_hooks(Node& n, GradOutput& grad_out);   // a non-leaf, before its op's backward
void run_leaf_hooks(Node& leaf, const Tensor& handle);      // a leaf, once every op using it has run
void hooks_after_failure(Node& n);                          // the walk threw: earlier gradients back

// A grad hook on node n itself (inspect::Graph's, on every op of a graph), as Tensor::register_hook.
HookHandle register_node_hook(const std::shared_ptr<Node>& n, GradHook fn);

// While an op's backward runs, the node whose backward it is (null outside a backward): reading one
// of its inputs' values checks that input's version against the one the op recorded, and a gradient
// accumulated into one of its inputs goes to the node the input had when the op recorded it.
inline thread_local const Node* running_backward = nullptr;
void check_saved_version(const TensorImpl& read);   // throws torch's "modified by an inplace operation"
Node* grad_node(const TensorImpl& t);               // where t's gradient goes now

// A node for `out`, made by `op` from `inputs`: each input recorded as an edge with the node, storage
// and version it has now.
std::shared_ptr<Node> make_node(const TensorImpl& out, std::vector<Tensor> inputs, const char* op, BackwardFn backward);
// A new TensorImpl over `values` (an Array or an Array64), without a node.
template <class T>
std::shared_ptr<TensorImpl> make_impl(ArrayOf<T>&& values);
// ---- any dtype (core/convert.cpp) ----
// A row-major TensorImpl of `shape` over a fresh storage of `dtype`, its values undefined.
std::shared_ptr<TensorImpl> make_impl(Dtype dtype, const Array::shape_type& shape);
// t's elements row-major in a fresh storage of `dtype`, converted as core/dtype.h's convert when it differs
std::shared_ptr<TensorImpl> dense_copy(const TensorImpl& t, Dtype dtype);
// n elements at src of dtype `from` written at dst as `to`, each converted
void convert_elements(const void* src, Dtype from, void* dst, Dtype to, std::size_t n);
// The error of an op that computes in float32 only (the embedding, attention) given a tensor of another
// dtype, naming the op that runs (or `what`), the dtype and the conversion that would do.
[[noreturn]] void refuse_dtype(const TensorImpl& t, const char* what);
inline void check_float32(const TensorImpl& t, const char* what)
{
    if (t.dtype() != Dtype::Float) [[unlikely]] refuse_dtype(t, what);
}
// t itself, its node brought up to date first if it is a view written through since it was made.
TensorImpl& refresh_view(TensorImpl& t);
// The positions of view v's elements in its base's index space (the base is row-major): what the
// backward of a write through the view, or of the view itself, scatters into.
struct Positions {
    Array::shape_type shape;
    Strides strides;
    std::size_t offset = 0;
};
Positions positions_in_base(const TensorImpl& v, const char* op);
// A gradient of `input_shape`: zero except at `at`, where g is added.
template <class T>
ArrayOf<T> scatter_into_zeros(const ArrayOf<T>& g, const Array::shape_type& input_shape, const Positions& at);
// g's elements at `at`, row-major: what a view at `at` receives of its base's gradient.
template <class T>
ArrayOf<T> gather_from(const ArrayOf<T>& g, const Positions& at);
// t's node, made as a leaf's if it has none.
Node& ensure_node(TensorImpl& t);

// The one door from a Tensor handle to what it points at.
struct Access {
    static TensorImpl& impl(const Tensor& t) { return *t.impl_; }
    static const std::shared_ptr<TensorImpl>& ptr(const Tensor& t) { return t.impl_; }
    static std::shared_ptr<TensorImpl>& ptr(Tensor& t) { return t.impl_; }
    static Node* node(const Tensor& t) { return t.impl_ ? t.impl_->node.get() : nullptr; }
    static Tensor wrap(std::shared_ptr<TensorImpl> impl) { return Tensor(std::move(impl)); }
};

}  // namespace xgrad::detail
