// nn::Embedding and functional::embedding around embedding_lookup (core/index.cpp): options checked
// and named, and the gradient report.
#include "nn/embedding.h"

#include <cmath>
#include <sstream>
#include <string>

#include "core/check.h"
#include "core/random.h"

#include <xtensor/xview.hpp>

namespace xgrad::nn {

namespace {

// The core op's options for a table of V rows, every option checked, padding_idx made non-negative.
LookupOptions lookup_options(const EmbeddingOptions& options, std::size_t V, std::string who)
{
    const auto n = static_cast<std::int64_t>(V);
    LookupOptions lookup;
    if (options.padding_idx_) {
        const std::int64_t p = *options.padding_idx_;
        XGRAD_CHECK(p >= -n && p < n, who, ": padding_idx ", p, " must be within num_embeddings = ", n, " (from ", -n,
              " to ", n - 1, ")");
        lookup.padding_idx = p < 0 ? p + n : p;
    }
    XGRAD_CHECK(!options.max_norm_ || *options.max_norm_ > 0.0f, who, ": max_norm must be positive, got ",
          options.max_norm_.value_or(0.0f));
    XGRAD_CHECK(options.norm_type_ > 0.0f, who, ": norm_type must be positive, got ", options.norm_type_);
    lookup.max_norm = options.max_norm_;
    lookup.norm_type = options.norm_type_;
    lookup.scale_grad_by_freq = options.scale_grad_by_freq_;
    lookup.sparse = options.sparse_;
    lookup.position_table = options.position_table_;
    lookup.who = std::move(who);
    return lookup;
}

}  // namespace

Tensor functional::embedding(const IdArray& input, const Tensor& weight, const EmbeddingOptions& options)
{
    XGRAD_CHECK(weight.dim() == 2, "embedding: expected a 2-D weight (num_embeddings, embedding_dim), got ",
          shape_str(weight.shape()));
    return embedding_lookup(weight, input, lookup_options(options, weight.shape()[0], "embedding"));
}

Tensor functional::embedding(const Tensor& input, const Tensor& weight, const EmbeddingOptions& options)
{
    return embedding(id_array(input, "embedding"), weight, options);
}

Embedding::Embedding(std::size_t num_embeddings, std::size_t embedding_dim, EmbeddingOptions options)
    : options_(options), lookup_(lookup_options(options, num_embeddings, "nn::Embedding"))
{
    shape_numel(Shape{num_embeddings, embedding_dim}, "nn::Embedding");   // before xtensor's product can wrap
    Array w(Shape{num_embeddings, embedding_dim});
    default_generator().normal_(w);                                  // N(0, 1), as PyTorch
    if (lookup_.padding_idx >= 0) xt::view(w, lookup_.padding_idx, xt::all()) = 0.0f;
    weight = register_parameter("weight", Tensor(std::move(w)));
}

std::shared_ptr<Embedding> Embedding::from_pretrained(const Tensor& weights, bool freeze, EmbeddingOptions options)
{
    XGRAD_CHECK(weights.dim() == 2, "nn::Embedding::from_pretrained: expected 2-D weights (num_embeddings, embedding_dim), got ",
          shape_str(weights.shape()));
    auto table = std::make_shared<Embedding>(weights.shape()[0], weights.shape()[1], options);
    {
        NoGradGuard no_grad;
        table->weight.copy_(weights);                                 // a copy of the values, as PyTorch
    }
    table->weight.requires_grad_(!freeze);
    return table;
}

Tensor Embedding::forward(const IdArray& ids)
{
    lookup_.who = name().empty() ? "nn::Embedding" : "nn::Embedding '" + name() + "'";
    Tensor out = embedding_lookup(weight, ids, lookup_);   // checks the ids before anything changes
    last_ids_ = ids;
    return forward_hooks(std::move(out));
}

Tensor Embedding::forward(const Tensor& ids)
{
    return forward(id_array(ids, name().empty() ? "nn::Embedding" : "nn::Embedding '" + name() + "'"));
}

EmbeddingGradReport Embedding::grad_report() const
{
    const std::size_t V = num_embeddings(), C = embedding_dim();
    std::vector<std::size_t> count(V, 0);
    for (std::int64_t v : last_ids_) ++count[static_cast<std::size_t>(v)];
    const Tensor grad = weight.grad();
    const Values grad_values = grad.defined() ? grad.values() : Values();
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
            row = grad_values.data() + v * C;
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
    if (lookup_.padding_idx >= 0) out << ", padding_idx=" << lookup_.padding_idx;
    if (options_.max_norm_) out << ", max_norm=" << *options_.max_norm_;
    if (options_.scale_grad_by_freq_) out << ", scale_grad_by_freq=true";
    if (options_.sparse_) out << ", sparse=true";
    out << ")";
    return out.str();
}

}  // namespace xgrad::nn
