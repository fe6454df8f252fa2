// libFuzzer target: any bytes given to the safetensors parser either parse into tensors whose sizes
// match their shapes, or throw xgrad::Error. Nothing else: no crash, no other exception, no leak.
#include <cstdint>
#include <vector>

#include "core/check.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::vector<char> bytes(data, data + size);
    try {
        xgrad::io::Safetensors file = xgrad::io::parse_safetensors(bytes, "fuzz");
        for (const auto& [name, values] : file.tensors) {
            std::size_t n = 1;
            for (auto d : values.shape()) n *= d;
            if (n != values.numel()) __builtin_trap();
        }
    } catch (const xgrad::Error&) {
    }
    return 0;
}
