// The ops of every dtype against torch's table (tests/reference/make_dtype_ops_reference.py): for each
// op and each pair of the ten dtypes, the dtype torch's result has and its values, or torch's refusal;
// then the integer rules by hand (wrap-around, floor rounding, division by zero, sums and extremes) and
// the element-moving ops on ids and masks.
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include <catch2/catch.hpp>

#include "reference.h"
#include "xgrad.h"

using namespace xgrad;
using Catch::Matchers::Contains;
using xgrad::testing::dtype_named;
using xgrad::testing::number;
using xgrad::testing::reference;

namespace {

// an operand of the table: a 1-D tensor of its dtype holding its values (all exact in double)
Tensor operand(const nlohmann::json& o)
{
    std::vector<double> values;
    for (const auto& v : o["values"]) values.push_back(number(v));
    return from_vector(values, {values.size()}).to(dtype_named(o["dtype"]));
}

using Binary = std::function<Tensor(const Tensor&, const Tensor&)>;
using Unary = std::function<Tensor(const Tensor&)>;

const std::map<std::string, Binary>& binary_ops()
{
    static const std::map<std::string, Binary> ops = {
        {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }},
        {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }},
        {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }},
        {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }},
        {"floor_divide", [](const Tensor& a, const Tensor& b) { return floor_divide(a, b); }},
        {"remainder", [](const Tensor& a, const Tensor& b) { return remainder(a, b); }},
        {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }},
        {"eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); }},
        {"lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); }},
        {"ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); }},
        {"bitwise_and", [](const Tensor& a, const Tensor& b) { return bitwise_and(a, b); }},
        {"bitwise_or", [](const Tensor& a, const Tensor& b) { return bitwise_or(a, b); }},
        {"bitwise_xor", [](const Tensor& a, const Tensor& b) { return bitwise_xor(a, b); }},
        {"logical_and", [](const Tensor& a, const Tensor& b) { return logical_and(a, b); }},
    };
    return ops;
}

const std::map<std::string, Unary>& unary_ops()
{
    static const std::map<std::string, Unary> ops = {
        {"neg", [](const Tensor& x) { return neg(x); }},
        {"abs", [](const Tensor& x) { return xgrad::abs(x); }},
        {"bitwise_not", [](const Tensor& x) { return bitwise_not(x); }},
        {"logical_not", [](const Tensor& x) { return logical_not(x); }},
        {"sum", [](const Tensor& x) { return sum(x); }},
        {"mean", [](const Tensor& x) { return mean(x); }},
        {"argmax", [](const Tensor& x) { return argmax(x); }},
        {"max", [](const Tensor& x) { return max(x); }},
        {"exp", [](const Tensor& x) { return exp(x); }},
        {"clamp_int", [](const Tensor& x) { return clamp(x, -1.0, 3.0); }},
        {"clamp_min_float", [](const Tensor& x) { return clamp(x, 0.5, std::nullopt); }},
    };
    return ops;
}

bool storage_only(const std::string& dtype) { return dtype == "float16" || dtype == "bfloat16"; }

}  // namespace

TEST_CASE("every op gives torch's dtype and values, or refuses as torch does, for each pair of the ten dtypes")
{
    const nlohmann::json& table = reference("dtype_ops_reference.json");
    std::size_t checked = 0, refused = 0, storage = 0;
    std::set<std::string> not_in_core;
    for (const auto& c : table["cases"]) {
        const std::string op = c["op"];
        // a Python number's operand is tests/python/test_dtype_ops.py's: C++ has no such rank
        if (c["a"].contains("scalar") || (c.contains("b") && c["b"].contains("scalar"))) continue;
        INFO(c.dump());
        std::function<Tensor()> run;
        bool half = storage_only(c["a"]["dtype"]);
        if (c.contains("b")) {
            half = half || storage_only(c["b"]["dtype"]);
            auto it = binary_ops().find(op);
            if (it == binary_ops().end()) { not_in_core.insert(op); continue; }
            run = [&c, f = it->second] { return f(operand(c["a"]), operand(c["b"])); };
        } else if (c.contains("dim")) {
            run = [&c] { return sum(operand(c["a"]), {c["dim"].get<int>()}); };
        } else {
            auto it = unary_ops().find(op);
            if (it == unary_ops().end()) { not_in_core.insert(op); continue; }
            run = [&c, f = it->second] { return f(operand(c["a"])); };
        }
        if (c.contains("error")) {
            CHECK_THROWS_AS(run(), Error);
            ++refused;
            continue;
        }
        Tensor y;
        try {
            y = run();
        } catch (const Error& e) {   // what torch computes in float16 or bfloat16, xgrad only stores
            INFO(e.what());
            CHECK(half);
            CHECK_THAT(e.what(), Contains("float16"));   // or bfloat16: the message names the dtype
            ++storage;
            continue;
        }
        const auto& expected = c["result"];
        CHECK(dtype_name(y.dtype()) == expected["dtype"].get<std::string>());
        const Tensor got = y.to(kFloat64).contiguous();
        std::vector<double> want;
        if (expected["values"].is_array()) for (const auto& v : expected["values"]) want.push_back(number(v));
        else want.push_back(number(expected["values"]));
        REQUIRE(got.numel() == want.size());
        for (std::size_t i = 0; i < want.size(); ++i) {
            const double g = got.data_ptr<double>()[i], w = want[i];
            if (std::isnan(w)) CHECK(std::isnan(g));
            else CHECK(g == Approx(w).epsilon(1e-6));
        }
        ++checked;
    }
    CHECK(checked > 900);
    CHECK(refused > 150);
    CHECK(not_in_core == std::set<std::string>{"maximum"});
    INFO(checked << " computed, " << refused << " refused, " << storage << " storage-only");
    CHECK(storage < checked / 2);
}

TEST_CASE("integers wrap around, divide with floor rounding, and refuse a division by zero, as torch's")
{
    const Tensor big = from_vector<std::int64_t>({INT64_MAX, INT64_MIN, -7, 7}, {4});
    const Tensor one = from_vector<std::int64_t>({1, -1, 2, -2}, {4});
    const Tensor s = add(big, one);
    CHECK(s.dtype() == kInt64);
    CHECK(s.data_ptr<std::int64_t>()[0] == INT64_MIN);   // wrapped
    const Tensor q = floor_divide(big, one), r = remainder(big, one);
    CHECK(q.data_ptr<std::int64_t>()[1] == INT64_MIN);   // INT64_MIN // -1 wraps, as torch's
    CHECK(q.data_ptr<std::int64_t>()[2] == -4);          // -7 // 2 rounds down
    CHECK(q.data_ptr<std::int64_t>()[3] == -4);          // 7 // -2
    CHECK(r.data_ptr<std::int64_t>()[2] == 1);           // -7 % 2 takes the divisor's sign
    CHECK(r.data_ptr<std::int64_t>()[3] == -1);
    CHECK(div(big, one).dtype() == kFloat32);            // true division: the default float dtype
    CHECK_THROWS_WITH(floor_divide(one, zeros({4}, kInt64)), Contains("ZeroDivisionError"));
    CHECK_THROWS_WITH(remainder(one, zeros({4}, kInt32)), Contains("ZeroDivisionError"));
    CHECK_THROWS_WITH(sub(ones({2}, kBool), ones({2}, kBool)), Contains("logical_xor"));
    CHECK_THROWS_WITH(sub(one, ones({4}, kBool)), Contains("with a bool tensor is not supported"));
    CHECK_THROWS_WITH(neg(ones({2}, kBool)), Contains("logical_not"));
    CHECK_THROWS_WITH(mean(one), Contains("mean(): could not infer output dtype"));
}

TEST_CASE("sums of integers and bools are int64, and their extremes and argmax keep torch's rules")
{
    const Tensor mask = from_vector<bool>({true, false, true, true, false, true}, {2, 3});
    const Tensor counts = sum(mask, {1});
    CHECK(counts.dtype() == kInt64);
    CHECK(counts.data_ptr<std::int64_t>()[0] == 2);
    CHECK(counts.data_ptr<std::int64_t>()[1] == 2);
    const Tensor ids = from_vector<std::int32_t>({3, 9, 9, -1, 4, 2}, {2, 3});
    CHECK(sum(ids).dtype() == kInt64);
    CHECK(sum(ids).item<std::int64_t>() == 26);
    const Tensor m = max(ids, 1);
    CHECK(m.dtype() == kInt32);
    CHECK(m.data_ptr<std::int32_t>()[0] == 9);
    CHECK(m.data_ptr<std::int32_t>()[1] == 4);
    const Tensor first = argmax(ids, 1);
    CHECK(first.dtype() == kInt64);
    CHECK(first.data_ptr<std::int64_t>()[0] == 1);   // the first of the tied nines
    CHECK(argmin(ids).item<std::int64_t>() == 3);
    CHECK(argmax(ids, 0, true).shape() == Shape{1, 3});
    const float nan = std::numeric_limits<float>::quiet_NaN();
    CHECK(argmax(tensor({1, nan, 5})).item<std::int64_t>() == 1);   // NaN is the largest, as torch's
    CHECK_THROWS_WITH(argmax(mask), Contains("not implemented for bool"));
    CHECK_THROWS_WITH(argmax(zeros({0}, kInt64)), Contains("non-zero size"));
}

TEST_CASE("ids and masks go through cat, indexing, where, masked_fill and tril as themselves")
{
    const Tensor a = from_vector<std::int64_t>({1, 2, 3, 4}, {2, 2}), b = from_vector<std::int64_t>({5, 6}, {1, 2});
    const Tensor joined = concat({a, b}, 0);
    CHECK(joined.dtype() == kInt64);
    CHECK(joined.shape() == Shape{3, 2});
    CHECK(joined.data_ptr<std::int64_t>()[5] == 6);
    CHECK(concat({a, b.to(kInt32)}, 0).dtype() == kInt64);   // promoted
    const Tensor picked = take(a, {3, 0}, {2});
    CHECK(picked.data_ptr<std::int64_t>()[0] == 4);
    const Tensor mask = from_vector<bool>({true, false, false, true}, {2, 2});
    const Tensor filled = masked_fill(a, mask, -1);
    CHECK(filled.dtype() == kInt64);
    CHECK(filled.data_ptr<std::int64_t>()[0] == -1);
    CHECK(filled.data_ptr<std::int64_t>()[1] == 2);
    const Tensor chosen = xgrad::where(mask, a, zeros({}, kInt64));
    CHECK(chosen.data_ptr<std::int64_t>()[3] == 4);
    CHECK(chosen.data_ptr<std::int64_t>()[2] == 0);
    const Tensor lower = tril(ones({3, 3}, kBool));
    CHECK(lower.dtype() == kBool);
    CHECK(sum(lower).item<std::int64_t>() == 6);
    const Tensor put = index_put(a, {1}, {1}, full({}, 9, kInt64));
    CHECK(put.data_ptr<std::int64_t>()[1] == 9);
    CHECK(a.data_ptr<std::int64_t>()[1] == 2);   // a copy
    CHECK(bitwise_not(mask).data_ptr<bool>()[0] == false);
    CHECK(bitwise_and(a, full({}, 2, kInt64)).data_ptr<std::int64_t>()[1] == 2);
    CHECK_THROWS_WITH(bitwise_and(tensor({1}), tensor({1})), Contains("only integral and bool tensors have bits"));
}

TEST_CASE("nn takes ids as int64 tensors: Embedding, embedding and cross_entropy, float ids refused")
{
    manual_seed(3);
    nn::Embedding tok(5, 3);
    const Tensor ids = from_vector<std::int64_t>({1, 0, 2, 2, 3}, {1, 5});
    const Tensor out = tok.forward(ids);
    CHECK(out.shape() == Shape{1, 5, 3});
    CHECK((out.to_array() == tok.forward(IdArray{{1, 0, 2, 2, 3}}).to_array()));
    CHECK((nn::functional::embedding(ids.to(kInt32), tok.weight).to_array() == out.to_array()));
    CHECK_THROWS_WITH(tok.forward(tensor({1.7f})), Contains("nn::Embedding: expected ids of dtype int64 (or int32), got float32"));
    const Tensor logits = randn({5, 4});
    const Tensor targets = from_vector<std::int64_t>({0, 3, 1, 1, 2}, {5});
    CHECK(nn::functional::cross_entropy(logits, targets).item() ==
          nn::functional::cross_entropy(logits, IdArray{0, 3, 1, 1, 2}).item());
    CHECK_THROWS_WITH(nn::functional::cross_entropy(logits, targets.to(kFloat32)), Contains("cross_entropy: expected ids"));
}

TEST_CASE("an integer number keeps an integer tensor integral, as libtorch's Scalar; a float tensor takes it as a double")
{
    const Tensor ids = from_vector<std::int64_t>({0, 1, 2}, {3});
    const Tensor next = ids + 1;
    CHECK(next.dtype() == kInt64);
    CHECK(next.data_ptr<std::int64_t>()[2] == 3);
    CHECK((2 * ids).dtype() == kInt64);
    CHECK((10 - ids).data_ptr<std::int64_t>()[1] == 9);
    const Tensor small = from_vector<std::uint8_t>({0, 200}, {2});
    CHECK((small - 1).dtype() == kUInt8);
    CHECK((small - 1).data_ptr<std::uint8_t>()[0] == 255);   // wraps, as torch's
    CHECK((ones({2}, kBool) + 1).dtype() == kInt64);         // bool with an int: int64
    CHECK((ids + 0.5).dtype() == kFloat32);                  // a float number: the default float dtype
    const Tensor x = ones({2}, true);
    const Tensor y = x * 3;
    CHECK(y.dtype() == kFloat32);
    CHECK(y.op_name() == std::string("mul_scalar"));
    CHECK((x - 1).to_array()(0) == 0.0f);
}
