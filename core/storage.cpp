// The storage cache: large blocks are their own mappings, kept by size when freed.
#include "core/storage.h"

#include "core/autograd.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
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
constexpr std::size_t large_block = std::size_t(128) << 10;   // glibc's default mmap threshold
constexpr std::size_t page = 4096;
constexpr std::size_t max_cached = std::size_t(512) << 20;

// Freed blocks by size in pages, each size's in the order they were freed (no size has an empty
// list). A request takes the block of its size freed last (the likeliest to be in the CPU's caches
// still). When the cache would hold more than max_cached, the blocks freed longest ago are unmapped
// first: a loop whose sizes keep changing (generating text one token longer each step) holds at
// most max_cached.
struct Cached {
    std::uint64_t freed_at;
    void* block;
};

struct Cache {
    std::mutex mutex;
    std::map<std::size_t, std::vector<Cached>> free_blocks;
    std::size_t cached_bytes = 0;
    std::uint64_t clock = 0;

    void evict_oldest()
    {
        auto oldest = free_blocks.end();
        for (auto it = free_blocks.begin(); it != free_blocks.end(); ++it) {
            if (oldest == free_blocks.end() || it->second.front().freed_at < oldest->second.front().freed_at) {
                oldest = it;
            }
        }
        munmap(oldest->second.front().block, oldest->first);
        oldest->second.erase(oldest->second.begin());
        cached_bytes -= oldest->first;
        if (oldest->second.empty()) free_blocks.erase(oldest);   // sizes seen once leave no entry
    }
};

Cache& cache()
{
    static Cache* the_cache = new Cache;   // never destroyed: arrays in static storage may outlive it
    return *the_cache;
}

std::atomic<std::size_t> live_bytes{0};

// std::bad_alloc that says how much was asked for: "storage: cannot allocate 51.2 GB for an array (12.0 MB live)"
class StorageExhausted : public std::bad_alloc {
public:
    explicit StorageExhausted(std::size_t bytes)
    {
        const char* op = OpScope::current();
        std::snprintf(what_, sizeof what_, "storage: cannot allocate %.3g GB for an array%s%s%s%s (%.3g GB held by live arrays)",
                      double(bytes) / 1e9, op ? " in '" : "", op ? op : "", op ? "'" : "",
                      op && OpScope::in_backward() ? "'s backward" : "", double(live_bytes.load(std::memory_order_relaxed)) / 1e9);
    }
    const char* what() const noexcept override { return what_; }

private:
    char what_[192];
};

std::size_t mapped_size(std::size_t bytes) { return (bytes + page - 1) / page * page; }

void* allocate_block(std::size_t bytes)
{
    if (bytes > SIZE_MAX - page) throw StorageExhausted(bytes);   // rounding it up below would wrap around
    if (!cache_large_blocks || bytes < large_block) {
        void* block = std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
        if (block == nullptr && bytes != 0) throw StorageExhausted(bytes);
        return block;
    }
    const std::size_t size = mapped_size(bytes);
    {
        Cache& c = cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        auto it = c.free_blocks.find(size);
        if (it != c.free_blocks.end()) {
            void* block = it->second.back().block;
            it->second.pop_back();
            if (it->second.empty()) c.free_blocks.erase(it);
            c.cached_bytes -= size;
            return block;
        }
    }
    void* block = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (block == MAP_FAILED) throw StorageExhausted(bytes);
    return block;
}

}  // namespace

void* allocate_storage(std::size_t bytes)
{
    void* block = allocate_block(bytes);   // throws std::bad_alloc, counting nothing
    live_bytes.fetch_add(bytes, std::memory_order_relaxed);
    return block;
}

void free_storage(void* block, std::size_t bytes) noexcept
{
    if (block == nullptr) return;
    live_bytes.fetch_sub(bytes, std::memory_order_relaxed);
    if (!cache_large_blocks || bytes < large_block) {
        std::free(block);
        return;
    }
    const std::size_t size = mapped_size(bytes);
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.free_blocks[size].push_back({++c.clock, block});
    c.cached_bytes += size;
    while (c.cached_bytes > max_cached) c.evict_oldest();
}

std::size_t live_storage_bytes() { return live_bytes.load(std::memory_order_relaxed); }

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
        for (const Cached& cached : blocks) munmap(cached.block, size);
    }
    c.free_blocks.clear();
    c.cached_bytes = 0;
}

}  // namespace xgrad
