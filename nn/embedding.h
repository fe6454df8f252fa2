// nn::Embedding: a lookup table of learned vectors, one row per id, as torch.nn.Embedding.
//
//     nn::Embedding tok(65, 64);                       // vocabulary of 65, vectors of 64
//     Tensor x = tok.forward(IdArray{{1, 0, 2, 2, 3}});   // ids (1, 5) -> (1, 5, 64)
//
// Forward gathers rows; backward adds each upstream row into the gradient row of its id, so an id
// that appears twice gets the sum of both (see embedding_lookup in core/index.cpp).
#pragma once

#include <optional>

#include "core/ops.h"
#include "nn/module.h"

namespace xgrad::nn {

struct EmbeddingOptions {
    // This row is zeroed at construction and never gets a gradient. Negative counts from the end.
    EmbeddingOptions& padding_idx(std::int64_t v) { padding_idx_ = v; return *this; }
    // Rows used by a forward whose norm_type-norm exceeds max_norm are rescaled in place first.
    EmbeddingOptions& max_norm(float v) { max_norm_ = v; return *this; }
    EmbeddingOptions& norm_type(float v) { norm_type_ = v; return *this; }
    // Divide each row's gradient by the number of times its id appears in the batch.
    EmbeddingOptions& scale_grad_by_freq(bool v) { scale_grad_by_freq_ = v; return *this; }
    // Give the weight a row-sparse gradient (weight.sparse_grad()) holding only the touched rows.
    EmbeddingOptions& sparse(bool v) { sparse_ = v; return *this; }
    // xgrad's own: this table holds positions, so an id past its end means a sequence longer than
    // block_size, and the error says so.
    EmbeddingOptions& position_table(bool v) { position_table_ = v; return *this; }

    std::optional<std::int64_t> padding_idx_;
    std::optional<float> max_norm_;
    float norm_type_ = 2.0f;
    bool scale_grad_by_freq_ = false;
    bool sparse_ = false;
    bool position_table_ = false;
};

namespace functional {

// input ids (...) with weight (V, C) -> (..., C), as torch.nn.functional.embedding(input, weight,
// padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse): options as nn::Embedding's.
Tensor embedding(const IdArray& input, const Tensor& weight, const EmbeddingOptions& options = {});
Tensor embedding(const Tensor& input, const Tensor& weight, const EmbeddingOptions& options = {});   // int64 ids

}  // namespace functional

// What the last backward did to the table, for studying it: which rows the last forward touched,
// how often each, and the norm of each row's gradient.
struct EmbeddingGradReport {
    struct Row {
        std::int64_t id;
        std::size_t count;      // occurrences in the last forward's ids
        float grad_norm;        // L2 norm of the row of weight's gradient
    };
    std::vector<Row> rows;      // touched rows, in increasing id
    std::size_t untouched = 0;  // rows the last forward did not use (their gradient is zero)
};

class Embedding : public Module {
public:
    // weight (num_embeddings, embedding_dim) ~ N(0, 1) from the default generator
    Embedding(std::size_t num_embeddings, std::size_t embedding_dim, EmbeddingOptions options = {});

    // A table holding a copy of `weights` (V, C); frozen (no gradient) unless freeze is false.
    static std::shared_ptr<Embedding> from_pretrained(const Tensor& weights, bool freeze = true,
                                                      EmbeddingOptions options = {});

    // ids (...) -> (..., embedding_dim). Throws, before changing anything, on an id outside [0, V),
    // naming this module.
    Tensor forward(const IdArray& ids);
    Tensor forward(const Tensor& ids);   // an int64 (or int32) tensor of ids, as torch's

    EmbeddingGradReport grad_report() const;
    std::string describe() const override;

    std::size_t num_embeddings() const { return weight.shape()[0]; }
    std::size_t embedding_dim() const { return weight.shape()[1]; }
    const EmbeddingOptions& options() const { return options_; }
    const IdArray& last_ids() const { return last_ids_; }   // the ids of the last forward

    Tensor weight;   // (num_embeddings, embedding_dim)

private:
    EmbeddingOptions options_;
    LookupOptions lookup_;            // options_ for the core op, padding_idx made non-negative
    IdArray last_ids_;                // for grad_report
};

}  // namespace xgrad::nn
