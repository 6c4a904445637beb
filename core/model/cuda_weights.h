// A model's weights on one GPU, in 16-bit, in one allocation: the layers [first, end) a runner
// holds (a pipeline rank holds a range; a whole-model runner all of them), with the QKV and the
// gate/up projections fused into one matrix each, and the embedding, final norm and lm head.
#pragma once

#include <cstdint>
#include <vector>

#include <cuda_runtime_api.h>

#include "core/io/model_weights.h"
#include "core/model/layer_range.h"
#include "core/runtime/device_memory.h"
#include "loom/kernels/cuda/dtype.h"

namespace loom {

struct CudaLayerWeights {
  const void* attn_norm = nullptr;
  const void* w_qkv = nullptr;   // [(heads + 2 kv_heads) * head_dim, hidden]
  const void* b_qkv = nullptr;   // Qwen2
  const void* wo = nullptr;      // [hidden, heads * head_dim]
  const void* bo = nullptr;
  const void* q_norm = nullptr;  // Qwen3
  const void* k_norm = nullptr;
  const void* ffn_norm = nullptr;
  const void* w_gate_up = nullptr;  // [2 * intermediate, hidden]: gate rows, then up rows
  const void* w_down = nullptr;     // [hidden, intermediate]
};

class CudaWeights {
 public:
  // Converts and uploads layers `layers` of `w` (and the embedding, final norm and lm head) to
  // the current device on `stream`; returns when they are there. Throws DeviceError.
  CudaWeights(const io::ModelWeights& w, LayerRange layers, kernels::cuda::DType dtype, cudaStream_t stream);

  const std::vector<CudaLayerWeights>& layers() const { return layers_; }
  const void* embedding() const { return embedding_; }
  const void* final_norm() const { return final_norm_; }
  const void* lm_head() const { return lm_head_; }
  // Bytes one forward pass reads (a tied lm head counted once, the embedding not).
  std::uint64_t bytes_per_forward() const { return bytes_per_forward_; }
  std::size_t allocated_bytes() const { return storage_.bytes(); }

 private:
  runtime::DeviceBuffer storage_;
  std::vector<CudaLayerWeights> layers_;
  const void* embedding_ = nullptr;
  const void* final_norm_ = nullptr;
  const void* lm_head_ = nullptr;
  std::uint64_t bytes_per_forward_ = 0;
};

}  // namespace loom
