// The machine's limits, measured in the same run as the workloads (see BENCHMARKS.md):
// - DRAM copy bandwidth, STREAM-like, as the reference figure;
// - for each memory-bound workload, its *floor*: the same data movement written as plain loops,
//   fused, with no framework around it (what a hand-written kernel for exactly this workload costs
//   here). On this VM one or two streams of memory traffic do not reach what seven streams do
//   (Adam-like loops move 37-44 GB/s where a copy moves 15-26), so a floor with the workload's own
//   access pattern is the honest limit; a single bandwidth figure is not;
// - OpenBLAS sgemm time for a list of products (the floor of GEMM-bound steps).
// Each limit is the best of three timed rounds (bench_compare keeps the best over its processes too).
#pragma once

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "workloads.h"
#include "xgrad.h"

namespace limits {

using Clock = std::chrono::steady_clock;

// Seconds per call of fn: the best of `rounds` rounds of about 20 ms each, after a warm-up call.
template <class F>
double best_time(F fn, int rounds = 3)
{
    fn();
    auto start = Clock::now();
    fn();
    const double once = std::chrono::duration<double>(Clock::now() - start).count();
    const int calls = std::max(1, static_cast<int>(0.02 / std::max(once, 1e-7)));
    double best = 1e30;
    for (int r = 0; r < rounds; ++r) {
        start = Clock::now();
        for (int i = 0; i < calls; ++i) fn();
        best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count() / calls);
    }
    return best;
}

// Bytes moved (read + written) per second by b = a over 256 MiB, each thread copying its part.
inline double copy_bandwidth()
{
    const std::size_t n = std::size_t(64) << 20;
    std::vector<float> from(n, 1.0f), to(n, 0.0f);
    const double seconds = best_time([&] {
        xgrad::parallel_for(n, n / 8, [&](std::size_t begin, std::size_t end) {
            std::memcpy(to.data() + begin, from.data() + begin, (end - begin) * sizeof(float));
        });
    });
    return 2.0 * double(n * sizeof(float)) / seconds;
}

// W1 / W2 floor: zero the table's gradient (dense), out = tok[ids] + pos in one pass, then scatter the
// upstream rows into the gradient (each thread owning a range of rows, as xgrad does) and sum them
// into the position gradient. Sparse: the gradient is the compact rows of the touched ids only.
inline double embedding_floor(const workloads::EmbeddingSizes& s, const xgrad::IdArray& ids, bool sparse)
{
    const std::size_t V = s.vocab, C = s.channels, T = s.time, N = s.batch * s.time;
    std::vector<float> tok(V * C, 0.5f), pos(T * C, 0.25f), upstream(N * C, 1.0f), out(N * C);
    std::vector<bool> touched(V, false);
    for (std::int64_t v : ids) touched[static_cast<std::size_t>(v)] = true;
    std::vector<std::size_t> row_of(V, 0);   // sparse: where each touched id lands in the compact rows
    std::size_t rows = 0;
    for (std::size_t v = 0; v < V; ++v) {
        if (touched[v]) row_of[v] = rows++;
    }
    std::vector<float> grad((sparse ? rows : V) * C), grad_pos(T * C);
    const std::int64_t* id = ids.data();
    const bool one_thread = N * C < (std::size_t(1) << 19);   // as xgrad: below this, threads cost more
    return best_time([&] {
        if (!sparse) std::memset(grad.data(), 0, grad.size() * sizeof(float));
        xgrad::parallel_for(N, one_thread ? N : 512, [&](std::size_t begin, std::size_t end) {   // forward
            for (std::size_t i = begin; i < end; ++i) {
                const float* a = tok.data() + static_cast<std::size_t>(id[i]) * C;
                const float* b = pos.data() + (i % T) * C;
                float* o = out.data() + i * C;
                for (std::size_t c = 0; c < C; ++c) o[c] = a[c] + b[c];
            }
        });
        const std::size_t grad_rows = grad.size() / C;
        xgrad::parallel_for(grad_rows, one_thread ? grad_rows : 1, [&](std::size_t begin, std::size_t end) {   // backward
            for (std::size_t i = 0; i < N; ++i) {
                const std::size_t row = sparse ? row_of[static_cast<std::size_t>(id[i])] : static_cast<std::size_t>(id[i]);
                if (row < begin || row >= end) continue;
                float* g = grad.data() + row * C;
                const float* u = upstream.data() + i * C;
                for (std::size_t c = 0; c < C; ++c) g[c] += u[c];
            }
        });
        xgrad::parallel_for(T, one_thread ? T : 1, [&](std::size_t begin, std::size_t end) {
            for (std::size_t t = begin; t < end; ++t) {
                float* g = grad_pos.data() + t * C;
                std::memset(g, 0, C * sizeof(float));
                for (std::size_t b = 0; b < s.batch; ++b) {
                    const float* u = upstream.data() + (b * T + t) * C;
                    for (std::size_t c = 0; c < C; ++c) g[c] += u[c];
                }
            }
        });
    });
}

// W3 floor: Adam's traffic, read p, g, m, v and write p, m, v, in one pass with Adam's multiply-adds
// but neither its square root nor its divisions.
inline double adam_floor(std::size_t n)
{
    std::vector<float> p(n, 1.0f), g(n, 1e-3f), m(n, 0.0f), v(n, 0.0f);
    return best_time([&] {
        xgrad::parallel_for(n, 1 << 18, [&](std::size_t begin, std::size_t end) {
            float* __restrict pp = p.data();
            float* __restrict mm = m.data();
            float* __restrict vv = v.data();
            const float* __restrict gg = g.data();
            for (std::size_t i = begin; i < end; ++i) {   // Adam's moments, with no sqrt or division
                const float g = gg[i];
                const float m_new = 0.9f * mm[i] + 0.1f * g;
                const float v_new = 0.999f * vv[i] + 0.001f * g * g;
                mm[i] = m_new;
                vv[i] = v_new;
                pp[i] = pp[i] - 1e-3f * (m_new + v_new);
            }
        });
    });
}

// The time OpenBLAS takes for a list of row-major products (m, n, k, transpose_a, transpose_b).
struct Gemm {
    std::size_t m, n, k;
    bool ta, tb;
};
inline double sgemm_floor(const std::vector<Gemm>& gemms)
{
    std::size_t most = 0;
    for (const auto& g : gemms) most = std::max({most, g.m * g.k, g.k * g.n, g.m * g.n});
    std::vector<float> a(most, 0.5f), b(most, 0.25f), c(most, 0.0f);
    return best_time([&] {
        for (const auto& g : gemms) {
            cblas_sgemm(CblasRowMajor, g.ta ? CblasTrans : CblasNoTrans, g.tb ? CblasTrans : CblasNoTrans, int(g.m), int(g.n),
                        int(g.k), 1.0f, a.data(), int(g.ta ? g.m : g.k), b.data(), int(g.tb ? g.k : g.n), 0.0f, c.data(),
                        int(g.n));
        }
    });
}

// The products of a training step through Linears of (in, out) on `rows` rows: each one forward
// (y = x W^T) and two backward (dx = g W, dW = g^T x) sgemms.
inline std::vector<Gemm> linear_products(std::size_t rows, const std::vector<std::pair<std::size_t, std::size_t>>& layers)
{
    std::vector<Gemm> gemms;
    for (auto [in, out] : layers) {
        gemms.push_back({rows, out, in, false, true});
        gemms.push_back({rows, in, out, false, false});
        gemms.push_back({out, in, rows, true, false});
    }
    return gemms;
}

}  // namespace limits
