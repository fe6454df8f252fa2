// DistributedDataParallel: the broadcast at construction, the buckets, their non-blocking all-reduces
// started from the gradient hooks, and the gathered row-sparse gradients.
#include "distributed/ddp.h"

#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>

#include "core/check.h"
#include "distributed/distributed.h"
#include "nn/embedding.h"

namespace xgrad::distributed {

struct DistributedDataParallel::Bucket {
    std::vector<std::size_t> params;   // indices into params_, in the order they were packed
    std::vector<float> values;         // the flat gradients, all-reduced in place
    std::size_t pending = 0;           // gradients not yet copied in during this backward
    MPI_Request request = MPI_REQUEST_NULL;
    bool launched = false, completed = false;
    double started = 0, completed_at = 0;
};

namespace {

// The weights of every nn::Embedding with sparse in the tree: their gradients come row-sparse.
void collect_sparse(const nn::Module& module, std::vector<Tensor>& out)
{
    if (const auto* embedding = dynamic_cast<const nn::Embedding*>(&module); embedding && embedding->options().sparse_) {
        out.push_back(embedding->weight);
    }
    for (const auto& [name, child] : module.children()) collect_sparse(*child, out);
}

// A fingerprint of the parameters' names and shapes: ranks that built different models must not train.
std::int64_t structure_hash(const std::vector<std::pair<std::string, Tensor>>& named)
{
    std::uint64_t h = 1469598103934665603ull;   // FNV-1a
    auto mix = [&](std::uint64_t v) { h = (h ^ v) * 1099511628211ull; };
    for (const auto& [name, p] : named) {
        for (char c : name) mix(static_cast<unsigned char>(c));
        for (auto d : p.shape()) mix(d);
    }
    return static_cast<std::int64_t>(h >> 1);
}

}  // namespace

DistributedDataParallel::DistributedDataParallel(nn::Module& module, DdpOptions options) : module_(module), options_(options)
{
    XGRAD_CHECK(is_initialized(), "DistributedDataParallel: distributed::init() has not been called");
    XGRAD_CHECK(options.bucket_cap_mb_ > 0 && options.first_bucket_mb_ > 0, "DistributedDataParallel: bucket_cap_mb (",
                options.bucket_cap_mb_, ") and first_bucket_mb (", options.first_bucket_mb_, ") must be positive");
    const auto named = module.named_parameters();
    const auto hashes = all_gather(structure_hash(named));
    for (std::size_t r = 0; r < hashes.size(); ++r) {
        XGRAD_CHECK(hashes[r] == hashes[0], rank_name(), ": DistributedDataParallel: rank ", r,
                    " built a model whose parameter names or shapes differ from rank 0's (", named.size(),
                    " parameters here); every rank must build the same model");
    }
    // PyTorch's DDP constructor: rank 0's state to every rank, so that all start from the same weights
    for (const auto& [name, p] : named) broadcast(p, 0);

    std::vector<Tensor> sparse_weights;
    collect_sparse(module, sparse_weights);
    for (const auto& [name, p] : named) {
        if (!p.requires_grad()) continue;
        params_.push_back(p);
        sparse_.push_back(std::any_of(sparse_weights.begin(), sparse_weights.end(), [&](const Tensor& w) { return w.is_same(p); }));
    }
    where_.assign(params_.size(), {0, 0});
    // Buckets in the reverse order of the parameters, the order a backward finishes them
    const auto cap = [&](std::size_t bucket) {
        const double mb = bucket == 0 ? options.first_bucket_mb_ : options.bucket_cap_mb_;
        return static_cast<std::size_t>(mb * 1024 * 1024 / sizeof(float));
    };
    for (std::size_t k = params_.size(); k-- > 0;) {
        if (sparse_[k]) continue;
        const std::size_t n = params_[k].numel();
        if (buckets_.empty() || (!buckets_.back()->values.empty() && buckets_.back()->values.size() + n > cap(buckets_.size() - 1))) {
            buckets_.push_back(std::make_unique<Bucket>());
        }
        Bucket& b = *buckets_.back();
        where_[k] = {buckets_.size() - 1, b.values.size()};
        b.params.push_back(k);
        b.values.resize(b.values.size() + n);
    }
    for (auto& b : buckets_) b->pending = b->params.size();
    ready_.assign(params_.size(), false);
    pending_ = params_.size();
    for (std::size_t k = 0; k < params_.size(); ++k) {
        hooks_.push_back(params_[k].register_post_accumulate_grad_hook([this, k](const Tensor&) { on_gradient_ready(k); }));
    }
}

DistributedDataParallel::~DistributedDataParallel()
{
    for (auto& hook : hooks_) hook.remove();
    for (auto& b : buckets_) {   // a backward that threw midway leaves requests in flight
        if (b->launched && !b->completed) MPI_Wait(&b->request, MPI_STATUS_IGNORE);
    }
}

double DistributedDataParallel::now() const
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start_).count();
}

std::vector<std::vector<std::size_t>> DistributedDataParallel::bucket_assignment() const
{
    std::vector<std::vector<std::size_t>> out;
    for (const auto& b : buckets_) out.push_back(b->params);
    return out;
}

void DistributedDataParallel::on_gradient_ready(std::size_t k)
{
    if (!require_backward_grad_sync_) return;
    mark_ready(k);
    if (pending_ == 0) {
        if (options_.trace_) trace_.last_gradient_ready = now();
        synchronize();                          // every gradient is in: the end of this backward
    }
}

void DistributedDataParallel::mark_ready(std::size_t k)
{
    XGRAD_CHECK(!ready_[k], rank_name(), ": DistributedDataParallel: parameter ", k, " (shape ", shape_str(params_[k].shape()),
                ") got a second gradient before synchronize(); backward twice per step needs no_sync() around the first");
    if (!in_step_) {
        in_step_ = true;
        step_start_ = std::chrono::steady_clock::now();
        trace_ = {};
    }
    ready_[k] = true;
    --pending_;
    if (!sparse_[k]) {
        auto [bucket, offset] = where_[k];
        Bucket& b = *buckets_[bucket];
        float* slot = b.values.data() + offset;
        const Tensor& p = params_[k];
        if (p.sparse_grad()) {                  // a row-sparse gradient in a dense bucket: densified
            std::fill(slot, slot + p.numel(), 0.0f);
            Array dense = p.sparse_grad()->to_dense(p.shape()[0]);
            std::copy(dense.begin(), dense.end(), slot);
        } else if (p.grad().defined()) {
            const Values g = p.grad().values();
            std::memcpy(slot, g.data(), p.numel() * sizeof(float));
        } else {                                // no gradient on this rank: it adds nothing
            std::fill(slot, slot + p.numel(), 0.0f);
        }
        --b.pending;
        launch_ready_buckets();
    }
    progress();
}

void DistributedDataParallel::launch_ready_buckets()
{
    while (next_launch_ < buckets_.size() && buckets_[next_launch_]->pending == 0) {
        Bucket& b = *buckets_[next_launch_++];
        check_mpi(MPI_Iallreduce(MPI_IN_PLACE, b.values.data(), static_cast<int>(b.values.size()), MPI_FLOAT, MPI_SUM,
                                 MPI_COMM_WORLD, &b.request),
                  "DistributedDataParallel: a bucket's all-reduce (MPI_Iallreduce)");
        b.launched = true;
        if (options_.trace_) b.started = now();
    }
}

void DistributedDataParallel::progress()
{
    for (std::size_t i = 0; i < next_launch_; ++i) {
        Bucket& b = *buckets_[i];
        if (b.completed) continue;
        int done = 0;
        check_mpi(MPI_Test(&b.request, &done, MPI_STATUS_IGNORE), "DistributedDataParallel: MPI_Test of a bucket");
        if (done) {
            b.completed = true;
            if (options_.trace_) b.completed_at = now();
        }
    }
}

void DistributedDataParallel::synchronize()
{
    if (!require_backward_grad_sync_ || !in_step_) return;
    // Parameters that got no gradient in this backward: whatever they hold (or zeros) goes in now
    for (std::size_t k = params_.size(); k-- > 0;) {
        if (!ready_[k]) mark_ready(k);
    }
    launch_ready_buckets();
    const auto wait_start = std::chrono::steady_clock::now();
    const float N = static_cast<float>(world_size());
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        Bucket& b = *buckets_[i];
        if (!b.completed) {
            check_mpi(MPI_Wait(&b.request, MPI_STATUS_IGNORE), "DistributedDataParallel: MPI_Wait for a bucket");
            b.completed = true;
            if (options_.trace_) b.completed_at = now();
        }
        for (std::size_t k : b.params) {        // the mean, written back as each parameter's gradient
            const Tensor& p = params_[k];
            const float* sum = b.values.data() + where_[k].second;
            if (!p.grad().defined() || p.sparse_grad()) p.set_grad(Tensor(Array::from_shape(p.shape())));
            float* grad = p.grad().mutable_data_ptr();   // in place: no new array per step
            for (std::size_t i = 0, n = p.numel(); i < n; ++i) grad[i] = sum[i] / N;
        }
        if (options_.trace_) trace_.buckets.push_back({i, b.values.size() * sizeof(float), b.started, b.completed_at});
        b.launched = b.completed = false;
        b.pending = b.params.size();
    }
    for (std::size_t k = 0; k < params_.size(); ++k) {
        if (sparse_[k]) reduce_sparse(k);
    }
    wait_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count();
    if (options_.trace_) trace_.synchronized = now();
    std::fill(ready_.begin(), ready_.end(), false);
    pending_ = params_.size();
    next_launch_ = 0;
    in_step_ = false;
}

// The row-sparse gradient of parameter k over all ranks: every rank's rows gathered, summed row by
// row in rank order (the same order everywhere, so every rank gets bitwise the same sum), divided by N.
// If any rank holds it dense (a table also used densely, as a tied head), all densify and all-reduce.
void DistributedDataParallel::reduce_sparse(std::size_t k)
{
    const Tensor& p = params_[k];
    const std::size_t V = p.shape()[0], C = p.shape()[1];
    const RowSparse* local = p.sparse_grad();
    const bool dense_here = !local && p.grad().defined();
    const auto counts = all_gather(dense_here ? std::int64_t(-1) : local ? static_cast<std::int64_t>(local->rows.size()) : 0);
    const float N = static_cast<float>(world_size());
    if (std::find(counts.begin(), counts.end(), -1) != counts.end()) {
        Array dense = local ? local->to_dense(V) : dense_here ? p.grad().to_array() : Array(xt::zeros<float>({V, C}));
        all_reduce(dense.data(), dense.size(), ReduceOp::SUM);
        for (float& v : dense) v /= N;
        p.set_grad(Tensor(std::move(dense)));
        return;
    }
    std::vector<int> row_counts, row_displs, value_counts, value_displs;
    int total = 0;
    for (auto c : counts) {
        row_counts.push_back(static_cast<int>(c)), row_displs.push_back(total);
        value_counts.push_back(static_cast<int>(c * static_cast<std::int64_t>(C))), value_displs.push_back(total * static_cast<int>(C));
        total += static_cast<int>(c);
    }
    std::vector<std::int64_t> rows(static_cast<std::size_t>(total));
    std::vector<float> values(static_cast<std::size_t>(total) * C);
    const int mine = local ? static_cast<int>(local->rows.size()) : 0;
    check_mpi(MPI_Allgatherv(local ? local->rows.data() : nullptr, mine, MPI_INT64_T, rows.data(), row_counts.data(),
                             row_displs.data(), MPI_INT64_T, MPI_COMM_WORLD),
              "DistributedDataParallel: gathering a sparse gradient's rows (MPI_Allgatherv)");
    check_mpi(MPI_Allgatherv(local ? local->values.data() : nullptr, mine * static_cast<int>(C), MPI_FLOAT, values.data(),
                             value_counts.data(), value_displs.data(), MPI_FLOAT, MPI_COMM_WORLD),
              "DistributedDataParallel: gathering a sparse gradient's values (MPI_Allgatherv)");
    RowSparse merged;
    merged.rows = rows;
    std::sort(merged.rows.begin(), merged.rows.end());
    merged.rows.erase(std::unique(merged.rows.begin(), merged.rows.end()), merged.rows.end());
    merged.values = Array(xt::zeros<float>({merged.rows.size(), C}));
    for (std::size_t i = 0; i < rows.size(); ++i) {   // rank 0's rows first, then rank 1's, ...
        const auto at = static_cast<std::size_t>(std::lower_bound(merged.rows.begin(), merged.rows.end(), rows[i]) - merged.rows.begin());
        float* dst = merged.values.data() + at * C;
        const float* src = values.data() + i * C;
        for (std::size_t c = 0; c < C; ++c) dst[c] += src[c];
    }
    for (float& v : merged.values) v /= N;
    p.zero_grad();
    if (!merged.rows.empty()) p.accumulate_grad(std::move(merged));
}

}  // namespace xgrad::distributed
