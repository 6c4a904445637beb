#include "core/model/kv_cache.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "loom/error.h"

namespace loom {

CpuKvCache::CpuKvCache(std::uint32_t num_layers, std::uint32_t num_blocks, std::uint32_t block_size,
                       std::uint32_t num_kv_heads, std::uint32_t head_dim) {
  view_.dtype = sdk::DType::f32;
  view_.device = sdk::Device{sdk::DeviceKind::cpu, 0};
  view_.num_blocks = num_blocks;
  view_.block_size = block_size;
  view_.num_kv_heads = num_kv_heads;
  view_.head_dim = head_dim;
  const std::size_t per_array = static_cast<std::size_t>(num_blocks) * view_.block_elements();
  const std::size_t elements = per_array * 2 * num_layers;
  storage_.reset(static_cast<float*>(std::calloc(std::max<std::size_t>(elements, 1), sizeof(float))));
  if (!storage_)
    throw Error("cannot allocate " + std::to_string(elements * sizeof(float) >> 20) + " MiB for the KV cache (" +
                std::to_string(num_blocks) + " blocks); lower kv.num_blocks or kv.cache_memory");
  float* data = storage_.get();
  for (std::uint32_t l = 0; l < num_layers; ++l)
    layers_.push_back({data + 2 * l * per_array, data + (2 * l + 1) * per_array});
  view_.layers = layers_;
}

void CpuKvCache::Free::operator()(float* p) const noexcept { std::free(p); }

void CpuKvCache::copy_block(sdk::BlockId src, sdk::BlockId dst) {
  const std::size_t n = view_.block_elements();
  for (const auto& layer : layers_) {
    for (void* base : {layer.k, layer.v}) {
      float* data = static_cast<float*>(base);
      std::copy_n(data + static_cast<std::size_t>(src) * n, n, data + static_cast<std::size_t>(dst) * n);
    }
  }
}

std::uint64_t CpuKvCache::bytes_per_block() const {
  return 2ull * layers_.size() * view_.block_elements() * sizeof(float);
}

}  // namespace loom
