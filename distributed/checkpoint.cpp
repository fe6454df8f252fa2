// save_checkpoint by rank 0; load_checkpoint from rank 0's bytes.
#include "distributed/checkpoint.h"

#include <fstream>
#include <iterator>

#include "core/check.h"
#include "distributed/distributed.h"

namespace xgrad::distributed {

void save_checkpoint(const std::string& path, const io::NamedParameters& model, const optim::Optimizer& optimizer,
                     io::Metadata metadata)
{
    io::NamedTensors tensors;
    for (const auto& [name, p] : model) tensors.emplace_back(name, p);
    optimizer.save_state(tensors, metadata);   // a collective for a sharded optimizer
    if (rank() == 0) io::save_safetensors(path, tensors, metadata);
}

io::Safetensors read_on_rank0(const std::string& path)
{
    // The reading error travels as a flag, so that every rank throws rather than waits
    std::vector<char> bytes;
    std::string error;
    if (rank() == 0) {
        try {
            io::Safetensors checked = io::load_safetensors(path);   // the full validation, with its messages
            std::ifstream in(path, std::ios::binary);
            bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        } catch (const std::exception& e) {
            error = e.what();
        }
    }
    std::vector<char> message(error.begin(), error.end());
    broadcast(message, 0);
    XGRAD_CHECK(message.empty(), rank_name(), ": rank 0 could not read the checkpoint: ", std::string(message.begin(), message.end()));
    broadcast(bytes, 0);
    return io::parse_safetensors(bytes, path);
}

io::Metadata load_checkpoint(const std::string& path, const io::NamedParameters& model, optim::Optimizer& optimizer)
{
    io::Safetensors file = read_on_rank0(path);
    auto plan = io::match_parameters(model, file, path, "optimizer.");   // checks, changes nothing
    optimizer.load_state(file, path);                                    // checks, then replaces its state
    NoGradGuard no_grad;
    for (auto& [parameter, values] : plan) parameter.copy_(Tensor(*values));
    return file.metadata;
}

}  // namespace xgrad::distributed
