// Memory: the graph is freed by backward(), and a long training run keeps a flat resident set.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>

#include "xgrad.h"

using namespace xgrad;

namespace {

std::size_t resident_bytes()   // from /proc/self/statm: pages resident
{
    std::ifstream statm("/proc/self/statm");
    std::size_t total = 0, resident = 0;
    statm >> total >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

TEST_CASE("backward frees the graph: intermediate results die with their last handle")
{
    Tensor w = randn({4, 4}, true);
    Tensor loss;
    std::weak_ptr<Node> intermediate;
    {
        Tensor h = tanh(matmul(w, w));
        intermediate = h.impl();
        loss = sum(h * h);
    }
    CHECK_FALSE(intermediate.expired());   // the loss's graph still holds it
    loss.backward();
    CHECK(intermediate.expired());         // freed by backward, though `loss` is still alive
    CHECK(w.grad().defined());
}

TEST_CASE("10,000 training steps of the toy model keep the resident set flat after warm-up")
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
    const std::size_t after_warmup = resident_bytes();
    for (int i = 0; i < 9500; ++i) step();
    const std::size_t at_end = resident_bytes();
    INFO("resident after warm-up " << after_warmup / 1024 << " KiB, after 10,000 steps " << at_end / 1024 << " KiB");
    CHECK(at_end <= after_warmup + 1024 * 1024);   // within 1 MiB: a leak of one (B, T, C) array per step would be 625 MiB
}
