// Module registration, recursive parameter walks, and the printed summary.
#include "nn/module.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "core/check.h"

namespace xgrad::nn {

namespace {

void check_new_name(const std::string& name, const std::vector<std::pair<std::string, Tensor>>& params,
                    const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children)
{
    XGRAD_CHECK(!name.empty() && name.find('.') == std::string::npos, "Module: invalid name '", name,
          "': names must be non-empty and contain no '.'");
    for (const auto& [n, _] : params) XGRAD_CHECK(n != name, "Module: a parameter named '", name, "' is already registered");
    for (const auto& [n, _] : children) XGRAD_CHECK(n != name, "Module: a submodule named '", name, "' is already registered");
}

std::string with_commas(std::size_t n)
{
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

void print_tree(std::ostream& out, const Module& m, const std::string& label, int depth)
{
    std::ostringstream line;
    line << std::string(2 * static_cast<std::size_t>(depth), ' ') << label << m.describe();
    out << std::left << std::setw(56) << line.str() << std::right << std::setw(12) << with_commas(m.num_parameters()) << "\n";
    for (const auto& [name, child] : m.children()) print_tree(out, *child, "(" + name + "): ", depth + 1);
}

}  // namespace

Tensor& Module::register_parameter(std::string name, Tensor tensor, bool requires_grad)
{
    XGRAD_CHECK(tensor.defined(), "Module: register_parameter('", name, "') got an undefined tensor");
    check_new_name(name, parameters_, children_);
    tensor.requires_grad_(requires_grad);
    parameters_.emplace_back(std::move(name), std::move(tensor));
    return parameters_.back().second;
}

HookHandle Module::register_forward_hook(ForwardHook fn)
{
    XGRAD_CHECK(fn != nullptr, "register_forward_hook: the hook is an empty function");
    if (!forward_hooks_) forward_hooks_ = std::make_shared<ForwardHooks>();
    const std::uint64_t id = forward_hooks_->next_id++;
    forward_hooks_->hooks.emplace_back(id, std::move(fn));
    std::weak_ptr<ForwardHooks> list = forward_hooks_;
    return HookHandle([list, id] {
        if (auto hooks = list.lock()) std::erase_if(hooks->hooks, [id](const auto& entry) { return entry.first == id; });
    });
}

Tensor Module::run_forward_hooks(Tensor output, const std::vector<Tensor>& inputs) const
{
    const auto hooks = forward_hooks_->hooks;   // a copy: a hook may remove itself while running
    for (const auto& [id, hook] : hooks) {
        Tensor replaced = hook(*this, inputs, output);
        if (replaced.defined()) output = std::move(replaced);
    }
    return output;
}

void Module::add_child(std::string name, std::shared_ptr<Module> module)
{
    XGRAD_CHECK(module != nullptr, "Module: register_module('", name, "') got a null module");
    check_new_name(name, parameters_, children_);
    module->name_ = name;
    children_.emplace_back(std::move(name), std::move(module));
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const
{
    for (const auto& [name, p] : parameters_) out.emplace_back(prefix + name, p);
    for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const
{
    std::vector<std::pair<std::string, Tensor>> all, out;
    collect("", all);
    for (auto& named : all) {   // a tensor shared by two modules (weight tying) once, by its first name
        const Tensor& p = named.second;
        const bool seen = std::any_of(out.begin(), out.end(), [&](const auto& kept) { return kept.second.is_same(p); });
        if (!seen) out.push_back(std::move(named));
    }
    return out;
}

std::vector<Tensor> Module::parameters() const
{
    std::vector<Tensor> out;
    for (auto& [name, p] : named_parameters()) out.push_back(p);
    return out;
}

std::size_t Module::num_parameters() const
{
    std::size_t n = 0;
    for (const auto& p : parameters()) n += p.numel();
    return n;
}

void Module::zero_grad(bool set_to_none)
{
    for (const auto& p : parameters()) p.zero_grad(set_to_none);
}

void Module::train(bool on)
{
    training_ = on;
    for (auto& [name, child] : children_) child->train(on);
}

std::ostream& operator<<(std::ostream& out, const Module& module)
{
    print_tree(out, module, "", 0);
    return out << "total parameters: " << with_commas(module.num_parameters()) << "\n";
}

}  // namespace xgrad::nn
