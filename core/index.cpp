// embedding_lookup: the row gather under nn::Embedding, and its scatter-add backward.
#include <cmath>
#include <cstring>
#include <vector>

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/ops.h"

namespace xgrad {

namespace {

// Every id in [0, V), or an error naming the caller, the position and the valid ids.
void check_ids(const IdArray& ids, std::size_t V, const LookupOptions& options)
{
    const auto n = static_cast<std::int64_t>(V);
    const std::int64_t* id = ids.data();
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (id[i] >= 0 && id[i] < n) continue;
        fail(options.who, ": id ", id[i], " at position ", position_str(i, ids.shape()), " is out of range for ",
             "num_embeddings = ", V, " (valid ids are 0 to ", n - 1, ")",
             options.position_table && id[i] >= n ? "; this is a position table, so the sequence is longer than "
                                                    "block_size = " + std::to_string(V)
                                                  : std::string());
    }
}

// max_norm: every row the ids use whose norm exceeds max_norm is scaled to max_norm / (norm + 1e-7),
// in place and outside autograd, as torch.embedding_renorm_.
void renormalize_rows(float* weight, std::size_t V, std::size_t C, const IdArray& ids, float max_norm, float p)
{
    std::vector<bool> done(V, false);
    for (std::int64_t v : ids) {
        if (done[static_cast<std::size_t>(v)]) continue;
        done[static_cast<std::size_t>(v)] = true;
        float* row = weight + static_cast<std::size_t>(v) * C;
        double norm = 0.0;
        for (std::size_t c = 0; c < C; ++c) norm += std::pow(std::abs(double(row[c])), double(p));
        norm = std::pow(norm, 1.0 / p);
        if (norm > max_norm) {
            const auto scale = static_cast<float>(max_norm / (norm + 1e-7));
            for (std::size_t c = 0; c < C; ++c) row[c] *= scale;
        }
    }
}

// Where the backward adds each position's upstream row, and with what weight: row v of the table for
// id v, or with `compact` (a sparse gradient) the id's row among the touched ids; -1 (nothing) for
// padding_idx, whose row learns nothing. With scale_grad_by_freq, row r's rows are weighted 1 / count.
struct Destinations {
    std::vector<std::int64_t> touched;   // compact: the ids the batch uses (padding aside), increasing
    StorageVector<std::int64_t> row;     // per position; empty when it is the id itself
    StorageVector<float> scale;          // per destination row; empty when all are 1
};

Destinations destinations(const IdArray& ids, std::size_t V, std::int64_t padding_idx, bool by_freq, bool compact)
{
    Destinations d;
    StorageVector<std::size_t> count(by_freq || compact ? V : 0, 0);    // occurrences of each id
    if (!count.empty()) {
        for (std::int64_t v : ids) ++count[static_cast<std::size_t>(v)];
    }
    StorageVector<std::int64_t> row_of_id;                                // empty: the identity
    if (compact) {
        row_of_id.assign(V, -1);
        for (std::size_t v = 0; v < V; ++v) {
            if (count[v] == 0 || static_cast<std::int64_t>(v) == padding_idx) continue;
            row_of_id[v] = static_cast<std::int64_t>(d.touched.size());
            d.touched.push_back(static_cast<std::int64_t>(v));
        }
    } else if (padding_idx >= 0) {
        row_of_id.resize(V);
        for (std::size_t v = 0; v < V; ++v) row_of_id[v] = static_cast<std::int64_t>(v);
        row_of_id[static_cast<std::size_t>(padding_idx)] = -1;
    }
    if (!row_of_id.empty()) {
        d.row.reserve(ids.size());
        for (std::int64_t v : ids) d.row.push_back(row_of_id[static_cast<std::size_t>(v)]);
    }
    if (by_freq) {
        const std::size_t rows = compact ? d.touched.size() : V;
        d.scale.assign(rows, 1.0f);
        for (std::size_t r = 0; r < rows; ++r) {
            const std::size_t v = compact ? static_cast<std::size_t>(d.touched[r]) : r;
            if (count[v]) d.scale[r] = 1.0f / static_cast<float>(count[v]);
        }
    }
    return d;
}

// float64: the rows gathered by take, whose backward is the scatter-add; padding_idx's row gets no gradient
Tensor composed_lookup(const Tensor& weight, const IdArray& ids, const LookupOptions& options)
{
    XGRAD_CHECK(!options.max_norm && !options.scale_grad_by_freq && !options.sparse, options.who, ": max_norm, ",
                "scale_grad_by_freq and sparse take a float32 table (a float64 one is looked up without them)");
    const std::size_t C = weight.shape()[1];
    Shape out_shape(ids.shape().begin(), ids.shape().end()), id_shape = out_shape;
    out_shape.push_back(C);
    id_shape.push_back(1);
    std::vector<std::size_t> flat;
    std::vector<bool> padding;
    for (std::int64_t id : ids) {
        for (std::size_t c = 0; c < C; ++c) flat.push_back(static_cast<std::size_t>(id) * C + c);
        padding.push_back(id == options.padding_idx);
    }
    const Tensor rows = take(weight, std::move(flat), out_shape, "embedding_lookup");
    if (options.padding_idx < 0) return rows;
    return where(from_vector(padding, id_shape), rows.detach(), rows);
}

}  // namespace

// weight (V, C), ids (...) -> (..., C)
Tensor embedding_lookup(const Tensor& weight, const IdArray& ids, const LookupOptions& options)
{
    const OpScope scope("embedding_lookup");
    XGRAD_CHECK(weight.dim() == 2, options.who, ": expected a 2-D weight (num_embeddings, embedding_dim), got ",
                shape_str(weight.shape()));
    const std::size_t V = weight.shape()[0], C = weight.shape()[1], N = ids.size();
    check_ids(ids, V, options);
    if (weight.dtype() == kFloat64) [[unlikely]] return composed_lookup(weight, ids, options);
    if (options.max_norm) {   // an in-place write into the table, outside autograd (torch.embedding_renorm_)
        if (weight.is_contiguous()) {
            renormalize_rows(weight.mutable_data_ptr(), V, C, ids, *options.max_norm, options.norm_type);
        } else {
            Array w = weight.to_array();
            renormalize_rows(w.data(), V, C, ids, *options.max_norm, options.norm_type);
            NoGradGuard no_grad;
            weight.copy_(Tensor(std::move(w)));
        }
    }

    // forward: a gather of whole rows
    Shape out_shape(ids.shape().begin(), ids.shape().end());
    out_shape.push_back(C);
    Array y(out_shape);                                                        // (N..., C)
    const Values table = weight.values();
    const float* w = table.data();
    const std::int64_t* id = ids.data();
    parallel_rows(N, C, [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) {
            std::memcpy(y.data() + i * C, w + static_cast<std::size_t>(id[i]) * C, C * sizeof(float));
        }
    });

    // backward: grad_weight[v] += grad_out[i] for every position i with ids[i] == v, a scatter-add
    // (scatter_add_rows in core/kernels.cpp says why it accumulates and why it is deterministic).
    const std::int64_t padding_idx = options.padding_idx;
    const bool by_freq = options.scale_grad_by_freq, sparse = options.sparse;
    return from_op(std::move(y), {weight}, "embedding_lookup",
                   [weight, ids = IdArray(ids), padding_idx, by_freq, sparse](GradOutput& grad_out) {   // ids: a copy that moves
        check_saved(weight);   // torch's saves the table (for its row count): a write into it is refused, as there
        const std::size_t V = weight.shape()[0], C = weight.shape()[1], N = ids.size();
        const Destinations d = destinations(ids, V, padding_idx, by_freq, sparse);
        const std::int64_t* row = d.row.empty() ? ids.data() : d.row.data();
        const float* scale = d.scale.empty() ? nullptr : d.scale.data();
        const float* g = grad_out.read().data();                             // (N..., C)
        if (!sparse) {
            scatter_add_rows(weight.grad_accumulator().data(), V, g, row, N, C, scale);   // (V, C)
            return;
        }
        RowSparse grad{d.touched, Array(Shape{d.touched.size(), C})};                  // (touched, C), unwritten
        scatter_rows_into_unwritten(grad.values.data(), d.touched.size(), g, row, N, C, scale);
        weight.accumulate_grad(std::move(grad));
    });
}

IdArray id_array(const Tensor& ids, const std::string& who)
{
    XGRAD_CHECK(ids.dtype() == kInt64 || ids.dtype() == kInt32, who, ": expected ids of dtype int64 (or int32), got ",
                dtype_name(ids.dtype()), " (torch: Expected tensor for argument #1 'indices' to have one of the following ",
                "scalar types: Long, Int); a float id is never truncated");
    const Tensor dense = ids.to(kInt64).contiguous();
    IdArray copy = IdArray::from_shape(dense.shape());
    if (copy.size() > 0) std::copy_n(dense.data_ptr<std::int64_t>(), copy.size(), copy.data());
    return copy;
}

Tensor embedding_lookup(const Tensor& weight, const Tensor& ids, const LookupOptions& options)
{
    const OpScope scope("embedding_lookup");
    return embedding_lookup(weight, id_array(ids, options.who), options);
}

}  // namespace xgrad
