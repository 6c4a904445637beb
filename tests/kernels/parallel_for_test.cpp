// The kernels' thread pool: every index exactly once in static contiguous chunks, for any thread
// count; many back-to-back calls (the per-token pattern); nested and concurrent callers.
#include "loom/kernels/cpu/parallel_for.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace loom::kernels::cpu {
namespace {

TEST(ParallelFor, CoversEveryIndexOnceInContiguousChunks) {
  for (int threads : {1, 2, 3, 5}) {
    set_num_threads(threads);
    EXPECT_EQ(num_threads(), threads);
    for (std::size_t n : {0, 1, 2, 7, 64, 1001}) {
      for (std::size_t min_chunk : {1, 3, 100}) {
        std::vector<std::atomic<int>> hits(n);
        std::mutex mutex;
        std::vector<std::pair<std::size_t, std::size_t>> chunks;
        parallel_for(n, min_chunk, [&](std::size_t begin, std::size_t end) {
          for (std::size_t i = begin; i < end; ++i) hits[i].fetch_add(1);
          std::lock_guard lock(mutex);
          chunks.emplace_back(begin, end);
        });
        for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n " << n << " i " << i;
        if (n == 0) continue;
        const std::size_t expected = std::min<std::size_t>(threads, std::max<std::size_t>(1, n / min_chunk));
        EXPECT_EQ(chunks.size(), expected) << "n " << n << " min_chunk " << min_chunk;
      }
    }
  }
  set_num_threads(0);
}

TEST(ParallelFor, ThousandsOfBackToBackCallsEachFinishBeforeReturning) {
  set_num_threads(3);
  std::vector<int> data(300, 0);
  for (int call = 0; call < 20000; ++call) {
    const std::size_t n = 1 + call % 300;
    parallel_for(n, 1, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) ++data[i];
    });
    // A chunk still running (or run twice) after return would show here.
    ASSERT_EQ(data[0], call + 1) << call;
  }
  set_num_threads(0);
}

TEST(ParallelFor, NestedCallsRunSeriallyAndConcurrentCallersTakeTurns) {
  set_num_threads(2);
  std::atomic<int> total{0};
  parallel_for(8, 1, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i)
      parallel_for(10, 1, [&](std::size_t b, std::size_t e) { total += static_cast<int>(e - b); });
  });
  EXPECT_EQ(total.load(), 80);
  total = 0;
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c)
    callers.emplace_back([&] {
      for (int r = 0; r < 200; ++r)
        parallel_for(50, 1, [&](std::size_t b, std::size_t e) { total += static_cast<int>(e - b); });
    });
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(total.load(), 3 * 200 * 50);
  set_num_threads(0);
}

}  // namespace
}  // namespace loom::kernels::cpu
