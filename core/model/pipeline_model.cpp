#include "core/model/pipeline_model.h"

#include <string>

#include "core/model/config_adapters.h"

namespace loom {

namespace {

sdk::TensorView residual_view(std::span<float> residual, int T, std::int64_t hidden) {
  sdk::TensorView v;
  v.data = residual.data();
  v.dtype = sdk::DType::f32;
  v.rank = 2;
  v.shape = {T, hidden, 0, 0};
  return v;
}

}  // namespace

PipelineModel::PipelineModel(io::LoadedModel model, sdk::Parallel& parallel, std::span<const LayerRange> stages)
    : parallel_(parallel) {
  for (const LayerRange& layers : stages) stages_.push_back(std::make_unique<CpuModel>(model, layers));
}

std::uint64_t PipelineModel::weight_bytes() const {
  // Each stage counts the final norm and lm head it holds; a forward reads them once.
  const auto& c = config();
  const std::uint64_t head = (c.hidden_size + c.vocab_size * c.hidden_size) * sizeof(float);
  std::uint64_t bytes = 0;
  for (const auto& stage : stages_) bytes += stage->weight_bytes();
  return bytes - (stages_.size() - 1) * head;
}

std::string PipelineModel::describe() const {
  std::string text = "cpu, fp32, pipeline of " + std::to_string(stages_.size()) + " ranks (layers";
  for (const auto& stage : stages_)
    text += " [" + std::to_string(stage->layers().first) + ", " + std::to_string(stage->layers().end) + ")";
  return text + ")";
}

std::unique_ptr<KvCache> PipelineModel::make_kv_cache(std::uint32_t num_blocks, std::uint32_t block_size) {
  return stages_.front()->make_kv_cache(num_blocks, block_size);
}

void PipelineModel::forward(const ForwardBatch& batch, sdk::AttentionBackend& attention,
                            const sdk::KvCacheView& cache) {
  const int T = static_cast<int>(batch.tokens.size());
  const auto hidden = static_cast<std::int64_t>(config().hidden_size);
  const auto last = static_cast<std::uint32_t>(stages_.size() - 1);
  attention.prepare(attention_batch_of(config(), batch.seqs, static_cast<std::uint32_t>(T)), cache, nullptr);
  for (std::uint32_t rank = 0; rank <= last; ++rank) {
    CpuModel& stage = *stages_[rank];
    if (rank == 0)
      stage.embed(batch);
    else
      parallel_.recv_prev(rank, residual_view(stage.residual(T), T, hidden), nullptr);
    stage.run_layers(batch, attention, cache);
    if (rank < last) parallel_.send_next(rank, residual_view(stage.residual(T), T, hidden), nullptr);
  }
  CpuModel& tail = *stages_[last];
  tail.lm_head(batch, tail.step_logits(batch.logit_rows.size()));
}

void PipelineModel::read_outputs(std::span<const OutputRow> rows, std::span<float> logits,
                                 std::span<std::int32_t> tokens) {
  stages_.back()->read_outputs(rows, logits, tokens);
}

void PipelineModel::read_logprobs(std::span<const OutputRow> rows, std::span<const std::int32_t> tokens,
                                  std::span<TokenLogprobs> out) {
  stages_.back()->read_logprobs(rows, tokens, out);
}

}  // namespace loom
