// Training checkpoints: a model's parameters and its optimizer's state in one safetensors file,
// so that an interrupted run resumes bit-exactly. The model is given by its named parameters, so
// optim needs no nn: pass model.named_parameters().
//
//     optim::save_checkpoint("run.safetensors", model.named_parameters(), adam, {{"step", "100"}});
//     optim::load_checkpoint("run.safetensors", model.named_parameters(), adam);
#pragma once

#include <string>

#include "io/safetensors.h"
#include "optim/optimizer.h"

namespace xgrad::optim {

// Atomic, as nn::save. The optimizer's tensors are named "optimizer.state.<k>.<buffer>".
void save_checkpoint(const std::string& path, const io::NamedParameters& model, const Optimizer& optimizer,
                     io::Metadata metadata = {});

// Checks the whole file against the model's parameters and the optimizer, then loads both (the
// parameters' values are written through their handles); returns the metadata.
io::Metadata load_checkpoint(const std::string& path, const io::NamedParameters& model, Optimizer& optimizer);

}  // namespace xgrad::optim
