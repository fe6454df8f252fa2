// The safetensors format (https://github.com/huggingface/safetensors), tensors of every xgrad dtype:
//   8 bytes: N, the header's length, little-endian
//   N bytes: a JSON object {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//            "__metadata__": {"key": "value"}}
//   the raw little-endian data, each tensor at [begin, end) of this buffer
// Its dtypes F32 F64 F16 BF16 I64 I32 I16 I8 U8 BOOL are xgrad's ten. The layer under nn (module
// save/load) and optim (training checkpoints); it knows tensors, not modules.
//
//     io::save_safetensors("state.safetensors", {{"w", w}}, {{"step", "42"}});   // atomic
//     io::Safetensors file = io::load_safetensors("state.safetensors");        // validated
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace xgrad::io {

using Metadata = std::map<std::string, std::string>;
// What is saved, and what a file holds: tensors by name, in order (each written as its values, in its dtype)
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct Safetensors {
    NamedTensors tensors;   // in the order of their names, each of its file's dtype
    Metadata metadata;
};

// Writes to a temporary file in the same folder, syncs it, then renames it over `path` (io::AtomicFile).
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const Metadata& metadata = {});

// The bytes save_safetensors would write, for a caller that commits them together with other files;
// `path` only names the file in messages.
std::string safetensors_bytes(const NamedTensors& tensors, const Metadata& metadata,
                              const std::string& path);

// Reads and validates the whole file: header length, JSON, dtypes, shapes, and offsets (within the
// data, sized to the shape, not overlapping). Throws xgrad::Error naming the file and the problem.
Safetensors load_safetensors(const std::string& path);
Safetensors parse_safetensors(const std::vector<char>& bytes, const std::string& path);   // the same, from memory

// A model's parameters by name, as nn::Module::named_parameters() returns them: "tok_emb.weight", ...
using NamedParameters = std::vector<std::pair<std::string, Tensor>>;

// Pairs each of `named` with its values in `file`, checking that the names and shapes match
// exactly, without changing anything (a dtype that differs is converted by the copy, as torch's
// load_state_dict does); the errors speak of "the module", whose parameters these are. Tensors whose
// names start with `skip_prefix` belong to someone else (an optimizer's state in the same file) and
// are left out of the check.
std::vector<std::pair<Tensor, const Tensor*>> match_parameters(const NamedParameters& named, const Safetensors& file,
                                                             const std::string& path, const std::string& skip_prefix = "");

}  // namespace xgrad::io
