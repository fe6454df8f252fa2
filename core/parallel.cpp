// The thread pool behind parallel_for, and the thread setting it shares with OpenBLAS.
#include "core/parallel.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <cblas.h>

#include "core/check.h"

namespace xgrad {

int available_cores()
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

namespace {

int threads_from_environment()
{
    const char* text = std::getenv("XGRAD_NUM_THREADS");
    if (text == nullptr || *text == '\0') return available_cores();
    char* end = nullptr;
    long n = std::strtol(text, &end, 10);
    XGRAD_CHECK(*end == '\0' && n >= 1 && n <= max_threads, "XGRAD_NUM_THREADS must be a whole number from 1 to ",
                max_threads, ", got '", text, "'");
    return static_cast<int>(n);
}

// A fixed set of workers. One job at a time: chunk i of the current job goes to worker i - 1, chunk 0
// runs on the calling thread. Workers sleep on `wake_` between jobs.
class Pool {
public:
    static Pool& instance()
    {
        static Pool pool;
        return pool;
    }

    // XGRAD_NUM_THREADS is only the fallback: it is read the first time the count is needed and no
    // set_num_threads() came first, so a bad value does not stand in the way of an explicit setting.
    int threads()
    {
        std::lock_guard lock(mutex_);
        if (threads_ == 0) {
            set(threads_from_environment());   // throws on a bad value, and is asked again next time
        }
        return threads_;
    }

    int blas_threads()
    {
        threads();
        return blas_threads_;
    }

    void resize(int n)
    {
        std::lock_guard job_lock(job_mutex_);   // never while a job runs
        stop_workers();
        std::lock_guard lock(mutex_);
        set(n);
    }

    void run(std::size_t chunks, const std::function<void(std::size_t)>& chunk_body)
    {
        std::lock_guard job_lock(job_mutex_);
        {
            std::unique_lock lock(mutex_);
            start_workers(chunks - 1);
            body_ = &chunk_body;
            pending_ = chunks - 1;
            active_chunks_ = chunks;
            error_ = nullptr;
            ++generation_;
        }
        wake_.notify_all();
        run_chunk(0);
        std::unique_lock lock(mutex_);
        done_.wait(lock, [this] { return pending_ == 0; });
        body_ = nullptr;
        if (error_) std::rethrow_exception(error_);
    }

    static thread_local bool inside_job;

private:
    Pool() = default;

    // OpenBLAS's threads spin while they wait and each reserves a buffer of 128 MiB: past the cores
    // they only take memory (and under a memory limit OpenBLAS retries its allocation forever).
    void set(int n)   // called with mutex_ held
    {
        threads_ = n;
        blas_threads_ = std::min(n, available_cores());
        openblas_set_num_threads(blas_threads_);
    }
    ~Pool() { stop_workers(); }

    void start_workers(std::size_t needed)   // called with mutex_ held
    {
        while (workers_.size() < needed) {
            std::size_t index = workers_.size() + 1;
            try {
                workers_.emplace_back([this, index] { work(index); });
            } catch (const std::system_error& e) {   // the process's thread or memory limit
                fail("cannot start thread ", index + 1, " of the ", threads_, " set_num_threads asked for (", e.what(),
                     "); this process may use ", available_cores(), " cores: set_num_threads(", available_cores(),
                     ") or fewer");
            }
        }
    }

    void stop_workers()
    {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        for (auto& w : workers_) w.join();
        workers_.clear();
        std::lock_guard lock(mutex_);
        stopping_ = false;
    }

    void work(std::size_t index)
    {
        std::uint64_t seen = 0;
        std::unique_lock lock(mutex_);
        {
            // a worker started during a job must not take that job's chunk twice
            seen = generation_;
            if (body_ != nullptr && index < active_chunks_) seen = generation_ - 1;
        }
        while (true) {
            wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
            if (stopping_) return;
            seen = generation_;
            if (index >= active_chunks_) continue;
            lock.unlock();
            run_chunk(index);
            lock.lock();
            if (--pending_ == 0) done_.notify_one();
        }
    }

    void run_chunk(std::size_t index)
    {
        inside_job = true;
        try {
            (*body_)(index);
        } catch (...) {
            std::lock_guard lock(error_mutex_);
            if (!error_) error_ = std::current_exception();
        }
        inside_job = false;
    }

    std::mutex job_mutex_;     // one job at a time, from any number of calling threads
    std::mutex mutex_;         // guards everything below
    std::mutex error_mutex_;
    std::condition_variable wake_, done_;
    std::vector<std::thread> workers_;
    int threads_ = 0;          // 0 until set_num_threads or the first threads() reads the environment
    int blas_threads_ = 0;
    bool stopping_ = false;
    std::uint64_t generation_ = 0;
    std::size_t active_chunks_ = 0, pending_ = 0;
    const std::function<void(std::size_t)>* body_ = nullptr;
    std::exception_ptr error_;
};

thread_local bool Pool::inside_job = false;

std::atomic<std::uint64_t> threaded_loop_count{0};

}  // namespace

void set_num_threads(int n)
{
    XGRAD_CHECK(n >= 1 && n <= max_threads, "set_num_threads: expected 1 to ", max_threads, " threads, got ", n);
    Pool::instance().resize(n);
}

int get_num_threads() { return Pool::instance().threads(); }

int get_blas_threads() { return Pool::instance().blas_threads(); }

void parallel_for(std::size_t n, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& body)
{
    if (n == 0) return;
    std::size_t by_grain = (n + std::max<std::size_t>(grain, 1) - 1) / std::max<std::size_t>(grain, 1);
    std::size_t chunks = Pool::inside_job ? 1 : std::min<std::size_t>(by_grain, get_num_threads());
    if (chunks <= 1) {
        body(0, n);
        return;
    }
    threaded_loop_count.fetch_add(1, std::memory_order_relaxed);
    Pool::instance().run(chunks, [&](std::size_t i) { body(i * n / chunks, (i + 1) * n / chunks); });
}

std::uint64_t threaded_loops() { return threaded_loop_count.load(std::memory_order_relaxed); }

void parallel_copy(float* dst, const float* src, std::size_t n)
{
    parallel_rows(n, 1, [=](std::size_t begin, std::size_t end) {
        std::memcpy(dst + begin, src + begin, (end - begin) * sizeof(float));
    });
}

void parallel_zero(float* dst, std::size_t n)
{
    parallel_rows(n, 1, [=](std::size_t begin, std::size_t end) {
        std::memset(dst + begin, 0, (end - begin) * sizeof(float));
    });
}

}  // namespace xgrad
