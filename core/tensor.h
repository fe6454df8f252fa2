// Tensor: a cheap handle over one shared autograd node (data, grad, and the op that made it).
// Copies share everything, as torch::Tensor's do:
//
//     Tensor w = randn({3, 4}).requires_grad_();     // a leaf that collects gradients
//     Tensor y = (w * w).sum();                      // each op records its inputs and its backward
//     y.backward();                                  // w.grad() == 2 * w
//
// Ops are written with core/autograd.h; the node behind a handle is core/node.h's business.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <type_traits>
#include <ostream>
#include <vector>

#include "core/array.h"

namespace xgrad {

struct RowSparse;
namespace detail {
struct Node;
struct Access;
}  // namespace detail

class Tensor;

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

    bool defined() const { return node_ != nullptr; }
    // The values, read-only. Inside a backward, reading an input the op recorded checks that no
    // in-place write changed it since (the version counter below).
    const Array& data() const;
    // The values, to write in place: counts as an in-place op (the version goes up by one), so that a
    // backward that saved this tensor refuses to run on what was written. Optimizers and
    // initialisers write through it, under NoGradGuard.
    Array& mutable_data() const;
    std::uint64_t version() const;                        // in-place writes so far, as torch's x._version
    Shape shape() const;
    std::size_t dim() const;
    std::size_t numel() const;
    std::size_t size(std::ptrdiff_t axis) const;          // negative axes count from the end
    float item() const;                                   // the value of a one-element tensor

    // ---- autograd -------------------------------------------------------------------------------
    bool requires_grad() const;
    Tensor& requires_grad_(bool requires_grad = true);    // leaves only, as in PyTorch
    bool is_leaf() const;                                 // made by the user (or with no grad), not by an op
    const char* op_name() const;                          // "mul", "matmul", ...; "" for a leaf
    Tensor grad() const;                                  // the dense gradient; undefined until one exists
    RowSparse* sparse_grad() const;                       // a row-sparse gradient instead, or nullptr
    void set_grad(Tensor grad) const;                     // an undefined Tensor clears it
    void zero_grad(bool set_to_none = true) const;        // PyTorch's optimizer.zero_grad semantics

    // What a backward adds into an input (see core/node.h for what the gradient is in between).
    // Tensors that do not require grad ignore them.
    void accumulate_grad(const Array& grad) const;        // grad += g (a copy the first time)
    void accumulate_grad(Array&& grad) const;             // grad += g (adopts g the first time)
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
    Tensor detach() const;                                // a copy of the data, no history

    bool is_same(const Tensor& other) const { return node_ == other.node_; }   // copies of one handle?
    std::weak_ptr<const void> weak_ref() const { return node_; }               // to watch its lifetime

    // For ops whose backward needs only an operand's shape (add, sub), when the operand was passed by
    // value as a temporary: is this the last handle of a node whose buffer nothing will read again?
    // Then donate_data() moves the buffer out for good, to become the op's output; the node keeps its shape.
    bool expiring() const;
    Array donate_data();

private:
    friend struct detail::Access;                         // the autograd machinery (core/node.h)
    explicit Tensor(std::shared_ptr<detail::Node> node) : node_(std::move(node)) {}
    detail::Node& node(const char* what) const;
    std::shared_ptr<detail::Node> node_;
};

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

// Records no graph while alive, as torch::NoGradGuard: `{ NoGradGuard no_grad; w.mutable_data() -= ...; }`
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
Tensor randn(const Shape& shape, bool requires_grad = false);   // N(0, 1) from the default generator
Tensor rand(const Shape& shape, bool requires_grad = false);    // U[0, 1) from the default generator
Tensor from_vector(const std::vector<float>& values, const Shape& shape);
// One value of a 1-D literal: a class rather than float, so that tensor({{6}, {7}}) means a column.
struct Scalar {
    Scalar(float v) : value(v) {}   // implicit by design: tensor({1, 2.5f})
    float value;
};
Tensor tensor(std::initializer_list<Scalar> values);                                  // 1-D
Tensor tensor(std::initializer_list<std::initializer_list<float>> rows);              // 2-D

}  // namespace xgrad
