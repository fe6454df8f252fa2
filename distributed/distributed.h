// xgrad::distributed: several processes training one model, on MPI (torch.distributed's names).
// Launched by mpirun, which starts the processes (ranks) on one machine or several:
//
//     distributed::init();                                  // MPI_Init_thread; rank() and world_size() from mpirun
//     Tensor g = ...;
//     distributed::all_reduce(g, distributed::ReduceOp::AVG);   // every rank now holds the mean
//     distributed::finalize();
//
// Every function here is a collective: every rank must call it, in the same order, or the job
// hangs (MPI cannot tell a slow rank from a missing one). Errors throw xgrad::Error naming this rank;
// a program ends a failed job with abort(), which ends every rank (see the examples' main).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace xgrad::distributed {

// MPI with MPI_THREAD_FUNNELED: xgrad's worker threads never call MPI, only the thread that called
// init() does (the gradient hooks run on it, inside backward()). Throws if MPI gives less.
// Calling it again is a no-op; it registers finalize() to run at exit.
void init();
void finalize();                    // idempotent; no collective may follow
bool is_initialized();              // between init() and finalize()
// Whether this process was started by mpirun (or another MPI launcher): the examples use MPI only then,
// so that a plain `train_gpt` needs no MPI runtime.
bool launched_by_mpi();

int rank();                         // 0 .. world_size() - 1; 0 without init()
int world_size();                   // 1 without init()
// "rank 1 of 3": how every error of this library and of the examples names the process.
std::string rank_name();

// Ends every rank of the job at once (MPI_Abort), with `exit_code`. What a program calls when one
// rank fails, so that the others do not wait forever in their next collective.
[[noreturn]] void abort(int exit_code = 1);

enum class ReduceOp { SUM, AVG };   // AVG: the sum divided by world_size() (as NCCL's ncclAvg)

// In place on every rank's `tensor` (same shape everywhere): the element-wise sum or mean. Results
// are bitwise the same on every rank and in every run with the same inputs.
void all_reduce(const Tensor& tensor, ReduceOp op = ReduceOp::SUM);
void all_reduce(float* values, std::size_t count, ReduceOp op = ReduceOp::SUM);
void all_reduce(double* values, std::size_t count, ReduceOp op = ReduceOp::SUM);
// `tensor` on every rank becomes `src`'s.
void broadcast(const Tensor& tensor, int src = 0);
void broadcast(std::vector<char>& bytes, int src = 0);     // any length: the others are resized to src's
// Every rank's `tensor` (same shape everywhere), in rank order.
std::vector<Tensor> all_gather(const Tensor& tensor);
std::vector<std::int64_t> all_gather(std::int64_t value);
void barrier();

// Checks the result of an MPI call: throws "<rank>: <what>: <MPI's message>" unless it is MPI_SUCCESS.
void check_mpi(int code, const char* what);

}  // namespace xgrad::distributed
