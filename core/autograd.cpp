// The autograd machinery: grad mode, anomaly checks, recording an op, the gradient's states, the
// upstream gradient's verbs, and the backward walk.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <sstream>

#include "core/node.h"

namespace xgrad {

using detail::Access;
using detail::Node;
using detail::running_backward;

namespace {

thread_local bool grad_enabled = true;
thread_local bool anomaly_enabled = false;

// Throws if `values` holds a NaN or an infinity, naming where it came from.
void check_finite(const Array& values, const char* op, std::span<const Tensor> inputs, const char* what)
{
    const float* v = values.data();
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (std::isfinite(v[i])) continue;
        std::string shapes;
        for (const auto& input : inputs) shapes += (shapes.empty() ? "" : ", ") + shape_str(input.shape());
        fail("anomaly: ", what, " of '", op, "' (inputs ", shapes, ") has ", std::isnan(v[i]) ? "NaN" : "Inf",
             " at element ", position_str(i, values.shape()), " of shape ", shape_str(values.shape()));
    }
}

// dst += src over n floats, split across threads
void add_into(float* dst, const float* src, std::size_t n)
{
    parallel_rows(n, 1, [=](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) dst[i] += src[i];
    });
}

Array copy_of(const Array& a)
{
    Array copy(a.shape());
    parallel_copy(copy.data(), a.data(), a.size());
    return copy;
}

}  // namespace

bool is_grad_enabled() { return grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(grad_enabled) { grad_enabled = false; }
NoGradGuard::~NoGradGuard() { grad_enabled = previous_; }

bool is_anomaly_enabled() { return anomaly_enabled; }
DetectAnomalyGuard::DetectAnomalyGuard() : previous_(anomaly_enabled) { anomaly_enabled = true; }
DetectAnomalyGuard::~DetectAnomalyGuard() { anomaly_enabled = previous_; }

// ---- recording an op --------------------------------------------------------------------------------
bool detail::records(std::span<const Tensor> inputs)
{
    return grad_enabled && std::any_of(inputs.begin(), inputs.end(), [](const Tensor& t) { return t.requires_grad(); });
}

Tensor detail::untracked_op(Array&& y, std::span<const Tensor> inputs, const char* op)
{
    if (anomaly_enabled) check_finite(y, op, inputs, "the forward output");
    return Tensor(std::move(y));
}

Tensor detail::record_op(Array&& y, std::vector<Tensor> inputs, const char* op, BackwardFn backward, bool reads_output)
{
    if (anomaly_enabled) check_finite(y, op, inputs, "the forward output");
    Tensor out(std::move(y));
    Node& n = Access::node(out);
    n.requires_grad = true;
    n.op = op;
    n.inputs = std::move(inputs);
    n.input_versions.resize(n.inputs.size());
    for (std::size_t i = 0; i < n.inputs.size(); ++i) n.input_versions[i] = Access::node(n.inputs[i]).version;
    n.backward = std::move(backward);
    n.backward_reads_output = reads_output;
    return out;
}

// ---- a node's gradient (the state table is in core/node.h) --------------------------------------------
namespace detail {

void GradSlot::add(const Array& g)
{
    if (empty()) {
        state_ = Tensor(copy_of(g));
        return;
    }
    Array& dense = accumulator(g.shape());
    add_into(dense.data(), g.data(), g.size());
}

void GradSlot::add(Array&& g)
{
    if (empty()) {
        state_ = Tensor(std::move(g));
        return;
    }
    add(static_cast<const Array&>(g));
}

// Two row-sparse gradients of the same table: the union of their rows, summed where both have one.
static RowSparse merge(const RowSparse& a, const RowSparse& b)
{
    const std::size_t C = a.values.shape()[1];
    RowSparse out;
    std::vector<std::pair<const float*, const float*>> sources;
    std::size_t i = 0, j = 0;
    while (i < a.rows.size() || j < b.rows.size()) {
        bool take_a = j == b.rows.size() || (i < a.rows.size() && a.rows[i] <= b.rows[j]);
        bool take_b = i == a.rows.size() || (j < b.rows.size() && b.rows[j] <= a.rows[i]);
        out.rows.push_back(take_a ? a.rows[i] : b.rows[j]);
        sources.emplace_back(take_a ? a.values.data() + i++ * C : nullptr, take_b ? b.values.data() + j++ * C : nullptr);
    }
    out.values = xt::zeros<float>({out.rows.size(), C});
    for (std::size_t k = 0; k < sources.size(); ++k) {
        for (const float* src : {sources[k].first, sources[k].second}) {
            if (src == nullptr) continue;
            for (std::size_t c = 0; c < C; ++c) out.values.data()[k * C + c] += src[c];
        }
    }
    return out;
}

void GradSlot::add(RowSparse s, const Array::shape_type& shape)
{
    if (empty()) {
        state_ = std::move(s);
    } else if (RowSparse* mine = sparse()) {
        state_ = merge(*mine, s);
    } else {
        s.add_to(accumulator(shape));
    }
}

void GradSlot::borrow(const Array* upstream)
{
    if (empty()) {
        state_ = upstream;
    } else {
        add(*upstream);
    }
}

Array& GradSlot::accumulator(const Array::shape_type& shape)
{
    if (empty()) {
        state_ = Tensor(Array(xt::zeros<float>(shape)));
    } else if (RowSparse* s = sparse()) {
        Array dense = s->to_dense(shape[0]);
        state_ = Tensor(std::move(dense));
    } else if (borrowed()) {
        state_ = Tensor(copy_of(*std::get<const Array*>(state_)));
    }
    return std::get<Tensor>(state_).mutable_data();
}

void GradSlot::set(Tensor grad)
{
    if (grad.defined()) {
        state_ = std::move(grad);
    } else {
        clear();
    }
}

GradOutput GradSlot::release(const Array::shape_type& shape)
{
    if (borrowed()) {
        const Array* upstream = std::get<const Array*>(state_);
        clear();
        return GradOutput(upstream);
    }
    Array values = sparse() ? sparse()->to_dense(shape[0]) : std::move(std::get<Tensor>(state_).mutable_data());
    clear();
    return GradOutput(std::move(values));
}

}  // namespace detail

// ---- the upstream gradient's verbs --------------------------------------------------------------------
void GradOutput::check_unused(const char* verb) const
{
    XGRAD_CHECK(values_ != nullptr, "internal: grad_out.", verb, "() after the upstream gradient was taken or ",
                "passed on; read() it before take() or pass_to()");
}

const Array& GradOutput::read() const
{
    check_unused("read");
    return *values_;
}

Array GradOutput::take()
{
    check_unused("take");
    const bool mine = owned();
    const Array* values = values_;
    values_ = nullptr;
    return mine ? std::move(owned_) : copy_of(*values);
}

void GradOutput::pass_to(const Tensor& input)
{
    check_unused("pass_to");
    if (!input.requires_grad()) {
        values_ = nullptr;
        return;
    }
    const Shape shape = input.shape();
    if (!std::equal(shape.begin(), shape.end(), values_->shape().begin(), values_->shape().end())) {
        input.accumulate_grad(reduce_to_shape(read(), shape));   // summed over the broadcast axes
        values_ = nullptr;
        return;
    }
    Node& n = Access::node(input);
    if (owned()) {
        input.accumulate_grad(take());
    } else if (n.is_leaf()) {
        input.accumulate_grad(read());   // a leaf keeps its own copy
        values_ = nullptr;
    } else {
        n.grad.borrow(values_);
        values_ = nullptr;
    }
}

// ---- node lifetime ----------------------------------------------------------------------------------
// Dropping the last handle of a 10,000-op chain would destroy node after node recursively and overflow
// the stack. Instead each dying node hands its inputs to a local worklist; the ones it held last die
// here, one at a time.
Node::~Node()
{
    backward = nullptr;                 // its captured inputs are also in `inputs`: nothing dies yet
    std::vector<std::shared_ptr<Node>> pending;
    auto adopt = [&pending](std::vector<Tensor>& tensors) {
        for (auto& t : tensors) pending.push_back(std::move(Access::ptr(t)));
        tensors.clear();
    };
    adopt(inputs);
    while (!pending.empty()) {
        std::shared_ptr<Node> n = std::move(pending.back());
        pending.pop_back();
        if (n && n.use_count() == 1) {  // we hold the last reference: take its inputs before it dies
            n->backward = nullptr;
            adopt(n->inputs);
        }
    }
}

// ---- the version check -----------------------------------------------------------------------------
namespace {

std::string version_error(const char* op, const std::string& which, const Array::shape_type& shape,
                          std::uint64_t found, std::uint64_t expected)
{
    std::ostringstream out;
    out << "one of the variables needed for gradient computation has been modified by an inplace operation: "
        << which << " of '" << op << "', a float32 tensor of shape " << shape_str(shape) << ", is at version " << found
        << "; expected version " << expected << " instead. Something wrote into it after '" << op
        << "' used it (an in-place op, a write through .data, an optimizer step); clone() it before the "
        << "write, or make the write out of place";
    return out.str();
}

}  // namespace

void detail::check_saved_version(const Node& read)
{
    const Node& op = *running_backward;
    for (std::size_t i = 0; i < op.inputs.size(); ++i) {
        if (&Access::node(op.inputs[i]) != &read || op.input_versions[i] == read.version) continue;
        throw Error(version_error(op.op, "input " + std::to_string(i), read.shape(), read.version, op.input_versions[i]));
    }
}

// ---- backward ---------------------------------------------------------------------------------------
namespace {

// Runs n's backward on grad_out: the checks of the values it reads are against n's records.
void run_backward(Node& n, GradOutput& grad_out)
{
    if (n.backward_reads_output && n.version != 0) {
        throw Error(version_error(n.op, "output 0", n.shape(), n.version, 0));
    }
    const OpScope scope(n.op, /*backward=*/true);
    const Node* outer = std::exchange(running_backward, &n);
    try {
        n.backward(grad_out, n.data);
    } catch (...) {
        running_backward = outer;
        throw;
    }
    running_backward = outer;
}

// Nodes in topological order (inputs before the ops that use them), found by an iterative
// depth-first search so that deep graphs need no deep call stack.
std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root)
{
    static std::atomic<std::uint64_t> last_mark{0};
    const std::uint64_t mark = ++last_mark;
    std::vector<std::shared_ptr<Node>> order;
    std::vector<std::pair<std::shared_ptr<Node>, std::size_t>> stack{{root, 0}};
    root->visit_mark = mark;
    while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next < node->inputs.size()) {
            const std::shared_ptr<Node>& child = Access::ptr(node->inputs[next++]);
            if (child->requires_grad && child->visit_mark != mark) {
                child->visit_mark = mark;
                stack.emplace_back(child, 0);
            }
        } else {
            if (node->hooks) detail::hooks_before_backward(*node);
            order.push_back(std::move(node));
            stack.pop_back();
        }
    }
    return order;
}

// Runs each node's backward, outputs before inputs, handing it the gradient its users accumulated.
void walk_backward(std::vector<std::shared_ptr<Node>>& order, bool retain_graph)
{
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        Node& n = **it;
        if (n.is_leaf()) {                                   // a leaf keeps what it accumulated
            if (n.hooks) detail::run_leaf_hooks(n, Access::wrap(*it));
            continue;
        }
        XGRAD_CHECK(!n.graph_freed, "backward: trying to backward through the graph a second time (through '",
              n.op, "'); its saved buffers were freed by an earlier backward(). ",
              "Pass retain_graph = true to that backward() to call it again");
        if (!n.grad.empty()) {
            GradOutput grad_out = n.grad.release(n.shape());
            if (n.hooks && (!n.hooks->grad.empty() || n.hooks->retains)) {
                GradOutput hooked(detail::run_grad_hooks(n, grad_out));
                run_backward(n, hooked);
            } else {
                run_backward(n, grad_out);
            }
            if (anomaly_enabled) {
                for (const auto& input : n.inputs) {
                    const Tensor* g = Access::node(input).grad.dense();
                    if (g) check_finite(g->data(), n.op, n.inputs, "the backward gradient");
                }
            }
        }
        if (!retain_graph) {
            n.backward = nullptr;
            n.inputs.clear();      // `order` still holds every node, so nothing dies recursively here
            n.graph_freed = true;
            it->reset();           // every op using n has run: n's output dies now unless a handle holds it
        }
    }
}

}  // namespace

void Tensor::backward(const Tensor& grad, bool retain_graph) const
{
    const Node& root = node("backward");
    XGRAD_CHECK(root.requires_grad, "backward: this tensor does not require grad and has no history; ",
          "call requires_grad_() on the leaves you want gradients for");
    if (grad.defined()) {
        XGRAD_CHECK(grad.shape() == shape(), "backward: the gradient must have the tensor's shape ",
              shape_str(shape()), ", got ", shape_str(grad.shape()));
    } else {
        XGRAD_CHECK(numel() == 1, "backward: grad can be implicitly created only for a one-element output; ",
              "this tensor has shape ", shape_str(shape()), ", so pass backward(gradient) explicitly");
    }
    XGRAD_CHECK(!root.graph_freed, "backward: trying to backward through the graph a second time (after '",
          root.op, "'); its saved buffers were freed by the first backward(). ",
          "Pass retain_graph = true to the first backward() to call it again");
    auto order = topological_order(node_);
    GradOutput seed = grad.defined() ? GradOutput(&grad.data()) : GradOutput(Array(xt::ones<float>(root.shape())));
    seed.pass_to(*this);
    try {
        walk_backward(order, retain_graph);
    } catch (...) {             // no node may keep pointing at the caller's upstream
        for (auto& n : order) {
            if (n && n->grad.borrowed()) n->grad.clear();
            if (n && n->hooks) detail::hooks_after_failure(*n);
        }
        throw;
    }
}

}  // namespace xgrad
