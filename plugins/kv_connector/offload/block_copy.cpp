#include "block_copy.h"

#include <cstring>

#include "loom/dtype.h"
#include "loom/error.h"
#if LOOM_HAVE_CUDA
#include "loom/cuda_check.h"
#endif

namespace loom::offload {

namespace {

std::size_t layer_bytes(const sdk::KvCacheView& cache) { return cache.block_elements() * sdk::dtype_size(cache.dtype); }

void copy(const sdk::KvCacheView& cache, void* to, const void* from, std::size_t n, bool to_cache) {
  if (cache.device.kind == sdk::DeviceKind::cpu) {
    std::memcpy(to, from, n);
    return;
  }
#if LOOM_HAVE_CUDA
  LOOM_CUDA_CHECK(cudaSetDevice(cache.device.index));
  LOOM_CUDA_CHECK(cudaMemcpy(to, from, n, to_cache ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost));
#else
  (void)to_cache;
  throw Error("offload: the KV cache is on a GPU, and this build has no CUDA");
#endif
}

}  // namespace

void copy_block_out(const sdk::KvCacheView& cache, sdk::BlockId block, std::span<char> to) {
  const std::size_t n = layer_bytes(cache);
  std::size_t at = 0;
  for (const auto& layer : cache.layers)
    for (const void* base : {layer.k, layer.v}) {
      copy(cache, to.data() + at, static_cast<const char*>(base) + block * n, n, false);
      at += n;
    }
}

void copy_block_in(const sdk::KvCacheView& cache, sdk::BlockId block, std::span<const char> from) {
  const std::size_t n = layer_bytes(cache);
  std::size_t at = 0;
  for (const auto& layer : cache.layers)
    for (void* base : {layer.k, layer.v}) {
      copy(cache, static_cast<char*>(base) + block * n, from.data() + at, n, true);
      at += n;
    }
}

}  // namespace loom::offload
