// libFuzzer target: any bytes as a corpus. Valid UTF-8 must round-trip through the tokenizer and
// survive the line shuffle with the same characters; anything else must throw xgrad::Error.
#include <algorithm>
#include <cstdint>
#include <string>

#include "core/check.h"
#include "text/corpus.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        xgrad::text::CharTokenizer tokenizer(text);
        if (tokenizer.decode(tokenizer.encode(text)) != text) __builtin_trap();
        std::string shuffled = xgrad::text::shuffle_lines(text, size);
        std::string a = text, b = shuffled;
        a.erase(std::remove(a.begin(), a.end(), '\n'), a.end());
        b.erase(std::remove(b.begin(), b.end(), '\n'), b.end());
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        if (a != b) __builtin_trap();                 // the shuffle keeps every character
    } catch (const xgrad::Error&) {
    }
    return 0;
}
