// ZeroRedundancyOptimizer: ZeRO stage 1 (Rajbhandari et al., 2020, "ZeRO: Memory Optimizations Toward
// Training Trillion Parameter Models"), as torch.distributed.optim.ZeroRedundancyOptimizer. The
// parameters are partitioned among the ranks; each rank's inner optimizer (Adam, AdamW, ...) holds the
// state of its own partition only (for Adam, 2 floats per parameter: 1/N of them per rank), and steps
// only it; then the updated partitions are all-gathered, so every rank holds the whole model again.
//
//     distributed::ZeroRedundancyOptimizer zero(groups, [&](std::vector<optim::ParamGroup> mine) {
//         return std::make_unique<optim::AdamW>(std::move(mine), optim::AdamWOptions().lr(1e-3));
//     });
//     loss.backward(); ddp.synchronize(); zero.step();   // the same step as AdamW's, to the bit
//
// Partition: whole parameters, largest first, each to the rank holding the fewest elements so far (ties
// to the lower rank), as PyTorch's greedy partition; every rank computes the same one. The gradients
// are all-reduced whole by DistributedDataParallel (PyTorch's arrangement; llm.c's -z 1 reduce-scatters
// instead): the step is the inner optimizer's own, so ZeRO-1 equals plain DDP bitwise.
//
// Checkpoints: save_state / load_state read and write the inner optimizer's own format ("AdamW",
// optimizer.state.<k>.exp_avg with k over all parameters), so a checkpoint of any world size loads into
// a plain AdamW in one process, and back. save_state gathers the partitions on rank 0 (PyTorch's
// consolidate_state_dict(to=0)): every rank calls it; only rank 0's result is whole.
#pragma once

#include <functional>
#include <memory>

#include "optim/optimizer.h"

namespace xgrad::distributed {

class ZeroRedundancyOptimizer : public optim::Optimizer {
public:
    using Factory = std::function<std::unique_ptr<optim::Optimizer>(std::vector<optim::ParamGroup>)>;
    // `make` builds the inner optimizer over this rank's parameters, groups in the given order (a group
    // may be empty on a rank); its options, and each group's lr and weight_decay, are the real ones.
    ZeroRedundancyOptimizer(std::vector<optim::ParamGroup> groups, const Factory& make);

    void step() override;
    void save_state(io::NamedTensors& tensors, io::Metadata& metadata) const override;
    void load_state(const io::Safetensors& file, const std::string& path) override;

    int owner(std::size_t param) const { return owner_[param]; }   // param: index over all groups, in order
    // The bytes of optimizer state (moments) this rank holds: what ZeRO-1 divides by N.
    std::size_t local_state_bytes() const;

private:
    // `probe`: the inner optimizer over all parameters, built once to learn its name and groups' options
    ZeroRedundancyOptimizer(std::vector<optim::ParamGroup> groups, const Factory& make,
                            std::unique_ptr<optim::Optimizer> probe);

    std::unique_ptr<optim::Optimizer> inner_;    // null on a rank that owns no parameter
    std::vector<int> owner_;                     // per parameter (over all groups, in order)
    std::vector<std::size_t> local_index_;       // per owned parameter: its index in inner_'s order
    std::vector<Tensor> all_params_;
    mutable io::NamedTensors gathered_;   // rank 0's consolidated state, for save_state
};

}  // namespace xgrad::distributed
