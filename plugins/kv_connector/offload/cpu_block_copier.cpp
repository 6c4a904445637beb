// The CPU engine's copier: the KV pool is host memory, so a copy is a memcpy per layer array.
#include <algorithm>
#include <chrono>
#include <cstring>

#include "block_copier.h"

namespace loom::offload {

namespace {

class CpuBlockCopier final : public BlockCopier {
 public:
  HostArena allocate_host(std::size_t bytes) override {
    // Left uninitialised: pages are taken as slots are filled.
    return HostArena(new char[bytes], [](char* p) { delete[] p; });
  }
  void begin(const sdk::KvCacheView& cache, sdk::Stream) override { cache_ = cache; }
  void copy_out(sdk::BlockId block, std::span<char> to) override {
    const auto start = std::chrono::steady_clock::now();
    const std::size_t n = block_array_bytes(cache_);
    std::size_t at = 0;
    for (const auto& layer : cache_.layers)
      for (const void* base : {layer.k, layer.v}) {
        std::memcpy(to.data() + at, static_cast<const char*>(base) + block * n, n);
        at += n;
      }
    counts_.out_bytes += at;
    counts_.out_ns += elapsed_ns(start);
  }
  void copy_in(std::span<const char> from, sdk::BlockId block, std::size_t first_layer,
               std::size_t num_layers) override {
    const auto start = std::chrono::steady_clock::now();
    const std::size_t n = block_array_bytes(cache_);
    const std::size_t end = first_layer + std::min(num_layers, cache_.layers.size() - first_layer);
    for (std::size_t l = first_layer; l < end; ++l) {
      std::memcpy(static_cast<char*>(cache_.layers[l].k) + block * n, from.data() + 2 * l * n, n);
      std::memcpy(static_cast<char*>(cache_.layers[l].v) + block * n, from.data() + (2 * l + 1) * n, n);
    }
    counts_.in_bytes += 2 * (end - first_layer) * n;
    counts_.in_ns += elapsed_ns(start);
  }
  BatchId end() override { return 0; }
  void compute_waits(sdk::Stream, BatchId) override {}
  void finish() override {}
  Counts counts() const override { return counts_; }

 private:
  static std::uint64_t elapsed_ns(std::chrono::steady_clock::time_point start) {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
  }

  sdk::KvCacheView cache_;
  Counts counts_;
};

}  // namespace

std::unique_ptr<BlockCopier> make_cpu_block_copier() { return std::make_unique<CpuBlockCopier>(); }

}  // namespace loom::offload
