// The model runner the engine lends a plugin (sdk::ModelRunner, loom/engine_services.h): a second
// model on the engine's device with a paged KV cache and an attention backend of its own. It
// hands out its blocks itself — each sequence holds the blocks of its tokens, taken from a free
// list — so nothing of the target's pool, allocator or prefix cache is shared.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/model/model.h"
#include "core/plugin/plugin_registry.h"
#include "loom/engine_services.h"

namespace loom {

struct LentRunnerLimits {
  std::uint32_t num_blocks = 0;
  std::uint32_t block_size = 16;
  std::uint32_t max_step_tokens = 2048;  // tokens of one forward pass (longer inputs run in chunks)
  std::uint32_t max_step_seqs = 64;      // sequences of one forward pass
  std::uint32_t context = 0;             // longest sequence
};

class LentModelRunner final : public sdk::ModelRunner {
 public:
  LentModelRunner(std::unique_ptr<Model> model, PluginPtr<sdk::AttentionBackend> attention, LentRunnerLimits limits);

  const sdk::ModelShape& shape() const override { return shape_; }
  std::size_t num_tokens(sdk::SeqId seq) const override;
  void truncate(sdk::SeqId seq, std::size_t num_tokens) override;
  void release(sdk::SeqId seq) override;
  void extend(std::span<const sdk::ModelInput> inputs, std::span<sdk::TokenId> next, std::span<float> logits) override;

  std::size_t num_free_blocks() const { return free_.size(); }

 private:
  struct Held {
    std::vector<sdk::BlockId> blocks;
    std::size_t num_tokens = 0;
  };
  // One input being run: the sequence held `start` tokens before it, `done` of its own have run.
  struct Pending {
    std::size_t input;
    std::size_t start;
    std::size_t done;
  };

  // Gives back the blocks of `it` beyond num_tokens tokens; forgets the sequence at 0.
  void shrink(std::unordered_map<sdk::SeqId, Held>::iterator it, std::size_t num_tokens);
  std::size_t blocks_for(std::size_t tokens) const { return (tokens + limits_.block_size - 1) / limits_.block_size; }
  // Runs forward passes until every pending input has run; each input's last row lands in next/logits.
  void run(std::span<const sdk::ModelInput> inputs, std::vector<Pending> pending, std::span<sdk::TokenId> next,
           std::span<float> logits);

  std::unique_ptr<Model> model_;
  PluginPtr<sdk::AttentionBackend> attention_;
  std::unique_ptr<KvCache> cache_;  // after model_: destroyed before the runner it was made by
  LentRunnerLimits limits_;
  sdk::ModelShape shape_;
  std::vector<sdk::BlockId> free_;
  std::unordered_map<sdk::SeqId, Held> held_;
};

}  // namespace loom
