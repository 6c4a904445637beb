#include "core/model/rank_threads.h"

namespace loom {

RankThreads::RankThreads(std::uint32_t ranks) {
  for (std::uint32_t r = 1; r < ranks; ++r) threads_.emplace_back([this, r] { serve(r); });
}

RankThreads::~RankThreads() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  start_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void RankThreads::run(const std::function<void(std::uint32_t)>& work, const std::function<void()>& abort,
                      const std::function<void()>& resume) {
  {
    std::lock_guard lock(mutex_);
    work_ = &work;
    abort_ = &abort;
    first_error_ = nullptr;
    pending_ = static_cast<std::uint32_t>(threads_.size());
    ++round_;
  }
  start_.notify_all();
  execute(0);
  std::exception_ptr error;
  {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    error = first_error_;
  }
  if (!error) return;
  resume();
  std::rethrow_exception(error);
}

void RankThreads::serve(std::uint32_t rank) {
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      start_.wait(lock, [&] { return stopping_ || round_ != seen; });
      if (stopping_) return;
      seen = round_;
    }
    execute(rank);
    std::lock_guard lock(mutex_);
    if (--pending_ == 0) done_.notify_all();
  }
}

void RankThreads::execute(std::uint32_t rank) {
  try {
    (*work_)(rank);
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      if (!first_error_) first_error_ = std::current_exception();  // the cause; later ones were woken by abort
    }
    (*abort_)();
  }
}

}  // namespace loom
