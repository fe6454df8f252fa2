// The raw-pointer kernels under the ops: matrix products, row reductions, softmax rows, element-wise
// maps over vector blocks, and the embedding's scatter-add. Each splits its work across threads by
// the determinism rule of core/parallel.h: bitwise the same results on any number of threads.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <xtensor/xadapt.hpp>
#include <xtensor/xnoalias.hpp>

#include "core/array.h"
#include "core/check.h"
#include "core/parallel.h"

namespace xgrad {

// ---- matrix products: OpenBLAS sgemm --------------------------------------------------------------------
// c (m, n) = alpha op(a) (m, k) @ op(b) (k, n) + beta c, all row-major; op(x) is x^T when its flag is
// set (the transpose is BLAS's, never a copy). lda, ldb and ldc are the distances between the rows of
// a, b and c as stored; the shorter forms take them contiguous. Small products run OpenBLAS on one
// thread, large ones on all of xgrad's threads.
// T is float (sgemm) or double (dgemm).
template <class T>
void gemm(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);
template <class T>
void gemm(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, const T* b,
          T beta, T* c)
{
    gemm(transpose_a, transpose_b, m, n, k, alpha, a, transpose_a ? m : k, b, transpose_b ? k : n, beta, c, n);
}
template <class T>
void gemm(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k, const T* a, const T* b, T beta, T* c)
{
    gemm(transpose_a, transpose_b, m, n, k, T(1), a, b, beta, c);
}

// ---- row reductions -------------------------------------------------------------------------------------
// The sum of n floats in eight interleaved partial sums: one vector add per eight values instead of a
// chain of n dependent scalar adds.
template <class T>
T lane_sum(const T* v, std::size_t n)
{
    T lanes[8] = {};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (std::size_t k = 0; k < 8; ++k) lanes[k] += v[i + k];
    }
    T total = 0;
    for (; i < n; ++i) total += v[i];
    for (T lane : lanes) total += lane;
    return total;
}

// The sum of the squares of n floats, in the same eight lanes, accumulated in Acc: float for a row
// (LayerNorm), double for a total over many arrays (clip_grad_norm).
template <class Acc = float, class In>
Acc lane_sum_of_squares(const In* v, std::size_t n)
{
    Acc lanes[8] = {};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (std::size_t k = 0; k < 8; ++k) lanes[k] += Acc(v[i + k]) * Acc(v[i + k]);
    }
    Acc total = 0;
    for (; i < n; ++i) total += Acc(v[i]) * Acc(v[i]);
    for (Acc lane : lanes) total += lane;
    return total;
}

// The largest of n >= 1 floats, eight lanes at a time.
float row_max(const float* v, std::size_t n);

// ---- softmax over rows: x (rows, C) -> y (rows, C); y may be x ---------------------------------------------
// y = exp(x - max) / sum(exp(x - max)); subtracting the row max keeps exp from overflowing. When
// `row_max` and `log_total` are given, they receive each row's max and log(sum(exp(x - max))):
// cross-entropy's normaliser log(sum(exp(x))) is their sum, kept in two parts so that log p = (x - max) -
// log_total loses nothing next to a huge max (1e20 + log 3 is 1e20 in float).
void softmax_rows(const float* x, float* y, std::size_t rows, std::size_t C, float* row_max = nullptr,
                  float* log_total = nullptr);
// y = x - max - log(sum(exp(x - max)))
void log_softmax_rows(const float* x, float* y, std::size_t rows, std::size_t C);

// ---- element-wise maps over vector blocks -----------------------------------------------------------------
// An element-wise map is written once as an xtensor expression, which xsimd vectorises, and run over
// fixed blocks of `map_block` floats split across threads. The blocks do not depend on the thread
// count, so neither does which elements take the vector path: results are bitwise the same on any.
inline constexpr std::size_t map_block = 4096;

// A block [begin, begin + size) of the arrays a map reads and writes: at(p) views the floats at
// p + begin as a 1-D xtensor expression.
struct Block {
    std::size_t begin, size;
    template <class T>
    auto at(const T* p) const
    {
        return xt::adapt(p + begin, size, xt::no_ownership(), std::array<std::size_t, 1>{size});
    }
    template <class T>
    auto at(T* p) const
    {
        return xt::adapt(p + begin, size, xt::no_ownership(), std::array<std::size_t, 1>{size});
    }
};

// body(block) for every block of [0, n), blocks split across threads.
template <class Body>
void map_blocks(std::size_t n, Body body)
{
    parallel_rows((n + map_block - 1) / map_block, map_block, [&](std::size_t first, std::size_t last) {
        for (std::size_t b = first; b < last; ++b) body(Block{b * map_block, std::min(map_block, n - b * map_block)});
    });
}

// out = f(in...) element by element, f written over xtensor expressions: map(y, tanh_of, x.data()).
// `out` may be one of the inputs (a gradient overwritten in place).
template <class T, class F, class... In>
void map(ArrayOf<T>& out, F f, const In&... in)
{
    T* o = out.data();
    const auto one_block = [&](const Block& b) {
        auto dst = b.at(o);
        xt::noalias(dst) = f(b.at(in.data())...);
    };
    if (out.size() <= map_block) {   // one block: no thread pool to ask (a tiny op's whole cost, else)
        one_block(Block{0, out.size()});
        return;
    }
    map_blocks(out.size(), one_block);
}

// ---- erf ------------------------------------------------------------------------------------------------
// erf(a) to within 4.3e-7 (the float rational approximation of Eigen's and XLA's erf): clamped to
// [-4, 4], outside which erf is +-1 in float, then x P(x^2) / Q(x^2). A plain loop over it vectorises,
// where xt::erf runs std::erf element by element (2.3 ns per GELU element against exp's 0.5 ns).
inline float erf_approx(float a)
{
    float x = a > 4.0f ? 4.0f : a;          // selects that vectorise (under -fno-trapping-math)
    x = x < -4.0f ? -4.0f : x;
    const float x2 = x * x;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = x2 * p - 2.10102402082508e-06f;
    p = x2 * p - 5.69250639462346e-05f;
    p = x2 * p - 7.34990630326855e-04f;
    p = x2 * p - 2.95459980854025e-03f;
    p = x2 * p - 1.60960333262415e-02f;
    float q = x2 * -1.45660718464996e-05f - 2.13374055278905e-04f;
    q = x2 * q - 1.68282697438203e-03f;
    q = x2 * q - 7.37332916720468e-03f;
    q = x2 * q - 1.42647390514189e-02f;
    return x * p / q;
}

// ---- pow ------------------------------------------------------------------------------------------------
// x^p as torch computes it for a float tensor and a number p: its exact cases first (sqrt for 0.5, 1 / sqrt
// for -0.5, products for 2, 3 and -2), else std::pow in double. So (-2)^3 = -8, 0^0 = 1, 0^-1 = inf,
// sqrt(-inf) = NaN; and p - 1 in the derivative stays non-integral for a tiny p, as torch's Scalar's.
template <class T>
T power(T x, double p)
{
    if (p == 0.0) return T(1);
    if (p == 1.0) return x;
    if (p == 0.5) return std::sqrt(x);
    if (p == -0.5) return T(1) / std::sqrt(x);
    if (p == -1.0) return T(1) / x;
    if (p == 2.0) return x * x;
    if (p == 3.0) return x * x * x;
    if (p == -2.0) return T(1) / (x * x);
    return static_cast<T>(std::pow(static_cast<double>(x), p));
}

// a // b and a % b as Python's and torch's: the quotient rounds down, the remainder takes the divisor's
// sign. Floats follow torch's div_floor (fmod-based: exact where floor(a / b) would round); an integer
// divided by zero is torch's error, and INT_MIN // -1 wraps around.
template <class T>
T floor_div(T a, T b)
{
    if constexpr (std::is_floating_point_v<T>) {
        if (b == T(0)) return a / b;
        const T mod = std::fmod(a, b);
        T div = (a - mod) / b;
        if (mod != T(0) && (b < T(0)) != (mod < T(0))) div -= T(1);
        if (div == T(0)) return std::copysign(T(0), a / b);
        T floored = std::floor(div);
        if (div - floored > T(0.5)) floored += T(1);
        return floored;
    } else {
        if (b == T(0)) fail("ZeroDivisionError: integer division by zero");
        if constexpr (std::is_signed_v<T>) {
            if (b == T(-1)) return static_cast<T>(std::make_unsigned_t<T>(0) - static_cast<std::make_unsigned_t<T>>(a));
            const T q = static_cast<T>(a / b);
            return static_cast<T>(a % b) != T(0) && ((a % b < 0) != (b < 0)) ? static_cast<T>(q - 1) : q;
        }
        return static_cast<T>(a / b);
    }
}

template <class T>
T floor_mod(T a, T b)
{
    if constexpr (std::is_floating_point_v<T>) {
        const T mod = std::fmod(a, b);
        return mod != T(0) && (b < T(0)) != (mod < T(0)) ? mod + b : mod;
    } else {
        if (b == T(0)) fail("ZeroDivisionError: integer division by zero");
        if constexpr (std::is_signed_v<T>) {
            if (b == T(-1)) return T(0);
            const T r = static_cast<T>(a % b);
            return r != T(0) && ((r < 0) != (b < 0)) ? static_cast<T>(r + b) : r;
        }
        return static_cast<T>(a % b);
    }
}

// ---- the embedding's scatter-add ---------------------------------------------------------------------------
// dst[row[i]] += scale[row[i]] * src[i] for the n positions i of src (n, C), dst (dst_rows, C); a
// position whose row is negative (padding) adds nothing; scale may be null (all ones).
void scatter_add_rows(float* dst, std::size_t dst_rows, const float* src, const std::int64_t* row, std::size_t n,
                      std::size_t C, const float* scale = nullptr);

// The same for a dst that holds nothing yet and whose every row receives at least one position (a
// sparse gradient's compact rows): each row's first contribution is copied instead of added, which
// spares a pass zeroing dst first.
void scatter_rows_into_unwritten(float* dst, std::size_t dst_rows, const float* src, const std::int64_t* row,
                                 std::size_t n, std::size_t C, const float* scale = nullptr);

}  // namespace xgrad
