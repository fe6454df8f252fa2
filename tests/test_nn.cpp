// nn::Module, Linear, LayerNorm and cross_entropy: registration, PyTorch reference values, gradients.
#include <catch2/catch.hpp>

#include <sstream>

#include "close.h"
#include "gradcheck.h"
#include "reference.h"

using namespace xgrad;
using namespace xgrad::testing;
using Catch::Matchers::Contains;

namespace {

struct TinyLM : nn::Module {
    std::shared_ptr<nn::Embedding> tok_emb = register_module("tok_emb", std::make_shared<nn::Embedding>(65, 8));
    std::shared_ptr<nn::Embedding> pos_emb = register_module("pos_emb", std::make_shared<nn::Embedding>(16, 8));
    std::shared_ptr<nn::LayerNorm> ln = register_module("ln", std::make_shared<nn::LayerNorm>(8));
    std::shared_ptr<nn::Linear> lm_head = register_module("lm_head", std::make_shared<nn::Linear>(8, 65));
    std::string describe() const override { return "TinyLM"; }
};

}  // namespace

TEST_CASE("named_parameters recurse in registration order with dotted names")
{
    TinyLM model;
    std::vector<std::string> names;
    for (const auto& [name, p] : model.named_parameters()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"tok_emb.weight", "pos_emb.weight", "ln.weight", "ln.bias",
                                            "lm_head.weight", "lm_head.bias"});
    CHECK(model.parameters().size() == 6);
    CHECK(model.num_parameters() == 65 * 8 + 16 * 8 + 8 + 8 + 8 * 65 + 65);
    CHECK(model.tok_emb->name() == "tok_emb");
    CHECK(model.parameters()[0].is_same(model.tok_emb->weight));
}

TEST_CASE("zero_grad, train and eval reach every submodule")
{
    TinyLM model;
    IdArray ids = {{1, 2, 3}};
    sum(model.lm_head->forward(model.tok_emb->forward(ids))).backward();
    CHECK(model.tok_emb->weight.grad().defined());
    model.zero_grad();
    for (const auto& p : model.parameters()) CHECK_FALSE(p.grad().defined());
    model.eval();
    CHECK_FALSE(model.lm_head->is_training());
    model.train();
    CHECK(model.ln->is_training());
}

TEST_CASE("the summary prints each module with its parameter count")
{
    TinyLM model;
    std::ostringstream out;
    out << model;
    CHECK_THAT(out.str(), Contains("(tok_emb): Embedding(65, 8)") && Contains("520") &&
                              Contains("(lm_head): Linear(in_features=8, out_features=65, bias=true)") &&
                              Contains("total parameters: 1,249"));
}

TEST_CASE("registering a name twice, or a bad name, is an error")
{
    struct Bad : nn::Module {
        void twice() { register_parameter("w", zeros({1})); register_parameter("w", zeros({1})); }
        void dotted() { register_parameter("a.b", zeros({1})); }
    } bad;
    CHECK_THROWS_WITH(bad.twice(), Contains("a parameter named 'w' is already registered"));
    CHECK_THROWS_WITH(bad.dotted(), Contains("invalid name 'a.b'"));
}

TEST_CASE("Linear has PyTorch's init bounds and matches PyTorch's values and gradients")
{
    manual_seed(3);
    nn::Linear big(100, 50);
    const float bound = 1.0f / std::sqrt(100.0f);
    const float largest_weight = xt::amax(xt::abs(big.weight.to_array()))();
    const float largest_bias = xt::amax(xt::abs(big.bias.to_array()))();
    CHECK(largest_weight <= bound);
    CHECK(largest_weight > 0.9f * bound);
    CHECK(largest_bias <= bound);

    const auto& c = reference("nn_reference.json")["linear"];
    nn::Linear lin(4, 5);
    assign(lin.weight, ref_array(c["weight"], {5, 4}));
    assign(lin.bias, ref_array(c["bias"], {5}));
    Tensor x(ref_array(c["x"], {2, 3, 4}), true);
    Tensor y = lin.forward(x);
    check_close(y.to_array(), ref_array(c["out"], {2, 3, 5}));
    y.backward(Tensor(ref_array(c["upstream"], {2, 3, 5})));
    check_close(x.grad().to_array(), ref_array(c["grad_x"], {2, 3, 4}));
    check_close(lin.weight.grad().to_array(), ref_array(c["grad_weight"], {5, 4}));
    check_close(lin.bias.grad().to_array(), ref_array(c["grad_bias"], {5}));

    CHECK_THROWS_WITH(lin.forward(zeros({2, 3})), Contains("nn::Linear: expected input with last dimension 4 (in_features), got shape (2, 3)"));
    CHECK(nn::Linear(3, 2, false).named_parameters().size() == 1);
}

TEST_CASE("LayerNorm matches PyTorch's values and gradients")
{
    const auto& c = reference("nn_reference.json")["layernorm"];
    nn::LayerNorm ln(4);
    assign(ln.weight, ref_array(c["weight"], {4}));
    assign(ln.bias, ref_array(c["bias"], {4}));
    Tensor x(ref_array(c["x"], {2, 3, 4}), true);
    Tensor y = ln.forward(x);
    check_close(y.to_array(), ref_array(c["out"], {2, 3, 4}));
    y.backward(Tensor(ref_array(c["upstream"], {2, 3, 4})));
    check_close(x.grad().to_array(), ref_array(c["grad_x"], {2, 3, 4}), 1e-4f);
    check_close(ln.weight.grad().to_array(), ref_array(c["grad_weight"], {4}));
    check_close(ln.bias.grad().to_array(), ref_array(c["grad_bias"], {4}));
    CHECK_THROWS_WITH(ln.forward(zeros({2, 5})), Contains("nn::LayerNorm: expected input with last dimension 4"));
}

TEST_CASE("cross_entropy matches PyTorch with ignore_index, label_smoothing, class weights and each reduction")
{
    for (const char* name : {"cross_entropy_2d", "cross_entropy_3d_ignore", "cross_entropy_smoothing",
                             "cross_entropy_custom_ignore_smoothing", "cross_entropy_weight",
                             "cross_entropy_weight_smoothing", "cross_entropy_sum", "cross_entropy_none"}) {
        INFO(name);
        const auto& c = reference("nn_reference.json")[name];
        Shape shape = c["shape"].get<Shape>();
        Shape target_shape(shape.begin(), shape.end() - 1);
        const auto& o = c["options"];
        nn::functional::CrossEntropyOptions options;
        if (o.contains("ignore_index")) options.ignore_index(o["ignore_index"].get<std::int64_t>());
        if (o.contains("label_smoothing")) options.label_smoothing(o["label_smoothing"].get<float>());
        if (o.contains("weight")) options.weight(Tensor(ref_array(o["weight"], {shape.back()})));
        if (o.contains("reduction")) options.reduction(o["reduction"].get<std::string>());
        const bool per_target = options.reduction_ == "none";
        Tensor logits(ref_array(c["logits"], shape), true);
        Tensor loss = nn::functional::cross_entropy(logits, ref_ids(c["targets"], target_shape), options);
        check_close(loss.to_array(), ref_array(c["loss"], per_target ? target_shape : Shape{}), 1e-5f);
        loss.backward(Tensor(ref_array(c["upstream"], per_target ? target_shape : Shape{})));
        check_close(logits.grad().to_array(), ref_array(c["grad_logits"], shape));
    }
}

TEST_CASE("sin and cos match PyTorch's values and gradients")
{
    const auto& c = reference("nn_reference.json")["sin_cos"];
    Tensor x(ref_array(c["x"], {2, 5}), true);
    const Tensor up(ref_array(c["upstream"], {2, 5}));
    for (const char* op : {"sin", "cos"}) {
        INFO(op);
        x.zero_grad();
        Tensor y = std::string(op) == "sin" ? sin(x) : cos(x);
        check_close(y.to_array(), ref_array(c[op], {2, 5}));
        y.backward(up);
        check_close(x.grad().to_array(), ref_array(c[std::string("grad_") + op], {2, 5}));
    }
}

TEST_CASE("cross_entropy is stable for huge logits and explains bad targets")
{
    Tensor logits = tensor({{1000.0f, 0.0f, -1000.0f}});
    CHECK(nn::functional::cross_entropy(logits, IdArray{0}).item() == Approx(0.0f).margin(1e-6));
    CHECK(nn::functional::cross_entropy(logits, IdArray{2}).item() == Approx(2000.0f));
    // equal huge logits: log 3 (x - max first; 1e20 - (1e20 + log 3) would be 0), with smoothing too
    const Tensor huge = tensor({{1e20f, 1e20f, 1e20f}});
    CHECK(nn::functional::cross_entropy(huge, IdArray{2}).item() == Approx(std::log(3.0f)));
    CHECK(nn::functional::cross_entropy(huge, IdArray{2}, nn::functional::CrossEntropyOptions().label_smoothing(0.3f)).item() ==
          Approx(std::log(3.0f)));
    CHECK_THROWS_WITH(nn::functional::cross_entropy(zeros({2, 3, 5}), xt::zeros<std::int64_t>({2, 4})),
                      Contains("targets of shape (2, 4) do not match logits (2, 3, 5)"));
    IdArray targets = {{0, 1, 7}};
    CHECK_THROWS_WITH(nn::functional::cross_entropy(zeros({1, 3, 5}), targets),
                      Contains("target 7 at position (0, 2) is out of range for 5 classes"));
    CHECK(std::isnan(nn::functional::cross_entropy(zeros({2, 5}), IdArray{-100, -100}).item()));
    using nn::functional::CrossEntropyOptions;
    CHECK_THROWS_WITH(nn::functional::cross_entropy(zeros({2, 5}), IdArray{0, 1}, CrossEntropyOptions().reduction("avg")),
                      Contains("cross_entropy: reduction must be \"mean\", \"sum\" or \"none\", got \"avg\""));
    CHECK_THROWS_WITH(nn::functional::cross_entropy(zeros({2, 5}), IdArray{0, 1}, CrossEntropyOptions().weight(ones({4}))),
                      Contains("cross_entropy: weight must hold one value per class, shape (5,), got (4,)"));
    CHECK_THROWS_WITH(nn::functional::cross_entropy(zeros({2, 5}), IdArray{0, 1},
                                                    CrossEntropyOptions().weight(Tensor(xt::ones<float>({5}), true))),
                      Contains("cross_entropy: weight requires grad"));
}

TEST_CASE("Linear, LayerNorm and cross_entropy pass the finite-difference check")
{
    Generator rng(5);
    auto input = [&](Shape s) {
        Array a(s);
        rng.normal_(a);
        return Tensor(a);
    };
    IdArray targets = {{1, -100, 4}, {0, 2, 2}};
    using In = const std::vector<Tensor>&;
    struct Case {
        const char* name;
        xgrad::testing::Fn fn;
        std::vector<Tensor> inputs;
    };
    std::vector<Case> cases = {
        {"linear", [](In x) { return linear(x[0], x[1], x[2]); }, {input({2, 3, 4}), input({5, 4}), input({5})}},
        {"linear without bias", [](In x) { return linear(x[0], x[1]); }, {input({3, 4}), input({2, 4})}},
        {"layernorm", [](In x) {
             nn::LayerNorm ln(4);
             ln.weight = x[1];
             ln.bias = x[2];
             return ln.forward(x[0]);
         }, {input({2, 3, 4}), input({4}), input({4})}},
        {"layer_norm without weight or bias", [](In x) { return nn::functional::layer_norm(x[0], {5}); }, {input({3, 5})}},
        {"layer_norm over two axes, weight only", [](In x) { return nn::functional::layer_norm(x[0], {2, 3}, x[1]); },
         {input({4, 2, 3}), input({2, 3})}},
        {"cross_entropy with ignore_index", [&](In x) { return nn::functional::cross_entropy(x[0], targets); },
         {input({2, 3, 5})}},
        {"cross_entropy with label_smoothing", [&](In x) {
             return nn::functional::cross_entropy(x[0], targets, nn::functional::CrossEntropyOptions().label_smoothing(0.2f));
         }, {input({2, 3, 5})}},
        {"cross_entropy with class weights, smoothing and reduction none", [&](In x) {
             const Tensor weight = tensor({0.5f, 2.0f, 1.0f, 0.25f, 3.0f});
             return nn::functional::cross_entropy(
                 x[0], targets, nn::functional::CrossEntropyOptions().weight(weight).label_smoothing(0.3f).reduction("none"));
         }, {input({2, 3, 5})}},
    };
    for (auto& c : cases) {
        INFO(c.name);
        auto result = gradcheck(c.fn, c.inputs);
        INFO(result.report);
        CHECK(result.ok);
    }
}

TEST_CASE("the nn reference values say which torch made them and how to make them again")
{
    const auto& generator = reference("nn_reference.json").at("generator");
    CHECK_FALSE(generator["torch"].get<std::string>().empty());   // torch.__version__, e.g. "1.13.0a0"
    CHECK(generator["command"].get<std::string>() == "cd tests/reference && /usr/bin/python3 make_nn_reference.py");
}

TEST_CASE("the fused layer_norm equals its composition from primitive ops, forward and backward")
{
    manual_seed(31);
    for (const Shape& shape : {Shape{3, 7}, Shape{2, 5, 128}, Shape{1, 1}, Shape{300, 96}}) {
        INFO(shape_str(shape));
        const std::size_t C = shape.back();
        Tensor x = randn(shape, true), w = randn({C}, true), b = randn({C}, true);
        const Tensor up = randn(shape);
        Tensor fused = nn::functional::layer_norm(x, {C}, w, b, 1e-5f);
        fused.backward(up);
        const Array fused_grads[] = {x.grad().to_array(), w.grad().to_array(), b.grad().to_array()};
        x.zero_grad(), w.zero_grad(), b.zero_grad();
        Tensor centered = x - mean(x, {-1}, true);                    // the composition it replaced
        Tensor composed = centered / sqrt(mean(centered * centered, {-1}, true) + 1e-5f) * w + b;
        composed.backward(up);
        check_close(fused.to_array(), composed.to_array(), 1e-5, 1e-5);
        check_close(fused_grads[0], x.grad().to_array(), 1e-4, 1e-4);
        check_close(fused_grads[1], w.grad().to_array(), 1e-4, 1e-4);
        check_close(fused_grads[2], b.grad().to_array(), 1e-5, 1e-5);
    }
}

TEST_CASE("nn::functional::embedding and layer_norm compute what the modules do, and check what they are given")
{
    manual_seed(8);
    nn::Embedding emb(4, 3, nn::EmbeddingOptions().padding_idx(1).scale_grad_by_freq(true));
    const IdArray ids = {{0, 1, 3}, {3, 3, 2}};
    const Tensor up = randn({2, 3, 3});
    Tensor by_module = emb.forward(ids);
    by_module.backward(up);
    const Array module_grad = emb.weight.grad().to_array();
    emb.zero_grad();
    Tensor by_function =
        nn::functional::embedding(ids, emb.weight, nn::EmbeddingOptions().padding_idx(-3).scale_grad_by_freq(true));
    by_function.backward(up);
    check_close(by_function.to_array(), by_module.to_array());
    check_close(emb.weight.grad().to_array(), module_grad);
    CHECK_THROWS_WITH(nn::functional::embedding(IdArray{0, 5}, emb.weight),
                      Contains("embedding: id 5 at position (1,) is out of range for num_embeddings = 4 (valid ids are 0 to 3)"));
    CHECK_THROWS_WITH(nn::functional::embedding(IdArray{0}, ones({4})),
                      Contains("embedding: expected a 2-D weight (num_embeddings, embedding_dim), got (4,)"));

    nn::LayerNorm ln(4);
    assign(ln.weight, Array{1.0f, 2.0f, 3.0f, 4.0f});
    const Tensor x = randn({2, 4});
    check_close(nn::functional::layer_norm(x, {4}, ln.weight, ln.bias).to_array(), ln.forward(x).to_array());
    // over the last two axes: the mean and variance of each (3, 4) block
    const Tensor x3 = randn({2, 3, 4});
    const Tensor y3 = nn::functional::layer_norm(x3, {3, 4});
    for (std::size_t b = 0; b < 2; ++b) {
        double total = 0, squares = 0;
        for (std::size_t i = 0; i < 12; ++i) total += y3.data_ptr()[b * 12 + i];
        for (std::size_t i = 0; i < 12; ++i) squares += std::pow(y3.data_ptr()[b * 12 + i] - total / 12, 2);
        CHECK(total / 12 == Approx(0.0).margin(1e-6));
        CHECK(squares / 12 == Approx(1.0).epsilon(1e-3));   // eps = 1e-5 in the denominator
    }
    CHECK_THROWS_WITH(nn::functional::layer_norm(randn({2, 4}), {3}),
                      Contains("layer_norm: normalized_shape (3,) must be the trailing dimensions of the input, got (2, 4)"));
    CHECK_THROWS_WITH(nn::functional::layer_norm(randn({2, 4}), {4}, ones({3})),
                      Contains("layer_norm: expected weight of shape (4,), got (3,)"));
}

TEST_CASE("softplus matches PyTorch, on both sides of the threshold")
{
    const auto& c = reference("nn_reference.json")["softplus"];
    Tensor x = Tensor(ref_array(c["x"], {2, 4})).requires_grad_();
    Tensor y = softplus(x, c["beta"].get<float>(), c["threshold"].get<float>());
    check_close(y.to_array(), ref_array(c["out"], {2, 4}));
    y.backward(Tensor(ref_array(c["upstream"], {2, 4})));
    check_close(x.grad().to_array(), ref_array(c["grad_x"], {2, 4}));
}
