// Optimizers against PyTorch's trajectories, closed forms, groups, clipping, schedules, resume, errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <tuple>
#include <vector>

#include "close.h"
#include "reference.h"

using namespace xgrad;
using namespace xgrad::testing;
using Catch::Matchers::Contains;

namespace {

// Float precision: a few units in the last place of values around 1.
void check_float_close(const Array& got, const Array& expected) { check_close(got, expected, 1e-7, 1e-6); }

std::unique_ptr<optim::Optimizer> make(const std::string& name, Tensor p)
{
    using namespace optim;
    if (name == "adam") return std::make_unique<Adam>(std::vector<Tensor>{p}, AdamOptions().lr(1e-2));
    if (name == "adam_defaults") return std::make_unique<Adam>(std::vector<Tensor>{p});
    if (name == "adam_weight_decay") return std::make_unique<Adam>(std::vector<Tensor>{p}, AdamOptions().lr(1e-2).weight_decay(0.1));
    if (name == "adam_amsgrad")
        return std::make_unique<Adam>(std::vector<Tensor>{p}, AdamOptions().lr(1e-2).betas(0.8, 0.95).amsgrad(true));
    if (name == "adam_maximize") return std::make_unique<Adam>(std::vector<Tensor>{p}, AdamOptions().lr(1e-2).maximize(true));
    // torch.optim.AdamW(lr=1e-2): its weight_decay 0.01 must come from AdamW, not from these options
    if (name == "adamw") return std::make_unique<AdamW>(std::vector<Tensor>{p}, AdamOptions().lr(1e-2));
    if (name == "adamw_weight_decay")
        return std::make_unique<AdamW>(std::vector<Tensor>{p}, AdamOptions().lr(1e-2).weight_decay(0.1).eps(1e-6));
    if (name == "sgd") return std::make_unique<SGD>(std::vector<Tensor>{p}, SGDOptions(0.1));
    if (name == "sgd_momentum") return std::make_unique<SGD>(std::vector<Tensor>{p}, SGDOptions(0.1).momentum(0.9).dampening(0.1));
    if (name == "sgd_nesterov_weight_decay")
        return std::make_unique<SGD>(std::vector<Tensor>{p}, SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.01));
    throw std::runtime_error("unknown case " + name);
}

}  // namespace

TEST_CASE("Adam, AdamW and SGD follow PyTorch's trajectories step by step")
{
    for (const char* name : {"adam", "adam_defaults", "adam_weight_decay", "adam_amsgrad", "adam_maximize", "adamw",
                             "adamw_weight_decay", "sgd", "sgd_momentum", "sgd_nesterov_weight_decay"}) {
        INFO(name);
        const auto& c = reference("optim_reference.json")[name];
        const Shape shape = c["shape"].get<Shape>();
        Tensor p(ref_array(c["p0"], shape), true);
        auto optimizer = make(name, p);
        for (std::size_t t = 0; t < c["grads"].size(); ++t) {
            INFO("step " << t + 1);
            p.set_grad(Tensor(ref_array(c["grads"][t], shape)));
            optimizer->step();
            check_float_close(p.to_array(), ref_array(c["trajectory"][t], shape));
        }
    }
}

TEST_CASE("Adam, AdamW and SGD update float64 parameters in double, on PyTorch's float64 trajectories")
{
    for (const char* name : {"adam", "adam_defaults", "adam_weight_decay", "adam_amsgrad", "adam_maximize", "adamw",
                             "adamw_weight_decay", "sgd", "sgd_momentum", "sgd_nesterov_weight_decay"}) {
        INFO(name << " in float64");
        const auto& c = reference("optim_reference.json")[std::string(name) + "_float64"];
        const Shape shape = c["shape"].get<Shape>();
        auto doubles = [&](const nlohmann::json& values) {
            const auto v = values.get<std::vector<double>>();
            Array64 a = Array64::from_shape(shape);
            std::copy(v.begin(), v.end(), a.begin());
            return a;
        };
        Tensor p(doubles(c["p0"]), true);
        auto optimizer = make(name, p);
        for (std::size_t t = 0; t < c["grads"].size(); ++t) {
            INFO("step " << t + 1);
            p.set_grad(Tensor(doubles(c["grads"][t])));
            optimizer->step();
            REQUIRE(p.dtype() == kFloat64);
            const Array64 want = doubles(c["trajectory"][t]);
            const ValuesOf<double> got = p.values<double>();
            for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-14));
        }
    }
}

TEST_CASE("float64 optimizer state is saved and loaded in float64")
{
    const std::string path = "optim_float64_state.safetensors";
    Tensor p(Array64{1.0, 2.0, 3.0}, true);
    optim::Adam adam({p}, optim::AdamOptions().lr(0.1));
    p.set_grad(Tensor(Array64{0.5, -0.25, 1.0 / 3.0}));
    adam.step();
    optim::save_checkpoint(path, {{"p", p}}, adam);
    io::Safetensors file = io::load_safetensors(path);
    for (const auto& [name, t] : file.tensors) CHECK(t.dtype() == kFloat64);
    CHECK(file.tensors.size() == 3);   // p, exp_avg, exp_avg_sq

    Tensor q(Array64{0.0, 0.0, 0.0}, true);
    optim::Adam resumed({q}, optim::AdamOptions().lr(0.1));
    optim::load_checkpoint(path, {{"p", q}}, resumed);
    p.set_grad(Tensor(Array64{0.125, 0.5, -1.0 / 7.0}));
    q.set_grad(Tensor(Array64{0.125, 0.5, -1.0 / 7.0}));
    adam.step();
    resumed.step();
    CHECK(q.dtype() == kFloat64);
    for (std::size_t i = 0; i < 3; ++i) CHECK(q.values<double>()[i] == p.values<double>()[i]);   // exactly: the moments kept every bit
    std::filesystem::remove(path);
}

TEST_CASE("the optim reference values say which torch made them and how to make them again")
{
    const auto& generator = reference("optim_reference.json").at("generator");
    CHECK_FALSE(generator["torch"].get<std::string>().empty());   // torch.__version__, e.g. "1.13.0a0"
    CHECK(generator["command"].get<std::string>() == "cd tests/reference && /usr/bin/python3 make_optim_reference.py");
}

TEST_CASE("sparse Adam and SparseAdam follow SparseAdam, and untouched rows and their moments do not move")
{
    const auto& c = reference("optim_reference.json")["sparse_adam"];
    for (const std::string which : {"Adam", "SparseAdam"}) {
        INFO(which);
        nn::Embedding emb(6, 3, nn::EmbeddingOptions().sparse(true));
        assign(emb.weight, ref_array(c["p0"], {6, 3}));
        std::unique_ptr<optim::Optimizer> adam;
        if (which == "Adam") adam = std::make_unique<optim::Adam>(emb.parameters(), optim::AdamOptions().lr(1e-2));
        else adam = std::make_unique<optim::SparseAdam>(emb.parameters(), optim::SparseAdamOptions().lr(1e-2));
        for (std::size_t t = 0; t < c["ids"].size(); ++t) {
            INFO("step " << t + 1);
            auto ids = c["ids"][t].get<std::vector<std::int64_t>>();
            Array before = emb.weight.to_array();
            adam->zero_grad();
            emb.forward(text::to_ids(ids)).backward(Tensor(ref_array(c["upstreams"][t], {ids.size(), 3})));
            adam->step();
            check_float_close(emb.weight.to_array(), ref_array(c["trajectory"][t], {6, 3}));
            for (std::size_t row = 0; row < 6; ++row) {
                if (std::find(ids.begin(), ids.end(), static_cast<std::int64_t>(row)) != ids.end()) continue;
                for (std::size_t j = 0; j < 3; ++j) CHECK(emb.weight.to_array()(row, j) == before(row, j));   // exactly
            }
        }
        // the moments of rows never touched stay zero; the others match SparseAdam's
        io::NamedTensors tensors;
        io::Metadata meta;
        adam->save_state(tensors, meta);
        const auto& last = c["moments"].back();
        for (const auto& [name, values] : tensors) {
            const std::string slot = name.substr(name.rfind('.') + 1);
            check_float_close(values.to_array(), ref_array(last[slot], {6, 3}));
            CHECK(values.to_array()(4, 0) == 0.0f);
        }
    }
}

TEST_CASE("AdamW given only a learning rate decays weights by 0.01, as torch.optim.AdamW, however it is spelled")
{
    Tensor p = tensor({1.0f}).requires_grad_();
    using optim::AdamOptions, optim::AdamWOptions;
    auto decay_of = [](const optim::Optimizer& o) { return o.param_groups()[0].weight_decay; };
    CHECK(decay_of(optim::AdamW({p})) == 0.01);
    CHECK(decay_of(optim::AdamW({p}, AdamOptions().lr(1e-3))) == 0.01);
    CHECK(decay_of(optim::AdamW({p}, AdamWOptions().lr(1e-3))) == 0.01);
    CHECK(decay_of(optim::AdamW(std::vector<optim::ParamGroup>{{{p}, {}}}, AdamWOptions().lr(1e-3))) == 0.01);
    CHECK(optim::AdamW({p}, AdamWOptions().lr(1e-3)).options().weight_decay_ == 0.01);
    CHECK(decay_of(optim::AdamW({p}, AdamWOptions().lr(1e-3).weight_decay(0))) == 0.0);   // an explicit 0 stays 0
    CHECK(decay_of(optim::AdamW({p}, AdamWOptions().weight_decay(0.1))) == 0.1);
    CHECK(decay_of(optim::Adam({p}, AdamOptions().lr(1e-3))) == 0.0);                     // Adam's default is 0
    CHECK(decay_of(optim::Adam({p})) == 0.0);
}

TEST_CASE("SparseAdam has PyTorch's defaults and refuses a dense gradient, naming the parameter, before moving any")
{
    nn::Embedding emb(6, 3, nn::EmbeddingOptions().sparse(true));
    Tensor dense = tensor({1.0f, 2.0f}).requires_grad_();
    optim::SparseAdam adam(std::vector<optim::ParamGroup>{{{emb.weight}, {}}, {{dense}, {}}});
    CHECK(adam.name() == "SparseAdam");
    CHECK(adam.param_groups()[0].lr == 1e-3);   // torch.optim.SparseAdam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    CHECK(adam.options().beta1_ == 0.9);
    CHECK(adam.options().beta2_ == 0.999);
    CHECK(adam.options().eps_ == 1e-8);

    emb.forward(text::to_ids(std::vector<std::int64_t>{1, 2})).backward(Tensor(ones({2, 3})));
    dense.set_grad(tensor({1.0f, 1.0f}));
    const Array before = emb.weight.to_array();
    CHECK_THROWS_WITH(adam.step(), Contains("SparseAdam: parameter 0 of group 1 (shape (2,)) has a dense gradient") &&
                                       Contains("use Adam for this parameter"));
    CHECK((emb.weight.to_array() == before));
    CHECK(dense.to_array()(0) == 1.0f);

    dense.zero_grad();                                   // without a gradient it is skipped, as in Adam
    adam.step();
    CHECK(emb.weight.to_array()(1, 0) != before(1, 0));
    CHECK(emb.weight.to_array()(0, 0) == before(0, 0));

    const std::vector<optim::ParamGroup> decayed = {{{dense}, optim::GroupOptions().weight_decay(0.1)}};
    CHECK_THROWS_WITH(optim::SparseAdam(decayed),
                      Contains("SparseAdam: group 0 sets weight_decay 0.1, which SparseAdam does not have"));
    CHECK_THROWS_WITH(optim::SparseAdam({dense}, optim::SparseAdamOptions().lr(0)),
                      Contains("SparseAdam: lr must be positive, got 0"));
}

TEST_CASE("Adam's first step is lr * g / (|g| + eps) away, the closed form")
{
    // m_hat = g and v_hat = g^2 after one step, so p1 = p0 - lr g / (|g| + eps)
    Tensor p = tensor({1.0f, -2.0f, 3.0f}).requires_grad_();
    p.set_grad(tensor({0.5f, -1e-3f, 4.0f}));
    optim::Adam adam({p}, optim::AdamOptions().lr(0.1).eps(1e-3));
    adam.step();
    CHECK(p.to_array()(0) == Approx(1.0f - 0.1f * 0.5f / (0.5f + 1e-3f)).epsilon(1e-6));
    CHECK(p.to_array()(1) == Approx(-2.0f + 0.1f * 1e-3f / (1e-3f + 1e-3f)).epsilon(1e-6));   // eps matters here
    CHECK(p.to_array()(2) == Approx(3.0f - 0.1f * 4.0f / (4.0f + 1e-3f)).epsilon(1e-6));
}

TEST_CASE("a parameter without a gradient is skipped")
{
    Tensor a = tensor({1.0f}).requires_grad_(), b = tensor({1.0f}).requires_grad_();
    optim::Adam adam({a, b}, optim::AdamOptions().lr(0.1));
    a.set_grad(tensor({1.0f}));
    adam.step();
    CHECK(a.to_array()(0) != 1.0f);
    CHECK(b.to_array()(0) == 1.0f);
    io::NamedTensors tensors;
    io::Metadata meta;
    adam.save_state(tensors, meta);
    CHECK(meta.at("optimizer.state.0.step") == "1");
    CHECK(meta.at("optimizer.state.1.step") == "0");
}

TEST_CASE("parameter groups keep their own lr and weight decay")
{
    Tensor fast = tensor({1.0f}).requires_grad_(), slow = tensor({1.0f}).requires_grad_();
    optim::SGD sgd({{{fast}, {}}, {{slow}, optim::GroupOptions().lr(0.01).weight_decay(1.0)}}, optim::SGDOptions(0.1));
    fast.set_grad(tensor({1.0f}));
    slow.set_grad(tensor({1.0f}));
    sgd.step();
    CHECK(fast.to_array()(0) == Approx(1.0f - 0.1f));
    CHECK(slow.to_array()(0) == Approx(1.0f - 0.01f * (1.0f + 1.0f * 1.0f)));   // g + wd p
    CHECK(sgd.param_groups()[1].lr == 0.01);
}

TEST_CASE("a group's own betas, eps, amsgrad and momentum step it as an optimizer made with them would")
{
    auto run = [](auto make, int steps) {
        Tensor a = tensor({1.0f, -2.0f, 0.5f}).requires_grad_(), b = tensor({0.5f, 3.0f, -1.0f}).requires_grad_();
        auto opt = make(a, b);
        for (int s = 0; s < steps; ++s) {
            a.set_grad(Tensor(Array(2.0f * a.to_array() - 1.0f)));   // values only: no graph back to a
            b.set_grad(Tensor(Array(b.to_array() * b.to_array() + 0.5f)));
            opt->step();
        }
        return std::pair{a.to_array(), b.to_array()};
    };
    const auto adam = optim::AdamOptions().lr(0.05).weight_decay(0.1);
    const auto special = optim::AdamOptions(adam).betas(0.5, 0.6).eps(1e-3).amsgrad(true).maximize(true);
    auto [a, b] = run([&](Tensor a, Tensor b) {
        return std::make_unique<optim::AdamW>(std::vector<optim::ParamGroup>{
            {{a}, {}}, {{b}, optim::GroupOptions().betas(0.5, 0.6).eps(1e-3).amsgrad(true).maximize(true)}}, adam);
    }, 5);
    // the same parameters stepped by two optimizers, each made with one group's options
    auto [a1, b1] = run([&](Tensor a, Tensor b) {
        struct Two {
            optim::AdamW first, second;
            void step() { first.step(), second.step(); }
        };
        return std::unique_ptr<Two>(new Two{optim::AdamW({a}, adam), optim::AdamW({b}, special)});
    }, 5);
    CHECK(xt::all(xt::equal(a, a1)));
    CHECK(xt::all(xt::equal(b, b1)));
    CHECK_FALSE(xt::all(xt::equal(b, run([&](Tensor a, Tensor b) {   // and the group's options did change b's path
        return std::make_unique<optim::AdamW>(std::vector<optim::ParamGroup>{{{a}, {}}, {{b}, {}}}, adam);
    }, 5).second)));

    Tensor c = tensor({1.0f}).requires_grad_(), d = tensor({1.0f}).requires_grad_();
    optim::SGD sgd({{{c}, {}}, {{d}, optim::GroupOptions().momentum(0.5)}}, optim::SGDOptions(0.1));
    for (int s = 0; s < 2; ++s) {
        c.set_grad(tensor({1.0f}));
        d.set_grad(tensor({1.0f}));
        sgd.step();
    }
    CHECK(c.to_array()(0) == Approx(1.0f - 0.2f));
    CHECK(d.to_array()(0) == Approx(1.0f - 0.1f - 0.1f * 1.5f));   // b = 1, then 0.5 * 1 + 1

    CHECK_THROWS_WITH(optim::Adam({{{c}, optim::GroupOptions().momentum(0.9)}}),
                      Contains("Adam group 0 sets momentum, which Adam does not have (it is SGD's)"));
    CHECK_THROWS_WITH(optim::SGD({{{c}, optim::GroupOptions().eps(1e-3)}}, optim::SGDOptions(0.1)),
                      Contains("SGD group 0 sets eps, which SGD does not have (it is Adam's)"));
    CHECK_THROWS_WITH(optim::Adam({{{c}, optim::GroupOptions().betas(1.5, 0.9)}}),
                      Contains("Adam group 0: beta1 must be in [0, 1), got 1.5"));
    CHECK_THROWS_WITH(optim::SGD({{{c}, optim::GroupOptions().nesterov(true)}}, optim::SGDOptions(0.1)),
                      Contains("SGD group 0: nesterov needs a positive momentum"));
    CHECK_THROWS_WITH(optim::SparseAdam({{{c}, optim::GroupOptions().amsgrad(true)}}),
                      Contains("SparseAdam: group 0 sets amsgrad or maximize"));
}

TEST_CASE("clip_grad_norm scales all gradients to max_norm and returns the norm before")
{
    Tensor a = tensor({3.0f}).requires_grad_(), b = tensor({0.0f, 4.0f}).requires_grad_();
    a.set_grad(tensor({3.0f}));
    b.set_grad(tensor({0.0f, 4.0f}));
    CHECK(optim::clip_grad_norm({a, b}, 1.0) == Approx(5.0));
    CHECK(a.grad().to_array()(0) == Approx(0.6f).epsilon(1e-5));
    CHECK(b.grad().to_array()(1) == Approx(0.8f).epsilon(1e-5));
    CHECK(optim::clip_grad_norm({a, b}, 10.0) == Approx(1.0).epsilon(1e-5));   // under the limit: unchanged
    CHECK(a.grad().to_array()(0) == Approx(0.6f).epsilon(1e-5));
    CHECK_THROWS_WITH(optim::clip_grad_norm({a}, 0.0), Contains("max_norm must be positive"));
}

TEST_CASE("schedules give the documented lr at chosen steps")
{
    optim::ConstantLR constant;
    CHECK(constant.lr(1000, 0.5) == 0.5);
    optim::StepLR step(10, 0.5);
    CHECK(step.lr(9, 1.0) == 1.0);
    CHECK(step.lr(10, 1.0) == 0.5);
    CHECK(step.lr(25, 1.0) == 0.25);
    optim::WarmupCosine cosine(10, 110, 0.1);
    CHECK(cosine.lr(0, 1.0) == Approx(1.0 / 11));
    CHECK(cosine.lr(9, 1.0) == Approx(10.0 / 11));
    CHECK(cosine.lr(10, 1.0) == Approx(1.0));
    CHECK(cosine.lr(60, 1.0) == Approx(0.55));                   // halfway: (1 + 0.1) / 2
    CHECK(cosine.lr(110, 1.0) == Approx(0.1));
    CHECK(cosine.lr(500, 1.0) == Approx(0.1));

    Tensor p = tensor({1.0f}).requires_grad_();
    optim::Adam adam({p}, optim::AdamOptions().lr(2.0));
    cosine.apply(adam, 60);
    CHECK(adam.param_groups()[0].lr == Approx(1.1));
    CHECK_THROWS_WITH(optim::WarmupCosine(10, 5), Contains("decay_steps (5) must exceed warmup_steps (10)"));
}

TEST_CASE("N steps, save, load, M more steps gives the same bits as N + M steps in one go")
{
    struct Model : nn::Module {
        std::shared_ptr<nn::Embedding> tok = register_module("tok", std::make_shared<nn::Embedding>(10, 8));
        std::shared_ptr<nn::Linear> head = register_module("head", std::make_shared<nn::Linear>(8, 10));
        Tensor loss(const IdArray& x, const IdArray& y) { return nn::functional::cross_entropy(head->forward(tok->forward(x)), y); }
    };
    IdArray x = {{1, 2, 3, 4}, {5, 6, 7, 8}}, y = {{2, 3, 4, 5}, {6, 7, 8, 9}};
    auto train = [&](Model& m, optim::Adam& opt, int steps) {
        for (int i = 0; i < steps; ++i) {
            opt.zero_grad();
            m.loss(x, y).backward();
            opt.step();
        }
    };
    const auto options = optim::AdamOptions().lr(1e-2).amsgrad(true).weight_decay(0.01);
    manual_seed(7);
    Model straight;
    optim::Adam straight_opt(straight.parameters(), options);
    train(straight, straight_opt, 8);

    manual_seed(7);
    Model first;
    optim::Adam first_opt(first.parameters(), options);
    train(first, first_opt, 5);
    const std::string path = (std::filesystem::temp_directory_path() / "xgrad_resume_test.safetensors").string();
    optim::save_checkpoint(path, first.named_parameters(), first_opt, {{"step", "5"}});

    manual_seed(99);                                   // a different init, overwritten by the load
    Model resumed;
    optim::Adam resumed_opt(resumed.parameters(), options);
    CHECK(optim::load_checkpoint(path, resumed.named_parameters(), resumed_opt).at("step") == "5");
    train(resumed, resumed_opt, 3);
    auto a = straight.parameters(), b = resumed.parameters();
    for (std::size_t i = 0; i < a.size(); ++i) {
        CHECK(std::memcmp(a[i].data_ptr(), b[i].data_ptr(), a[i].numel() * sizeof(float)) == 0);
    }

    optim::SGD sgd(resumed.parameters(), optim::SGDOptions(0.1));   // the wrong optimizer: refused, unchanged
    CHECK_THROWS_WITH(optim::load_checkpoint(path, resumed.named_parameters(), sgd),
                      Contains("holds the state of Adam, not of SGD"));

    // Hand-edited numbers in the state are refused by name, leaving the model and optimizer unchanged.
    const auto before = resumed.parameters()[0].to_array();
    for (const auto& [key, bad, expected] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"optimizer.state.0.step", "abc", "has 'optimizer.state.0.step' = 'abc', expected a whole number of steps"},
             {"optimizer.state.1.step", "-3", "has 'optimizer.state.1.step' = '-3', expected a whole number of steps"},
             {"optimizer.state.0.step", "5x", "= '5x', expected a whole number"},
             {"optimizer.group.0.lr", "", "has 'optimizer.group.0.lr' = '', expected a positive number"},
             {"optimizer.group.0.lr", "0.01abc", "= '0.01abc', expected a positive number"},
             {"optimizer.group.0.lr", "nan", "= 'nan', expected a positive number"}}) {
        io::Safetensors file = io::load_safetensors(path);
        REQUIRE(file.metadata.count(key) == 1);
        file.metadata[key] = bad;
        io::NamedTensors tensors;
        for (const auto& [name, values] : file.tensors) tensors.emplace_back(name, values);
        const std::string edited = path + ".edited";
        io::save_safetensors(edited, tensors, file.metadata);
        CHECK_THROWS_WITH(optim::load_checkpoint(edited, resumed.named_parameters(), resumed_opt), Contains(expected));
        CHECK((resumed.parameters()[0].to_array() == before));
        std::filesystem::remove(edited);
    }
    std::filesystem::remove(path);
}

TEST_CASE("invalid options throw naming the option and its value")
{
    Tensor p = tensor({1.0f}).requires_grad_();
    using optim::AdamOptions;
    CHECK_THROWS_WITH(optim::Adam({p}, AdamOptions().lr(0)), Contains("Adam: lr must be positive, got 0"));
    CHECK_THROWS_WITH(optim::Adam({p}, AdamOptions().lr(-1)), Contains("lr must be positive, got -1"));
    CHECK_THROWS_WITH(optim::Adam({p}, AdamOptions().betas(1.0, 0.999)), Contains("beta1 must be in [0, 1), got 1"));
    CHECK_THROWS_WITH(optim::Adam({p}, AdamOptions().betas(0.9, -0.1)), Contains("beta2 must be in [0, 1), got -0.1"));
    CHECK_THROWS_WITH(optim::Adam({p}, AdamOptions().eps(-1e-8)), Contains("eps must be non-negative, got -1e-08"));
    CHECK_THROWS_WITH(optim::AdamW({p}, AdamOptions().weight_decay(-0.1)), Contains("AdamW: weight_decay must be non-negative"));
    CHECK_THROWS_WITH(optim::SGD({p}, optim::SGDOptions(0.1).momentum(-1)), Contains("SGD: momentum must be non-negative"));
    CHECK_THROWS_WITH(optim::SGD({p}, optim::SGDOptions(0.1).nesterov(true)), Contains("nesterov needs a positive momentum"));
    CHECK_THROWS_WITH(optim::SGD({p}, optim::SGDOptions(0)), Contains("SGD: lr must be positive"));
    Tensor q = p * 2.0f;
    CHECK_THROWS_WITH(optim::Adam({q}), Contains("not a leaf parameter"));
}

TEST_CASE("a parameter given twice, in one group or in two, and an empty parameter list are refused, as PyTorch does")
{
    Tensor p = tensor({1.0f}).requires_grad_(), q = tensor({2.0f}).requires_grad_();
    CHECK_THROWS_WITH(optim::Adam({p, q, p}), Contains("Adam: parameter 2 of group 0 is the same tensor as parameter 0 of group 0"));
    CHECK_THROWS_WITH(optim::SGD(std::vector<optim::ParamGroup>{{{p}, {}}, {{q, p}, {}}}, optim::SGDOptions(0.1)),
                      Contains("SGD: parameter 1 of group 1 is the same tensor as parameter 0 of group 0"));
    CHECK_THROWS_WITH(optim::Adam(std::vector<Tensor>{}), Contains("Adam: got an empty parameter list"));
    CHECK_THROWS_WITH(optim::AdamW(std::vector<optim::ParamGroup>{{{}, {}}, {{}, {}}}), Contains("AdamW: got an empty parameter list"));
    // the copy of a handle is the same tensor; an equal-valued tensor is not
    Tensor p_again = p;
    CHECK_THROWS_WITH(optim::Adam({p, p_again}), Contains("is the same tensor"));
    CHECK_NOTHROW(optim::Adam({p, tensor({1.0f}).requires_grad_()}));
}

TEST_CASE("a state saved before any step loads only into an optimizer over as many parameters and groups")
{
    const std::string path = (std::filesystem::temp_directory_path() / "xgrad_optim_before_step.safetensors").string();
    Tensor a = tensor({1.0f}).requires_grad_(), b = tensor({2.0f}).requires_grad_();
    optim::Adam two({a, b});                         // no step(): step counts, but no moment tensors
    optim::save_checkpoint(path, {{"a", a}}, two);
    optim::Adam one({a});
    CHECK_THROWS_WITH(optim::load_checkpoint(path, {{"a", a}}, one),
                      Contains("has optimizer state optimizer.state.1.step for parameter 1, but Adam has 1 parameters"));
    optim::Adam two_groups(std::vector<optim::ParamGroup>{{{a}, {}}, {{b}, {}}});
    optim::save_checkpoint(path, {{"a", a}}, two_groups);
    optim::Adam one_group({a, b});
    CHECK_THROWS_WITH(optim::load_checkpoint(path, {{"a", a}}, one_group),
                      Contains("has optimizer settings optimizer.group.1.lr for group 1, but Adam has 1 groups"));
    std::filesystem::remove(path);
}

TEST_CASE("a parameter given data of another shape (set_data) is refused at step() by name, never read past its buffers")
{
    for (const char* which : {"Adam", "SGD"}) {
        INFO(which);
        Tensor p = tensor({1.0f, 2.0f, 3.0f}).requires_grad_();
        std::unique_ptr<optim::Optimizer> opt;
        if (std::string(which) == "Adam") opt = std::make_unique<optim::Adam>(std::vector<Tensor>{p}, optim::AdamOptions(0.1));
        else opt = std::make_unique<optim::SGD>(std::vector<Tensor>{p}, optim::SGDOptions(0.1).momentum(0.9));
        sum(p * p).backward();
        opt->step();                                   // the state is made for (3,)
        p.set_data(zeros({1000}));                     // torch's p.data = torch.zeros(1000)
        CHECK_THROWS_WITH(opt->step(), Contains("parameter 0 of group 0 (shape (1000,)) has a gradient of shape (3,)"));
        p.zero_grad();
        sum(p * p).backward();
        CHECK_THROWS_WITH(opt->step(), Contains("made for shape (3,): its data was replaced by data of another shape"));
        CHECK(xt::all(xt::equal(p.to_array(), 0.0f)));   // refused before anything moved
    }
}
