// Tensor: a cheap handle over one shared autograd node (data, grad, and the op that made it).
// Copies share everything, as torch::Tensor's do:
//
//     Tensor w = randn({3, 4}).requires_grad_();     // a leaf that collects gradients
//     Tensor y = (w * w).sum();                      // each op records its inputs and its backward
//     y.backward();                                  // w.grad() == 2 * w
//
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <ostream>
#include <vector>

#include "core/array.h"

namespace xgrad {

class Tensor;
struct Node;

// The gradient of an op's output, as the backward walk hands it to the op's backward, used once.
// Read it as `*grad_out`. To overwrite it, take() it; to pass it on unchanged (add), give it to an
// input with input.accumulate_grad(grad_out). Usually it is the walk's own buffer, which both
// hand on without a copy. At the root of backward(upstream) it is the caller's array, never written:
// take() copies it, and passing it on shares it with the input until something writes to it, so a
// backward that only reads it (an embedding's scatter-add) copies nothing.
class Grad {
public:
    explicit Grad(Array&& owned) : owned_(std::move(owned)), view_(&owned_) {}
    explicit Grad(const Array* borrowed) : view_(borrowed) {}
    Grad(const Grad&) = delete;
    Grad& operator=(const Grad&) = delete;

    const Array& operator*() const { return *view_; }
    const Array* operator->() const { return view_; }
    bool owned() const { return view_ == &owned_; }
    Array take() { return owned() ? std::move(owned_) : Array(*view_); }   // a copy of a borrowed one

private:
    Array owned_;
    const Array* view_;
};

// An op's backward: receives the gradient of its output (same shape as y) and its output y, and
// accumulates into its inputs with Tensor::accumulate_grad. It captures its inputs, never its output.
using BackwardFn = std::function<void(Grad& grad_out, const Array& y)>;

// Whether an op's backward reads its output y. An output its backward does not read can lend its
// buffer to the next op when it is a temporary that no handle keeps (see add).
enum class ReadsOutput : bool { no, yes };

// The gradient of a (V, C) table that is zero outside a few rows, as an embedding with sparse = true
// makes it: row rows[k] of the full gradient is values[k]. (PyTorch's coalesced sparse COO gradient.)
struct RowSparse {
    std::vector<std::int64_t> rows;   // sorted, unique
    Array values;                     // (rows.size(), C)

    void add_to(Array& dense) const;  // dense[rows[k]] += values[k]
    Array to_dense(std::size_t num_rows) const;
};

class Tensor {
public:
    Tensor() = default;                                   // undefined, like a default torch::Tensor
    explicit Tensor(Array data, bool requires_grad = false);

    // The result of an op: records inputs and backward when grad mode is on and an input needs grad.
    static Tensor from_op(Array data, std::vector<Tensor> inputs, const char* op, BackwardFn backward,
                          ReadsOutput reads_output = ReadsOutput::yes);

    bool defined() const { return node_ != nullptr; }
    Array& data() const;                                  // handle semantics: the shared storage
    Shape shape() const;
    std::size_t dim() const;
    std::size_t numel() const;
    std::size_t size(std::ptrdiff_t axis) const;          // negative axes count from the end
    float item() const;                                   // the value of a one-element tensor

    // ---- autograd -------------------------------------------------------------------------------
    bool requires_grad() const;
    Tensor& requires_grad_(bool requires_grad = true);    // leaves only, as in PyTorch
    bool is_leaf() const;                                 // made by the user, not by an op
    const char* op_name() const;                          // "mul", "matmul", ...; "" for a leaf
    Tensor grad() const;                                  // undefined until a backward reaches it
    void set_grad(Tensor grad) const;                     // an undefined Tensor clears it
    void zero_grad(bool set_to_none = true) const;        // PyTorch's optimizer.zero_grad semantics
    void accumulate_grad(const Array& grad) const;        // grad += g (allocates it the first time)
    void accumulate_grad(Array&& grad) const;
    void accumulate_grad(Grad& grad) const;               // hands grad_out on unchanged (see Grad)
    RowSparse* sparse_grad() const;                       // a row-sparse gradient, or nullptr
    void accumulate_grad(RowSparse grad) const;           // stays sparse unless a dense grad exists

    // Backpropagates from this tensor. Without `grad`, the tensor must hold one element.
    // The graph's saved buffers are released afterwards unless retain_graph is true.
    void backward(const Tensor& grad = {}, bool retain_graph = false) const;
    Tensor detach() const;                                // same data, no history

    bool same(const Tensor& other) const { return node_ == other.node_; }   // the same node?

    // For ops whose backward needs only this operand's shape (add, sub), when the operand was passed
    // by value as a temporary: is this the last handle of a node whose buffer nothing will read again?
    // Then lend_data() moves the buffer out to become the op's output; the node keeps its shape.
    bool expiring() const;
    Array lend_data();

    // The shared node itself, for the autograd machinery.
    const std::shared_ptr<Node>& impl() const { return node_; }
    std::shared_ptr<Node>& impl() { return node_; }

private:
    explicit Tensor(std::shared_ptr<Node> node) : node_(std::move(node)) {}
    static void walk_backward(std::vector<std::shared_ptr<Node>>& order, bool retain_graph);
    const Node& node(const char* what) const;
    std::shared_ptr<Node> node_;
};

struct Node {
    Array data;
    bool data_lent = false;             // `data` became a later op's output; only its shape is kept
    Array::shape_type lent_shape;
    bool backward_reads_output = false; // its op's backward reads `data`, so it is never lent
    Tensor grad;                        // leaves: accumulated across backward calls; others: transient
    std::optional<RowSparse> sparse_grad;   // instead of `grad`, when only sparse ops reached the node
    const Array* shared_grad = nullptr; // instead of `grad`, during backward(upstream): the caller's upstream
    bool requires_grad = false;
    bool graph_freed = false;           // backward() ran without retain_graph and dropped the buffers
    const char* op = "";                // the op that made this node; "" for leaves
    std::vector<Tensor> inputs;
    BackwardFn backward;
    std::uint64_t visit_mark = 0;       // used by the topological walk in backward()

    ~Node();                            // frees long chains iteratively, so deep graphs cannot overflow
    const Array::shape_type& shape() const { return data_lent ? lent_shape : data.shape(); }
};

std::ostream& operator<<(std::ostream& out, const Tensor& t);

// ---- grad mode ------------------------------------------------------------------------------------
bool is_grad_enabled();

// Records no graph while alive, as torch::NoGradGuard: `{ NoGradGuard no_grad; w.data() -= ...; }`
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
