// scaled_dot_product_attention against its composed twin (matmul, masked_fill, softmax, dropout,
// matmul), PyTorch, finite differences and itself on other thread counts; packed_qkv_attention
// against the split heads; dropout; causal_mask.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "close.h"
#include "gradcheck.h"
#include "reference.h"

using namespace xgrad;
using namespace xgrad::testing;
using Catch::Matchers::Contains;

namespace {

constexpr float minus_infinity = -std::numeric_limits<float>::infinity();

// The composed path, the fused kernel's oracle: nanoGPT's "slow attention".
Tensor composed_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o)
{
    const std::size_t L = q.shape()[q.dim() - 2], S = k.shape()[k.dim() - 2];
    const float scale = o.scale_ ? *o.scale_ : 1.0f / std::sqrt(static_cast<float>(q.shape().back()));
    Tensor att = matmul(q, transpose(k, -2, -1)) * scale;                 // (..., L, S)
    if (o.attn_mask_.defined() && o.attn_mask_.dtype() == kBool) att = masked_fill(att, logical_not(o.attn_mask_), minus_infinity);
    else if (o.attn_mask_.defined()) att = att + o.attn_mask_;
    if (o.is_causal_) att = masked_fill(att, logical_not(causal_mask(L, S)), minus_infinity);
    att = dropout(softmax(att), o.dropout_p_);
    return matmul(att, v);
}

struct Inputs {
    Tensor q, k, v, up;
};

Inputs make_inputs(const Shape& batch, std::size_t L, std::size_t S, std::size_t E, std::size_t Ev, std::uint64_t seed)
{
    manual_seed(seed);
    auto with = [&](std::size_t rows, std::size_t cols) {
        Shape s = batch;
        s.push_back(rows);
        s.push_back(cols);
        return s;
    };
    return {randn(with(L, E), true), randn(with(S, E), true), randn(with(S, Ev), true), randn(with(L, Ev))};
}

// out, dq, dk, dv of one forward and backward
std::vector<Array> run(const std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>& attention, Inputs in,
                       std::uint64_t dropout_seed)
{
    for (Tensor* t : {&in.q, &in.k, &in.v}) t->zero_grad();
    manual_seed(dropout_seed);                                            // the same dropout mask for both paths
    Tensor out = attention(in.q, in.k, in.v);
    out.backward(in.up);
    return {out.to_array(), in.q.grad().to_array(), in.k.grad().to_array(), in.v.grad().to_array()};
}

}  // namespace

TEST_CASE("fused attention equals the composed path at T = 1, 7, 64 and 257, with every option")
{
    struct Variant {
        const char* name;
        std::function<AttentionOptions(std::size_t L, std::size_t S)> options;
    };
    const std::vector<Variant> variants = {
        {"plain", [](std::size_t, std::size_t) { return AttentionOptions(); }},
        {"causal", [](std::size_t, std::size_t) { return AttentionOptions().is_causal(true); }},
        {"custom scale", [](std::size_t, std::size_t) { return AttentionOptions().scale(0.3f); }},
        {"bool mask (L, S): a band", [](std::size_t L, std::size_t S) {
             BoolArray m(Shape{L, S});
             for (std::size_t i = 0; i < L; ++i) {
                 for (std::size_t j = 0; j < S; ++j) m(i, j) = j + 3 >= i || j == 0;   // every row sees a key
             }
             return AttentionOptions().attn_mask(bool_tensor(m));
         }},
        {"float mask (2, 1, L, S) broadcast over heads", [](std::size_t L, std::size_t S) {
             Generator rng(5);
             Array m(Shape{2, 1, L, S});
             rng.normal_(m);
             return AttentionOptions().attn_mask(Tensor(m));
         }},
        {"causal with dropout", [](std::size_t, std::size_t) { return AttentionOptions().is_causal(true).dropout_p(0.3f); }},
    };
    for (std::size_t T : {1, 7, 64, 257}) {
        for (const auto& variant : variants) {
            for (std::size_t S : {T, T + 5}) {                            // L != S too
                if (std::string(variant.name).find("causal") != std::string::npos && S != T) continue;
                INFO(variant.name << ", L = " << T << ", S = " << S);
                const AttentionOptions o = variant.options(T, S);
                const Inputs in = make_inputs({2, 3}, T, S, 16, 8, 100 + T);
                const auto fused = run([&](const Tensor& q, const Tensor& k, const Tensor& v) {
                    return scaled_dot_product_attention(q, k, v, o);
                }, in, 7);
                const auto composed = run([&](const Tensor& q, const Tensor& k, const Tensor& v) {
                    return composed_attention(q, k, v, o);
                }, in, 7);
                for (std::size_t r = 0; r < fused.size(); ++r) {
                    INFO("result " << r << " (out, dq, dk, dv)");
                    check_close(fused[r], composed[r], 2e-5, 1e-4);
                }
            }
        }
    }
}

TEST_CASE("scaled_dot_product_attention matches PyTorch's composed attention")
{
    for (const char* name : {"sdpa_plain", "sdpa_causal", "sdpa_bool_mask", "sdpa_float_mask", "sdpa_scale", "sdpa_l_ne_s"}) {
        INFO(name);
        const auto& c = reference("attention_reference.json")[name];
        const Shape qs = c["q_shape"].get<Shape>(), ks = c["k_shape"].get<Shape>(), vs = c["v_shape"].get<Shape>();
        Tensor q = Tensor(ref_array(c["q"], qs)).requires_grad_(), k = Tensor(ref_array(c["k"], ks)).requires_grad_();
        Tensor v = Tensor(ref_array(c["v"], vs)).requires_grad_();
        AttentionOptions o;
        if (c.contains("is_causal")) o.is_causal(true);
        if (c.contains("scale")) o.scale(c["scale"].get<float>());
        if (c.contains("bool_mask")) {
            const Shape ms = c["mask_shape"].get<Shape>();
            BoolArray m(ms);
            for (std::size_t i = 0; i < m.size(); ++i) m.data()[i] = c["bool_mask"][i].get<bool>();
            o.attn_mask(bool_tensor(m));
        }
        if (c.contains("float_mask")) o.attn_mask(Tensor(ref_array(c["float_mask"], c["mask_shape"].get<Shape>())));
        Shape out_shape = qs;
        out_shape.back() = vs.back();
        Tensor out = scaled_dot_product_attention(q, k, v, o);
        check_close(out.to_array(), ref_array(c["out"], out_shape), 1e-5, 1e-4);
        out.backward(Tensor(ref_array(c["upstream"], out_shape)));
        check_close(q.grad().to_array(), ref_array(c["grad_q"], qs), 1e-5, 1e-4);
        check_close(k.grad().to_array(), ref_array(c["grad_k"], ks), 1e-5, 1e-4);
        check_close(v.grad().to_array(), ref_array(c["grad_v"], vs), 1e-5, 1e-4);
    }
}

TEST_CASE("attention and dropout pass the finite-difference check")
{
    Generator rng(3);
    auto input = [&](const Shape& s) {
        Array a(s);
        rng.normal_(a);
        return Tensor(a);
    };
    using In = const std::vector<Tensor>&;
    const BoolArray band = {{true, false, false, true}, {true, true, false, false}, {false, true, true, true}};
    const std::vector<std::pair<const char*, xgrad::testing::Fn>> cases = {
        {"causal", [](In x) { return scaled_dot_product_attention(x[0], x[1], x[2], AttentionOptions().is_causal(true)); }},
        {"bool mask, scale", [&](In x) {
             return scaled_dot_product_attention(x[0], x[1], x[2], AttentionOptions().attn_mask(bool_tensor(band)).scale(0.7f));
         }},
        {"causal, dropout 0.25 (one mask: the seed is fixed)", [](In x) {
             manual_seed(11);
             return scaled_dot_product_attention(x[0], x[1], x[2], AttentionOptions().is_causal(true).dropout_p(0.25f));
         }},
        {"dropout", [](In x) {
             manual_seed(12);
             return dropout(x[0] * x[1], 0.5f);
         }},
    };
    for (const auto& [name, fn] : cases) {
        INFO(name);
        const bool masked = std::string(name).find("bool") != std::string::npos;
        const std::size_t S = masked ? 4 : 3;
        auto result = gradcheck(fn, {input({2, 3, 5}), input({2, S, 5}), input({2, S, 4})});
        INFO(result.report);
        CHECK(result.ok);
    }
}

TEST_CASE("attention is bitwise identical on 1, 2 and 4 threads, forward and backward")
{
    const int saved = get_num_threads();
    const Inputs in = make_inputs({4, 4}, 200, 200, 32, 32, 9);
    std::vector<std::vector<Array>> runs;
    for (int threads : {1, 2, 4}) {
        set_num_threads(threads);
        const std::uint64_t before = threaded_loops();
        runs.push_back(run([](const Tensor& q, const Tensor& k, const Tensor& v) {
            return scaled_dot_product_attention(q, k, v, AttentionOptions().is_causal(true).dropout_p(0.1f));
        }, in, 3));
        if (threads > 1) REQUIRE(threaded_loops() >= before + 2);   // the forward and the backward both threaded
    }
    set_num_threads(saved);
    for (std::size_t t = 1; t < runs.size(); ++t) {
        for (std::size_t r = 0; r < runs[0].size(); ++r) {
            INFO("result " << r << " on " << (t == 1 ? 2 : 4) << " threads");
            CHECK(std::memcmp(runs[t][r].data(), runs[0][r].data(), runs[0][r].size() * sizeof(float)) == 0);
        }
    }
}

TEST_CASE("the fused forward keeps no (L, S) array: only the output and one log-sum-exp per query row")
{
    const std::size_t B = 2, nh = 4, T = 512, hs = 16;
    const Inputs in = make_inputs({B, nh}, T, T, hs, hs, 4);
    const std::size_t before = live_storage_bytes();
    Tensor out = scaled_dot_product_attention(in.q, in.k, in.v, AttentionOptions().is_causal(true));
    const std::size_t held = live_storage_bytes() - before;
    INFO(held << " bytes held after the forward; one (B, nh, T, T) array would be " << B * nh * T * T * 4);
    CHECK(held <= (B * nh * T * hs + B * nh * T) * sizeof(float) + 4096);
}

TEST_CASE("a fused forward + backward peaks at under 1/4 of the composed path's memory")
{
    const Inputs in = make_inputs({2, 4}, 256, 256, 32, 32, 13);   // W6's shapes with a smaller batch
    auto peak_of = [&](const std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>& attention) {
        for (const Tensor* t : {&in.q, &in.k, &in.v}) t->zero_grad();
        const std::size_t before = live_storage_bytes();
        reset_peak_storage_bytes();
        attention(in.q, in.k, in.v).backward(in.up);
        return peak_storage_bytes() - before;
    };
    const AttentionOptions causal = AttentionOptions().is_causal(true);
    const std::size_t fused = peak_of([&](const Tensor& q, const Tensor& k, const Tensor& v) {
        return scaled_dot_product_attention(q, k, v, causal);
    });
    const std::size_t composed = peak_of([&](const Tensor& q, const Tensor& k, const Tensor& v) {
        return composed_attention(q, k, v, causal);
    });
    INFO("peak above the inputs: fused " << fused << " bytes, composed " << composed);
    CHECK(fused > 0);
    CHECK(fused * 4 <= composed);
}

TEST_CASE("fully masked rows are NaN and pass no gradient to q and k, as PyTorch's")
{
    const Inputs in = make_inputs({1}, 2, 3, 4, 4, 6);
    const BoolArray none_for_row_0 = {{false, false, false}, {true, false, true}};
    Tensor out = scaled_dot_product_attention(in.q, in.k, in.v, AttentionOptions().attn_mask(bool_tensor(none_for_row_0)));
    CHECK(std::isnan(out.to_array()(0, 0, 0)));
    CHECK(std::isfinite(out.to_array()(0, 1, 0)));
    // the backward of the composed path: row 0's NaN weights reach every key's dv, while the masked-out
    // scores pass no gradient to q or k (masked_fill's backward)
    out.backward(in.up);
    const Array dq = in.q.grad().to_array(), dk = in.k.grad().to_array(), dv = in.v.grad().to_array();
    for (std::size_t e = 0; e < 4; ++e) CHECK(dq(0, 0, e) == 0.0f);
    CHECK(std::all_of(dk.begin(), dk.end(), [](float g) { return std::isfinite(g); }));
    CHECK(std::all_of(dv.begin(), dv.end(), [](float g) { return std::isnan(g); }));
}

TEST_CASE("attention over no keys (S = 0) gives zeros and zero gradients as PyTorch's math does")
{
    // softmax over an empty row is empty and its product with an empty v is 0: no 0 / 0
    for (const bool causal : {false, true}) {
        INFO((causal ? "causal" : "no mask"));
        const AttentionOptions o = AttentionOptions().is_causal(causal);
        const Inputs in = make_inputs({2}, 3, 0, 5, 4, 8);
        const std::vector<Array> fused = run([&](const Tensor& q, const Tensor& k, const Tensor& v) {
            return scaled_dot_product_attention(q, k, v, o);
        }, in, 1);
        const std::vector<Array> composed = run([&](const Tensor& q, const Tensor& k, const Tensor& v) {
            return composed_attention(q, k, v, o);
        }, in, 1);
        CHECK(fused[0].shape() == Shape({2, 3, 4}));
        for (std::size_t r = 0; r < 4; ++r) {
            INFO("result " << r);
            check_close(fused[r], xt::zeros<float>(fused[r].shape()), 0.0);
            check_close(composed[r], xt::zeros<float>(composed[r].shape()), 0.0);
        }
    }
    const auto result = gradcheck([](const std::vector<Tensor>& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); },
                                  {randn({2, 3, 5}), randn({2, 0, 5}), randn({2, 0, 4})});
    INFO(result.report);
    CHECK(result.ok);
}

TEST_CASE("attention explains bad input")
{
    const Inputs in = make_inputs({2, 3}, 4, 5, 8, 6, 1);
    const char* op = "scaled_dot_product_attention";
    CHECK_THROWS_WITH(scaled_dot_product_attention(in.q, in.k, randn({2, 3, 4, 6})),
                      Contains(std::string(op) + ": k and v must have the same number of keys S, got k (2, 3, 5, 8) and v (2, 3, 4, 6)"));
    CHECK_THROWS_WITH(scaled_dot_product_attention(in.q, randn({2, 3, 5, 7}), in.v),
                      Contains("q and k must have the same feature size E, got q (2, 3, 4, 8) and k (2, 3, 5, 7)"));
    CHECK_THROWS_WITH(scaled_dot_product_attention(in.q, randn({2, 4, 5, 8}), randn({2, 4, 5, 6})),
                      Contains("q, k and v must have the same batch dims, got q (2, 3, 4, 8), k (2, 4, 5, 8), v (2, 4, 5, 6)"));
    CHECK_THROWS_WITH(scaled_dot_product_attention(in.q, in.k, in.v, AttentionOptions().attn_mask(ones({4, 4}, kBool))),
                      Contains("attn_mask of shape (4, 4) does not broadcast to the scores' shape (2, 3, 4, 5) (..., L, S)"));
    CHECK_THROWS_WITH(scaled_dot_product_attention(in.q, in.k, in.v, AttentionOptions().dropout_p(1.0f)),
                      Contains("dropout_p must be in [0, 1), got 1"));
    CHECK_THROWS_WITH(scaled_dot_product_attention(in.q, in.k, in.v,
                                                   AttentionOptions().is_causal(true).attn_mask(causal_mask(4, 5))),
                      Contains("is_causal and attn_mask cannot both be given"));
    CHECK_THROWS_WITH(dropout(in.q, -0.1f), Contains("dropout: p must be in [0, 1), got -0.1"));
}

TEST_CASE("dropout: the identity at p = 0 and in eval, p of the elements zeroed, the same mask in the backward")
{
    Tensor x = randn({1000, 100}, true);
    CHECK(dropout(x, 0.0f).is_same(x));
    CHECK(dropout(x, 0.5f, /*training=*/false).is_same(x));
    manual_seed(2);
    Tensor y = dropout(x, 0.3f);
    std::size_t zeros = 0, scaled = 0;
    for (std::size_t i = 0; i < y.numel(); ++i) {
        const float out = y.data_ptr()[i], in = x.data_ptr()[i];
        if (out == 0.0f) ++zeros;
        else if (std::abs(out - in / 0.7f) <= 1e-6f * std::abs(in) + 1e-7f) ++scaled;
    }
    CHECK(zeros + scaled == y.numel());
    CHECK(static_cast<double>(zeros) / double(y.numel()) == Approx(0.3).margin(0.01));   // 100,000 draws
    y.backward(ones({1000, 100}));
    for (std::size_t i = 0; i < y.numel(); ++i) {
        const bool kept = y.data_ptr()[i] != 0.0f || x.data_ptr()[i] == 0.0f;
        if (x.grad().data_ptr()[i] != (kept ? 1.0f / 0.7f : 0.0f)) FAIL("element " << i << " has another mask in the backward");
    }
    manual_seed(2);
    const bool same_seed_same_mask = dropout(x, 0.3f).to_array() == y.to_array();
    CHECK(same_seed_same_mask);
}

namespace {

// packed_qkv_attention's oracle: nanoGPT's split, view, transpose, attention and merge, as views.
Tensor split_attention(const Tensor& qkv, std::size_t nh, const AttentionOptions& o)
{
    const auto B = static_cast<std::ptrdiff_t>(qkv.shape()[0]), T = static_cast<std::ptrdiff_t>(qkv.shape()[1]);
    const std::size_t C = qkv.shape()[2] / 3;
    std::vector<Tensor> parts = split(qkv, C, 2);
    for (Tensor& p : parts) {
        p = transpose(view(p, {B, T, static_cast<std::ptrdiff_t>(nh), static_cast<std::ptrdiff_t>(C / nh)}), 1, 2);
    }
    const Tensor y = scaled_dot_product_attention(parts[0], parts[1], parts[2], o);   // (B, nh, T, hs)
    return view(transpose(y, 1, 2).contiguous(), {B, T, static_cast<std::ptrdiff_t>(C)});
}

// out and dqkv of one forward and backward
std::vector<Array> run_packed(const std::function<Tensor(const Tensor&)>& attention, Tensor qkv, const Tensor& up)
{
    qkv.zero_grad();
    manual_seed(21);                                                      // the same dropout mask for both paths
    Tensor out = attention(qkv);
    out.backward(up);
    return {out.to_array(), qkv.grad().to_array()};
}

}  // namespace

TEST_CASE("packed_qkv_attention equals splitting the heads out and attending, at T = 1, 7, 64 and 257")
{
    const std::vector<std::pair<const char*, std::function<AttentionOptions(std::size_t T)>>> variants = {
        {"causal", [](std::size_t) { return AttentionOptions().is_causal(true); }},
        {"causal with dropout", [](std::size_t) { return AttentionOptions().is_causal(true).dropout_p(0.2f); }},
        {"plain, custom scale", [](std::size_t) { return AttentionOptions().scale(0.4f); }},
        {"float mask (B, 1, T, T) broadcast over heads", [](std::size_t T) {
             Generator rng(8);
             Array m(Shape{2, 1, T, T});
             rng.normal_(m);
             return AttentionOptions().attn_mask(Tensor(m));
         }},
        {"bool mask (T, T): a band", [](std::size_t T) {
             BoolArray m(Shape{T, T});
             for (std::size_t i = 0; i < T; ++i) {
                 for (std::size_t j = 0; j < T; ++j) m(i, j) = j + 2 >= i && j <= i + 4;
             }
             return AttentionOptions().attn_mask(bool_tensor(m));
         }},
    };
    for (const auto& [nh, hs] : std::vector<std::pair<std::size_t, std::size_t>>{{2, 8}, {3, 5}}) {   // rows 48, 45 apart
        for (std::size_t T : {1, 7, 64, 257}) {
            manual_seed(T);
            const std::size_t C = nh * hs;
            const Tensor qkv = randn({2, T, 3 * C}, true), up = randn({2, T, C});
            for (const auto& [name, options] : variants) {
                INFO(name << ", T = " << T << ", nh = " << nh << ", hs = " << hs);
                const AttentionOptions o = options(T);
                const auto packed = run_packed([&](const Tensor& x) { return packed_qkv_attention(x, nh, o); }, qkv, up);
                const auto split = run_packed([&](const Tensor& x) { return split_attention(x, nh, o); }, qkv, up);
                REQUIRE(packed[0].shape() == split[0].shape());
                check_close(packed[0], split[0], 1e-6, 1e-6);
                check_close(packed[1], split[1], 1e-6, 1e-6);
            }
        }
    }
}

TEST_CASE("packed_qkv_attention passes the finite-difference check and is bitwise identical on 1 and 2 threads")
{
    Generator rng(4);
    Array x(Shape{2, 5, 3 * 6});
    rng.normal_(x);
    using In = const std::vector<Tensor>&;
    auto result = xgrad::testing::gradcheck([](In in) { return packed_qkv_attention(in[0], 2, AttentionOptions().is_causal(true)); },
                                            {Tensor(x)});
    INFO(result.report);
    CHECK(result.ok);

    const int saved = get_num_threads();
    manual_seed(5);
    const Tensor qkv = randn({4, 256, 3 * 64}, true), up = randn({4, 256, 64});   // enough work for 2 threads
    std::vector<std::vector<Array>> runs;
    for (int threads : {1, 2}) {
        set_num_threads(threads);
        const std::uint64_t before = threaded_loops();
        runs.push_back(run_packed([](const Tensor& t) {
            return packed_qkv_attention(t, 4, AttentionOptions().is_causal(true).dropout_p(0.1f));
        }, qkv, up));
        if (threads > 1) REQUIRE(threaded_loops() >= before + 2);   // the forward and the backward both threaded
    }
    set_num_threads(saved);
    for (std::size_t r = 0; r < runs[0].size(); ++r) {
        INFO("result " << r << " (out, dqkv)");
        CHECK(std::memcmp(runs[1][r].data(), runs[0][r].data(), runs[0][r].size() * sizeof(float)) == 0);
    }
}

TEST_CASE("packed_qkv_attention explains bad input")
{
    const char* op = "packed_qkv_attention";
    CHECK_THROWS_WITH(packed_qkv_attention(randn({2, 4, 3, 8}), 2),
                      Contains(std::string(op) + ": expected qkv of shape (B, T, 3C), q, k and v side by side, got (2, 4, 3, 8)"));
    CHECK_THROWS_WITH(packed_qkv_attention(randn({2, 4, 13}), 2), Contains("got (2, 4, 13)"));
    CHECK_THROWS_WITH(packed_qkv_attention(randn({2, 4, 12}), 3),
                      Contains(std::string(op) + ": num_heads must divide C = 4 (qkv (2, 4, 12)), got 3"));
    CHECK_THROWS_WITH(packed_qkv_attention(randn({2, 4, 12}), 0), Contains("num_heads must divide C = 4"));
    CHECK_THROWS_WITH(packed_qkv_attention(randn({2, 4, 12}), 2, AttentionOptions().attn_mask(ones({3, 4}, kBool))),
                      Contains(std::string(op) + ": attn_mask of shape (3, 4) does not broadcast to the scores' shape (2, 2, 4, 4)"));
    CHECK_THROWS_WITH(packed_qkv_attention(randn({2, 4, 12}), 2, AttentionOptions().dropout_p(-0.5f)),
                      Contains(std::string(op) + ": dropout_p must be in [0, 1), got -0.5"));
}

TEST_CASE("causal_mask is tril(ones(L, S))")
{
    const Tensor m = causal_mask(2, 3);
    CHECK(m.dtype() == kBool);
    CHECK(m.shape() == Shape{2, 3});
    const std::vector<bool> expected = {true, false, false, true, true, false};
    CHECK(std::equal(expected.begin(), expected.end(), m.data_ptr<bool>()));
}
