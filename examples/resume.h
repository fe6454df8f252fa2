// --resume as train_lm and train_gpt do it. Each example lists the flags its checkpoints record in one
// table (RecordedFlag: the metadata key, the flag, the setting it fills, and why it may not change);
// the code here writes them, reads them back, and checks that a checkpoint is one this run can
// continue: written by a training run, of this model, on this corpus's characters, at a step within
// --steps, its numbers finite. Every refusal names the file, what it holds and what this run has.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "xgrad.h"

namespace resume {

// The setting a flag fills, by its type (std::size_t is std::uint64_t on the 64-bit Linux we build on).
static_assert(std::is_same_v<std::size_t, std::uint64_t>);
using Setting = std::variant<double*, float*, std::int64_t*, std::uint64_t*, bool*>;

struct RecordedFlag {
    const char* key;         // in the checkpoint's metadata
    const char* flag;        // on the command line
    Setting setting;
    const char* why_fixed;   // why it cannot change on resume; nullptr: it may
    bool positive = false;   // a number above 0 (every recorded number is 0 or more)
};

// The shortest decimal that reads back as exactly the same number (0.003, not 0.0030000000000000001;
// for a float 0.02, not 0.019999999552965164).
template <class Real>
std::string exact(Real v)
{
    char buffer[32];
    for (int digits = 1; digits <= 17; ++digits) {
        std::snprintf(buffer, sizeof buffer, "%.*g", digits, static_cast<double>(v));
        if (static_cast<Real>(std::strtod(buffer, nullptr)) == v) break;
    }
    return buffer;
}

inline std::string text_of(const Setting& setting)
{
    return std::visit([](auto* value) -> std::string {
        using T = std::remove_pointer_t<decltype(value)>;
        if constexpr (std::is_same_v<T, bool>) return *value ? "1" : "0";
        else if constexpr (std::is_floating_point_v<T>) return exact(*value);
        else return std::to_string(*value);
    }, setting);
}

// The checkpoint's text for flag f, into a setting of f's type: the whole text, or an error naming the file.
inline void read_into(const Setting& setting, const RecordedFlag& f, const std::string& text, const std::string& file)
{
    std::visit([&](auto* value) {
        using T = std::remove_pointer_t<decltype(value)>;
        bool read = false;
        if constexpr (std::is_same_v<T, bool>) {
            read = text == "0" || text == "1";
            if (read) *value = text == "1";
        } else if constexpr (std::is_floating_point_v<T>) {
            char* end = nullptr;
            const double v = std::strtod(text.c_str(), &end);
            read = !text.empty() && *end == '\0' && std::isfinite(v) && (f.positive ? v > 0 : v >= 0);
            if (read) *value = static_cast<T>(v);
        } else {
            T v{};
            const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), v);
            read = error == std::errc() && end == text.data() + text.size() && (f.positive ? v > 0 : v >= 0);
            if (read) *value = v;
        }
        XGRAD_CHECK(read, "resume: '", file, "' records ", f.flag, " = '", text, "', expected ",
                    std::is_same_v<T, bool> ? "0 or 1"
                    : std::is_floating_point_v<T> ? (f.positive ? "a finite number above 0" : "a finite number, 0 or more")
                                                   : (f.positive ? "a whole number above 0" : "a whole number, 0 or more"));
    }, setting);
}

inline void record(const std::vector<RecordedFlag>& flags, xgrad::io::Metadata& metadata)
{
    for (const RecordedFlag& f : flags) metadata[f.key] = text_of(f.setting);
}

// A flag left out takes the checkpoint's value; one given with another value is applied and said, or
// refused where it cannot change. Returns the line that says what came from where.
inline std::string resolve(const std::vector<RecordedFlag>& flags, const std::set<std::string>& given,
                           const xgrad::io::Metadata& metadata, const std::string& file)
{
    std::string taken, changed, unrecorded;
    for (const RecordedFlag& f : flags) {
        const auto it = metadata.find(f.key);
        if (it == metadata.end()) {   // a checkpoint from before this flag was recorded
            unrecorded += std::string(" ") + f.flag;
            continue;
        }
        if (!given.count(f.flag)) {
            read_into(f.setting, f, it->second, file);
            taken += std::string(" ") + f.flag + " " + it->second;
            continue;
        }
        // given: compared as values, so that "0.1" and "0.10000000149011612" of a float are one
        const std::string here = text_of(f.setting);
        const std::string there = std::visit([&](auto* value) {
            auto recorded = *value;
            read_into(&recorded, f, it->second, file);
            return text_of(&recorded);
        }, f.setting);
        if (there == here) continue;
        XGRAD_CHECK(f.why_fixed == nullptr, "resume: '", file, "' was trained with ", f.flag, " ", there, ", and this run gives ",
                    f.flag, " ", here, "; it cannot change on resume, since ", f.why_fixed, " (leave ", f.flag,
                    " out to continue with ", there, ")");
        changed += std::string(" ") + f.flag + " " + here + " (was " + there + ")";
    }
    std::string line = "resume: continuing '" + file + "'";
    if (!taken.empty()) line += "; from the checkpoint:" + taken;
    if (!changed.empty()) line += "; changed from here on:" + changed;
    if (!unrecorded.empty()) line += "; not recorded in it, so this run's:" + unrecorded;
    return line;
}

// A step count from the checkpoint's metadata: the whole text, 0 or more, or an error naming the file.
inline std::int64_t parse_step(const std::string& text, const std::string& file, const char* key)
{
    std::int64_t step = -1;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), step);
    XGRAD_CHECK(error == std::errc() && end == text.data() + text.size() && step >= 0, "resume: '", file, "' has ", key,
                " = '", text, "', expected a whole number of steps, 0 or more");
    return step;
}

// The corpus's characters as one UTF-8 string, in id order: what a checkpoint's ids mean.
inline std::string vocabulary_text(const xgrad::text::CharTokenizer& tokenizer)
{
    std::string out;
    for (char32_t c : tokenizer.vocabulary()) out += xgrad::text::encode_utf8(c);
    return out;
}

// What this run would make: its model ("vocab=65 n_embd=64 ..."), its corpus's vocabulary_text, --steps.
struct ThisRun {
    std::string model, vocabulary;
    std::int64_t steps;
};

// The fields of "k=v k=v" that differ between two model descriptions: "n_embd (64 there, 128 here)".
inline std::string model_differences(const std::string& there, const std::string& here)
{
    auto fields = [](const std::string& text) {
        std::vector<std::pair<std::string, std::string>> out;
        std::size_t start = 0;
        while (start < text.size()) {
            std::size_t end = text.find(' ', start);
            if (end == std::string::npos) end = text.size();
            const std::string field = text.substr(start, end - start);
            const std::size_t eq = field.find('=');
            out.emplace_back(field.substr(0, eq), eq == std::string::npos ? "" : field.substr(eq + 1));
            start = end + 1;
        }
        return out;
    };
    std::string out;
    for (const auto& [key, value] : fields(here)) {
        std::string other = "none";
        for (const auto& [k, v] : fields(there)) {
            if (k == key) other = v;
        }
        if (other != value) out += (out.empty() ? "" : ", ") + key + " (" + other + " there, " + value + " here)";
    }
    return out;
}

// The checks before any weight is loaded; returns the checkpoint's step.
inline std::int64_t check_checkpoint(const xgrad::io::Safetensors& checkpoint, const std::string& file, const ThisRun& run)
{
    const auto& meta = checkpoint.metadata;
    const auto model = meta.find("model"), step = meta.find("step");
    XGRAD_CHECK(model != meta.end() && step != meta.end(), "resume: '", file, "' is not a training checkpoint: it holds ",
                checkpoint.tensors.size(), " tensors but no record of a run (no 'model' and 'step' in its metadata); a "
                "module's weights alone, as nn::save writes them, have no optimizer state or step to continue from");
    XGRAD_CHECK(model->second == run.model, "resume: '", file, "' holds a model with ", model->second,
                ", but these flags and the corpus make one with ", run.model, ": ", model_differences(model->second, run.model),
                " differ; give the flags it was trained with");
    const auto vocabulary = meta.find("vocabulary");
    if (vocabulary != meta.end() && vocabulary->second != run.vocabulary) {
        const std::vector<char32_t> there = xgrad::text::decode_utf8(vocabulary->second), here = xgrad::text::decode_utf8(run.vocabulary);
        std::size_t i = 0;
        while (i < there.size() && i < here.size() && there[i] == here[i]) ++i;
        auto at = [&](const std::vector<char32_t>& v) { return i < v.size() ? xgrad::text::describe_char(v[i]) : std::string("none"); };
        xgrad::fail("resume: '", file, "' was trained on other characters: its vocabulary (", there.size(),
                    " characters) and this corpus's (", here.size(), ") differ first at id ", i, " (", at(there), " there, ",
                    at(here), " here), so its ids would mean other characters; resume on the corpus it was trained on");
    }
    const std::int64_t steps_done = parse_step(step->second, file, "step");
    XGRAD_CHECK(steps_done <= run.steps, "resume: '", file, "' is at step ", steps_done, ", past --steps ", run.steps,
                "; give a --steps of at least ", steps_done);
    for (const auto& [name, values] : checkpoint.tensors) {
        std::size_t bad = 0;
        const xgrad::Values v = values.values();   // a run's checkpoint is float32: another dtype is refused here, naming it
        for (std::size_t i = 0; i < v.size(); ++i) bad += !std::isfinite(v[i]);
        XGRAD_CHECK(bad == 0, "resume: '", file, "' holds NaN or Inf in '", name, "' (", bad, " of ", v.size(),
                    " values): it was written by a run that diverged, or is damaged, and cannot be trained from; resume "
                    "from an earlier checkpoint, or start afresh");
    }
    return steps_done;
}

}  // namespace resume
