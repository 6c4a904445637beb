#include "core/model/cuda_graph_cache.h"

#include "loom/cuda_check.h"

namespace loom {

CudaGraphCache::~CudaGraphCache() {
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
}

void CudaGraphCache::launch(const GraphKey& key, cudaStream_t stream, const std::function<void()>& enqueue) {
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    cudaGraph_t graph = nullptr;
    LOOM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
      enqueue();
    } catch (...) {
      cudaStreamEndCapture(stream, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    LOOM_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    LOOM_CUDA_CHECK(status);
    it = graphs_.emplace(key, exec).first;
  }
  LOOM_CUDA_CHECK(cudaGraphLaunch(it->second, stream));
}

}  // namespace loom
