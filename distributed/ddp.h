// DistributedDataParallel: every rank holds the whole model, trains it on its own batches, and the
// gradients are averaged over the ranks before each optimizer step, so that every rank takes the same
// step: the step one process would take on the union of the batches. PyTorch DDP's design (Li et al.,
// VLDB 2020, "PyTorch Distributed"):
//
//     distributed::DistributedDataParallel ddp(model);      // rank 0's weights broadcast to all
//     loss.backward();                                      // buckets all-reduced while it runs; the last
//                                                           // parameter's hook waits for them, as PyTorch's
//                                                           // end-of-backward callback does
//     ddp.synchronize();                                    // a no-op then; needed when a parameter got no gradient
//     adamw.step();                                         // the same step on every rank
//
// Buckets: the parameters, in the reverse order of model.parameters() (the order a backward finishes
// them: the last layer first), are packed into flat buckets of about bucket_cap_mb (PyTorch's 25 MB;
// the first is capped at 1 MiB so that communication starts early). Each parameter's
// post-accumulate-grad hook copies its gradient into its bucket; when a bucket's last gradient is in,
// its non-blocking MPI_Iallreduce starts, while the backward goes on with the earlier layers. Buckets
// start in bucket order on every rank, as MPI requires (a bucket ready early waits for the ones
// before it). MPI progresses a non-blocking collective only inside MPI calls, so every hook also
// tests the buckets in flight (MPI_Test): that is what lets them finish during the backward.
//
// Row-sparse gradients (nn::Embedding with sparse) are gathered, not densified: every rank's rows and
// values are all-gathered and summed into one row-sparse gradient over the union of the rows. So the
// gradient stays what one process on the union of the batches would get (densified, SparseAdam
// would refuse it, and Adam would move the untouched rows' moments), and the bytes moved scale with
// the rows touched, not with the table: each rank receives (N - 1) x rows x C floats, against the
// ring all-reduce's 2 (N - 1) / N x V x C, so gathering moves less while N x rows < 2 V (for GPT-2's
// V = 50,257 and 8 x 1024 tokens per rank, at most 8,192 distinct rows: up to 12 ranks). These
// gathers run at synchronize(), after the buckets.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "nn/module.h"

namespace xgrad::distributed {

struct DdpOptions {
    DdpOptions& bucket_cap_mb(double v) { bucket_cap_mb_ = v; return *this; }
    DdpOptions& first_bucket_mb(double v) { first_bucket_mb_ = v; return *this; }
    // Record when each bucket started and finished (trace()); costs a clock read per event.
    DdpOptions& trace(bool v) { trace_ = v; return *this; }
    double bucket_cap_mb_ = 25.0;          // torch: bucket_cap_mb = 25
    double first_bucket_mb_ = 1.0;         // c10d: kDefaultFirstBucketBytes = 1 MiB
    bool trace_ = false;
};

// One bucket's timeline in one backward, in seconds since the first gradient of that backward was ready.
struct BucketTrace {
    std::size_t bucket, bytes;
    double started, completed;   // completed: when MPI_Test or MPI_Wait first saw it done
};
struct StepTrace {
    double last_gradient_ready = 0;   // the last parameter's hook: the backward is about to end
    double synchronized = 0;          // synchronize() returned
    std::vector<BucketTrace> buckets;
};

class DistributedDataParallel {
public:
    explicit DistributedDataParallel(nn::Module& module, DdpOptions options = {});
    ~DistributedDataParallel();
    DistributedDataParallel(const DistributedDataParallel&) = delete;
    DistributedDataParallel& operator=(const DistributedDataParallel&) = delete;

    // Waits for every bucket (starting any not yet started, as when a parameter got no gradient on this
    // rank: it contributes zeros), then writes the averaged gradients into the parameters' grad().
    // The last gradient's hook calls it inside backward(); call it yourself after backward() when some
    // parameter may get no gradient (PyTorch's find_unused_parameters case). A second call is a
    // no-op; inside no_sync() it does nothing.
    void synchronize();

    // PyTorch's no_sync(): while the guard lives, backward() only accumulates locally; the first
    // backward after it synchronizes the accumulated gradients.
    class NoSyncGuard {
    public:
        explicit NoSyncGuard(DistributedDataParallel& ddp) : ddp_(ddp), previous_(ddp.require_backward_grad_sync_)
        {
            ddp_.require_backward_grad_sync_ = false;
        }
        ~NoSyncGuard() { ddp_.require_backward_grad_sync_ = previous_; }
        NoSyncGuard(const NoSyncGuard&) = delete;
        NoSyncGuard& operator=(const NoSyncGuard&) = delete;

    private:
        DistributedDataParallel& ddp_;
        bool previous_;
    };
    NoSyncGuard no_sync() { return NoSyncGuard(*this); }

    nn::Module& module() { return module_; }
    std::size_t num_buckets() const { return buckets_.size(); }
    // Which parameters (indices into module().parameters()) each bucket holds, in bucket order.
    std::vector<std::vector<std::size_t>> bucket_assignment() const;
    const StepTrace& trace() const { return trace_; }   // the last synchronized backward, with DdpOptions::trace
    double last_communication_seconds() const { return wait_seconds_; }   // time synchronize() spent waiting

private:
    struct Bucket;
    void on_gradient_ready(std::size_t param);   // the hook: mark_ready, and synchronize after the last
    void mark_ready(std::size_t param);          // copies its gradient in; starts the buckets it completes
    void launch_ready_buckets();
    void progress();
    void reduce_sparse(std::size_t param);
    double now() const;

    nn::Module& module_;
    DdpOptions options_;
    std::vector<Tensor> params_;
    std::vector<bool> sparse_;                 // expects a row-sparse gradient (nn::Embedding with sparse)
    std::vector<std::unique_ptr<Bucket>> buckets_;
    std::vector<std::pair<std::size_t, std::size_t>> where_;   // param -> (bucket, offset in floats)
    std::vector<bool> ready_;
    std::size_t pending_ = 0;                  // parameters not yet ready in this backward
    std::size_t next_launch_ = 0;              // buckets start in order: the next one to start
    bool require_backward_grad_sync_ = true;
    bool in_step_ = false;                     // some gradient of this backward has arrived
    std::vector<HookHandle> hooks_;
    StepTrace trace_;
    std::chrono::steady_clock::time_point step_start_;
    double wait_seconds_ = 0;
};

}  // namespace xgrad::distributed
