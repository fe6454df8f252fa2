// One threading setting for the whole library. set_num_threads(n) (or XGRAD_NUM_THREADS in the
// environment) sizes both xgrad's own parallel loops and OpenBLAS (which gets the n threads for large
// products and one for small ones, see matmul.cpp), so the two never compete for cores.
// xgrad's workers block on a condition variable between loops: they never spin, so they never steal
// a core from OpenBLAS's threads, and vice versa.
#pragma once

#include <cstddef>
#include <functional>

namespace xgrad {

void set_num_threads(int n);   // n >= 1
int get_num_threads();         // default: XGRAD_NUM_THREADS, else the cores this process may use

// Runs body(begin, end) over [0, n) split into at most get_num_threads() contiguous chunks of at least
// `grain` items, and returns when all are done. Small ranges and nested calls run on the caller.
void parallel_for(std::size_t n, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& body);

// The grain, in floats, of a memory-bound loop: with less than this (2 MiB) per thread, waking a second
// thread costs more than it saves (tens of microseconds on a VM), and data split across two cores'
// caches is slower for the next op to read. W1's (32, 64, 64) arrays stay on one thread; W2's do not.
inline constexpr std::size_t parallel_floats = std::size_t(1) << 19;

// dst = src and dst = 0 over n floats, on several threads when n is large (memcpy and memset, which
// write large arrays without reading them first).
void parallel_copy(float* dst, const float* src, std::size_t n);
void parallel_zero(float* dst, std::size_t n);

}  // namespace xgrad
