// nn::Embedding: the module around embedding_lookup (core/index.cpp): options, checks that name the
// module, max_norm renormalisation, and the gradient report.
#include "nn/embedding.h"

#include <cmath>
#include <sstream>

#include "core/check.h"
#include "core/random.h"

#include <xtensor/xview.hpp>

namespace xgrad::nn {

Embedding::Embedding(std::size_t num_embeddings, std::size_t embedding_dim, EmbeddingOptions options)
    : options_(options)
{
    const auto V = static_cast<std::int64_t>(num_embeddings);
    if (options_.padding_idx_) {
        std::int64_t p = *options_.padding_idx_;
        XGRAD_CHECK(p >= -V && p < V, "nn::Embedding: padding_idx ", p, " must be within num_embeddings = ", V,
              " (from ", -V, " to ", V - 1, ")");
        padding_row_ = p < 0 ? p + V : p;
    }
    XGRAD_CHECK(!options_.max_norm_ || *options_.max_norm_ > 0.0f, "nn::Embedding: max_norm must be positive, got ",
          options_.max_norm_.value_or(0.0f));
    XGRAD_CHECK(options_.norm_type_ > 0.0f, "nn::Embedding: norm_type must be positive, got ", options_.norm_type_);

    Array w(Shape{num_embeddings, embedding_dim});
    default_generator().normal_(w);                                  // N(0, 1), as PyTorch
    if (padding_row_ >= 0) xt::view(w, padding_row_, xt::all()) = 0.0f;
    weight = register_parameter("weight", Tensor(std::move(w)));
}

std::shared_ptr<Embedding> Embedding::from_pretrained(const Tensor& weights, bool freeze, EmbeddingOptions options)
{
    XGRAD_CHECK(weights.dim() == 2, "nn::Embedding::from_pretrained: expected 2-D weights (num_embeddings, embedding_dim), got ",
          shape_str(weights.shape()));
    auto table = std::make_shared<Embedding>(weights.shape()[0], weights.shape()[1], options);
    table->weight.data() = weights.data();                            // a copy of the values, as PyTorch
    table->weight.requires_grad_(!freeze);
    return table;
}

void Embedding::check_ids(const IdArray& ids) const
{
    const auto V = static_cast<std::int64_t>(num_embeddings());
    const std::int64_t* id = ids.data();
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (id[i] >= 0 && id[i] < V) continue;
        std::ostringstream hint;
        if (options_.position_table_ && id[i] >= V) {
            hint << "; this is a position table, so the sequence is longer than block_size = " << V;
        }
        fail("nn::Embedding", name().empty() ? "" : " '" + name() + "'", ": id ", id[i], " at position ",
             position_str(i, ids.shape()), " is out of range for num_embeddings = ", V, " (valid ids are 0 to ", V - 1, ")",
             hint.str());
    }
}

// max_norm: every row the input uses whose norm exceeds max_norm is scaled to max_norm / (norm + 1e-7),
// in place and outside autograd, as torch.embedding_renorm_.
void Embedding::renormalize_rows(const IdArray& ids)
{
    const std::size_t C = embedding_dim();
    const float max_norm = *options_.max_norm_, p = options_.norm_type_;
    std::vector<bool> done(num_embeddings(), false);
    for (std::int64_t v : ids) {
        if (done[static_cast<std::size_t>(v)]) continue;
        done[static_cast<std::size_t>(v)] = true;
        float* row = weight.data().data() + static_cast<std::size_t>(v) * C;
        double norm = 0.0;
        for (std::size_t c = 0; c < C; ++c) norm += std::pow(std::abs(double(row[c])), double(p));
        norm = std::pow(norm, 1.0 / p);
        if (norm > max_norm) {
            const auto scale = static_cast<float>(max_norm / (norm + 1e-7));
            for (std::size_t c = 0; c < C; ++c) row[c] *= scale;
        }
    }
}

Tensor Embedding::forward(const IdArray& ids)
{
    check_ids(ids);
    if (options_.max_norm_) renormalize_rows(ids);
    last_ids_ = ids;
    return embedding_lookup(weight, ids, {padding_row_, options_.scale_grad_by_freq_, options_.sparse_});
}

EmbeddingGradReport Embedding::grad_report() const
{
    const std::size_t V = num_embeddings(), C = embedding_dim();
    std::vector<std::size_t> count(V, 0);
    for (std::int64_t v : last_ids_) ++count[static_cast<std::size_t>(v)];
    const Tensor grad = weight.grad();
    const RowSparse* sparse = weight.sparse_grad();
    std::size_t next_sparse = 0;

    EmbeddingGradReport report;
    for (std::size_t v = 0; v < V; ++v) {
        if (count[v] == 0) {
            ++report.untouched;
            continue;
        }
        const float* row = nullptr;                     // this row of the gradient, wherever it is kept
        if (grad.defined()) {
            row = grad.data().data() + v * C;
        } else if (sparse) {
            while (next_sparse < sparse->rows.size() && sparse->rows[next_sparse] < static_cast<std::int64_t>(v)) ++next_sparse;
            if (next_sparse < sparse->rows.size() && sparse->rows[next_sparse] == static_cast<std::int64_t>(v)) {
                row = sparse->values.data() + next_sparse * C;
            }
        }
        double norm = 0.0;
        for (std::size_t c = 0; row && c < C; ++c) norm += double(row[c]) * row[c];
        report.rows.push_back({static_cast<std::int64_t>(v), count[v], static_cast<float>(std::sqrt(norm))});
    }
    return report;
}

std::string Embedding::describe() const
{
    std::ostringstream out;
    out << "Embedding(" << num_embeddings() << ", " << embedding_dim();
    if (padding_row_ >= 0) out << ", padding_idx=" << padding_row_;
    if (options_.max_norm_) out << ", max_norm=" << *options_.max_norm_;
    if (options_.scale_grad_by_freq_) out << ", scale_grad_by_freq=true";
    if (options_.sparse_) out << ", sparse=true";
    out << ")";
    return out.str();
}

}  // namespace xgrad::nn
