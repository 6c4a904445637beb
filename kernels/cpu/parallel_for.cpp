#include "loom/kernels/cpu/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace loom::kernels::cpu {

namespace {

using Job = std::function<void(std::size_t, std::size_t)>;

// True on pool workers and on a caller while it runs a job, so a nested parallel_for runs
// serially instead of deadlocking on the pool.
thread_local bool t_inside_job = false;

// Chunks are claimed, not assigned: one atomic word holds the call's generation, its number of
// chunks and the next unclaimed chunk, and any thread — a worker or the caller — that is
// running claims the next chunk with a compare-and-swap. So the caller never waits for a worker
// that has not been scheduled (it takes that chunk itself), which keeps a loaded or
// oversubscribed machine from stalling every kernel for a time slice. A claim succeeds only
// while the call it read is current, and a call cannot end before all its claimed chunks are
// done, so a late worker can never run a stale job. Chunk boundaries are static, so which
// thread runs a chunk never changes a result.
class ThreadPool {
 public:
  // Throws std::system_error, after joining the workers it did start, when the system refuses
  // a thread (a process limit such as ulimit -u): never a std::thread destroyed while joinable.
  explicit ThreadPool(int threads) {
    try {
      for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
    } catch (const std::system_error& e) {
      const std::size_t started = workers_.size() + 1;
      stop();
      throw std::system_error(e.code(), "only " + std::to_string(started) + " of the " + std::to_string(threads) +
                                            " threads asked for the CPU kernels could be started (the machine or "
                                            "its process limit, ulimit -u, allows no more)");
    }
  }

  ~ThreadPool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn over `chunks` static contiguous chunks of [0, n), the caller taking part.
  void run(std::size_t n, std::size_t chunks, const Job& fn) {
    std::lock_guard serial(run_mutex_);  // concurrent callers take turns
    job_ = &fn;
    n_ = n;
    done_.store(0, std::memory_order_relaxed);
    generation_ = (generation_ + 1) & 0xffffffffu;
    claim_.store(generation_ << 32 | static_cast<std::uint64_t>(chunks) << 16, std::memory_order_release);
    {
      std::lock_guard lock(mutex_);
      if (sleepers_ > 0) wake_.notify_all();
    }
    t_inside_job = true;
    run_claimed_chunks();
    t_inside_job = false;
    while (done_.load(std::memory_order_acquire) < chunks) std::this_thread::yield();
  }

 private:
  static bool has_unclaimed(std::uint64_t claim) { return (claim & 0xffff) < ((claim >> 16) & 0xffff); }

  // Claims and runs chunks of the current call until none is left.
  void run_claimed_chunks() {
    std::uint64_t claim = claim_.load(std::memory_order_acquire);
    while (has_unclaimed(claim)) {
      if (!claim_.compare_exchange_weak(claim, claim + 1, std::memory_order_acq_rel)) continue;
      const std::size_t chunks = (claim >> 16) & 0xffff, c = claim & 0xffff;
      (*job_)(n_ * c / chunks, n_ * (c + 1) / chunks);
      done_.fetch_add(1, std::memory_order_acq_rel);
      claim = claim_.load(std::memory_order_acquire);
    }
  }

  void work() {
    t_inside_job = true;
    for (;;) {
      // Spin a little first: the next kernel of the same token usually follows within
      // microseconds, and a futex wake-up costs more than that.
      for (int spins = 0; spins < 20000 && !has_unclaimed(claim_.load(std::memory_order_acquire)) &&
                          !stopping_.load(std::memory_order_acquire);
           ++spins)
        if ((spins & 63) == 63) std::this_thread::yield();
      {
        std::unique_lock lock(mutex_);
        ++sleepers_;
        wake_.wait(lock, [&] {
          return has_unclaimed(claim_.load(std::memory_order_acquire)) || stopping_.load(std::memory_order_acquire);
        });
        --sleepers_;
      }
      if (stopping_.load(std::memory_order_acquire)) return;
      run_claimed_chunks();
    }
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_.store(true, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  int sleepers_ = 0;  // guarded by mutex_
  std::atomic<bool> stopping_{false};
  // generation (32 bits) | chunks (16 bits) | next unclaimed chunk (16 bits)
  std::atomic<std::uint64_t> claim_{0};
  std::atomic<std::size_t> done_{0};
  std::uint64_t generation_ = 0;  // only the caller (under run_mutex_) touches it
  const Job* job_ = nullptr;
  std::size_t n_ = 0;
};

int default_threads() {
  if (const char* env = std::getenv("LOOM_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return n;
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::unique_ptr<ThreadPool>& pool() {
  static std::unique_ptr<ThreadPool> instance = std::make_unique<ThreadPool>(default_threads());
  return instance;
}

}  // namespace

void set_num_threads(int n) {
  const int threads = n >= 1 ? n : default_threads();
  if (pool()->size() != threads) pool() = std::make_unique<ThreadPool>(threads);
}

int num_threads() { return pool()->size(); }

void parallel_for(std::size_t n, std::size_t min_chunk, const std::function<void(std::size_t, std::size_t)>& fn) {
  if (n == 0) return;
  ThreadPool& p = *pool();
  const std::size_t chunks = std::min<std::size_t>(
      {static_cast<std::size_t>(p.size()), std::max<std::size_t>(1, n / std::max<std::size_t>(1, min_chunk)), 0xffff});
  if (chunks <= 1 || t_inside_job) {
    fn(0, n);
    return;
  }
  p.run(n, chunks, fn);
}

}  // namespace loom::kernels::cpu
