#include "core/model/sharded_model.h"

#include <algorithm>
#include <string>

#include "loom/error.h"

namespace loom {

ShardedModel::ShardedModel(io::LoadedModel model, sdk::Parallel& parallel, std::span<const sdk::RankLayout> layouts,
                           std::vector<std::shared_ptr<sdk::AttentionBackend>> attention)
    : CpuRanksModel(parallel, std::move(attention), 0),
      layouts_(layouts.begin(), layouts.end()),
      share_logits_(layouts.size()),
      padded_logits_(layouts.size()) {
  if (attention_.size() != layouts_.size()) throw Error("ShardedModel: one attention backend per rank is needed");
  for (const sdk::RankLayout& layout : layouts_) ranks_.push_back(std::make_unique<CpuModel>(model, layout, parallel));
}

ShardedModel::~ShardedModel() = default;

std::uint64_t ShardedModel::weight_bytes() const {
  std::uint64_t bytes = 0;
  for (const auto& rank : ranks_) bytes += rank->weight_bytes();
  return bytes;
}

std::string ShardedModel::describe() const {
  const sdk::RankLayout& l = layouts_.back();
  const auto& c = config();
  std::string text = "cpu, fp32, " + std::to_string(ranks_.size()) + " ranks as threads (";
  if (l.end_head - l.first_head < c.num_attention_heads)
    text += "heads, FFN columns and vocabulary split";
  else
    text += "experts split, the rest replicated";
  return text + ")";
}

std::unique_ptr<KvCache> ShardedModel::make_kv_cache(std::uint32_t num_blocks, std::uint32_t block_size) {
  std::vector<std::unique_ptr<KvCache>> caches;
  for (const auto& rank : ranks_) caches.push_back(rank->make_kv_cache(num_blocks, block_size));
  auto cache = std::make_unique<ShardedKvCache>(std::move(caches));
  cache_ = cache.get();
  return cache;
}

void ShardedModel::forward(const ForwardBatch& batch, sdk::AttentionBackend&, const sdk::KvCacheView&) {
  if (!cache_) throw Error("ShardedModel::forward before make_kv_cache");
  // A bad id is refused before any rank starts, so no rank waits in a collective for one that threw.
  throw_if_outside_vocabulary(batch.tokens, static_cast<std::int32_t>(config().vocab_size));
  run_ranks([&](std::uint32_t rank) { run_rank(rank, batch); });
}

void ShardedModel::run_rank(std::uint32_t rank, const ForwardBatch& batch) {
  CpuModel& model = *ranks_[rank];
  const sdk::KvCacheView& cache = cache_->rank_view(rank);
  sdk::AttentionBackend& attention = *attention_[rank];
  model.embed(batch);
  attention.prepare(model.attention_batch(batch.seqs, static_cast<std::uint32_t>(batch.tokens.size())), cache, nullptr);
  model.run_layers(batch, attention, cache);
  const std::size_t rows = batch.logit_rows.size();
  if (rows == 0) return;  // a step of prompt chunks that sample nothing: every rank stops here
  const sdk::RankLayout& l = layouts_[rank];
  if (l.vocab_end - l.vocab_begin == config().vocab_size) {
    if (rank == 0) model.lm_head(batch, model.step_logits(rows));  // every rank has the whole vocabulary
    return;
  }
  std::vector<float>& share = share_logits_[rank];
  share.resize(rows * (l.vocab_end - l.vocab_begin));
  model.lm_head(batch, share);
  gather_logits(rank, rows);
}

void ShardedModel::gather_logits(std::uint32_t rank, std::size_t rows) {
  // The gather takes equal shapes: every rank's rows padded to the widest share.
  std::size_t width = 0;
  for (const sdk::RankLayout& l : layouts_) width = std::max<std::size_t>(width, l.vocab_end - l.vocab_begin);
  const std::size_t own = layouts_[rank].vocab_end - layouts_[rank].vocab_begin;
  std::vector<float>& padded = padded_logits_[rank];
  padded.assign(rows * width, 0.0f);
  for (std::size_t r = 0; r < rows; ++r)
    std::copy_n(share_logits_[rank].data() + r * own, own, padded.data() + r * width);
  const std::size_t ranks = ranks_.size();
  if (rank == 0) gathered_.resize(ranks * rows * width);
  std::vector<float> mine(rank == 0 ? 0 : ranks * rows * width);
  float* into = rank == 0 ? gathered_.data() : mine.data();
  sdk::TensorView send, recv;
  send.data = padded.data();
  send.rank = recv.rank = 2;
  send.shape = {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(width), 0, 0};
  recv.data = into;
  recv.shape = {static_cast<std::int64_t>(ranks * rows), static_cast<std::int64_t>(width), 0, 0};
  parallel_.all_gather(rank, send, recv, nullptr);
  if (rank != 0) return;
  const std::size_t vocab = config().vocab_size;
  float* logits = ranks_[0]->step_logits(rows).data();
  for (std::size_t k = 0; k < ranks; ++k) {
    const sdk::RankLayout& l = layouts_[k];
    for (std::size_t r = 0; r < rows; ++r)
      std::copy_n(gathered_.data() + (k * rows + r) * width, l.vocab_end - l.vocab_begin,
                  logits + r * vocab + l.vocab_begin);
  }
}

}  // namespace loom
