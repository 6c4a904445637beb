// The CPU ranks' transport (loom/in_process_group.h), each rank a thread: sums in rank order
// (the same bits on every rank), gathers, uneven all-to-all, buffered send/recv, and abort waking
// ranks that wait for one that failed.
#include "loom/in_process_group.h"

#include <gtest/gtest.h>

#include <bit>
#include <chrono>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace loom::sdk {
namespace {

void on_ranks(std::uint32_t n, const std::function<void(std::uint32_t)>& work) {
  std::vector<std::thread> threads;
  for (std::uint32_t r = 0; r < n; ++r) threads.emplace_back(work, r);
  for (auto& t : threads) t.join();
}

TEST(InProcessGroup, AllReduceAddsInRankOrderAndEveryRankGetsTheSameBitsAtRaggedSizes) {
  for (std::uint32_t ranks : {1u, 2u, 3u, 5u}) {
    for (std::size_t n : {1u, 7u, 1000u}) {
      InProcessGroup group(ranks);
      std::vector<std::vector<float>> data(ranks, std::vector<float>(n));
      std::mt19937 rng(ranks * 1000 + static_cast<unsigned>(n));
      std::normal_distribution<float> value(0.0f, 1e3f);
      for (auto& d : data)
        for (float& x : d) x = value(rng);
      std::vector<float> expected(n);
      for (std::size_t i = 0; i < n; ++i) {
        float sum = data[0][i];
        for (std::uint32_t r = 1; r < ranks; ++r) sum += data[r][i];
        expected[i] = sum;
      }
      for (int round = 0; round < 3; ++round) {  // the same collective again reuses the group
        auto copy = data;
        on_ranks(ranks, [&](std::uint32_t r) { group.all_reduce_sum(r, copy[r].data(), n); });
        for (std::uint32_t r = 0; r < ranks; ++r)
          for (std::size_t i = 0; i < n; ++i)
            ASSERT_EQ(std::bit_cast<std::uint32_t>(copy[r][i]), std::bit_cast<std::uint32_t>(expected[i]))
                << ranks << " ranks, n " << n << ", rank " << r << ", element " << i;
      }
    }
  }
}

TEST(InProcessGroup, AllGatherPlacesEachRanksBytesAtItsOffsetInPlaceOrNot) {
  constexpr std::uint32_t kRanks = 3;
  InProcessGroup group(kRanks);
  std::vector<std::vector<int>> recv(kRanks, std::vector<int>(kRanks * 4, -1));
  on_ranks(kRanks, [&](std::uint32_t r) {
    std::vector<int> send = {int(r), int(r) + 10, int(r) + 20, int(r) + 30};
    if (r == 1) {  // in place: its own slot of recv
      std::copy(send.begin(), send.end(), recv[r].begin() + 4);
      group.all_gather(r, recv[r].data() + 4, 4 * sizeof(int), recv[r].data());
    } else {
      group.all_gather(r, send.data(), 4 * sizeof(int), recv[r].data());
    }
  });
  for (std::uint32_t r = 0; r < kRanks; ++r)
    EXPECT_EQ(recv[r], (std::vector<int>{0, 10, 20, 30, 1, 11, 21, 31, 2, 12, 22, 32})) << r;
}

// A step that samples no row gathers nothing: empty buffers (null pointers) on every rank.
TEST(InProcessGroup, EmptyBuffersCrossEveryCollectiveWithNullPointers) {
  InProcessGroup group(2);
  on_ranks(2, [&](std::uint32_t r) {
    group.all_gather(r, nullptr, 0, nullptr);
    group.all_reduce_sum(r, nullptr, 0);
    const std::vector<std::uint64_t> none = {0, 0};
    group.all_to_all_v(r, nullptr, none, nullptr, none);
    if (r == 0) group.send(0, 1, nullptr, 0);
    if (r == 1) group.recv(1, 0, nullptr, 0);
  });
}

TEST(InProcessGroup, AllToAllVDeliversUnevenCountsInRankOrderAndRefusesAMismatch) {
  constexpr std::uint32_t kRanks = 3;
  InProcessGroup group(kRanks);
  // Rank i sends (i + j) % 3 bytes to rank j, each byte 10 * i + j.
  auto count = [](std::uint32_t from, std::uint32_t to) { return static_cast<std::uint64_t>((from + to) % 3); };
  std::vector<std::vector<std::uint8_t>> received(kRanks);
  on_ranks(kRanks, [&](std::uint32_t r) {
    std::vector<std::uint8_t> send;
    std::vector<std::uint64_t> send_bytes, recv_bytes;
    for (std::uint32_t j = 0; j < kRanks; ++j) {
      send_bytes.push_back(count(r, j));
      recv_bytes.push_back(count(j, r));
      for (std::uint64_t b = 0; b < count(r, j); ++b) send.push_back(static_cast<std::uint8_t>(10 * r + j));
    }
    received[r].resize(recv_bytes[0] + recv_bytes[1] + recv_bytes[2], 0xff);
    group.all_to_all_v(r, send.data(), send_bytes, received[r].data(), recv_bytes);
  });
  EXPECT_EQ(received[0], (std::vector<std::uint8_t>{10, 20, 20}));  // 0 from 0, 1 from 1, 2 from 2
  EXPECT_EQ(received[1], (std::vector<std::uint8_t>{1, 11, 11}));   // 1 from 0, 2 from 1, 0 from 2
  EXPECT_EQ(received[2], (std::vector<std::uint8_t>{2, 2, 22}));    // 2 from 0, 0 from 1, 1 from 2

  std::vector<std::string> errors(2);
  InProcessGroup pair(2);
  on_ranks(2, [&](std::uint32_t r) {
    std::vector<std::uint8_t> send(4), recv(8);
    std::vector<std::uint64_t> send_bytes = {2, 2}, recv_bytes = {2, r == 1 ? 3u : 2u};
    try {
      pair.all_to_all_v(r, send.data(), send_bytes, recv.data(), recv_bytes);
    } catch (const Error& e) {
      errors[r] = e.what();
    }
  });
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "InProcessGroup::all_to_all_v: rank 1 expected 3 bytes from rank 1, which sends 2");
}

TEST(InProcessGroup, SendIsBufferedAndRecvTakesMessagesInOrderCheckingTheirSize) {
  InProcessGroup group(2);
  const float a[2] = {1, 2}, b[3] = {3, 4, 5};
  group.send(0, 1, a, sizeof a);  // returns at once: nobody receives yet
  group.send(0, 1, b, sizeof b);
  float got[3] = {};
  group.recv(1, 0, got, sizeof a);
  EXPECT_EQ(got[1], 2);
  EXPECT_THROW(group.recv(1, 0, got, sizeof a), Error) << "the second message is 12 bytes, not 8";
  float later = 0;
  std::thread receiver([&] { group.recv(1, 0, &later, sizeof later); });  // waits for the send
  const float seven = 7;
  group.send(0, 1, &seven, sizeof seven);
  receiver.join();
  EXPECT_EQ(later, 7);
}

TEST(InProcessGroup, AbortWakesRanksWaitingForOneThatFailedUntilResume) {
  InProcessGroup group(3);
  std::vector<std::string> errors(3);
  on_ranks(3, [&](std::uint32_t r) {
    float x = 1;
    try {
      if (r == 2) {  // fails before its collective; the other two wait in theirs
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        group.abort();
        throw Error("rank 2 failed");
      }
      group.all_reduce_sum(r, &x, 1);
    } catch (const Error& e) {
      errors[r] = e.what();
    }
  });
  EXPECT_EQ(errors[0], "a collective was abandoned because another rank failed");
  EXPECT_EQ(errors[1], errors[0]);
  float y = 0;
  EXPECT_THROW(group.recv(0, 1, &y, sizeof y), DeviceError) << "aborted until resumed";
  group.resume();
  std::vector<float> values = {1, 2, 3};
  on_ranks(3, [&](std::uint32_t r) { group.all_reduce_sum(r, &values[r], 1); });
  EXPECT_EQ(values, (std::vector<float>{6, 6, 6}));
}

}  // namespace
}  // namespace loom::sdk
