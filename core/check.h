// check(cond, parts...): the one way xgrad reports a caller's mistake. It throws xgrad::Error
// (a std::invalid_argument) whose message names the op, what it expected and what it got.
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

// check(a.dim() == 2, "matmul: expected a 2-D tensor, got ", shape_str(a.shape()));
template <class... Parts>
void check(bool cond, const Parts&... parts)
{
    if (!cond) fail(parts...);
}

}  // namespace xgrad
