// The examples' progress bar: on a terminal, one line redrawn at most ten times a second with the
// step, the loss, tokens per second and the time left; lines printed through line() stay above it.
// Not on a terminal (a log, a pipe), only those lines.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

class Progress {
public:
    Progress(std::int64_t first, std::int64_t last, std::size_t tokens_per_step)
        : first_(first), last_(last), tokens_(tokens_per_step), start_(clock::now()), terminal_(isatty(STDOUT_FILENO))
    {
    }
    void update(std::int64_t step, double loss, bool force)
    {
        const double elapsed = seconds();
        if (!terminal_ || (!force && elapsed - shown_ < 0.1)) return;
        shown_ = elapsed;
        const double done = double(step + 1 - first_) / double(std::max<std::int64_t>(1, last_ - first_));
        const int width = 24, filled = static_cast<int>(done * width);
        std::printf("\r[%s%s] step %lld/%lld  loss %.3f  %.0fk tok/s  ETA %.0fs   ", std::string(filled, '#').c_str(),
                    std::string(width - filled, '.').c_str(), static_cast<long long>(step + 1), static_cast<long long>(last_),
                    loss, tokens_per_second(step) / 1e3, elapsed / std::max(done, 1e-9) - elapsed);
        std::fflush(stdout);
    }
    void line(const std::string& text)   // a line that stays, above the bar
    {
        std::printf(terminal_ ? "\r%-90s\n" : "%s\n", text.c_str());
        std::fflush(stdout);
    }
    double tokens_per_second(std::int64_t step) const { return double(step + 1 - first_) * double(tokens_) / seconds(); }
    double seconds() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

private:
    using clock = std::chrono::steady_clock;
    std::int64_t first_, last_;
    std::size_t tokens_;
    clock::time_point start_;
    bool terminal_;
    double shown_ = -1.0;
};

