#include "core/engine/lent_model_runner.h"

#include <algorithm>
#include <string>
#include <unordered_set>

#include "core/sampling/sampler.h"
#include "loom/error.h"

namespace loom {

LentModelRunner::LentModelRunner(std::unique_ptr<Model> model, PluginPtr<sdk::AttentionBackend> attention,
                                 LentRunnerLimits limits)
    : model_(std::move(model)), attention_(std::move(attention)), limits_(limits), shape_(model_->shape()) {
  cache_ = model_->make_kv_cache(limits_.num_blocks, limits_.block_size);
  free_.reserve(limits_.num_blocks);
  for (std::uint32_t b = limits_.num_blocks; b > 0; --b) free_.push_back(static_cast<sdk::BlockId>(b - 1));
}

std::size_t LentModelRunner::num_tokens(sdk::SeqId seq) const {
  const auto it = held_.find(seq);
  return it == held_.end() ? 0 : it->second.num_tokens;
}

void LentModelRunner::truncate(sdk::SeqId seq, std::size_t num_tokens) {
  const auto it = held_.find(seq);
  if (it == held_.end() || num_tokens >= it->second.num_tokens) return;
  it->second.num_tokens = num_tokens;
  shrink(it, num_tokens);
}

void LentModelRunner::shrink(std::unordered_map<sdk::SeqId, Held>::iterator it, std::size_t num_tokens) {
  Held& held = it->second;
  while (held.blocks.size() > blocks_for(num_tokens)) {
    free_.push_back(held.blocks.back());
    held.blocks.pop_back();
  }
  if (num_tokens == 0) held_.erase(it);
}

void LentModelRunner::release(sdk::SeqId seq) { truncate(seq, 0); }

void LentModelRunner::extend(std::span<const sdk::ModelInput> inputs, std::span<sdk::TokenId> next,
                             std::span<float> logits) {
  const std::size_t vocab = shape_.vocab_size;
  if (next.size() != inputs.size() || (!logits.empty() && logits.size() != inputs.size() * vocab))
    throw Error("model runner: extend() of " + std::to_string(inputs.size()) + " inputs was given " +
                std::to_string(next.size()) + " token slots and " + std::to_string(logits.size()) +
                " logits; it needs one token, and none or " + std::to_string(vocab) + " logits, per input");
  std::unordered_set<sdk::SeqId> seen;
  for (const sdk::ModelInput& input : inputs) {
    if (input.tokens.empty())
      throw Error("model runner: the input of sequence " + std::to_string(input.id) + " is empty");
    if (!seen.insert(input.id).second)
      throw Error("model runner: sequence " + std::to_string(input.id) + " appears twice in one extend()");
  }
  // Blocks for every input that fits, before anything runs; one that does not is left as it was.
  std::vector<Pending> pending;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    Held& held = held_[inputs[i].id];
    const std::size_t total = held.num_tokens + inputs[i].tokens.size();
    const std::size_t more = blocks_for(total) - held.blocks.size();
    if (total > limits_.context || more > free_.size()) {
      next[i] = sdk::kNoRoom;
      if (held.num_tokens == 0) held_.erase(inputs[i].id);
      continue;
    }
    for (std::size_t b = 0; b < more; ++b) {
      held.blocks.push_back(free_.back());
      free_.pop_back();
    }
    pending.push_back({i, held.num_tokens, 0});
  }
  try {
    run(inputs, pending, next, logits);
  } catch (...) {
    for (const Pending& p : pending) shrink(held_.find(inputs[p.input].id), p.start);  // the blocks taken above
    throw;
  }
  for (const Pending& p : pending) held_.at(inputs[p.input].id).num_tokens = p.start + inputs[p.input].tokens.size();
}

void LentModelRunner::run(std::span<const sdk::ModelInput> inputs, std::vector<Pending> pending,
                          std::span<sdk::TokenId> next, std::span<float> logits) {
  const std::size_t vocab = shape_.vocab_size;
  const bool want_logits = !logits.empty();
  std::vector<std::int32_t> tokens, positions, logit_rows;
  std::vector<sdk::AttentionSeq> seqs;
  std::vector<std::size_t> row_input;
  std::vector<OutputRow> rows;
  std::vector<float> row_logits;
  std::vector<std::int32_t> row_tokens;
  for (bool more = !pending.empty(); more;) {
    tokens.clear();
    positions.clear();
    logit_rows.clear();
    seqs.clear();
    row_input.clear();
    more = false;
    for (Pending& p : pending) {
      const sdk::ModelInput& input = inputs[p.input];
      if (p.done == input.tokens.size()) continue;
      if (tokens.size() == limits_.max_step_tokens || seqs.size() == limits_.max_step_seqs) {
        more = true;  // the next forward pass
        continue;
      }
      const std::size_t n = std::min(input.tokens.size() - p.done, limits_.max_step_tokens - tokens.size());
      sdk::AttentionSeq a;
      a.id = input.id;
      a.q_start = static_cast<std::uint32_t>(tokens.size());
      a.q_len = static_cast<std::uint32_t>(n);
      a.ctx_len = static_cast<std::uint32_t>(p.start + p.done + n);
      a.block_table = std::span<const sdk::BlockId>(held_.at(input.id).blocks).first(blocks_for(a.ctx_len));
      for (std::size_t j = 0; j < n; ++j) {
        tokens.push_back(input.tokens[p.done + j]);
        positions.push_back(static_cast<std::int32_t>(p.start + p.done + j));
      }
      p.done += n;
      if (p.done == input.tokens.size()) {
        logit_rows.push_back(static_cast<std::int32_t>(tokens.size() - 1));
        row_input.push_back(p.input);
      } else {
        more = true;
      }
      seqs.push_back(a);
    }
    if (seqs.empty()) break;
    model_->forward(ForwardBatch{tokens, positions, seqs, logit_rows, {}}, *attention_, cache_->view());
    OutputRow row;
    row.kind = want_logits ? OutputRow::Kind::logits : OutputRow::Kind::greedy;
    rows.assign(logit_rows.size(), row);
    row_tokens.assign(logit_rows.size(), 0);
    row_logits.resize(want_logits ? logit_rows.size() * vocab : 0);
    model_->read_outputs(rows, row_logits, row_tokens);
    for (std::size_t r = 0; r < row_input.size(); ++r) {
      if (!want_logits) {
        next[row_input[r]] = row_tokens[r];
        continue;
      }
      const std::span<const float> row(row_logits.data() + r * vocab, vocab);
      std::copy(row.begin(), row.end(), logits.begin() + static_cast<std::ptrdiff_t>(row_input[r] * vocab));
      next[row_input[r]] = greedy_token(row);
    }
  }
}

}  // namespace loom
