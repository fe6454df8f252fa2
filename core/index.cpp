// embedding_lookup: the row gather under nn::Embedding, and its scatter-add backward.
#include <cstring>
#include <type_traits>

#include "core/check.h"
#include "core/ops.h"
#include "core/parallel.h"

namespace xgrad {

namespace {

// out += g, out += s * g and out = s * g over one row (rows of the table and of the gradient never overlap)
void add_row(float* __restrict out, const float* __restrict g, std::size_t C)
{
    for (std::size_t c = 0; c < C; ++c) out[c] += g[c];
}
void add_scaled_row(float* __restrict out, const float* __restrict g, float s, std::size_t C)
{
    for (std::size_t c = 0; c < C; ++c) out[c] += s * g[c];
}
void copy_scaled_row(float* __restrict out, const float* __restrict g, float s, std::size_t C)
{
    for (std::size_t c = 0; c < C; ++c) out[c] = s * g[c];
}

// dst[row_of[ids[i]]] += scale[ids[i]] * src[i] for every position i whose id is not padding_idx.
//
// It must accumulate: an id can appear many times in one batch, and each appearance adds its own
// upstream row. With several threads, each thread owns a range of destination rows and scans all
// ids in order, adding only into its own rows: every row sums its contributions in the same order
// whatever the thread count, so the result is bitwise deterministic, and no two threads write the
// same row. With `dst_unwritten` (the compact rows of a sparse gradient, each hit at least once),
// dst holds no values yet: a row's first contribution is copied into it rather than added, which
// spares a pass zeroing the rows first.
void scatter_add_rows(float* dst, std::size_t dst_rows, const float* src, const IdArray& ids, std::size_t C,
                      const std::vector<std::size_t>& row_of, const std::vector<float>& scale, std::int64_t padding_idx,
                      bool dst_unwritten = false)
{
    const std::int64_t* id = ids.data();
    std::vector<char> written(dst_unwritten ? dst_rows : 0, 0);   // char, not bool: threads own rows, not bits
    auto scatter_into = [&](auto unwritten, std::size_t row_begin, std::size_t row_end) {
        for (std::size_t i = 0; i < ids.size(); ++i) {
            if (id[i] == padding_idx) continue;                       // padding rows learn nothing
            const std::size_t row = row_of.empty() ? static_cast<std::size_t>(id[i]) : row_of[id[i]];
            if (row < row_begin || row >= row_end) continue;          // another thread's row
            if constexpr (decltype(unwritten)::value) {
                if (!written[row]) {                                  // the row's first contribution
                    written[row] = 1;
                    copy_scaled_row(dst + row * C, src + i * C, scale.empty() ? 1.0f : scale[id[i]], C);
                    continue;
                }
            }
            if (scale.empty()) add_row(dst + row * C, src + i * C, C);   // d out[i] / d weight[id] = 1
            else add_scaled_row(dst + row * C, src + i * C, scale[id[i]], C);
        }
    };
    auto scatter_rows = [&](std::size_t row_begin, std::size_t row_end) {
        if (dst_unwritten) scatter_into(std::true_type{}, row_begin, row_end);
        else scatter_into(std::false_type{}, row_begin, row_end);
    };
    if (ids.size() * C < parallel_floats) {
        scatter_rows(0, dst_rows);
    } else {
        parallel_for(dst_rows, 1, scatter_rows);
    }
}

}  // namespace

// weight (V, C), ids (...) -> (..., C)
Tensor embedding_lookup(const Tensor& weight, const IdArray& ids, const LookupOptions& options)
{
    XGRAD_CHECK(weight.dim() == 2, "embedding_lookup: expected a 2-D weight (num_embeddings, embedding_dim), got ",
          shape_str(weight.shape()));
    const std::size_t V = weight.shape()[0], C = weight.shape()[1], N = ids.size();
    const std::int64_t* id = ids.data();
    for (std::size_t i = 0; i < N; ++i) {   // every id is checked before anything is made
        XGRAD_CHECK(id[i] >= 0 && static_cast<std::size_t>(id[i]) < V, "embedding_lookup: id ", id[i], " at position ",
              position_str(i, ids.shape()), " is out of range for num_embeddings = ", V, " (valid ids are 0 to ",
              static_cast<std::ptrdiff_t>(V) - 1, ")");
    }

    // forward: a gather of whole rows
    Shape out_shape(ids.shape().begin(), ids.shape().end());
    out_shape.push_back(C);
    Array y(out_shape);                                                        // (N..., C)
    const float* w = weight.data().data();
    parallel_for(N, std::max<std::size_t>(1, parallel_floats / std::max<std::size_t>(C, 1)),
                 [&](std::size_t begin, std::size_t end) {
                     for (std::size_t i = begin; i < end; ++i) {
                         std::memcpy(y.data() + i * C, w + static_cast<std::size_t>(id[i]) * C, C * sizeof(float));
                     }
                 });

    // backward: grad_weight[v] += sum of grad_out[i] over the positions i with ids[i] == v
    auto backward = [weight, ids, options](Grad& grad_out, const Array&) {
        const std::size_t V = weight.shape()[0], C = weight.shape()[1];
        std::vector<std::size_t> count;                          // occurrences of each id
        if (options.scale_grad_by_freq || options.sparse) {
            count.assign(V, 0);
            for (std::int64_t v : ids) ++count[static_cast<std::size_t>(v)];
        }
        std::vector<float> scale;                                // 1 / count, for scale_grad_by_freq
        if (options.scale_grad_by_freq) {
            scale.assign(V, 1.0f);
            for (std::size_t v = 0; v < V; ++v) scale[v] = count[v] ? 1.0f / static_cast<float>(count[v]) : 1.0f;
        }

        if (options.sparse) {
            // the touched rows in increasing order, and where each lands in the compact values array
            RowSparse grad;
            std::vector<std::size_t> row_of(V, 0);
            for (std::size_t v = 0; v < V; ++v) {
                if (count[v] == 0 || static_cast<std::int64_t>(v) == options.padding_idx) continue;
                row_of[v] = grad.rows.size();
                grad.rows.push_back(static_cast<std::int64_t>(v));
            }
            grad.values = Array(Shape{grad.rows.size(), C});                // every row gets written
            scatter_add_rows(grad.values.data(), grad.rows.size(), grad_out->data(), ids, C, row_of, scale,
                             options.padding_idx, true);
            weight.accumulate_grad(std::move(grad));
            return;
        }

        Tensor grad_weight = weight.grad();                      // scatter straight into the existing grad
        if (!grad_weight.defined()) {
            weight.accumulate_grad(Array(xt::zeros<float>({V, C})));
            grad_weight = weight.grad();
        }
        scatter_add_rows(grad_weight.data().data(), V, grad_out->data(), ids, C, {}, scale, options.padding_idx);
    };
    return Tensor::from_op(std::move(y), {weight}, "embedding_lookup", std::move(backward), ReadsOutput::no);
}

}  // namespace xgrad
