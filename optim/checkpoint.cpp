// save_checkpoint and load_checkpoint.
#include "optim/checkpoint.h"

namespace xgrad::optim {

void save_checkpoint(const std::string& path, const nn::Module& model, const Optimizer& optimizer, nn::Metadata metadata)
{
    std::vector<std::pair<std::string, const Array*>> tensors;
    const auto named = model.named_parameters();
    for (const auto& [name, p] : named) tensors.emplace_back(name, &p.data());
    optimizer.save_state(tensors, metadata);
    nn::save_safetensors(path, tensors, metadata);
}

nn::Metadata load_checkpoint(const std::string& path, nn::Module& model, Optimizer& optimizer)
{
    nn::Safetensors file = nn::load_safetensors(path);
    auto plan = nn::match_parameters(model, file, path, "optimizer.");   // checks, changes nothing
    optimizer.load_state(file, path);                                    // checks, then replaces its state
    for (auto& [parameter, values] : plan) parameter.data() = *values;
    return file.metadata;
}

}  // namespace xgrad::optim
