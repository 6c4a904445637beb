#include "core/model/cuda_kv_cache.h"

#include "loom/cuda_check.h"

namespace loom {

CudaKvCache::CudaKvCache(int device_index, sdk::DType dtype, std::uint32_t num_layers, std::uint32_t num_blocks,
                         std::uint32_t block_size, std::uint32_t num_kv_heads, std::uint32_t head_dim,
                         cudaStream_t stream)
    : stream_(stream) {
  view_.dtype = dtype;
  view_.device = sdk::Device{sdk::DeviceKind::cuda, device_index};
  view_.num_blocks = num_blocks;
  view_.block_size = block_size;
  view_.num_kv_heads = num_kv_heads;
  view_.head_dim = head_dim;
  const std::size_t per_array = static_cast<std::size_t>(num_blocks) * view_.block_elements() * sdk::dtype_size(dtype);
  storage_ = runtime::DeviceBuffer(per_array * 2 * num_layers,
                                   "the KV cache (" + std::to_string(num_blocks) + " blocks of " +
                                       std::to_string(block_size) + " tokens)");
  // Zeroed so that a slot read before it is written (a bug) gives zeros, not NaN from old memory.
  LOOM_CUDA_CHECK(cudaMemsetAsync(storage_.data(), 0, storage_.bytes(), stream_));
  auto* base = storage_.as<unsigned char>();
  for (std::uint32_t l = 0; l < num_layers; ++l)
    layers_.push_back({base + 2 * l * per_array, base + (2 * l + 1) * per_array});
  view_.layers = layers_;
}

void CudaKvCache::copy_block(sdk::BlockId src, sdk::BlockId dst) {
  const std::size_t n = view_.block_elements() * sdk::dtype_size(view_.dtype);
  for (const auto& layer : layers_) {
    for (void* base : {layer.k, layer.v}) {
      auto* data = static_cast<unsigned char*>(base);
      LOOM_CUDA_CHECK(cudaMemcpyAsync(data + static_cast<std::size_t>(dst) * n, data + static_cast<std::size_t>(src) * n,
                                      n, cudaMemcpyDeviceToDevice, stream_));
    }
  }
}

std::uint64_t CudaKvCache::bytes_per_block() const {
  return 2ull * layers_.size() * view_.block_elements() * sdk::dtype_size(view_.dtype);
}

}  // namespace loom
