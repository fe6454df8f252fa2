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

template <class... Parts>
[[noreturn]] void fail(const Parts&... parts)
{
    std::ostringstream out;
    (out << ... << parts);
    throw Error(out.str());
}

}  // namespace xgrad

#define XGRAD_CHECK(cond, ...)                  \
    do {                                        \
        if (!(cond)) ::xgrad::fail(__VA_ARGS__); \
    } while (false)
