// The examples' flag checks, on CLI11: finite numbers, and whole numbers in range. CLI11 alone lets
// "inf" and "nan" through as numbers, reads "-1" into an unsigned flag as 2^64 - 1, saturates
// "99999999999999999999" without a word, and its Range prints DBL_MAX in full.
#pragma once

#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include <CLI/CLI.hpp>

#include "xgrad.h"

namespace cli_checks {

// A number above (or, with allow_zero, at least) zero, and finite: "inf" and "nan" parse as numbers
// but train nothing. `largest` keeps a float flag within what a float holds (1e39 would become inf).
inline CLI::Validator number_above_zero(bool allow_zero, double largest = DBL_MAX)
{
    return CLI::Validator(
        [allow_zero, largest](std::string& text) -> std::string {
            char* end = nullptr;
            const double value = std::strtod(text.c_str(), &end);
            if (end == text.c_str() || *end != '\0') return "expected a number, got '" + text + "'";
            if (!std::isfinite(value)) return "expected a finite number, got " + text;
            if (allow_zero ? !(value >= 0) : !(value > 0)) {
                return std::string("must be ") + (allow_zero ? "zero or more" : "positive") + ", got " + text;
            }
            if (value > largest) return "must be at most " + std::to_string(largest) + ", got " + text;
            return "";
        },
        allow_zero ? "NUMBER >= 0" : "NUMBER > 0");
}

// A finite number (what CLI::Range lets through: it compares, and NaN compares false).
inline CLI::Validator finite_number()
{
    return CLI::Validator(
        [](std::string& text) -> std::string {
            char* end = nullptr;
            const double value = std::strtod(text.c_str(), &end);
            if (end == text.c_str() || *end != '\0') return "expected a number, got '" + text + "'";
            if (!std::isfinite(value)) return "expected a finite number, got " + text;
            return "";
        },
        "NUMBER");
}

// A whole number in [smallest, largest], the whole text: CLI11 alone reads "-1" into an unsigned flag
// as 2^64 - 1 and saturates "99999999999999999999", without a word.
template <class Int>
CLI::Validator whole_number(Int smallest, Int largest = std::numeric_limits<Int>::max())
{
    return CLI::Validator(
        [smallest, largest](std::string& text) -> std::string {
            char* end = nullptr;
            const long double value = std::strtold(text.c_str(), &end);
            if (end == text.c_str() || *end != '\0') return "expected a number, got '" + text + "'";
            if (value < static_cast<long double>(smallest)) {
                return (smallest == 1 ? "must be positive, got " : "must be " + std::to_string(smallest) + " or more, got ") + text;
            }
            if (value > static_cast<long double>(largest)) return "must be at most " + std::to_string(largest) + ", got " + text;
            Int parsed{};
            const auto [stop, error] = std::from_chars(text.data(), text.data() + text.size(), parsed);
            if (error == std::errc::result_out_of_range || (error == std::errc() && parsed > largest)) {
                return "must be at most " + std::to_string(largest) + ", got " + text;
            }
            if (error != std::errc() || stop != text.data() + text.size()) return "expected a whole number, got " + text;
            return "";
        },
        smallest == 1 ? "INTEGER > 0" : "INTEGER >= 0");
}

// --threads, capped at the cores this process may use (and the cap said): threads past them only wait
// for a core, while their stacks and OpenBLAS's buffers take memory. 0: XGRAD_NUM_THREADS, or every core.
inline void apply_threads(int asked, const char* program)
{
    if (asked == 0) {
        xgrad::get_num_threads();   // a bad XGRAD_NUM_THREADS fails here, before anything is read or written
        return;
    }
    const int cores = xgrad::available_cores();
    if (asked > cores) {
        std::fprintf(stderr, "%s: --threads %d is more than the %d cores this process may use: running on %d threads\n",
                     program, asked, cores, cores);
    }
    xgrad::set_num_threads(std::min(asked, cores));
}

}  // namespace cli_checks
