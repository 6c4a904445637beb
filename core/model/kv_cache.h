// The paged KV cache: for every layer, K and V arrays laid out
// [num_blocks, block_size, num_kv_heads, head_dim], as sdk::KvCacheView describes. KvCache is the
// engine's handle whatever the device; CpuKvCache keeps fp32 arrays in host memory (the CUDA
// cache is in cuda_model.h).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "loom/tensor.h"
#include "loom/types.h"

namespace loom {

class KvCache {
 public:
  virtual ~KvCache() = default;
  // Valid while this cache lives.
  virtual const sdk::KvCacheView& view() const = 0;
  // Copies block `src` into block `dst` in every layer (copy-on-write), ordered before the next
  // forward pass.
  virtual void copy_block(sdk::BlockId src, sdk::BlockId dst) = 0;
  // Bytes of K and V per block across all layers.
  virtual std::uint64_t bytes_per_block() const = 0;
  // The stream on which forward passes read and write the cache (a cudaStream_t on a GPU), handed
  // to the KV connector so that its copies order themselves against them; none on the CPU.
  virtual sdk::Stream stream() const { return nullptr; }
};

class CpuKvCache final : public KvCache {
 public:
  CpuKvCache(std::uint32_t num_layers, std::uint32_t num_blocks, std::uint32_t block_size, std::uint32_t num_kv_heads,
             std::uint32_t head_dim);

  const sdk::KvCacheView& view() const override { return view_; }
  void copy_block(sdk::BlockId src, sdk::BlockId dst) override;
  std::uint64_t bytes_per_block() const override;

 private:
  struct Free {
    void operator()(float* p) const noexcept;
  };
  // calloc: a large pool comes from the OS as zero pages mapped on first touch, so start-up does
  // not write gigabytes of zeros, and blocks never used cost no memory.
  std::unique_ptr<float, Free> storage_;
  std::vector<sdk::KvCacheView::Layer> layers_;
  sdk::KvCacheView view_;
};

}  // namespace loom
