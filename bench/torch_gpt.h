// The libtorch side of the GPT workloads (W7, W7L): nanoGPT's model.py with its slow attention path
// (all libtorch 1.13 has on CPU for training), the xgrad model's weights copied in by name. Shared by
// bench_compare and lm_run_torch; only built where libtorch-dev is installed.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "train_gpt/model.h"
#include "workloads.h"
#include "xgrad.h"

inline torch::Tensor to_torch(const xgrad::Array& a)
{
    std::vector<int64_t> sizes(a.shape().begin(), a.shape().end());
    return torch::from_blob(const_cast<float*>(a.data()), sizes, torch::kFloat32).clone();
}
inline torch::Tensor to_torch(const xgrad::IdArray& a)
{
    std::vector<int64_t> sizes(a.shape().begin(), a.shape().end());
    return torch::from_blob(const_cast<std::int64_t*>(a.data()), sizes, torch::kInt64).clone();
}

// nanoGPT's model.py with its slow attention path (all libtorch 1.13 has on CPU for training), the
// xgrad model's weights copied in by name.
struct TBlockImpl : torch::nn::Module {
    TBlockImpl(std::size_t C, std::size_t nh) : heads(static_cast<std::int64_t>(nh))
    {
        const auto c = static_cast<std::int64_t>(C);
        ln_1 = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
        c_attn = register_module("c_attn", torch::nn::Linear(c, 3 * c));
        attn_proj = register_module("c_proj", torch::nn::Linear(c, c));
        ln_2 = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
        c_fc = register_module("c_fc", torch::nn::Linear(c, 4 * c));
        mlp_proj = register_module("mlp_c_proj", torch::nn::Linear(4 * c, c));
    }
    torch::Tensor forward(torch::Tensor x, const torch::Tensor& mask)
    {
        const auto B = x.size(0), T = x.size(1), C = x.size(2);
        auto qkv = c_attn(ln_1(x)).split(C, 2);
        auto heads_of = [&](const torch::Tensor& t) { return t.view({B, T, heads, C / heads}).transpose(1, 2); };
        auto q = heads_of(qkv[0]), k = heads_of(qkv[1]), v = heads_of(qkv[2]);
        auto att = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(C / heads)));
        att = torch::softmax(att.masked_fill(mask.slice(0, 0, T).slice(1, 0, T) == 0, -INFINITY), -1);
        x = x + attn_proj(torch::matmul(att, v).transpose(1, 2).contiguous().view({B, T, C}));
        return x + mlp_proj(torch::gelu(c_fc(ln_2(x))));
    }
    std::int64_t heads;
    torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
    torch::nn::Linear c_attn{nullptr}, attn_proj{nullptr}, c_fc{nullptr}, mlp_proj{nullptr};
};
TORCH_MODULE(TBlock);

struct TGptImpl : torch::nn::Module {
    TGptImpl(const Gpt& x, const workloads::GptSizes& s)
    {
        const auto C = static_cast<std::int64_t>(s.channels);
        wte = register_module("wte", torch::nn::Embedding(static_cast<std::int64_t>(s.vocab), C));
        wpe = register_module("wpe", torch::nn::Embedding(static_cast<std::int64_t>(s.time), C));
        for (std::size_t i = 0; i < s.layers; ++i) blocks.push_back(register_module("h" + std::to_string(i), TBlock(s.channels, s.heads)));
        ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C})));
        mask = torch::ones({static_cast<std::int64_t>(s.time), static_cast<std::int64_t>(s.time)}).tril();
        torch::NoGradGuard no_grad;                    // xgrad's initial weights, by name
        auto named = x.named_parameters();
        auto take = [&](const std::string& name, torch::Tensor t) {
            for (auto& [n, p] : named) {
                if (n == name) return t.copy_(to_torch(p.to_array()));
            }
            throw std::runtime_error("W7: no xgrad parameter " + name);
        };
        take("wte.weight", wte->weight), take("wpe.weight", wpe->weight);
        take("ln_f.weight", ln_f->weight), take("ln_f.bias", ln_f->bias);
        for (std::size_t i = 0; i < s.layers; ++i) {
            const std::string h = "h." + std::to_string(i) + ".";
            auto& b = blocks[i];
            take(h + "ln_1.weight", b->ln_1->weight), take(h + "ln_1.bias", b->ln_1->bias);
            take(h + "attn.c_attn.weight", b->c_attn->weight), take(h + "attn.c_attn.bias", b->c_attn->bias);
            take(h + "attn.c_proj.weight", b->attn_proj->weight), take(h + "attn.c_proj.bias", b->attn_proj->bias);
            take(h + "ln_2.weight", b->ln_2->weight), take(h + "ln_2.bias", b->ln_2->bias);
            take(h + "mlp.c_fc.weight", b->c_fc->weight), take(h + "mlp.c_fc.bias", b->c_fc->bias);
            take(h + "mlp.c_proj.weight", b->mlp_proj->weight), take(h + "mlp.c_proj.bias", b->mlp_proj->bias);
        }
    }
    torch::Tensor loss(const torch::Tensor& idx, const torch::Tensor& targets)
    {
        const auto T = idx.size(1);
        auto x = wte(idx) + wpe(torch::arange(T));
        for (auto& b : blocks) x = b->forward(x, mask);
        auto logits = torch::matmul(ln_f(x), wte->weight.t());   // tied head
        return torch::nn::functional::cross_entropy(logits.view({-1, logits.size(-1)}), targets.view({-1}));
    }
    torch::nn::Embedding wte{nullptr}, wpe{nullptr};
    std::vector<TBlock> blocks;
    torch::nn::LayerNorm ln_f{nullptr};
    torch::Tensor mask;
};
TORCH_MODULE(TGpt);
