// The examples' memory check: what this process may still take, so that a configuration too large is
// refused with the figure and the flag to lower before anything of that size is allocated.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

// The memory this process may still take: MemAvailable, or the cgroup's limit if lower; 0 if unknown.
inline long double available_memory()
{
    long double available = 0;
    std::ifstream meminfo("/proc/meminfo");
    for (std::string line; std::getline(meminfo, line);) {
        if (line.rfind("MemAvailable:", 0) == 0) available = std::strtold(line.c_str() + 13, nullptr) * 1024;
    }
    std::ifstream max_file("/sys/fs/cgroup/memory.max"), current_file("/sys/fs/cgroup/memory.current");
    std::string max_text, current_text;
    if (max_file >> max_text && max_text != "max" && current_file >> current_text) {
        const long double room = std::strtold(max_text.c_str(), nullptr) - std::strtold(current_text.c_str(), nullptr);
        if (room > 0 && (available == 0 || room < available)) available = room;
    }
    return available;
}

inline std::string gib(long double bytes)
{
    char buffer[48];
    std::snprintf(buffer, sizeof buffer, "%.3Lg GiB", bytes / (1024.0L * 1024 * 1024));
    return buffer;
}

