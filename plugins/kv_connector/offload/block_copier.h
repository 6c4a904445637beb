// Copying KV blocks between the KV cache and the host tier's memory, wherever the cache lives. A
// block is stored on the host as K then V of every layer, one after the other.
//
// Copies come in batches: begin() (after the forward work already queued on the engine's
// stream), copy_out / copy_in for each block, end(). On the CPU each copy is a memcpy, done when
// the call returns. On a GPU (cuda_block_copier.cpp) a batch runs on the copier's own stream
// with the copy engines, overlapped with compute, and batches finish in order: the CPU must call
// finish() before it touches host memory that a copy uses, and compute_waits() orders the
// engine's stream after a batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "loom/dtype.h"
#include "loom/tensor.h"
#include "loom/types.h"

namespace loom::offload {

// Memory for the host tier's slots, freed as it was allocated.
using HostArena = std::unique_ptr<char[], void (*)(char*)>;

class BlockCopier {
 public:
  using BatchId = std::uint64_t;
  static constexpr std::size_t kAllLayers = SIZE_MAX;

  virtual ~BlockCopier() = default;

  // `bytes` of host memory that this copier's copies reach at full speed (pinned for a GPU).
  virtual HostArena allocate_host(std::size_t bytes) = 0;

  // A batch's copies start after the work already enqueued on `compute` (none: after the earlier
  // batches only).
  virtual void begin(const sdk::KvCacheView& cache, sdk::Stream compute) = 0;
  // Block `block` of the cache into `to` (its bytes, K and V of every layer).
  virtual void copy_out(sdk::BlockId block, std::span<char> to) = 0;
  // Layers [first_layer, first_layer + num_layers) of `from` (a whole block's bytes) into block
  // `block` of the cache. `from` must stay unchanged until finish() unless it came from
  // allocate_host().
  virtual void copy_in(std::span<const char> from, sdk::BlockId block, std::size_t first_layer,
                       std::size_t num_layers) = 0;
  void copy_in(std::span<const char> from, sdk::BlockId block) { copy_in(from, block, 0, kAllLayers); }
  // Closes the batch; its id names it to compute_waits().
  virtual BatchId end() = 0;

  // Work enqueued on `compute` from now on runs after batch `batch`'s copies (and the earlier
  // batches').
  virtual void compute_waits(sdk::Stream compute, BatchId batch) = 0;
  // Every copy begun so far is done.
  virtual void finish() = 0;

  // Bytes copied each way and the time the copies took (in_ = into the cache), and the rates
  // the device reached at start-up with large transfers (0 on the CPU).
  struct Counts {
    std::uint64_t in_bytes = 0, in_ns = 0, out_bytes = 0, out_ns = 0;
    std::uint64_t peak_in_mb_per_s = 0, peak_out_mb_per_s = 0;
  };
  virtual Counts counts() const = 0;
};

std::unique_ptr<BlockCopier> make_cpu_block_copier();
// `device` as [engine] device says it: "cuda" or "cuda:N". Throws loom::Error in a build
// without CUDA.
std::unique_ptr<BlockCopier> make_cuda_block_copier(const std::string& device);

// The bytes of one block in one layer's K (or V) array.
inline std::size_t block_array_bytes(const sdk::KvCacheView& cache) {
  return cache.block_elements() * sdk::dtype_size(cache.dtype);
}

}  // namespace loom::offload
