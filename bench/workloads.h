// The benchmark workloads, defined once for both sides: shapes and data come from here, so xgrad
// and libtorch run the same work on the same numbers.
#pragma once

#include <cstdint>
#include <vector>

#include "xgrad.h"

namespace workloads {

struct EmbeddingSizes {
    std::size_t vocab, positions, channels, batch, time;
};
inline const EmbeddingSizes w1 = {65, 64, 64, 32, 64};          // the seed
inline const EmbeddingSizes w2 = {50257, 1024, 768, 8, 1024};   // GPT-2 sized tables

// Random ids in [0, vocab) of shape (batch, time), from a fixed seed.
inline xgrad::IdArray random_ids(std::size_t vocab, std::size_t batch, std::size_t time, std::uint64_t seed)
{
    xgrad::Generator rng(seed);
    xgrad::IdArray ids(xgrad::Shape{batch, time});
    for (auto& id : ids) id = static_cast<std::int64_t>(rng.below(vocab));
    return ids;
}

inline xgrad::Array random_array(const xgrad::Shape& shape, std::uint64_t seed)
{
    xgrad::Generator rng(seed);
    xgrad::Array a(shape);
    rng.normal_(a);
    return a;
}

// W4 and W5: a language-model step. W4: tok + pos -> Linear(C, V); W5 adds Linear(C, 4C), GELU,
// Linear(4C, C) with a residual, and its head is Linear(C, V).
struct LmSizes {
    std::size_t vocab, channels, hidden, batch, time;
};
inline const LmSizes w4 = {65, 64, 0, 32, 64};

// W6: the attention core, fwd + bwd, causal: q, k, v (B, nh, T, hs)
struct AttentionSizes {
    std::size_t batch, heads, time, head_size;
};
inline const AttentionSizes w6 = {16, 8, 256, 32};

// W7: one training step of nanoGPT's CPU recipe (examples/train_gpt): V 96, n_layer 4, n_head 4,
// n_embd 128, block_size 64, batch 12, AdamW, clip 1.0. W7L: the same model at T 128, B 32.
struct GptSizes {
    std::size_t vocab, layers, heads, channels, time, batch;
};
inline const GptSizes w7 = {96, 4, 4, 128, 64, 12};
inline const GptSizes w7l = {96, 4, 4, 128, 128, 32};
inline const LmSizes w5 = {256, 256, 1024, 16, 256};

}  // namespace workloads
