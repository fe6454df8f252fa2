// The Tensor handle, its node, and the backward walk.
#include "core/tensor.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include <xtensor/xio.hpp>

#include "core/check.h"
#include "core/parallel.h"
#include "core/random.h"

namespace xgrad {

namespace {

thread_local bool grad_enabled = true;

}  // namespace

bool is_grad_enabled() { return grad_enabled; }

// ---- anomaly detection ----------------------------------------------------------------------------------
namespace {

thread_local bool anomaly_enabled = false;

// Throws if `values` holds a NaN or an infinity, naming where it came from.
void check_finite(const Array& values, const char* op, const std::vector<Tensor>& inputs, const char* what)
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

}  // namespace

bool is_anomaly_enabled() { return anomaly_enabled; }
DetectAnomalyGuard::DetectAnomalyGuard() : previous_(anomaly_enabled) { anomaly_enabled = true; }
DetectAnomalyGuard::~DetectAnomalyGuard() { anomaly_enabled = previous_; }
NoGradGuard::NoGradGuard() : previous_(grad_enabled) { grad_enabled = false; }
NoGradGuard::~NoGradGuard() { grad_enabled = previous_; }

// ---- node lifetime ----------------------------------------------------------------------------------
// Dropping the last handle of a 10,000-op chain would destroy node after node recursively and overflow
// the stack. Instead each dying node hands its inputs to a local worklist; the ones it held last die
// here, one at a time.
Node::~Node()
{
    backward = nullptr;                 // its captured inputs are also in `inputs`: nothing dies yet
    std::vector<std::shared_ptr<Node>> pending;
    auto adopt = [&pending](std::vector<Tensor>& tensors) {
        for (auto& t : tensors) {
            pending.push_back(std::move(t.impl()));
        }
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

// ---- the handle ---------------------------------------------------------------------------------------
Tensor::Tensor(Array data, bool requires_grad) : node_(std::make_shared<Node>())
{
    node_->data = std::move(data);
    node_->requires_grad = requires_grad;
}

Tensor Tensor::from_op(Array data, std::vector<Tensor> inputs, const char* op, BackwardFn backward,
                       ReadsOutput reads_output)
{
    if (anomaly_enabled) check_finite(data, op, inputs, "the forward output");
    Tensor out(std::move(data));
    bool needs_grad = grad_enabled && std::any_of(inputs.begin(), inputs.end(), [](const Tensor& t) {
        return t.requires_grad();
    });
    if (needs_grad) {
        out.node_->requires_grad = true;
        out.node_->op = op;
        out.node_->inputs = std::move(inputs);
        out.node_->backward = std::move(backward);
        out.node_->backward_reads_output = reads_output == ReadsOutput::yes;
    }
    return out;
}

bool Tensor::expiring() const
{
    return node_ && node_.use_count() == 1 && !node_->backward_reads_output && !node_->data_lent;
}

Array Tensor::lend_data()
{
    XGRAD_CHECK(expiring(), "internal: lend_data on a tensor that other handles or its backward still read");
    node_->lent_shape = node_->shape();
    node_->data_lent = true;
    return std::move(node_->data);
}

const Node& Tensor::node(const char* what) const
{
    XGRAD_CHECK(node_ != nullptr, what, ": the tensor is undefined (default-constructed)");
    return *node_;
}

Array& Tensor::data() const
{
    Node& n = const_cast<Node&>(node("data"));
    XGRAD_CHECK(!n.data_lent, "internal: the buffer of this tensor was lent to a later op's output");
    return n.data;
}

Shape Tensor::shape() const { return to_shape(node("shape").shape()); }
std::size_t Tensor::dim() const { return node("dim").shape().size(); }
std::size_t Tensor::numel() const { return shape_numel(node("numel").shape()); }

std::size_t Tensor::size(std::ptrdiff_t axis) const
{
    auto n = static_cast<std::ptrdiff_t>(dim());
    XGRAD_CHECK(axis >= -n && axis < n, "size: axis ", axis, " is out of range for a ", n, "-D tensor");
    return node_->shape()[static_cast<std::size_t>(axis < 0 ? axis + n : axis)];
}

float Tensor::item() const
{
    XGRAD_CHECK(numel() == 1, "item: expected a tensor with one element, got shape ", shape_str(shape()));
    return *data().data();
}

bool Tensor::requires_grad() const { return node_ && node_->requires_grad; }
bool Tensor::is_leaf() const { return node("is_leaf").op[0] == '\0'; }
const char* Tensor::op_name() const { return node("op_name").op; }

Tensor& Tensor::requires_grad_(bool requires_grad)
{
    XGRAD_CHECK(is_leaf(), "requires_grad_: can only change it on a leaf tensor; this one is the output of '",
          node_->op, "' (use detach() first)");
    node_->requires_grad = requires_grad;
    return *this;
}

Tensor Tensor::grad() const { return node("grad").grad; }

RowSparse* Tensor::sparse_grad() const
{
    Node& n = const_cast<Node&>(node("sparse_grad"));
    return n.sparse_grad ? &*n.sparse_grad : nullptr;
}

void RowSparse::add_to(Array& dense) const
{
    const std::size_t C = values.size() / std::max<std::size_t>(rows.size(), 1);
    for (std::size_t k = 0; k < rows.size(); ++k) {
        float* dst = dense.data() + static_cast<std::size_t>(rows[k]) * C;
        const float* src = values.data() + k * C;
        for (std::size_t c = 0; c < C; ++c) dst[c] += src[c];
    }
}

Array RowSparse::to_dense(std::size_t num_rows) const
{
    Array dense = xt::zeros<float>({num_rows, values.dimension() == 2 ? values.shape()[1] : std::size_t{0}});
    add_to(dense);
    return dense;
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

// A gradient shared with the caller of backward(upstream) becomes the node's own before it is written.
static void own_shared_grad(Node& n)
{
    if (n.shared_grad == nullptr) return;
    Array copy(n.shared_grad->shape());
    parallel_copy(copy.data(), n.shared_grad->data(), copy.size());
    n.grad = Tensor(std::move(copy));
    n.shared_grad = nullptr;
}

void Tensor::accumulate_grad(RowSparse grad) const
{
    if (!requires_grad()) return;
    XGRAD_CHECK(dim() == 2 && grad.values.dimension() == 2 && grad.values.shape()[1] == node_->shape()[1] &&
              grad.rows.size() == grad.values.shape()[0],
          "internal: a row-sparse gradient of ", grad.rows.size(), " rows and values ", shape_str(grad.values.shape()),
          " does not fit a tensor of shape ", shape_str(node_->shape()));
    own_shared_grad(*node_);
    if (node_->grad.defined()) {
        grad.add_to(node_->grad.data());
    } else if (node_->sparse_grad) {
        node_->sparse_grad = merge(*node_->sparse_grad, grad);
    } else {
        node_->sparse_grad = std::move(grad);
    }
}

void Tensor::set_grad(Tensor grad) const
{
    XGRAD_CHECK(!grad.defined() || grad.shape() == shape(), "set_grad: expected a gradient of shape ",
          shape_str(shape()), ", got ", shape_str(grad.defined() ? grad.shape() : Shape{}));
    Node& n = const_cast<Node&>(node("set_grad"));
    n.sparse_grad.reset();
    n.grad = std::move(grad);
}

void Tensor::zero_grad(bool set_to_none) const
{
    Node& n = const_cast<Node&>(node("zero_grad"));
    n.sparse_grad.reset();   // an empty sparse gradient is all zeros too
    if (set_to_none || !n.grad.defined()) {
        n.grad = Tensor();
    } else {
        parallel_zero(n.grad.data().data(), n.grad.numel());
    }
}

void Tensor::accumulate_grad(const Array& grad) const
{
    if (!requires_grad()) return;
    XGRAD_CHECK(grad.shape() == node_->shape(), "internal: gradient of shape ", shape_str(grad.shape()),
          " for a tensor of shape ", shape_str(node_->shape()), " from '", node_->op, "'");
    own_shared_grad(*node_);
    if (node_->grad.defined()) {
        node_->grad.data() += grad;
    } else {
        Array copy(grad.shape());
        parallel_copy(copy.data(), grad.data(), grad.size());
        node_->grad = Tensor(std::move(copy));
    }
    if (node_->sparse_grad) {                       // a dense gradient absorbs a sparse one
        node_->sparse_grad->add_to(node_->grad.data());
        node_->sparse_grad.reset();
    }
}

void Tensor::accumulate_grad(Array&& grad) const
{
    if (!requires_grad()) return;
    if (node_->grad.defined() || node_->sparse_grad || node_->shared_grad) {
        accumulate_grad(static_cast<const Array&>(grad));
        return;
    }
    XGRAD_CHECK(grad.shape() == node_->shape(), "internal: gradient of shape ", shape_str(grad.shape()),
          " for a tensor of shape ", shape_str(node_->shape()), " from '", node_->op, "'");
    node_->grad = Tensor(std::move(grad));
}

void Tensor::accumulate_grad(Grad& grad) const
{
    if (grad.owned()) return accumulate_grad(grad.take());
    if (!requires_grad()) return;
    const bool nothing_yet = !node_->grad.defined() && !node_->sparse_grad && !node_->shared_grad;
    if (node_->op[0] == '\0' || !nothing_yet) return accumulate_grad(*grad);   // a leaf keeps its own copy
    XGRAD_CHECK(grad->shape() == node_->shape(), "internal: gradient of shape ", shape_str(grad->shape()),
          " for a tensor of shape ", shape_str(node_->shape()), " from '", node_->op, "'");
    node_->shared_grad = &*grad;
}

Tensor Tensor::detach() const
{
    Tensor out(std::make_shared<Node>());
    out.node_->data = data();                // xt::xarray has value semantics: a copy of the values
    return out;
}

// ---- backward ---------------------------------------------------------------------------------------
// Nodes in topological order (inputs before the ops that use them), found by an iterative
// depth-first search so that deep graphs need no deep call stack.
static std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root)
{
    static std::atomic<std::uint64_t> last_mark{0};
    const std::uint64_t mark = ++last_mark;
    std::vector<std::shared_ptr<Node>> order;
    std::vector<std::pair<std::shared_ptr<Node>, std::size_t>> stack{{root, 0}};
    root->visit_mark = mark;
    while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next < node->inputs.size()) {
            const Tensor& input = node->inputs[next++];
            const std::shared_ptr<Node>& child = input.impl();
            if (child->requires_grad && child->visit_mark != mark) {
                child->visit_mark = mark;
                stack.emplace_back(child, 0);
            }
        } else {
            order.push_back(std::move(node));
            stack.pop_back();
        }
    }
    return order;
}

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
    Grad seed = grad.defined() ? Grad(&grad.data()) : Grad(Array(xt::ones<float>(node_->shape())));
    accumulate_grad(seed);
    try {
        walk_backward(order, retain_graph);
    } catch (...) {             // no node may keep pointing at the caller's upstream
        for (auto& n : order) {
            if (n) n->shared_grad = nullptr;
        }
        throw;
    }
}

// Runs each node's backward, outputs before inputs, handing it the gradient its users accumulated.
void Tensor::walk_backward(std::vector<std::shared_ptr<Node>>& order, bool retain_graph)
{
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        Node& n = **it;
        if (n.op[0] == '\0') continue;                       // a leaf keeps what it accumulated
        XGRAD_CHECK(!n.graph_freed, "backward: trying to backward through the graph a second time (through '",
              n.op, "'); its saved buffers were freed by an earlier backward(). ",
              "Pass retain_graph = true to that backward() to call it again");
        if (n.sparse_grad) {                                 // ops pass dense gradients on
            n.grad = Tensor(n.sparse_grad->to_dense(n.shape()[0]));
            n.sparse_grad.reset();
        }
        if (n.grad.defined() || n.shared_grad) {
            Grad grad_out = n.shared_grad ? Grad(n.shared_grad) : Grad(std::move(n.grad.data()));
            n.grad = Tensor();                               // non-leaves do not keep their grad
            n.shared_grad = nullptr;
            n.backward(grad_out, n.data);
            if (anomaly_enabled) {
                for (const auto& input : n.inputs) {
                    if (input.grad().defined()) check_finite(input.grad().data(), n.op, n.inputs, "the backward gradient");
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

std::ostream& operator<<(std::ostream& out, const Tensor& t)
{
    if (!t.defined()) return out << "tensor(undefined)";
    out << "tensor(" << t.data() << ", shape=" << shape_str(t.shape());
    if (t.requires_grad()) out << (t.is_leaf() ? ", requires_grad" : ", op=") << t.op_name();
    return out << ")";
}

// ---- creation ---------------------------------------------------------------------------------------
Tensor zeros(const Shape& shape, bool requires_grad) { return full(shape, 0.0f, requires_grad); }
Tensor ones(const Shape& shape, bool requires_grad) { return full(shape, 1.0f, requires_grad); }

Tensor full(const Shape& shape, float value, bool requires_grad)
{
    Array data(shape);
    data.fill(value);
    return Tensor(std::move(data), requires_grad);
}

Tensor arange(float end) { return arange(0.0f, end); }

Tensor arange(float start, float end, float step)
{
    XGRAD_CHECK(step != 0.0f, "arange: step must be nonzero");
    XGRAD_CHECK((end - start) / step >= 0.0f, "arange: cannot go from ", start, " to ", end, " by ", step);
    auto n = static_cast<std::size_t>(std::ceil((end - start) / step));
    Array data(Shape{n});
    for (std::size_t i = 0; i < n; ++i) data(i) = start + static_cast<float>(i) * step;
    return Tensor(std::move(data));
}

Tensor randn(const Shape& shape, bool requires_grad)
{
    Array data(shape);
    default_generator().normal_(data);
    return Tensor(std::move(data), requires_grad);
}

Tensor rand(const Shape& shape, bool requires_grad)
{
    Array data(shape);
    default_generator().uniform_(data);
    return Tensor(std::move(data), requires_grad);
}

Tensor from_vector(const std::vector<float>& values, const Shape& shape)
{
    XGRAD_CHECK(values.size() == shape_numel(shape), "from_vector: ", values.size(),
          " values do not fill shape ", shape_str(shape), " (", shape_numel(shape), " elements)");
    Array data(shape);
    std::copy(values.begin(), values.end(), data.begin());
    return Tensor(std::move(data));
}

Tensor tensor(std::initializer_list<Scalar> values)
{
    std::vector<float> v;
    for (Scalar s : values) v.push_back(s.value);
    return from_vector(v, {values.size()});
}

Tensor tensor(std::initializer_list<std::initializer_list<float>> rows)
{
    std::size_t columns = rows.size() ? rows.begin()->size() : 0;
    std::vector<float> values;
    for (const auto& row : rows) {
        XGRAD_CHECK(row.size() == columns, "tensor: rows have different lengths (", columns, " and ", row.size(), ")");
        values.insert(values.end(), row.begin(), row.end());
    }
    return from_vector(values, {rows.size(), columns});
}

}  // namespace xgrad
