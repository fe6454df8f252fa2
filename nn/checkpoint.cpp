// Module save/load on top of io/safetensors.
#include "nn/checkpoint.h"

namespace xgrad::nn {

void save(const Module& module, const std::string& path, const io::Metadata& metadata)
{
    auto named = module.named_parameters();
    io::NamedTensors tensors;
    for (const auto& [name, p] : named) tensors.emplace_back(name, p);
    io::save_safetensors(path, tensors, metadata);
}

std::vector<std::pair<Tensor, const Tensor*>> match_parameters(const Module& module, const io::Safetensors& file,
                                                             const std::string& path, const std::string& skip_prefix)
{
    return io::match_parameters(module.named_parameters(), file, path, skip_prefix);
}

io::Metadata load(Module& module, const std::string& path)
{
    io::Safetensors file = io::load_safetensors(path);
    // Check every name and shape first, so that a failed load leaves the module as it was.
    NoGradGuard no_grad;
    for (auto& [parameter, values] : match_parameters(module, file, path)) parameter.copy_(*values);
    return file.metadata;
}

}  // namespace xgrad::nn
