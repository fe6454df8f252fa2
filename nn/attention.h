// Attention and the transformer block, as PyTorch and nanoGPT write them:
//   nn::MultiheadAttention    torch.nn.MultiheadAttention (its bool masks: true = masked out)
//   nn::CausalSelfAttention   nanoGPT's: one (C, 3C) projection, heads, causal SDPA, output projection
//   nn::MLP, nn::TransformerBlock   nanoGPT's Block: x + attn(ln_1(x)), then x + mlp(ln_2(x))
// and the small layers they are made of: nn::Dropout, nn::GELU. Shapes: B batch, T time (L queries,
// S keys when they differ), C channels = nh heads * hs head size.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "core/ops.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/norm.h"

namespace xgrad::nn {

// x (...) -> (...): dropout(x, p) in training, the identity in eval, as torch.nn.Dropout.
class Dropout : public Module {
public:
    explicit Dropout(float p = 0.5f);
    Tensor forward(const Tensor& x) const { return forward_hooks(dropout(x, p_, is_training()), x); }
    std::string describe() const override;

private:
    float p_;
};

// x (...) -> (...): gelu(x, approximate), as torch.nn.GELU ("none": the erf form, PyTorch's default).
class GELU : public Module {
public:
    explicit GELU(std::string approximate = "none");
    Tensor forward(const Tensor& x) const { return forward_hooks(gelu(x, approximate_), x); }
    std::string describe() const override { return "GELU(approximate='" + approximate_ + "')"; }

private:
    std::string approximate_;
};

// ---- torch.nn.MultiheadAttention ----------------------------------------------------------------------
struct MultiheadAttentionOptions {
    MultiheadAttentionOptions& dropout(float v) { dropout_ = v; return *this; }   // on the attention weights
    MultiheadAttentionOptions& bias(bool v) { bias_ = v; return *this; }
    MultiheadAttentionOptions& batch_first(bool v) { batch_first_ = v; return *this; }   // (B, T, C), else (T, B, C)
    // a learned key and value, bias_k and bias_v (1, 1, E), appended to every sequence of keys and values
    MultiheadAttentionOptions& add_bias_kv(bool v) { add_bias_kv_ = v; return *this; }
    // a zero key and value appended after the projection (and after bias_k / bias_v)
    MultiheadAttentionOptions& add_zero_attn(bool v) { add_zero_attn_ = v; return *this; }
    // the key's and the value's widths when not embed_dim (0 = embed_dim): then the projections are
    // q_proj_weight (E, E), k_proj_weight (E, kdim), v_proj_weight (E, vdim) instead of in_proj_weight
    MultiheadAttentionOptions& kdim(std::size_t v) { kdim_ = v; return *this; }
    MultiheadAttentionOptions& vdim(std::size_t v) { vdim_ = v; return *this; }
    float dropout_ = 0.0f;
    bool bias_ = true, batch_first_ = false, add_bias_kv_ = false, add_zero_attn_ = false;
    std::size_t kdim_ = 0, vdim_ = 0;
};

struct MultiheadAttentionForward {
    // key_padding_mask (B, S): a bool tensor, true = this key is padding, ignored; or a float one added.
    Tensor key_padding_mask;
    // attn_mask (L, S) or (B nh, L, S): a bool tensor, true = masked out (MultiheadAttention's
    // convention, the opposite of scaled_dot_product_attention's), or a float one added to the scores.
    Tensor attn_mask;
    bool need_weights = true;            // also return the attention weights (computed by the composed path)
    bool average_attn_weights = true;    // the weights averaged over heads: (B, L, S); else (B, nh, L, S)
    bool is_causal = false;              // a causal mask; as in PyTorch, a hint that needs no attn_mask here
};

class MultiheadAttention : public Module {
public:
    // in_proj_weight (3E, E) ~ xavier_uniform (or q/k/v_proj_weight, with kdim or vdim), in_proj_bias
    // (3E) = 0, out_proj Linear(E, E) with bias 0, bias_k and bias_v (1, 1, E) ~ xavier_normal
    MultiheadAttention(std::size_t embed_dim, std::size_t num_heads, MultiheadAttentionOptions options = {});

    // query (B, L, E), key (B, S, kdim), value (B, S, vdim) with batch_first, else (L, B, E) ... ->
    // {output like query, the weights (B, L, S') or (B, nh, L, S'), or undefined without need_weights};
    // S' = S, plus one for add_bias_kv and one for add_zero_attn (the masks cover S; the extra keys
    // are never masked)
    std::pair<Tensor, Tensor> forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                      const MultiheadAttentionForward& args = {}) const;
    std::string describe() const override;

    std::size_t embed_dim() const { return embed_dim_; }
    std::size_t num_heads() const { return num_heads_; }

    Tensor in_proj_weight, in_proj_bias;   // (3E, E), (3E) or undefined
    Tensor q_proj_weight, k_proj_weight, v_proj_weight;   // with kdim or vdim: (E, E), (E, kdim), (E, vdim)
    Tensor bias_k, bias_v;                 // with add_bias_kv: (1, 1, E)
    std::shared_ptr<Linear> out_proj;

private:
    std::size_t embed_dim_, num_heads_;
    MultiheadAttentionOptions options_;
};

// ---- nanoGPT's blocks ---------------------------------------------------------------------------------------
struct TransformerOptions {
    TransformerOptions& n_embd(std::size_t v) { n_embd_ = v; return *this; }
    TransformerOptions& n_head(std::size_t v) { n_head_ = v; return *this; }
    TransformerOptions& dropout(float v) { dropout_ = v; return *this; }
    TransformerOptions& bias(bool v) { bias_ = v; return *this; }   // in the Linears and LayerNorms
    TransformerOptions& gelu(std::string v) { gelu_ = std::move(v); return *this; }   // the MLP's approximate
    std::size_t n_embd_ = 128, n_head_ = 4;
    float dropout_ = 0.0f;
    bool bias_ = true;
    std::string gelu_ = "none";        // nanoGPT's nn.GELU(); GPT-2 used "tanh"
};

// The keys and values (B, nh, t, hs) of the positions one attention layer has seen, for generating
// one token at a time without recomputing the past.
struct KVCache {
    Tensor k, v;
    std::size_t length() const { return k.defined() ? k.shape()[2] : 0; }
};

// x (B, T, C) -> (B, T, C): causal multi-head self-attention
class CausalSelfAttention : public Module {
public:
    explicit CausalSelfAttention(const TransformerOptions& options);
    Tensor forward(const Tensor& x) const;
    // x (B, 1, C), the next position -> (B, 1, C): it attends to every position in `cache` and itself,
    // and is appended to the cache. The same result as forward() on the whole sequence, last row.
    Tensor forward(const Tensor& x, KVCache& cache) const;
    // The attention weights of every head, (B, nh, T, T), by the composed path: for looking at.
    Tensor attention_weights(const Tensor& x) const;
    std::string describe() const override;

    std::shared_ptr<Linear> c_attn, c_proj;   // (C -> 3C): q, k, v side by side; (C -> C)
    std::shared_ptr<Dropout> attn_dropout, resid_dropout;

private:
    std::size_t n_embd_, n_head_;
    float dropout_;
};

// x (B, T, C) -> (B, T, C): c_proj(gelu(c_fc(x))), dropped out, with 4C hidden
class MLP : public Module {
public:
    explicit MLP(const TransformerOptions& options);
    Tensor forward(const Tensor& x) const;
    std::string describe() const override { return "MLP"; }

    std::shared_ptr<Linear> c_fc, c_proj;
    std::shared_ptr<GELU> gelu;
    std::shared_ptr<Dropout> dropout;
};

// x (B, T, C) -> (B, T, C): x + attn(ln_1(x)), then + mlp(ln_2(x)): pre-LayerNorm residual blocks
class TransformerBlock : public Module {
public:
    explicit TransformerBlock(const TransformerOptions& options);
    Tensor forward(const Tensor& x) const;
    Tensor forward(const Tensor& x, KVCache& cache) const;   // x (B, 1, C): the next position (see above)
    std::string describe() const override { return "TransformerBlock"; }

    std::shared_ptr<LayerNorm> ln_1, ln_2;
    std::shared_ptr<CausalSelfAttention> attn;
    std::shared_ptr<MLP> mlp;
};

}  // namespace xgrad::nn
