// Tensor hooks, as torch.Tensor's: register_hook (see, or replace, the gradient flowing into a tensor),
// register_post_accumulate_grad_hook (a leaf's gradient for this backward is complete), and
// retain_grad (a non-leaf keeps its gradient, summed over backward calls). The walk in
// core/autograd.cpp calls in here only for nodes that have hooks, so a graph without any pays one null
// test per node.
//
// When each hook runs, for one backward() call:
//   non-leaf   its grad hooks, in registration order, on the summed upstream; then its op's backward
//   leaf       once every op using it has run: its grad hooks on the sum of this call's contributions,
//              that sum (or the hooks' replacement) added to grad(), then its post-accumulate hooks
#include <algorithm>

#include "core/node.h"

namespace xgrad {

using detail::Access;
using detail::Hooks;
using detail::Node;
using detail::TensorImpl;

void HookHandle::remove()
{
    if (remove_) std::exchange(remove_, nullptr)();
}

namespace {

const std::shared_ptr<Node>& node_of(const Tensor& t, const char* what)
{
    XGRAD_CHECK(t.defined(), what, ": called on an undefined Tensor");
    XGRAD_CHECK(t.requires_grad(), what, ": cannot register a hook on a tensor that does not require grad ",
                "(call requires_grad_() on the leaf first)");
    return detail::refresh_view(Access::impl(t)).node;
}

Hooks& hooks_of(Node& n)
{
    if (!n.hooks) n.hooks = std::make_unique<Hooks>();
    return *n.hooks;
}

// A handle that erases entry `id` of one of the node's hook lists, if the node is still alive.
template <class List>
HookHandle handle_for(const std::shared_ptr<Node>& n, List Hooks::*list, std::uint64_t id)
{
    std::weak_ptr<Node> node = n;
    return HookHandle([node, list, id] {
        const std::shared_ptr<Node> n = node.lock();
        if (!n || !n->hooks) return;
        auto& hooks = (*n->hooks).*list;
        std::erase_if(hooks, [id](const auto& entry) { return entry.first == id; });
    });
}

// Runs the grad hooks on `grad`: each sees the previous one's result; a defined return replaces it.
Tensor apply_grad_hooks(const Node& n, Tensor grad)
{
    NoGradGuard no_grad;
    const auto hooks = n.hooks->grad;   // a copy: a hook may remove itself while running
    for (const auto& [id, hook] : hooks) {
        Tensor replaced = hook(grad);
        if (!replaced.defined()) continue;
        XGRAD_CHECK(replaced.shape() == grad.shape(), "register_hook: a hook on ",
                    n.is_leaf() ? "a leaf" : std::string("the output of '") + n.op + "'", " returned a gradient of shape ",
                    shape_str(replaced.shape()), "; expected the gradient's shape ", shape_str(grad.shape()));
        grad = std::move(replaced);
    }
    return grad;
}

// Adds `incoming` (this backward's contributions to a leaf) to `earlier` (what the leaf held before).
void add_slot(detail::GradSlot& earlier, detail::GradSlot& incoming, const Array::shape_type& shape)
{
    if (earlier.empty()) {
        earlier = std::move(incoming);
    } else if (const Tensor* dense = incoming.dense()) {
        earlier.add(*dense);
    } else if (RowSparse* sparse = incoming.sparse()) {
        earlier.add(*sparse, shape);
    }
    incoming.clear();
}

}  // namespace

HookHandle detail::register_node_hook(const std::shared_ptr<Node>& n, GradHook fn)
{
    XGRAD_CHECK(fn != nullptr, "register_hook: the hook is an empty function");
    Hooks& hooks = hooks_of(*n);
    const std::uint64_t id = hooks.next_id++;
    hooks.grad.emplace_back(id, std::move(fn));
    return handle_for(n, &Hooks::grad, id);
}

HookHandle Tensor::register_hook(GradHook fn) const
{
    return detail::register_node_hook(node_of(*this, "register_hook"), std::move(fn));
}

HookHandle Tensor::register_post_accumulate_grad_hook(PostAccumulateHook fn) const
{
    XGRAD_CHECK(fn != nullptr, "register_post_accumulate_grad_hook: the hook is an empty function");
    XGRAD_CHECK(defined() && is_leaf(), "register_post_accumulate_grad_hook: only a leaf accumulates a gradient; ",
                "this tensor is the output of '", defined() ? op_name() : "?", "' (use register_hook)");
    const std::shared_ptr<Node>& n = node_of(*this, "register_post_accumulate_grad_hook");
    Hooks& hooks = hooks_of(*n);
    const std::uint64_t id = hooks.next_id++;
    hooks.post_accumulate.emplace_back(id, std::move(fn));
    return handle_for(n, &Hooks::post_accumulate, id);
}

void Tensor::retain_grad() const
{
    XGRAD_CHECK(defined(), "retain_grad: called on an undefined Tensor");
    XGRAD_CHECK(requires_grad(), "retain_grad: can't retain the gradient of a tensor that does not require grad");
    if (is_leaf()) return;   // a leaf keeps its gradient anyway
    Node& n = *Access::node(*this);
    if (!n.hooks) n.hooks = std::make_unique<Hooks>();
    n.hooks->retains = true;
}

bool Tensor::retains_grad() const
{
    return defined() && !is_leaf() && Access::node(*this)->hooks && Access::node(*this)->hooks->retains;
}

namespace detail {

void hooks_before_backward(Node& n)
{
    Hooks& h = *n.hooks;
    h.writes_at_start = n.grad_writes;
    if (n.is_leaf() && !h.grad.empty()) {
        h.earlier = std::move(n.grad);
        n.grad.clear();
    }
}

namespace {

template <class T>
GradOutput run_grad_hooks_as(Node& n, GradOutput& grad_out)
{
    Tensor grad = apply_grad_hooks(n, Tensor(grad_out.take<T>()));
    if (n.hooks->retains) n.hooks->retained.add(grad.values<T>());   // a copy, after every hook: torch's runs last
    // The walk's buffer becomes the op's to overwrite, unless a hook kept a handle to it.
    const std::shared_ptr<TensorImpl>& t = Access::ptr(grad);
    const bool unique = t.use_count() == 1 && t->storage.use_count() == 1 && t->whole() && grad.dtype() == dtype_of<T>();
    if (unique) return GradOutput(t->storage->donate<T>(t->shape));
    return GradOutput(grad.to(dtype_of<T>()).template values<T>().array());
}

}  // namespace

GradOutput run_grad_hooks(Node& n, GradOutput& grad_out)
{
    if (grad_out.dtype() == Dtype::Double) return run_grad_hooks_as<double>(n, grad_out);
    return run_grad_hooks_as<float>(n, grad_out);
}

void run_leaf_hooks(Node& leaf, const Tensor& handle)
{
    Hooks& h = *leaf.hooks;
    const bool reached = leaf.grad_writes != h.writes_at_start;
    if (!h.grad.empty()) {
        GradSlot incoming = std::move(leaf.grad);
        leaf.grad = std::move(h.earlier);
        h.earlier.clear();
        if (reached) {
            const Tensor* dense = incoming.dense();
            Tensor grad = dense ? *dense : Tensor(incoming.sparse()->to_dense(leaf.shape[0]));
            Tensor result = apply_grad_hooks(leaf, grad);
            if (result.is_same(grad)) {
                add_slot(leaf.grad, incoming, leaf.shape);   // unchanged: kept sparse if it was
            } else if (leaf.grad.empty()) {
                leaf.grad.set(std::move(result));
            } else {
                leaf.grad.add(result);
            }
        }
    }
    if (!reached) return;
    NoGradGuard no_grad;
    const auto hooks = h.post_accumulate;   // a copy: a hook may remove itself while running
    for (const auto& [id, hook] : hooks) hook(handle);
}

void hooks_after_failure(Node& n)
{
    Hooks& h = *n.hooks;
    if (h.earlier.empty()) return;
    add_slot(h.earlier, n.grad, n.shape);
    n.grad = std::move(h.earlier);
    h.earlier.clear();
}

}  // namespace detail

}  // namespace xgrad
