// libFuzzer target: train_lm's command line. The input is split at NUL bytes into arguments;
// parsing must end in settings, --help, or a one-line error, never a crash or an escaping exception.
#include <cstdint>
#include <string>
#include <vector>

#include "../examples/train_lm/settings.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::vector<std::string> args = {"train_lm"};
    std::string current;
    for (std::size_t i = 0; i < size && args.size() < 64; ++i) {
        if (data[i] == 0) {
            args.push_back(current);
            current.clear();
        } else {
            current += static_cast<char>(data[i]);
        }
    }
    if (!current.empty()) args.push_back(current);
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    Settings s;
    parse_settings(static_cast<int>(argv.size()), argv.data(), s);
    return 0;
}
