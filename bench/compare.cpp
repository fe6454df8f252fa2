// bench_compare: xgrad against libtorch on the same workloads and data, with the machine's limits
// (machine_limits.h) measured in the same run. Every round runs in a fresh child process of this program,
// alternating sides (xgrad, libtorch, xgrad, libtorch, ...): libtorch's OpenMP and OpenBLAS threads
// keep spinning or yielding after its loops, and in a shared process they slow the other side's
// threads (and vice versa), so the two never share a process. Each child builds the workload, warms
// up, and times one round of about 100 ms. See BENCHMARKS.md.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef XGRAD_BENCH_TORCH
#include <torch/torch.h>
#endif

#include "machine_limits.h"
#ifdef XGRAD_BENCH_TORCH
#include "torch_gpt.h"
#endif
#include "train_gpt/model.h"
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

// A warm-up of at least twelve calls and about 50 ms, then one round of about 100 ms: seconds and
// page faults per iteration. (The heap of a W5 step keeps growing, and faulting, for about ten
// steps before every size it needs has a place: 21,781 faults in step 1, 0 from step 11 on.)
Sample one_round(const std::function<void()>& fn)
{
    fn();
    const double once = std::max(time_iterations(fn, 1).seconds, 1e-7);
    time_iterations(fn, std::max(10, static_cast<int>(0.05 / once)));
    return time_iterations(fn, std::max(1, static_cast<int>(0.1 / once)));
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
        if (fc1) h = h + fc2->forward(gelu(fc1->forward(h), "tanh"));
        return nn::functional::cross_entropy(head->forward(h), y);
    }
    std::shared_ptr<nn::Embedding> tok, pos;
    std::shared_ptr<nn::Linear> fc1, fc2, head;
};

#ifdef XGRAD_BENCH_TORCH
// ---- the libtorch side ------------------------------------------------------------------------------------------------
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
        tok->weight.copy_(to_torch(x.tok->weight.to_array()));
        pos->weight.copy_(to_torch(x.pos->weight.to_array()));
        head->weight.copy_(to_torch(x.head->weight.to_array()));
        head->bias.copy_(to_torch(x.head->bias.to_array()));
        if (hidden) {
            fc1->weight.copy_(to_torch(x.fc1->weight.to_array()));
            fc1->bias.copy_(to_torch(x.fc1->bias.to_array()));
            fc2->weight.copy_(to_torch(x.fc2->weight.to_array()));
            fc2->bias.copy_(to_torch(x.fc2->bias.to_array()));
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

// ---- one round of one workload on one side (run in a child process) --------------------------------------------
// Workloads: W1, W2 (dense), W2s (sparse, xgrad only), W3 (Adam, 100k), W3L (Adam, 10M), W3W (AdamW,
// 10M), W4, W5, W6 (attention: xgrad's fused kernel against libtorch's composed path). With `floor`, the xgrad side also measures the workload's limit (machine_limits.h); the
// driver keeps the best floor of all rounds, since a limit is what the machine can do at its best.
struct Result {
    Sample sample;
    double floor = 0;
};

Result run_round(const std::string& side, const std::string& w, int threads, bool floor)
{
    const bool x_side = side == "xgrad";
    set_num_threads(threads);
#ifdef XGRAD_BENCH_TORCH
    torch::set_num_threads(threads);
#else
    if (!x_side) throw std::runtime_error("libtorch was not found when bench_compare was configured");
#endif
    Result r;
    if (w == "W1" || w == "W2" || w == "W2s") {   // tok(ids) + pos(arange(T)), fixed upstream, grads zeroed
        const auto& s = w == "W1" ? workloads::w1 : workloads::w2;
        const bool sparse = w == "W2s";
        const IdArray ids = workloads::random_ids(s.vocab, s.batch, s.time, 2);
        const IdArray positions = xt::arange<std::int64_t>(static_cast<std::int64_t>(s.time));
        const Array upstream = workloads::random_array({s.batch, s.time, s.channels}, 3);
        if (x_side) {
            manual_seed(1);
            nn::Embedding tok(s.vocab, s.channels, nn::EmbeddingOptions().sparse(sparse)), pos(s.positions, s.channels);
            const Tensor up(upstream);
            r.sample = one_round([&] {
                tok.zero_grad(false), pos.zero_grad(false);
                (tok.forward(ids) + pos.forward(positions)).backward(up);
            });
            if (floor) r.floor = limits::embedding_floor(s, ids, sparse);
        }
#ifdef XGRAD_BENCH_TORCH
        else {
            torch::nn::Embedding tok(s.vocab, s.channels), pos(s.positions, s.channels);
            auto tids = to_torch(ids), tpositions = to_torch(positions), tup = to_torch(upstream);
            r.sample = one_round([&] {
                tok->zero_grad(), pos->zero_grad();
                (tok(tids) + pos(tpositions)).backward(tup);
            });
        }
#endif
    } else if (w == "W3" || w == "W3L" || w == "W3W") {   // one Adam (AdamW) step over N floats, fixed gradients
        const std::size_t n = w == "W3" ? 100000 : 10000000;
        const bool decoupled = w == "W3W";
        const Array values = workloads::random_array({n}, 4), grads = workloads::random_array({n}, 5);
        if (x_side) {
            Tensor p(values, true);
            p.set_grad(Tensor(grads));
            std::unique_ptr<optim::Optimizer> adam;
            if (decoupled) adam = std::make_unique<optim::AdamW>(std::vector<Tensor>{p});
            else adam = std::make_unique<optim::Adam>(std::vector<Tensor>{p});
            r.sample = one_round([&] { adam->step(); });
            if (floor) r.floor = limits::adam_floor(n);
        }
#ifdef XGRAD_BENCH_TORCH
        else {
            auto p = to_torch(values).requires_grad_();
            p.mutable_grad() = to_torch(grads);
            std::unique_ptr<torch::optim::Optimizer> adam;
            if (decoupled) adam = std::make_unique<torch::optim::AdamW>(std::vector<torch::Tensor>{p});
            else adam = std::make_unique<torch::optim::Adam>(std::vector<torch::Tensor>{p});
            r.sample = one_round([&] { adam->step(); });
        }
#endif
    } else if (w == "W6") {   // attention core: causal softmax(q k^T / sqrt(hs)) v, forward and backward
        const auto& s = workloads::w6;
        const Shape shape{s.batch, s.heads, s.time, s.head_size};
        const Array q = workloads::random_array(shape, 9), k = workloads::random_array(shape, 10);
        const Array v = workloads::random_array(shape, 11), upstream = workloads::random_array(shape, 12);
        if (x_side) {
            Tensor tq(q, true), tk(k, true), tv(v, true);
            const Tensor up(upstream);
            r.sample = one_round([&] {
                tq.zero_grad(false), tk.zero_grad(false), tv.zero_grad(false);
                scaled_dot_product_attention(tq, tk, tv, AttentionOptions().is_causal(true)).backward(up);
            });
            if (floor) {   // the six products of the composed path, over the whole (T, T), per (batch, head)
                const std::size_t T = s.time, hs = s.head_size;
                std::vector<limits::Gemm> gemms;
                for (std::size_t i = 0; i < s.batch * s.heads; ++i) {
                    gemms.insert(gemms.end(), {{T, T, hs, false, true}, {T, hs, T, false, false},    // q k^T, att v
                                               {T, T, hs, false, true}, {T, hs, T, true, false},     // g v^T, att^T g
                                               {T, hs, T, false, false}, {T, hs, T, true, false}});  // dS k, dS^T q
                }
                r.floor = limits::sgemm_floor(gemms);
            }
        }
#ifdef XGRAD_BENCH_TORCH
        else {   // nanoGPT's slow path, all libtorch 1.13 has on CPU for training
            auto tq = to_torch(q).requires_grad_(), tk = to_torch(k).requires_grad_(), tv = to_torch(v).requires_grad_();
            auto tup = to_torch(upstream);
            const auto T = static_cast<std::int64_t>(s.time);
            auto mask = torch::ones({T, T}).tril();
            const double scale = 1.0 / std::sqrt(double(s.head_size));
            r.sample = one_round([&] {
                tq.mutable_grad() = torch::Tensor(), tk.mutable_grad() = torch::Tensor(), tv.mutable_grad() = torch::Tensor();
                auto att = torch::matmul(tq, tk.transpose(-2, -1)) * scale;
                att = torch::softmax(att.masked_fill(mask == 0, -INFINITY), -1);
                torch::matmul(att, tv).backward(tup);
            });
        }
#endif
    } else if (w == "W7" || w == "W7L") {   // a GPT training step: zero_grad, forward, loss, backward, clip, AdamW
        const auto& s = w == "W7" ? workloads::w7 : workloads::w7l;
        manual_seed(13);
        Gpt model({s.vocab, s.time, s.layers, s.heads, s.channels, 0.0f});
        const IdArray x_ids = workloads::random_ids(s.vocab, s.batch, s.time, 14);
        const IdArray y_ids = workloads::random_ids(s.vocab, s.batch, s.time, 15);
        float sink = 0;
        if (x_side) {
            std::vector<Tensor> decay, no_decay;
            for (const auto& p : model.parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
            optim::AdamW adamw({{decay, {}}, {no_decay, optim::GroupOptions().weight_decay(0.0)}},
                               optim::AdamWOptions().lr(1e-3).betas(0.9, 0.99).weight_decay(0.1));
            r.sample = one_round([&] {
                adamw.zero_grad();
                Tensor loss = nn::functional::cross_entropy(model.forward(x_ids), y_ids);
                loss.backward();
                optim::clip_grad_norm(model.parameters(), 1.0);
                adamw.step();
                sink += loss.item();
            });
            if (floor) {   // per block: c_attn, c_proj, c_fc, mlp c_proj; the tied head; and attention's four
                const std::size_t rows = s.batch * s.time, C = s.channels, T = s.time, hs = C / s.heads;
                std::vector<std::pair<std::size_t, std::size_t>> layers;
                for (std::size_t l = 0; l < s.layers; ++l) layers.insert(layers.end(), {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}});
                layers.push_back({C, s.vocab});
                std::vector<limits::Gemm> gemms = limits::linear_products(rows, layers);
                for (std::size_t i = 0; i < s.layers * s.batch * s.heads; ++i) {
                    gemms.insert(gemms.end(), {{T, T, hs, false, true}, {T, hs, T, false, false}, {T, T, hs, false, true},
                                               {T, hs, T, true, false}, {T, hs, T, false, false}, {T, hs, T, true, false}});
                }
                r.floor = limits::sgemm_floor(gemms);
            }
        }
#ifdef XGRAD_BENCH_TORCH
        else {
            TGpt tmodel(model, s);
            std::vector<torch::Tensor> decay, no_decay;
            for (auto& p : tmodel->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
            std::vector<torch::optim::OptimizerParamGroup> groups;
            groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                           torch::optim::AdamWOptions(1e-3).betas({0.9, 0.99}).weight_decay(0.1)));
            groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                              torch::optim::AdamWOptions(1e-3).betas({0.9, 0.99}).weight_decay(0.0)));
            torch::optim::AdamW adamw(std::move(groups));
            auto tx = to_torch(x_ids), ty = to_torch(y_ids);
            r.sample = one_round([&] {
                adamw.zero_grad();
                auto loss = tmodel->loss(tx, ty);
                loss.backward();
                torch::nn::utils::clip_grad_norm_(tmodel->parameters(), 1.0);
                adamw.step();
                sink += loss.item<float>();
            });
        }
#endif
        if (sink == 12345.0f) std::fprintf(stderr, " ");
    } else {   // W4 / W5: zero_grad, forward, loss, backward, Adam step, read the loss
        const auto& s = w == "W4" ? workloads::w4 : workloads::w5;
        manual_seed(6);
        XLm model(s);   // the torch side copies its initial weights
        const IdArray x_ids = workloads::random_ids(s.vocab, s.batch, s.time, 7);
        const IdArray y_ids = workloads::random_ids(s.vocab, s.batch, s.time, 8);
        const IdArray positions = xt::arange<std::int64_t>(static_cast<std::int64_t>(s.time));
        float sink = 0;
        if (x_side) {
            optim::Adam adam(model.parameters());
            r.sample = one_round([&] {
                adam.zero_grad();
                Tensor loss = model.loss(x_ids, positions, y_ids);
                loss.backward();
                adam.step();
                sink += loss.item();
            });
            if (floor) {
                std::vector<std::pair<std::size_t, std::size_t>> layers = {{s.channels, s.vocab}};   // the head
                if (s.hidden) layers.insert(layers.begin(), {{s.channels, s.hidden}, {s.hidden, s.channels}});
                r.floor = limits::sgemm_floor(limits::linear_products(s.batch * s.time, layers));
            }
        }
#ifdef XGRAD_BENCH_TORCH
        else {
            TLm tmodel(model, s);
            torch::optim::Adam adam(tmodel->parameters(), torch::optim::AdamOptions(1e-3));
            auto tx = to_torch(x_ids), ty = to_torch(y_ids), tpos = to_torch(positions);
            r.sample = one_round([&] {
                adam.zero_grad();
                auto loss = tmodel->loss(tx, tpos, ty);
                loss.backward();
                adam.step();
                sink += loss.item<float>();
            });
        }
#endif
        if (sink == 12345.0f) std::fprintf(stderr, " ");
    }
    return r;
}

// ---- the driver: alternating child processes ---------------------------------------------------------------------
// Runs `bench_compare --child SIDE WORKLOAD THREADS FLOOR` with OMP_WAIT_POLICY set to `omp_policy`
// (or unset when empty) and reads its one line of results.
Result child_round(const std::string& side, const std::string& w, int threads, bool floor, const std::string& omp_policy)
{
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("bench_compare: pipe failed");
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(out[1], STDOUT_FILENO);
        ::close(out[0]);
        ::close(out[1]);
        if (omp_policy.empty()) ::unsetenv("OMP_WAIT_POLICY");
        else ::setenv("OMP_WAIT_POLICY", omp_policy.c_str(), 1);
        const std::string t = std::to_string(threads), f = floor ? "1" : "0";
        ::execl("/proc/self/exe", "bench_compare", "--child", side.c_str(), w.c_str(), t.c_str(), f.c_str(), nullptr);
        std::_Exit(127);
    }
    ::close(out[1]);
    std::string text;
    char buffer[256];
    for (ssize_t got; (got = ::read(out[0], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(got));
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    Result r;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        std::sscanf(text.c_str(), "%lf %lf %lf", &r.sample.seconds, &r.sample.faults, &r.floor) != 3) {
        throw std::runtime_error("bench_compare: the " + side + " round of " + w + " failed");
    }
    return r;
}

void print_times(const Summary& s)
{
    std::printf("  %9.3f ms [%7.3f-%8.3f] %7.1f", s.median * 1e3, s.low * 1e3, s.high * 1e3, s.faults);
}

}  // namespace

int main(int argc, char** argv)
{
    if (argc == 6 && std::string(argv[1]) == "--child") {
        try {
            const Result r = run_round(argv[2], argv[3], std::atoi(argv[4]), std::string(argv[5]) == "1");
            std::printf("%.9g %.9g %.9g\n", r.sample.seconds, r.sample.faults, r.floor);
            return 0;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s\n", e.what());
            return 1;
        }
    }
    // bench_compare [--quick] [--only W1,W4,...] [--threads 1,2]
    bool quick = false;
    std::string only, threads_list = "1,2";
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--quick") quick = true;
        else if (arg == "--only" && i + 1 < argc) only = argv[++i];
        else if (arg == "--threads" && i + 1 < argc) threads_list = argv[++i];
        else {
            std::fprintf(stderr, "bench_compare: unknown argument '%s'; expected --quick, --only W1,W2,... or --threads 1,2\n",
                         arg.c_str());
            return 2;
        }
    }
    const int repeats = quick ? 3 : 7;
#ifdef XGRAD_BENCH_TORCH
    const bool torch_side = true;
#else
    const bool torch_side = false;
    std::printf("(libtorch not found at configure time: xgrad columns only)\n");
#endif
    struct Workload {
        const char* id;
        const char* torch_id;   // the libtorch run it is compared with (sparse: libtorch's dense)
        const char* name;
        const char* floor_kind;
    };
    const std::vector<Workload> list = {
        {"W1", "W1", "W1 seed embedding", "fused loops"},
        {"W2", "W2", "W2 large embedding, dense", "fused loops"},
        {"W2s", "W2", "W2 large embedding, sparse", "fused loops"},
        {"W3", "W3", "W3 Adam N=100k", "Adam's traffic"},
        {"W3L", "W3L", "W3 Adam N=10M", "Adam's traffic"},
        {"W3W", "W3W", "W3 AdamW N=10M", "Adam's traffic"},
        {"W4", "W4", "W4 toy LM step", "sgemm floor"},
        {"W5", "W5", "W5 MLP LM step", "sgemm floor"},
        {"W6", "W6", "W6 attention core, causal", "6 products"},
        {"W7", "W7", "W7 GPT step (nanoGPT CPU)", "sgemm floor"},
        {"W7L", "W7L", "W7 GPT step, T 128 B 32", "sgemm floor"},
    };
    std::printf("%-28s %2s  %-31s %7s", "workload", "th", "xgrad median [min-max]", "flt/it");
    if (torch_side) std::printf("  %-31s %7s  %7s", "libtorch median [min-max]", "flt/it", "ratio");
    std::printf("  limit reached\n");
    try {
        for (int threads : {1, 2}) {
            if (threads_list.find(char('0' + threads)) == std::string::npos) continue;
            std::printf("-- %d thread%s: DRAM copy bandwidth %.1f GB/s (read + write, 256 MiB)%s\n", threads,
                        threads > 1 ? "s" : "", (set_num_threads(threads), limits::copy_bandwidth()) / 1e9,
                        threads > 1 && torch_side ? "; libtorch with OMP_WAIT_POLICY=passive, then its default" : "");
            for (const auto& w : list) {
                if (!only.empty() && only.find(std::string(w.id).substr(0, 2)) == std::string::npos) continue;
                // at 2 threads libtorch runs twice: passive OpenMP waiting, then its default (spinning)
                const bool both_policies = torch_side && threads > 1;
                std::vector<Sample> xs, ts, ts_default;
                double floor = 0;
                for (int r = 0; r < repeats; ++r) {
                    const Result x = child_round("xgrad", w.id, threads, true, "");
                    xs.push_back(x.sample);
                    floor = r == 0 ? x.floor : std::min(floor, x.floor);
                    if (torch_side) ts.push_back(child_round("torch", w.torch_id, threads, false, both_policies ? "passive" : "").sample);
                    if (both_policies) ts_default.push_back(child_round("torch", w.torch_id, threads, false, "").sample);
                }
                const Summary x = summarise(xs);
                std::printf("%-28s %2d", w.name, threads);
                print_times(x);
                if (torch_side) {
                    const Summary t = summarise(ts);
                    print_times(t);
                    std::printf("  %6.2fx", t.median / x.median);
                }
                if (floor > 0) std::printf("  %4.0f%% of %s (%.3f ms)", 100.0 * floor / x.median, w.floor_kind, floor * 1e3);
                if (both_policies) {
                    const Summary t = summarise(ts_default);
                    std::printf("\n%-28s %2s %40s", "", "", "libtorch, default OpenMP waiting:");
                    print_times(t);
                    std::printf("  %6.2fx", t.median / x.median);
                }
                std::printf("\n");
                std::fflush(stdout);
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
