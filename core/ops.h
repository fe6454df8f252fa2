// Every op in xgrad, with its shape contract. Each differentiable one is defined beside its backward in
// one of core/elementwise.cpp, reduce.cpp, shape.cpp, matmul.cpp or index.cpp (written with
// core/autograd.h; docs/writing-an-op.md shows how to add one); their integer and bool side, and the
// ops without gradients, in core/nograd.cpp.
//
//     Tensor x = randn({4, 3});
//     Tensor w = randn({3, 2}).requires_grad_();
//     Tensor b = zeros({2}).requires_grad_();
//     Tensor loss = mean(relu(matmul(x, w) + b));   // b broadcasts over the 4 rows
//     loss.backward();                              // fills w.grad() and b.grad()
//
// Shapes broadcast as in NumPy: trailing axes are aligned and an axis of size 1 stretches.
// Axes may be negative (-1 is the last). Mistakes throw xgrad::Error naming the op and the shapes.
//
// Dtypes: autograd runs in float32 and float64; two dtypes meet in torch's promoted one (result_type).
// Integer and bool tensors compute without gradients, as torch's: add, sub, mul, pow, neg, abs,
// floor_divide and remainder stay integral and wrap around; div gives the default float dtype; sum
// gives int64; mean refuses them; a float function (exp, ...) wants float32 or float64.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace xgrad {

// ---- element-wise, broadcasting: a (...), b (...) -> broadcast(a, b) ----------------------------------
// add and sub take their operands by value: one passed as a temporary that no other handle shares
// (tok(ids) + pos(t)) lends its buffer to the result when it has the result's shape.
Tensor add(Tensor a, Tensor b);
Tensor sub(Tensor a, Tensor b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);          // a^b, as torch.pow (std::pow's values)
// the larger (smaller) of a and b, broadcast, as torch.maximum (minimum): NaN if either is; at a tie
// each gets half the gradient, as torch's
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// a // b and a % b as torch.floor_divide and torch.remainder (Python's: the quotient rounds down, the
// remainder takes b's sign); remainder's gradient is 1 for a and -floor(a / b) for b, floor_divide has none
Tensor floor_divide(const Tensor& a, const Tensor& b);
Tensor remainder(const Tensor& a, const Tensor& b);

// ---- element-wise with a scalar: x (...) -> (...) --------------------------------------------------------
// The number is taken in the tensor's type (float for float32), as torch's; with an integral tensor it
// is a float number: the tensor computes in the default float dtype (ids * 0.5 is float32).
Tensor add(const Tensor& x, double s);
Tensor mul(const Tensor& x, double s);
Tensor rsub(double s, const Tensor& x);         // s - x
Tensor rdiv(double s, const Tensor& x);         // s / x
Tensor pow(const Tensor& x, double exponent);  // x^p, as torch.pow: (-2)^3 = -8, 0^0 = 1
// An integer number, as libtorch's Scalar(1): beside an integer or bool tensor it stays integral (ids + 1
// is int64, wrapping as torch's), beside a float tensor it is the double above.
Tensor number_tensor(std::int64_t s);   // s as a 0-D int64 tensor
template <std::integral I>
Tensor add(const Tensor& x, I s)
{
    return x.is_floating_point() ? add(x, static_cast<double>(s)) : add(x, number_tensor(static_cast<std::int64_t>(s)));
}
template <std::integral I>
Tensor mul(const Tensor& x, I s)
{
    return x.is_floating_point() ? mul(x, static_cast<double>(s)) : mul(x, number_tensor(static_cast<std::int64_t>(s)));
}
template <std::integral I>
Tensor rsub(I s, const Tensor& x)
{
    return x.is_floating_point() ? rsub(static_cast<double>(s), x) : sub(number_tensor(static_cast<std::int64_t>(s)), x);
}

// ---- element-wise functions: x (...) -> (...) -------------------------------------------------------------
Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);      // |x|: abs(-0.0) = 0.0; the gradient is sign(x), 0 at x = 0 (torch's sgn)
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x, std::string_view approximate = "none");   // "none": x Phi(x) (erf); or "tanh"
Tensor softplus(const Tensor& x, float beta = 1.0f, float threshold = 20.0f);   // log(1 + e^(beta x)) / beta
// min(max(x, min), max), either bound optional; the gradient passes where x is within them (torch.clamp)
Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max);

// ---- reductions -------------------------------------------------------------------------------------------
Tensor sum(const Tensor& x);                                              // (...) -> ()
Tensor mean(const Tensor& x);                                             // (...) -> ()
Tensor sum(const Tensor& x, std::vector<int> axes, bool keepdim = false); // drops (or keeps as 1) the axes
Tensor mean(const Tensor& x, std::vector<int> axes, bool keepdim = false);
Tensor max(const Tensor& x, int axis, bool keepdim = false);              // values; ties: first wins the grad
Tensor min(const Tensor& x, int axis, bool keepdim = false);              // the same for the smallest
// the index (int64) of the first largest (smallest) element along dim, or in x flattened; NaN is largest
Tensor argmax(const Tensor& x, std::optional<int> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& x, std::optional<int> dim = std::nullopt, bool keepdim = false);
Tensor max(const Tensor& x);                          // (...) -> (); ties share the gradient evenly, as torch's
Tensor min(const Tensor& x);                          // (...) -> (); the same
// (...) -> the variance over the axes (all when empty), over n - 1 when unbiased, else n, as torch.var
Tensor var(const Tensor& x, std::vector<int> axes, bool unbiased = true, bool keepdim = false);
// sqrt(var), as torch.std; where it is 0 the gradient is 0, as torch's (not NaN)
Tensor std_dev(const Tensor& x, std::vector<int> axes, bool unbiased = true, bool keepdim = false);
Tensor softmax(const Tensor& x);                                          // over the last axis
Tensor log_softmax(const Tensor& x);                                      // over the last axis
Tensor softmax(const Tensor& x, int dim);                                 // over any axis, as torch.softmax(x, dim)
Tensor log_softmax(const Tensor& x, int dim);

// ---- shape: views of x, sharing its storage (core/view.cpp; the same as Tensor's members) ---------------------
// One entry of `shape` may be -1 (inferred). view() needs strides that allow it; reshape() is a view when
// they do and a contiguous copy when not, as torch's.
Tensor reshape(Tensor x, std::vector<std::ptrdiff_t> shape);
Tensor view(Tensor x, std::vector<std::ptrdiff_t> shape);
Tensor transpose(const Tensor& x, int axis0, int axis1);
Tensor permute(const Tensor& x, std::vector<int> axes);
std::vector<Tensor> split(const Tensor& x, std::size_t split_size, int axis);   // last piece may be smaller
// x (..., n, ...) -> x without axis `dim`: its slice at `index` (negative counts from the end), as torch.select
Tensor select(const Tensor& x, int dim, std::int64_t index);

// ---- copies ----------------------------------------------------------------------------------------------------
Tensor concat(const std::vector<Tensor>& xs, int axis);                  // sizes add up along axis
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);   // where mask (bool, or != 0) broadcasts to x

// ---- matrix products: OpenBLAS sgemm ----------------------------------------------------------------------
// a (..., M, K) @ b (..., K, N) -> (..., M, N): the batch dims (...) broadcast as NumPy's, so
// (B, nh, T, hs) @ (B, nh, hs, T), (B, T, C) @ (C, D) and (1, M, K) @ (B, K, N) all work.
Tensor matmul(const Tensor& a, const Tensor& b);

// x (..., in) @ weight (out, in)^T + bias (out) -> (..., out), as torch.nn.functional.linear: one sgemm
// with weight transposed by flag. bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

// ---- indexing ------------------------------------------------------------------------------------------------
struct LookupOptions {
    std::int64_t padding_idx = -1;      // this row gets no gradient; -1: none (already normalised to >= 0)
    std::optional<float> max_norm;      // rows the ids use whose norm exceeds this are first rescaled to it, in place
    float norm_type = 2.0f;             // the p of the p-norm for max_norm
    bool scale_grad_by_freq = false;    // divide each row's gradient by its id's count in `ids`
    bool sparse = false;                // give weight a RowSparse gradient of the touched rows only
    std::string who = "embedding_lookup";   // named in the error for an id out of range
    bool position_table = false;        // the table holds positions: an id past its end is a sequence
                                        // longer than block_size, and the error says so
};

// weight (V, C), ids (...) -> (..., C): out[i] = weight[ids[i]]. The backward scatter-adds the upstream
// rows into weight's gradient. Every id must be in [0, V): checked before anything changes.
Tensor embedding_lookup(const Tensor& weight, const IdArray& ids, const LookupOptions& options = {});
// the same with the ids as an int64 (or int32) tensor, as torch.nn.functional.embedding takes them
Tensor embedding_lookup(const Tensor& weight, const Tensor& ids, const LookupOptions& options = {});
// the ids of an int64 (or int32) tensor as an IdArray (a copy); any other dtype is refused naming `who`
IdArray id_array(const Tensor& ids, const std::string& who);

// ---- attention ---------------------------------------------------------------------------------------------
struct AttentionOptions {
    // A mask broadcast to (..., L, S), as PyTorch's SDPA takes it: a bool tensor, true = takes part in
    // attention (nn::MultiheadAttention's convention is the opposite), or a float one added to the
    // scores (it gets no gradient).
    AttentionOptions& attn_mask(Tensor v) { attn_mask_ = std::move(v); return *this; }
    AttentionOptions& dropout_p(float v) { dropout_p_ = v; return *this; }   // on the weights, before @ v
    AttentionOptions& is_causal(bool v) { is_causal_ = v; return *this; }    // query i sees keys 0..i
    AttentionOptions& scale(float v) { scale_ = v; return *this; }           // default 1 / sqrt(E)

    Tensor attn_mask_;
    float dropout_p_ = 0.0f;
    bool is_causal_ = false;
    std::optional<float> scale_;
};

// q (..., L, E), k (..., S, E), v (..., S, Ev) -> (..., L, Ev): softmax(scale q k^T + mask) v, as
// torch.nn.functional.scaled_dot_product_attention (PyTorch 2.x), in one fused kernel that keeps no
// (L, S) array (core/attention.cpp). The batch dims (...) of q, k and v must be equal.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options = {});

// qkv (B, T, 3C), q, k and v side by side as nanoGPT's c_attn makes them -> (B, T, C): the same as
// splitting qkv, viewing each part as (B, T, nh, hs), transposing it to (B, nh, T, hs), running
// scaled_dot_product_attention and merging the heads back, with none of those copies. The kernel
// reads each head's columns in place and writes its columns of the result; the mask, if any,
// broadcasts to (B, nh, T, T). nn::CausalSelfAttention's forward.
Tensor packed_qkv_attention(const Tensor& qkv, std::size_t num_heads, const AttentionOptions& options = {});

// x (...) -> (...): each element zeroed with probability p, the others scaled by 1 / (1 - p), as
// torch.nn.functional.dropout. p = 0 or training = false return x itself (no copy, no node).
Tensor dropout(const Tensor& x, float p, bool training = true);

// (L, S) -> the causal mask as SDPA's bool mask: true at (i, j) for j <= i (torch.tril(ones(L, S))).
Tensor causal_mask(std::size_t L, std::size_t S);

// ---- selection and comparison (core/select.cpp, core/nograd.cpp) ------------------------------------------
// x (...) -> shape: out.flat[i] = x.flat[flat[i]], as torch.take; the backward adds into each offset
// (an offset may repeat). Python's advanced indexing (x[list], x[mask]) reads: the bindings turn an
// index into offsets, and name the node `op` as torch names it ("index"; a string literal).
Tensor take(const Tensor& x, std::vector<std::size_t> flat, const Shape& shape, const char* op = "take");
// x with the order along each of dims reversed, as torch.flip (a copy; its gradient flips back)
Tensor flip(const Tensor& x, const std::vector<std::int64_t>& dims);
// x shifted by shifts[k] along dims[k], wrapping around, as torch.roll; no dims: over the flattened x
Tensor roll(const Tensor& x, const std::vector<std::int64_t>& shifts, const std::vector<std::int64_t>& dims = {});
// x tiled repeats[d] times along each axis (extra leading repeats add axes), as x.repeat(...) (a copy)
Tensor repeat(const Tensor& x, const std::vector<std::int64_t>& repeats);
// out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (and so on for the others), as torch.gather: index
// an int64 tensor of x's rank, no larger than x but along dim; its gradient adds into the positions read
Tensor gather(const Tensor& x, std::int64_t dim, const Tensor& index);
// x (...) -> (...): a copy of x with x.flat[flat[i]] = values[i], values broadcast to `shape` (flat.size()
// elements); the gradient reaches values at those offsets and x everywhere else. x[index] = values.
Tensor index_put(const Tensor& x, const std::vector<std::size_t>& flat, const Shape& shape, const Tensor& values);
// The same in place, through x into its storage (torch's index_put_): recorded as index_put when x has
// history or values requires grad, refused on a leaf that requires grad while grad mode is on
void index_put_(const Tensor& x, const std::vector<std::size_t>& flat, const Shape& shape, const Tensor& values);
// n tensors (...) of one shape -> (..., n, ...) with the new axis at `axis`, as torch.stack
Tensor stack(const std::vector<Tensor>& xs, int axis = 0);
// (..., M, N) -> (..., M, N): zero above (tril) or below (triu) the `diagonal`-th diagonal, as torch.tril
Tensor tril(const Tensor& x, std::int64_t diagonal = 0);
Tensor triu(const Tensor& x, std::int64_t diagonal = 0);
// x (..., N) -> the k largest (or smallest) of each row, sorted, (..., k), and their indices (..., k)
std::pair<Tensor, Tensor> topk(const Tensor& x, std::size_t k, bool largest = true);   // indices int64
// probs (N) or (B, N) of non-negative weights -> (num_samples) or (B, num_samples) ids, as torch.multinomial
class Generator;
Tensor multinomial(const Tensor& probs, std::size_t num_samples, bool replacement, Generator& rng);   // int64
// The dtype an op of a and b computes in, as torch.result_type: core/dtype.h's rule, a 0-D tensor
// ranking below one with dimensions
Dtype result_type(const Tensor& a, const Tensor& b);

// Bits and truth, without gradients: bitwise ops of integral and bool tensors (bool: and, or, xor, not),
// logical ops of any dtypes (!= 0 is true) giving bool tensors; a and b broadcast, in their promoted dtype
Tensor bitwise_and(const Tensor& a, const Tensor& b);
Tensor bitwise_or(const Tensor& a, const Tensor& b);
Tensor bitwise_xor(const Tensor& a, const Tensor& b);
Tensor bitwise_not(const Tensor& x);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_xor(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& x);

enum class Comparison { eq, ne, lt, le, gt, ge };
// a (...) op b (...) broadcast -> a bool tensor, as torch.eq, ...: any dtypes, compared in the dtype they
// promote to (int64 with float32 in float32); no gradient
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
// condition (bool), a, b broadcast together -> a where condition is true, else b, as torch.where; the
// gradient reaches a where condition holds and b elsewhere
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

// ---- operators --------------------------------------------------------------------------------------------------
inline Tensor operator+(Tensor a, Tensor b) { return add(std::move(a), std::move(b)); }
inline Tensor operator-(Tensor a, Tensor b) { return sub(std::move(a), std::move(b)); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& x, double s) { return add(x, s); }
inline Tensor operator+(double s, const Tensor& x) { return add(x, s); }
inline Tensor operator-(const Tensor& x, double s) { return add(x, -s); }
inline Tensor operator-(double s, const Tensor& x) { return rsub(s, x); }
inline Tensor operator*(const Tensor& x, double s) { return mul(x, s); }
inline Tensor operator*(double s, const Tensor& x) { return mul(x, s); }
inline Tensor operator/(const Tensor& x, double s) { return mul(x, 1.0 / s); }
inline Tensor operator/(double s, const Tensor& x) { return rdiv(s, x); }
template <std::integral I>
Tensor operator+(const Tensor& x, I s) { return add(x, s); }
template <std::integral I>
Tensor operator+(I s, const Tensor& x) { return add(x, s); }
template <std::integral I>
Tensor operator-(const Tensor& x, I s) { return add(x, -static_cast<std::int64_t>(s)); }
template <std::integral I>
Tensor operator-(I s, const Tensor& x) { return rsub(s, x); }
template <std::integral I>
Tensor operator*(const Tensor& x, I s) { return mul(x, s); }
template <std::integral I>
Tensor operator*(I s, const Tensor& x) { return mul(x, s); }

}  // namespace xgrad
