// One catalogue of {op, input shapes, input domain} drives the finite-difference check over every op.
#include <catch2/catch.hpp>

#include "core/autograd.h"
#include "gradcheck.h"

using namespace xgrad;
using xgrad::testing::Fn;

namespace {

enum class Domain {
    any,        // N(0, 1)
    positive,   // U[0.5, 2): for log, sqrt, division, fractional powers
    nonzero,    // |x| in [0.2, 2) with random signs: away from relu's kink
    distinct,   // a shuffled ramp: no ties for max
};

struct Case {
    const char* name;
    Fn fn;
    std::vector<Shape> shapes;
    Domain domain = Domain::any;
};

Tensor make_input(const Shape& shape, Domain domain, Generator& rng)
{
    Array a(shape);
    switch (domain) {
    case Domain::any: rng.normal_(a); break;
    case Domain::positive: rng.uniform_(a, 0.5f, 2.0f); break;
    case Domain::nonzero:
        for (auto& v : a) v = (rng.uniform() < 0.5f ? -1.0f : 1.0f) * (0.2f + 1.8f * rng.uniform());
        break;
    case Domain::distinct:
        for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = 0.1f * static_cast<float>(i);
        for (std::size_t i = a.size(); i > 1; --i) std::swap(a.data()[i - 1], a.data()[rng.below(i)]);
        break;
    }
    return Tensor(a);
}

using In = const std::vector<Tensor>&;

const std::vector<Case>& catalogue()
{
    static const std::vector<Case> cases = {
        // element-wise, broadcasting
        {"add", [](In x) { return x[0] + x[1]; }, {{2, 3}, {2, 3}}},
        {"add broadcast row", [](In x) { return x[0] + x[1]; }, {{2, 3}, {3}}},
        {"add broadcast both", [](In x) { return x[0] + x[1]; }, {{4, 1, 3}, {2, 1}}},
        {"add a position table to a batch", [](In x) { return x[0] + x[1]; }, {{2, 3, 4}, {1, 3, 4}}},
        {"sub broadcast column", [](In x) { return x[0] - x[1]; }, {{2, 3}, {2, 1}}},
        {"mul outer", [](In x) { return x[0] * x[1]; }, {{3, 1}, {1, 4}}},
        {"mul scalar-shaped", [](In x) { return x[0] * x[1]; }, {{2, 3}, {}}},
        {"div broadcast", [](In x) { return x[0] / x[1]; }, {{2, 3}, {3}}, Domain::positive},
        // with a scalar
        {"add scalar", [](In x) { return x[0] + 1.5f; }, {{2, 3}}},
        {"mul scalar", [](In x) { return -2.5f * x[0]; }, {{2, 3}}},
        {"rsub scalar", [](In x) { return 1.0f - x[0]; }, {{2, 3}}},
        {"rdiv scalar", [](In x) { return 3.0f / x[0]; }, {{2, 3}}, Domain::positive},
        {"div by scalar", [](In x) { return x[0] / 4.0f; }, {{2, 3}}},
        {"pow 3", [](In x) { return pow(x[0], 3.0f); }, {{2, 3}}},
        {"pow -1.5", [](In x) { return pow(x[0], -1.5f); }, {{2, 3}}, Domain::positive},
        // functions
        {"neg", [](In x) { return -x[0]; }, {{2, 3}}},
        {"exp", [](In x) { return exp(x[0]); }, {{2, 3}}},
        {"log", [](In x) { return log(x[0]); }, {{2, 3}}, Domain::positive},
        {"sqrt", [](In x) { return sqrt(x[0]); }, {{2, 3}}, Domain::positive},
        {"tanh", [](In x) { return tanh(x[0]); }, {{2, 3}}},
        {"sin", [](In x) { return sin(x[0]); }, {{2, 3}}},
        {"cos", [](In x) { return cos(x[0]); }, {{2, 3}}},
        {"sigmoid", [](In x) { return sigmoid(x[0]); }, {{2, 3}}},
        {"relu", [](In x) { return relu(x[0]); }, {{3, 4}}, Domain::nonzero},
        {"gelu", [](In x) { return gelu(x[0]); }, {{3, 4}}},
        {"gelu tanh", [](In x) { return gelu(x[0], "tanh"); }, {{3, 4}}},
        {"softplus", [](In x) { return softplus(x[0], 2.0f); }, {{3, 4}}},
        {"dropout (its mask fixed by the seed)", [](In x) {
             manual_seed(3);
             return dropout(x[0], 0.4f);
         }, {{3, 4}}},
        // reductions
        {"sum all", [](In x) { return sum(x[0]); }, {{2, 3, 4}}},
        {"mean all", [](In x) { return mean(x[0]); }, {{2, 3, 4}}},
        {"sum axis 0", [](In x) { return sum(x[0], {0}); }, {{2, 3, 4}}},
        {"sum axes -1, 0 keepdim", [](In x) { return sum(x[0], {-1, 0}, true); }, {{2, 3, 4}}},
        {"mean axis 1", [](In x) { return mean(x[0], {1}); }, {{2, 3, 4}}},
        {"max axis 1", [](In x) { return max(x[0], 1); }, {{3, 4, 2}}, Domain::distinct},
        {"max axis 0 keepdim", [](In x) { return max(x[0], 0, true); }, {{3, 4}}, Domain::distinct},
        {"softmax", [](In x) { return softmax(x[0]); }, {{3, 5}}},
        {"log_softmax", [](In x) { return log_softmax(x[0]); }, {{2, 3, 4}}},
        // shape
        {"reshape with -1", [](In x) { return reshape(x[0], {3, -1}); }, {{2, 6}}},
        {"view", [](In x) { return view(x[0], {4, 3}) * x[1]; }, {{2, 6}, {3}}},
        {"transpose", [](In x) { return transpose(x[0], 0, 2); }, {{2, 3, 4}}},
        {"permute", [](In x) { return permute(x[0], {2, 0, 1}); }, {{2, 3, 4}}},
        {"concat axis 1", [](In x) { return concat({x[0], x[1], x[0]}, 1); }, {{2, 3}, {2, 2}}},
        {"split, one piece", [](In x) { return split(x[0], 2, 1)[1]; }, {{3, 5}}},
        {"split, reassembled", [](In x) {
             auto p = split(x[0], 2, 0);
             return concat({p[2], p[0] * 2.0f, p[1]}, 0);
         }, {{5, 3}}},
        {"masked_fill", [](In x) {
             return masked_fill(x[0], from_vector({1, 0, 0, 1}, {1, 4}), -7.0f);
         }, {{3, 4}}},
        // matrix products
        {"matmul 2-D", [](In x) { return matmul(x[0], x[1]); }, {{3, 4}, {4, 5}}},
        {"matmul batched", [](In x) { return matmul(x[0], x[1]); }, {{2, 3, 4}, {2, 4, 5}}},
        {"matmul 3-D @ 2-D", [](In x) { return matmul(x[0], x[1]); }, {{2, 3, 4}, {4, 5}}},
        {"matmul 2-D @ 3-D", [](In x) { return matmul(x[0], x[1]); }, {{3, 4}, {2, 4, 5}}},
        {"matmul batch 1 broadcast", [](In x) { return matmul(x[0], x[1]); }, {{1, 3, 4}, {2, 4, 5}}},
        {"matmul 4-D, both batch dims broadcast", [](In x) { return matmul(x[0], x[1]); }, {{2, 1, 3, 4}, {1, 3, 4, 2}}},
        {"matmul (B, nh, T, hs) @ its transpose", [](In x) { return matmul(x[0], transpose(x[0], -2, -1)); }, {{2, 2, 3, 4}}},
        {"linear (fused x W^T + b)", [](In x) { return linear(x[0], x[1], x[2]); }, {{2, 3, 4}, {5, 4}, {5}}},
        // indexing
        {"embedding_lookup, repeated ids", [](In x) {
             IdArray ids = {{1, 0, 2}, {2, 2, 4}};
             return embedding_lookup(x[0], ids);
         }, {{5, 3}}},
        // compositions: a value used twice, a small network
        {"x * x + x", [](In x) { return x[0] * x[0] + x[0]; }, {{2, 3}}},
        {"mlp", [](In x) { return log_softmax(matmul(gelu(matmul(x[0], x[1]) + x[2]), x[3])); },
         {{4, 3}, {3, 5}, {5}, {5, 2}}},
    };
    return cases;
}

}  // namespace

TEST_CASE("backprop matches central finite differences for every op in the catalogue")
{
    Generator rng(42);
    for (const Case& c : catalogue()) {
        std::vector<Tensor> inputs;
        for (const auto& shape : c.shapes) inputs.push_back(make_input(shape, c.domain, rng));
        auto result = xgrad::testing::gradcheck(c.fn, inputs);
        INFO(c.name << "\n" << result.report);
        CHECK(result.ok);
    }
}

TEST_CASE("gradcheck catches a wrong backward")
{
    // a deliberately broken op: forward x^2, backward claims x
    Fn broken = [](In x) {
        Tensor in = x[0];
        return from_op(in.to_array() * in.to_array(), {in}, "broken", [in](GradOutput& g) {
            in.accumulate_grad(Array(g.read() * in.to_array()));
        });
    };
    Generator rng(7);
    CHECK_FALSE(xgrad::testing::gradcheck(broken, {make_input({2, 3}, Domain::any, rng)}).ok);

    // a backward that swaps two output elements passes a plain sum but not the weighted one
    Fn swapped = [](In x) {
        Tensor in = x[0];
        return from_op(in.to_array() * 3.0f, {in}, "swapped", [in](GradOutput& g) {
            Array grad = g.read() * 3.0f;
            std::swap(grad.data()[0], grad.data()[1]);
            in.accumulate_grad(grad);
        });
    };
    CHECK_FALSE(xgrad::testing::gradcheck(swapped, {make_input({2, 3}, Domain::any, rng)}).ok);
}
