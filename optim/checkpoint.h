// Training checkpoints: a model's parameters and its optimizer's state in one safetensors file,
// so that an interrupted run resumes bit-exactly.
#pragma once

#include "nn/checkpoint.h"
#include "optim/optimizer.h"

namespace xgrad::optim {

// Atomic, as nn::save. The optimizer's tensors are named "optimizer.state.<k>.<buffer>".
void save_checkpoint(const std::string& path, const nn::Module& model, const Optimizer& optimizer,
                     nn::Metadata metadata = {});

// Checks the whole file against the model and the optimizer, then loads both; returns the metadata.
nn::Metadata load_checkpoint(const std::string& path, nn::Module& model, Optimizer& optimizer);

}  // namespace xgrad::optim
