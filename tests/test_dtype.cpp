// Tensors of every dtype from C++: promotion and conversion against torch's tables
// (tests/reference/make_dtype_reference.py), creation, views and copies that keep the dtype, writes
// into them, and the errors of ops and autograd given a dtype they do not take.
#include <cmath>
#include <sstream>

#include <catch2/catch.hpp>

#include "close.h"
#include "gradcheck.h"
#include "reference.h"
#include "xgrad.h"

using namespace xgrad;
using Catch::Matchers::Contains;
using xgrad::testing::dtype_named;
using xgrad::testing::number;
using xgrad::testing::reference;

namespace {

std::vector<std::string> words(const std::string& s)
{
    std::istringstream in(s);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

}  // namespace

TEST_CASE("promote_types agrees with torch's for all 100 pairs of dtypes")
{
    const auto& table = reference("dtype_reference.json")["promote_types"];
    REQUIRE(table.size() == 100);
    for (const auto& [pair, expected] : table.items()) {
        const auto names = words(pair);
        INFO(pair);
        CHECK(dtype_name(promote_types(dtype_named(names[0]), dtype_named(names[1]))) == expected.get<std::string>());
    }
}

TEST_CASE("result_type agrees with torch's where tensors of dimensions, 0-D tensors and numbers meet")
{
    const auto& table = reference("dtype_reference.json")["result_type"];
    REQUIRE(table.size() == 520);
    auto operand = [](const std::string& text) {
        const auto w = words(text);
        if (w[0] == "number") {   // a Python bool, int or float
            return DtypeOperand{w[1] == "bool" ? kBool : w[1] == "int" ? kInt64 : kFloat64, OperandRank::number};
        }
        return DtypeOperand{dtype_named(w[1]), w[0] == "zero_dim" ? OperandRank::zero_dim : OperandRank::dimensioned};
    };
    for (const auto& [pair, expected] : table.items()) {
        const std::size_t comma = pair.find(", ");
        INFO(pair);
        CHECK(dtype_name(result_type(operand(pair.substr(0, comma)), operand(pair.substr(comma + 2)))) ==
              expected.get<std::string>());
    }
}

TEST_CASE("a Python float follows the default dtype, which only float32 and float64 may be")
{
    const DtypeOperand f32{kFloat32, OperandRank::dimensioned}, i64{kInt64, OperandRank::dimensioned},
        py_float{kFloat64, OperandRank::number};
    CHECK(result_type(i64, py_float) == kFloat32);
    CHECK(result_type(f32, py_float) == kFloat32);
    set_default_dtype(kFloat64);
    CHECK(result_type(i64, py_float) == kFloat64);
    CHECK(result_type(f32, py_float) == kFloat32);   // a number never widens a tensor of its category
    set_default_dtype(kFloat32);
    try {
        set_default_dtype(kInt64);
        FAIL("an integer default dtype was accepted");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Contains("only floating-point types") && Contains("int64"));
    }
    CHECK(default_dtype() == kFloat32);
}

TEST_CASE("to(dtype) converts as torch does, at and past every type's edges")
{
    const auto& table = reference("dtype_reference.json")["conversions"];
    REQUIRE(table.size() == 70);
    for (const auto& [pair, expected] : table.items()) {
        const auto names = words(pair);
        const Dtype from = dtype_named(names[0]), to = dtype_named(names[1]);
        INFO(pair);
        const auto& in = expected["from"];
        Tensor x;
        if (is_floating_point(from)) {
            std::vector<double> v;
            for (const auto& e : in) v.push_back(number(e));
            x = from_vector(v, {v.size()}).to(from);   // each float32 source value is a float32 already
        } else {
            std::vector<std::int64_t> v;
            for (const auto& e : in) v.push_back(e.is_boolean() ? e.get<bool>() : e.get<std::int64_t>());
            x = from_vector(v, {v.size()}).to(from);   // in the source type's range: exact
        }
        const Tensor y = x.to(to);
        REQUIRE(y.dtype() == to);
        REQUIRE(y.numel() == in.size());
        const auto& out = expected["to"];
        for (std::size_t i = 0; i < y.numel(); ++i) {
            INFO("element " << i << ": " << in[i] << " -> " << out[i]);
            const Tensor e = y.select(0, static_cast<std::int64_t>(i));
            if (is_floating_point(to)) {
                const double want = number(out[i]), got = e.item<double>();
                if (std::isnan(want)) {
                    CHECK(std::isnan(got));
                } else {
                    CHECK(got == want);
                    CHECK(std::signbit(got) == std::signbit(want));
                }
            } else if (to == kBool) {
                CHECK(e.item<bool>() == out[i].get<bool>());
            } else {
                CHECK(e.item<std::int64_t>() == out[i].get<std::int64_t>());
            }
        }
    }
}

TEST_CASE("tensors of each dtype are made, read and printed with their dtype")
{
    const Tensor ids = arange(0, 5, 1, kInt64);
    CHECK(ids.dtype() == kInt64);
    CHECK(ids.element_size() == 8);
    CHECK_FALSE(ids.is_floating_point());
    CHECK(ids.shape() == Shape{5});
    CHECK(ids.data_ptr<std::int64_t>()[4] == 4);
    CHECK(arange(0, 4.2, 1, kInt64).numel() == 4);      // bounds toward zero first: 0..3, as torch
    CHECK_THROWS_WITH(arange(0, 4, 0.5, kInt64), Contains("step must be nonzero (an integral dtype truncates it"));
    CHECK_THROWS_WITH(arange(0, 4, 0, kFloat64), Contains("arange: step must be nonzero"));
    CHECK(arange(0.5, 2, 0.5, kFloat64).numel() == 3);  // 0.5, 1.0, 1.5
    CHECK(arange(0.5, 2, 0.5, kFloat64).data_ptr<double>()[2] == 1.5);
    CHECK(zeros({2, 3}, kBool).dtype() == kBool);
    CHECK_FALSE(zeros({2, 3}, kBool).data_ptr<bool>()[5]);
    CHECK(ones({2}, kUInt8).data_ptr<std::uint8_t>()[1] == 1);
    CHECK(full({1}, 300.7, kInt8).item<int>() == 44);   // through int32, its low bits, as torch
}

TEST_CASE("item() reads a one-element tensor of any dtype, converted to what is asked")
{
    CHECK(full({}, 2.5, kFloat64).item<double>() == 2.5);
    CHECK(full({1}, 9007199254740993.0, kInt64).item<std::int64_t>() == 9007199254740992);   // the double's value
    CHECK(from_vector(std::vector<std::int64_t>{9007199254740993}, {1}).item<std::int64_t>() == 9007199254740993);
    CHECK(full({}, 1, kBool).item<float>() == 1.0f);
    CHECK(full({}, 65520, kHalf).item<float>() == INFINITY);
    CHECK(full({}, 1.0f / 3, kBFloat16).item<float>() == 0.333984375f);
    try {
        (void)arange(0, 3, 1, kInt64).item<std::int64_t>();
        FAIL("item of 3 elements was read");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Contains("one element") && Contains("(3,)"));
    }
    try {
        (void)arange(0, 3, 1, kInt64).data_ptr<float>();
        FAIL("int64 elements were read as float");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Contains("holds int64, not float32"));
    }
}

TEST_CASE("views of an int64 tensor share its storage; copies keep the dtype")
{
    const Tensor x = arange(0, 12, 1, kInt64).view({3, 4});
    const Tensor t = x.t();
    CHECK(t.dtype() == kInt64);
    CHECK(t.shares_storage(x));
    CHECK_FALSE(t.is_contiguous());
    const Tensor c = t.contiguous();
    CHECK(c.dtype() == kInt64);
    CHECK_FALSE(c.shares_storage(x));
    CHECK(c.data_ptr<std::int64_t>()[1] == 4);           // row 0 of the transpose: 0, 4, 8
    const Tensor r = t.reshape({12});                    // no view can follow the transpose: a copy
    CHECK(r.data_ptr<std::int64_t>()[2] == 8);
    const Tensor k = t.clone();                          // a dense layout keeps its strides, as torch's
    CHECK(k.stride() == std::vector<std::size_t>{1, 4});
    CHECK_FALSE(k.shares_storage(x));
    CHECK(k.select(0, 1).select(0, 2).item<std::int64_t>() == 9);
    x.select(0, 1).fill_(-7);                            // written through the view, into x
    CHECK((x.select(1, 2).to(kFloat32).to_array() == Array{2, -7, 10}));
    CHECK(x.version() == 1);
    CHECK(k.select(0, 1).select(0, 2).item<std::int64_t>() == 9);   // the clone is its own
}

TEST_CASE("copy_ and fill_ convert into the tensor's dtype and write through views")
{
    const Tensor m = zeros({2, 3}, kBool);
    m.select(1, 1).copy_(tensor({0.0f, -0.5f}));          // != 0: -0.5 is true
    CHECK((m.to(kInt64).to(kFloat32).to_array() == Array{{0, 0, 0}, {0, 1, 0}}));
    const Tensor f = zeros({3});
    f.copy_(arange(5, 8, 1, kInt64));                     // int64 into float32
    CHECK((f.to_array() == Array{5, 6, 7}));
    const Tensor d = zeros({2, 2}, kFloat64);
    d.copy_(full({2}, 0.1, kFloat64));                    // broadcast along the rows
    CHECK(d.data_ptr<double>()[3] == 0.1);
    d.zero_();
    CHECK(d.data_ptr<double>()[3] == 0.0);
    const Tensor e = zeros({3}, kInt32).unsqueeze(0).expand({2, 3});
    try {
        e.fill_(1);
        FAIL("fill_ wrote into an expanded view");
    } catch (const Error& err) {
        CHECK_THAT(err.what(), Contains("more than one element"));
    }
}

TEST_CASE("ops refuse the dtypes they do not compute in, naming the op, the dtype and the conversion")
{
    const Tensor ids = arange(0, 4, 1, kInt64);
    CHECK(exp(ids).dtype() == kFloat32);   // a float function of integers: in the default dtype, as torch's
    try {
        (void)gelu(ids);
        FAIL("gelu of int64 ran");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Contains("gelu: expected a float32 or float64 tensor, got one of dtype int64") &&
                                 Contains(".to(kFloat32)"));
    }
    CHECK(embedding_lookup(ones({4, 2}, kFloat64), IdArray{1, 2}).dtype() == kFloat64);
    try {
        LookupOptions renormalized;
        renormalized.max_norm = 1.0f;
        (void)embedding_lookup(ones({4, 2}, kFloat64), IdArray{1, 2}, renormalized);
        FAIL("max_norm renormalised a float64 table");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Contains("embedding_lookup: max_norm, scale_grad_by_freq and sparse take a float32 table"));
    }
    try {
        ids.exp_();
        FAIL("exp_ of int64 ran");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Contains("exp_: result type float32 can't be cast to the desired output type int64"));
    }
    const Tensor product = matmul(ids.view({2, 2}), ones({2, 2}).to(kInt64));   // integers multiply, as torch's
    CHECK(product.dtype() == kInt64);
    CHECK(product.data_ptr<std::int64_t>()[3] == 5);
    try {
        (void)matmul(ones({2, 2}, kBool), ones({2, 2}, kBool));
        FAIL("matmul of bool ran");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Contains("matmul") && Contains("bool"));
    }
    try {
        ids.add_(1.0f);
        FAIL("add_ into int64 ran");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Contains("add_") && Contains("int64"));
    }
    CHECK(exp(ids.to(kFloat32)).dtype() == kFloat32);
}

TEST_CASE("only floating-point tensors may require grad; autograd runs in float32 and float64")
{
    try {
        arange(0, 3, 1, kInt64).requires_grad_();
        FAIL("an int64 tensor requires grad");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Contains("only Tensors of floating point dtype can require gradients") && Contains("int64"));
    }
    try {
        zeros({2}, kFloat16).requires_grad_();
        FAIL("a float16 tensor requires grad");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Contains("float32 and float64") && Contains("float16"));
    }
    const Tensor w = ones({2}, true);
    const Tensor stored = w.to(kBFloat16);   // leaving float32 and float64: a copy without gradient, as torch's
    CHECK(stored.dtype() == kBFloat16);
    CHECK(!stored.requires_grad());
    CHECK(w.to(kFloat32).is_same(w));
    // float32 -> float64 -> float32 is recorded both ways: the gradient comes back converted
    const Tensor d = w.to(kFloat64);
    CHECK(d.dtype() == kFloat64);
    CHECK(d.op_name() == std::string("to"));
    sum(mul(d, 3.0).to(kFloat32)).backward();
    CHECK(w.grad().dtype() == kFloat32);
    CHECK((w.grad().to_array() == Array{3.0f, 3.0f}));
}

TEST_CASE("float64 ops compute in double precision and their gradients are float64")
{
    const Tensor x = from_vector(std::vector<double>{0.1, -4.0, 2.5}, {3}).requires_grad_();
    const Tensor y = sum(x * x * 0.1 + exp(x) / (x + 10.0));
    CHECK(y.dtype() == kFloat64);
    y.backward();
    REQUIRE(x.grad().dtype() == kFloat64);
    const double* g = x.grad().data_ptr<double>();
    for (int i = 0; i < 3; ++i) {
        const double v = x.data_ptr<double>()[i];
        const double expected = 0.2 * v + std::exp(v) / (v + 10.0) - std::exp(v) / ((v + 10.0) * (v + 10.0));
        CHECK(std::abs(g[i] - expected) < 1e-15 * std::max(1.0, std::abs(expected)));
    }
    // a float32 tensor with a float64 one: float64, as torch's promotion, and each gradient in its own dtype
    const Tensor a = ones({2}, true), b = full({2}, 0.5, kFloat64).requires_grad_();
    const Tensor c = a * b;
    CHECK(c.dtype() == kFloat64);
    sum(c).backward();
    CHECK(a.grad().dtype() == kFloat32);
    CHECK(b.grad().dtype() == kFloat64);
    // a 0-D float64 tensor does not widen a float32 tensor with dimensions
    CHECK(result_type(a, full({}, 2.0, kFloat64)) == kFloat32);
    CHECK((a + full({}, 2.0, kFloat64)).dtype() == kFloat32);
    // an int64 tensor with a float32 one: float32
    CHECK((arange(0, 2, 1, kInt64) * a).dtype() == kFloat32);
}

TEST_CASE("a tensor prints its values with its dtype")
{
    std::ostringstream out;
    out << arange(0, 3, 1, kInt64) << ' ' << zeros({2}, kBool) << ' ' << ones({1});
    CHECK_THAT(out.str(), Contains("{0, 1, 2}, shape=(3,), dtype=int64)") && Contains("dtype=bool") &&
                              !Contains("dtype=float32"));
}

TEST_CASE("comparisons give bool tensors, in the dtype their operands promote to")
{
    const Tensor ids = from_vector(std::vector<std::int64_t>{1, 2, 3}, {3});
    const Tensor x = tensor({1.5f, 2.0f, 2.5f});
    const Tensor m = eq(ids, x);                          // int64 with float32: compared in float32
    CHECK(m.dtype() == kBool);
    CHECK((m.to(kInt64).to(kFloat32).to_array() == Array{0, 1, 0}));
    CHECK((lt(ids, full({}, 2.5, kFloat64)).to(kFloat32).to_array() == Array{1, 1, 0}));
    CHECK(ge(x.unsqueeze(1), x).shape() == Shape{3, 3});  // broadcast
    CHECK(ne(full({}, NAN, kFloat64), full({}, NAN, kFloat64)).item<bool>());
    // masks are bool tensors: where and masked_fill take them
    CHECK((xgrad::where(m, x, zeros({3})).to_array() == Array{0, 2, 0}));
    CHECK((masked_fill(x, m, -1.0).to_array() == Array{1.5f, -1, 2.5f}));
    try {
        (void)xgrad::where(x, x, x);
        FAIL("a float condition was taken");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Contains("where: expected a condition of dtype bool, got float32"));
    }
}

TEST_CASE("an embedding takes its ids as an int64 tensor, and refuses float ids")
{
    const Tensor table = arange(0, 8, 1, kFloat32).view({4, 2}).detach().requires_grad_();
    const Tensor out = embedding_lookup(table, from_vector(std::vector<std::int64_t>{3, 0, 3}, {3}));
    CHECK((out.to_array() == Array{{6, 7}, {0, 1}, {6, 7}}));
    sum(out).backward();
    CHECK((table.grad().to_array() == Array{{1, 1}, {0, 0}, {0, 0}, {2, 2}}));
    try {
        (void)embedding_lookup(table, tensor({1.7f}));
        FAIL("float ids were truncated");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Contains("expected ids of dtype int64 (or int32), got float32"));
    }
}

TEST_CASE("layer_norm and cross_entropy compute in float64, agree with their float32 kernels, and pass a float64 gradcheck")
{
    Generator rng(11);
    Array a(Shape{3, 4, 5}), b(Shape{5}), c(Shape{5});
    rng.normal_(a), rng.normal_(b), rng.normal_(c);
    const Tensor x(a), w(b), bias(c);
    const Tensor y64 = nn::functional::layer_norm(x.to(kFloat64), {5}, w.to(kFloat64), bias.to(kFloat64), 1e-5f);
    CHECK(y64.dtype() == kFloat64);
    xgrad::testing::check_close(y64.to(kFloat32).to_array(), nn::functional::layer_norm(x, {5}, w, bias, 1e-5f).to_array(),
                                1e-5, 1e-5);
    const IdArray targets = {{1, 4, 0, -100}, {2, 2, 3, 1}, {0, 1, 4, 4}};   // one row ignored
    for (const std::string reduction : {"mean", "sum", "none"}) {
        const auto options = nn::functional::CrossEntropyOptions().reduction(reduction).label_smoothing(0.1f)
                                 .weight(tensor({1, 2, 0.5f, 1, 3}));
        const Tensor l64 = nn::functional::cross_entropy(Tensor(a).to(kFloat64).reshape({3, 4, 5}), targets, options);
        CHECK(l64.dtype() == kFloat64);
        xgrad::testing::check_close(l64.to(kFloat32).to_array(), nn::functional::cross_entropy(Tensor(a), targets, options).to_array(),
                                    1e-5, 1e-5);
    }
    using In = const std::vector<Tensor>&;
    const auto ln = xgrad::testing::gradcheck64(
        [](In v) { return nn::functional::layer_norm(v[0], {4, 5}, v[1], v[2], 1e-5f); },
        {x, Tensor(Array(xt::ones<float>(Shape{4, 5}) * 1.5f)), Tensor(Array(xt::zeros<float>(Shape{4, 5})))});
    INFO(ln.report);
    CHECK(ln.ok);
    const auto ce = xgrad::testing::gradcheck64([&](In v) {
        return nn::functional::cross_entropy(v[0], targets, nn::functional::CrossEntropyOptions().label_smoothing(0.2f));
    }, {x});
    INFO(ce.report);
    CHECK(ce.ok);
}

TEST_CASE("attention and the embedding lookup compute in float64 and agree with their float32 kernels")
{
    Generator rng(12);
    Array q(Shape{2, 3, 4, 8}), k(Shape{2, 3, 5, 8}), v(Shape{2, 3, 5, 6}), qkv(Shape{2, 4, 12}), table(Shape{6, 3});
    for (Array* a : {&q, &k, &v, &qkv, &table}) rng.normal_(*a);
    const Tensor band = xgrad::testing::bool_tensor(BoolArray{{true, false, true, true, false}, {true, true, false, false, true},
                                                              {false, true, true, true, true}, {true, true, true, true, false}});
    for (const AttentionOptions& o : {AttentionOptions().is_causal(true), AttentionOptions().attn_mask(band).scale(0.3f),
                                      AttentionOptions().attn_mask(Tensor(Array(xt::ones<float>(Shape{4, 5}) * 0.5f)))}) {
        const Tensor y64 = scaled_dot_product_attention(Tensor(q).to(kFloat64), Tensor(k).to(kFloat64), Tensor(v).to(kFloat64), o);
        CHECK(y64.dtype() == kFloat64);
        xgrad::testing::check_close(y64.to(kFloat32).to_array(),
                                    scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), o).to_array(), 1e-5, 1e-5);
    }
    const Tensor p64 = packed_qkv_attention(Tensor(qkv).to(kFloat64), 2, AttentionOptions().is_causal(true));
    xgrad::testing::check_close(p64.to(kFloat32).to_array(),
                                packed_qkv_attention(Tensor(qkv), 2, AttentionOptions().is_causal(true)).to_array(), 1e-5, 1e-5);
    CHECK_THROWS_WITH(scaled_dot_product_attention(Tensor(q).to(kFloat64), Tensor(k), Tensor(v)),
                      Contains("expected q, k and v of one dtype, got float64, float32 and float32"));
    LookupOptions padded;
    padded.padding_idx = 2;
    const Tensor w64 = Tensor(table).to(kFloat64).requires_grad_();
    const IdArray ids = {{1, 2, 2}, {5, 0, 1}};
    const Tensor rows = embedding_lookup(w64, ids, padded);
    xgrad::testing::check_close(rows.to(kFloat32).to_array(), embedding_lookup(Tensor(table), ids, padded).to_array(), 0.0);
    sum(rows * 2.0).backward();
    const Tensor g = w64.grad().to(kFloat32);
    CHECK(g.to_array()(1, 0) == 4.0f);   // id 1 twice
    CHECK(g.to_array()(2, 0) == 0.0f);   // the padding row: no gradient
    CHECK(g.to_array()(3, 0) == 0.0f);   // unused
}

TEST_CASE("randn and rand draw float64 in double, from the given generator, and refuse an integer dtype")
{
    Generator a(5), b(5);
    const Tensor x = randn({4000}, kFloat64, false, &a), y = randn({4000}, kFloat64, false, &b);
    CHECK(x.dtype() == kFloat64);
    CHECK(sum(eq(x, y)).item<std::int64_t>() == 4000);                            // a generator's stream: the same draws again
    CHECK(sum(ne(x, x.to(kFloat32).to(kFloat64))).item<std::int64_t>() > 3900);   // 53 random bits, not widened float32 draws
    CHECK(std::abs(mean(x).item<double>()) < 0.06);
    const Tensor u = rand({4000}, kFloat64, true);
    CHECK(u.requires_grad());
    CHECK(min(u).item<double>() >= 0.0);
    CHECK(max(u).item<double>() < 1.0);
    CHECK(rand({2, 3}, kFloat16).dtype() == kFloat16);
    CHECK_THROWS_WITH(randn({2}, kInt64), Contains("randn: expected a floating-point dtype, got int64"));
}
