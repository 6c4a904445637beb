// The CUDA half of attention/relay. Each step it chooses the shared prefix (choose_shared_prefix,
// among sequences the CUDA-core kernel attends: decodes and short chunks), runs paged attention
// with the sharing sequences starting after the prefix and their log-sum-exps kept, then relay
// attention's prefix pass and merge (loom/kernels/cuda/relay_attention.h). A step without
// sharing runs paged attention's launches alone; a step with sharing adds the two relay launches,
// which read their plan (rows, prefix, chunks) from device memory: graph_key() tells the engine
// which of the two graphs a padded batch size replays.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "loom/attention.h"
#include "loom/cuda_buffer.h"
#include "loom/engine_info.h"
#include "loom/kernels/cuda/paged_attention_runner.h"

namespace loom_attention_relay {

class CudaRelayAttention {
 public:
  // Must run with the model's device current.
  explicit CudaRelayAttention(const loom::sdk::EngineInfo& info);

  // pinned: the configured system prompt's blocks, or empty (choose_shared_prefix).
  void prepare(const loom::sdk::AttentionBatch& batch, const loom::sdk::KvCacheView& cache, loom::sdk::Stream stream,
               std::span<const loom::sdk::BlockId> pinned);
  void forward(std::uint32_t layer, const loom::sdk::TensorView& q, const loom::sdk::TensorView& k,
               const loom::sdk::TensorView& v, const loom::sdk::KvCacheView& cache, const loom::sdk::TensorView& out,
               loom::sdk::Stream stream);

  // Of the prepared step: query rows that read the shared prefix in the relay pass.
  int relay_rows() const { return relay_rows_; }

 private:
  loom::kernels::cuda::PagedAttentionRunner paged_;
  int num_heads_ = 0, num_kv_heads_ = 0, head_dim_ = 0, max_tokens_ = 0, max_prefix_blocks_ = 0;
  int partial_rows_ = 0;  // capacity of the partial buffer in (chunk, row) pairs
  int grid_ = 0;          // of the prefix pass, sized once the KV dtype is known
  float scale_ = 1.0f;
  // counts {rows, prefix keys, keys per chunk, unused}, the prefix's blocks (room for a whole
  // context), then the rows: one copy per step.
  loom::sdk::DeviceBuffer plan_device_;
  loom::sdk::PinnedBuffer plan_host_;
  loom::sdk::DeviceBuffer lse_;      // float [tokens, heads]: paged attention's log-sum-exps
  loom::sdk::DeviceBuffer partial_;  // float [chunks, rows, heads, head_dim + 2]
  std::vector<std::int32_t> k_first_;
  std::vector<std::uint8_t> eligible_;
  int relay_rows_ = 0, prefix_keys_ = 0;
};

}  // namespace loom_attention_relay
