// One threading setting for the whole library. set_num_threads(n) (or XGRAD_NUM_THREADS in the
// environment) sizes both xgrad's own parallel loops and OpenBLAS (which gets the n threads for large
// products and one for small ones, see gemm in kernels.h), so the two never compete for cores.
// xgrad's workers block on a condition variable between loops: they never spin, so they never steal
// a core from OpenBLAS's threads, and vice versa.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>

namespace xgrad {

// xgrad's own loops run on n threads; OpenBLAS on at most available_cores() of them, since its threads
// spin and each reserves 128 MiB. A machine that cannot start a thread (its thread or memory limit)
// fails the loop that needed it, with an error naming the cores.
inline constexpr int max_threads = 1024;
void set_num_threads(int n);   // 1 <= n <= max_threads
int get_num_threads();         // default: XGRAD_NUM_THREADS, else the cores this process may use
int available_cores();         // the cores this process may run on (its CPU affinity)
int get_blas_threads();        // OpenBLAS's for a large product: min(get_num_threads(), available_cores())

// Runs body(begin, end) over [0, n) split into at most get_num_threads() contiguous chunks of at least
// `grain` items, and returns when all are done. Small ranges and nested calls run on the caller.
void parallel_for(std::size_t n, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& body);

// How many parallel_for calls so far ran on more than one thread: what a test that must exercise the
// threaded path of an op checks.
std::uint64_t threaded_loops();

// The one grain of xgrad's loops, in floats: a thread gets at least this much (2 MiB) of work, since
// below it waking a second thread costs more than it saves (BENCHMARKS.md has the measurements).
inline constexpr std::size_t parallel_floats = std::size_t(1) << 19;

// body(first, last) over the rows [0, rows) of an array, each thread a contiguous range of rows of at
// least parallel_floats floats in all. The determinism rule: a thread writes only the output rows it
// owns, and sums whatever it sums in a fixed order, so results are bitwise the same on any number of
// threads. (An element-wise loop is parallel_rows(n, 1, ...).)
inline void parallel_rows(std::size_t rows, std::size_t floats_per_row,
                          const std::function<void(std::size_t, std::size_t)>& body)
{
    parallel_for(rows, std::max<std::size_t>(1, parallel_floats / std::max<std::size_t>(floats_per_row, 1)), body);
}

// dst = src and dst = 0 over n floats, on several threads when n is large (memcpy and memset, which
// write large arrays without reading them first).
void parallel_copy(float* dst, const float* src, std::size_t n);
void parallel_zero(float* dst, std::size_t n);

}  // namespace xgrad
