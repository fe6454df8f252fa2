// Attention modules over scaled_dot_product_attention (core/attention.cpp), and the transformer block.
#include "nn/attention.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <tuple>

#include "core/check.h"
#include "core/random.h"

namespace xgrad::nn {

namespace {

constexpr float minus_infinity = -std::numeric_limits<float>::infinity();

// x (B, T, nh * hs) -> (B, nh, T, hs): the heads side by side become a batch axis; a view, no copy
Tensor split_heads(const Tensor& x, std::size_t heads)
{
    const Shape s = x.shape();
    const auto B = static_cast<std::ptrdiff_t>(s[0]), T = static_cast<std::ptrdiff_t>(s[1]);
    const auto hs = static_cast<std::ptrdiff_t>(s[2] / heads);
    return x.view({B, T, static_cast<std::ptrdiff_t>(heads), hs}).transpose(1, 2);
}

// y (B, nh, T, hs) -> (B, T, nh * hs): one copy, as y.transpose(1, 2).contiguous().view(B, T, C)
Tensor merge_heads(const Tensor& y)
{
    const Shape s = y.shape();
    return y.transpose(1, 2).contiguous().view({static_cast<std::ptrdiff_t>(s[0]), static_cast<std::ptrdiff_t>(s[2]),
                                                static_cast<std::ptrdiff_t>(s[1] * s[3])});
}

// softmax(scale q k^T + mask) over the last axis, q (..., L, E), k (..., S, E): the weights themselves,
// for the paths that must return or show them
Tensor attention_weights_of(const Tensor& q, const Tensor& k, const Tensor& float_mask, bool causal)
{
    const float scale = 1.0f / std::sqrt(static_cast<float>(q.shape().back()));
    Tensor scores = matmul(q, transpose(k, -2, -1)) * scale;           // (..., L, S)
    if (float_mask.defined()) scores = std::move(scores) + float_mask;
    if (causal) {
        const std::size_t L = q.shape()[q.dim() - 2], S = k.shape()[k.dim() - 2];
        scores = masked_fill(scores, logical_not(causal_mask(L, S)), minus_infinity);   // the keys after each query
    }
    return softmax(scores);
}

std::string module_name(const std::string& kind, const std::string& name)
{
    return name.empty() ? kind : kind + " '" + name + "'";
}

}  // namespace

// ---- Dropout, GELU --------------------------------------------------------------------------------------
Dropout::Dropout(float p) : p_(p)
{
    XGRAD_CHECK(p >= 0.0f && p < 1.0f, "nn::Dropout: p must be in [0, 1), got ", p);
}

std::string Dropout::describe() const
{
    std::ostringstream out;
    out << "Dropout(p=" << p_ << ")";
    return out.str();
}

GELU::GELU(std::string approximate) : approximate_(std::move(approximate))
{
    XGRAD_CHECK(approximate_ == "none" || approximate_ == "tanh", "nn::GELU: approximate must be \"none\" or \"tanh\", got \"",
                approximate_, "\"");
}

// ---- MultiheadAttention ----------------------------------------------------------------------------------
MultiheadAttention::MultiheadAttention(std::size_t embed_dim, std::size_t num_heads, MultiheadAttentionOptions options)
    : embed_dim_(embed_dim), num_heads_(num_heads), options_(options)
{
    XGRAD_CHECK(embed_dim > 0 && num_heads > 0 && embed_dim % num_heads == 0, "nn::MultiheadAttention: embed_dim ",
                embed_dim, " must be a positive multiple of num_heads ", num_heads);
    XGRAD_CHECK(options.dropout_ >= 0.0f && options.dropout_ < 1.0f, "nn::MultiheadAttention: dropout must be in [0, 1), got ",
                options.dropout_);
    out_proj = register_module("out_proj", std::make_shared<Linear>(embed_dim, embed_dim, options.bias_));
    auto xavier_uniform = [](std::size_t rows, std::size_t cols) {
        const float bound = std::sqrt(6.0f / static_cast<float>(rows + cols));
        Array w(Shape{rows, cols});
        default_generator().uniform_(w, -bound, bound);
        return Tensor(std::move(w));
    };
    const std::size_t kdim = options.kdim_ ? options.kdim_ : embed_dim, vdim = options.vdim_ ? options.vdim_ : embed_dim;
    if (kdim == embed_dim && vdim == embed_dim) {
        in_proj_weight = register_parameter("in_proj_weight", xavier_uniform(3 * embed_dim, embed_dim));
    } else {                                                   // PyTorch's names when the widths differ
        q_proj_weight = register_parameter("q_proj_weight", xavier_uniform(embed_dim, embed_dim));
        k_proj_weight = register_parameter("k_proj_weight", xavier_uniform(embed_dim, kdim));
        v_proj_weight = register_parameter("v_proj_weight", xavier_uniform(embed_dim, vdim));
    }
    if (options.bias_) {
        in_proj_bias = register_parameter("in_proj_bias", zeros({3 * embed_dim}));
        NoGradGuard no_grad;
        out_proj->bias.zero_();
    }
    if (options.add_bias_kv_) {                                // xavier_normal_ of (1, 1, E): std sqrt(1 / E)
        for (auto [name, t] : {std::pair{"bias_k", &bias_k}, std::pair{"bias_v", &bias_v}}) {
            Array b(Shape{1, 1, embed_dim});
            default_generator().normal_(b, 0.0f, std::sqrt(1.0f / static_cast<float>(embed_dim)));
            *t = register_parameter(name, Tensor(std::move(b)));
        }
    }
}

std::pair<Tensor, Tensor> MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                                      const MultiheadAttentionForward& args) const
{
    const std::string who = module_name("nn::MultiheadAttention", name());
    const std::size_t E = embed_dim_, nh = num_heads_;
    const std::size_t kdim = k_proj_weight.defined() ? k_proj_weight.shape()[1] : E;
    const std::size_t vdim = v_proj_weight.defined() ? v_proj_weight.shape()[1] : E;
    for (const auto& [what, t, width, name] : {std::tuple{"query", &query, E, "embed_dim"}, std::tuple{"key", &key, kdim,
                                               kdim == E ? "embed_dim" : "kdim"},
                                               std::tuple{"value", &value, vdim, vdim == E ? "embed_dim" : "vdim"}}) {
        XGRAD_CHECK(t->dim() == 3 && t->shape()[2] == width, who, ": expected ", what, " of shape ",
                    options_.batch_first_ ? "(B, T, " : "(T, B, ", width, ") (", name, " = ", width, "), got ",
                    shape_str(t->shape()));
    }
    // everything below is batch first: (B, L, E)
    const Tensor q_in = options_.batch_first_ ? query : transpose(query, 0, 1);
    const Tensor k_in = options_.batch_first_ ? key : transpose(key, 0, 1);
    const Tensor v_in = options_.batch_first_ ? value : transpose(value, 0, 1);
    const std::size_t B = q_in.shape()[0], L = q_in.shape()[1], S = k_in.shape()[1];
    XGRAD_CHECK(k_in.shape()[0] == B && v_in.shape()[0] == B && v_in.shape()[1] == S, who,
                ": query, key and value must agree on the batch, and key and value on the length: got query ",
                shape_str(query.shape()), ", key ", shape_str(key.shape()), ", value ", shape_str(value.shape()));

    // the masks, as one float mask (0 or -inf, or the caller's floats) broadcast to (B, nh, L, S)
    const auto as_float = [](const Tensor& m) {   // a bool mask's true (masked out) as -inf
        return m.dtype() == kBool ? masked_fill(zeros(m.shape()), m, minus_infinity) : m.detach().to(kFloat32);
    };
    Tensor mask;
    const bool has_attn_mask = args.attn_mask.defined();
    if (has_attn_mask) {
        const Shape ms = args.attn_mask.shape();
        XGRAD_CHECK(ms == Shape({L, S}) || ms == Shape({B * nh, L, S}), who, ": attn_mask must be (L, S) = ",
                    shape_str(Shape{L, S}), " or (B nh, L, S) = ", shape_str(Shape{B * nh, L, S}), ", got ", shape_str(ms));
        mask = as_float(args.attn_mask);
        if (ms.size() == 3) mask = mask.reshape({static_cast<std::ptrdiff_t>(B), static_cast<std::ptrdiff_t>(nh),
                                                 static_cast<std::ptrdiff_t>(L), static_cast<std::ptrdiff_t>(S)});
    }
    if (args.key_padding_mask.defined()) {
        const Shape ps = args.key_padding_mask.shape();
        XGRAD_CHECK(ps == Shape({B, S}), who, ": key_padding_mask must be (B, S) = ", shape_str(Shape{B, S}), ", got ",
                    shape_str(ps));
        const Tensor padding = as_float(args.key_padding_mask).reshape({static_cast<std::ptrdiff_t>(B), 1, 1,
                                                                          static_cast<std::ptrdiff_t>(S)});
        mask = mask.defined() ? mask + padding : padding;
    }
    const bool causal = args.is_causal && !has_attn_mask;   // with a mask, is_causal is only a hint, as PyTorch's
    const std::size_t extra_keys = (bias_k.defined() ? 1 : 0) + (options_.add_zero_attn_ ? 1 : 0);
    XGRAD_CHECK(!causal || extra_keys == 0, who, ": is_causal without an attn_mask cannot place the keys that ",
                "add_bias_kv / add_zero_attn append; pass the causal attn_mask (L, S) instead");
    if (mask.defined() && extra_keys > 0) {                  // the appended keys are never masked
        Shape pad = mask.shape();
        pad.back() = extra_keys;
        mask = concat({mask, zeros(pad)}, static_cast<int>(pad.size()) - 1);
    }

    // in-projection: q, k, v = x W_q^T + b_q, ... with W = in_proj_weight's three (E, E) blocks, or
    // q/k/v_proj_weight
    const std::vector<Tensor> b = in_proj_bias.defined() ? split(in_proj_bias, E, 0) : std::vector<Tensor>(3);
    const std::vector<Tensor> w = in_proj_weight.defined() ? split(in_proj_weight, E, 0)
                                                           : std::vector<Tensor>{q_proj_weight, k_proj_weight, v_proj_weight};
    Tensor k_proj = linear(k_in, w[1], b[1]), v_proj = linear(v_in, w[2], b[2]);   // (B, S, E)
    if (bias_k.defined()) {                                  // (B, S + 1, E): bias_k, bias_v as the last key, value
        k_proj = concat({k_proj, bias_k + zeros({B, 1, E})}, 1);
        v_proj = concat({v_proj, bias_v + zeros({B, 1, E})}, 1);
    }
    const Tensor q = split_heads(linear(q_in, w[0], b[0]), nh);         // (B, nh, L, hs)
    Tensor k = split_heads(k_proj, nh);                                 // (B, nh, S', hs)
    Tensor v = split_heads(v_proj, nh);                                 // (B, nh, S', hs)
    if (options_.add_zero_attn_) {
        k = concat({k, zeros({B, nh, 1, E / nh})}, 2);
        v = concat({v, zeros({B, nh, 1, E / nh})}, 2);
    }
    const float p = is_training() ? options_.dropout_ : 0.0f;

    Tensor y, weights;                                                 // (B, nh, L, hs), (B, nh, L, S)
    if (args.need_weights) {                                           // the weights are the answer: compose
        weights = dropout(attention_weights_of(q, k, mask, causal), p);
        y = matmul(weights, v);
    } else {
        AttentionOptions o = AttentionOptions().dropout_p(p).is_causal(causal);
        if (mask.defined()) o.attn_mask(mask);
        y = scaled_dot_product_attention(q, k, v, o);
    }
    Tensor out = out_proj->forward(merge_heads(y));                    // (B, L, E)
    if (!options_.batch_first_) out = transpose(out, 0, 1);
    if (weights.defined() && args.average_attn_weights) weights = mean(weights, {1});   // (B, L, S)
    return {forward_hooks(std::move(out), query, key, value), weights};   // hooks see the output, not the weights
}

std::string MultiheadAttention::describe() const
{
    std::ostringstream out;
    out << "MultiheadAttention(embed_dim=" << embed_dim_ << ", num_heads=" << num_heads_ << ", dropout=" << options_.dropout_
        << ", bias=" << (options_.bias_ ? "true" : "false") << ", batch_first=" << (options_.batch_first_ ? "true" : "false");
    if (bias_k.defined()) out << ", add_bias_kv=true";
    if (options_.add_zero_attn_) out << ", add_zero_attn=true";
    if (k_proj_weight.defined()) out << ", kdim=" << k_proj_weight.shape()[1] << ", vdim=" << v_proj_weight.shape()[1];
    out << ")";
    return out.str();
}

// ---- CausalSelfAttention ------------------------------------------------------------------------------------
CausalSelfAttention::CausalSelfAttention(const TransformerOptions& o) : n_embd_(o.n_embd_), n_head_(o.n_head_), dropout_(o.dropout_)
{
    XGRAD_CHECK(o.n_embd_ > 0 && o.n_head_ > 0 && o.n_embd_ % o.n_head_ == 0, "nn::CausalSelfAttention: n_embd ", o.n_embd_,
                " must be a positive multiple of n_head ", o.n_head_);
    c_attn = register_module("c_attn", std::make_shared<Linear>(o.n_embd_, 3 * o.n_embd_, o.bias_));
    c_proj = register_module("c_proj", std::make_shared<Linear>(o.n_embd_, o.n_embd_, o.bias_));
    attn_dropout = register_module("attn_dropout", std::make_shared<Dropout>(o.dropout_));
    resid_dropout = register_module("resid_dropout", std::make_shared<Dropout>(o.dropout_));
}

Tensor CausalSelfAttention::forward(const Tensor& x) const
{
    XGRAD_CHECK(x.dim() == 3 && x.shape()[2] == n_embd_, module_name("nn::CausalSelfAttention", name()),
                ": expected x of shape (B, T, ", n_embd_, ") (n_embd = ", n_embd_, "), got ", shape_str(x.shape()));
    // nanoGPT splits c_attn's (B, T, 3C) into q, k, v and each into (B, nh, T, hs) heads; the packed
    // kernel reads the heads where they are and writes (B, T, C), the same values without the copies
    const Tensor y = packed_qkv_attention(c_attn->forward(x), n_head_,
                                          AttentionOptions().is_causal(true).dropout_p(is_training() ? dropout_ : 0.0f));
    return forward_hooks(resid_dropout->forward(c_proj->forward(y)), x);   // (B, T, C)
}

Tensor CausalSelfAttention::forward(const Tensor& x, KVCache& cache) const
{
    XGRAD_CHECK(x.dim() == 3 && x.shape()[1] == 1 && x.shape()[2] == n_embd_, module_name("nn::CausalSelfAttention", name()),
                ": a cached step takes one position, x of shape (B, 1, ", n_embd_, "), got ", shape_str(x.shape()));
    const std::vector<Tensor> qkv = split(c_attn->forward(x), n_embd_, 2);
    const Tensor k = split_heads(qkv[1], n_head_), v = split_heads(qkv[2], n_head_);   // (B, nh, 1, hs)
    cache.k = cache.k.defined() ? concat({cache.k, k}, 2) : k;                      // (B, nh, t + 1, hs)
    cache.v = cache.v.defined() ? concat({cache.v, v}, 2) : v;
    // the newest position may see every cached one: no mask
    const Tensor y = scaled_dot_product_attention(split_heads(qkv[0], n_head_), cache.k, cache.v,
                                                  AttentionOptions().dropout_p(is_training() ? dropout_ : 0.0f));
    return forward_hooks(resid_dropout->forward(c_proj->forward(merge_heads(y))), x);
}

Tensor CausalSelfAttention::attention_weights(const Tensor& x) const
{
    NoGradGuard no_grad;
    const std::vector<Tensor> qkv = split(c_attn->forward(x), n_embd_, 2);
    return attention_weights_of(split_heads(qkv[0], n_head_), split_heads(qkv[1], n_head_), {}, true);
}

std::string CausalSelfAttention::describe() const
{
    std::ostringstream out;
    out << "CausalSelfAttention(n_embd=" << n_embd_ << ", n_head=" << n_head_ << ", dropout=" << dropout_ << ")";
    return out.str();
}

// ---- MLP, TransformerBlock --------------------------------------------------------------------------------
MLP::MLP(const TransformerOptions& o)
{
    c_fc = register_module("c_fc", std::make_shared<Linear>(o.n_embd_, 4 * o.n_embd_, o.bias_));
    gelu = register_module("gelu", std::make_shared<GELU>(o.gelu_));
    c_proj = register_module("c_proj", std::make_shared<Linear>(4 * o.n_embd_, o.n_embd_, o.bias_));
    dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout_));
}

Tensor MLP::forward(const Tensor& x) const
{
    return forward_hooks(dropout->forward(c_proj->forward(gelu->forward(c_fc->forward(x)))), x);
}

TransformerBlock::TransformerBlock(const TransformerOptions& o)
{
    ln_1 = register_module("ln_1", std::make_shared<LayerNorm>(o.n_embd_, 1e-5f, true, o.bias_));
    attn = register_module("attn", std::make_shared<CausalSelfAttention>(o));
    ln_2 = register_module("ln_2", std::make_shared<LayerNorm>(o.n_embd_, 1e-5f, true, o.bias_));
    mlp = register_module("mlp", std::make_shared<MLP>(o));
}

Tensor TransformerBlock::forward(const Tensor& x) const
{
    Tensor h = x + attn->forward(ln_1->forward(x));                     // (B, T, C)
    Tensor m = mlp->forward(ln_2->forward(h));
    return forward_hooks(std::move(h) + std::move(m), x);               // moved: add may write over m
}

Tensor TransformerBlock::forward(const Tensor& x, KVCache& cache) const
{
    Tensor h = x + attn->forward(ln_1->forward(x), cache);
    Tensor m = mlp->forward(ln_2->forward(h));
    return forward_hooks(std::move(h) + std::move(m), x);
}

}  // namespace xgrad::nn
