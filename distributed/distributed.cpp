// init/finalize and the collectives on tensors, each one MPI call on MPI_COMM_WORLD.
#include "distributed/distributed.h"

#include <mpi.h>

#include <cstdlib>
#include <limits>

#include "core/check.h"

namespace xgrad::distributed {

namespace {

bool initialized_by_us = false;

int count_of(std::size_t n, const char* what)
{
    // MPI counts are int: a tensor of 2^31 floats or more needs to go in pieces (none here is that big)
    XGRAD_CHECK(n <= static_cast<std::size_t>(std::numeric_limits<int>::max()), rank_name(), ": ", what, ": ", n,
                " elements is more than one MPI call takes (2^31 - 1)");
    return static_cast<int>(n);
}

void require_init(const char* what)
{
    XGRAD_CHECK(is_initialized(), what, ": distributed::init() has not been called (or finalize() already was)");
}

}  // namespace

void check_mpi(int code, const char* what)
{
    if (code == MPI_SUCCESS) return;
    char message[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, message, &length);
    fail(rank_name(), ": ", what, " failed: ", std::string(message, static_cast<std::size_t>(length)));
}

bool launched_by_mpi()
{
    // OpenMPI's mpirun sets OMPI_COMM_WORLD_SIZE; MPICH's hydra and Slurm's PMI set PMI_SIZE; PMIx PMIX_RANK
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
        if (std::getenv(name)) return true;
    }
    return false;
}

void init()
{
    int done = 0;
    MPI_Initialized(&done);
    if (done) return;
    int provided = 0;
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    initialized_by_us = true;
    // Errors come back as codes (check_mpi throws), rather than MPI's default of ending the job from
    // inside the call, so that the message can say what this library was doing.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    XGRAD_CHECK(provided >= MPI_THREAD_FUNNELED, rank_name(), ": MPI gives thread level ", provided,
                ", and xgrad needs MPI_THREAD_FUNNELED (", MPI_THREAD_FUNNELED, "): its worker threads run beside MPI");
    std::atexit(finalize);
}

void finalize()
{
    int started = 0, ended = 0;
    MPI_Initialized(&started);
    MPI_Finalized(&ended);
    if (started && !ended && initialized_by_us) MPI_Finalize();
}

bool is_initialized()
{
    int started = 0, ended = 0;
    MPI_Initialized(&started);
    MPI_Finalized(&ended);
    return started && !ended;
}

int rank()
{
    if (!is_initialized()) return 0;
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int world_size()
{
    if (!is_initialized()) return 1;
    int n = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

std::string rank_name() { return "rank " + std::to_string(rank()) + " of " + std::to_string(world_size()); }

void abort(int exit_code)
{
    if (is_initialized()) MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);
}

void all_reduce(float* values, std::size_t count, ReduceOp op)
{
    require_init("all_reduce");
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, values, count_of(count, "all_reduce"), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
              "all_reduce (MPI_Allreduce)");
    if (op == ReduceOp::AVG) {
        const auto n = static_cast<float>(world_size());
        for (std::size_t i = 0; i < count; ++i) values[i] /= n;
    }
}

void all_reduce(double* values, std::size_t count, ReduceOp op)
{
    require_init("all_reduce");
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, values, count_of(count, "all_reduce"), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
              "all_reduce (MPI_Allreduce)");
    if (op == ReduceOp::AVG) {
        const double n = world_size();
        for (std::size_t i = 0; i < count; ++i) values[i] /= n;
    }
}

void all_reduce(const Tensor& tensor, ReduceOp op) { all_reduce(tensor.mutable_data_ptr(), tensor.numel(), op); }

void broadcast(const Tensor& tensor, int src)
{
    require_init("broadcast");
    XGRAD_CHECK(src >= 0 && src < world_size(), rank_name(), ": broadcast: src ", src, " is not a rank (0 to ",
                world_size() - 1, ")");
    check_mpi(MPI_Bcast(tensor.mutable_data_ptr(), count_of(tensor.numel(), "broadcast"), MPI_FLOAT, src, MPI_COMM_WORLD),
              "broadcast (MPI_Bcast)");
}

void broadcast(std::vector<char>& bytes, int src)
{
    require_init("broadcast");
    auto size = static_cast<std::int64_t>(bytes.size());
    check_mpi(MPI_Bcast(&size, 1, MPI_INT64_T, src, MPI_COMM_WORLD), "broadcast (MPI_Bcast of the length)");
    bytes.resize(static_cast<std::size_t>(size));
    check_mpi(MPI_Bcast(bytes.data(), count_of(bytes.size(), "broadcast"), MPI_CHAR, src, MPI_COMM_WORLD),
              "broadcast (MPI_Bcast)");
}

std::vector<Tensor> all_gather(const Tensor& tensor)
{
    require_init("all_gather");
    // The shapes first, so that a rank with another shape is an error rather than a torn result
    const auto shapes = all_gather(static_cast<std::int64_t>(tensor.numel()));
    for (int r = 0; r < world_size(); ++r) {
        XGRAD_CHECK(shapes[static_cast<std::size_t>(r)] == static_cast<std::int64_t>(tensor.numel()), rank_name(),
                    ": all_gather: rank ", r, " gives ", shapes[static_cast<std::size_t>(r)], " elements, this rank ",
                    tensor.numel(), "; every rank must give the same shape");
    }
    const std::size_t n = tensor.numel(), N = static_cast<std::size_t>(world_size());
    std::vector<float> all(n * N);
    const Values mine = tensor.values();
    check_mpi(MPI_Allgather(mine.data(), count_of(n, "all_gather"), MPI_FLOAT, all.data(), static_cast<int>(n),
                            MPI_FLOAT, MPI_COMM_WORLD),
              "all_gather (MPI_Allgather)");
    std::vector<Tensor> out;
    for (std::size_t r = 0; r < N; ++r) {
        Tensor t = zeros(tensor.shape());
        std::copy(all.begin() + static_cast<std::ptrdiff_t>(r * n), all.begin() + static_cast<std::ptrdiff_t>((r + 1) * n),
                  t.mutable_data_ptr());
        out.push_back(t);
    }
    return out;
}

std::vector<std::int64_t> all_gather(std::int64_t value)
{
    require_init("all_gather");
    std::vector<std::int64_t> out(static_cast<std::size_t>(world_size()));
    check_mpi(MPI_Allgather(&value, 1, MPI_INT64_T, out.data(), 1, MPI_INT64_T, MPI_COMM_WORLD),
              "all_gather (MPI_Allgather)");
    return out;
}

void barrier()
{
    require_init("barrier");
    check_mpi(MPI_Barrier(MPI_COMM_WORLD), "barrier (MPI_Barrier)");
}

}  // namespace xgrad::distributed
