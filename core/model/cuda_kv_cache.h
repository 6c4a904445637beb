// The KV cache in GPU memory: one allocation holding every layer's K and V arrays in fp16 or
// bf16, laid out as sdk::KvCacheView describes. Block copies are enqueued on the model's stream,
// so they land before the next forward pass.
#pragma once

#include <vector>

#include <cuda_runtime_api.h>

#include "core/model/kv_cache.h"
#include "core/runtime/device_memory.h"

namespace loom {

class CudaKvCache final : public KvCache {
 public:
  CudaKvCache(int device_index, sdk::DType dtype, std::uint32_t num_layers, std::uint32_t num_blocks,
              std::uint32_t block_size, std::uint32_t num_kv_heads, std::uint32_t head_dim, cudaStream_t stream);

  const sdk::KvCacheView& view() const override { return view_; }
  void copy_block(sdk::BlockId src, sdk::BlockId dst) override;
  std::uint64_t bytes_per_block() const override;
  sdk::Stream stream() const override { return stream_; }

 private:
  runtime::DeviceBuffer storage_;
  std::vector<sdk::KvCacheView::Layer> layers_;
  sdk::KvCacheView view_;
  cudaStream_t stream_;
};

}  // namespace loom
