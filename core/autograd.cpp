// The autograd machinery: grad mode, anomaly checks, recording an op or a view, the gradient's states,
// the upstream gradient's verbs, the version check, and the backward walk.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <sstream>

#include "core/node.h"

namespace xgrad {

using detail::Access;
using detail::Edge;
using detail::Node;
using detail::running_backward;
using detail::TensorImpl;

namespace {

thread_local bool grad_enabled = true;
thread_local bool anomaly_enabled = false;

// Throws if `values` holds a NaN or an infinity, naming where it came from.
template <class T, class Inputs>
void check_finite(const ValuesOf<T>& values, const char* op, const Inputs& inputs, const char* what)
{
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (std::isfinite(values[i])) continue;
        std::string shapes;
        for (const auto& input : inputs) shapes += (shapes.empty() ? "" : ", ") + shape_str(input.shape());
        fail("anomaly: ", what, " of '", op, "' (inputs ", shapes, ") has ", std::isnan(values[i]) ? "NaN" : "Inf",
             " at element ", position_str(i, values.shape()), " of shape ", shape_str(values.shape()));
    }
}

// dst += src over n elements, split across threads
template <class T>
void add_into(T* dst, const T* src, std::size_t n)
{
    parallel_rows(n, 1, [=](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) dst[i] += src[i];
    });
}

}  // namespace

bool is_grad_enabled() { return grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(grad_enabled) { grad_enabled = false; }
NoGradGuard::~NoGradGuard() { grad_enabled = previous_; }

bool is_anomaly_enabled() { return anomaly_enabled; }
DetectAnomalyGuard::DetectAnomalyGuard() : previous_(anomaly_enabled) { anomaly_enabled = true; }
DetectAnomalyGuard::~DetectAnomalyGuard() { anomaly_enabled = previous_; }

// ---- recording an op or a view ------------------------------------------------------------------------
bool detail::records(std::span<const Tensor> inputs)
{
    return grad_enabled && std::any_of(inputs.begin(), inputs.end(), [](const Tensor& t) { return t.requires_grad(); });
}

template <class T>
Tensor detail::untracked_op(ArrayOf<T>&& y, std::span<const Tensor> inputs, const char* op)
{
    if (anomaly_enabled) check_finite(ValuesOf<T>(y), op, inputs, "the forward output");
    return Tensor(std::move(y));
}
template Tensor detail::untracked_op(Array&&, std::span<const Tensor>, const char*);
template Tensor detail::untracked_op(Array64&&, std::span<const Tensor>, const char*);

std::shared_ptr<Node> detail::make_node(const TensorImpl& out, std::vector<Tensor> inputs, const char* op,
                                        BackwardFn backward)
{
    auto n = std::make_shared<Node>();
    n->requires_grad = true;
    n->op = op;
    n->shape = out.shape;
    n->dtype = out.dtype();
    n->inputs.reserve(inputs.size());
    for (Tensor& input : inputs) {
        const TensorImpl& t = detail::refresh_view(Access::impl(input));
        n->inputs.push_back(Edge{std::move(input), t.node, t.storage.get(), t.version()});
    }
    n->backward = std::move(backward);
    return n;
}

template <class T>
Tensor detail::record_op(ArrayOf<T>&& y, std::vector<Tensor> inputs, const char* op, BackwardFn backward, bool reads_output)
{
    if (anomaly_enabled) check_finite(ValuesOf<T>(y), op, inputs, "the forward output");
    Tensor out(std::move(y));
    TensorImpl& t = Access::impl(out);
    t.node = detail::make_node(t, std::move(inputs), op, std::move(backward));
    if (reads_output) t.node->saved_output.save(t);
    return out;
}
template Tensor detail::record_op(Array&&, std::vector<Tensor>, const char*, BackwardFn, bool);
template Tensor detail::record_op(Array64&&, std::vector<Tensor>, const char*, BackwardFn, bool);

// ---- a node's gradient (the state table is in core/node.h) --------------------------------------------
namespace detail {

void SavedOutput::save(const TensorImpl& t)
{
    storage = t.storage;
    shape = t.shape;
    strides = t.strides;
    offset = t.offset;
    contiguous = t.contiguous;
    own_version = t.own_version;
    version = t.version();
}

namespace {

template <class T>
ValuesOf<T> saved_values(const SavedOutput& out)
{
    const T* data = static_cast<const T*>(out.storage->bytes()) + out.offset;
    if (out.contiguous) return ValuesOf<T>(out.storage, data, out.shape);
    auto copy = std::make_shared<ArrayOf<T>>(out.shape);
    gather_elements(data, out.shape, out.strides, copy->data(), sizeof(T));
    const T* values = copy->data();
    return ValuesOf<T>(std::move(copy), values, out.shape);
}

}  // namespace

OutputValues SavedOutput::values() const
{
    if (storage->dtype() == Dtype::Double) return saved_values<double>(*this);
    return saved_values<float>(*this);
}

template <class T>
void GradSlot::add(const ValuesOf<T>& g)
{
    if (empty()) {
        state_ = Tensor(g.array());
        return;
    }
    ArrayOf<T>& dense = accumulator<T>(g.shape());
    add_into(dense.data(), g.data(), g.size());
}

template <class T>
void GradSlot::add(ArrayOf<T>&& g)
{
    if (empty()) {
        state_ = Tensor(std::move(g));
        return;
    }
    add(ValuesOf<T>(g));
}

void GradSlot::add(const Tensor& g)
{
    if (g.dtype() == Dtype::Double) {
        add(g.values<double>());
    } else {
        add(g.values());
    }
}

template void GradSlot::add(const ValuesOf<float>&);
template void GradSlot::add(const ValuesOf<double>&);
template void GradSlot::add(Array&&);
template void GradSlot::add(Array64&&);

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

template <class T>
void GradSlot::borrow(const ArrayOf<T>* upstream)
{
    if (empty()) {
        state_ = upstream;
    } else {
        add(ValuesOf<T>(*upstream));
    }
}
template void GradSlot::borrow(const Array*);
template void GradSlot::borrow(const Array64*);

template <class T>
ArrayOf<T>& GradSlot::accumulator(const Array::shape_type& shape)
{
    if (const Tensor* held = dense()) {
        const auto held_shape = held->shape();
        // a leaf whose data was replaced by another shape (t.data = ...) since its .grad was computed
        XGRAD_CHECK(std::equal(shape.begin(), shape.end(), held_shape.begin(), held_shape.end()), "backward: a gradient of shape ",
                    shape_str(shape), " cannot be added to the .grad of shape ", shape_str(held_shape), " already there: the "
                    "tensor's data was replaced by data of another shape since that gradient was computed; zero_grad() (or "
                    "set .grad to None) before this backward");
    }
    if (empty()) {
        state_ = Tensor(ArrayOf<T>(xt::zeros<T>(shape)));
    } else if (RowSparse* s = sparse()) {
        Array dense = s->to_dense(shape[0]);
        state_ = Tensor(std::move(dense));
    } else if (borrowed()) {
        state_ = Tensor(ValuesOf<T>(*std::get<const ArrayOf<T>*>(state_)).array());
    } else if (const Tensor& held = std::get<Tensor>(state_); !Access::impl(held).whole() || held.dtype() != dtype_of<T>()) {
        // a view set as the gradient: a buffer of its own (of the tensor's dtype, if another was set)
        state_ = Tensor(held.detach().to(dtype_of<T>()).template values<T>().array());
    }
    TensorImpl& grad = Access::impl(std::get<Tensor>(state_));
    ++grad.version();   // added into in place
    return grad.storage->array<T>(shape);
}
template Array& GradSlot::accumulator<float>(const Array::shape_type&);
template Array64& GradSlot::accumulator<double>(const Array::shape_type&);

void GradSlot::set(Tensor grad)
{
    if (grad.defined()) {
        state_ = std::move(grad);
    } else {
        clear();
    }
}

template <class T>
GradOutput GradSlot::release_as(const Array::shape_type& shape)
{
    if (const ArrayOf<T>* const* lent = std::get_if<const ArrayOf<T>*>(&state_)) {
        const ArrayOf<T>* upstream = *lent;
        clear();
        return GradOutput(upstream);
    }
    ArrayOf<T> values;
    if (RowSparse* s = sparse()) {
        values = s->to_dense(shape[0]);
    } else {
        XGRAD_CHECK(!borrowed(), "internal: a gradient lent in one dtype released as ", dtype_name(dtype_of<T>()));
        Tensor& dense = std::get<Tensor>(state_);
        const std::shared_ptr<TensorImpl>& t = Access::ptr(dense);
        const bool unique = t.use_count() == 1 && t->storage.use_count() == 1 && t->whole() && dense.dtype() == dtype_of<T>();
        // handed over, or a copy if shared (or set_grad gave it another dtype)
        values = unique ? t->storage->donate<T>(shape) : dense.detach().to(dtype_of<T>()).template values<T>().array();
    }
    clear();
    return GradOutput(std::move(values));
}

GradOutput GradSlot::release(const Array::shape_type& shape, Dtype dtype)
{
    if (dtype == Dtype::Double) return release_as<double>(shape);
    return release_as<float>(shape);
}

}  // namespace detail

// ---- the upstream gradient's verbs --------------------------------------------------------------------
void GradOutput::check_unused(const char* verb, Dtype as) const
{
    XGRAD_CHECK(values_ != nullptr, "internal: grad_out.", verb, "() after the upstream gradient was taken or ",
                "passed on; read() it before take() or pass_to()");
    XGRAD_CHECK(as == dtype_, "internal: grad_out.", verb, "() as ", dtype_name(as), " of a ", dtype_name(dtype_), " gradient");
}

void GradOutput::pass_to(const Tensor& input)
{
    check_unused("pass_to", dtype_);
    Node* n = detail::grad_node(Access::impl(input));
    if (n == nullptr || !n->requires_grad) {
        values_ = nullptr;
        return;
    }
    auto pass = [&]<class T>(Tag<T>) {
        const ArrayOf<T>& g = read<T>();
        if (!std::equal(n->shape.begin(), n->shape.end(), g.shape().begin(), g.shape().end())) {
            input.accumulate_grad(reduce_to_shape(g, to_shape(n->shape)));   // summed over the broadcast axes
            values_ = nullptr;
        } else if (owns_) {
            input.accumulate_grad(take<T>());
        } else if (n->is_leaf()) {
            input.accumulate_grad(g);   // a leaf keeps its own copy
            values_ = nullptr;
        } else {
            n->grad.borrow(&g);
            values_ = nullptr;
        }
    };
    dtype_ == Dtype::Double ? pass(Tag<double>{}) : pass(Tag<float>{});
}

// ---- the version check, and where a backward's gradients go --------------------------------------------
namespace {

std::string version_error(const char* op, const std::string& which, const Array::shape_type& shape,
                          std::uint64_t found, std::uint64_t expected)
{
    std::ostringstream out;
    out << "one of the variables needed for gradient computation has been modified by an inplace operation: "
        << which << " of '" << op << "', a float32 tensor of shape " << shape_str(shape) << ", is at version " << found
        << "; expected version " << expected << " instead. Something wrote into it after '" << op
        << "' used it (an in-place op, a write through a view, an optimizer step); clone() it before the "
        << "write, or make the write out of place";
    return out.str();
}

}  // namespace

void detail::check_saved_version(const TensorImpl& read)
{
    const Node& op = *running_backward;
    for (std::size_t i = 0; i < op.inputs.size(); ++i) {
        const Edge& e = op.inputs[i];
        if (Access::ptr(e.tensor).get() != &read) continue;
        XGRAD_CHECK(e.storage == read.storage.get(), "input ", i, " of '", op.op, "' was given other data (x.data = ... or ",
                    "set_data) after '", op.op, "' used it; its backward needs the values it had");
        if (e.version != read.version()) {
            throw Error(version_error(op.op, "input " + std::to_string(i), read.shape, read.version(), e.version));
        }
    }
}

void check_saved(const Tensor& x)
{
    if (running_backward && x.defined()) detail::check_saved_version(Access::impl(x));
}

Node* detail::grad_node(const TensorImpl& t)
{
    if (running_backward) {
        for (const Edge& e : running_backward->inputs) {
            if (Access::ptr(e.tensor).get() == &t) return e.node.get();
        }
    }
    return t.node.get();
}

// ---- node lifetime ----------------------------------------------------------------------------------
// Dropping the last handle of a 10,000-op chain would destroy node after node recursively and overflow
// the stack. Instead each dying node hands what it holds to a local worklist; what it held last dies
// here, one at a time: a tensor gives up its node and base first, a node its inputs.
Node::~Node()
{
    backward = nullptr;                 // its captured inputs are also in `inputs`: nothing dies yet
    // The common case, inputs that live on elsewhere (parameters, tensors the caller holds): dropping
    // the edges only drops references, and needs no worklist.
    const auto held_elsewhere = [this](const auto& ptr, auto of) {
        const auto here = std::count_if(inputs.begin(), inputs.end(), [&](const Edge& e) { return of(e) == ptr; });
        return !ptr || ptr.use_count() > here;
    };
    if (std::all_of(inputs.begin(), inputs.end(), [&](const Edge& e) {
            return held_elsewhere(Access::ptr(e.tensor), [](const Edge& x) -> const auto& { return Access::ptr(x.tensor); }) &&
                   held_elsewhere(e.node, [](const Edge& x) -> const auto& { return x.node; });
        })) {
        return;
    }
    std::vector<std::shared_ptr<Node>> nodes;
    std::vector<std::shared_ptr<TensorImpl>> tensors;
    auto adopt = [&](std::vector<Edge>& edges) {
        for (Edge& e : edges) {
            nodes.push_back(std::move(e.node));
            tensors.push_back(std::move(Access::ptr(e.tensor)));
        }
        edges.clear();
    };
    adopt(inputs);
    while (!nodes.empty() || !tensors.empty()) {
        if (!tensors.empty()) {
            std::shared_ptr<TensorImpl> t = std::move(tensors.back());
            tensors.pop_back();
            if (t && t.use_count() == 1) {   // we hold the last reference: take what it holds before it dies
                nodes.push_back(std::move(t->node));
                tensors.push_back(std::move(t->base));
            }
            continue;
        }
        std::shared_ptr<Node> n = std::move(nodes.back());
        nodes.pop_back();
        if (n && n.use_count() == 1) {
            n->backward = nullptr;
            adopt(n->inputs);
        }
    }
}

// ---- backward ---------------------------------------------------------------------------------------
namespace {

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
            const std::shared_ptr<Node>& child = node->inputs[next++].node;
            if (child && child->requires_grad && child->visit_mark != mark) {
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

// Runs n's backward on grad_out: the checks of the values it reads are against n's records.
void run_backward(Node& n, GradOutput& grad_out)
{
    OutputValues y;
    if (const detail::SavedOutput& out = n.saved_output; out.storage) {
        if (out.current_version() != out.version) {
            throw Error(version_error(n.op, "output 0", out.shape, out.current_version(), out.version));
        }
        y = out.values();
    }
    const OpScope scope(n.op, /*backward=*/true);
    const Node* outer = std::exchange(running_backward, &n);
    try {
        n.backward(grad_out, y);
    } catch (...) {
        running_backward = outer;
        throw;
    }
    running_backward = outer;
}

// Runs each node's backward, outputs before inputs, handing it the gradient its users accumulated.
void walk_backward(std::vector<std::shared_ptr<Node>>& order, bool retain_graph)
{
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        Node& n = **it;
        if (n.is_leaf()) {                                   // a leaf keeps what it accumulated
            if (n.hooks) detail::run_leaf_hooks(n, Access::wrap(n.leaf.lock()));
            continue;
        }
        XGRAD_CHECK(!n.graph_freed, "backward: trying to backward through the graph a second time (through '",
              n.op, "'); its saved buffers were freed by an earlier backward(). ",
              "Pass retain_graph = true to that backward() to call it again");
        if (!n.grad.empty()) {
            GradOutput grad_out = n.grad.release(n.shape, n.dtype);
            if (n.hooks && (!n.hooks->grad.empty() || n.hooks->retains)) {
                GradOutput hooked = detail::run_grad_hooks(n, grad_out);
                run_backward(n, hooked);
            } else {
                run_backward(n, grad_out);
            }
            if (anomaly_enabled) {
                std::vector<Tensor> inputs;
                for (const Edge& e : n.inputs) inputs.push_back(e.tensor);
                for (const Edge& e : n.inputs) {
                    const Tensor* g = e.node ? e.node->grad.dense() : nullptr;
                    if (g && g->dtype() == Dtype::Double) check_finite(g->values<double>(), n.op, inputs, "the backward gradient");
                    if (g && g->dtype() == Dtype::Float) check_finite(g->values(), n.op, inputs, "the backward gradient");
                }
            }
        }
        if (!retain_graph) {
            n.backward = nullptr;
            n.inputs.clear();      // `order` still holds every node, so nothing dies recursively here
            n.saved_output = detail::SavedOutput();
            n.graph_freed = true;
            it->reset();           // every op using n has run: n dies now unless a tensor holds it
        }
    }
}

}  // namespace

void Tensor::backward(const Tensor& grad, bool retain_graph) const
{
    const TensorImpl& t = detail::refresh_view(impl("backward"));
    XGRAD_CHECK(t.node && t.node->requires_grad, "backward: this tensor does not require grad and has no history; ",
          "call requires_grad_() on the leaves you want gradients for");
    const Node& root = *t.node;
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
    auto order = topological_order(t.node);
    // the caller's gradient is lent to the walk, never written; one that is a strided view is copied
    TensorImpl* upstream = grad.defined() ? &Access::impl(grad) : nullptr;
    auto pass_seed = [&]<class T>(Tag<T>) {
        XGRAD_CHECK(upstream == nullptr || upstream->dtype() == root.dtype, "backward: the gradient is ",
                    dtype_name(upstream ? upstream->dtype() : root.dtype), " but the tensor is ", dtype_name(root.dtype),
                    "; they must match");
        GradOutput seed = upstream == nullptr ? GradOutput(ArrayOf<T>(xt::ones<T>(root.shape)))
                          : upstream->whole() ? GradOutput(&upstream->storage->array<T>(upstream->shape))
                                              : GradOutput(grad.values<T>().array());
        seed.pass_to(*this);
    };
    root.dtype == Dtype::Double ? pass_seed(Tag<double>{}) : pass_seed(Tag<float>{});
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
