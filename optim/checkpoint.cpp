// save_checkpoint and load_checkpoint.
#include "optim/checkpoint.h"

namespace xgrad::optim {

void save_checkpoint(const std::string& path, const io::NamedParameters& model, const Optimizer& optimizer,
                     io::Metadata metadata)
{
    io::NamedTensors tensors;
    for (const auto& [name, p] : model) tensors.emplace_back(name, p);
    optimizer.save_state(tensors, metadata);
    io::save_safetensors(path, tensors, metadata);
}

io::Metadata load_checkpoint(const std::string& path, const io::NamedParameters& model, Optimizer& optimizer)
{
    io::Safetensors file = io::load_safetensors(path);
    auto plan = io::match_parameters(model, file, path, "optimizer.");   // checks, changes nothing
    optimizer.load_state(file, path);                                    // checks, then replaces its state
    NoGradGuard no_grad;
    for (auto& [parameter, values] : plan) parameter.copy_(*values);
    return file.metadata;
}

}  // namespace xgrad::optim
