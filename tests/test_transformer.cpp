// nn::MultiheadAttention and nanoGPT's blocks against PyTorch; Dropout, GELU; weight tying.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <xtensor/xview.hpp>

#include "close.h"
#include "gradcheck.h"
#include "reference.h"
#include "train_gpt/model.h"

using namespace xgrad;
using namespace xgrad::testing;
using Catch::Matchers::Contains;

namespace {

// Sets every parameter of `module` from the reference's {"name": values}, which must name them all.
void load_params(const nn::Module& module, const nlohmann::json& params)
{
    std::size_t loaded = 0;
    for (auto& [name, p] : module.named_parameters()) {
        INFO(name);
        REQUIRE(params.contains(name));
        assign(p, ref_array(params[name], p.shape()));
        ++loaded;
    }
    CHECK(loaded == params.size());
}

void check_grads(const nn::Module& module, const nlohmann::json& grads, double margin = 1e-5)
{
    for (auto& [name, p] : module.named_parameters()) {
        INFO(name);
        REQUIRE(p.grad().defined());
        check_close(p.grad().to_array(), ref_array(grads[name], p.shape()), margin, 1e-4);
    }
}

Tensor ref_bools(const nlohmann::json& values, const Shape& shape)
{
    BoolArray a(shape);
    for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = values[i].get<bool>();
    return bool_tensor(a);
}

}  // namespace

TEST_CASE("MultiheadAttention matches PyTorch: masks, weights, gradients, and both layouts")
{
    const auto& c = reference("attention_reference.json")["mha"];
    nn::MultiheadAttention mha(8, 2, nn::MultiheadAttentionOptions().batch_first(true));
    load_params(mha, c["params"]);
    Tensor query = Tensor(ref_array(c["query"], {2, 5, 8})).requires_grad_();
    const Tensor key(ref_array(c["key"], {2, 6, 8})), value(ref_array(c["value"], {2, 6, 8}));
    nn::MultiheadAttentionForward args;
    args.attn_mask = ref_bools(c["attn_mask"], {5, 6});
    args.key_padding_mask = ref_bools(c["key_padding_mask"], {2, 6});
    auto [out, weights] = mha.forward(query, key, value, args);
    check_close(out.to_array(), ref_array(c["out"], {2, 5, 8}), 1e-5, 1e-4);
    check_close(weights.to_array(), ref_array(c["weights"], {2, 5, 6}), 1e-5, 1e-4);
    out.backward(Tensor(ref_array(c["upstream"], {2, 5, 8})));
    check_grads(mha, c["grads"]);
    check_close(query.grad().to_array(), ref_array(c["grad_query"], {2, 5, 8}), 1e-5, 1e-4);

    SECTION("without the weights, the fused kernel gives the same output")
    {
        args.need_weights = false;
        auto [fused, none] = mha.forward(query, key, value, args);
        CHECK_FALSE(none.defined());
        check_close(fused.to_array(), out.to_array(), 1e-5, 1e-4);
    }
    SECTION("sequence first, a float mask, weights per head")
    {
        const auto& s = reference("attention_reference.json")["mha_seq_first"];
        nn::MultiheadAttention seq_first(8, 2);
        load_params(seq_first, c["params"]);
        const Tensor q(ref_array(s["query"], {5, 2, 8}));
        nn::MultiheadAttentionForward a;
        a.attn_mask = Tensor(ref_array(s["float_mask"], {5, 5}));
        a.average_attn_weights = false;
        auto [o, w] = seq_first.forward(q, q, q, a);
        check_close(o.to_array(), ref_array(s["out"], {5, 2, 8}), 1e-5, 1e-4);
        check_close(w.to_array(), ref_array(s["weights"], {2, 2, 5, 5}), 1e-5, 1e-4);
    }
}

TEST_CASE("MultiheadAttention with kdim, vdim, add_bias_kv and add_zero_attn matches PyTorch, masks and gradients")
{
    const auto& c = reference("attention_reference.json")["mha_kdim_bias_kv"];
    nn::MultiheadAttention mha(8, 2, nn::MultiheadAttentionOptions().batch_first(true).kdim(6).vdim(4).add_bias_kv(true)
                                         .add_zero_attn(true));
    std::vector<std::string> names;
    for (auto& [name, p] : mha.named_parameters()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "bias_k",
                                            "bias_v", "out_proj.weight", "out_proj.bias"});
    load_params(mha, c["params"]);
    Tensor query = Tensor(ref_array(c["query"], {2, 5, 8})).requires_grad_();
    Tensor key = Tensor(ref_array(c["key"], {2, 3, 6})).requires_grad_();
    Tensor value = Tensor(ref_array(c["value"], {2, 3, 4})).requires_grad_();
    nn::MultiheadAttentionForward args;
    args.attn_mask = ref_bools(c["attn_mask"], {5, 3});
    args.key_padding_mask = ref_bools(c["key_padding_mask"], {2, 3});
    auto [out, weights] = mha.forward(query, key, value, args);
    check_close(out.to_array(), ref_array(c["out"], {2, 5, 8}), 1e-5, 1e-4);
    check_close(weights.to_array(), ref_array(c["weights"], {2, 5, 5}), 1e-5, 1e-4);   // S + bias_kv + zero_attn keys
    out.backward(Tensor(ref_array(c["upstream"], {2, 5, 8})));
    check_grads(mha, c["grads"]);
    check_close(query.grad().to_array(), ref_array(c["grad_query"], {2, 5, 8}), 1e-5, 1e-4);
    check_close(key.grad().to_array(), ref_array(c["grad_key"], {2, 3, 6}), 1e-5, 1e-4);
    check_close(value.grad().to_array(), ref_array(c["grad_value"], {2, 3, 4}), 1e-5, 1e-4);

    args.need_weights = false;                               // the fused kernel, with the padded masks
    check_close(mha.forward(query, key, value, args).first.to_array(), out.to_array(), 1e-5, 1e-4);
    CHECK_THROWS_WITH(mha.forward(query, value, value, args), Contains("expected key of shape (B, T, 6) (kdim = 6), got (2, 3, 4)"));
    nn::MultiheadAttentionForward causal;
    causal.is_causal = true;
    CHECK_THROWS_WITH(mha.forward(query, key, value, causal), Contains("is_causal without an attn_mask cannot place the keys"));
    CHECK(mha.describe() == "MultiheadAttention(embed_dim=8, num_heads=2, dropout=0, bias=true, batch_first=true, "
                            "add_bias_kv=true, add_zero_attn=true, kdim=6, vdim=4)");
}

TEST_CASE("MultiheadAttention names PyTorch's parameters and checks what it is given")
{
    nn::MultiheadAttention mha(8, 2);
    std::vector<std::string> names;
    for (auto& [name, p] : mha.named_parameters()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"});
    CHECK_THROWS_WITH(nn::MultiheadAttention(10, 3), Contains("nn::MultiheadAttention: embed_dim 10 must be a positive multiple of num_heads 3"));
    const Tensor x = randn({5, 2, 8});
    CHECK_THROWS_WITH(mha.forward(randn({5, 2, 6}), x, x), Contains("expected query of shape (T, B, 8) (embed_dim = 8), got (5, 2, 6)"));
    nn::MultiheadAttentionForward bad;
    bad.attn_mask = ones({4, 5}, kBool);
    CHECK_THROWS_WITH(mha.forward(x, x, x, bad), Contains("attn_mask must be (L, S) = (5, 5) or (B nh, L, S) = (4, 5, 5), got (4, 5)"));
    bad.attn_mask = Tensor();
    bad.key_padding_mask = ones({5, 2}, kBool);
    CHECK_THROWS_WITH(mha.forward(x, x, x, bad), Contains("key_padding_mask must be (B, S) = (2, 5), got (5, 2)"));
}

TEST_CASE("TransformerBlock matches nanoGPT's Block, forward and backward")
{
    const auto& c = reference("attention_reference.json")["transformer_block"];
    nn::TransformerBlock block(nn::TransformerOptions().n_embd(16).n_head(4));
    load_params(block, c["params"]);
    Tensor x = Tensor(ref_array(c["x"], {2, 9, 16})).requires_grad_();
    Tensor y = block.forward(x);
    check_close(y.to_array(), ref_array(c["out"], {2, 9, 16}), 1e-5, 1e-4);
    y.backward(Tensor(ref_array(c["upstream"], {2, 9, 16})));
    check_grads(block, c["grads"], 1e-4);
    check_close(x.grad().to_array(), ref_array(c["grad_x"], {2, 9, 16}), 1e-4, 1e-4);
}

TEST_CASE("a tensor shared by two modules (weight tying) is one parameter: listed, counted, trained and saved once")
{
    struct Head : nn::Module {   // an LM head that registers the token embedding's table as its weight
        explicit Head(const Tensor& shared) { weight = register_parameter("weight", shared); }
        Tensor weight;
    };
    struct Tied : nn::Module {
        std::shared_ptr<nn::Embedding> wte = register_module("wte", std::make_shared<nn::Embedding>(5, 3));
        std::shared_ptr<Head> lm_head = register_module("lm_head", std::make_shared<Head>(wte->weight));
    } model;
    const auto named = model.named_parameters();
    REQUIRE(named.size() == 1);
    CHECK(named[0].first == "wte.weight");
    CHECK(model.num_parameters() == 15);
    // both uses add into the one gradient: the scatter-add and the head's product
    Tensor h = model.wte->forward(IdArray{2});                             // (1, 3)
    Tensor logits = linear(h, model.lm_head->weight);                      // (1, 5)
    sum(logits).backward();
    optim::Adam adam(model.parameters());
    adam.step();                                                           // one parameter, one update
    const std::string path = "tied.safetensors";
    nn::save(model, path);
    CHECK(io::load_safetensors(path).tensors.size() == 1);
    std::remove(path.c_str());
}

TEST_CASE("nn::Dropout and nn::GELU: training and eval, and their checks")
{
    nn::Dropout drop(0.5f);
    const Tensor x = ones({100, 100});
    CHECK_FALSE(drop.forward(x).is_same(x));
    drop.eval();
    CHECK(drop.forward(x).is_same(x));
    CHECK_THROWS_WITH(nn::Dropout(1.0f), Contains("nn::Dropout: p must be in [0, 1), got 1"));
    CHECK_THROWS_WITH(nn::GELU("fast"), Contains("nn::GELU: approximate must be \"none\" or \"tanh\", got \"fast\""));
    check_close(nn::GELU("tanh").forward(x).to_array(), gelu(x, "tanh").to_array(), 0.0);
}

TEST_CASE("ModuleList and Sequential name their modules 0, 1, ... as PyTorch does")
{
    struct Gpt : nn::Module {
        std::shared_ptr<nn::ModuleList> h = register_module("h", std::make_shared<nn::ModuleList>());
    } gpt;
    for (int i = 0; i < 2; ++i) gpt.h->push_back(std::make_shared<nn::TransformerBlock>(nn::TransformerOptions().n_embd(8).n_head(2)));
    const auto named = gpt.named_parameters();
    CHECK(named[0].first == "h.0.ln_1.weight");
    CHECK(std::any_of(named.begin(), named.end(), [](const auto& p) { return p.first == "h.1.attn.c_attn.weight"; }));
    CHECK(gpt.h->at<nn::TransformerBlock>(1)->attn->c_attn->weight.shape() == Shape{24, 8});
    CHECK_THROWS_WITH(gpt.h->at(2), Contains("nn::ModuleList: index 2 is out of range for 2 modules"));
    CHECK_THROWS_WITH(gpt.h->at<nn::Linear>(0), Contains("nn::ModuleList: module 0 is a TransformerBlock, not the type asked for"));

    manual_seed(3);
    auto fc1 = std::make_shared<nn::Linear>(4, 6), fc2 = std::make_shared<nn::Linear>(6, 2);
    nn::Sequential mlp(fc1, std::make_shared<nn::GELU>(), fc2);
    CHECK(mlp.named_parameters()[2].first == "2.weight");
    const Tensor x = randn({3, 4});
    check_close(mlp.forward(x).to_array(), fc2->forward(gelu(fc1->forward(x))).to_array(), 0.0);
}

TEST_CASE("a transformer block fed one position at a time through a KV cache gives the full forward's rows")
{
    manual_seed(9);
    nn::TransformerBlock block(nn::TransformerOptions().n_embd(16).n_head(4));
    const std::size_t T = 70;                                  // past one 64-key block
    const Tensor x = randn({2, T, 16});
    const Tensor full = block.forward(x);                      // (2, T, 16)
    nn::KVCache cache;
    for (std::size_t t = 0; t < T; ++t) {
        const Tensor step = block.forward(Tensor(Array(xt::view(x.to_array(), xt::all(), xt::range(t, t + 1), xt::all()))), cache);
        INFO("position " << t);
        REQUIRE(cache.length() == t + 1);
        check_close(step.to_array(), Array(xt::view(full.to_array(), xt::all(), xt::range(t, t + 1), xt::all())), 1e-5, 1e-4);
    }
    CHECK_THROWS_WITH(block.attn->forward(randn({2, 2, 16}), cache), Contains("a cached step takes one position"));
}

TEST_CASE("train_gpt's model: logits through the KV cache equal the recomputing forward's, and generate checks its arguments")
{
    manual_seed(21);
    Gpt model({11, 16, 2, 2, 8, 0.0f});
    const std::vector<std::int64_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
    NoGradGuard no_grad;
    std::vector<nn::KVCache> cache;
    for (std::size_t t = 0; t < prompt.size(); ++t) {
        const Tensor cached = model.next_logits(prompt[t], cache);                        // (V,)
        const Tensor full = model.forward(text::to_ids({prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(t + 1)}, true));
        INFO("prefix of " << t + 1);
        check_close(cached.to_array(), Array(xt::view(full.to_array(), 0, t, xt::all())), 1e-5, 1e-4);
    }
    Generator rng(1);
    const auto out = model.generate(prompt, 30, 0.8f, 5, rng);                           // past block_size 16: the cache restarts
    CHECK(out.size() == prompt.size() + 30);
    CHECK(std::all_of(out.begin(), out.end(), [](std::int64_t id) { return id >= 0 && id < 11; }));
    CHECK_THROWS_WITH(model.generate({}, 5, 1.0f, std::nullopt, rng), Contains("generate: the prompt is empty"));
    CHECK_THROWS_WITH(model.generate(prompt, 5, 0.0f, std::nullopt, rng), Contains("generate: temperature must be positive, got 0"));
    CHECK_THROWS_WITH(model.generate(prompt, 5, 1.0f, 0, rng), Contains("generate: top_k must be at least 1, got 0"));
}

TEST_CASE("train_gpt's model trains as PyTorch's: a 10-step AdamW trajectory from the same weights, to 1e-4")
{
    const auto& c = reference("attention_reference.json")["gpt_trajectory"];
    const auto& k = c["config"];
    const std::size_t V = k["vocab"], T = k["block_size"], B = k["batch"];
    Gpt model({V, T, k["n_layer"].get<std::size_t>(), k["n_head"].get<std::size_t>(), k["n_embd"].get<std::size_t>(), 0.0f});
    load_params(model, c["params"]);
    std::vector<Tensor> decay, no_decay;
    for (const auto& p : model.parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    optim::AdamW adamw({{decay, {}}, {no_decay, optim::GroupOptions().weight_decay(0.0)}},
                       optim::AdamWOptions().lr(1e-2).betas(0.9, 0.99).weight_decay(0.1));
    for (std::size_t step = 0; step < 10; ++step) {
        INFO("step " << step);
        const IdArray x = ref_ids(c["x"][step], {B, T}), y = ref_ids(c["y"][step], {B, T});
        adamw.zero_grad();
        Tensor loss = nn::functional::cross_entropy(model.forward(x), y);
        loss.backward();
        optim::clip_grad_norm(model.parameters(), 1.0);
        adamw.step();
        CHECK(loss.item() == Approx(c["losses"][step].get<float>()).margin(1e-4));
    }
    // The weights after 10 steps too, except the key bias (the middle third of c_attn.bias): adding a
    // constant to every key adds the same q . b to every score of a row, which softmax ignores, so its
    // gradient is zero but for float noise, and Adam turns that noise into steps of about lr either way.
    const std::size_t C = k["n_embd"];
    for (auto& [name, p] : model.named_parameters()) {
        INFO(name);
        Array got = p.to_array(), expected = ref_array(c["final"][name], p.shape());
        if (name.ends_with("attn.c_attn.bias")) {
            for (std::size_t i = C; i < 2 * C; ++i) got(i) = expected(i);
        }
        check_close(got, expected, 1e-4, 1e-3);
    }
}
