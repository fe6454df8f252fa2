// Memory: the graph is freed by backward(), and a long training run holds no more memory than after warm-up.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>

#include "core/autograd.h"
#include "xgrad.h"

#if defined(__SANITIZE_ADDRESS__)
// From the sanitizer runtime (declared here: GCC ships no <sanitizer/allocator_interface.h>).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

using namespace xgrad;

namespace {

// The memory a run holds. Normally the resident set (/proc/self/statm). Under AddressSanitizer freed
// blocks wait in a quarantine of up to 256 MiB that grows the resident set by design, so there the
// measure is the heap bytes still allocated, which a leak grows just the same.
std::size_t held_bytes()
{
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    std::ifstream statm("/proc/self/statm");
    std::size_t total = 0, resident = 0;
    statm >> total >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
#endif
}

long minor_page_faults()   // this process's, so far
{
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
}

}  // namespace

TEST_CASE("backward frees the graph: intermediate results die with their last handle")
{
    Tensor w = randn({4, 4}, true);
    Tensor loss;
    std::weak_ptr<const void> intermediate;
    {
        Tensor h = tanh(matmul(w, w));
        intermediate = h.weak_ref();
        loss = sum(h * h);
    }
    CHECK_FALSE(intermediate.expired());   // the loss's graph still holds it
    loss.backward();
    CHECK(intermediate.expired());         // freed by backward, though `loss` is still alive
    CHECK(w.grad().defined());
}

TEST_CASE("10,000 training steps of the toy model hold no more memory than after warm-up")
{
    manual_seed(3);
    const std::size_t V = 65, C = 64, B = 8, T = 32;
    nn::Embedding tok(V, C), pos(T, C);
    nn::Linear head(C, V);
    optim::Adam adam({tok.weight, pos.weight, head.weight, head.bias}, optim::AdamOptions().lr(1e-3));
    Generator rng(5);
    IdArray x(Shape{B, T}), y(Shape{B, T});
    const IdArray positions = xt::arange<std::int64_t>(static_cast<std::int64_t>(T));
    auto step = [&] {
        for (auto& id : x) id = static_cast<std::int64_t>(rng.below(V));
        for (auto& id : y) id = static_cast<std::int64_t>(rng.below(V));
        adam.zero_grad();
        Tensor loss = nn::functional::cross_entropy(head.forward(tok.forward(x) + pos.forward(positions)), y);
        loss.backward();
        adam.step();
    };
    for (int i = 0; i < 500; ++i) step();     // warm-up: optimizer state, allocator pools
    const std::size_t after_warmup = held_bytes();
    for (int i = 0; i < 9500; ++i) step();
    const std::size_t at_end = held_bytes();
    INFO("held after warm-up " << after_warmup / 1024 << " KiB, after 10,000 steps " << at_end / 1024 << " KiB");
    CHECK(at_end <= after_warmup + 1024 * 1024);   // within 1 MiB: a leak of one (B, T, C) array per step would be 625 MiB
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool large_blocks_cached = false;   // storage.cpp hands every block to the sanitizer's malloc
constexpr bool small_blocks_cached = false;
#else
constexpr bool large_blocks_cached = true;
constexpr bool small_blocks_cached = true;
#endif

TEST_CASE("peak_storage_bytes holds the most that was alive at once until reset_peak_storage_bytes")
{
    reset_peak_storage_bytes();
    const std::size_t before = live_storage_bytes();
    CHECK(peak_storage_bytes() == before);
    {
        const Array a = xt::zeros<float>(Shape{1000});
        const Array b = xt::zeros<float>(Shape{3000});
    }
    const Array c = xt::zeros<float>(Shape{500});
    CHECK(live_storage_bytes() == before + 500 * sizeof(float));
    CHECK(peak_storage_bytes() == before + 4000 * sizeof(float));   // a and b together, not c
    reset_peak_storage_bytes();
    CHECK(peak_storage_bytes() == before + 500 * sizeof(float));
}

TEST_CASE("views, slices, detach and .data of a 64 MiB tensor allocate nothing; writes through them land in it")
{
    Tensor x = zeros({4096, 4096}, /*requires_grad=*/true);   // 64 MiB
    const std::size_t before = live_storage_bytes();
    reset_peak_storage_bytes();
    {
        Tensor v = x.view({-1});
        Tensor t = x.transpose(0, 1);
        Tensor m = x.mT();
        Tensor s = x.slice(0, 1, 4000, 3).slice(1, 7);
        Tensor r = x.select(1, 5).unsqueeze(0).expand({8, 4096});
        Tensor n = x.narrow(0, 100, 50).flatten();
        Tensor d = x.detach();
        Tensor data = x.variable_data();
        auto pieces = x.chunk(4, 1);
        CHECK(t.shares_storage(x));
        CHECK(s.storage_offset() == 4096 + 7);
        {
            NoGradGuard no_grad;
            d.select(0, 2).fill_(1.0f);          // through the detached view
            data.select(0, 3).narrow(0, 0, 2).fill_(2.0f);
        }
    }
    CHECK(peak_storage_bytes() == before);   // not one byte: every one of them was a view
    CHECK(x.select(0, 2).select(0, 9).item() == 1.0f);
    CHECK(x.select(0, 3).select(0, 1).item() == 2.0f);
}

TEST_CASE("a freed large array is kept and handed out again for the same size")
{
    empty_cache();
    REQUIRE(cached_storage_bytes() == 0);
    const Shape shape{1024, 1024};   // 4 MiB
    const float* first = nullptr;
    {
        Array a(shape);
        first = a.data();
    }
    CHECK(cached_storage_bytes() == (large_blocks_cached ? 4u << 20 : 0u));
    {
        Array b(shape);
        CHECK((b.data() == first) == large_blocks_cached);   // the same block, not a fresh mapping
        CHECK(cached_storage_bytes() == 0);
    }
    CHECK(cached_storage_bytes() == (large_blocks_cached ? 4u << 20 : 0u));
    empty_cache();
    CHECK(cached_storage_bytes() == 0);
}

TEST_CASE("a freed small array is kept by size class and handed out again for any size of its class")
{
    empty_cache();
    const float* first = nullptr;
    {
        Array a(Shape{1000});   // 4,000 bytes: the 4 KiB class
        first = a.data();
        CHECK(reinterpret_cast<std::uintptr_t>(first) % 64 == 0);
    }
    CHECK(cached_storage_bytes() == (small_blocks_cached ? 4096u : 0u));
    {
        Array b(Shape{900});    // 3,600 bytes: the same class (3 KiB < 3,600 <= 4 KiB)
        CHECK((b.data() == first) == small_blocks_cached);
        CHECK(cached_storage_bytes() == 0);
        Array c(Shape{700});    // 2,800 bytes: the 3 KiB class, a block of its own
        CHECK(c.data() != first);
    }
    CHECK(cached_storage_bytes() == (small_blocks_cached ? 4096u + 3072u : 0u));
    empty_cache();
    CHECK(cached_storage_bytes() == 0);
}

TEST_CASE("the small-block cache holds at most 64 MiB")
{
    empty_cache();
    {
        std::vector<Array> held;
        for (int i = 0; i < 1200; ++i) held.emplace_back(Shape{16 * 1024});   // 64 KiB each, 75 MiB in all
    }
    CHECK(cached_storage_bytes() == (small_blocks_cached ? std::size_t(64) << 20 : 0u));
    empty_cache();
    CHECK(cached_storage_bytes() == 0);
}

// Not under AddressSanitizer, whose allocator maps and poisons blocks its own way (tests/CMakeLists.txt
// lists it there as skipped).
#if !defined(__SANITIZE_ADDRESS__)
TEST_CASE("a steady-state step over small arrays grows and trims no heap")
{
    // A small attention step: its score blocks (64 KiB), its (4, 64, 64) activations and LayerNorm's
    // row statistics are all below 128 KiB. Without the small-block cache glibc trimmed and regrew its
    // heap through every step (about 500 times per W7 step), each regrowth faulting in fresh pages:
    // 2,108 faults in these 20 steps.
    manual_seed(5);
    nn::CausalSelfAttention attn(nn::TransformerOptions().n_embd(64).n_head(4));
    nn::LayerNorm ln(64);
    Tensor x = randn({4, 64, 64});
    auto step = [&] {
        attn.zero_grad();
        sum(attn.forward(ln.forward(x))).backward();
    };
    for (int i = 0; i < 3; ++i) step();
    const long before = minor_page_faults();
    for (int i = 0; i < 20; ++i) step();
    const long faults = minor_page_faults() - before;
    INFO(faults << " minor page faults in 20 steps");
    CHECK(faults < 20);
}
#endif

// Not under AddressSanitizer, whose allocator maps and poisons blocks its own way (tests/CMakeLists.txt
// lists it there as skipped).
#if !defined(__SANITIZE_ADDRESS__)
TEST_CASE("a steady-state step over large arrays takes almost no page faults")
{
    // An MLP step with (2048, 512) activations: 4 MiB arrays, which the storage cache keeps from
    // being fresh mappings (xgrad leaves glibc's settings alone).
    manual_seed(4);
    nn::Linear fc1(512, 512), fc2(512, 512);
    optim::Adam adam({fc1.weight, fc1.bias, fc2.weight, fc2.bias});
    Tensor x = randn({2048, 512});
    auto step = [&] {
        adam.zero_grad();
        Tensor loss = sum(fc2.forward(gelu(fc1.forward(x), "tanh")));
        loss.backward();
        adam.step();
    };
    for (int i = 0; i < 3; ++i) step();
    const long before = minor_page_faults();
    for (int i = 0; i < 10; ++i) step();
    const long per_step = (minor_page_faults() - before) / 10;
    INFO(per_step << " minor page faults per step (a fresh 4 MiB array alone takes 1,024)");
    CHECK(per_step < 64);
}
#endif

TEST_CASE("the storage cache stays bounded when every step frees a new size")
{
    // Like generating text one token longer each step: no freed size is ever asked for again.
    empty_cache();
    for (std::size_t i = 0; i < 700; ++i) {
        Array a(Shape{(std::size_t(1) << 18) + i * 1024});   // 1 MiB + i pages, never touched
    }
    CHECK(cached_storage_bytes() <= (std::size_t(512) << 20));
    CHECK((cached_storage_bytes() > (std::size_t(500) << 20)) == large_blocks_cached);
    const std::size_t before = cached_storage_bytes();
    {
        const std::size_t floats = (std::size_t(1) << 18) + 699 * 1024;   // freed last: kept, so reused
        Array newest(Shape{floats});
        CHECK(cached_storage_bytes() == (large_blocks_cached ? before - floats * sizeof(float) : 0));
    }
    empty_cache();
}

// Not under AddressSanitizer, whose allocator stops the process on a request this size instead of failing it
// (tests/CMakeLists.txt lists it there as skipped).
#if !defined(__SANITIZE_ADDRESS__)
TEST_CASE("an allocation the system refuses is a std::bad_alloc that says how much was asked for")
{
    try {
        Tensor t = zeros({std::size_t(1) << 60});   // 4 EiB: refused at once, nothing is touched
        FAIL("allocated 4 EiB");
    } catch (const std::bad_alloc& e) {
        CHECK_THAT(e.what(), Catch::Matchers::Contains("storage: cannot allocate 4.61e+09 GB for an array"));
    }
}

TEST_CASE("an allocation refused inside an op names the op, and its backward")
{
    const Tensor column = ones({std::size_t(1) << 21, 1}), row = ones({1, std::size_t(1) << 21});   // 8 MiB each
    try {
        Tensor outer = matmul(column, row);   // (2^21, 2^21): 16 TiB
        FAIL("allocated 16 TiB");
    } catch (const std::bad_alloc& e) {
        CHECK_THAT(e.what(), Catch::Matchers::Contains("cannot allocate 1.76e+04 GB for an array in 'matmul' ("));
    }
    // an op whose backward asks for too much
    const Tensor x = ones({2}, true);
    Tensor y = from_op(Array(x.to_array()), {x}, "greedy", [](GradOutput&) { Array huge(Shape{std::size_t(1) << 60}); });
    try {
        sum(y).backward();
        FAIL("allocated 4 EiB");
    } catch (const std::bad_alloc& e) {
        CHECK_THAT(e.what(), Catch::Matchers::Contains("for an array in 'greedy''s backward ("));
    }
}
#endif

TEST_CASE("an array whose bytes a size_t cannot count is refused naming its element count, not a bare std::bad_array_new_length")
{
    try {
        nn::Linear huge(std::size_t(1) << 31, std::size_t(1) << 31);   // 2^62 floats: 2^64 bytes
        FAIL("made a Linear of 2^62 weights");
    } catch (const std::bad_array_new_length& e) {
        CHECK_THAT(e.what(), Catch::Matchers::Contains("cannot allocate an array of 4611686018427387904 elements of 4 bytes") &&
                                 Catch::Matchers::Contains("more than this machine can address"));
    }
}
