// A thread per rank for the ranks of one process: run() hands every rank the same work at once —
// rank 0 on the caller's thread, rank r on its own — and returns when all are done. A rank that
// throws calls `abort` at once (to wake the ranks waiting for it in a collective); once every rank
// has returned, `resume` runs and the first rank's exception is rethrown.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace loom {

class RankThreads {
 public:
  explicit RankThreads(std::uint32_t ranks);
  ~RankThreads();
  RankThreads(const RankThreads&) = delete;
  RankThreads& operator=(const RankThreads&) = delete;

  void run(const std::function<void(std::uint32_t rank)>& work, const std::function<void()>& abort,
           const std::function<void()>& resume);

 private:
  void serve(std::uint32_t rank);
  void execute(std::uint32_t rank);

  std::mutex mutex_;
  std::condition_variable start_, done_;
  const std::function<void(std::uint32_t)>* work_ = nullptr;
  const std::function<void()>* abort_ = nullptr;
  std::uint64_t round_ = 0;
  std::uint32_t pending_ = 0;
  bool stopping_ = false;
  std::exception_ptr first_error_;
  std::vector<std::thread> threads_;  // ranks 1..n-1
};

}  // namespace loom
