// The example's two CUDA kernels, behind a plain C++ interface so that the plugin's host code
// (compiled by g++, with the SDK's C++20 headers) and the kernels (compiled by nvcc) meet only here.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace simple_attention {

// The step's layout on the device, written by the plugin's prepare(): a count, then per token its
// position in its sequence and where its sequence's block table starts in `tables`.
struct StepLayout {
  const std::int32_t* num_tokens = nullptr;   // device scalar: rows past it are padding
  const std::int32_t* positions = nullptr;    // [tokens]: the token sees keys 0 .. position
  const std::int32_t* table_starts = nullptr; // [tokens]: offset of its block table in tables
  const std::int32_t* tables = nullptr;       // every sequence's block table, one after the other
};

struct Shape {
  int rows = 0;  // launched rows (the padded token count under CUDA graphs)
  int num_heads = 0, num_kv_heads = 0, head_dim = 0, block_size = 0;
  float scale = 1.0f;
  bool bf16 = false;  // else fp16
};

// Copies each token's k and v rows ([rows, num_kv_heads, head_dim], 16-bit) into its cache slot.
cudaError_t store_kv(const StepLayout& layout, const Shape& shape, const void* k, const void* v, void* k_cache,
                     void* v_cache, cudaStream_t stream);

// out = softmax(q k^T * scale) v over each token's visible keys, one warp per (token, head),
// fp32 arithmetic with an online softmax. head_dim at most 256.
cudaError_t attend(const StepLayout& layout, const Shape& shape, const void* q, const void* k_cache,
                   const void* v_cache, void* out, cudaStream_t stream);

}  // namespace simple_attention
