#include "loom/kernels/cpu/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace loom::kernels::cpu {

namespace {

using Job = std::function<void(std::size_t, std::size_t)>;

// True on pool workers and on a caller while it runs a job, so a nested parallel_for runs
// serially instead of deadlocking on the pool.
thread_local bool t_inside_job = false;

// Each worker owns a slot. The caller fills a slot (range, job) and then bumps its generation;
// a worker only reads its slot after seeing a new generation, and the caller only refills it
// after the worker reported done. So a worker that wakes late can never read the next call's
// state, and workers not needed by a call are never touched by it.
class ThreadPool {
 public:
  explicit ThreadPool(int threads) : slots_(static_cast<std::size_t>(threads > 1 ? threads - 1 : 0)) {
    for (std::size_t i = 0; i < slots_.size(); ++i) workers_.emplace_back([this, i] { work(slots_[i]); });
  }

  ~ThreadPool() {
    {
      std::lock_guard lock(mutex_);
      stopping_.store(true, std::memory_order_relaxed);
      for (Slot& slot : slots_) slot.generation.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  int size() const { return static_cast<int>(slots_.size()) + 1; }

  // Runs fn over `chunks` static contiguous chunks of [0, n); chunk 0 on the calling thread.
  void run(std::size_t n, std::size_t chunks, const Job& fn) {
    std::lock_guard serial(run_mutex_);  // concurrent callers take turns
    pending_.store(static_cast<int>(chunks) - 1, std::memory_order_relaxed);
    {
      std::lock_guard lock(mutex_);
      for (std::size_t c = 1; c < chunks; ++c) {
        Slot& slot = slots_[c - 1];
        slot.job = &fn;
        slot.begin = n * c / chunks;
        slot.end = n * (c + 1) / chunks;
        slot.generation.fetch_add(1, std::memory_order_release);
      }
    }
    wake_.notify_all();
    t_inside_job = true;
    fn(0, n / chunks);
    t_inside_job = false;
    while (pending_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
  }

 private:
  struct alignas(64) Slot {
    std::atomic<std::uint64_t> generation{0};
    const Job* job = nullptr;
    std::size_t begin = 0, end = 0;
  };

  void work(Slot& slot) {
    t_inside_job = true;
    std::uint64_t seen = 0;
    for (;;) {
      // Spin a little first: the next kernel of the same token usually follows within
      // microseconds, and a futex wake-up costs more than that.
      for (int spins = 0; slot.generation.load(std::memory_order_acquire) == seen && spins < 20000; ++spins)
        if ((spins & 63) == 63) std::this_thread::yield();
      if (slot.generation.load(std::memory_order_acquire) == seen) {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return slot.generation.load(std::memory_order_acquire) != seen; });
      }
      seen = slot.generation.load(std::memory_order_acquire);
      if (stopping_.load(std::memory_order_relaxed)) return;
      if (slot.begin < slot.end) (*slot.job)(slot.begin, slot.end);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  std::vector<Slot> slots_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<int> pending_{0};
  std::atomic<bool> stopping_{false};
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
  const std::size_t chunks =
      std::min<std::size_t>(static_cast<std::size_t>(p.size()), std::max<std::size_t>(1, n / std::max<std::size_t>(1, min_chunk)));
  if (chunks <= 1 || t_inside_job) {
    fn(0, n);
    return;
  }
  p.run(n, chunks, fn);
}

}  // namespace loom::kernels::cpu
