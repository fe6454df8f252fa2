// Training checkpoints of a data-parallel run: one file, written by rank 0 alone (atomically, as
// optim::save_checkpoint), in the single-process format, so one process or any world size reads it.
//
//     distributed::save_checkpoint("out/checkpoint.safetensors", model.named_parameters(), adamw, {{"step", "100"}});
//     distributed::load_checkpoint("out/checkpoint.safetensors", model.named_parameters(), adamw);
//
// Both are collectives: every rank calls them. With ZeroRedundancyOptimizer the state is gathered to
// rank 0 first. Loading, rank 0 reads the file and broadcasts its bytes, so the other ranks (other
// machines) need no copy of it; a bad file throws on every rank, with rank 0's reason.
#pragma once

#include <string>

#include "io/safetensors.h"
#include "optim/optimizer.h"

namespace xgrad::distributed {

void save_checkpoint(const std::string& path, const io::NamedParameters& model, const optim::Optimizer& optimizer,
                     io::Metadata metadata = {});
// Returns the metadata, on every rank.
io::Metadata load_checkpoint(const std::string& path, const io::NamedParameters& model, optim::Optimizer& optimizer);
// The file's bytes, read by rank 0 and broadcast, parsed and validated on every rank.
io::Safetensors read_on_rank0(const std::string& path);

}  // namespace xgrad::distributed
