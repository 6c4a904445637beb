#include "core/model/pipeline_model.h"

#include <algorithm>
#include <string>

#include "core/model/config_adapters.h"

namespace loom {

namespace {

sdk::TensorView residual_view(std::span<float> residual, std::size_t T, std::int64_t hidden) {
  sdk::TensorView v;
  v.data = residual.data();
  v.dtype = sdk::DType::f32;
  v.rank = 2;
  v.shape = {static_cast<std::int64_t>(T), hidden, 0, 0};
  return v;
}

}  // namespace

PipelineModel::PipelineModel(io::LoadedModel model, sdk::Parallel& parallel, std::span<const LayerRange> stages,
                             std::vector<std::shared_ptr<sdk::AttentionBackend>> attention)
    : CpuRanksModel(parallel, std::move(attention), stages.size() - 1) {
  if (attention_.size() != stages.size()) throw Error("PipelineModel: one attention backend per stage is needed");
  for (const LayerRange& layers : stages) ranks_.push_back(std::make_unique<CpuModel>(model, layers));
}

PipelineModel::~PipelineModel() = default;

std::uint64_t PipelineModel::weight_bytes() const {
  // Each stage counts the final norm and lm head it holds; a forward reads them once.
  const auto& c = config();
  const std::uint64_t head = (c.hidden_size + c.vocab_size * c.hidden_size) * sizeof(float);
  std::uint64_t bytes = 0;
  for (const auto& stage : ranks_) bytes += stage->weight_bytes();
  return bytes - (ranks_.size() - 1) * head;
}

std::string PipelineModel::describe() const {
  std::string text = "cpu, fp32, pipeline of " + std::to_string(ranks_.size()) + " ranks as threads (layers";
  for (const auto& stage : ranks_)
    text += " [" + std::to_string(stage->layers().first) + ", " + std::to_string(stage->layers().end) + ")";
  return text + ")";
}

std::unique_ptr<KvCache> PipelineModel::make_kv_cache(std::uint32_t num_blocks, std::uint32_t block_size) {
  return ranks_.front()->make_kv_cache(num_blocks, block_size);
}

std::vector<PipelineModel::MicroBatch> PipelineModel::micro_batches(const ForwardBatch& batch) const {
  const std::size_t num_seqs = batch.seqs.size();
  const std::size_t count = std::max<std::size_t>(1, std::min(ranks_.size(), num_seqs));
  const std::size_t target = (batch.tokens.size() + count - 1) / count;  // tokens per micro-batch
  std::vector<MicroBatch> out;
  std::size_t seq = 0, next_row = 0;
  while (seq < num_seqs) {
    MicroBatch m;
    const std::uint32_t first = batch.seqs[seq].q_start;
    std::uint32_t end = first;
    // Sequences until the target, leaving one for each micro-batch still to come.
    while (seq < num_seqs && (m.seqs.empty() || out.size() + 1 == count ||
                              (end - first < target && num_seqs - seq >= count - out.size()))) {
      sdk::AttentionSeq s = batch.seqs[seq++];
      end = s.q_start + s.q_len;
      s.q_start -= first;
      m.seqs.push_back(s);
    }
    m.tokens = batch.tokens.subspan(first, end - first);
    m.positions = batch.positions.subspan(first, end - first);
    for (std::size_t r = 0; r < batch.logit_rows.size(); ++r) {
      const auto row = static_cast<std::uint32_t>(batch.logit_rows[r]);
      if (row < first || row >= end) continue;
      m.logit_rows.push_back(static_cast<std::int32_t>(row - first));
      m.step_rows.push_back(r);
      ++next_row;
    }
    out.push_back(std::move(m));
  }
  if (next_row != batch.logit_rows.size()) throw Error("PipelineModel: a logit row lies outside every sequence");
  return out;
}

void PipelineModel::forward(const ForwardBatch& batch, sdk::AttentionBackend&, const sdk::KvCacheView& cache) {
  // Refused before any stage starts, so that no stage waits for activations that never come.
  throw_if_outside_vocabulary(batch.tokens, static_cast<std::int32_t>(config().vocab_size));
  const std::vector<MicroBatch> micro = micro_batches(batch);
  ranks_.back()->step_logits(batch.logit_rows.size());
  run_ranks([&](std::uint32_t rank) { run_stage(rank, micro, cache); });
}

void PipelineModel::run_stage(std::uint32_t rank, std::span<const MicroBatch> micro, const sdk::KvCacheView& cache) {
  CpuModel& stage = *ranks_[rank];
  sdk::AttentionBackend& attention = *attention_[rank];
  const auto hidden = static_cast<std::int64_t>(config().hidden_size);
  const std::size_t vocab = config().vocab_size;
  const bool last = rank + 1 == ranks_.size();
  for (const MicroBatch& m : micro) {
    const ForwardBatch batch = m.batch();
    const std::size_t T = batch.tokens.size();
    if (rank == 0)
      stage.embed(batch);
    else
      parallel_.recv_prev(rank, residual_view(stage.residual(static_cast<int>(T)), T, hidden), nullptr);
    attention.prepare(stage.attention_batch(batch.seqs, static_cast<std::uint32_t>(T)), cache, nullptr);
    stage.run_layers(batch, attention, cache);
    if (!last) {
      parallel_.send_next(rank, residual_view(stage.residual(static_cast<int>(T)), T, hidden), nullptr);
      continue;
    }
    if (m.logit_rows.empty()) continue;
    micro_logits_.resize(m.logit_rows.size() * vocab);
    stage.lm_head(batch, micro_logits_);
    float* step = stage.step_logits(0).data();  // sized for the step by forward()
    for (std::size_t r = 0; r < m.step_rows.size(); ++r)
      std::copy_n(micro_logits_.data() + r * vocab, vocab, step + m.step_rows[r] * vocab);
  }
}

}  // namespace loom
