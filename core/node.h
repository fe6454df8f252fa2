// The node behind every Tensor handle, and the one home of its gradient. An implementation detail of
// core/tensor.cpp, core/autograd.cpp and core/hooks.cpp (and of transpose's laziness): ops never see it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <variant>
#include <vector>

#include "core/autograd.h"

namespace xgrad::detail {

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
    bool borrowed() const { return std::holds_alternative<const Array*>(state_); }
    const Tensor* dense() const { return std::get_if<Tensor>(&state_); }
    RowSparse* sparse() { return std::get_if<RowSparse>(&state_); }

    void add(const Array& g);
    void add(Array&& g);
    void add(RowSparse s, const Array::shape_type& shape);
    void borrow(const Array* upstream);
    Array& accumulator(const Array::shape_type& shape);
    void set(Tensor grad);                    // set_grad; an undefined Tensor empties it
    void clear() { state_ = std::monostate{}; }
    GradOutput release(const Array::shape_type& shape);   // for the walk: hands it over, leaves it empty

private:
    std::variant<std::monostate, Tensor, RowSparse, const Array*> state_;
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

struct Node {
    Array data;
    bool data_donated = false;           // `data` became a later op's output; only its shape is kept
    Array::shape_type donated_shape;     // the shape while `data` is donated, or not yet made (below)
    // transpose(x, -2, -1) made lazily: `data` is empty until something reads it (Tensor::data copies
    // it then), and matmul reads the source with sgemm's transpose flag instead, never copying.
    Tensor lazy_transpose_of;
    bool backward_reads_output = false;  // its op's backward reads `data`, so it is never donated
    GradSlot grad;                       // leaves: accumulated across backward calls; others: transient
    bool requires_grad = false;
    bool graph_freed = false;            // backward() ran without retain_graph and dropped the buffers
    const char* op = nullptr;            // the op that made this node; nullptr for a leaf
    std::vector<Tensor> inputs;
    // The version counter, as torch's `_version`: bumped by every in-place write into `data`. An op
    // records its inputs' versions (and its output's); a backward that reads a value whose version
    // has moved on since throws instead of computing a gradient from the wrong values.
    std::uint64_t version = 0;
    xt::svector<std::uint64_t, 4> input_versions;   // inputs[i]'s version when this op recorded it
    BackwardFn backward;
    std::uint64_t visit_mark = 0;        // used by the topological walk in backward()
    std::uint64_t grad_writes = 0;       // counts the accumulations into `grad`: did a backward reach it?
    std::unique_ptr<Hooks> hooks;        // null unless a hook was registered

    Node() = default;
    explicit Node(Array&& d) : data(std::move(d)) {}   // moved in once, not default-made and then assigned
    ~Node();                             // frees long chains iteratively, so deep graphs cannot overflow
    bool is_leaf() const { return op == nullptr; }
    const Array::shape_type& shape() const
    {
        return data_donated || lazy_transpose_of.defined() ? donated_shape : data.shape();
    }
};

// The backward walk's calls into core/hooks.cpp, made only for nodes whose `hooks` is set.
void hooks_before_backward(Node& n);                        // before the seed gradient is passed in
Array run_grad_hooks(Node& n, GradOutput& grad_out);        // a non-leaf, before its op's backward
void run_leaf_hooks(Node& leaf, const Tensor& handle);      // a leaf, once every op using it has run
void hooks_after_failure(Node& n);                          // the walk threw: earlier gradients back

// Copies a lazy transpose's values into its `data` (core/shape.cpp), once something reads them.
void materialize_transpose(Node& n);

// While an op's backward runs, the node whose backward it is (null outside a backward): reading one
// of its inputs' values checks that input's version against the one the op recorded.
inline thread_local const Node* running_backward = nullptr;
void check_saved_version(const Node& read);   // throws torch's "modified by an inplace operation"

// The one door from a Tensor handle to its node.
struct Access {
    static Node& node(const Tensor& t) { return *t.node_; }
    static const std::shared_ptr<Node>& ptr(const Tensor& t) { return t.node_; }
    static std::shared_ptr<Node>& ptr(Tensor& t) { return t.node_; }
    static Tensor wrap(std::shared_ptr<Node> node) { return Tensor(std::move(node)); }
};

}  // namespace xgrad::detail
