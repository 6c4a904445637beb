#include "model_harness.h"

#include <algorithm>
#include <random>

#include "core/config/key_validation.h"

namespace loom::testing {

namespace {

// Several prompts decoded together, one step at a time: prefill all, then a token each.
struct GreedyRun {
  GreedyRun(ModelHarness& harness, const std::vector<std::vector<std::int32_t>>& prompts)
      : harness(harness), outputs(prompts.size()) {
    const int first = harness.unused_sequence_id();
    for (std::size_t i = 0; i < prompts.size(); ++i) chunks.push_back({first + static_cast<int>(i), prompts[i]});
  }
  void step() {
    auto logits = harness.step(chunks);
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      const std::int32_t next = argmax(logits[i].back());
      outputs[i].push_back(next);
      chunks[i].tokens = {next};
    }
  }
  ModelHarness& harness;
  std::vector<ModelHarness::Chunk> chunks;
  std::vector<std::vector<std::int32_t>> outputs;
};

}  // namespace

ModelHarness::ModelHarness(io::LoadedModel model, int block_size, int max_seqs, int max_len)
    : ModelHarness(std::make_unique<CpuModel>(std::move(model)), block_size, max_seqs, max_len, max_len * max_seqs) {}

ModelHarness::ModelHarness(std::unique_ptr<Model> model, int block_size, int max_seqs, int max_len, int max_tokens)
    : model_(std::move(model)),
      block_size_(block_size),
      blocks_per_seq_((max_len + block_size - 1) / block_size),
      registry_(PluginRegistry::default_search_path()) {
  auto library = registry_.load(sdk::PluginKind::attention, "paged");
  RawSection section{"attention", "test", {}};
  const auto shape = model_->shape();
  const int num_blocks = blocks_per_seq_ * max_seqs;
  sdk::EngineInfo info;
  info.device = model_->device().kind == sdk::DeviceKind::cuda ? "cuda" : "cpu";
  info.block_size = static_cast<std::uint32_t>(block_size);
  info.num_blocks = static_cast<std::uint64_t>(num_blocks);
  info.max_num_seqs = static_cast<std::uint32_t>(max_seqs);
  info.max_num_batched_tokens = static_cast<std::uint32_t>(max_tokens);
  info.model = shape;
  info.model.max_position = static_cast<std::uint32_t>(max_len);
  attention_ = library->create<sdk::AttentionBackend>(info, validate_section(section, library->keys(), library->label()));
  cache_ = model_->make_kv_cache(static_cast<std::uint32_t>(num_blocks), static_cast<std::uint32_t>(block_size));
  // Blocks are handed out in a shuffled order so that tables are never contiguous.
  for (int b = 0; b < num_blocks; ++b) free_blocks_.push_back(b);
  std::shuffle(free_blocks_.begin(), free_blocks_.end(), std::mt19937(42));
}

std::vector<std::vector<std::vector<float>>> ModelHarness::step(const std::vector<Chunk>& chunks) {
  std::vector<std::int32_t> tokens, positions, rows;
  std::vector<sdk::AttentionSeq> seqs;
  for (const Chunk& chunk : chunks) {
    int& length = length_[chunk.seq];
    auto& table = tables_[chunk.seq];
    const int new_length = length + static_cast<int>(chunk.tokens.size());
    while (static_cast<int>(table.size()) * block_size_ < new_length) {
      table.push_back(free_blocks_.back());
      free_blocks_.pop_back();
    }
    sdk::AttentionSeq seq;
    seq.id = static_cast<sdk::SeqId>(chunk.seq);
    seq.q_start = static_cast<std::uint32_t>(tokens.size());
    seq.q_len = static_cast<std::uint32_t>(chunk.tokens.size());
    seq.ctx_len = static_cast<std::uint32_t>(new_length);
    seq.block_table = table;
    seqs.push_back(seq);
    for (std::size_t i = 0; i < chunk.tokens.size(); ++i) {
      rows.push_back(static_cast<std::int32_t>(tokens.size()));
      tokens.push_back(chunk.tokens[i]);
      positions.push_back(length + static_cast<std::int32_t>(i));
    }
    length = new_length;
  }
  const std::size_t vocab = model_->config().vocab_size;
  std::vector<float> logits(rows.size() * vocab);
  model_->forward({tokens, positions, seqs, rows, {}}, override_ ? *override_ : *attention_, cache_->view());
  OutputRow logits_row;
  logits_row.kind = OutputRow::Kind::logits;
  const std::vector<OutputRow> all_logits(rows.size(), logits_row);
  std::vector<std::int32_t> unused(rows.size());
  model_->read_outputs(all_logits, logits, unused);

  std::vector<std::vector<std::vector<float>>> out;
  std::size_t row = 0;
  for (const Chunk& chunk : chunks) {
    auto& per_chunk = out.emplace_back();
    for (std::size_t i = 0; i < chunk.tokens.size(); ++i, ++row)
      per_chunk.emplace_back(logits.begin() + row * vocab, logits.begin() + (row + 1) * vocab);
  }
  return out;
}

std::vector<std::vector<std::int32_t>> ModelHarness::greedy(const std::vector<std::vector<std::int32_t>>& prompts,
                                                           int steps) {
  GreedyRun run(*this, prompts);
  for (int s = 0; s < steps; ++s) run.step();
  return run.outputs;
}

std::pair<std::vector<std::vector<std::int32_t>>, std::vector<std::vector<std::int32_t>>> greedy_interleaved(
    ModelHarness& a, const std::vector<std::vector<std::int32_t>>& prompts_a, ModelHarness& b,
    const std::vector<std::vector<std::int32_t>>& prompts_b, int steps) {
  GreedyRun run_a(a, prompts_a), run_b(b, prompts_b);
  for (int s = 0; s < steps; ++s) {
    run_a.step();
    run_b.step();
  }
  return {run_a.outputs, run_b.outputs};
}

double divergence_gap(const io::LoadedModel& model, const std::vector<std::int32_t>& prompt,
                      const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b,
                      std::optional<sdk::DType> stored_as) {
  std::size_t p = 0;
  while (p < a.size() && p < b.size() && a[p] == b[p]) ++p;
  if (p == a.size() && p == b.size()) return 0.0;
  if (p == a.size() || p == b.size()) return 1.0;
  std::vector<std::int32_t> context = prompt;
  context.insert(context.end(), a.begin(), a.begin() + static_cast<std::ptrdiff_t>(p));
  auto cpu = std::make_unique<CpuModel>(model);
  if (stored_as) cpu->store_like(*stored_as);
  const int max_len = static_cast<int>(context.size()) + 16;
  ModelHarness harness(std::move(cpu), 16, 1, max_len, max_len);
  const std::vector<float> logits = harness.step({{0, context}})[0].back();
  double mean = 0, top = -1e30;
  for (float x : logits) {
    mean += x;
    top = std::max(top, static_cast<double>(x));
  }
  mean /= static_cast<double>(logits.size());
  return (logits[a[p]] - logits[b[p]]) / (top - mean);
}

std::int32_t argmax(const std::vector<float>& logits) {
  return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

std::vector<std::vector<std::int32_t>> random_prompts(int count, int vocab, int max_len, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> length(1, max_len), token(3, vocab - 1);
  std::vector<std::vector<std::int32_t>> prompts(static_cast<std::size_t>(count));
  for (auto& prompt : prompts) {
    prompt = {1};
    for (int j = length(rng) - 1; j > 0; --j) prompt.push_back(token(rng));
  }
  return prompts;
}

}  // namespace loom::testing
