// A character-level GPT as nanoGPT's model.py writes it: token + position embeddings, n_layer
// transformer blocks, a final LayerNorm, and an LM head that is the token embedding itself (weight
// tying: one (V, C) table, trained by both the scatter-add and the head's product, saved once).
//
//     idx (B, T) -> wte(idx) + wpe(arange(T)) -> h.0 ... h.{n_layer-1} -> ln_f -> @ wte^T -> logits (B, T, V)
#pragma once

#include <cmath>
#include <optional>
#include <vector>

#include "xgrad.h"

struct GptConfig {
    std::size_t vocab = 0, block_size = 64, n_layer = 4, n_head = 4, n_embd = 128;
    float dropout = 0.0f;
};

class Gpt : public xgrad::nn::Module {
public:
    explicit Gpt(const GptConfig& c) : config(c)
    {
        using namespace xgrad;
        wte = register_module("wte", std::make_shared<nn::Embedding>(c.vocab, c.n_embd));
        wpe = register_module("wpe", std::make_shared<nn::Embedding>(c.block_size, c.n_embd,
                                                                     nn::EmbeddingOptions().position_table(true)));
        drop = register_module("drop", std::make_shared<nn::Dropout>(c.dropout));
        h = register_module("h", std::make_shared<nn::ModuleList>());
        for (std::size_t i = 0; i < c.n_layer; ++i) {
            h->push_back(std::make_shared<nn::TransformerBlock>(
                nn::TransformerOptions().n_embd(c.n_embd).n_head(c.n_head).dropout(c.dropout)));
        }
        ln_f = register_module("ln_f", std::make_shared<nn::LayerNorm>(c.n_embd));
        // nanoGPT's init: N(0, 0.02) for every Linear and Embedding weight, zero biases, and the
        // residual projections (c_proj) scaled down by sqrt(2 n_layer), "per GPT-2 paper"
        const float residual_std = 0.02f / std::sqrt(2.0f * static_cast<float>(c.n_layer));
        xgrad::NoGradGuard no_grad;   // the init writes are not part of the model
        for (auto& [name, p] : named_parameters()) {
            if (name.starts_with("ln") || name.find(".ln_") != std::string::npos) continue;   // LayerNorms keep 1 and 0
            if (name.ends_with(".bias")) p.zero_();
            else p.normal_(0.0f, name.ends_with("c_proj.weight") ? residual_std : 0.02f);
        }
    }

    xgrad::Tensor forward(const xgrad::IdArray& idx) const   // (B, T) -> logits (B, T, V)
    {
        using namespace xgrad;
        const std::size_t T = idx.shape()[1];
        Tensor x = drop->forward(wte->forward(idx) + wpe->forward(xt::arange<std::int64_t>(static_cast<std::int64_t>(T))));
        for (std::size_t i = 0; i < h->size(); ++i) x = h->at<nn::TransformerBlock>(i)->forward(x);
        return linear(ln_f->forward(x), wte->weight);       // the tied head: x @ wte^T
    }

    // The next position's logits (V) with every earlier position in `cache` (one KVCache per layer),
    // which it extends: the same logits as forward() on the whole prefix, without recomputing it.
    xgrad::Tensor next_logits(std::int64_t token, std::vector<xgrad::nn::KVCache>& cache) const
    {
        using namespace xgrad;
        const auto position = static_cast<std::int64_t>(cache.empty() ? 0 : cache[0].length());
        IdArray idx(Shape{1, 1}), pos(Shape{1});
        idx(0, 0) = token, pos(0) = position;
        Tensor x = wte->forward(idx) + wpe->forward(pos);                  // (1, 1, C)
        cache.resize(h->size());
        for (std::size_t i = 0; i < h->size(); ++i) x = h->at<nn::TransformerBlock>(i)->forward(x, cache[i]);
        return reshape(linear(ln_f->forward(x), wte->weight), {-1});
    }

    // nanoGPT's generate: logits / temperature, only the top_k largest kept, then a draw from the
    // softmax; the context is the last block_size tokens (the cache starts again from the last
    // block_size / 2 when it is full).
    std::vector<std::int64_t> generate(std::vector<std::int64_t> tokens, std::size_t max_new_tokens, float temperature,
                                       std::optional<std::size_t> top_k, xgrad::Generator& rng) const
    {
        using namespace xgrad;
        XGRAD_CHECK(!tokens.empty(), "generate: the prompt is empty; give at least one character");
        XGRAD_CHECK(temperature > 0.0f && std::isfinite(temperature), "generate: temperature must be positive, got ", temperature);
        XGRAD_CHECK(!top_k || *top_k >= 1, "generate: top_k must be at least 1, got ", top_k.value_or(0));
        NoGradGuard no_grad;
        std::vector<nn::KVCache> cache;
        auto prime = [&](std::size_t from) {
            cache.clear();
            Tensor logits;
            for (std::size_t i = from; i < tokens.size(); ++i) logits = next_logits(tokens[i], cache);
            return logits;
        };
        Tensor logits = prime(tokens.size() > config.block_size ? tokens.size() - config.block_size : 0);
        for (std::size_t n = 0; n < max_new_tokens; ++n) {
            const xgrad::Values values = logits.values();
            std::vector<float> p(values.begin(), values.end());
            for (float& v : p) v /= temperature;
            if (top_k && *top_k < p.size()) {
                std::vector<float> sorted = p;
                std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(*top_k - 1), sorted.end(),
                                 std::greater<>());
                const float kth = sorted[*top_k - 1];
                for (float& v : p) v = v < kth ? -INFINITY : v;  // logits[logits < v[:, [-1]]] = -inf
            }
            const float best = *std::max_element(p.begin(), p.end());
            double total = 0;
            for (float& v : p) total += (v = std::exp(v - best));
            double u = rng.uniform() * total;                   // multinomial(softmax(p), 1)
            std::size_t next = 0;
            while (next + 1 < p.size() && (u -= p[next]) >= 0) ++next;
            tokens.push_back(static_cast<std::int64_t>(next));
            if (cache[0].length() == config.block_size) logits = prime(tokens.size() - config.block_size / 2);
            else logits = next_logits(tokens.back(), cache);
        }
        return tokens;
    }

    GptConfig config;
    std::shared_ptr<xgrad::nn::Embedding> wte, wpe;
    std::shared_ptr<xgrad::nn::Dropout> drop;
    std::shared_ptr<xgrad::nn::ModuleList> h;
    std::shared_ptr<xgrad::nn::LayerNorm> ln_f;
};
