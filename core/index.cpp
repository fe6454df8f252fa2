// embedding_lookup: the row gather under nn::Embedding, and its scatter-add backward.
#include <cstring>

#include "core/check.h"
#include "core/ops.h"
#include "core/parallel.h"

namespace xgrad {

namespace {

// "(3, 12)": the multi-index of flat position `flat` in an array of `shape`.
std::string position_str(std::size_t flat, const IdArray::shape_type& shape)
{
    Shape index(shape.size());
    for (std::size_t axis = shape.size(); axis-- > 0;) {
        index[axis] = flat % shape[axis];
        flat /= shape[axis];
    }
    return shape_str(index);
}

constexpr std::size_t parallel_floats = 1 << 15;   // below this much work, threads cost more than they save

}  // namespace

// weight (V, C), ids (...) -> (..., C)
Tensor embedding_lookup(const Tensor& weight, const IdArray& ids)
{
    check(weight.dim() == 2, "embedding_lookup: expected a 2-D weight (num_embeddings, embedding_dim), got ",
          shape_str(weight.shape()));
    const std::size_t V = weight.shape()[0], C = weight.shape()[1], N = ids.size();
    const std::int64_t* id = ids.data();
    for (std::size_t i = 0; i < N; ++i) {   // every id is checked before anything is made
        check(id[i] >= 0 && static_cast<std::size_t>(id[i]) < V, "embedding_lookup: id ", id[i], " at position ",
              position_str(i, ids.shape()), " is out of range for num_embeddings = ", V, " (valid ids are 0 to ",
              static_cast<std::ptrdiff_t>(V) - 1, ")");
    }

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

    return Tensor::from_op(std::move(y), {weight}, "embedding_lookup", [weight, ids](const Array& grad_out, const Array&) {
        // grad_weight[v] = sum of grad_out[i] over every position i with ids[i] == v.
        // It must accumulate: an id can appear many times in one batch.
        // On several threads each thread owns a range of rows and scans all ids in order, so every row
        // sums its contributions in the same order whatever the thread count: bitwise deterministic.
        const std::size_t V = weight.shape()[0], C = weight.shape()[1], N = ids.size();
        Tensor grad_weight = weight.grad();
        if (!grad_weight.defined()) {
            grad_weight = zeros({V, C});
            weight.set_grad(grad_weight);
        }
        float* gw = grad_weight.data().data();
        const float* g = grad_out.data();
        const std::int64_t* id = ids.data();
        auto scatter_rows = [&](std::size_t row_begin, std::size_t row_end) {
            for (std::size_t i = 0; i < N; ++i) {
                auto v = static_cast<std::size_t>(id[i]);
                if (v < row_begin || v >= row_end) continue;
                float* dst = gw + v * C;
                const float* src = g + i * C;
                for (std::size_t c = 0; c < C; ++c) dst[c] += src[c];   // d out[i] / d weight[v] = 1
            }
        };
        if (N * C < parallel_floats) {
            scatter_rows(0, V);
        } else {
            parallel_for(V, 1, scatter_rows);
        }
    });
}

}  // namespace xgrad
