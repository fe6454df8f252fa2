// Module save/load in the safetensors format (io/safetensors.h). Tensor names are named_parameters()
// names, so files load in Python with safetensors or numpy.
//
//     nn::save(model, "model.safetensors");    // atomic: a crash leaves the previous file intact
//     nn::load(model, "model.safetensors");    // all or nothing: checks everything, then copies
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "nn/module.h"

namespace xgrad::nn {

void save(const Module& module, const std::string& path, const io::Metadata& metadata = {});

// Loads every parameter of `module` from `path`, which must hold exactly those names and shapes.
// Throws, with the module unchanged, on any problem; returns the file's metadata.
io::Metadata load(Module& module, const std::string& path);

// io::match_parameters on the module's named_parameters(): pairs each parameter with its values in
// `file`, checking names and shapes, changing nothing; names under `skip_prefix` are left out.
std::vector<std::pair<Tensor, const Tensor*>> match_parameters(const Module& module, const io::Safetensors& file,
                                                             const std::string& path, const std::string& skip_prefix = "");

}  // namespace xgrad::nn
