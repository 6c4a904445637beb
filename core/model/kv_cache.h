// The KV cache in host memory: for every layer, K and V arrays laid out
// [num_blocks, block_size, num_kv_heads, head_dim] in fp32, as sdk::KvCacheView describes.
#pragma once

#include <cstdint>
#include <vector>

#include "loom/tensor.h"
#include "loom/types.h"

namespace loom {

class CpuKvCache {
 public:
  CpuKvCache(std::uint32_t num_layers, std::uint32_t num_blocks, std::uint32_t block_size, std::uint32_t num_kv_heads,
             std::uint32_t head_dim);

  // Valid while this cache lives.
  const sdk::KvCacheView& view() const { return view_; }

  // Copies block `src` into block `dst` in every layer (copy-on-write).
  void copy_block(sdk::BlockId src, sdk::BlockId dst);

  // Bytes of K and V per block across all layers.
  std::uint64_t bytes_per_block() const;

 private:
  std::vector<float> storage_;
  std::vector<sdk::KvCacheView::Layer> layers_;
  sdk::KvCacheView view_;
};

}  // namespace loom
