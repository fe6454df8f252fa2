// ZeroRedundancyOptimizer: the partition, the sharded step and its all-gather, and the state gathered
// to rank 0 in the inner optimizer's own format.
#include "distributed/zero.h"

#include <mpi.h>

#include <algorithm>
#include <numeric>

#include "core/check.h"
#include "distributed/distributed.h"

namespace xgrad::distributed {

namespace {

// The groups with each group's lr and weight_decay as the inner optimizer resolved them.
std::vector<optim::ParamGroup> resolved(std::vector<optim::ParamGroup> groups, const optim::Optimizer& probe)
{
    for (std::size_t g = 0; g < groups.size(); ++g) {
        groups[g].options = optim::GroupOptions().lr(probe.param_groups()[g].lr).weight_decay(probe.param_groups()[g].weight_decay);
    }
    return groups;
}

// "optimizer.state.<k>.<rest>" -> k and rest; false for other names.
bool state_key(const std::string& name, std::size_t& k, std::string& rest)
{
    const std::string prefix = "optimizer.state.";
    if (name.rfind(prefix, 0) != 0) return false;
    const auto dot = name.find('.', prefix.size());
    if (dot == std::string::npos) return false;
    k = std::stoull(name.substr(prefix.size(), dot - prefix.size()));
    rest = name.substr(dot);
    return true;
}

std::string state_name(std::size_t k, const std::string& rest) { return "optimizer.state." + std::to_string(k) + rest; }

}  // namespace

ZeroRedundancyOptimizer::ZeroRedundancyOptimizer(std::vector<optim::ParamGroup> groups, const Factory& make)
    : ZeroRedundancyOptimizer(groups, make, make(groups))
{
}

ZeroRedundancyOptimizer::ZeroRedundancyOptimizer(std::vector<optim::ParamGroup> groups, const Factory& make,
                                                 std::unique_ptr<optim::Optimizer> probe)
    : Optimizer(probe->name(), resolved(groups, *probe), probe->param_groups()[0].lr, 0.0, {})
{
    XGRAD_CHECK(is_initialized(), "ZeroRedundancyOptimizer: distributed::init() has not been called");
    const auto N = static_cast<std::size_t>(world_size());
    for (const auto& group : param_groups()) all_params_.insert(all_params_.end(), group.params.begin(), group.params.end());
    // Greedy: largest first (stable, so equal sizes keep their order), to the least-loaded rank
    std::vector<std::size_t> by_size(all_params_.size());
    std::iota(by_size.begin(), by_size.end(), 0);
    std::stable_sort(by_size.begin(), by_size.end(),
                     [&](std::size_t a, std::size_t b) { return all_params_[a].numel() > all_params_[b].numel(); });
    std::vector<std::size_t> load(N, 0);
    owner_.assign(all_params_.size(), 0);
    for (std::size_t k : by_size) {
        const auto r = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
        owner_[k] = static_cast<int>(r);
        load[r] += all_params_[k].numel();
    }
    // This rank's parameters, in the groups' order, for its inner optimizer
    std::vector<optim::ParamGroup> mine = resolved(groups, *probe);
    std::size_t k = 0, owned = 0;
    local_index_.assign(all_params_.size(), 0);
    for (auto& group : mine) {
        std::vector<Tensor> kept;
        for (const Tensor& p : group.params) {
            if (owner_[k] == rank()) local_index_[k] = owned++, kept.push_back(p);
            ++k;
        }
        group.params = std::move(kept);
    }
    if (owned > 0) inner_ = make(std::move(mine));
}

std::size_t ZeroRedundancyOptimizer::local_state_bytes() const
{
    if (!inner_) return 0;
    io::NamedTensors tensors;
    io::Metadata metadata;
    inner_->save_state(tensors, metadata);
    std::size_t bytes = 0;
    for (const auto& [name, a] : tensors) bytes += a.numel() * a.element_size();
    return bytes;
}

void ZeroRedundancyOptimizer::step()
{
    if (inner_) {
        for (std::size_t g = 0; g < param_groups().size(); ++g) {   // what a schedule set on this optimizer
            inner_->param_groups()[g].lr = param_groups()[g].lr;
            inner_->param_groups()[g].weight_decay = param_groups()[g].weight_decay;
        }
        inner_->step();
    }
    // Every rank's updated parameters, rank by rank, each in the groups' order: one MPI_Allgatherv
    const auto N = static_cast<std::size_t>(world_size());
    std::vector<int> counts(N, 0), displs(N, 0);
    for (std::size_t k = 0; k < all_params_.size(); ++k) counts[static_cast<std::size_t>(owner_[k])] += static_cast<int>(all_params_[k].numel());
    for (std::size_t r = 1; r < N; ++r) displs[r] = displs[r - 1] + counts[r - 1];
    std::vector<float> all(static_cast<std::size_t>(displs[N - 1] + counts[N - 1]));
    std::vector<std::size_t> at(displs.begin(), displs.end());
    std::vector<std::size_t> offset(all_params_.size());
    for (std::size_t k = 0; k < all_params_.size(); ++k) {
        const auto r = static_cast<std::size_t>(owner_[k]);
        offset[k] = at[r];
        at[r] += all_params_[k].numel();
        if (owner_[k] == rank()) {
            const Values mine = all_params_[k].values();
            std::copy(mine.begin(), mine.end(), all.begin() + static_cast<std::ptrdiff_t>(offset[k]));
        }
    }
    const auto me = static_cast<std::size_t>(rank());
    std::vector<float> mine(all.begin() + displs[me], all.begin() + displs[me] + counts[me]);
    check_mpi(MPI_Allgatherv(mine.data(), counts[me], MPI_FLOAT, all.data(), counts.data(), displs.data(), MPI_FLOAT, MPI_COMM_WORLD),
              "ZeroRedundancyOptimizer: gathering the updated parameters (MPI_Allgatherv)");
    NoGradGuard no_grad;
    for (std::size_t k = 0; k < all_params_.size(); ++k) {
        if (owner_[k] == rank()) continue;
        std::copy(all.begin() + static_cast<std::ptrdiff_t>(offset[k]),
                  all.begin() + static_cast<std::ptrdiff_t>(offset[k] + all_params_[k].numel()), all_params_[k].mutable_data_ptr());
    }
}

void ZeroRedundancyOptimizer::save_state(io::NamedTensors& tensors,
                                         io::Metadata& metadata) const
{
    // Each rank's inner state as safetensors bytes, gathered on rank 0
    io::NamedTensors local_tensors;
    io::Metadata local_metadata;
    if (inner_) inner_->save_state(local_tensors, local_metadata);
    const std::string bytes = io::safetensors_bytes(local_tensors, local_metadata, "ZeroRedundancyOptimizer state");
    const auto sizes = all_gather(static_cast<std::int64_t>(bytes.size()));
    std::vector<int> counts, displs;
    int total = 0;
    for (auto s : sizes) counts.push_back(static_cast<int>(s)), displs.push_back(total), total += static_cast<int>(s);
    std::vector<char> all(rank() == 0 ? static_cast<std::size_t>(total) : 0);
    check_mpi(MPI_Gatherv(bytes.data(), static_cast<int>(bytes.size()), MPI_CHAR, all.data(), counts.data(), displs.data(),
                          MPI_CHAR, 0, MPI_COMM_WORLD),
              "ZeroRedundancyOptimizer: gathering the optimizer state on rank 0 (MPI_Gatherv)");
    if (rank() != 0) return;

    // Rank r's local index j is the j-th parameter it owns, in the groups' order
    std::vector<std::vector<std::size_t>> global_of(static_cast<std::size_t>(world_size()));
    for (std::size_t k = 0; k < all_params_.size(); ++k) global_of[static_cast<std::size_t>(owner_[k])].push_back(k);
    gathered_.clear();
    io::Metadata state_metadata;
    for (std::size_t r = 0; r < global_of.size(); ++r) {
        if (global_of[r].empty()) continue;
        const std::vector<char> part(all.begin() + displs[r], all.begin() + displs[r] + counts[r]);
        io::Safetensors file = io::parse_safetensors(part, "the state of " + std::to_string(r));
        std::size_t j = 0;
        std::string rest;
        for (auto& [name, values] : file.tensors) {
            if (state_key(name, j, rest)) gathered_.emplace_back(state_name(global_of[r].at(j), rest), std::move(values));
        }
        for (const auto& [key, value] : file.metadata) {
            if (state_key(key, j, rest)) state_metadata[state_name(global_of[r].at(j), rest)] = value;
        }
    }
    // In the plain optimizer's order: parameter by parameter, slots as each rank wrote them
    std::stable_sort(gathered_.begin(), gathered_.end(), [](const auto& a, const auto& b) {
        std::size_t ka = 0, kb = 0;
        std::string ra, rb;
        state_key(a.first, ka, ra), state_key(b.first, kb, rb);
        return ka < kb;
    });
    Optimizer::save_state(tensors, metadata);   // the name and the groups' lrs (its own state is empty)
    for (const auto& [key, value] : state_metadata) metadata[key] = value;
    for (const auto& [name, values] : gathered_) tensors.emplace_back(name, values);
}

void ZeroRedundancyOptimizer::load_state(const io::Safetensors& file, const std::string& path)
{
    Optimizer::load_state(file, path);   // checks the name, the counts, and takes the groups' lrs
    if (!inner_) return;
    io::Safetensors mine;
    for (const auto& [key, value] : file.metadata) {
        std::size_t k = 0;
        std::string rest;
        if (!state_key(key, k, rest)) mine.metadata[key] = value;
        else if (k < owner_.size() && owner_[k] == rank()) mine.metadata[state_name(local_index_[k], rest)] = value;
    }
    for (const auto& [name, values] : file.tensors) {
        std::size_t k = 0;
        std::string rest;
        if (state_key(name, k, rest) && k < owner_.size() && owner_[k] == rank()) {
            mine.tensors.emplace_back(state_name(local_index_[k], rest), values);
        }
    }
    inner_->load_state(mine, path);
    for (std::size_t g = 0; g < param_groups().size(); ++g) inner_->param_groups()[g].lr = param_groups()[g].lr;
}

}  // namespace xgrad::distributed
