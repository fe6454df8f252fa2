// What train_lm and train_gpt need to train data-parallel under `mpirun -np N`, in one place so that
// their main.cpp change in a few lines. Started without mpirun (or built without MPI), it is one process
// of rank 0 and every call is what the single-process program did before.
//
//   - each rank draws its own batches: the batch seed is seed + rank, as nanoGPT's seed_offset
//   - DistributedDataParallel averages the gradients, so every rank takes the same step
//   - rank 0 alone prints (the others' stdout goes to /dev/null), evaluates and writes files
//   - a failure on any rank ends the whole job (MPI_Abort) with a message naming that rank
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <memory>
#include <optional>

#include "xgrad.h"
#ifdef XGRAD_DISTRIBUTED
#include "distributed/checkpoint.h"
#include "distributed/ddp.h"
#include "distributed/distributed.h"
#include "distributed/zero.h"
#endif

class DataParallel {
public:
    DataParallel()
    {
#ifdef XGRAD_DISTRIBUTED
        if (xgrad::distributed::launched_by_mpi()) {
            xgrad::distributed::init();
            rank = xgrad::distributed::rank(), world_size = xgrad::distributed::world_size();
            // Two ranks on one machine must not each take every core: a rank gets its share,
            // unless --threads or XGRAD_NUM_THREADS says otherwise (the examples apply those after this).
            if (!std::getenv("XGRAD_NUM_THREADS")) {
                xgrad::set_num_threads(std::max(1, xgrad::get_num_threads() / local_ranks()));
            }
            if (rank != 0 && !std::freopen("/dev/null", "w", stdout)) std::perror("DataParallel: stdout");
        }
#endif
    }

    int rank = 0, world_size = 1;
    bool is_main() const { return rank == 0; }
    std::uint64_t batch_seed(std::uint64_t seed) const { return seed + static_cast<std::uint64_t>(rank); }

    // From here on the model's gradients are averaged over the ranks (rank 0's weights to all first)
    void wrap(xgrad::nn::Module& model)
    {
#ifdef XGRAD_DISTRIBUTED
        if (world_size > 1) ddp_ = std::make_unique<xgrad::distributed::DistributedDataParallel>(model);
#else
        (void)model;
#endif
    }
    void synchronize()   // after backward(), before clipping: a no-op once the hooks have done it
    {
#ifdef XGRAD_DISTRIBUTED
        if (ddp_) ddp_->synchronize();
#endif
    }
    bool any(bool flag) const   // true on every rank if it is true on one: a stop all ranks agree on
    {
        return mean(flag ? 1.0 : 0.0) > 0.0;
    }
    double mean(double value) const   // over the ranks: the loss rank 0 prints is the global batch's
    {
#ifdef XGRAD_DISTRIBUTED
        if (world_size > 1) xgrad::distributed::all_reduce(&value, 1, xgrad::distributed::ReduceOp::AVG);
#endif
        return value;
    }

    // AdamW, or with zero (ZeRO stage 1) its state sharded over the ranks
    std::unique_ptr<xgrad::optim::Optimizer> adamw(std::vector<xgrad::optim::ParamGroup> groups,
                                                   xgrad::optim::AdamWOptions options, bool zero) const
    {
#ifdef XGRAD_DISTRIBUTED
        if (zero && world_size > 1) {
            return std::make_unique<xgrad::distributed::ZeroRedundancyOptimizer>(
                std::move(groups), [options](std::vector<xgrad::optim::ParamGroup> mine) {
                    return std::make_unique<xgrad::optim::AdamW>(std::move(mine), options);
                });
        }
#endif
        (void)zero;   // one process: ZeRO-1 over one rank is AdamW itself
        return std::make_unique<xgrad::optim::AdamW>(std::move(groups), options);
    }

    // Every rank calls these; rank 0 writes the one file, rank 0 reads it for all
    void save_checkpoint(const std::string& path, const xgrad::io::NamedParameters& model, const xgrad::optim::Optimizer& optimizer,
                         xgrad::io::Metadata metadata) const
    {
#ifdef XGRAD_DISTRIBUTED
        if (world_size > 1) return xgrad::distributed::save_checkpoint(path, model, optimizer, std::move(metadata));
#endif
        xgrad::optim::save_checkpoint(path, model, optimizer, std::move(metadata));
    }
    xgrad::io::Safetensors read_checkpoint(const std::string& path) const
    {
#ifdef XGRAD_DISTRIBUTED
        if (world_size > 1) return xgrad::distributed::read_on_rank0(path);
#endif
        return xgrad::io::load_safetensors(path);
    }
    xgrad::io::Metadata load_checkpoint(const std::string& path, const xgrad::io::NamedParameters& model,
                                        xgrad::optim::Optimizer& optimizer) const
    {
#ifdef XGRAD_DISTRIBUTED
        if (world_size > 1) return xgrad::distributed::load_checkpoint(path, model, optimizer);
#endif
        return xgrad::optim::load_checkpoint(path, model, optimizer);
    }

    // main's catch: the message, naming the rank when there are several; then every rank ends
    int fail(const char* program, const std::string& message) const
    {
        std::fflush(stdout);
        if (world_size > 1) {
            // xgrad::distributed's own errors name the rank already
            const bool named = message.rfind("rank ", 0) == 0;
            std::fprintf(stderr, "\n%s: %s%s\n", program, named ? "" : ("rank " + std::to_string(rank) + " of " +
                         std::to_string(world_size) + ": ").c_str(), message.c_str());
            std::fflush(stderr);
#ifdef XGRAD_DISTRIBUTED
            xgrad::distributed::abort(1);
#endif
        }
        std::fprintf(stderr, "\n%s: %s\n", program, message.c_str());
        return 1;
    }

private:
    static int local_ranks()   // ranks on this machine, as OpenMPI says (1 if it does not)
    {
        const char* n = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
        return n ? std::max(1, std::atoi(n)) : 1;
    }
#ifdef XGRAD_DISTRIBUTED
    std::unique_ptr<xgrad::distributed::DistributedDataParallel> ddp_;
#endif
};
