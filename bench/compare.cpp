// bench_compare: xgrad against libtorch on the same workloads, timed in one process, interleaved
// (xgrad, libtorch, xgrad, libtorch, ...) after a warm-up, with the machine's limits (limits.h)
// measured in the same run. --torch-only times libtorch alone, for configurations whose threads
// would disturb xgrad's timings in the same process. See BENCHMARKS.md.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#ifdef XGRAD_BENCH_TORCH
#include <torch/torch.h>
#endif

#include "limits.h"
#include "workloads.h"
#include "xgrad.h"

using namespace xgrad;
using Clock = std::chrono::steady_clock;

namespace {

// ---- timing ------------------------------------------------------------------------------------------------
struct Sample {
    double seconds = 0, faults = 0;   // per iteration
};

Sample time_iterations(const std::function<void()>& fn, int iterations)
{
    rusage before{}, after{};
    getrusage(RUSAGE_SELF, &before);
    const auto start = Clock::now();
    for (int i = 0; i < iterations; ++i) fn();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    getrusage(RUSAGE_SELF, &after);
    return {seconds / iterations, double(after.ru_minflt - before.ru_minflt) / iterations};
}

struct Summary {
    double median = 0, low = 0, high = 0, faults = 0;
};

Summary summarise(std::vector<Sample> samples)
{
    std::sort(samples.begin(), samples.end(), [](const Sample& a, const Sample& b) { return a.seconds < b.seconds; });
    return {samples[samples.size() / 2].seconds, samples.front().seconds, samples.back().seconds,
            samples[samples.size() / 2].faults};
}

// Warm-up, then `repeats` rounds of A then B, each round long enough (~100 ms) to time.
std::pair<Summary, Summary> interleaved(const std::function<void()>& a, const std::function<void()>& b, int repeats)
{
    for (int i = 0; i < 2; ++i) {
        a();
        if (b) b();
    }
    auto iterations_for = [](const std::function<void()>& fn) {
        const double once = time_iterations(fn, 1).seconds;
        return std::max(1, static_cast<int>(0.1 / std::max(once, 1e-7)));
    };
    const int ia = iterations_for(a), ib = b ? iterations_for(b) : 1;
    std::vector<Sample> sa, sb;
    for (int r = 0; r < repeats; ++r) {
        sa.push_back(time_iterations(a, ia));
        if (b) sb.push_back(time_iterations(b, ib));
    }
    return {summarise(sa), b ? summarise(sb) : Summary{}};
}

// ---- the xgrad side ------------------------------------------------------------------------------------------------
struct XLm : nn::Module {
    XLm(const workloads::LmSizes& s)
    {
        tok = register_module("tok", std::make_shared<nn::Embedding>(s.vocab, s.channels));
        pos = register_module("pos", std::make_shared<nn::Embedding>(s.time, s.channels));
        if (s.hidden) {
            fc1 = register_module("fc1", std::make_shared<nn::Linear>(s.channels, s.hidden));
            fc2 = register_module("fc2", std::make_shared<nn::Linear>(s.hidden, s.channels));
        }
        head = register_module("head", std::make_shared<nn::Linear>(s.channels, s.vocab));
    }
    Tensor loss(const IdArray& x, const IdArray& positions, const IdArray& y) const
    {
        Tensor h = tok->forward(x) + pos->forward(positions);
        if (fc1) h = h + fc2->forward(gelu(fc1->forward(h)));
        return nn::functional::cross_entropy(head->forward(h), y);
    }
    std::shared_ptr<nn::Embedding> tok, pos;
    std::shared_ptr<nn::Linear> fc1, fc2, head;
};

#ifdef XGRAD_BENCH_TORCH
// ---- the libtorch side ------------------------------------------------------------------------------------------------
torch::Tensor to_torch(const Array& a)
{
    std::vector<int64_t> sizes(a.shape().begin(), a.shape().end());
    return torch::from_blob(const_cast<float*>(a.data()), sizes, torch::kFloat32).clone();
}
torch::Tensor to_torch(const IdArray& a)
{
    std::vector<int64_t> sizes(a.shape().begin(), a.shape().end());
    return torch::from_blob(const_cast<std::int64_t*>(a.data()), sizes, torch::kInt64).clone();
}

struct TLmImpl : torch::nn::Module {
    TLmImpl(const XLm& x, const workloads::LmSizes& s) : hidden(s.hidden)
    {
        tok = register_module("tok", torch::nn::Embedding(s.vocab, s.channels));
        pos = register_module("pos", torch::nn::Embedding(s.time, s.channels));
        head = register_module("head", torch::nn::Linear(s.channels, s.vocab));
        if (hidden) {
            fc1 = register_module("fc1", torch::nn::Linear(s.channels, s.hidden));
            fc2 = register_module("fc2", torch::nn::Linear(s.hidden, s.channels));
        }
        torch::NoGradGuard no_grad;   // the same starting weights as the xgrad model
        tok->weight.copy_(to_torch(x.tok->weight.data()));
        pos->weight.copy_(to_torch(x.pos->weight.data()));
        head->weight.copy_(to_torch(x.head->weight.data()));
        head->bias.copy_(to_torch(x.head->bias.data()));
        if (hidden) {
            fc1->weight.copy_(to_torch(x.fc1->weight.data()));
            fc1->bias.copy_(to_torch(x.fc1->bias.data()));
            fc2->weight.copy_(to_torch(x.fc2->weight.data()));
            fc2->bias.copy_(to_torch(x.fc2->bias.data()));
        }
    }
    torch::Tensor loss(const torch::Tensor& x, const torch::Tensor& positions, const torch::Tensor& y)
    {
        auto h = tok(x) + pos(positions);
        if (hidden) h = h + fc2(torch::gelu(fc1(h), "tanh"));
        auto logits = head(h);
        return torch::nn::functional::cross_entropy(logits.view({-1, logits.size(-1)}), y.view({-1}));
    }
    std::size_t hidden;
    torch::nn::Embedding tok{nullptr}, pos{nullptr};
    torch::nn::Linear fc1{nullptr}, fc2{nullptr}, head{nullptr};
};
TORCH_MODULE(TLm);
#endif

struct Row {
    std::string name;
    int threads;
    Summary x, t;
    double floor = 0;          // seconds the machine's limit allows, 0 when not measured
    const char* floor_kind = "";
};

void print(const Row& r, bool xgrad_side, bool torch_side)
{
    auto ms = [](double s) { return s * 1e3; };
    std::printf("%-28s %2d", r.name.c_str(), r.threads);
    if (xgrad_side) std::printf("  %9.3f ms [%7.3f-%8.3f] %7.1f", ms(r.x.median), ms(r.x.low), ms(r.x.high), r.x.faults);
    if (torch_side) std::printf("  %9.3f ms [%7.3f-%8.3f] %7.1f", ms(r.t.median), ms(r.t.low), ms(r.t.high), r.t.faults);
    if (xgrad_side && torch_side) std::printf("  %6.2fx", r.t.median / r.x.median);
    if (xgrad_side && r.floor > 0) std::printf("  %4.0f%% of %s (%.3f ms)", 100.0 * r.floor / r.x.median, r.floor_kind, ms(r.floor));
    std::printf("\n");
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv)
{
    // bench_compare [--quick] [--only W1,W4,...] [--threads 1,2] [--torch-only]
    bool quick = false, torch_only = false;
    std::string only, threads_list = "1,2";
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--quick") quick = true;
        else if (arg == "--torch-only") torch_only = true;
        else if (arg == "--only" && i + 1 < argc) only = argv[++i];
        else if (arg == "--threads" && i + 1 < argc) threads_list = argv[++i];
        else {
            std::fprintf(stderr, "bench_compare: unknown argument '%s'; expected --quick, --only W1,W2,..., "
                                 "--threads 1,2 or --torch-only\n", arg.c_str());
            return 2;
        }
    }
    const int repeats = quick ? 3 : 7;
    auto wanted = [&](const char* workload) { return only.empty() || only.find(workload) != std::string::npos; };
#ifdef XGRAD_BENCH_TORCH
    const bool torch_side = true;
#else
    const bool torch_side = false;
    std::printf("(libtorch not found at configure time: xgrad columns only)\n");
    if (torch_only) return 0;
#endif
    const bool xgrad_side = !torch_only;
    std::printf("%-28s %2s", "workload", "th");
    if (xgrad_side) std::printf("  %-31s %7s", "xgrad median [min-max]", "flt/it");
    if (torch_side) std::printf("  %-31s %7s", "libtorch median [min-max]", "flt/it");
    if (xgrad_side && torch_side) std::printf("  %7s", "ratio");
    std::printf("%s\n", xgrad_side ? "  limit reached" : "");
    // One side's step, or nothing when that side is not measured in this run.
    auto side = [](bool on, std::function<void()> step) { return on ? std::move(step) : std::function<void()>{}; };
    auto run = [&](const std::function<void()>& x_step, const std::function<void()>& t_step) {
        if (!x_step) return std::pair<Summary, Summary>{Summary{}, interleaved(t_step, {}, repeats).first};
        return interleaved(x_step, t_step, repeats);
    };

    for (int threads : {1, 2}) {
        if (threads_list.find(char('0' + threads)) == std::string::npos) continue;
        set_num_threads(threads);
#ifdef XGRAD_BENCH_TORCH
        torch::set_num_threads(threads);
#endif
        std::printf("-- %d thread%s", threads, threads > 1 ? "s" : "");
        if (xgrad_side) std::printf(": DRAM copy bandwidth %.1f GB/s (read + write, 256 MiB)", limits::copy_bandwidth() / 1e9);
        std::printf("\n");

        // W1 / W2: tok(ids) + pos(arange(T)), backward with a fixed upstream, grads zeroed every iteration
        for (int which : {1, 2, 3}) {
            if (!wanted(which == 1 ? "W1" : "W2")) continue;
            const auto& s = which == 1 ? workloads::w1 : workloads::w2;
            const bool sparse = which == 3;
            manual_seed(1);
            nn::Embedding tok(s.vocab, s.channels, nn::EmbeddingOptions().sparse(sparse)), pos(s.positions, s.channels);
            const IdArray ids = workloads::random_ids(s.vocab, s.batch, s.time, 2);
            const IdArray positions = xt::arange<std::int64_t>(static_cast<std::int64_t>(s.time));
            const Tensor upstream(workloads::random_array({s.batch, s.time, s.channels}, 3));
            auto x_step = side(xgrad_side, [&] {
                tok.zero_grad(false), pos.zero_grad(false);
                (tok.forward(ids) + pos.forward(positions)).backward(upstream);
            });
            std::function<void()> t_step;
#ifdef XGRAD_BENCH_TORCH
            if (which == 3 && torch_only) continue;   // the same libtorch (dense) run as the row above
            torch::nn::Embedding ttok(s.vocab, s.channels), tpos(s.positions, s.channels);
            auto tids = to_torch(ids), tpositions = to_torch(positions), tup = to_torch(upstream.data());
            t_step = [&] {
                ttok->zero_grad(), tpos->zero_grad();
                (ttok(tids) + tpos(tpositions)).backward(tup);
            };
#endif
            auto [x, t] = run(x_step, t_step);
            const char* names[] = {"", "W1 seed embedding", "W2 large embedding, dense", "W2 large embedding, sparse"};
            print({names[which], threads, x, t, xgrad_side ? limits::embedding_floor(s, ids, sparse) : 0.0, "fused loops"},
                  xgrad_side, torch_side);
        }

        // W3: one Adam (or AdamW) step over N floats with fixed random gradients
        for (auto [n, decoupled] : std::vector<std::pair<std::size_t, bool>>{{100000, false}, {10000000, false}, {10000000, true}}) {
            if (!wanted("W3")) continue;
            Tensor p(workloads::random_array({n}, 4), true);
            p.set_grad(Tensor(workloads::random_array({n}, 5)));
            std::unique_ptr<optim::Optimizer> adam;
            if (decoupled) adam = std::make_unique<optim::AdamW>(std::vector<Tensor>{p});
            else adam = std::make_unique<optim::Adam>(std::vector<Tensor>{p});
            auto x_step = side(xgrad_side, [&] { adam->step(); });
            std::function<void()> t_step;
#ifdef XGRAD_BENCH_TORCH
            auto tp = to_torch(p.data()).requires_grad_();
            tp.mutable_grad() = to_torch(p.grad().data());
            std::unique_ptr<torch::optim::Optimizer> tadam;
            if (decoupled) tadam = std::make_unique<torch::optim::AdamW>(std::vector<torch::Tensor>{tp});
            else tadam = std::make_unique<torch::optim::Adam>(std::vector<torch::Tensor>{tp});
            t_step = [&] { tadam->step(); };
#endif
            auto [x, t] = run(x_step, t_step);
            const std::string name = std::string("W3 ") + (decoupled ? "AdamW" : "Adam") + " N=" + (n == 100000 ? "100k" : "10M");
            print({name, threads, x, t, xgrad_side ? limits::adam_floor(n) : 0.0, "Adam's traffic"}, xgrad_side, torch_side);
        }

        // W4 / W5: a full training step: zero_grad, forward, loss, backward, Adam step, read the loss
        for (int which : {4, 5}) {
            if (!wanted(which == 4 ? "W4" : "W5")) continue;
            const auto& s = which == 4 ? workloads::w4 : workloads::w5;
            manual_seed(6);
            XLm model(s);
            optim::Adam adam(model.parameters());
            const IdArray x_ids = workloads::random_ids(s.vocab, s.batch, s.time, 7);
            const IdArray y_ids = workloads::random_ids(s.vocab, s.batch, s.time, 8);
            const IdArray positions = xt::arange<std::int64_t>(static_cast<std::int64_t>(s.time));
            float sink = 0;
            auto x_step = side(xgrad_side, [&] {
                adam.zero_grad();
                Tensor loss = model.loss(x_ids, positions, y_ids);
                loss.backward();
                adam.step();
                sink += loss.item();
            });
            std::function<void()> t_step;
#ifdef XGRAD_BENCH_TORCH
            TLm tmodel(model, s);
            torch::optim::Adam tadam(tmodel->parameters(), torch::optim::AdamOptions(1e-3));
            auto tx = to_torch(x_ids), ty = to_torch(y_ids), tpos = to_torch(positions);
            t_step = [&] {
                tadam.zero_grad();
                auto loss = tmodel->loss(tx, tpos, ty);
                loss.backward();
                tadam.step();
                sink += loss.item<float>();
            };
#endif
            auto [x, t] = run(x_step, t_step);
            std::vector<std::pair<std::size_t, std::size_t>> layers = {{s.channels, s.vocab}};   // the head
            if (s.hidden) layers.insert(layers.begin(), {{s.channels, s.hidden}, {s.hidden, s.channels}});
            const double floor = xgrad_side ? limits::sgemm_floor(limits::linear_products(s.batch * s.time, layers)) : 0.0;
            print({which == 4 ? "W4 toy LM step" : "W5 MLP LM step", threads, x, t, floor, "sgemm floor"}, xgrad_side,
                  torch_side);
            if (sink == 12345.0f) std::printf(" ");
        }
    }
}
