// The seed's model: token + position embeddings, an optional small MLP block, and a linear head.
//
//   x (B, T) -> tok_emb(x) + pos_emb(arange(T))        (B, T, C)
//            -> h + fc2(gelu(fc1(h)))                   (B, T, C), only with --hidden
//            -> lm_head                                 (B, T, V) logits for the next token
#pragma once

#include <xtensor/xbuilder.hpp>

#include "xgrad.h"

struct TinyLM : xgrad::nn::Module {
    // init_std: the embeddings start as N(0, init_std^2). GPT-2 and nanoGPT use 0.02 rather than
    // nn.Embedding's N(0, 1), so that what training writes into them is not drowned by the start.
    // sparse: the embeddings' gradients are row-sparse (nn.Embedding(sparse=True)).
    TinyLM(std::size_t vocab_size, std::size_t n_embd, std::size_t block_size, std::size_t hidden, float init_std,
           bool sparse = false)
    {
        using namespace xgrad::nn;
        tok_emb = register_module("tok_emb", std::make_shared<Embedding>(vocab_size, n_embd, EmbeddingOptions().sparse(sparse)));
        pos_emb = register_module("pos_emb", std::make_shared<Embedding>(block_size, n_embd,
                                                                          EmbeddingOptions().position_table(true).sparse(sparse)));
        if (hidden > 0) {
            fc1 = register_module("fc1", std::make_shared<Linear>(n_embd, hidden));
            act = register_module("act", std::make_shared<GELU>("tanh"));
            fc2 = register_module("fc2", std::make_shared<Linear>(hidden, n_embd));
        }
        lm_head = register_module("lm_head", std::make_shared<Linear>(n_embd, vocab_size));
        xgrad::NoGradGuard no_grad;   // the init writes are not part of the model
        tok_emb->weight.normal_(0.0f, init_std);
        pos_emb->weight.normal_(0.0f, init_std);
    }

    // x (B, T) -> logits (B, T, V)
    xgrad::Tensor forward(const xgrad::IdArray& x) const
    {
        const auto T = static_cast<std::int64_t>(x.shape()[1]);
        xgrad::Tensor h = tok_emb->forward(x) + pos_emb->forward(xt::arange<std::int64_t>(T));   // (B, T, C)
        if (fc1) h = h + fc2->forward(act->forward(fc1->forward(h)));                                   // residual MLP
        return lm_head->forward(h);
    }

    std::string describe() const override { return "TinyLM"; }

    std::shared_ptr<xgrad::nn::Embedding> tok_emb, pos_emb;
    std::shared_ptr<xgrad::nn::Linear> fc1, fc2, lm_head;
    std::shared_ptr<xgrad::nn::GELU> act;
};
