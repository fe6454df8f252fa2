// The data-parallel tests, run by CTest under `mpirun -np N test_ddp <scenario>` (tests/CMakeLists.txt).
// Not Catch2: a failed check on one rank must end every rank at once (a rank that left a test case
// while the others wait in its collectives would hang the job), so a failure prints and aborts.
//
// Every scenario compares against an oracle computed in the same process without MPI: the same model
// trained by one process on the union of every rank's batches (the batches of all ranks are drawn
// from (step, rank) alone, so every rank can rebuild them all).
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "distributed/ddp.h"
#include "distributed/distributed.h"
#include "distributed/zero.h"
#include "train_gpt/model.h"
#include "xgrad.h"

using namespace xgrad;
namespace dist = xgrad::distributed;

namespace {

std::string scenario;

template <class... Parts>
void check(bool ok, const Parts&... parts)
{
    if (ok) return;
    std::fflush(stdout);
    std::ostringstream out;
    (out << ... << parts);
    std::fprintf(stderr, "test_ddp %s: %s: FAILED: %s\n", scenario.c_str(), dist::rank_name().c_str(), out.str().c_str());
    std::fflush(stderr);
    dist::abort(1);
}

const GptConfig tiny = {13, 8, 2, 2, 16, 0.0f};   // vocab, block_size, n_layer, n_head, n_embd, dropout
constexpr std::size_t B = 3;                      // sequences per rank per step

// The batch rank r trains on at `step`: from (step, r) alone
text::Batch batch_of(std::size_t step, int r, std::size_t batch = B)
{
    Generator rng(1000 + 31 * step + 7 * static_cast<std::uint64_t>(r));
    text::Batch b{IdArray(Shape{batch, tiny.block_size}), IdArray(Shape{batch, tiny.block_size})};
    for (auto& id : b.x) id = static_cast<std::int64_t>(rng.below(tiny.vocab));
    for (auto& id : b.y) id = static_cast<std::int64_t>(rng.below(tiny.vocab));
    return b;
}

// Every rank's batch of `step`, one after another: what one process sees in the union
text::Batch union_of(std::size_t step, int ranks)
{
    text::Batch all{IdArray(Shape{B * static_cast<std::size_t>(ranks), tiny.block_size}),
                    IdArray(Shape{B * static_cast<std::size_t>(ranks), tiny.block_size})};
    for (int r = 0; r < ranks; ++r) {
        const text::Batch b = batch_of(step, r);
        std::copy(b.x.begin(), b.x.end(), all.x.begin() + static_cast<std::ptrdiff_t>(B * tiny.block_size * static_cast<std::size_t>(r)));
        std::copy(b.y.begin(), b.y.end(), all.y.begin() + static_cast<std::ptrdiff_t>(B * tiny.block_size * static_cast<std::size_t>(r)));
    }
    return all;
}

std::unique_ptr<optim::AdamW> adamw_for(const nn::Module& model)
{
    std::vector<Tensor> decay, no_decay;
    for (const auto& p : model.parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    return std::make_unique<optim::AdamW>(std::vector<optim::ParamGroup>{{decay, {}}, {no_decay, optim::GroupOptions().weight_decay(0.0)}},
                                          optim::AdamWOptions().lr(1e-2).weight_decay(0.1));
}

float max_difference(const nn::Module& a, const nn::Module& b)
{
    float worst = 0;
    const auto pa = a.parameters(), pb = b.parameters();
    for (std::size_t i = 0; i < pa.size(); ++i) {
        for (std::size_t j = 0; j < pa[i].numel(); ++j) worst = std::max(worst, std::abs(pa[i].data_ptr()[j] - pb[i].data_ptr()[j]));
    }
    return worst;
}

// Every gradient of `model` within 1e-6 of its largest entry of the same gradient of `single` (the
// oracle: one process on the union of the ranks' batches); the summation order differs, nothing else.
// t's values replaced by `values`, outside autograd
void assign(const Tensor& t, const Array& values)
{
    NoGradGuard no_grad;
    t.copy_(Tensor(values));
}

void check_grads_match(const nn::Module& model, const nn::Module& single, const char* what)
{
    const auto ours = model.named_parameters(), theirs = single.named_parameters();
    for (std::size_t i = 0; i < ours.size(); ++i) {
        const Array &g = ours[i].second.grad().to_array(), &expected = theirs[i].second.grad().to_array();
        float diff = 0, largest = 0;
        for (std::size_t j = 0; j < g.size(); ++j) {
            diff = std::max(diff, std::abs(g.data()[j] - expected.data()[j])), largest = std::max(largest, std::abs(expected.data()[j]));
        }
        check(diff <= 1e-6f * largest, ours[i].first, ": ", what, " differs from one process's on the union by ", diff,
              " (tolerance 1e-6 of its largest entry, ", largest, ")");
    }
}

// Every rank holds bitwise the same parameters
void check_same_on_every_rank(const nn::Module& model, const char* when)
{
    for (const auto& [name, p] : model.named_parameters()) {
        const auto all = dist::all_gather(p);
        for (std::size_t r = 1; r < all.size(); ++r) {
            check(std::memcmp(all[r].data_ptr(), all[0].data_ptr(), p.numel() * sizeof(float)) == 0, when, ": ", name,
                  " differs between rank 0 and rank ", r);
        }
    }
}

// k DDP steps of the tiny GPT (AdamW, clip 1.0): returns the model. Ranks start from different
// weights on purpose: the constructor's broadcast must make them rank 0's.
std::unique_ptr<Gpt> train_ddp(std::size_t steps, dist::DdpOptions options, bool zero = false,
                               std::size_t* state_bytes = nullptr, std::size_t* live_after_step = nullptr,
                               const std::string& save_to = "")
{
    manual_seed(7 + static_cast<std::uint64_t>(dist::rank()));
    auto model = std::make_unique<Gpt>(tiny);
    dist::DistributedDataParallel ddp(*model, options);
    std::unique_ptr<optim::Optimizer> opt;
    if (zero) {
        std::vector<Tensor> decay, no_decay;
        for (const auto& p : model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
        opt = std::make_unique<dist::ZeroRedundancyOptimizer>(
            std::vector<optim::ParamGroup>{{decay, {}}, {no_decay, optim::GroupOptions().weight_decay(0.0)}},
            [](std::vector<optim::ParamGroup> mine) {
                return std::make_unique<optim::AdamW>(std::move(mine), optim::AdamWOptions().lr(1e-2).weight_decay(0.1));
            });
    } else {
        opt = adamw_for(*model);
    }
    for (std::size_t step = 0; step < steps; ++step) {
        const text::Batch b = batch_of(step, dist::rank());
        opt->zero_grad();
        nn::functional::cross_entropy(model->forward(b.x), b.y).backward();
        ddp.synchronize();
        optim::clip_grad_norm(model->parameters(), 1.0);
        const std::size_t live_before = live_storage_bytes();
        opt->step();
        if (step == 0 && live_after_step) *live_after_step = live_storage_bytes() - live_before;
    }
    if (state_bytes) {
        *state_bytes = zero ? static_cast<dist::ZeroRedundancyOptimizer&>(*opt).local_state_bytes() : 0;
    }
    if (!save_to.empty()) {   // every rank calls save_state (ZeRO's gathers); rank 0 writes
        io::NamedTensors tensors;
        io::Metadata metadata;
        const auto named = model->named_parameters();
        for (const auto& [name, p] : named) tensors.emplace_back(name, p);
        opt->save_state(tensors, metadata);
        if (dist::rank() == 0) io::save_safetensors(save_to, tensors, metadata);
    }
    return model;
}

// The oracle: one process, rank 0's initial weights, every step on the union of the ranks' batches
std::unique_ptr<Gpt> train_single(std::size_t steps, int ranks)
{
    manual_seed(7);
    auto model = std::make_unique<Gpt>(tiny);
    auto opt = adamw_for(*model);
    for (std::size_t step = 0; step < steps; ++step) {
        const text::Batch b = union_of(step, ranks);
        opt->zero_grad();
        nn::functional::cross_entropy(model->forward(b.x), b.y).backward();
        optim::clip_grad_norm(model->parameters(), 1.0);
        opt->step();
    }
    return model;
}

// ---- the scenarios ----------------------------------------------------------------------------------

void collectives()
{
    const int r = dist::rank(), N = dist::world_size();
    Tensor t = full({2, 3}, static_cast<float>(r + 1));
    dist::all_reduce(t);
    const float sum = static_cast<float>(N * (N + 1) / 2);
    for (float v : t.to_array()) check(v == sum, "all_reduce SUM gave ", v, ", expected ", sum);
    Tensor a = full({4}, static_cast<float>(r + 1));
    dist::all_reduce(a, dist::ReduceOp::AVG);
    for (float v : a.to_array()) check(v == sum / static_cast<float>(N), "all_reduce AVG gave ", v, ", expected ", sum / static_cast<float>(N));
    Tensor b = full({3}, static_cast<float>(10 * r));
    dist::broadcast(b, N - 1);
    for (float v : b.to_array()) check(v == static_cast<float>(10 * (N - 1)), "broadcast from the last rank gave ", v);
    const auto gathered = dist::all_gather(full({2}, static_cast<float>(r)));
    check(gathered.size() == static_cast<std::size_t>(N), "all_gather gave ", gathered.size(), " tensors for ", N, " ranks");
    for (int q = 0; q < N; ++q) check(gathered[static_cast<std::size_t>(q)].to_array()(1) == static_cast<float>(q), "all_gather's tensor ", q, " is wrong");
    dist::barrier();
    std::printf("collectives: all_reduce (SUM, AVG), broadcast, all_gather and barrier on %d ranks agree\n", N);
}

// DDP on N ranks equals one process on the union of the batches, to float rounding
void equals_single_process()
{
    // The gradients of the first step: the only difference is the order of float additions (the union
    // sums B N T rows in one product, DDP B T rows per rank and then the ranks), a few ulp of each
    // tensor's largest entry. 1e-6 of it is ten times what was measured (1e-7), and a gradient that
    // missed the average or a rank's batch would be off by 10% or more.
    {
        manual_seed(7);
        Gpt model(tiny), single(tiny);
        for (std::size_t i = 0; i < model.parameters().size(); ++i) assign(single.parameters()[i], model.parameters()[i].to_array());
        dist::DistributedDataParallel ddp(model);
        const text::Batch mine = batch_of(0, dist::rank()), all = union_of(0, dist::world_size());
        nn::functional::cross_entropy(model.forward(mine.x), mine.y).backward();
        ddp.synchronize();
        nn::functional::cross_entropy(single.forward(all.x), all.y).backward();
        check_grads_match(model, single, "the averaged gradient");
    }
    // The parameters after 4 AdamW steps (lr 1e-2, clip 1.0). Adam divides each entry by its own
    // sqrt(v): an entry whose gradient is near zero (1e-9, where rounding is relatively large) still
    // moves by up to lr, so the rounding shows up in the weights at up to lr x its relative size, and
    // the two runs then drift apart a little more each step (measured: 9e-7 after 1 step, 1.1e-5 after
    // 4). 5e-5 bounds that; the same check against another union of batches (below) gives > 1e-3.
    const std::size_t steps = 4;
    const auto ddp = train_ddp(steps, dist::DdpOptions().bucket_cap_mb(0.004).first_bucket_mb(0.002));
    check_same_on_every_rank(*ddp, "after the DDP steps");
    const auto single = train_single(steps, dist::world_size());
    const float diff = max_difference(*ddp, *single);
    check(diff <= 5e-5f, "after ", steps, " steps DDP and the single process differ by ", diff, " (tolerance 5e-5)");
    const auto other = train_single(steps, dist::world_size() + 1);   // an oracle that must fail
    const float wrong = max_difference(*ddp, *other);
    check(wrong > 1e-3f, "the check cannot tell a different union of batches apart: difference ", wrong);
    if (dist::rank() == 0) {
        std::printf("equals_single_process: %d ranks: first-step gradients within 1e-6 of each tensor's largest entry; after %zu "
                    "steps max |DDP - single process| = %.3g (tolerance 5e-5); against another union of batches %.3g\n",
                    dist::world_size(), steps, diff, wrong);
    }
}

void bitwise_twice()
{
    const auto options = dist::DdpOptions().bucket_cap_mb(0.004).first_bucket_mb(0.002);
    const auto first = train_ddp(4, options), second = train_ddp(4, options);
    const float diff = max_difference(*first, *second);
    check(diff == 0.0f, "the same run twice differs by ", diff);
    check_same_on_every_rank(*first, "after the first run");
    if (dist::rank() == 0) std::printf("bitwise_twice: two runs of 4 steps on %d ranks are bitwise identical\n", dist::world_size());
}

// An embedding table with a sparse (row) gradient and one without, same weights and batches
struct SparseLM : nn::Module {
    explicit SparseLM(bool sparse)
    {
        emb = register_module("emb", std::make_shared<nn::Embedding>(50, 8, nn::EmbeddingOptions().sparse(sparse)));
        head = register_module("head", std::make_shared<nn::Linear>(8, 50));
    }
    Tensor forward(const IdArray& x) const { return head->forward(emb->forward(x)); }
    std::shared_ptr<nn::Embedding> emb;
    std::shared_ptr<nn::Linear> head;
};

text::Batch sparse_batch(std::size_t step, int r)
{
    Generator rng(500 + 13 * step + static_cast<std::uint64_t>(r));
    text::Batch b{IdArray(Shape{2, 5}), IdArray(Shape{2, 5})};
    for (auto& id : b.x) id = static_cast<std::int64_t>(rng.below(20 + 10 * static_cast<std::uint64_t>(r)));   // overlapping rows
    for (auto& id : b.y) id = static_cast<std::int64_t>(rng.below(50));
    return b;
}

void sparse_agrees_with_dense()
{
    const int N = dist::world_size();
    manual_seed(3);
    SparseLM sparse(true), dense(false), single(true);
    for (auto* m : {&dense, &single}) {
        for (std::size_t i = 0; i < sparse.parameters().size(); ++i) assign(m->parameters()[i], sparse.parameters()[i].to_array());
    }
    dist::DistributedDataParallel ddp_sparse(sparse), ddp_dense(dense);
    optim::SparseAdam sparse_adam({sparse.emb->weight});
    optim::Adam sparse_head({sparse.head->weight, sparse.head->bias});
    optim::SparseAdam single_adam({single.emb->weight});
    optim::Adam single_head({single.head->weight, single.head->bias});
    for (std::size_t step = 0; step < 3; ++step) {
        const text::Batch b = sparse_batch(step, dist::rank());
        for (std::size_t i = 0; i < sparse.parameters().size(); ++i) assign(dense.parameters()[i], sparse.parameters()[i].to_array());
        for (auto* m : {&sparse, &dense}) {
            m->zero_grad();
            nn::functional::cross_entropy(m->forward(b.x), b.y).backward();
        }
        ddp_sparse.synchronize(), ddp_dense.synchronize();
        check(sparse.emb->weight.sparse_grad() != nullptr, "the sparse table's averaged gradient is not row-sparse");
        const Array from_sparse = sparse.emb->weight.sparse_grad()->to_dense(50);
        const Array& from_dense = dense.emb->weight.grad().to_array();
        float diff = 0;
        for (std::size_t i = 0; i < from_sparse.size(); ++i) diff = std::max(diff, std::abs(from_sparse.data()[i] - from_dense.data()[i]));
        // the same sums in another order (rank order row by row, against MPI's reduction order)
        check(diff <= 1e-7f, "step ", step, ": the gathered sparse gradient and the all-reduced dense one differ by ", diff);
        // the oracle: one process on the union, whose rows are the union of the ranks' rows
        text::Batch all{IdArray(Shape{2 * static_cast<std::size_t>(N), 5}), IdArray(Shape{2 * static_cast<std::size_t>(N), 5})};
        for (int r = 0; r < N; ++r) {
            const text::Batch part = sparse_batch(step, r);
            std::copy(part.x.begin(), part.x.end(), all.x.begin() + 10 * r), std::copy(part.y.begin(), part.y.end(), all.y.begin() + 10 * r);
        }
        single.zero_grad();
        nn::functional::cross_entropy(single.forward(all.x), all.y).backward();
        check(single.emb->weight.sparse_grad()->rows == sparse.emb->weight.sparse_grad()->rows, "step ", step,
              ": the gathered rows are not those of one process on the union");
        sparse_adam.step(), sparse_head.step(), single_adam.step(), single_head.step();
    }
    const float diff = max_difference(sparse, single);
    check(diff <= 1e-6f, "after 3 SparseAdam steps the sparse DDP run and the single process differ by ", diff);
    check_same_on_every_rank(sparse, "after the sparse steps");
    if (dist::rank() == 0) std::printf("sparse_agrees_with_dense: gathered rows = all-reduced dense gradient; 3 SparseAdam steps "
                                       "within %.3g of one process on the union\n", diff);
}

void zero_equals_ddp()
{
    const auto options = dist::DdpOptions().bucket_cap_mb(0.004).first_bucket_mb(0.002);
    std::size_t zero_bytes = 0, zero_live = 0, plain_live = 0;
    const auto plain = train_ddp(4, options, false, nullptr, &plain_live, "zero_test_plain.safetensors");
    const auto sharded = train_ddp(4, options, true, &zero_bytes, &zero_live, "zero_test_sharded.safetensors");
    const float diff = max_difference(*plain, *sharded);
    check(diff == 0.0f, "ZeRO-1 and plain DDP differ by ", diff, " after 4 steps; the step is AdamW's own, so they must not");
    const std::size_t full_bytes = 2 * sizeof(float) * plain->num_parameters();   // AdamW's exp_avg and exp_avg_sq
    const auto all_bytes = dist::all_gather(static_cast<std::int64_t>(zero_bytes));
    std::int64_t total = 0;
    for (auto b : all_bytes) total += b;
    check(total == static_cast<std::int64_t>(full_bytes), "the ranks' ZeRO state adds to ", total, " bytes, AdamW's is ", full_bytes);
    check(zero_bytes < full_bytes, "rank ", dist::rank(), " holds all of the optimizer state");
    if (dist::rank() == 0) {   // the gathered state is AdamW's own: the same file as plain DDP's, tensor for tensor
        const io::Safetensors a = io::load_safetensors("zero_test_plain.safetensors");
        const io::Safetensors b = io::load_safetensors("zero_test_sharded.safetensors");
        check(a.metadata == b.metadata, "the ZeRO checkpoint's metadata differs from plain AdamW's");
        std::map<std::string, const Tensor*> theirs;
        for (const auto& [name, values] : b.tensors) theirs[name] = &values;
        check(a.tensors.size() == b.tensors.size(), "the ZeRO checkpoint holds ", b.tensors.size(), " tensors, plain AdamW's ",
              a.tensors.size());
        for (const auto& [name, values] : a.tensors) {
            check(theirs.count(name) && theirs[name]->to_array() == values.to_array(), "the ZeRO checkpoint's ", name, " differs from plain AdamW's");
        }
        manual_seed(7);   // and one process with a plain AdamW loads it
        Gpt model(tiny);
        auto adamw = adamw_for(model);
        optim::load_checkpoint("zero_test_sharded.safetensors", model.named_parameters(), *adamw);
    }
    std::printf("zero_equals_ddp: rank %d holds %zu of %zu bytes of AdamW state (%.0f%%); its first step allocated %zu bytes "
                "against %zu for plain AdamW\n", dist::rank(), zero_bytes, full_bytes, 100.0 * double(zero_bytes) / double(full_bytes),
                zero_live, plain_live);
}

// Buckets finish while the backward is still running: a step's trace shows the first buckets (the
// last layers) completed before the last gradient (the first layer's) was ready. A bucket completes
// only once every rank has started it, so a rank that runs ahead (the other one descheduled, on a
// loaded machine) waits for it at the end of its backward, while the rank behind sees it done at
// once. So the test takes five steps, each started together (a barrier), and asks for a bucket done
// early on some rank in some step; it prints that step's trace.
void overlap_is_real()
{
    const GptConfig config = {13, 16, 4, 4, 64, 0.0f};
    manual_seed(5);
    Gpt model(config);
    dist::DistributedDataParallel ddp(model, dist::DdpOptions().bucket_cap_mb(0.05).first_bucket_mb(0.05).trace(true));
    check(ddp.num_buckets() >= 4, "expected at least 4 buckets, got ", ddp.num_buckets());
    Generator rng(9 + static_cast<std::uint64_t>(dist::rank()));
    IdArray x(Shape{16, config.block_size}), y(Shape{16, config.block_size});
    for (auto& id : x) id = static_cast<std::int64_t>(rng.below(config.vocab));
    for (auto& id : y) id = static_cast<std::int64_t>(rng.below(config.vocab));
    std::size_t best = 0;
    dist::StepTrace best_trace;
    for (int step = 0; step < 6; ++step) {   // the first is a warm-up
        model.zero_grad();
        dist::barrier();
        nn::functional::cross_entropy(model.forward(x), y).backward();   // synchronizes inside, at the last hook
        ddp.synchronize();                                              // a no-op now
        const dist::StepTrace& t = ddp.trace();
        check(t.buckets.size() == ddp.num_buckets(), "the trace holds ", t.buckets.size(), " buckets of ", ddp.num_buckets());
        std::size_t early = 0;
        for (const auto& b : t.buckets) early += b.completed < t.last_gradient_ready;
        if (step > 0 && (early > best || best_trace.buckets.empty())) best = early, best_trace = t;
    }
    const auto early_by_rank = dist::all_gather(static_cast<std::int64_t>(best));
    std::int64_t most = 0;
    int where = 0;
    for (int r = 0; r < dist::world_size(); ++r) {
        if (early_by_rank[static_cast<std::size_t>(r)] > most) most = early_by_rank[static_cast<std::size_t>(r)], where = r;
    }
    if (dist::rank() == where) {
        const dist::StepTrace& t = best_trace;
        std::printf("overlap_is_real: rank %d's best of 5 steps: %zu of %zu buckets done before the last gradient was ready "
                    "(%.3f ms after the first; synchronize returned at %.3f ms)\n", where, best, t.buckets.size(),
                    1e3 * t.last_gradient_ready, 1e3 * t.synchronized);
        for (const auto& b : t.buckets) {
            std::printf("  bucket %zu  %7zu bytes  started %.3f  completed %.3f%s\n", b.bucket, b.bytes, 1e3 * b.started,
                        1e3 * b.completed, b.completed < t.last_gradient_ready ? "  (before the backward ended)" : "");
        }
    }
    check(most >= 1, "in 5 steps no bucket completed before the last gradient was ready on any rank: communication did not "
                     "overlap the backward");
}

// no_sync(): the first micro-batch only accumulates locally; the second backward averages the sum
void no_sync_accumulates()
{
    const int N = dist::world_size();
    manual_seed(7);
    Gpt model(tiny), single(tiny);
    for (std::size_t i = 0; i < model.parameters().size(); ++i) assign(single.parameters()[i], model.parameters()[i].to_array());
    dist::DistributedDataParallel ddp(model);
    {
        auto guard = ddp.no_sync();
        const text::Batch b = batch_of(0, dist::rank());
        nn::functional::cross_entropy(model.forward(b.x), b.y).backward();
        ddp.synchronize();   // does nothing inside no_sync
        const auto grads = dist::all_gather(model.wte->weight.grad());
        check(std::memcmp(grads[0].data_ptr(), grads[1].data_ptr(), grads[0].numel() * sizeof(float)) != 0,
              "inside no_sync the ranks' gradients are already equal: something synchronized them");
    }
    const text::Batch b = batch_of(1, dist::rank());
    nn::functional::cross_entropy(model.forward(b.x), b.y).backward();
    ddp.synchronize();
    for (int r = 0; r < N; ++r) {   // the oracle: every rank's two micro-batches, each loss / N
        for (std::size_t micro = 0; micro < 2; ++micro) {
            const text::Batch part = batch_of(micro, r);
            (nn::functional::cross_entropy(single.forward(part.x), part.y) * (1.0f / static_cast<float>(N))).backward();
        }
    }
    check_grads_match(model, single, "the accumulated, averaged gradient");
    if (dist::rank() == 0) std::printf("no_sync_accumulates: two micro-batches, one synchronization, %d ranks: equals the oracle\n", N);
}

// A training loop with a checkpoint from rank 0 after every step, in which rank `who` fails at step 4:
// "throw" (the exception reaches main, which aborts the job) or "kill" (SIGKILL, as the OOM killer
// would; rank 0 is killed halfway through writing its next checkpoint).
void fault(const std::string& mode, int who, const std::string& folder)
{
    manual_seed(7);
    Gpt model(tiny);
    dist::DistributedDataParallel ddp(model);
    auto opt = adamw_for(model);
    const std::string path = folder + "/checkpoint.safetensors";
    for (std::size_t step = 0; step < 1000; ++step) {
        if (step == 4 && dist::rank() == who) {
            if (mode == "throw") throw std::runtime_error("an injected failure at step 4");
            if (dist::rank() == 0) {   // a torn write: half of the next checkpoint, then death
                io::NamedTensors tensors;
                const auto named = model.named_parameters();
                for (const auto& [name, p] : named) tensors.emplace_back(name, p);
                const std::string bytes = io::safetensors_bytes(tensors, {{"step", "999"}}, path);
                io::AtomicFile file(path, "checkpoint");
                file.write(bytes.data(), bytes.size() / 2);
                std::raise(SIGKILL);
            }
            std::raise(SIGKILL);
        }
        const text::Batch b = batch_of(step, dist::rank());
        opt->zero_grad();
        nn::functional::cross_entropy(model.forward(b.x), b.y).backward();
        ddp.synchronize();
        opt->step();
        if (dist::rank() == 0) optim::save_checkpoint(path, model.named_parameters(), *opt, {{"step", std::to_string(step + 1)}});
    }
}

// Rank 1 builds a wider model: DDP's constructor refuses it on every rank before any training
void mismatched_model()
{
    GptConfig config = tiny;
    if (dist::rank() == 1) config.n_embd = 24;
    Gpt model(config);
    dist::DistributedDataParallel ddp(model);   // throws, and main aborts the job with the message
    check(false, "DistributedDataParallel accepted a rank whose model differs from rank 0's");
}

// After a fault: the checkpoint is whole, and of step 4 or 3: rank 0 writes step 4's while rank 1 may
// already fail at step 4, so the abort may reach rank 0 during that write (run without mpirun).
int verify_checkpoint(const std::string& path)
{
    manual_seed(7);
    Gpt model(tiny);
    auto opt = adamw_for(model);
    const io::Metadata metadata = optim::load_checkpoint(path, model.named_parameters(), *opt);   // throws if torn
    const std::string step = metadata.at("step");
    if (step != "4" && step != "3") {
        std::fprintf(stderr, "verify_checkpoint: '%s' is of step %s, expected 4 or 3 (the last before the fault)\n", path.c_str(),
                     step.c_str());
        return 1;
    }
    std::printf("verify_checkpoint: '%s' is whole and of step %s, before the fault\n", path.c_str(), step.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    scenario = argc > 1 ? argv[1] : "";
    const std::map<std::string, std::function<void()>> scenarios = {
        {"collectives", collectives},
        {"equals_single_process", equals_single_process},
        {"bitwise_twice", bitwise_twice},
        {"sparse_agrees_with_dense", sparse_agrees_with_dense},
        {"zero_equals_ddp", zero_equals_ddp},
        {"overlap_is_real", overlap_is_real},
        {"no_sync_accumulates", no_sync_accumulates},
        {"mismatched_model", mismatched_model},
        {"fault", [&] { fault(argc > 2 ? argv[2] : "", argc > 3 ? std::atoi(argv[3]) : 0, argc > 4 ? argv[4] : "."); }},
    };
    if (scenario == "verify_checkpoint" && argc > 2) return verify_checkpoint(argv[2]);   // one process, no MPI
    if (!scenarios.count(scenario)) {
        std::fprintf(stderr, "test_ddp: unknown scenario '%s'\n", scenario.c_str());
        return 2;
    }
    set_num_threads(1);
    try {
        dist::init();
        scenarios.at(scenario)();
        dist::finalize();
    } catch (const std::exception& e) {
        const std::string message = e.what();   // xgrad::distributed's own messages name the rank already
        std::fprintf(stderr, "test_ddp %s: %s%s\n", scenario.c_str(), message.rfind("rank ", 0) == 0 ? "" : (dist::rank_name() + ": ").c_str(),
                     message.c_str());
        dist::abort(1);
    }
    return 0;
}
