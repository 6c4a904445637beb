// Collectives between the ranks of one process, each rank a thread: the transport of the
// `parallel` plugins for CPU ranks (how CI tests partitioning, collectives and scheduling without
// a GPU), and of any plugin an author writes for ranks that share an address space.
//
// Every collective is entered by every rank of the group, each from its own thread, with its own
// buffers; a rank returns once it has its result. Results do not depend on timing: all_reduce_sum
// adds the ranks' values in rank order, so every rank gets the same bits on every run.
// send/recv are buffered: send returns at once, recv waits for the matching send.
// abort() wakes every waiting rank, which throws loom::DeviceError; collectives keep throwing until
// resume(), which the runner calls once every rank has returned.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "loom/error.h"

namespace loom::sdk {

class InProcessGroup {
 public:
  explicit InProcessGroup(std::uint32_t size) : size_(size), posted_(size), posted_counts_(size), mail_(size * size) {
    if (size == 0) throw loom::Error("InProcessGroup: a group needs at least one rank");
  }

  std::uint32_t size() const { return size_; }

  // data[0..n) = the sum over ranks of each rank's data[0..n), added in rank order.
  void all_reduce_sum(std::uint32_t rank, float* data, std::size_t n) {
    if (size_ == 1) return;
    post(rank, data);
    std::vector<float> sum(static_cast<const float*>(posted_[0]), static_cast<const float*>(posted_[0]) + n);
    for (std::uint32_t r = 1; r < size_; ++r) {
      const auto* other = static_cast<const float*>(posted_[r]);
      for (std::size_t i = 0; i < n; ++i) sum[i] += other[i];
    }
    arrive();  // every rank has read every buffer before any is overwritten
    copy(data, sum.data(), n * sizeof(float));
  }

  // recv[r * bytes, (r + 1) * bytes) = rank r's send[0, bytes). `send` may lie in `recv`.
  void all_gather(std::uint32_t rank, const void* send, std::size_t bytes, void* recv) {
    std::vector<std::byte> own(bytes);
    copy(own.data(), send, bytes);
    post(rank, own.data());
    for (std::uint32_t r = 0; r < size_; ++r) copy(static_cast<std::byte*>(recv) + r * bytes, posted_[r], bytes);
    arrive();
  }

  // Rank `rank` sends send_bytes[j] bytes of `send` (taken in rank order from the first) to rank j
  // and receives recv_bytes[j] bytes from rank j into `recv`, in rank order. Throws loom::Error
  // when a count disagrees with its sender's.
  void all_to_all_v(std::uint32_t rank, const void* send, std::span<const std::uint64_t> send_bytes, void* recv,
                    std::span<const std::uint64_t> recv_bytes) {
    posted_counts_[rank] = send_bytes;
    post(rank, send);
    std::size_t at = 0;
    std::string mismatch;
    for (std::uint32_t j = 0; j < size_; ++j) {
      std::uint64_t offset = 0;
      for (std::uint32_t r = 0; r < rank; ++r) offset += posted_counts_[j][r];
      if (posted_counts_[j][rank] != recv_bytes[j]) {
        mismatch = "rank " + std::to_string(rank) + " expected " + std::to_string(recv_bytes[j]) + " bytes from rank " +
                   std::to_string(j) + ", which sends " + std::to_string(posted_counts_[j][rank]);
      } else {
        copy(static_cast<std::byte*>(recv) + at, static_cast<const std::byte*>(posted_[j]) + offset, recv_bytes[j]);
      }
      at += recv_bytes[j];
    }
    arrive();
    if (!mismatch.empty()) throw loom::Error("InProcessGroup::all_to_all_v: " + mismatch);
  }

  void send(std::uint32_t from, std::uint32_t to, const void* data, std::size_t bytes) {
    std::lock_guard lock(mutex_);
    throw_if_aborted();
    std::vector<std::byte> message(bytes);
    copy(message.data(), data, bytes);
    mail_[from * size_ + to].push_back(std::move(message));
    wake_.notify_all();
  }

  // Waits for the oldest message from `from` to `to`; throws loom::Error when its size differs.
  void recv(std::uint32_t to, std::uint32_t from, void* data, std::size_t bytes) {
    std::unique_lock lock(mutex_);
    auto& box = mail_[from * size_ + to];
    wake_.wait(lock, [&] { return aborted_ || !box.empty(); });
    throw_if_aborted();
    std::vector<std::byte> message = std::move(box.front());
    box.pop_front();
    if (message.size() != bytes)
      throw loom::Error("InProcessGroup::recv: rank " + std::to_string(to) + " expected " + std::to_string(bytes) +
                        " bytes from rank " + std::to_string(from) + ", which sent " + std::to_string(message.size()));
    copy(data, message.data(), bytes);
  }

  void abort() {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    wake_.notify_all();
  }

  void resume() {
    std::lock_guard lock(mutex_);
    aborted_ = false;
    arrived_ = 0;
    ++generation_;
    for (auto& box : mail_) box.clear();
  }

 private:
  // memcpy of `bytes`, which may be 0 with null pointers (an empty step's buffers).
  static void copy(void* to, const void* from, std::size_t bytes) {
    if (bytes > 0) std::memcpy(to, from, bytes);
  }

  // Publishes this rank's buffer, then waits until every rank has.
  void post(std::uint32_t rank, const void* buffer) {
    posted_[rank] = buffer;
    arrive();
  }

  // A barrier of all ranks.
  void arrive() {
    std::unique_lock lock(mutex_);
    throw_if_aborted();
    const std::uint64_t generation = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      wake_.notify_all();
      return;
    }
    wake_.wait(lock, [&] { return aborted_ || generation_ != generation; });
    if (generation_ == generation) throw_if_aborted();
  }

  void throw_if_aborted() const {
    if (aborted_) throw loom::DeviceError("a collective was abandoned because another rank failed");
  }

  const std::uint32_t size_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::uint32_t arrived_ = 0;
  std::uint64_t generation_ = 0;
  bool aborted_ = false;
  std::vector<const void*> posted_;                            // each rank's buffer in the current collective
  std::vector<std::span<const std::uint64_t>> posted_counts_;  // all_to_all_v's send counts
  std::vector<std::deque<std::vector<std::byte>>> mail_;       // [from * size + to]
};

}  // namespace loom::sdk
