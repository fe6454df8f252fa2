// XGRAD_CHECK(cond, parts...): the one way xgrad reports a caller's mistake. It throws xgrad::Error
// (a std::invalid_argument) whose message names the op, what it expected and what it got:
//
//     XGRAD_CHECK(a.dim() == 2, "matmul: expected a 2-D tensor, got ", shape_str(a.shape()));
//
// A macro, as TORCH_CHECK is, so that the parts are only evaluated when the check fails: checks sit
// on every op's path, and building their messages eagerly cost more than many ops themselves.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace xgrad {

struct Error : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};
// An index that names no element (x[5] of 3 rows, a mask of the wrong shape): Python's IndexError, as torch's
struct IndexError : Error {
    using Error::Error;
};

template <class E = Error, class... Parts>
[[noreturn]] void fail_as(const Parts&... parts)
{
    std::ostringstream out;
    (out << ... << parts);
    throw E(out.str());
}

template <class... Parts>
[[noreturn]] void fail(const Parts&... parts)
{
    fail_as<Error>(parts...);
}

}  // namespace xgrad

#define XGRAD_CHECK(cond, ...)                  \
    do {                                        \
        if (!(cond)) ::xgrad::fail(__VA_ARGS__); \
    } while (false)
