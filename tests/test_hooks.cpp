// core/hooks.cpp: register_hook, register_post_accumulate_grad_hook and retain_grad, as torch.Tensor's.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "close.h"
#include "xgrad.h"

using namespace xgrad;
using Catch::Matchers::Contains;
using xgrad::testing::check_close;

namespace {

bool bitwise_equal(const Tensor& a, const Tensor& b)
{
    return a.shape() == b.shape() && a.to_array() == b.to_array();
}

}  // namespace

TEST_CASE("a hook that doubles a gradient doubles it, on a non-leaf and on a leaf", "[hooks]")
{
    Tensor x = tensor({1.0f, -2.0f, 3.0f}).requires_grad_();
    Tensor y = x * x;
    y.register_hook([](const Tensor& g) { return g * 2.0f; });
    sum(y).backward();
    check_close(x.grad(), {4.0f, -8.0f, 12.0f});   // 2 * d(x^2) = 4x

    Tensor w = tensor({1.0f, 2.0f}).requires_grad_();
    w.register_hook([](const Tensor& g) { return g * 2.0f; });
    sum(w * w).backward();
    check_close(w.grad(), {4.0f, 8.0f});
}

TEST_CASE("retain_grad keeps a non-leaf's gradient, after its hooks, summed over backward calls", "[hooks]")
{
    Tensor x = tensor({1.0f, -2.0f, 3.0f}).requires_grad_();
    Tensor y = x * x;
    Tensor z = y * 3.0f;
    CHECK_FALSE(y.retains_grad());
    sum(z).backward(Tensor(), /*retain_graph=*/true);
    CHECK_FALSE(y.grad().defined());                   // a non-leaf's gradient is transient
    y.retain_grad();
    CHECK(y.retains_grad());
    y.register_hook([](const Tensor& g) { return g * 2.0f; });   // registered after: still seen by retain_grad
    sum(z).backward(Tensor(), true);
    check_close(y.grad(), {6.0f, 6.0f, 6.0f});         // 3, doubled by the hook
    check_close(x.grad(), {18.0f, -36.0f, 54.0f});      // 6x from the first call, then 12x (the hook's 2)
    sum(z).backward(Tensor(), true);
    check_close(y.grad(), {12.0f, 12.0f, 12.0f});      // accumulated, as a leaf's
    y.zero_grad(false);
    check_close(y.grad(), {0.0f, 0.0f, 0.0f});
    y.set_grad(Tensor());
    CHECK_FALSE(y.grad().defined());
    x.retain_grad();                                    // a leaf: nothing changes
    CHECK_FALSE(x.retains_grad());
    CHECK_THROWS_WITH(tensor({1.0f}).retain_grad(), Contains("does not require grad"));
}

TEST_CASE("a hook that returns nothing changes nothing, bit for bit", "[hooks]")
{
    auto run = [](bool hooked) {
        manual_seed(3);
        Tensor w = randn({8, 5}).requires_grad_();
        Tensor b = randn({5}).requires_grad_();
        Tensor x = randn({4, 8});
        int calls = 0;
        if (hooked) {
            w.register_hook([&calls](const Tensor&) { ++calls; });
            b.register_post_accumulate_grad_hook([&calls](const Tensor&) { ++calls; });
        }
        for (int step = 0; step < 2; ++step) {   // the second backward accumulates onto the first
            Tensor h = tanh(matmul(x, w) + b);
            if (hooked) h.register_hook([&calls](const Tensor&) { ++calls; });
            sum(h * h + h).backward();
        }
        if (hooked) CHECK(calls == 6);
        return std::pair{w.grad(), b.grad()};
    };
    auto [w0, b0] = run(false);
    auto [w1, b1] = run(true);
    CHECK(bitwise_equal(w0, w1));
    CHECK(bitwise_equal(b0, b1));
}

TEST_CASE("a sparse embedding gradient stays row-sparse through a hook that returns nothing", "[hooks]")
{
    nn::Embedding emb(10, 4, nn::EmbeddingOptions().sparse(true));
    int calls = 0;
    emb.weight.register_hook([&calls](const Tensor& g) {
        ++calls;
        CHECK(g.shape() == Shape{10, 4});   // hooks see a dense tensor
    });
    sum(emb.forward(IdArray{{1, 3, 3}})).backward();
    CHECK(calls == 1);
    REQUIRE(emb.weight.sparse_grad() != nullptr);
    CHECK(emb.weight.sparse_grad()->rows == std::vector<std::int64_t>{1, 3});
    CHECK(!emb.weight.grad().defined());
}

TEST_CASE("a leaf's hook sees the sum of this backward's contributions, once, then grad() accumulates", "[hooks]")
{
    Tensor x = tensor({1.0f, 1.0f}).requires_grad_();
    std::vector<Tensor> seen;
    x.register_hook([&seen](const Tensor& g) { seen.push_back(g.clone()); });   // detach() would share g's memory
    (sum(x * 2.0f) + sum(x * 3.0f)).backward();
    (sum(x * 2.0f) + sum(x * 3.0f)).backward();
    REQUIRE(seen.size() == 2);
    check_close(seen[0], {5.0f, 5.0f});
    check_close(seen[1], {5.0f, 5.0f});   // this call's only, as in PyTorch
    check_close(x.grad(), {10.0f, 10.0f});
}

TEST_CASE("hooks fire once per backward in the documented order", "[hooks]")
{
    Tensor x = tensor({1.0f, 2.0f}).requires_grad_();
    std::vector<std::string> events;
    x.register_post_accumulate_grad_hook([&events](const Tensor& leaf) {
        events.push_back("x post, grad " + std::to_string(leaf.grad().to_array()(0)));
    });
    x.register_hook([&events](const Tensor&) { events.push_back("x grad hook 1"); });
    x.register_hook([&events](const Tensor&) { events.push_back("x grad hook 2"); });
    Tensor y = x * 3.0f;
    y.register_hook([&events](const Tensor&) { events.push_back("y grad hook"); });
    Tensor loss = sum(y);
    loss.backward({}, /*retain_graph=*/true);
    loss.backward();   // hooks survive retain_graph and fire again
    CHECK(events == std::vector<std::string>{"y grad hook", "x grad hook 1", "x grad hook 2", "x post, grad 3.000000",
                                             "y grad hook", "x grad hook 1", "x grad hook 2", "x post, grad 6.000000"});
}

TEST_CASE("post-accumulate hooks fire from the last layer back, each once its gradient is complete", "[hooks]")
{
    manual_seed(0);
    nn::Linear first(4, 4), second(4, 4), third(4, 2);
    std::vector<std::string> ready;
    std::vector<std::pair<std::string, Tensor>> params;
    for (auto* layer : {&first, &second, &third}) {
        for (auto& [name, p] : layer->named_parameters()) params.emplace_back(name, p);
    }
    const char* layer_names[] = {"first", "second", "third"};
    for (std::size_t i = 0; i < params.size(); ++i) {
        std::string label = std::string(layer_names[i / 2]) + "." + params[i].first;
        params[i].second.register_post_accumulate_grad_hook([&ready, label](const Tensor& p) {
            CHECK(p.grad().defined());
            ready.push_back(label);
        });
    }
    Tensor x = randn({3, 4});
    sum(third.forward(tanh(second.forward(tanh(first.forward(x)))))).backward();
    REQUIRE(ready.size() == 6);
    // third's parameters are complete before second's, second's before first's
    auto pos = [&ready](const std::string& s) { return std::find(ready.begin(), ready.end(), s) - ready.begin(); };
    CHECK(std::max(pos("third.weight"), pos("third.bias")) < std::min(pos("second.weight"), pos("second.bias")));
    CHECK(std::max(pos("second.weight"), pos("second.bias")) < std::min(pos("first.weight"), pos("first.bias")));
}

TEST_CASE("a removed hook no longer runs; removing twice, or after the tensor died, is harmless", "[hooks]")
{
    Tensor x = tensor({1.0f}).requires_grad_();
    int doubled = 0, posted = 0;
    HookHandle h = x.register_hook([&doubled](const Tensor& g) {
        ++doubled;
        return g * 2.0f;
    });
    HookHandle p = x.register_post_accumulate_grad_hook([&posted](const Tensor&) { ++posted; });
    sum(x * 1.0f).backward();
    check_close(x.grad(), {2.0f});
    h.remove();
    h.remove();
    p.remove();
    x.zero_grad();
    sum(x * 1.0f).backward();
    check_close(x.grad(), {1.0f});
    CHECK(doubled == 1);
    CHECK(posted == 1);

    HookHandle orphan;
    {
        Tensor t = tensor({1.0f}).requires_grad_();
        orphan = t.register_hook([](const Tensor&) {});
    }
    orphan.remove();
    HookHandle{}.remove();
}

TEST_CASE("hooks refuse what PyTorch refuses, naming it", "[hooks]")
{
    Tensor c = tensor({1.0f});
    CHECK_THROWS_WITH(c.register_hook([](const Tensor&) {}), Contains("does not require grad"));
    Tensor x = tensor({1.0f, 2.0f}).requires_grad_();
    Tensor y = x * 2.0f;
    CHECK_THROWS_WITH(y.register_post_accumulate_grad_hook([](const Tensor&) {}),
                      Contains("only a leaf") && Contains("'mul_scalar'"));
    y.register_hook([](const Tensor&) { return zeros({3}); });
    CHECK_THROWS_WITH(sum(y).backward(), Contains("returned a gradient of shape (3,)") && Contains("expected") &&
                                             Contains("shape (2,)") && Contains("'mul_scalar'"));
}

TEST_CASE("a backward that throws in a hook gives a leaf back its earlier gradient", "[hooks]")
{
    Tensor x = tensor({1.0f, 2.0f}).requires_grad_();
    x.register_hook([](const Tensor&) {});   // sets the earlier gradient aside during each backward
    sum(x * 1.0f).backward();
    Tensor y = x * 2.0f;
    y.register_hook([](const Tensor&) -> Tensor { throw std::runtime_error("hook failed"); });
    CHECK_THROWS_WITH(sum(y).backward(), Contains("hook failed"));
    check_close(x.grad(), {1.0f, 1.0f});
}

TEST_CASE("a module's forward hook sees its inputs and output, may replace the output, and is removable", "[hooks]")
{
    manual_seed(1);
    nn::Linear layer(3, 2);
    Tensor x = randn({4, 3});
    const Tensor plain = layer.forward(x);
    std::vector<std::string> seen;
    HookHandle watch = layer.register_forward_hook([&](const nn::Module& m, const std::vector<Tensor>& in, const Tensor& out) {
        CHECK(&m == &layer);
        REQUIRE(in.size() == 1);
        CHECK(in[0].is_same(x));
        seen.push_back(shape_str(out.shape()));
    });
    CHECK(bitwise_equal(layer.forward(x), plain));   // returning nothing changes nothing
    HookHandle twice = layer.register_forward_hook(
        [](const nn::Module&, const std::vector<Tensor>&, const Tensor& out) { return out * 2.0f; });
    check_close(layer.forward(x).to_array(), (plain * 2.0f).to_array());
    watch.remove();
    twice.remove();
    CHECK(bitwise_equal(layer.forward(x), plain));
    CHECK(seen == std::vector<std::string>{"(4, 2)", "(4, 2)"});

    // every layer of a block calls its hooks, inner modules before the ones that contain them
    nn::TransformerBlock block(nn::TransformerOptions().n_embd(8).n_head(2));
    std::vector<std::string> order;
    std::vector<HookHandle> handles;
    for (auto& [name, child] : std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>>{
             {"ln_1", block.ln_1}, {"attn", block.attn}, {"ln_2", block.ln_2}, {"mlp", block.mlp}, {"gelu", block.mlp->gelu}}) {
        handles.push_back(child->register_forward_hook(
            [&order, name](const nn::Module&, const std::vector<Tensor>&, const Tensor&) { order.push_back(name); }));
    }
    handles.push_back(block.register_forward_hook(
        [&order](const nn::Module&, const std::vector<Tensor>&, const Tensor&) { order.push_back("block"); }));
    block.forward(randn({1, 3, 8}));
    CHECK(order == std::vector<std::string>{"ln_1", "attn", "ln_2", "gelu", "mlp", "block"});
}
