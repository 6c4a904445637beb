// Splits the fused QKV projection into q, k, v and applies rotary position embeddings to q and k
// (after Qwen3's per-head RMSNorm when given), on the GPU.
//
// The angles come from a table the caller fills once from the CPU's rope_cos_sin (angles in
// double, so both backends rotate by the same rounded cos/sin): cos_sin[p, 0:half] = cos and
// cos_sin[p, half:2*half] = sin for position p, half = head_dim / 2.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "loom/kernels/cuda/dtype.h"

namespace loom::kernels::cuda {

struct RopeSplitArgs {
  const void* qkv = nullptr;           // [T, (heads + 2 * kv_heads) * head_dim]
  const std::int32_t* positions = nullptr;  // [T], each < table_positions
  const float* cos_sin = nullptr;      // [table_positions, head_dim]
  int table_positions = 0;
  int num_tokens = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;                    // even, <= 256
  bool interleaved = false;            // llama2.c pairs (2i, 2i+1); HF pairs (i, i + half)
  const void* q_norm = nullptr;        // [head_dim] or nullptr (Qwen3 QK-norm)
  const void* k_norm = nullptr;
  float norm_eps = 1e-6f;
  void* q = nullptr;                   // [T, heads, head_dim]
  void* k = nullptr;                   // [T, kv_heads, head_dim]
  void* v = nullptr;                   // [T, kv_heads, head_dim]
};

cudaError_t rope_split_qkv(const RopeSplitArgs& args, DType dtype, cudaStream_t stream);

}  // namespace loom::kernels::cuda
