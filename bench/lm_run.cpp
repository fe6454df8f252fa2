// lm_run W4|W5|W7 STEPS: a process that trains the W4, W5 or W7 model for STEPS steps, for measuring what
// bench_compare cannot in a shared process: peak RSS, and the time from process start (the
// XGRAD_BENCH_T0 environment variable, CLOCK_REALTIME nanoseconds taken just before exec) to the
// end of the first step. Built twice: lm_run_xgrad, and lm_run_torch when libtorch is found.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "workloads.h"

#include "train_gpt/model.h"
#ifdef XGRAD_BENCH_TORCH
#include "torch_gpt.h"
#endif

namespace {

double ms_since_exec()
{
    const char* t0 = std::getenv("XGRAD_BENCH_T0");
    if (t0 == nullptr) return -1.0;
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    return (double(now.tv_sec) * 1e9 + double(now.tv_nsec) - std::strtod(t0, nullptr)) / 1e6;
}

// W7: train_gpt's step (AdamW with decay on the 2-D weights, clip 1.0), from the same initial weights
float train_gpt_steps(int steps, double& first_step_ms)
{
    const auto& s = workloads::w7;
    const xgrad::IdArray x = workloads::random_ids(s.vocab, s.batch, s.time, 14);
    const xgrad::IdArray y = workloads::random_ids(s.vocab, s.batch, s.time, 15);
    float sink = 0;
    xgrad::set_num_threads(1);
    xgrad::manual_seed(13);
#ifdef XGRAD_BENCH_TORCH
    torch::set_num_threads(1);
    TGpt model(nullptr);
    {
        const Gpt weights({s.vocab, s.time, s.layers, s.heads, s.channels, 0.0f});   // freed before training
        model = TGpt(weights, s);
    }
    std::vector<torch::Tensor> decay, no_decay;
    for (auto& p : model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-3).betas({0.9, 0.99}).weight_decay(0.1)));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-3).betas({0.9, 0.99}).weight_decay(0.0)));
    torch::optim::AdamW adamw(std::move(groups));
    const auto tx = to_torch(x), ty = to_torch(y);
    for (int i = 0; i < steps; ++i) {
        adamw.zero_grad();
        auto loss = model->loss(tx, ty);
        loss.backward();
        torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
        adamw.step();
        sink += loss.item<float>();
        if (i == 0) first_step_ms = ms_since_exec();
    }
#else
    using namespace xgrad;
    Gpt model({s.vocab, s.time, s.layers, s.heads, s.channels, 0.0f});
    std::vector<Tensor> decay, no_decay;
    for (const auto& p : model.parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    optim::AdamW adamw({{decay, {}}, {no_decay, optim::GroupOptions().weight_decay(0.0)}},
                       optim::AdamWOptions().lr(1e-3).betas(0.9, 0.99).weight_decay(0.1));
    for (int i = 0; i < steps; ++i) {
        adamw.zero_grad();
        Tensor loss = nn::functional::cross_entropy(model.forward(x), y);
        loss.backward();
        optim::clip_grad_norm(model.parameters(), 1.0);
        adamw.step();
        sink += loss.item();
        if (i == 0) first_step_ms = ms_since_exec();
    }
#endif
    return sink;
}

}  // namespace

int main(int argc, char** argv)
{
    const std::string which = argc > 1 ? argv[1] : "W4";
    const int steps = argc > 2 ? std::atoi(argv[2]) : 200;
    if (which == "W7") {
        double first_step_ms = 0;
        const float sink = train_gpt_steps(steps, first_step_ms);
        rusage usage{};
        getrusage(RUSAGE_SELF, &usage);
        std::printf("W7 %d steps: first step done %.1f ms after exec, peak RSS %.1f MiB (loss sum %.3f)\n", steps,
                    first_step_ms, double(usage.ru_maxrss) / 1024.0, sink);
        return 0;
    }
    const auto& s = which == "W5" ? workloads::w5 : workloads::w4;
    const xgrad::IdArray x = workloads::random_ids(s.vocab, s.batch, s.time, 7);
    const xgrad::IdArray y = workloads::random_ids(s.vocab, s.batch, s.time, 8);
    double first_step_ms = 0;
    float sink = 0;
#ifdef XGRAD_BENCH_TORCH
    torch::set_num_threads(1);
    auto ids = [](const xgrad::IdArray& a) {
        return torch::from_blob(const_cast<std::int64_t*>(a.data()), {int64_t(a.shape()[0]), int64_t(a.shape()[1])},
                                torch::kInt64).clone();
    };
    auto tx = ids(x), ty = ids(y), positions = torch::arange(int64_t(s.time));
    torch::nn::Embedding tok(s.vocab, s.channels), pos(s.time, s.channels);
    torch::nn::Linear head(s.channels, s.vocab), fc1(s.channels, std::max<std::size_t>(s.hidden, 1)),
        fc2(std::max<std::size_t>(s.hidden, 1), s.channels);
    std::vector<torch::Tensor> params;
    for (auto* m : std::vector<torch::nn::Module*>{tok.get(), pos.get(), head.get(), fc1.get(), fc2.get()}) {
        for (auto& p : m->parameters()) params.push_back(p);
    }
    torch::optim::Adam adam(params, torch::optim::AdamOptions(1e-3));
    for (int i = 0; i < steps; ++i) {
        adam.zero_grad();
        auto h = tok(tx) + pos(positions);
        if (s.hidden) h = h + fc2(torch::gelu(fc1(h), "tanh"));
        auto logits = head(h);
        auto loss = torch::nn::functional::cross_entropy(logits.view({-1, int64_t(s.vocab)}), ty.view({-1}));
        loss.backward();
        adam.step();
        sink += loss.item<float>();
        if (i == 0) first_step_ms = ms_since_exec();
    }
#else
    using namespace xgrad;
    set_num_threads(1);
    nn::Embedding tok(s.vocab, s.channels), pos(s.time, s.channels);
    nn::Linear head(s.channels, s.vocab), fc1(s.channels, std::max<std::size_t>(s.hidden, 1)),
        fc2(std::max<std::size_t>(s.hidden, 1), s.channels);
    std::vector<Tensor> params = {tok.weight, pos.weight, head.weight, head.bias, fc1.weight, fc1.bias, fc2.weight, fc2.bias};
    optim::Adam adam(params);
    const IdArray positions = xt::arange<std::int64_t>(static_cast<std::int64_t>(s.time));
    for (int i = 0; i < steps; ++i) {
        adam.zero_grad();
        Tensor h = tok.forward(x) + pos.forward(positions);
        if (s.hidden) h = h + fc2.forward(gelu(fc1.forward(h), "tanh"));
        Tensor loss = nn::functional::cross_entropy(head.forward(h), y);
        loss.backward();
        adam.step();
        sink += loss.item();
        if (i == 0) first_step_ms = ms_since_exec();
    }
#endif
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("%s %d steps: first step done %.1f ms after exec, peak RSS %.1f MiB (loss sum %.3f)\n", which.c_str(),
                steps, first_step_ms, double(usage.ru_maxrss) / 1024.0, sink);
}
