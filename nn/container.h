// Containers of modules, named "0", "1", ... as PyTorch names them (so a block's parameters are
// "h.0.attn.c_attn.weight"):
//     nn::ModuleList    torch.nn.ModuleList: modules of any kind, looked up by index
//     nn::Sequential    torch.nn.Sequential: modules whose forward maps a tensor to a tensor, run in turn
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/check.h"
#include "nn/module.h"

namespace xgrad::nn {

class ModuleList : public Module {
public:
    template <class M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> module)
    {
        modules_.push_back(module);
        return register_module(std::to_string(modules_.size() - 1), std::move(module));
    }
    std::size_t size() const { return modules_.size(); }

    // The module at `index`, as the type it was added as: list.at<TransformerBlock>(0).
    template <class M = Module>
    std::shared_ptr<M> at(std::size_t index) const
    {
        XGRAD_CHECK(index < modules_.size(), "nn::ModuleList: index ", index, " is out of range for ", modules_.size(),
                    " modules");
        auto module = std::dynamic_pointer_cast<M>(modules_[index]);
        XGRAD_CHECK(module != nullptr, "nn::ModuleList: module ", index, " is a ", modules_[index]->describe(),
                    ", not the type asked for");
        return module;
    }
    std::string describe() const override { return "ModuleList"; }

private:
    std::vector<std::shared_ptr<Module>> modules_;
};

class Sequential : public Module {
public:
    Sequential() = default;
    template <class... M>
    explicit Sequential(std::shared_ptr<M>... modules)
    {
        (push_back(std::move(modules)), ...);
    }

    template <class M>
    Sequential& push_back(std::shared_ptr<M> module)
    {
        steps_.push_back([module](const Tensor& x) { return module->forward(x); });
        register_module(std::to_string(steps_.size() - 1), std::move(module));
        return *this;
    }
    std::size_t size() const { return steps_.size(); }

    // x -> the last module's output, each module's output the next one's input
    Tensor forward(const Tensor& x) const
    {
        Tensor h = x;
        for (const auto& step : steps_) h = step(h);
        return forward_hooks(std::move(h), x);
    }
    std::string describe() const override { return "Sequential"; }

private:
    std::vector<std::function<Tensor(const Tensor&)>> steps_;
};

}  // namespace xgrad::nn
