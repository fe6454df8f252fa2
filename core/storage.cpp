// The storage cache: large blocks are their own mappings, kept by size when freed.
#include "core/storage.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include <sys/mman.h>

namespace xgrad {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool cache_large_blocks = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool cache_large_blocks = false;
#else
constexpr bool cache_large_blocks = true;
#endif
#else
constexpr bool cache_large_blocks = true;
#endif

constexpr std::size_t alignment = 64;                  // a cache line; enough for any SIMD load
constexpr std::size_t large_block = std::size_t(1) << 20;
constexpr std::size_t page = 4096;
constexpr std::size_t max_cached = std::size_t(1) << 30;

// Freed blocks by size in pages. A request takes the block of its size freed last (the likeliest to be
// in the CPU's caches still); a block that would push the cache past max_cached is unmapped instead.
struct Cache {
    std::mutex mutex;
    std::map<std::size_t, std::vector<void*>> free_blocks;
    std::size_t cached_bytes = 0;
};

Cache& cache()
{
    static Cache* the_cache = new Cache;   // never destroyed: arrays in static storage may outlive it
    return *the_cache;
}

std::size_t mapped_size(std::size_t bytes) { return (bytes + page - 1) / page * page; }

}  // namespace

void* allocate_storage(std::size_t bytes)
{
    if (!cache_large_blocks || bytes < large_block) {
        void* block = std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
        if (block == nullptr && bytes != 0) throw std::bad_alloc();
        return block;
    }
    const std::size_t size = mapped_size(bytes);
    {
        Cache& c = cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        auto it = c.free_blocks.find(size);
        if (it != c.free_blocks.end() && !it->second.empty()) {
            void* block = it->second.back();
            it->second.pop_back();
            c.cached_bytes -= size;
            return block;
        }
    }
    void* block = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (block == MAP_FAILED) throw std::bad_alloc();
    return block;
}

void free_storage(void* block, std::size_t bytes) noexcept
{
    if (block == nullptr) return;
    if (!cache_large_blocks || bytes < large_block) {
        std::free(block);
        return;
    }
    const std::size_t size = mapped_size(bytes);
    {
        Cache& c = cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        if (c.cached_bytes + size <= max_cached) {
            c.free_blocks[size].push_back(block);
            c.cached_bytes += size;
            return;
        }
    }
    munmap(block, size);
}

std::size_t cached_storage_bytes()
{
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    return c.cached_bytes;
}

void empty_cache()
{
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    for (auto& [size, blocks] : c.free_blocks) {
        for (void* block : blocks) munmap(block, size);
    }
    c.free_blocks.clear();
    c.cached_bytes = 0;
}

}  // namespace xgrad
