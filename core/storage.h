// Where every Array's floats live. Blocks of 128 KiB and more (those glibc would map afresh) are
// their own mappings, kept when freed and handed out again for the same size: a training step
// allocates the same sizes every step, so from the second on it faults in no fresh pages, and its
// large blocks never split one another in the heap (BENCHMARKS.md, "the storage cache"). Smaller
// blocks come from malloc, rounded up to one of 22 size classes and kept per class when freed (64 MiB
// at most), so that a step's temporaries neither make glibc trim and regrow its heap nor pay for
// aligned malloc on every tiny op; xgrad leaves malloc's settings alone. Under AddressSanitizer every
// block comes from malloc and goes straight back, so that the sanitizer sees every access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace xgrad {

void* allocate_storage(std::size_t bytes);               // 64-byte aligned; throws std::bad_alloc
void free_storage(void* block, std::size_t bytes) noexcept;

// Freed blocks held for reuse (large ones at most 512 MiB, the ones freed longest ago going first;
// small ones at most 64 MiB), and how to give them all back to the system, as torch.cuda.empty_cache()
// does for PyTorch's caching allocator.
std::size_t cached_storage_bytes();
void empty_cache();

// The bytes of all Arrays alive now (what a test of an op's memory use measures), and the most that
// were alive at once since the start or the last reset_peak_storage_bytes(), as PyTorch's
// torch.cuda.max_memory_allocated() and reset_peak_memory_stats().
std::size_t live_storage_bytes();
std::size_t peak_storage_bytes();
void reset_peak_storage_bytes();

// A std::bad_array_new_length that says what was asked for: more bytes than a size_t counts.
[[noreturn]] void throw_too_many_elements(std::size_t n, std::size_t element_bytes);

// The allocator of Array (core/array.h): a std::allocator-compatible front for the two calls above.
template <class T>
struct StorageAllocator {
    using value_type = T;
    StorageAllocator() = default;
    template <class U>
    StorageAllocator(const StorageAllocator<U>&) noexcept {}
    T* allocate(std::size_t n)
    {
        // n * sizeof(T) must not wrap around to a small block that the caller then writes past
        if (n > SIZE_MAX / sizeof(T)) throw_too_many_elements(n, sizeof(T));
        return static_cast<T*>(allocate_storage(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept { free_storage(p, n * sizeof(T)); }
    template <class U>
    bool operator==(const StorageAllocator<U>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const StorageAllocator<U>&) const noexcept { return false; }
};

// A std::vector whose buffer lives in the same storage: for an op's large temporaries (the index
// tables of an embedding backward), which malloc would otherwise map afresh on every step.
template <class T>
using StorageVector = std::vector<T, StorageAllocator<T>>;

}  // namespace xgrad
