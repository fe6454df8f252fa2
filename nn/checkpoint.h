// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes: N, the header's length, little-endian
//   N bytes: a JSON object {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//            "__metadata__": {"key": "value"}}
//   the raw little-endian data, each tensor at [begin, end) of this buffer
// Tensor names are named_parameters() names, so files load in Python with safetensors or numpy.
//
//     nn::save(model, "model.safetensors");    // atomic: a crash leaves the previous file intact
//     nn::load(model, "model.safetensors");    // all or nothing: checks everything, then copies
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"

namespace xgrad::nn {

using Metadata = std::map<std::string, std::string>;

void save(const Module& module, const std::string& path, const Metadata& metadata = {});

// Loads every parameter of `module` from `path`, which must hold exactly those names and shapes.
// Throws, with the module unchanged, on any problem; returns the file's metadata.
Metadata load(Module& module, const std::string& path);

// ---- the file format itself (float32 tensors only) -------------------------------------------------------
struct Safetensors {
    std::vector<std::pair<std::string, Array>> tensors;   // in file order
    Metadata metadata;
};

// Writes to a temporary file in the same folder, syncs it, then renames it over `path`.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, const Array*>>& tensors,
                      const Metadata& metadata = {});

// Reads and validates the whole file: header length, JSON, dtypes, shapes, and offsets (within the
// data, sized to the shape, not overlapping). Throws xgrad::Error naming the file and the problem.
Safetensors load_safetensors(const std::string& path);
Safetensors parse_safetensors(const std::vector<char>& bytes, const std::string& path);   // the same, from memory

// Pairs each parameter of `module` with its values in `file`, checking that the names and shapes match
// exactly, without changing anything. Tensors whose names start with `skip_prefix` belong to someone
// else (an optimizer's state in the same file) and are left out of the check.
std::vector<std::pair<Tensor, const Array*>> match_parameters(const Module& module, const Safetensors& file,
                                                             const std::string& path, const std::string& skip_prefix = "");

}  // namespace xgrad::nn
