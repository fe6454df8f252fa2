// The version counter: in-place writes are counted, and a backward that would read a value written
// after its op used it throws PyTorch's error instead of computing a gradient from the wrong values.
#include <catch2/catch.hpp>

#include <functional>
#include <map>

#include "close.h"
#include "reference.h"
#include "xgrad.h"

using namespace xgrad;
using Catch::Matchers::Contains;
using xgrad::testing::check_close;

namespace {

void write_in_place(const Tensor& t, float add)
{
    NoGradGuard no_grad;
    t.add_(add);
}

}  // namespace

TEST_CASE("each in-place write bumps the version; reading does not")
{
    Tensor x = tensor({1, 2, 3});
    CHECK(x.version() == 0);
    (void)x.to_array();
    CHECK(x.version() == 0);
    write_in_place(x, 1.0f);
    write_in_place(x, 1.0f);
    CHECK(x.version() == 2);
    CHECK(exp(x).version() == 0);   // an op's output starts at version 0
}

TEST_CASE("a write into an input that mul saved makes backward throw torch's error, naming the op, shape and versions")
{
    // the first idiom: without the check, w.grad() came out as 2 (w + 1) = [4, 6, 8]
    Tensor w = tensor({1, 2, 3}).requires_grad_();
    Tensor y = sum(w * w);
    write_in_place(w, 1.0f);
    CHECK_THROWS_WITH(y.backward(), Contains("one of the variables needed for gradient computation has been modified by an "
                                             "inplace operation") &&
                                        Contains("input 0 of 'mul', a float32 tensor of shape (3,), is at version 1; "
                                                 "expected version 0 instead"));
    CHECK_FALSE(w.grad().defined());   // nothing was accumulated from the wrong values
}

TEST_CASE("only what a backward reads is checked: add's inputs, and mul's own operand when only it requires grad")
{
    Tensor a = tensor({1, 2, 3}).requires_grad_(), b = tensor({4, 5, 6});
    Tensor y = sum(a + b);
    write_in_place(a, 1.0f);
    write_in_place(b, 1.0f);
    y.backward();   // d(a + b)/da = 1 reads neither value
    check_close(a.grad().to_array(), Array{1, 1, 1});

    Tensor p = tensor({1, 2, 3}).requires_grad_(), q = tensor({4, 5, 6});
    Tensor z = sum(p * q);
    write_in_place(p, 1.0f);   // d(p q)/dp = q: p itself is not needed
    z.backward();
    check_close(p.grad().to_array(), Array{4, 5, 6});

    Tensor r = tensor({1, 2, 3}).requires_grad_(), s = tensor({4, 5, 6});
    Tensor u = sum(r * s);
    write_in_place(s, 1.0f);   // but q is
    CHECK_THROWS_WITH(u.backward(), Contains("input 1 of 'mul'") && Contains("is at version 1; expected version 0"));
}

TEST_CASE("a write into an output that its op's backward reads (exp) throws, naming the output")
{
    Tensor x = tensor({0, 1}).requires_grad_();
    Tensor e = exp(x);
    write_in_place(e, 1.0f);
    CHECK_THROWS_WITH(sum(e).backward(), Contains("output 0 of 'exp', a float32 tensor of shape (2,), is at version 1; "
                                                  "expected version 0 instead"));
}

TEST_CASE("an optimizer step between a forward and its backward is caught, as in torch")
{
    nn::Linear layer(3, 2);
    optim::SGD sgd(layer.parameters(), optim::SGDOptions(0.1));
    Tensor x = randn({4, 3}, /*requires_grad=*/true);   // its gradient needs the weight; the weight's needs only x
    Tensor loss = sum(layer.forward(x));
    loss.backward(Tensor(), /*retain_graph=*/true);
    sgd.step();                       // writes the weight in place
    CHECK(layer.weight.version() == 1);
    CHECK_THROWS_WITH(loss.backward(), Contains("modified by an inplace operation") && Contains("of 'linear'"));
}

TEST_CASE("the check is per op: a later op that used the written value sees the new version and runs")
{
    Tensor w = tensor({1, 2, 3}).requires_grad_();
    write_in_place(w, 1.0f);          // before any op used it: nothing to refuse
    Tensor y = sum(w * w);
    y.backward();
    check_close(w.grad().to_array(), Array{4, 6, 8});
}

// ---- what each op's backward saves, against torch 1.13 (tests/reference/saved_cases.py asks it) ----
namespace {

using Inputs = std::vector<Tensor>;

struct SavedCase {
    std::function<Tensor(const Inputs&)> fn;
    std::vector<Shape> shapes;
    bool positive = false;   // inputs in [0.5, 2): log, sqrt, division
};

// The ops of saved_cases.py, by the same names, in C++.
const std::map<std::string, SavedCase>& saved_cases()
{
    static const std::map<std::string, SavedCase> cases = {
        {"add", {[](const Inputs& x) { return x[0] + x[1]; }, {{2, 3}, {3}}}},
        {"sub", {[](const Inputs& x) { return x[0] - x[1]; }, {{2, 3}, {2, 3}}}},
        {"mul", {[](const Inputs& x) { return x[0] * x[1]; }, {{2, 3}, {3}}}},
        {"div", {[](const Inputs& x) { return x[0] / x[1]; }, {{2, 3}, {3}}, true}},
        {"add_scalar", {[](const Inputs& x) { return x[0] + 2.0f; }, {{2, 3}}}},
        {"mul_scalar", {[](const Inputs& x) { return x[0] * 3.0f; }, {{2, 3}}}},
        {"rsub_scalar", {[](const Inputs& x) { return 2.0f - x[0]; }, {{2, 3}}}},
        {"rdiv_scalar", {[](const Inputs& x) { return 2.0f / x[0]; }, {{2, 3}}, true}},
        {"pow", {[](const Inputs& x) { return pow(x[0], 3.0f); }, {{2, 3}}}},
        {"neg", {[](const Inputs& x) { return -x[0]; }, {{2, 3}}}},
        {"exp", {[](const Inputs& x) { return exp(x[0]); }, {{2, 3}}}},
        {"log", {[](const Inputs& x) { return log(x[0]); }, {{2, 3}}, true}},
        {"sqrt", {[](const Inputs& x) { return sqrt(x[0]); }, {{2, 3}}, true}},
        {"tanh", {[](const Inputs& x) { return tanh(x[0]); }, {{2, 3}}}},
        {"sin", {[](const Inputs& x) { return sin(x[0]); }, {{2, 3}}}},
        {"cos", {[](const Inputs& x) { return cos(x[0]); }, {{2, 3}}}},
        {"sigmoid", {[](const Inputs& x) { return sigmoid(x[0]); }, {{2, 3}}}},
        {"relu", {[](const Inputs& x) { return relu(x[0]); }, {{2, 3}}}},
        {"gelu", {[](const Inputs& x) { return gelu(x[0]); }, {{2, 3}}}},
        {"gelu_tanh", {[](const Inputs& x) { return gelu(x[0], "tanh"); }, {{2, 3}}}},
        {"softplus", {[](const Inputs& x) { return softplus(x[0], 2.0f); }, {{2, 3}}}},
        {"clamp", {[](const Inputs& x) { return clamp(x[0], -0.5f, 0.5f); }, {{2, 3}}}},
        {"sum", {[](const Inputs& x) { return sum(x[0]); }, {{2, 3}}}},
        {"mean", {[](const Inputs& x) { return mean(x[0]); }, {{2, 3}}}},
        {"sum_dim", {[](const Inputs& x) { return sum(x[0], {1}); }, {{2, 3}}}},
        {"max_dim", {[](const Inputs& x) { return max(x[0], 1); }, {{2, 3}}}},
        {"softmax", {[](const Inputs& x) { return softmax(x[0]); }, {{2, 3}}}},
        {"log_softmax", {[](const Inputs& x) { return log_softmax(x[0]); }, {{2, 3}}}},
        {"matmul", {[](const Inputs& x) { return matmul(x[0], x[1]); }, {{2, 3}, {3, 4}}}},
        {"matmul_batched", {[](const Inputs& x) { return matmul(x[0], x[1]); }, {{2, 2, 3}, {2, 3, 4}}}},
        {"linear", {[](const Inputs& x) { return linear(x[0], x[1], x[2]); }, {{2, 3}, {4, 3}, {4}}}},
        {"masked_fill", {[](const Inputs& x) { return masked_fill(x[0], tensor({1, 0, 1}), 0.5f); }, {{2, 3}}}},
        {"where", {[](const Inputs& x) { return xgrad::where(xgrad::testing::bool_tensor(BoolArray{true, false, true}), x[0], x[1]); }, {{2, 3}, {2, 3}}}},
        {"cat", {[](const Inputs& x) { return concat({x[0], x[1]}, 0); }, {{2, 3}, {1, 3}}}},
        {"stack", {[](const Inputs& x) { return stack({x[0], x[1]}); }, {{2, 3}, {2, 3}}}},
        {"view", {[](const Inputs& x) { return x[0].view({6}); }, {{2, 3}}}},
        {"transpose", {[](const Inputs& x) { return x[0].transpose(0, 1); }, {{2, 3}}}},
        {"select", {[](const Inputs& x) { return x[0].select(0, 1); }, {{2, 3}}}},
        {"expand", {[](const Inputs& x) { return x[0].expand({2, 3}); }, {{3}}}},
        {"index", {[](const Inputs& x) { return take(x[0], {3, 4, 5, 0, 1, 2, 3, 4, 5}, {3, 3}, "index"); }, {{2, 3}}}},
        {"tril", {[](const Inputs& x) { return tril(x[0]); }, {{3, 3}}}},
        {"topk", {[](const Inputs& x) { return topk(x[0], 2).first; }, {{2, 3}}}},
        {"embedding", {[](const Inputs& x) { return embedding_lookup(x[0], IdArray{2, 0, 2}); }, {{3, 4}}}},
        {"layer_norm", {[](const Inputs& x) { return nn::functional::layer_norm(x[0], {3}, x[1], x[2]); }, {{2, 3}, {3}, {3}}}},
        {"cross_entropy", {[](const Inputs& x) { return nn::functional::cross_entropy(x[0], IdArray{2, 0}); }, {{2, 3}}}},
        {"dropout", {[](const Inputs& x) { return dropout(x[0], 0.5f); }, {{2, 3}}}},
        {"clone", {[](const Inputs& x) { return x[0].clone(); }, {{2, 3}}}},
        {"contiguous", {[](const Inputs& x) { return x[0].t().contiguous(); }, {{2, 3}}}},
    };
    return cases;
}

// {"input 0": raises?, ..., "output": raises?} as saved_cases.run asks it; null where the write is refused
nlohmann::json ask(const SavedCase& c)
{
    nlohmann::json answers = nlohmann::json::object();
    Generator rng(7);
    for (std::size_t which = 0; which <= c.shapes.size(); ++which) {   // each input, then the output
        const std::string key = which < c.shapes.size() ? "input " + std::to_string(which) : "output";
        manual_seed(0);
        Inputs x;
        for (const Shape& shape : c.shapes) {
            Array a(shape);
            if (c.positive) rng.uniform_(a, 0.5f, 2.0f); else rng.normal_(a);
            x.push_back(Tensor(std::move(a), true));
        }
        const Tensor out = c.fn(x);
        const Tensor loss = sum(out * randn(out.shape()));   // mul saves only the weights for out's gradient
        try {
            NoGradGuard no_grad;
            (which < c.shapes.size() ? x[which] : out).add_(0.25f);
        } catch (const Error&) {   // an expanded output cannot be written
            answers[key] = nullptr;
            continue;
        }
        try {
            loss.backward();
            answers[key] = false;
        } catch (const Error& e) {
            INFO(e.what());
            CHECK(std::string(e.what()).find("modified by an inplace operation") != std::string::npos);
            answers[key] = true;
        }
    }
    return answers;
}

}  // namespace

TEST_CASE("each op's backward refuses exactly the inputs and outputs torch's saves, when written in place after the forward")
{
    const nlohmann::json& expected = xgrad::testing::reference("saved_reference.json")["ops"];
    CHECK(expected.size() == saved_cases().size());
    for (const auto& [name, answers] : expected.items()) {
        INFO(name);
        REQUIRE(saved_cases().count(name) == 1);
        CHECK(ask(saved_cases().at(name)) == answers);
    }
}
