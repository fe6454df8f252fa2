// scaled_dot_product_attention as one fused, memory-efficient kernel: an online softmax over blocks
// of keys, only each query row's log-sum-exp kept for the backward, which recomputes the scores block
// by block. No (L, S) array of scores survives the forward.
//
// Shapes: q (..., L, E), k (..., S, E), v (..., S, Ev) -> (..., L, Ev); the leading dims are the
// batch (B, nh). packed_qkv_attention runs the same kernel on one head's columns of a (B, T, 3C)
// projection, read and written in place through row strides. Per batch matrix, with
// P = softmax(scale q k^T + mask) and Z the dropout mask:
//   forward   out = (P * Z) v
//   backward  dv = (P * Z)^T dout;  dP = (dout v^T) * Z;  dS = P * (dP - rowsum(dout * out));
//             dq = scale dS k;      dk = scale dS^T q
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include <xtensor/xmath.hpp>

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/random.h"

namespace xgrad {

namespace {

// Key blocks of 256: for T <= 256 each query block's scores are one product over every key it sees
// (up to the diagonal), 28 products per (batch, head) at T = 256 instead of 70 with 64-key blocks, and
// OpenBLAS's per-call packing and zeroing paid that much less often. W6's best pass in each of six
// interleaved runs: 51.2-57.0 ms, against 53.9-65.1 ms with 64 (BENCHMARKS.md, "Attention blocks").
// A (64, 256) block of scores is 64 KiB.
constexpr std::size_t query_block = 64, key_block = 256;
constexpr float minus_infinity = -std::numeric_limits<float>::infinity();

// Where the mask of batch matrix b lives: a mask broadcast to (batch..., L, S) read through strides.
struct MaskView {
    const float* values = nullptr;   // float mask: added to the scores
    const bool* allowed = nullptr;   // bool mask: true = take part
    std::vector<std::size_t> batch_strides, batch_shape;
    std::size_t row_stride = 0, column_stride = 0;

    bool empty() const { return values == nullptr && allowed == nullptr; }
    std::size_t offset(std::size_t b) const   // of batch matrix b (flat over the batch dims)
    {
        std::size_t offset = 0;
        for (std::size_t axis = batch_shape.size(); axis-- > 0;) {
            offset += (b % batch_shape[axis]) * batch_strides[axis];
            b /= batch_shape[axis];
        }
        return offset;
    }
};

// Where batch matrix b (counted row-major over the batch dims) of an operand starts, and how far apart
// its rows are; each row's elements are contiguous. A contiguous (..., rows, cols) array, a transposed
// view (B, nh, T, hs) of a (B, T, nh, hs) one (nanoGPT's q, k and v), and one head's columns of a
// (B, T, 3C) projection are all such layouts: the kernel reads each where it lies.
struct Layout {
    std::vector<std::size_t> batch_shape, batch_strides;
    std::size_t row = 0;
    std::size_t offset(std::size_t b) const
    {
        std::size_t offset = 0;
        for (std::size_t axis = batch_shape.size(); axis-- > 0;) {
            offset += (b % batch_shape[axis]) * batch_strides[axis];
            b /= batch_shape[axis];
        }
        return offset;
    }
};

Layout contiguous(const Shape& batch_shape, std::size_t rows, std::size_t cols)
{
    Layout l{batch_shape, std::vector<std::size_t>(batch_shape.size()), cols};
    std::size_t step = rows * cols;
    for (std::size_t axis = batch_shape.size(); axis-- > 0;) {
        l.batch_strides[axis] = step;
        step *= batch_shape[axis];
    }
    return l;
}

// An operand of attention as the kernel reads it: where it lies when its rows are contiguous (any
// batch strides), else a contiguous copy.
struct Operand {
    Values copy;
    const float* data = nullptr;
    Layout layout;
};

Operand operand_of(const Tensor& t)
{
    const detail::TensorImpl& impl = detail::Access::impl(t);
    const std::size_t n = impl.shape.size();
    const Shape batch(impl.shape.begin(), impl.shape.end() - 2);
    Operand o;
    if (impl.strides[n - 1] == 1 || impl.shape[n - 1] == 1) {
        o.data = t.data_ptr();
        o.layout = Layout{batch, std::vector<std::size_t>(impl.strides.begin(), impl.strides.end() - 2),
                          impl.shape[n - 2] == 1 ? impl.shape[n - 1] : impl.strides[n - 2]};
        return o;
    }
    o.copy = t.values();
    o.data = o.copy.data();
    o.layout = contiguous(batch, impl.shape[n - 2], impl.shape[n - 1]);
    return o;
}

struct Problem {
    std::size_t batch, L, S, E, Ev;
    float scale, dropout_p;
    bool causal;
    std::uint64_t seed;
    MaskView mask;
    Layout q, k, v, out;   // dout is laid out as out
    Layout dq, dk, dv;     // where the backward adds the gradients
};

// The blocks' scores: s (rows, cols) = scale q_block k_block^T - base[r] for row r (nothing taken off
// when base is null), plus the mask, -inf where a key may not be seen (the bool mask's false, or
// above the causal diagonal). The rows start as -base and sgemm adds scale q k^T onto them: no pass of
// its own for the zeroing, the scale or the subtraction.
void block_scores(const Problem& P, float* s, const float* q, const float* k, std::size_t rows, std::size_t cols,
                  const float* base, std::size_t mask_offset, std::size_t i0, std::size_t j0)
{
    for (std::size_t r = 0; r < rows; ++r) std::fill_n(s + r * cols, cols, base ? -base[r] : 0.0f);
    gemm(false, true, rows, cols, P.E, P.scale, q, P.q.row, k, P.k.row, 1.0f, s, cols);   // + scale q k^T
    const MaskView& mask = P.mask;
    for (std::size_t r = 0; r < rows; ++r) {
        float* row = s + r * cols;
        if (!mask.empty()) {
            const std::size_t at = mask_offset + (i0 + r) * mask.row_stride;
            for (std::size_t c = 0; c < cols; ++c) {
                const std::size_t m = at + (j0 + c) * mask.column_stride;
                if (mask.values) row[c] += mask.values[m];
                else if (!mask.allowed[m]) row[c] = minus_infinity;
            }
        }
        if (P.causal) {
            for (std::size_t c = i0 + r + 1 > j0 ? i0 + r + 1 - j0 : 0; c < cols; ++c) row[c] = minus_infinity;
        }
    }
}

// The key blocks a query block [i0, i1) sees: all of them, or under is_causal those starting at or
// before its last row (the blocks entirely above the diagonal are skipped).
std::size_t key_end(std::size_t i1, std::size_t S, bool causal) { return causal ? std::min(S, i1) : S; }

// p *= Z / (1 - dropout_p) for the block's scores, Z drawn by counter_uniform over the flat index of
// (batch matrix, query row, key): the mask dropout() would draw for the (..., L, S) weights.
void apply_dropout(float* p, std::size_t rows, std::size_t cols, std::uint64_t seed, float dropout_p,
                   std::size_t flat_of_first_row, std::size_t S, std::size_t j0)
{
    const float keep_scale = 1.0f / (1.0f - dropout_p);
    for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t flat = flat_of_first_row + r * S + j0;
        for (std::size_t c = 0; c < cols; ++c) {
            p[r * cols + c] *= counter_uniform(seed, flat + c) >= dropout_p ? keep_scale : 0.0f;
        }
    }
}

// One query block of one batch matrix: out rows [i0, i1) and their log-sum-exp. q, k, v and out
// point at the batch matrix's first row.
void forward_block(const Problem& P, std::size_t b, std::size_t i0, std::size_t i1, const float* q, const float* k,
                   const float* v, float* out, float* lse)
{
    const std::size_t rows = i1 - i0, Ev = P.Ev, S = P.S;
    std::vector<float> best(rows, minus_infinity), row_sum(rows, 0.0f);   // per row: the max so far, sum of exp
    std::vector<float> acc(rows * Ev, 0.0f);
    Array s(Shape{rows * key_block});   // 64-byte aligned: the exp pass takes the same vector path each time
    const std::size_t mask_offset = P.mask.empty() ? 0 : P.mask.offset(b);
    const std::size_t end = key_end(i1, S, P.causal);
    for (std::size_t j0 = 0; j0 < end; j0 += key_block) {
        const std::size_t cols = std::min(key_block, end - j0);
        block_scores(P, s.data(), q + i0 * P.q.row, k + j0 * P.k.row, rows, cols, nullptr, mask_offset, i0, j0);
        for (std::size_t r = 0; r < rows; ++r) {              // the online softmax: rescale what came before
            float* row = s.data() + r * cols;
            const float new_max = std::max(best[r], row_max(row, cols));
            const float base = new_max == minus_infinity ? 0.0f : new_max;   // a row with nothing to see yet
            const float rescale = std::exp(best[r] - base);
            for (std::size_t c = 0; c < cols; ++c) row[c] -= base;
            best[r] = new_max;
            row_sum[r] *= rescale;
            for (std::size_t e = 0; e < Ev; ++e) acc[r * Ev + e] *= rescale;
        }
        auto block = Block{0, rows * cols}.at(s.data());
        xt::noalias(block) = xt::exp(block);                  // p = exp(s - max), one vectorised pass
        for (std::size_t r = 0; r < rows; ++r) row_sum[r] += lane_sum(s.data() + r * cols, cols);
        if (P.dropout_p > 0.0f) apply_dropout(s.data(), rows, cols, P.seed, P.dropout_p, (b * P.L + i0) * S, S, j0);
        gemm(false, false, rows, Ev, cols, 1.0f, s.data(), cols, v + j0 * P.v.row, P.v.row, 1.0f, acc.data(), Ev);
    }                                                         // acc += p v
    for (std::size_t r = 0; r < rows; ++r) {
        // No keys at all (S = 0): the weights are an empty row and their product with the empty v is 0, as
        // PyTorch's math gives. Keys that are all masked out: 0 / 0 = NaN, as PyTorch.
        const float inverse = S == 0 ? 0.0f : 1.0f / row_sum[r];
        float* out_row = out + (i0 + r) * P.out.row;
        for (std::size_t e = 0; e < Ev; ++e) out_row[e] = acc[r * Ev + e] * inverse;
        lse[i0 + r] = best[r] + std::log(row_sum[r]);
    }
}

// The whole backward of one batch matrix: its dq, dk and dv rows are this thread's alone.
void backward_matrix(const Problem& P, std::size_t b, const float* q, const float* k, const float* v, const float* out,
                     const float* lse, const float* dout, float* dq, float* dk, float* dv)
{
    const std::size_t L = P.L, S = P.S, E = P.E, Ev = P.Ev;
    const std::size_t ldq = P.q.row, ldk = P.k.row, ldv = P.v.row, ldo = P.out.row;
    const std::size_t lddq = P.dq.row, lddk = P.dk.row, lddv = P.dv.row;
    const std::size_t mask_offset = P.mask.empty() ? 0 : P.mask.offset(b);
    std::vector<float> D(L);                                  // rowsum(dout * out)
    for (std::size_t i = 0; i < L; ++i) {
        float total = 0.0f;
        for (std::size_t e = 0; e < Ev; ++e) total += dout[i * ldo + e] * out[i * ldo + e];
        D[i] = total;
    }
    Array p_block(Shape{query_block * key_block}), pz_block(Shape{query_block * key_block});
    Array dp_block(Shape{query_block * key_block});
    float* p = p_block.data();
    float* pz = pz_block.data();
    float* dp = dp_block.data();
    for (std::size_t i0 = 0; i0 < L; i0 += query_block) {
        const std::size_t i1 = std::min(L, i0 + query_block), rows = i1 - i0;
        const std::size_t end = key_end(i1, S, P.causal);
        for (std::size_t j0 = 0; j0 < end; j0 += key_block) {
            const std::size_t cols = std::min(key_block, end - j0);
            block_scores(P, p, q + i0 * ldq, k + j0 * ldk, rows, cols, lse + i0, mask_offset, i0, j0);   // s - lse
            auto block = Block{0, rows * cols}.at(p);
            xt::noalias(block) = xt::exp(block);              // P, recomputed
            for (std::size_t r = 0; r < rows; ++r) {          // a row whose keys are all masked out: P = 0 / 0,
                if (lse[i0 + r] == minus_infinity) std::fill_n(p + r * cols, cols, std::nanf(""));   // as the forward's
            }
            const float* pzd = p;
            if (P.dropout_p > 0.0f) {
                std::copy_n(p, rows * cols, pz);
                apply_dropout(pz, rows, cols, P.seed, P.dropout_p, (b * L + i0) * S, S, j0);
                pzd = pz;
            }
            const float* g = dout + i0 * ldo;
            gemm(true, false, cols, Ev, rows, 1.0f, pzd, cols, g, ldo, 1.0f, dv + j0 * lddv, lddv);   // dv += (P Z)^T dout
            gemm(false, true, rows, cols, Ev, 1.0f, g, ldo, v + j0 * ldv, ldv, 0.0f, dp, cols);     // dP = dout v^T
            if (P.dropout_p > 0.0f) apply_dropout(dp, rows, cols, P.seed, P.dropout_p, (b * L + i0) * S, S, j0);
            for (std::size_t r = 0; r < rows; ++r) {          // dS = scale P (dP - D), the scale folded in
                for (std::size_t c = 0; c < cols; ++c) {
                    const std::size_t at = r * cols + c;
                    dp[at] = P.scale * p[at] * (dp[at] - D[i0 + r]);
                }
            }
            if (P.mask.allowed) {   // a key the bool mask takes out gets no gradient, even in a row of NaN weights
                for (std::size_t r = 0; r < rows; ++r) {      // (all keys out: P = 0/0), as masked_fill's backward
                    const std::size_t at = mask_offset + (i0 + r) * P.mask.row_stride;
                    for (std::size_t c = 0; c < cols; ++c) {
                        if (!P.mask.allowed[at + (j0 + c) * P.mask.column_stride]) dp[r * cols + c] = 0.0f;
                    }
                }
            }
            gemm(false, false, rows, E, cols, 1.0f, dp, cols, k + j0 * ldk, ldk, 1.0f, dq + i0 * lddq, lddq);   // dq += dS k
            gemm(true, false, cols, E, rows, 1.0f, dp, cols, q + i0 * ldq, ldq, 1.0f, dk + j0 * lddk, lddk);    // dk += dS^T q
        }
    }
}

// The forward over every batch matrix: each (batch matrix, query block) a task that owns its rows of
// out and lse, so the result is the same on any number of threads.
void attend(const Problem& P, const float* q, const float* k, const float* v, float* out, float* lse)
{
    const std::size_t blocks = (P.L + query_block - 1) / query_block;
    parallel_rows(P.batch * blocks, query_block * (P.S + P.Ev), [&](std::size_t first, std::size_t last) {
        for (std::size_t task = first; task < last; ++task) {
            const std::size_t b = task / blocks, i0 = (task % blocks) * query_block;
            forward_block(P, b, i0, std::min(P.L, i0 + query_block), q + P.q.offset(b), k + P.k.offset(b),
                          v + P.v.offset(b), out + P.out.offset(b), lse + b * P.L);
        }
    });
}

// The backward: each thread owns whole batch matrices, their dq, dk and dv rows (or, packed, their
// head's columns of those rows). dq, dk and dv are added to, not overwritten.
void attend_backward(const Problem& P, const float* q, const float* k, const float* v, const float* out,
                     const float* lse, const float* dout, float* dq, float* dk, float* dv)
{
    parallel_rows(P.batch, P.L * P.S, [&](std::size_t first, std::size_t last) {
        for (std::size_t b = first; b < last; ++b) {
            const std::size_t qo = P.q.offset(b), ko = P.k.offset(b), vo = P.v.offset(b), oo = P.out.offset(b);
            backward_matrix(P, b, q + qo, k + ko, v + vo, out + oo, lse + b * P.L, dout + oo, dq + P.dq.offset(b),
                            dk + P.dk.offset(b), dv + P.dv.offset(b));
        }
    });
}

// The Problem of an options struct, for batch matrices of (batch_shape..., L, E) queries and
// (batch_shape..., S, E), (batch_shape..., S, Ev) keys and values, its layouts left to the caller.
// Checks the options and the mask's broadcast to (batch..., L, S) on behalf of `op`.
Problem make_problem(const char* op, const AttentionOptions& options, const Shape& batch_shape, std::size_t L,
                     std::size_t S, std::size_t E, std::size_t Ev)
{
    XGRAD_CHECK(options.dropout_p_ >= 0.0f && options.dropout_p_ < 1.0f, op, ": dropout_p must be in [0, 1), got ",
                options.dropout_p_);
    const bool bool_mask = options.attn_mask_.defined() && options.attn_mask_.dtype() == kBool;
    const bool float_mask = options.attn_mask_.defined() && !bool_mask;
    XGRAD_CHECK(!(options.is_causal_ && (float_mask || bool_mask)), op,
                ": is_causal and attn_mask cannot both be given (is_causal makes its own mask)");
    XGRAD_CHECK(!float_mask || !options.attn_mask_.requires_grad(), op,
                ": a float attn_mask gets no gradient here; pass attn_mask.detach()");

    Problem P{shape_numel(batch_shape), L, S, E, Ev,
              options.scale_ ? *options.scale_ : 1.0f / std::sqrt(static_cast<float>(E)), options.dropout_p_,
              options.is_causal_, options.dropout_p_ > 0.0f ? default_generator().bits() : 0, {},
              contiguous(batch_shape, L, E), contiguous(batch_shape, S, E), contiguous(batch_shape, S, Ev),
              contiguous(batch_shape, L, Ev), contiguous(batch_shape, L, E), contiguous(batch_shape, S, E),
              contiguous(batch_shape, S, Ev)};
    if (float_mask || bool_mask) {
        const Shape mask_shape = options.attn_mask_.shape();
        Shape full = batch_shape;
        full.push_back(L);
        full.push_back(S);
        bool fits = mask_shape.size() <= full.size();
        for (std::size_t i = 0; fits && i < mask_shape.size(); ++i) {   // right-aligned: equal, or 1 to stretch
            const std::size_t d = mask_shape[mask_shape.size() - 1 - i];
            fits = d == 1 || d == full[full.size() - 1 - i];
        }
        XGRAD_CHECK(fits,
                    op, ": attn_mask of shape ", shape_str(mask_shape), " does not broadcast to the scores' shape ",
                    shape_str(full), " (..., L, S)");
        const std::vector<std::size_t> strides = stretch_strides(mask_shape, full);
        P.mask.batch_shape = batch_shape;
        P.mask.batch_strides.assign(strides.begin(), strides.end() - 2);
        P.mask.row_stride = strides[full.size() - 2];
        P.mask.column_stride = strides[full.size() - 1];   // the mask's memory: KeptMask::restore
    }
    return P;
}

// The mask arrays, kept alive with the backward, and pointed at again when it runs (a float mask as
// a contiguous copy: the kernel reads it through the broadcast's strides).
struct KeptMask {
    Values values;
    std::optional<BoolArray> allowed;
    explicit KeptMask(const AttentionOptions& o)
    {
        if (!o.attn_mask_.defined()) return;
        if (o.attn_mask_.dtype() != kBool) {
            values = o.attn_mask_.values();
            return;
        }
        const Tensor m = o.attn_mask_.contiguous();
        allowed = BoolArray::from_shape(m.shape());
        if (allowed->size() > 0) std::copy_n(m.data_ptr<bool>(), allowed->size(), allowed->data());
    }
    Problem restore(Problem P) const
    {
        if (values.size()) P.mask.values = values.data();
        if (allowed) P.mask.allowed = allowed->data();
        return P;
    }
};

// float64: the same function composed of the core's ops (matmul, masked_fill, softmax, dropout), which
// compute and differentiate in double; its arguments checked by the caller
Tensor composed_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o)
{
    const std::size_t L = q.size(-2), S = k.size(-2);
    const double scale = o.scale_ ? *o.scale_ : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
    Tensor scores = matmul(q, transpose(k, -2, -1)) * scale;   // (..., L, S)
    const float minus_infinity = -std::numeric_limits<float>::infinity();
    if (o.attn_mask_.defined() && o.attn_mask_.dtype() == kBool) scores = masked_fill(scores, logical_not(o.attn_mask_), minus_infinity);
    else if (o.attn_mask_.defined()) scores = scores + o.attn_mask_;
    if (o.is_causal_) scores = masked_fill(scores, logical_not(causal_mask(L, S)), minus_infinity);
    return matmul(dropout(softmax(scores), o.dropout_p_), v);
}

}  // namespace

// q (..., L, E), k (..., S, E), v (..., S, Ev) -> (..., L, Ev)
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options)
{
    const OpScope scope("scaled_dot_product_attention");
    const char* op = "scaled_dot_product_attention";
    XGRAD_CHECK(q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim(), op, ": expected q (..., L, E), k (..., S, E) ",
                "and v (..., S, Ev) with the same number of axes (at least 2), got q ", shape_str(q.shape()), ", k ",
                shape_str(k.shape()), ", v ", shape_str(v.shape()));
    const Shape qs = q.shape(), ks = k.shape(), vs = v.shape();
    const std::size_t n = qs.size(), L = qs[n - 2], E = qs[n - 1], S = ks[n - 2], Ev = vs[n - 1];
    const Shape batch_shape(qs.begin(), qs.end() - 2);
    XGRAD_CHECK(Shape(ks.begin(), ks.end() - 2) == batch_shape && Shape(vs.begin(), vs.end() - 2) == batch_shape, op,
                ": q, k and v must have the same batch dims, got q ", shape_str(qs), ", k ", shape_str(ks), ", v ",
                shape_str(vs));
    XGRAD_CHECK(ks[n - 1] == E, op, ": q and k must have the same feature size E, got q ", shape_str(qs), " and k ",
                shape_str(ks));
    XGRAD_CHECK(vs[n - 2] == S, op, ": k and v must have the same number of keys S, got k ", shape_str(ks), " and v ",
                shape_str(vs));
    Problem P = make_problem(op, options, batch_shape, L, S, E, Ev);
    if (q.dtype() == kFloat64 || k.dtype() == kFloat64 || v.dtype() == kFloat64) [[unlikely]] {
        XGRAD_CHECK(q.dtype() == k.dtype() && k.dtype() == v.dtype(), op, ": expected q, k and v of one dtype, got ",
                    dtype_name(q.dtype()), ", ", dtype_name(k.dtype()), " and ", dtype_name(v.dtype()));
        return composed_attention(q, k, v, options);
    }
    KeptMask kept(options);
    P = kept.restore(P);
    const Operand qo = operand_of(q), ko = operand_of(k), vo = operand_of(v);   // read where they lie
    P.q = qo.layout, P.k = ko.layout, P.v = vo.layout;

    Shape out_shape = batch_shape;
    out_shape.push_back(L);
    out_shape.push_back(Ev);
    Array y(out_shape);                                       // (..., L, Ev)
    Array lse(Shape{P.batch, L});                             // log-sum-exp of each query row, for the backward
    attend(P, qo.data, ko.data, vo.data, y.data(), lse.data());

    return from_op(std::move(y), {q, k, v}, op,
                   [q, k, v, P, lse = std::move(lse), kept = std::move(kept)](GradOutput& grad_out, const Values& y) {
        Array dq = xt::zeros<float>(q.shape()), dk = xt::zeros<float>(k.shape()), dv = xt::zeros<float>(v.shape());
        const Operand qo = operand_of(q), ko = operand_of(k), vo = operand_of(v);
        Problem R = kept.restore(P);
        R.q = qo.layout, R.k = ko.layout, R.v = vo.layout;
        attend_backward(R, qo.data, ko.data, vo.data, y.data(), lse.data(), grad_out.read().data(), dq.data(), dk.data(),
                        dv.data());
        q.accumulate_grad(std::move(dq));
        k.accumulate_grad(std::move(dk));
        v.accumulate_grad(std::move(dv));
    });
}

// qkv (B, T, 3C) -> (B, T, C): batch matrix (b, h) reads head h's hs = C / nh columns of q, k and v
// (columns h hs, C + h hs and 2C + h hs of each row, rows 3C apart) and writes its columns of y.
Tensor packed_qkv_attention(const Tensor& qkv, std::size_t num_heads, const AttentionOptions& options)
{
    const OpScope scope("packed_qkv_attention");
    const char* op = "packed_qkv_attention";
    const Shape s = qkv.shape();
    XGRAD_CHECK(s.size() == 3 && s[2] % 3 == 0, op, ": expected qkv of shape (B, T, 3C), q, k and v side by side, got ",
                shape_str(s));
    const std::size_t B = s[0], T = s[1], C = s[2] / 3;
    XGRAD_CHECK(num_heads >= 1 && C % num_heads == 0, op, ": num_heads must divide C = ", C, " (qkv ", shape_str(s),
                "), got ", num_heads);
    const std::size_t hs = C / num_heads;
    Problem P = make_problem(op, options, Shape{B, num_heads}, T, T, hs, hs);
    if (qkv.dtype() == kFloat64) [[unlikely]] {   // composed: split, heads as a batch axis, and back
        const auto heads = [&](std::int64_t part) {
            return qkv.narrow(2, part * static_cast<std::int64_t>(C), static_cast<std::int64_t>(C))
                .view({static_cast<std::ptrdiff_t>(B), static_cast<std::ptrdiff_t>(T), static_cast<std::ptrdiff_t>(num_heads),
                       static_cast<std::ptrdiff_t>(hs)})
                .transpose(1, 2);
        };
        return composed_attention(heads(0), heads(1), heads(2), options).transpose(1, 2).reshape(
            {static_cast<std::ptrdiff_t>(B), static_cast<std::ptrdiff_t>(T), static_cast<std::ptrdiff_t>(C)});
    }
    P.q = P.k = P.v = P.dq = P.dk = P.dv = Layout{{B, num_heads}, {T * 3 * C, hs}, 3 * C};
    P.out = Layout{{B, num_heads}, {T * C, hs}, C};
    KeptMask kept(options);
    P = kept.restore(P);

    Array y(Shape{B, T, C});
    Array lse(Shape{P.batch, T});
    const Values d = qkv.values();
    attend(P, d.data(), d.data() + C, d.data() + 2 * C, y.data(), lse.data());

    return from_op(std::move(y), {qkv}, op,
                   [qkv, P, C, lse = std::move(lse), kept = std::move(kept)](GradOutput& grad_out, const Values& y) {
        Array g = xt::zeros<float>(qkv.shape());              // dq, dk and dv side by side, as qkv
        const Values d = qkv.values();
        attend_backward(kept.restore(P), d.data(), d.data() + C, d.data() + 2 * C, y.data(), lse.data(),
                        grad_out.read().data(), g.data(), g.data() + C, g.data() + 2 * C);
        qkv.accumulate_grad(std::move(g));
    });
}

Tensor causal_mask(std::size_t L, std::size_t S) { return tril(ones({L, S}, kBool)); }

}  // namespace xgrad
