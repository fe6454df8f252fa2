// libFuzzer target: any bytes given to the safetensors parser either parse into tensors whose sizes
// match their shapes, or throw xgrad::Error. Nothing else: no crash, no other exception, no leak.
#include <cstdint>
#include <vector>

#include "nn/checkpoint.h"
#include "core/check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::vector<char> bytes(data, data + size);
    try {
        xgrad::nn::Safetensors file = xgrad::nn::parse_safetensors(bytes, "fuzz");
        for (const auto& [name, values] : file.tensors) {
            std::size_t n = 1;
            for (auto d : values.shape()) n *= d;
            if (n != values.size()) __builtin_trap();
        }
    } catch (const xgrad::Error&) {
    }
    return 0;
}
