#include "loom/kernels/cuda/paged_attention_runner.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "loom/cuda_check.h"
#include "loom/error.h"
#include "loom/kernels/cuda/paged_attention.h"

namespace loom::kernels::cuda {

using namespace loom::sdk;
namespace kc = loom::kernels::cuda;  // as the plugins name it

namespace {

std::size_t align(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace

PagedAttentionRunner::PagedAttentionRunner(const EngineInfo& info, std::string owner) : owner_(std::move(owner)) {
  int device = 0, sms = 0;
  LOOM_CUDA_CHECK(cudaGetDevice(&device));
  LOOM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  // The model pads decode batches up to max_num_seqs tokens for its CUDA graphs.
  max_tokens_ = static_cast<int>(std::max(info.max_num_batched_tokens, info.max_num_seqs));
  max_seqs_ = static_cast<int>(info.max_num_seqs);
  const std::uint32_t context = std::max<std::uint32_t>(info.model.max_position, 1);
  max_blocks_per_seq_ = static_cast<int>((context + info.block_size - 1) / info.block_size);
  limits_.num_kv_heads = static_cast<int>(info.model.num_kv_heads);
  limits_.group = static_cast<int>(info.model.num_heads / std::max<std::uint32_t>(1, info.model.num_kv_heads));
  limits_.target_items = 2 * sms;
  // Decode of a few sequences leaves most SMs idle unless even short contexts are split: a split
  // of 32 keys is a few loads per warp, and the step's critical path is the longest split (7B
  // batch-1 decode on the H100: 64 keys 1.5% and 128 keys 6% slower).
  limits_.min_keys_per_split = 32;
  limits_.max_partial_slots = max_slots_ = 4 * limits_.target_items;
  rows_per_item_ = kc::tile_tokens(limits_.group) * limits_.group;
  // Prefill chunks of 16+ tokens go to the tensor-core kernel when it has the head size.
  limits_.prefill_min_q_len = kc::prefill_kernel_supports(static_cast<int>(info.model.head_dim)) ? 16 : 0;
  max_prefill_tiles_ = max_tokens_ / kc::kPrefillTileRows + max_seqs_;
  // Unsplit: at most one item per (token, KV head); split: about target_items plus one per tile.
  max_items_ = max_tokens_ * limits_.num_kv_heads + 2 * max_slots_;

  off_seqs_ = align(2 * sizeof(std::int32_t));
  off_items_ = off_seqs_ + align(max_seqs_ * sizeof(kc::AttentionSeqMeta));
  off_prefill_ = off_items_ + align(static_cast<std::size_t>(max_items_) * sizeof(kc::AttentionWorkItem) +
                                    static_cast<std::size_t>(max_seqs_) * max_blocks_per_seq_ * sizeof(std::int32_t));
  off_slots_ = off_prefill_ + align(static_cast<std::size_t>(max_prefill_tiles_) * sizeof(kc::PrefillTile));
  const std::size_t bytes = off_slots_ + align(max_tokens_ * sizeof(std::int32_t));
  static_assert(sizeof(kc::AttentionWorkItem) % sizeof(std::int32_t) == 0, "block tables follow the items");
  device_ = DeviceBuffer(bytes, owner_ + "'s step plan");
  host_ = PinnedBuffer(bytes, owner_ + "'s step plan");
  std::memset(host_.data(), 0, bytes);
  LOOM_CUDA_CHECK(cudaMemset(device_.data(), 0, bytes));
  const std::size_t partial_rows = static_cast<std::size_t>(max_slots_) * rows_per_item_;
  partial_out_ = DeviceBuffer(partial_rows * info.model.head_dim * sizeof(float), owner_ + "'s split results");
  partial_max_sum_ = DeviceBuffer(partial_rows * 2 * sizeof(float), owner_ + "'s split maxima and sums");
  // The kernel leaves every counter at zero after each launch.
  split_counters_ = DeviceBuffer(max_slots_ * sizeof(int), owner_ + "'s split counters");
  LOOM_CUDA_CHECK(cudaMemset(split_counters_.data(), 0, split_counters_.bytes()));
}

void PagedAttentionRunner::prepare(const AttentionBatch& batch, const KvCacheView& cache, Stream stream,
                                   std::span<const std::int32_t> k_first) {
  const int T = static_cast<int>(batch.num_tokens);
  const int num_seqs = static_cast<int>(batch.seqs.size());
  if (T > max_tokens_ || num_seqs > max_seqs_)
    throw loom::Error(owner_ + ": a step of " + std::to_string(T) + " tokens in " + std::to_string(num_seqs) +
                      " sequences exceeds the " + std::to_string(max_tokens_) + " tokens and " +
                      std::to_string(max_seqs_) + " sequences it was sized for");
  num_heads_ = static_cast<int>(batch.num_heads);
  scale_ = batch.scale;
  const int bs = static_cast<int>(cache.block_size);
  seqs_.clear();
  tables_.clear();
  for (const AttentionSeq& s : batch.seqs) {
    const int blocks = static_cast<int>((s.ctx_len + bs - 1) / bs);
    if (blocks > max_blocks_per_seq_ || static_cast<int>(s.block_table.size()) < blocks)
      throw loom::Error(owner_ + ": sequence " + std::to_string(s.id) + " has a context of " +
                        std::to_string(s.ctx_len) + " tokens, beyond the model's maximum or its block table");
    seqs_.push_back({static_cast<std::int32_t>(s.q_start), static_cast<std::int32_t>(s.q_len),
                     static_cast<std::int32_t>(s.ctx_len), static_cast<std::int32_t>(tables_.size()),
                     k_first.empty() ? 0 : k_first[seqs_.size()]});
    tables_.insert(tables_.end(), s.block_table.begin(), s.block_table.begin() + blocks);
  }
  const kc::AttentionPlan plan = kc::plan_attention(seqs_, limits_);
  if (static_cast<int>(plan.items.size()) > max_items_ ||
      static_cast<int>(plan.prefill_tiles.size()) > max_prefill_tiles_)
    throw loom::Error(owner_ + ": the step needs " + std::to_string(plan.items.size()) + " work items and " +
                      std::to_string(plan.prefill_tiles.size()) + " prefill tiles, more than planned for");
  // Cache rows of the tokens the tensor-core kernel reads back from the cache, copied there
  // first; the other work items store their tokens themselves (slot -1: not copied).
  slots_.clear();
  if (!plan.prefill_tiles.empty()) {
    slots_.assign(static_cast<std::size_t>(T), -1);
    for (const AttentionSeq& s : batch.seqs) {
      if (!kc::goes_to_prefill_kernel(static_cast<int>(s.q_len), limits_)) continue;
      for (std::uint32_t i = 0; i < s.q_len; ++i) {
        const std::uint32_t pos = s.ctx_len - s.q_len + i;
        slots_[s.q_start + i] = s.block_table[pos / bs] * bs + static_cast<std::int32_t>(pos % bs);
      }
    }
  }

  // Counts, seqs (their whole small region), items and tables in one copy; prefill tiles and
  // slots only when there are any. Padding tokens: no item, no slot.
  auto* host = host_.as<unsigned char>();
  auto* device = device_.as<unsigned char>();
  const auto put = [&](std::size_t offset, const void* data, std::size_t bytes) {
    if (bytes > 0) std::memcpy(host + offset, data, bytes);
    return offset + bytes;
  };
  const auto upload = [&](std::size_t begin, std::size_t end) {
    if (end > begin)
      LOOM_CUDA_CHECK(cudaMemcpyAsync(device + begin, host + begin, end - begin, cudaMemcpyHostToDevice,
                                      static_cast<cudaStream_t>(stream)));
  };
  const std::int32_t counts[2] = {static_cast<std::int32_t>(plan.items.size()), T};
  put(0, counts, sizeof counts);
  const std::size_t tables_at = put(off_items_, plan.items.data(), plan.items.size() * sizeof(kc::AttentionWorkItem));
  for (kc::AttentionSeqMeta& m : seqs_) m.table_offset += static_cast<std::int32_t>(tables_at / sizeof(std::int32_t));
  put(off_seqs_, seqs_.data(), seqs_.size() * sizeof(kc::AttentionSeqMeta));
  upload(0, put(tables_at, tables_.data(), tables_.size() * sizeof(std::int32_t)));
  upload(off_prefill_,
         put(off_prefill_, plan.prefill_tiles.data(), plan.prefill_tiles.size() * sizeof(kc::PrefillTile)));
  upload(off_slots_, put(off_slots_, slots_.data(), slots_.size() * sizeof(std::int32_t)));
  num_prefill_tiles_ = static_cast<int>(plan.prefill_tiles.size());
}

void PagedAttentionRunner::forward(std::uint32_t layer, const TensorView& q, const TensorView& k, const TensorView& v,
                                   const KvCacheView& cache, const TensorView& out, Stream stream, float* lse) {
  const auto s = static_cast<cudaStream_t>(stream);
  const DType dtype = cache.dtype;  // fp16 or bf16: prepare() checked supports()
  const KvCacheView::Layer& kv = cache.layers[layer];
  auto* device = device_.as<unsigned char>();
  const auto* counts = reinterpret_cast<const std::int32_t*>(device);
  kc::PagedAttentionArgs a;
  a.q = q.data;
  a.k_new = k.data;
  a.v_new = v.data;
  a.out = out.data;
  a.lse = lse;
  a.k_cache = kv.k;
  a.v_cache = kv.v;
  a.block_size = static_cast<int>(cache.block_size);
  a.num_heads = num_heads_;
  a.num_kv_heads = static_cast<int>(cache.num_kv_heads);
  a.head_dim = static_cast<int>(cache.head_dim);
  a.scale = scale_;
  a.seqs = reinterpret_cast<const kc::AttentionSeqMeta*>(device + off_seqs_);
  a.block_tables = reinterpret_cast<const std::int32_t*>(device);  // seqs' table offsets count from here
  a.items = reinterpret_cast<const kc::AttentionWorkItem*>(device + off_items_);
  a.prefill_tiles = reinterpret_cast<const kc::PrefillTile*>(device + off_prefill_);
  a.num_prefill_tiles = num_prefill_tiles_;
  a.slots = reinterpret_cast<const std::int32_t*>(device + off_slots_);
  a.counts = counts;
  a.max_tokens = static_cast<int>(q.shape[0]);  // the model's (possibly padded) token count
  a.rows_per_item = rows_per_item_;
  a.partial_out = partial_out_.as<float>();
  a.partial_max_sum = partial_max_sum_.as<float>();
  a.split_counters = split_counters_.as<int>();
  if (grid_ == 0) {  // sized once the KV dtype is known
    grid_ = kc::attention_grid(dtype, num_heads_ / static_cast<int>(cache.num_kv_heads));
    if (grid_ <= 0) throw loom::Error(owner_ + ": cannot size the CUDA attention kernel's grid");
  }
  a.grid = grid_;
  LOOM_CUDA_CHECK(kc::paged_attention(a, dtype, s));
}

}  // namespace loom::kernels::cuda
