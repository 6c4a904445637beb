#include "cuda_relay_attention.h"

#include <algorithm>
#include <cstring>

#include "loom/cuda_check.h"
#include "loom/error.h"
#include "loom/kernels/cuda/relay_attention.h"
#include "shared_prefix.h"

namespace loom_attention_relay {

using namespace loom::sdk;
namespace kc = loom::kernels::cuda;

namespace {

constexpr int kRowsPerCta = 32;        // relay_attention.cu's rows per CTA
constexpr int kMinKeysPerChunk = 128;  // a chunk's keys amortise staging its 32 queries
constexpr std::size_t kCountsBytes = 4 * sizeof(std::int32_t);

int round_up(int x, int to) { return (x + to - 1) / to * to; }

}  // namespace

CudaRelayAttention::CudaRelayAttention(const EngineInfo& info)
    : paged_(info, "attention/relay"),
      num_heads_(static_cast<int>(info.model.num_heads)),
      num_kv_heads_(static_cast<int>(info.model.num_kv_heads)),
      head_dim_(static_cast<int>(info.model.head_dim)),
      max_tokens_(static_cast<int>(std::max(info.max_num_batched_tokens, info.max_num_seqs))) {
  const std::uint32_t context = std::max<std::uint32_t>(info.model.max_position, 1);
  max_prefix_blocks_ = static_cast<int>((context + info.block_size - 1) / info.block_size);
  // Few sharing rows want many chunks to fill the GPU, many rows few: a few rows per sequence.
  partial_rows_ = std::max(max_tokens_, 4 * static_cast<int>(info.max_num_seqs));
  const std::size_t plan_bytes = kCountsBytes + (static_cast<std::size_t>(max_tokens_) + max_prefix_blocks_) * 4;
  plan_device_ = DeviceBuffer(plan_bytes, "attention/relay's step plan");
  plan_host_ = PinnedBuffer(plan_bytes, "attention/relay's step plan");
  std::memset(plan_host_.data(), 0, plan_bytes);
  LOOM_CUDA_CHECK(cudaMemset(plan_device_.data(), 0, plan_bytes));
  lse_ = DeviceBuffer(static_cast<std::size_t>(max_tokens_) * num_heads_ * sizeof(float),
                      "attention/relay's log-sum-exps");
  partial_ = DeviceBuffer(static_cast<std::size_t>(partial_rows_) * num_heads_ * (head_dim_ + 2) * sizeof(float),
                          "attention/relay's prefix results");
}

void CudaRelayAttention::prepare(const AttentionBatch& batch, const KvCacheView& cache, Stream stream,
                                 std::span<const BlockId> pinned) {
  num_heads_ = static_cast<int>(batch.num_heads);
  scale_ = batch.scale;
  const int bs = static_cast<int>(cache.block_size);
  if (grid_ == 0) {
    grid_ = kc::relay_attention_grid(cache.dtype, head_dim_);
    if (grid_ <= 0) throw loom::Error("attention/relay: cannot size the CUDA relay kernel's grid");
  }

  eligible_.clear();
  for (const AttentionSeq& s : batch.seqs) eligible_.push_back(paged_.on_cuda_cores(s.q_len) ? 1 : 0);
  const PrefixChoice prefix = choose_shared_prefix(batch.seqs, cache.block_size, eligible_, pinned);
  prefix_keys_ = static_cast<int>(prefix.blocks.size()) * bs;
  k_first_.assign(batch.seqs.size(), 0);
  for (int m : prefix.members) k_first_[static_cast<std::size_t>(m)] = prefix_keys_;
  paged_.prepare(batch, cache, stream, k_first_);  // checks the step fits what the buffers were sized for

  // The sharing rows (at most the step's tokens, so they fit the rows region and partial_rows_).
  auto* blocks = reinterpret_cast<std::int32_t*>(plan_host_.as<unsigned char>() + kCountsBytes);
  auto* rows = blocks + max_prefix_blocks_;
  int tokens = 0;
  for (int m : prefix.members) {
    const AttentionSeq& s = batch.seqs[static_cast<std::size_t>(m)];
    for (std::uint32_t i = 0; i < s.q_len; ++i) rows[tokens++] = static_cast<std::int32_t>(s.q_start + i);
  }
  relay_rows_ = tokens;
  if (tokens == 0) return;  // forward() runs paged attention alone

  // Chunks of the prefix: enough CTAs for one wave of the grid, within the partial buffer.
  const int row_tiles = (tokens * (num_heads_ / num_kv_heads_) + kRowsPerCta - 1) / kRowsPerCta;
  const int wanted_chunks = std::max(1, grid_ / (row_tiles * num_kv_heads_));
  const int max_chunks = std::max(1, partial_rows_ / tokens);
  const int chunks = std::min(wanted_chunks, max_chunks);
  int keys_per_chunk = std::max(kMinKeysPerChunk, round_up((prefix_keys_ + chunks - 1) / chunks, 32));
  while ((prefix_keys_ + keys_per_chunk - 1) / keys_per_chunk > max_chunks) keys_per_chunk += 32;
  const std::int32_t counts[4] = {tokens, prefix_keys_, keys_per_chunk, 0};
  std::memcpy(plan_host_.data(), counts, kCountsBytes);
  std::copy(prefix.blocks.begin(), prefix.blocks.end(), blocks);
  const std::size_t bytes = kCountsBytes + (static_cast<std::size_t>(max_prefix_blocks_) + tokens) * 4;
  LOOM_CUDA_CHECK(cudaMemcpyAsync(plan_device_.data(), plan_host_.data(), bytes, cudaMemcpyHostToDevice,
                                  static_cast<cudaStream_t>(stream)));
}

void CudaRelayAttention::forward(std::uint32_t layer, const TensorView& q, const TensorView& k, const TensorView& v,
                                 const KvCacheView& cache, const TensorView& out, Stream stream) {
  if (relay_rows_ == 0) {  // graph_key() 0: paged attention's launches alone
    paged_.forward(layer, q, k, v, cache, out, stream);
    return;
  }
  paged_.forward(layer, q, k, v, cache, out, stream, lse_.as<float>());
  const KvCacheView::Layer& kv = cache.layers[layer];
  const auto* plan = plan_device_.as<unsigned char>();
  kc::RelayAttentionArgs a;
  a.q = q.data;
  a.out = out.data;
  a.lse = lse_.as<float>();
  a.k_cache = kv.k;
  a.v_cache = kv.v;
  a.block_size = static_cast<int>(cache.block_size);
  a.num_heads = num_heads_;
  a.num_kv_heads = static_cast<int>(cache.num_kv_heads);
  a.head_dim = static_cast<int>(cache.head_dim);
  a.scale = scale_;
  a.counts = reinterpret_cast<const std::int32_t*>(plan);
  a.prefix_blocks = reinterpret_cast<const std::int32_t*>(plan + kCountsBytes);
  a.rows = a.prefix_blocks + max_prefix_blocks_;
  a.partial = partial_.as<float>();
  a.grid = grid_;
  LOOM_CUDA_CHECK(kc::relay_attention(a, cache.dtype, static_cast<cudaStream_t>(stream)));
}

}  // namespace loom_attention_relay
