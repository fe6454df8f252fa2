// One catalogue of {op, input shapes, input domain} drives the finite-difference check over every op.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <set>

#include "core/autograd.h"
#include "close.h"
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
        {"add, sub, mul, div, neg, rsub and rdiv as functions", [](In x) {
             return div(add(x[0], neg(x[1])), rsub(3.0f, rdiv(1.0f, x[1]))) * sub(x[0], mul(x[0], x[1]));
         }, {{2, 3}, {3}}, Domain::positive},
        // with a scalar
        {"add scalar", [](In x) { return x[0] + 1.5f; }, {{2, 3}}},
        {"mul scalar", [](In x) { return -2.5f * x[0]; }, {{2, 3}}},
        {"rsub scalar", [](In x) { return 1.0f - x[0]; }, {{2, 3}}},
        {"rdiv scalar", [](In x) { return 3.0f / x[0]; }, {{2, 3}}, Domain::positive},
        {"div by scalar", [](In x) { return x[0] / 4.0f; }, {{2, 3}}},
        {"pow 3", [](In x) { return pow(x[0], 3.0f); }, {{2, 3}}},
        {"pow -1.5", [](In x) { return pow(x[0], -1.5f); }, {{2, 3}}, Domain::positive},
        {"pow of two tensors, broadcast", [](In x) { return pow(x[0], x[1]); }, {{2, 3}, {3}}, Domain::positive},
        // a in [5.05, 5.2), b in [2.05, 2.2): a // b = 2 throughout, away from the jumps; d/db = -2
        {"remainder of two tensors, broadcast", [](In x) { return remainder(x[0] * 0.1f + 5.0f, x[1] * 0.1f + 2.0f); },
         {{2, 3}, {3}}, Domain::positive},
        {"pow of two tensors, a negative base", [](In x) { return pow(x[0] - 3.0f, full({}, 3.0f)) + pow(x[0], x[1]); },
         {{2, 3}, {2, 3}}, Domain::positive},
        {"pow_ by a tensor in place", [](In x) {
             Tensor h = x[0] * 1.0f;
             h.pow_(x[1]);
             return h;
         }, {{2, 3}, {3}}, Domain::positive},
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
        {"max and min of everything", [](In x) { return max(x[0]) * min(x[0]); }, {{3, 4}}, Domain::distinct},
        {"var and std_dev", [](In x) { return sum(var(x[0], {1})) * std_dev(x[0], {0, 2}, false, true); }, {{2, 3, 4}}},
        {"softmax", [](In x) { return softmax(x[0]); }, {{3, 5}}},
        {"log_softmax", [](In x) { return log_softmax(x[0]); }, {{2, 3, 4}}},
        {"softmax and log_softmax along a leading dim", [](In x) { return softmax(x[0], 0) * log_softmax(x[0], -2); },
         {{3, 4, 2}}},
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
        {"clamp", [](In x) { return clamp(x[0], -0.55f, 0.65f); }, {{3, 4}}, Domain::distinct},
        {"abs", [](In x) { return abs(x[0]); }, {{3, 4}}, Domain::nonzero},
        {"select", [](In x) { return select(x[0], 1, -1); }, {{2, 3, 4}}},
        {"flip", [](In x) { return flip(x[0], {0, -1}); }, {{2, 3, 4}}},
        {"roll", [](In x) { return roll(x[0], {1, -4}, {2, 0}); }, {{2, 3, 4}}},
        {"roll flattened", [](In x) { return roll(x[0], {5}); }, {{2, 3, 4}}},
        {"repeat", [](In x) { return repeat(x[0], {2, 1, 3}); }, {{3, 2}}},
        // two ramps 0.05 apart: each input wins somewhere, and no pair comes near a tie (the kink)
        {"maximum", [](In x) { return maximum(x[0], x[1] + 0.05f); }, {{3, 4}, {4}}, Domain::distinct},
        {"minimum", [](In x) { return minimum(x[0], x[1] + 0.05f); }, {{2, 1, 3}, {4, 1}}, Domain::distinct},
        {"gather", [](In x) { return gather(x[0], 1, from_vector<std::int64_t>({0, 2, 2, 1, 0, 0}, {2, 3})); }, {{2, 4}}},
        {"stack axis 1", [](In x) { return stack({x[0], x[1] * 2.0f}, 1); }, {{2, 3}, {2, 3}}},
        {"tril", [](In x) { return tril(x[0], 1); }, {{3, 4}}},
        {"triu", [](In x) { return triu(x[0]); }, {{2, 3, 3}}},
        {"where", [](In x) {
             const Tensor keep = from_vector<bool>({true, false, true, false, false, true}, {2, 3});
             return xgrad::where(keep, x[0], x[1]);
         }, {{2, 3}, {3}}},
        {"topk values", [](In x) { return topk(x[0], 2).first; }, {{3, 5}}, Domain::distinct},
        {"comparison masks (eq, ne, lt, le, gt, ge) in where and masked_fill", [](In x) {
             const Tensor c = full({}, 0.35f);   // off the distinct domain's grid: no element ties it
             const Tensor a = xgrad::where(gt(x[0], c), x[0] * 2.0f, x[0]) + xgrad::where(lt(x[0], c), x[0], -x[0]);
             const Tensor b = masked_fill(x[0], ge(x[0], c), 0.5) * masked_fill(x[0], le(x[0], c), -0.5);
             return a * b + masked_fill(x[0], eq(x[0], x[0]), 1.0) + masked_fill(x[0], ne(x[0], x[0]), 1.0);
         }, {{3, 4}}, Domain::distinct},
        // views: each shares its input's storage; the backward takes the gradient back to its shape
        {"view of a transpose (a copying reshape)", [](In x) { return transpose(x[0], 0, 1).reshape({-1}); }, {{3, 4}}},
        {"t and mT", [](In x) { return x[0].t() * 2.0f + x[1].mT(); }, {{3, 4}, {3, 4}}},
        {"expand", [](In x) { return x[0].expand({2, -1, 4}) * x[1]; }, {{3, 1}, {2, 3, 4}}},
        {"unsqueeze and squeeze", [](In x) { return x[0].unsqueeze(1).unsqueeze(-1).squeeze(-1).squeeze(); }, {{3, 4}}},
        {"flatten and unflatten", [](In x) { return x[0].flatten(1).unflatten(0, {1, 2}); }, {{2, 3, 4}}},
        {"narrow", [](In x) { return x[0].narrow(1, 1, 2); }, {{3, 4}}},
        {"slice with a step", [](In x) {
             return x[0].slice(1, 1, std::nullopt, 2).slice(0, 1) * x[0].slice(0, 0, 3, 2).slice(1, 0, 2);
         }, {{3, 4}}},
        {"split_with_sizes", [](In x) { return x[0].split_with_sizes({1, 3}, 1)[1]; }, {{2, 4}}},
        {"chunk", [](In x) { return x[0].chunk(2, 0)[1] * 3.0f; }, {{4, 3}}},
        {"unbind", [](In x) {
             auto rows = x[0].unbind(0);
             return rows[0] * rows[2] + rows[1];
         }, {{3, 4}}},
        {"diagonal", [](In x) { return sum(x[0].diagonal(1)) * x[0].diagonal(-1, 1, 2); }, {{2, 3, 4}}},
        {"as_strided (overlapping windows)", [](In x) { return x[0].as_strided({3, 4}, {2, 1}); }, {{10}}},
        {"index and index_put_ (Slice, None, Ellipsis)", [](In x) {
             using namespace indexing;
             Tensor h = x[0] * 1.0f;
             h.index_put_({Slice(1), 0}, x[1]);
             return h.index({Ellipsis, Slice(None, 3, 2), None}) * 2.0f;
         }, {{3, 4}, {1}}},
        {"alias, contiguous and clone", [](In x) { return x[0].alias() + x[0].t().contiguous().t() + x[0].t().clone().t(); },
         {{3, 4}}},
        // in place, in a graph: rebased onto the op, or through a view (copy_slices)
        {"in place on an op's output", [](In x) {
             Tensor h = x[0] * 2.0f;
             h.add_(x[1]).mul_(x[1]).tanh_();
             return h;
         }, {{2, 3}, {3}}},
        {"in place through a view", [](In x) {
             Tensor h = x[0] * 1.0f;
             h.narrow(1, 1, 2).mul_(x[1]);
             h.select(0, 0).sub_(sum(x[1]));
             return exp(h);
         }, {{3, 4}, {2}}},
        {"copy_ into a transposed view", [](In x) {
             Tensor h = zeros({3, 2}, x[0].dtype());
             h.t().copy_(x[0]);
             return h * x[1];
         }, {{2, 3}, {3, 1}}},
        {"index_put_ and masked_fill_ in place", [](In x) {
             Tensor h = x[0] + 0.0f;
             index_put_(h, {0, 5}, {2}, x[1] * x[1]);
             h.masked_fill_(from_vector({0, 1, 0}, {3}), 0.5f);
             return h;
         }, {{2, 3}, {1}}},
        {"fill_, zero_, normal_ and uniform_ cut the gradient of what they overwrite", [](In x) {
             Tensor h = x[0] * 3.0f;
             h.select(0, 0).fill_(2.0f);
             h.select(1, 1).zero_();
             manual_seed(5);
             h.select(1, 2).normal_();
             h.select(1, 0).narrow(0, 1, 1).uniform_();
             return h * x[0];
         }, {{2, 3}}},
        {"neg_, sub_, add_, exp_, log_ and sqrt_ in place", [](In x) {
             Tensor h = x[0] + 1.0f;
             h.neg_().sub_(x[0] * x[0], 0.5f).add_(x[0]).exp_();   // exp_ saves h: it comes last
             Tensor r = x[0] + 2.0f;
             r.log_().sqrt_();   // log_ reads a copy of r as it was, sqrt_ the r it leaves
             return h * r;
         }, {{2, 3}}, Domain::positive},
        {"pow_, clamp_, relu_, sigmoid_ and div_ in place", [](In x) {
             Tensor h = x[0] * 1.0f;
             h.pow_(2.0f).div_(x[1]).sigmoid_();
             Tensor r = x[0] - 0.1f;
             r.clamp_(std::nullopt, 1.5f).relu_();   // relu_ saves r: it comes last
             return h + r;
         }, {{2, 3}, {3}}, Domain::positive},
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
        {"take and index_put", [](In x) {
             return take(index_put(x[0], {1, 4}, {2}, x[1]), {0, 4, 4, 5}, {2, 2});
         }, {{2, 3}, {1}}},
        // attention
        {"scaled_dot_product_attention, causal", [](In x) {
             return scaled_dot_product_attention(x[0], x[1], x[2], AttentionOptions().is_causal(true));
         }, {{2, 3, 4}, {2, 3, 4}, {2, 3, 2}}},
        {"packed_qkv_attention", [](In x) { return packed_qkv_attention(x[0], 2); }, {{2, 3, 12}}},
        // compositions: a value used twice, a small network
        {"x * x + x", [](In x) { return x[0] * x[0] + x[0]; }, {{2, 3}}},
        {"mlp", [](In x) { return log_softmax(matmul(gelu(matmul(x[0], x[1]) + x[2]), x[3])); },
         {{4, 3}, {3, 5}, {5}, {5, 2}}},
    };
    return cases;
}

// An input given to an op as a non-contiguous view of the leaf that gradcheck perturbs
enum class Strided { transposed, stepped, expanded };

const char* name_of(Strided s)
{
    return s == Strided::transposed ? "transposed" : s == Strided::stepped ? "sliced with a step" : "expanded";
}

// The leaf's shape, and the view of it that has `shape`
std::pair<Shape, std::function<Tensor(const Tensor&)>> strided(const Shape& shape, Strided how)
{
    const auto big = std::find_if(shape.begin(), shape.end(), [](std::size_t d) { return d > 1; });
    if (how == Strided::transposed && shape.size() >= 2) {
        Shape leaf = shape;
        std::swap(leaf[leaf.size() - 2], leaf[leaf.size() - 1]);
        return {leaf, [](const Tensor& x) { return x.transpose(-2, -1); }};
    }
    if (how == Strided::expanded && big != shape.end()) {
        Shape leaf = shape;
        leaf[static_cast<std::size_t>(big - shape.begin())] = 1;
        return {leaf, [shape](const Tensor& x) { return x.expand({shape.begin(), shape.end()}); }};
    }
    if (shape.empty()) return {Shape{3}, [](const Tensor& x) { return x.select(0, 1); }};   // 0-D: inside a bigger one
    Shape leaf = shape;
    leaf.back() *= 2;
    return {leaf, [](const Tensor& x) { return x.slice(-1, 1, std::nullopt, 2); }};
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

TEST_CASE("in float64, every op of the catalogue passes gradcheck with tolerances of 1e-6")
{
    Generator rng(44);
    for (const Case& c : catalogue()) {
        std::vector<Tensor> inputs;
        for (const auto& shape : c.shapes) inputs.push_back(make_input(shape, c.domain, rng));
        INFO(c.name);
        auto result = xgrad::testing::gradcheck64(c.fn, inputs);
        INFO(result.report);
        CHECK(result.ok);
    }
}

TEST_CASE("every op of the catalogue given non-contiguous views (transposed, stepped, expanded) passes gradcheck, and "
          "gives what it gives their contiguous copies")
{
    Generator rng(43);
    for (const Case& c : catalogue()) {
        for (Strided how : {Strided::transposed, Strided::stepped, Strided::expanded}) {
            if (how == Strided::expanded && c.domain == Domain::distinct) continue;   // repeated values: ties
            std::vector<Shape> leaves;
            std::vector<std::function<Tensor(const Tensor&)>> views;
            for (const auto& shape : c.shapes) {
                auto [leaf, view] = strided(shape, how);
                leaves.push_back(leaf);
                views.push_back(view);
            }
            auto through_views = [&c, views](In x) {
                std::vector<Tensor> v;
                for (std::size_t i = 0; i < x.size(); ++i) v.push_back(views[i](x[i]));
                return c.fn(v);
            };
            std::vector<Tensor> inputs;
            for (const auto& shape : leaves) inputs.push_back(make_input(shape, c.domain, rng));
            INFO(c.name << ", inputs " << name_of(how));
            // a view refuses strides it cannot follow, and as_strided reads the storage, whatever the input's layout
            const std::string name = c.name;
            if (name.starts_with("as_strided") || (name == "view" && how != Strided::stepped)) continue;
            // the same values as from contiguous copies of the views
            std::vector<Tensor> copies;
            bool strided_input = false;
            for (std::size_t i = 0; i < inputs.size(); ++i) {
                const Tensor v = views[i](inputs[i]);
                strided_input = strided_input || !v.is_contiguous();
                copies.push_back(Tensor(v.to_array()));
            }
            if (how == Strided::stepped) CHECK(strided_input);   // the case reaches the op with a strided view
            xgrad::testing::check_close(through_views(inputs).to_array(), c.fn(copies).to_array(), 1e-5, 1e-5);
            auto result = xgrad::testing::gradcheck(through_views, inputs);
            INFO(result.report);
            CHECK(result.ok);
        }
    }
}

TEST_CASE("every op of core/ops.h and every view and in-place method of Tensor is in the catalogue")
{
    const auto read = [](const std::string& path) {
        std::ifstream in(std::string(XGRAD_SOURCE_DIR) + "/" + path);
        REQUIRE(in);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    const std::string ops = read("core/ops.h"), tensor = read("core/tensor.h"), here = read("tests/test_gradcheck_catalogue.cpp");
    const std::string catalogue_text = here.substr(0, here.find("}  // namespace"));
    std::set<std::string> names;
    const std::regex op(R"(\n(?:Tensor|std::pair<Tensor, IdArray>) (\w+)\()"), method(R"(\n    (?:Tensor|std::vector<Tensor>|const Tensor&) (\w+)\(.*\) const;)");
    for (auto it = std::sregex_iterator(ops.begin(), ops.end(), op); it != std::sregex_iterator(); ++it) names.insert((*it)[1]);
    const std::string views = tensor.substr(tensor.find("// ---- views"), tensor.find("void set_data") - tensor.find("// ---- views"));
    for (auto it = std::sregex_iterator(views.begin(), views.end(), method); it != std::sregex_iterator(); ++it) names.insert((*it)[1]);
    CHECK(names.size() > 60);
    // what has no gradient by definition is the aliasing table's (tests/python/test_aliasing.py)
    // and so has what gives integers or bools (tests/test_nograd.cpp, against torch's table)
    for (const char* no_gradient : {"detach", "variable_data", "number_tensor", "argmax", "argmin", "multinomial",
                                    "causal_mask", "floor_divide", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
                                    "logical_and", "logical_or", "logical_xor", "logical_not"}) {
        names.erase(no_gradient);
    }
    for (const std::string& name : names) {
        INFO(name);
        CHECK(catalogue_text.find(name + "(") != std::string::npos);
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
