// ddp_bench: W7 (one training step of examples/train_gpt's model, nanoGPT's CPU recipe) data-parallel,
// and the all-reduce's time against its size. Run it alone (one process) or under mpirun:
//
//     XGRAD_NUM_THREADS=1 build/bench/ddp_bench                  # 1 rank x 1 thread
//     XGRAD_NUM_THREADS=2 build/bench/ddp_bench                  # 1 rank x 2 threads
//     mpirun -np 2 -x XGRAD_NUM_THREADS=1 build/bench/ddp_bench  # 2 ranks x 1 thread
//
// Each rank trains on its own batch of B = 12 sequences, so N ranks step N x 12 samples. The step is
// compare.cpp's W7 step with DistributedDataParallel (default 25 MB buckets, or --bucket-mb) between
// backward and clip. Printed by rank 0: the median step time over --steps steps after 5 warm-up
// steps [min-max], the samples per second, and the time the step spent waiting for communication
// after its backward (what overlap did not hide). Then, with --allreduce, MPI_Allreduce of 4 KiB to
// 16 MiB of floats: the median of 20 calls each. --local leaves DDP out: N processes each training
// alone, the compute of the data-parallel step without its communication.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "distributed/ddp.h"
#include "distributed/distributed.h"
#include "distributed/zero.h"
#include "train_gpt/model.h"
#include "workloads.h"

using namespace xgrad;
namespace dist = xgrad::distributed;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv)
{
    std::size_t steps = 30;
    double bucket_mb = 25.0;
    bool allreduce = false, local = false, zero = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::stoul(argv[++i]);
        else if (!std::strcmp(argv[i], "--bucket-mb") && i + 1 < argc) bucket_mb = std::stod(argv[++i]);
        else if (!std::strcmp(argv[i], "--allreduce")) allreduce = true;
        else if (!std::strcmp(argv[i], "--local")) local = true;   // no DDP: the ranks' compute alone
        else if (!std::strcmp(argv[i], "--zero")) zero = true;     // ZeRO-1: AdamW's state sharded
        else {
            std::fprintf(stderr, "ddp_bench: unknown argument '%s' (--steps N, --bucket-mb MB, --allreduce, --local, --zero)\n", argv[i]);
            return 2;
        }
    }
    const bool distributed = dist::launched_by_mpi();
    if (distributed) dist::init();
    const int rank = dist::rank(), N = dist::world_size();

    const auto& s = workloads::w7;
    manual_seed(13);
    Gpt model({s.vocab, s.time, s.layers, s.heads, s.channels, 0.0f});
    const IdArray x = workloads::random_ids(s.vocab, s.batch, s.time, 14 + 100 * static_cast<std::uint64_t>(rank));
    const IdArray y = workloads::random_ids(s.vocab, s.batch, s.time, 15 + 100 * static_cast<std::uint64_t>(rank));
    std::vector<Tensor> decay, no_decay;
    for (const auto& p : model.parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    const std::vector<optim::ParamGroup> groups = {{decay, {}}, {no_decay, optim::GroupOptions().weight_decay(0.0)}};
    const auto options = optim::AdamWOptions().lr(1e-3).betas(0.9, 0.99).weight_decay(0.1);
    std::unique_ptr<optim::Optimizer> optimizer;
    if (zero && distributed) {
        optimizer = std::make_unique<dist::ZeroRedundancyOptimizer>(groups, [&](std::vector<optim::ParamGroup> mine) {
            return std::make_unique<optim::AdamW>(std::move(mine), options);
        });
    } else {
        optimizer = std::make_unique<optim::AdamW>(groups, options);
    }
    optim::Optimizer& adamw = *optimizer;
    const std::size_t live_at_start = live_storage_bytes();
    std::unique_ptr<dist::DistributedDataParallel> ddp;
    if (distributed && !local) ddp = std::make_unique<dist::DistributedDataParallel>(model, dist::DdpOptions().bucket_cap_mb(bucket_mb));

    std::vector<double> step_times, wait_times, forward_times, backward_times;
    float sink = 0;
    for (std::size_t step = 0; step < steps + 5; ++step) {
        if (distributed) dist::barrier();   // every rank starts the step together
        const auto start = std::chrono::steady_clock::now();
        adamw.zero_grad();
        Tensor loss = nn::functional::cross_entropy(model.forward(x), y);
        const double forward_s = seconds_since(start);
        loss.backward();                       // with DDP: the buckets' all-reduces start in here
        if (ddp) ddp->synchronize();
        const double backward_s = seconds_since(start) - forward_s;
        optim::clip_grad_norm(model.parameters(), 1.0);
        adamw.step();
        sink += loss.item();
        if (step >= 5) {
            step_times.push_back(seconds_since(start));
            wait_times.push_back(ddp ? ddp->last_communication_seconds() : 0.0);
            forward_times.push_back(forward_s), backward_times.push_back(backward_s);
        }
    }
    const double step_s = median(step_times);
    if (rank == 0) {
        const std::size_t bytes = 4 * model.num_parameters();
        std::printf("W7 %d rank%s x %d thread%s: step %.2f ms [%.2f-%.2f], %.0f samples/s, %zu bucket%s of %.2f MB of gradients, "
                    "waiting after backward %.2f ms (loss sum %.3f)\n",
                    N, N > 1 ? "s" : "", get_num_threads(), get_num_threads() > 1 ? "s" : "", 1e3 * step_s,
                    1e3 * *std::min_element(step_times.begin(), step_times.end()),
                    1e3 * *std::max_element(step_times.begin(), step_times.end()), double(N * s.batch) / step_s,
                    ddp ? ddp->num_buckets() : 0, ddp && ddp->num_buckets() == 1 ? "" : "s", double(bytes) / 1e6,
                    1e3 * median(wait_times), sink);
        std::printf("  forward + loss %.2f ms, backward (and synchronize) %.2f ms, clip + AdamW %.2f ms (medians)\n",
                    1e3 * median(forward_times), 1e3 * median(backward_times),
                    1e3 * (step_s - median(forward_times) - median(backward_times)));
    }
    // The optimizer's state: what ZeRO-1 divides among the ranks (AdamW: exp_avg and exp_avg_sq)
    io::NamedTensors state;
    io::Metadata metadata;
    std::size_t state_bytes = 0;
    if (zero && distributed) {
        state_bytes = static_cast<dist::ZeroRedundancyOptimizer&>(adamw).local_state_bytes();
    } else {
        adamw.save_state(state, metadata);
        for (const auto& [name, a] : state) state_bytes += a.numel() * a.element_size();
    }
    const auto states = distributed ? dist::all_gather(static_cast<std::int64_t>(state_bytes))
                                    : std::vector<std::int64_t>{static_cast<std::int64_t>(state_bytes)};
    const auto live = distributed ? dist::all_gather(static_cast<std::int64_t>(live_storage_bytes()))
                                  : std::vector<std::int64_t>{static_cast<std::int64_t>(live_storage_bytes())};
    if (rank == 0) {
        std::printf("  optimizer state per rank (%s):", zero && distributed ? "ZeRO-1" : "AdamW");
        for (auto b : states) std::printf(" %.2f MB", double(b) / 1e6);
        std::printf("; xgrad's live arrays per rank after the steps:");
        for (auto b : live) std::printf(" %.2f MB", double(b) / 1e6);
        std::printf(" (%.2f MB before the first step)\n", double(live_at_start) / 1e6);
    }
    if (allreduce && distributed) {
        if (rank == 0) std::printf("MPI_Allreduce (sum, in place) on %d ranks, median of 20:\n", N);
        for (std::size_t bytes = 4096; bytes <= (std::size_t(16) << 20); bytes *= 4) {
            std::vector<float> v(bytes / 4, 1.0f);
            std::vector<double> t;
            for (int i = 0; i < 23; ++i) {
                dist::barrier();
                const auto start = std::chrono::steady_clock::now();
                MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                if (i >= 3) t.push_back(seconds_since(start));
            }
            const double m = median(t);
            if (rank == 0) {
                std::printf("  %9zu bytes  %9.3f ms  %7.2f GB/s of algorithm bandwidth (bytes / time)\n", bytes, 1e3 * m,
                            double(bytes) / m / 1e9);
            }
        }
    }
    if (distributed) dist::finalize();
    return 0;
}
