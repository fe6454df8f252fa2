// The storage cache: large blocks are their own mappings, kept by size when freed; small blocks are
// kept by size class.
#include "core/storage.h"

#include "core/autograd.h"

#include <array>
#include <atomic>
#include <bit>
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
constexpr bool cache_blocks = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool cache_blocks = false;
#else
constexpr bool cache_blocks = true;
#endif
#else
constexpr bool cache_blocks = true;
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
std::atomic<std::size_t> peak_bytes{0};   // the most live_bytes has been since the last reset

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

class TooManyElements : public std::bad_array_new_length {
public:
    TooManyElements(std::size_t n, std::size_t element_bytes)
    {
        const char* op = OpScope::current();
        std::snprintf(what_, sizeof what_, "storage: cannot allocate an array of %zu elements of %zu bytes%s%s%s: %.3g bytes, "
                      "more than this machine can address", n, element_bytes, op ? " in '" : "", op ? op : "", op ? "'" : "",
                      double(n) * double(element_bytes));
    }
    const char* what() const noexcept override { return what_; }

private:
    char what_[192];
};

std::size_t mapped_size(std::size_t bytes) { return (bytes + page - 1) / page * page; }

// ---- small blocks (under 128 KiB) -------------------------------------------------------------------------
// Rounded up to one of 22 classes (64 B, 128 B, then 192, 256, 384, 512, ... 96 KiB, 128 KiB: each
// power of two and the midway 1.5 x below it, all multiples of 64) and kept per class when freed, up to
// small_cached_max in all. Without it, a step's many mid-sized temporaries (attention's score blocks,
// LayerNorm's row statistics) make glibc trim and regrow the top of its heap hundreds of times per
// step, each regrowth faulting in fresh pages; and 64-byte aligned malloc is slow on tiny blocks.
constexpr std::size_t small_classes = 22;
constexpr std::size_t small_cached_max = std::size_t(64) << 20;

struct SizeClass {
    std::size_t index, bytes;
};

SizeClass size_class(std::size_t bytes)   // bytes < large_block
{
    if (bytes <= 64) return {0, 64};
    if (bytes <= 128) return {1, 128};
    const auto b = static_cast<std::size_t>(std::bit_width(bytes - 1));   // 2^(b-1) < bytes <= 2^b, b >= 8
    const std::size_t high = std::size_t(1) << b, mid = high / 4 * 3;
    return bytes <= mid ? SizeClass{2 * (b - 8) + 2, mid} : SizeClass{2 * (b - 8) + 3, high};
}

struct SmallCache {
    std::mutex mutex;
    std::array<std::vector<void*>, small_classes> free_blocks;
    std::size_t cached_bytes = 0;
};

SmallCache& small_cache()
{
    static SmallCache* the_cache = new SmallCache;   // never destroyed, as cache()
    return *the_cache;
}

void* allocate_small(std::size_t bytes)
{
    const SizeClass c = size_class(bytes);
    {
        SmallCache& sc = small_cache();
        std::lock_guard<std::mutex> lock(sc.mutex);
        std::vector<void*>& blocks = sc.free_blocks[c.index];
        if (!blocks.empty()) {
            void* block = blocks.back();
            blocks.pop_back();
            sc.cached_bytes -= c.bytes;
            return block;
        }
    }
    void* block = std::aligned_alloc(alignment, c.bytes);
    if (block == nullptr) throw StorageExhausted(bytes);
    return block;
}

void free_small(void* block, std::size_t bytes) noexcept
{
    const SizeClass c = size_class(bytes);
    SmallCache& sc = small_cache();
    {
        std::lock_guard<std::mutex> lock(sc.mutex);
        if (sc.cached_bytes + c.bytes <= small_cached_max) {
            try {
                sc.free_blocks[c.index].push_back(block);
                sc.cached_bytes += c.bytes;
                return;
            } catch (const std::bad_alloc&) {   // no room to remember it: give it back instead
            }
        }
    }
    std::free(block);
}

// ---- large blocks ------------------------------------------------------------------------------------------
void* allocate_block(std::size_t bytes)
{
    if (bytes > SIZE_MAX - page) throw StorageExhausted(bytes);   // rounding it up below would wrap around
    if (!cache_blocks) {
        void* block = std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
        if (block == nullptr && bytes != 0) throw StorageExhausted(bytes);
        return block;
    }
    if (bytes < large_block) return allocate_small(bytes);
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

void throw_too_many_elements(std::size_t n, std::size_t element_bytes) { throw TooManyElements(n, element_bytes); }

void* allocate_storage(std::size_t bytes)
{
    void* block = allocate_block(bytes);   // throws std::bad_alloc, counting nothing
    const std::size_t live = live_bytes.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    std::size_t peak = peak_bytes.load(std::memory_order_relaxed);
    while (live > peak && !peak_bytes.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
    }
    return block;
}

void free_storage(void* block, std::size_t bytes) noexcept
{
    if (block == nullptr) return;
    live_bytes.fetch_sub(bytes, std::memory_order_relaxed);
    if (!cache_blocks) {
        std::free(block);
        return;
    }
    if (bytes < large_block) {
        free_small(block, bytes);
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
std::size_t peak_storage_bytes() { return peak_bytes.load(std::memory_order_relaxed); }
void reset_peak_storage_bytes() { peak_bytes.store(live_bytes.load(std::memory_order_relaxed), std::memory_order_relaxed); }

std::size_t cached_storage_bytes()
{
    std::size_t bytes = 0;
    {
        Cache& c = cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        bytes += c.cached_bytes;
    }
    SmallCache& sc = small_cache();
    std::lock_guard<std::mutex> lock(sc.mutex);
    return bytes + sc.cached_bytes;
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
    SmallCache& sc = small_cache();
    std::lock_guard<std::mutex> small_lock(sc.mutex);
    for (auto& blocks : sc.free_blocks) {
        for (void* block : blocks) std::free(block);
        blocks.clear();
    }
    sc.cached_bytes = 0;
}

}  // namespace xgrad
