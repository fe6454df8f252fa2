// nn::Module: parameters and submodules registered by name, as in libtorch's C++ frontend.
//
//     struct Model : nn::Module {
//         std::shared_ptr<nn::Embedding> tok_emb = register_module("tok_emb", std::make_shared<nn::Embedding>(65, 64));
//         std::shared_ptr<nn::Linear> lm_head = register_module("lm_head", std::make_shared<nn::Linear>(64, 65));
//     };
//     model.named_parameters();   // "tok_emb.weight", "lm_head.weight", "lm_head.bias", in that order
//
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace xgrad::nn {

class Module {
public:
    Module() = default;
    Module(const Module&) = delete;              // parameters are shared handles: copying would alias them
    Module& operator=(const Module&) = delete;
    virtual ~Module() = default;

    // Every parameter of this module and its submodules, recursively, in registration order.
    std::vector<Tensor> parameters() const;
    // dotted: "tok_emb.weight"; a tensor registered in two modules (weight tying) once, by its first name
    std::vector<std::pair<std::string, Tensor>> named_parameters() const;
    const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
    std::size_t num_parameters() const;          // total number of elements

    void zero_grad(bool set_to_none = true);     // every parameter, as torch.nn.Module.zero_grad
    void train(bool on = true);                  // recursively; layers may behave differently in eval
    void eval() { train(false); }
    bool is_training() const { return training_; }

    // The name this module was registered under in its parent ("tok_emb"), or "" for a root module.
    const std::string& name() const { return name_; }
    // One line about this module alone: "Embedding(65, 64)". Subclasses say what they are.
    virtual std::string describe() const { return "Module"; }

    // ---- forward hooks, as torch.nn.Module.register_forward_hook ---------------------------------------
    // fn(module, inputs, output) runs after this module's forward, in registration order; a defined
    // return replaces the output. Inputs are the forward's tensor arguments (an Embedding's ids are not
    // tensors: none). The handle removes it.
    using ForwardHook = std::function<Tensor(const Module& module, const std::vector<Tensor>& inputs, const Tensor& output)>;
    HookHandle register_forward_hook(ForwardHook fn);
    template <class F>
        requires std::is_void_v<std::invoke_result_t<F&, const Module&, const std::vector<Tensor>&, const Tensor&>>
    HookHandle register_forward_hook(F fn)
    {
        return register_forward_hook(ForwardHook([fn = std::move(fn)](const Module& m, const std::vector<Tensor>& in,
                                                                      const Tensor& out) mutable {
            fn(m, in, out);
            return Tensor();
        }));
    }

protected:
    // Every forward ends with `return forward_hooks(output, inputs...)`: a null test when none is registered.
    template <class... Inputs>
    Tensor forward_hooks(Tensor output, const Inputs&... inputs) const
    {
        if (!forward_hooks_ || forward_hooks_->hooks.empty()) return output;
        return run_forward_hooks(std::move(output), {inputs...});
    }

    Tensor& register_parameter(std::string name, Tensor tensor, bool requires_grad = true);
    template <class M>
    std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module)
    {
        add_child(std::move(name), module);
        return module;
    }

private:
    void add_child(std::string name, std::shared_ptr<Module> module);
    void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;

    Tensor run_forward_hooks(Tensor output, const std::vector<Tensor>& inputs) const;

    struct ForwardHooks {
        std::uint64_t next_id = 0;
        std::vector<std::pair<std::uint64_t, ForwardHook>> hooks;
    };
    std::shared_ptr<ForwardHooks> forward_hooks_;   // shared with the handles, which may outlive the module
    std::vector<std::pair<std::string, Tensor>> parameters_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    std::string name_;
    bool training_ = true;
};

// A tree of the modules, each with its parameter count (its submodules included):
//   Model
//     (tok_emb): Embedding(65, 64)                 4,160
//     ...
//   total parameters: 12,545
std::ostream& operator<<(std::ostream& out, const Module& module);

}  // namespace xgrad::nn
