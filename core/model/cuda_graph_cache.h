// CUDA graphs of whole decode steps, captured on the first step of each key and replayed after.
// A key is the padded batch size and the attention backend's launch variant
// (AttentionBackend::graph_key), so a backend whose launches differ between steps gets a graph
// per variant instead of replaying the wrong one.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>

#include <cuda_runtime_api.h>

namespace loom {

struct GraphKey {
  int padded_tokens = 0;
  std::uint64_t attention_variant = 0;
  auto operator<=>(const GraphKey&) const = default;
};

class CudaGraphCache {
 public:
  CudaGraphCache() = default;
  ~CudaGraphCache();
  CudaGraphCache(const CudaGraphCache&) = delete;
  CudaGraphCache& operator=(const CudaGraphCache&) = delete;

  // Launches the graph of `key` on `stream`, first capturing what `enqueue` puts on the stream
  // into it if the key is new. Throws DeviceError (a failed capture leaves no graph behind).
  void launch(const GraphKey& key, cudaStream_t stream, const std::function<void()>& enqueue);

  std::size_t size() const { return graphs_.size(); }

 private:
  std::map<GraphKey, cudaGraphExec_t> graphs_;
};

}  // namespace loom
