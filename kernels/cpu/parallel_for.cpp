#include "loom/kernels/cpu/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace loom::kernels::cpu {

namespace {

class ThreadPool {
 public:
  explicit ThreadPool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { work(i); });
    size_ = threads;
  }

  ~ThreadPool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  int size() const { return size_; }

  void run(std::size_t n, std::size_t chunks, const std::function<void(std::size_t, std::size_t)>& fn) {
    job_ = &fn;
    n_ = n;
    chunks_ = chunks;
    pending_.store(static_cast<int>(chunks) - 1);
    {
      std::lock_guard lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    run_chunk(0);
    while (pending_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
  }

 private:
  void run_chunk(std::size_t chunk) {
    std::size_t begin = n_ * chunk / chunks_, end = n_ * (chunk + 1) / chunks_;
    if (begin < end) (*job_)(begin, end);
  }

  void work(int index) {
    std::uint64_t seen = 0;
    for (;;) {
      // Spin a little: the next kernel of the same token usually follows within microseconds.
      int spins = 0;
      while (generation_.load(std::memory_order_acquire) == seen && spins < 20000) {
        ++spins;
        if ((spins & 63) == 0) std::this_thread::yield();
      }
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stopping_) return;
      if (static_cast<std::size_t>(index) < chunks_) {
        run_chunk(index);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  std::vector<std::thread> workers_;
  int size_ = 1;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stopping_ = false;
  const std::function<void(std::size_t, std::size_t)>* job_ = nullptr;
  std::size_t n_ = 0, chunks_ = 1;
};

int default_threads() {
  if (const char* env = std::getenv("LOOM_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

std::unique_ptr<ThreadPool>& pool() {
  static std::unique_ptr<ThreadPool> instance = std::make_unique<ThreadPool>(default_threads());
  return instance;
}

}  // namespace

void set_num_threads(int n) {
  int threads = n >= 1 ? n : default_threads();
  if (pool()->size() != threads) pool() = std::make_unique<ThreadPool>(threads);
}

int num_threads() { return pool()->size(); }

void parallel_for(std::size_t n, std::size_t min_chunk, const std::function<void(std::size_t, std::size_t)>& fn) {
  if (n == 0) return;
  ThreadPool& p = *pool();
  std::size_t chunks = std::min<std::size_t>(p.size(), std::max<std::size_t>(1, n / std::max<std::size_t>(1, min_chunk)));
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  p.run(n, chunks, fn);
}

}  // namespace loom::kernels::cpu
