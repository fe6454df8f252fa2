// The kernels of core/kernels.h.
// (This file includes OpenBLAS's <cblas.h> and no xtensor-blas header: their declarations clash.)
#include "core/kernels.h"

#include <cblas.h>

#include <cmath>
#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include <xtensor/xmath.hpp>

namespace xgrad {

// ---- gemm ----------------------------------------------------------------------------------------------
// Below 2^26 flops (about 0.7 ms on one core) a second OpenBLAS thread saved little and made some
// processes much slower (BENCHMARKS.md, "small products").
constexpr double min_flops_for_threads = double(1 << 26);

template <class T>
void gemm(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc)
{
    if (m == 0 || n == 0) return;
    if (k == 0) {   // an empty sum: c = beta c. sgemm would refuse lda = 0 and leave c as it was
        for (std::size_t r = 0; r < m; ++r) {
            T* row = c + r * ldc;
            if (beta == T(0)) std::fill_n(row, n, T(0));   // not 0 * c: c may be uninitialised (NaN)
            else if (beta != T(1)) for (std::size_t j = 0; j < n; ++j) row[j] *= beta;
        }
        return;
    }
    const int threads = 2.0 * double(m) * double(n) * double(k) < min_flops_for_threads ? 1 : get_blas_threads();
    if (openblas_get_num_threads() != threads) {
        static std::mutex switching;   // products may be called from several threads at once
        std::lock_guard lock(switching);
        openblas_set_num_threads(threads);
    }
    // OpenBLAS zeroes c for beta = 0 in a scalar loop of its own (sgemm_beta): 7.9% of W6's samples,
    // where memset takes 1.8% (BENCHMARKS.md, "beta = 0"). Adding onto zeros gives the same bits.
    if (beta == T(0)) {
        if (ldc == n) std::memset(c, 0, m * n * sizeof(T));
        else for (std::size_t r = 0; r < m; ++r) std::memset(c + r * ldc, 0, n * sizeof(T));
        beta = T(1);
    }
    const auto ta = transpose_a ? CblasTrans : CblasNoTrans, tb = transpose_b ? CblasTrans : CblasNoTrans;
    if constexpr (std::is_same_v<T, float>) {
        cblas_sgemm(CblasRowMajor, ta, tb, static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
                    static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
    } else {
        cblas_dgemm(CblasRowMajor, ta, tb, static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
                    static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
    }
}

template void gemm(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t, const float*,
                   std::size_t, float, float*, std::size_t);
template void gemm(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*, std::size_t, const double*,
                   std::size_t, double, double*, std::size_t);

// ---- row_max -------------------------------------------------------------------------------------------
// GCC will not vectorise a float maximum by itself (nor, for rows as short as a toy vocabulary, through
// `omp simd` without stalls), so the lanes are a vector type of GCC and Clang.
float row_max(const float* v, std::size_t n)
{
    using Lanes = float __attribute__((vector_size(32)));
    float best = v[0];
    std::size_t c = 0;
    if (n >= 8) {
        Lanes lanes;
        std::memcpy(&lanes, v, sizeof lanes);
        for (c = 8; c + 8 <= n; c += 8) {
            Lanes next;
            std::memcpy(&next, v + c, sizeof next);
            lanes = next > lanes ? next : lanes;
        }
        for (int k = 0; k < 8; ++k) best = lanes[k] > best ? lanes[k] : best;
    }
    for (; c < n; ++c) best = v[c] > best ? v[c] : best;
    return best;
}

// ---- softmax rows --------------------------------------------------------------------------------------
namespace {

// body(first, last) over blocks of whole rows of about map_block floats, fixed whatever the thread
// count, blocks split across threads. xtensor's vector loop starts at the first aligned element, so
// fixed blocks in 64-byte aligned arrays make the same elements take the vector exp on any count.
template <class Body>
void over_row_blocks(std::size_t rows, std::size_t C, Body body)
{
    const std::size_t rows_per_block = std::max<std::size_t>(1, map_block / std::max<std::size_t>(C, 1));
    parallel_rows((rows + rows_per_block - 1) / rows_per_block, rows_per_block * C, [&](std::size_t first, std::size_t last) {
        for (std::size_t b = first; b < last; ++b) body(b * rows_per_block, std::min(rows, (b + 1) * rows_per_block));
    });
}

// e = exp(x - max) for `rows` rows of C floats, the row maxima into m: one vectorised exp pass.
void shifted_exp(const float* x, float* e, std::size_t rows, std::size_t C, float* m)
{
    for (std::size_t r = 0; r < rows; ++r) {
        const float* row = x + r * C;
        float* out = e + r * C;
        const float best = m[r] = row_max(row, C);
        for (std::size_t c = 0; c < C; ++c) out[c] = row[c] - best;
    }
    auto block = Block{0, rows * C}.at(e);
    xt::noalias(block) = xt::exp(block);
}

}  // namespace

void softmax_rows(const float* x, float* y, std::size_t rows, std::size_t C, float* row_max, float* log_total)
{
    if (C == 0) return;
    over_row_blocks(rows, C, [&](std::size_t first, std::size_t last) {
        std::vector<float> m(last - first);
        shifted_exp(x + first * C, y + first * C, last - first, C, m.data());
        for (std::size_t r = first; r < last; ++r) {
            float* row = y + r * C;
            const float total = lane_sum(row, C);
            const float inverse = 1.0f / total;
            for (std::size_t c = 0; c < C; ++c) row[c] *= inverse;
            if (row_max) row_max[r] = m[r - first];
            if (log_total) log_total[r] = std::log(total);
        }
    });
}

void log_softmax_rows(const float* x, float* y, std::size_t rows, std::size_t C)
{
    if (C == 0) return;
    over_row_blocks(rows, C, [&](std::size_t first, std::size_t last) {
        std::vector<float> m(last - first);
        Array e(Shape{(last - first) * C});   // 64-byte aligned like every Array: the same vector path each run
        shifted_exp(x + first * C, e.data(), last - first, C, m.data());
        for (std::size_t r = first; r < last; ++r) {
            const float log_total = std::log(lane_sum(e.data() + (r - first) * C, C));
            const float* row = x + r * C;
            float* out = y + r * C;
            for (std::size_t c = 0; c < C; ++c) out[c] = (row[c] - m[r - first]) - log_total;
        }
    });
}

// ---- scatter-add ---------------------------------------------------------------------------------------
// It must accumulate: an id can appear many times in one batch, and each appearance adds its own
// upstream row. With several threads, each thread owns a range of destination rows and scans all
// positions in order, adding only into its own rows: every row sums its contributions in the same
// order whatever the thread count, so the result is bitwise deterministic, and no two threads write
// the same row.
void scatter_add_rows(float* dst, std::size_t dst_rows, const float* src, const std::int64_t* row, std::size_t n,
                      std::size_t C, const float* scale)
{
    if (dst_rows == 0) return;
    const std::size_t floats_per_dst_row = (n * C + dst_rows - 1) / dst_rows;   // on average
    parallel_rows(dst_rows, floats_per_dst_row, [=](std::size_t first, std::size_t last) {
        for (std::size_t i = 0; i < n; ++i) {
            if (row[i] < 0) continue;                                 // padding learns nothing
            const auto r = static_cast<std::size_t>(row[i]);
            if (r < first || r >= last) continue;                     // another thread's row
            const float s = scale ? scale[r] : 1.0f;                  // d out[i] / d weight[id] = 1 (or 1/count)
            float* __restrict out = dst + r * C;
            const float* __restrict g = src + i * C;
            for (std::size_t c = 0; c < C; ++c) out[c] += s * g[c];
        }
    });
}

void scatter_rows_into_unwritten(float* dst, std::size_t dst_rows, const float* src, const std::int64_t* row,
                                 std::size_t n, std::size_t C, const float* scale)
{
    if (dst_rows == 0) return;
    std::vector<char> written(dst_rows, 0);                           // char, not bool: threads own rows, not bits
    const std::size_t floats_per_dst_row = (n * C + dst_rows - 1) / dst_rows;
    parallel_rows(dst_rows, floats_per_dst_row, [&](std::size_t first, std::size_t last) {
        for (std::size_t i = 0; i < n; ++i) {
            if (row[i] < 0) continue;
            const auto r = static_cast<std::size_t>(row[i]);
            if (r < first || r >= last) continue;                     // another thread's row
            const float s = scale ? scale[r] : 1.0f;
            float* __restrict out = dst + r * C;
            const float* __restrict g = src + i * C;
            if (written[r]) {
                for (std::size_t c = 0; c < C; ++c) out[c] += s * g[c];
            } else {
                for (std::size_t c = 0; c < C; ++c) out[c] = s * g[c];   // the row's first contribution
                written[r] = 1;
            }
        }
    });
}

}  // namespace xgrad
