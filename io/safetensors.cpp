// safetensors reading and writing, and the name/shape check that loads into parameters.
#include "io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "io/atomic_file.h"

namespace xgrad::io {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// safetensors' names of the dtypes, in Dtype's order
constexpr const char* file_dtypes[dtype_count] = {"F32", "F64", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"};

std::optional<Dtype> dtype_of(const std::string& name)
{
    for (int i = 0; i < dtype_count; ++i) {
        if (name == file_dtypes[i]) return static_cast<Dtype>(i);
    }
    return std::nullopt;
}

// a tensor's values as the file stores them: row-major, its dtype's bytes
const char* bytes_of(const Tensor& contiguous)
{
    return dispatch(contiguous.dtype(), [&]<class T>(Tag<T>) { return reinterpret_cast<const char*>(contiguous.data_ptr<T>()); });
}

std::size_t byte_count(const Tensor& t) { return t.numel() * element_size(t.dtype()); }

}  // namespace

namespace {

// The 8-byte length and the JSON header, padded so that the data starts 8-byte aligned.
std::string header_bytes(const NamedTensors& tensors, const Metadata& metadata,
                         const std::string& path)
{
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::size_t offset = 0;
    for (const auto& [name, t] : tensors) {
        XGRAD_CHECK(name != "__metadata__" && !header.contains(name), "save: duplicate or reserved tensor name ", in_quotes(name));
        const std::size_t bytes = byte_count(t);
        const Shape shape = t.shape();
        header[name] = {{"dtype", file_dtypes[static_cast<int>(t.dtype())]},
                        {"shape", std::vector<std::size_t>(shape.begin(), shape.end())},
                        {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::type_error&) {   // JSON strings must be UTF-8: name the one that is not
        auto utf8 = [](const std::string& t) {
            try {
                (void)nlohmann::json(t).dump();
                return true;
            } catch (const nlohmann::json::type_error&) {
                return false;
            }
        };
        for (const auto& [key, value] : metadata) {
            XGRAD_CHECK(utf8(key) && utf8(value), "save: metadata ", in_quotes(key), " of ", in_quotes(path),
                  " is not valid UTF-8 text (safetensors headers are JSON)");
        }
        fail("save: a tensor name of ", in_quotes(path), " is not valid UTF-8 text (safetensors headers are JSON)");
    }
    text.append((8 - text.size() % 8) % 8, ' ');
    const std::uint64_t header_length = text.size();
    return std::string(reinterpret_cast<const char*>(&header_length), 8) + text;
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const Metadata& metadata)
{
    const std::string header = header_bytes(tensors, metadata, path);
    // io::AtomicFile: a crash at any point leaves either the old file or the new one, never a torn one
    AtomicFile file(path, "save");
    file.write(header.data(), header.size());
    for (const auto& [name, t] : tensors) {
        const Tensor values = t.contiguous();
        file.write(bytes_of(values), byte_count(values));
    }
    file.commit();
}

std::string safetensors_bytes(const NamedTensors& tensors, const Metadata& metadata,
                              const std::string& path)
{
    std::string bytes = header_bytes(tensors, metadata, path);
    for (const auto& [name, t] : tensors) {
        const Tensor values = t.contiguous();
        bytes.append(bytes_of(values), byte_count(values));
    }
    return bytes;
}

Safetensors load_safetensors(const std::string& path)
{
    // a FIFO or a device would block open() or read forever: only a regular file is a checkpoint
    std::error_code error;
    const auto status = std::filesystem::status(path, error);
    XGRAD_CHECK(status.type() != std::filesystem::file_type::not_found, "load: cannot open ", in_quotes(path), ": ",
          std::strerror(ENOENT));
    XGRAD_CHECK(error || std::filesystem::is_regular_file(status), "load: ", in_quotes(path), " is not a regular file");
    std::ifstream in(path, std::ios::binary);
    XGRAD_CHECK(in.good(), "load: cannot open ", in_quotes(path), ": ", std::strerror(errno));
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return parse_safetensors(bytes, path);
}

Safetensors parse_safetensors(const std::vector<char>& bytes, const std::string& path)
{
    const std::string what = "load: " + in_quotes(path) + " ";
    XGRAD_CHECK(bytes.size() >= 8, what, "is not a safetensors file: it has ", bytes.size(),
          " bytes, fewer than the 8-byte header length");
    std::uint64_t header_length = 0;
    std::memcpy(&header_length, bytes.data(), 8);
    XGRAD_CHECK(header_length <= bytes.size() - 8, what, "is not a safetensors file or is truncated: its header length (",
          header_length, " bytes) runs past the end of the file (", bytes.size(), " bytes)");

    nlohmann::json header;
    try {
        header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_length));
    } catch (const nlohmann::json::exception& e) {
        fail(what, "is not a safetensors file: its header is not valid JSON (", e.what(), ")");
    }
    XGRAD_CHECK(header.is_object(), what, "is not a safetensors file: its header is not a JSON object");

    const std::size_t data_size = bytes.size() - 8 - header_length;
    const char* data = bytes.data() + 8 + header_length;
    Safetensors file;
    struct Span {
        std::uint64_t begin, end;
        std::string name;
    };
    std::vector<Span> spans;
    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") {
            XGRAD_CHECK(entry.is_object(), what, "has a __metadata__ that is not a JSON object");
            for (const auto& [key, value] : entry.items()) {
                XGRAD_CHECK(value.is_string(), what, "has metadata ", in_quotes(key), " that is not a string");
                file.metadata[key] = value.get<std::string>();
            }
            continue;
        }
        const std::string tensor = what + "tensor " + in_quotes(name);
        XGRAD_CHECK(entry.is_object() && entry.contains("dtype") && entry.contains("shape") && entry.contains("data_offsets"),
              tensor, " lacks dtype, shape or data_offsets");
        XGRAD_CHECK(entry["dtype"].is_string(), tensor, " has a dtype that is not a string");
        const std::string dtype_name = entry["dtype"].get<std::string>();
        const std::optional<Dtype> dtype = dtype_of(dtype_name);
        XGRAD_CHECK(dtype.has_value(), tensor, " has dtype ", dtype_name, "; xgrad reads F32, F64, F16, BF16, I64, I32, I16, I8, U8 and BOOL");
        const std::size_t size = element_size(*dtype);
        Shape shape;
        XGRAD_CHECK(entry["shape"].is_array(), tensor, " has a shape that is not a list");
        for (const auto& d : entry["shape"]) {
            XGRAD_CHECK(d.is_number_unsigned(), tensor, " has a shape entry that is not a non-negative integer");
            shape.push_back(d.get<std::size_t>());
        }
        const auto& offsets = entry["data_offsets"];
        XGRAD_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() && offsets[1].is_number_unsigned(),
              tensor, " has data_offsets that are not two non-negative integers");
        const auto begin = offsets[0].get<std::uint64_t>(), end = offsets[1].get<std::uint64_t>();
        XGRAD_CHECK(begin <= end && end <= data_size, tensor, " has data_offsets [", begin, ", ", end,
              "] outside the data (", data_size, " bytes): the file is truncated or corrupt");
        const std::size_t numel = shape_numel(shape, tensor.c_str());   // a product that wraps is refused
        XGRAD_CHECK(numel <= SIZE_MAX / size, tensor, " of shape ", shape_str(shape), " has ", numel,
              " elements, whose bytes a size_t cannot count");
        XGRAD_CHECK(end - begin == numel * size, tensor, " of shape ", shape_str(shape), " and dtype ", dtype_name, " needs ",
              numel * size, " bytes but its data_offsets span ", end - begin);
        spans.push_back({begin, end, name});

        Tensor values = empty(shape, *dtype);
        char* out = const_cast<char*>(bytes_of(values));
        std::memcpy(out, data + begin, end - begin);
        if (*dtype == kBool) {   // a bool is one byte, 0 or 1: any other byte reads as true
            for (std::size_t i = 0; i < numel; ++i) out[i] = out[i] != 0;
        }
        file.tensors.emplace_back(name, std::move(values));
    }
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
    for (std::size_t i = 1; i < spans.size(); ++i) {
        XGRAD_CHECK(spans[i].begin >= spans[i - 1].end, what, "is corrupt: the data of tensors ", in_quotes(spans[i - 1].name),
              " and ", in_quotes(spans[i].name), " overlap");
    }
    return file;
}

std::vector<std::pair<Tensor, const Tensor*>> match_parameters(const NamedParameters& named, const Safetensors& file,
                                                              const std::string& path, const std::string& skip_prefix)
{
    const std::string what = "load: " + in_quotes(path) + " ";
    std::vector<const Tensor*> source(named.size(), nullptr);
    for (const auto& entry : file.tensors) {
        const std::string& name = entry.first;
        const Tensor& values = entry.second;
        if (!skip_prefix.empty() && name.rfind(skip_prefix, 0) == 0) continue;
        auto it = std::find_if(named.begin(), named.end(), [&](const auto& p) { return p.first == name; });
        XGRAD_CHECK(it != named.end(), what, "has tensor ", in_quotes(name), ", which the module does not have");
        const auto index = static_cast<std::size_t>(it - named.begin());
        const Shape file_shape = values.shape();
        XGRAD_CHECK(file_shape == it->second.shape(), what, "has ", in_quotes(name), " of shape ", shape_str(file_shape),
              ", but the module's is ", shape_str(it->second.shape()));
        source[index] = &values;
    }
    std::vector<std::pair<Tensor, const Tensor*>> plan;
    for (std::size_t i = 0; i < named.size(); ++i) {
        XGRAD_CHECK(source[i] != nullptr, what, "lacks tensor ", in_quotes(named[i].first), " of shape ",
              shape_str(named[i].second.shape()));
        plan.emplace_back(named[i].second, source[i]);
    }
    return plan;
}

}  // namespace xgrad::io
