// Attention modules over scaled_dot_product_attention (core/attention.cpp), and the transformer block.
#include "nn/attention.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "core/check.h"
#include "core/random.h"

namespace xgrad::nn {

namespace {

constexpr float minus_infinity = -std::numeric_limits<float>::infinity();

// x (B, T, nh * hs) -> (B, nh, T, hs): the heads side by side become a batch axis (x by value: a
// temporary's buffer becomes the view's)
Tensor split_heads(Tensor x, std::size_t heads)
{
    const Shape s = x.shape();
    const auto B = static_cast<std::ptrdiff_t>(s[0]), T = static_cast<std::ptrdiff_t>(s[1]);
    const auto hs = static_cast<std::ptrdiff_t>(s[2] / heads);
    return transpose(view(std::move(x), {B, T, static_cast<std::ptrdiff_t>(heads), hs}), 1, 2);
}

// y (B, nh, T, hs) -> (B, T, nh * hs)
Tensor merge_heads(const Tensor& y)
{
    const Shape s = y.shape();
    return view(transpose(y, 1, 2), {static_cast<std::ptrdiff_t>(s[0]), static_cast<std::ptrdiff_t>(s[2]),
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
        Array above(Shape{L, S});
        for (std::size_t i = 0; i < L; ++i) {
            for (std::size_t j = 0; j < S; ++j) above(i, j) = j > i ? 1.0f : 0.0f;
        }
        scores = masked_fill(scores, Tensor(std::move(above)), minus_infinity);
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
    const float bound = std::sqrt(6.0f / static_cast<float>(embed_dim + 3 * embed_dim));   // xavier_uniform_
    Array w(Shape{3 * embed_dim, embed_dim});
    default_generator().uniform_(w, -bound, bound);
    in_proj_weight = register_parameter("in_proj_weight", Tensor(std::move(w)));
    if (options.bias_) {
        in_proj_bias = register_parameter("in_proj_bias", zeros({3 * embed_dim}));
        out_proj->bias.data().fill(0.0f);
    }
}

std::pair<Tensor, Tensor> MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                                      const MultiheadAttentionForward& args) const
{
    const std::string who = module_name("nn::MultiheadAttention", name());
    const std::size_t E = embed_dim_, nh = num_heads_;
    for (const auto& [what, t] : {std::pair<const char*, const Tensor*>{"query", &query}, {"key", &key}, {"value", &value}}) {
        XGRAD_CHECK(t->dim() == 3 && t->shape()[2] == E, who, ": expected ", what, " of shape ",
                    options_.batch_first_ ? "(B, T, " : "(T, B, ", E, ") (embed_dim = ", E, "), got ", shape_str(t->shape()));
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
    Tensor mask;
    const bool has_attn_mask = args.attn_mask || args.float_attn_mask.defined();
    if (has_attn_mask) {
        const Shape ms = args.attn_mask ? Shape(args.attn_mask->shape().begin(), args.attn_mask->shape().end())
                                        : args.float_attn_mask.shape();
        XGRAD_CHECK(ms == Shape({L, S}) || ms == Shape({B * nh, L, S}), who, ": attn_mask must be (L, S) = ",
                    shape_str(Shape{L, S}), " or (B nh, L, S) = ", shape_str(Shape{B * nh, L, S}), ", got ", shape_str(ms));
        Array m(ms);
        if (args.attn_mask) {
            for (std::size_t i = 0; i < m.size(); ++i) m.data()[i] = args.attn_mask->data()[i] ? minus_infinity : 0.0f;
        } else {
            m = args.float_attn_mask.data();
        }
        if (ms.size() == 3) m.reshape({B, nh, L, S});
        mask = Tensor(std::move(m));
    }
    if (args.key_padding_mask) {
        const Shape ps(args.key_padding_mask->shape().begin(), args.key_padding_mask->shape().end());
        XGRAD_CHECK(ps == Shape({B, S}), who, ": key_padding_mask must be (B, S) = ", shape_str(Shape{B, S}), ", got ",
                    shape_str(ps));
        Array m(Shape{B, 1, 1, S});
        for (std::size_t i = 0; i < m.size(); ++i) m.data()[i] = args.key_padding_mask->data()[i] ? minus_infinity : 0.0f;
        mask = mask.defined() ? mask + Tensor(std::move(m)) : Tensor(std::move(m));
    }
    const bool causal = args.is_causal && !has_attn_mask;   // with a mask, is_causal is only a hint, as PyTorch's

    // in-projection: q, k, v = x W_q^T + b_q, ... with W = in_proj_weight's three (E, E) blocks
    const std::vector<Tensor> w = split(in_proj_weight, E, 0);
    const std::vector<Tensor> b = in_proj_bias.defined() ? split(in_proj_bias, E, 0) : std::vector<Tensor>(3);
    const Tensor q = split_heads(linear(q_in, w[0], b[0]), nh);         // (B, nh, L, hs)
    const Tensor k = split_heads(linear(k_in, w[1], b[1]), nh);         // (B, nh, S, hs)
    const Tensor v = split_heads(linear(v_in, w[2], b[2]), nh);         // (B, nh, S, hs)
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
        << ", bias=" << (options_.bias_ ? "true" : "false") << ", batch_first=" << (options_.batch_first_ ? "true" : "false")
        << ")";
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
    std::vector<Tensor> qkv = split(c_attn->forward(x), n_embd_, 2);   // 3 x (B, T, C)
    const Tensor y = scaled_dot_product_attention(split_heads(std::move(qkv[0]), n_head_), split_heads(std::move(qkv[1]), n_head_),
                                                  split_heads(std::move(qkv[2]), n_head_),
                                                  AttentionOptions().is_causal(true).dropout_p(is_training() ? dropout_ : 0.0f));
    return forward_hooks(resid_dropout->forward(c_proj->forward(merge_heads(y))), x);   // (B, T, C)
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
