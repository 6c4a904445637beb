// parallel/tp: Megatron-style tensor parallelism. Every rank holds every layer and a slice of
// each: its query heads (and their KV heads, replicated when there are fewer KV heads than ranks),
// its part of every FFN's intermediate columns (each expert's too) and its rows of the vocabulary
// for the embedding and the lm head. The runner all-reduces after the O and down projections and
// after the embedding, and gathers the logits.
#include <algorithm>
#include <string>

#include "loom/ranks_parallel.h"

namespace {

using namespace loom::sdk;

class TensorParallel final : public RanksParallel {
 public:
  TensorParallel(const EngineInfo& info, const PluginConfig& config) : RanksParallel(info, config, "tp") {}

  RankLayout layout(const ModelShape& m, std::uint32_t rank) const override {
    const std::uint32_t size = world_size();
    const std::string ranks = " tp size " + std::to_string(size);
    if (m.num_heads % size != 0)
      throw loom::ConfigError("the model's " + std::to_string(m.num_heads) +
                              " attention heads (num_attention_heads) are not divisible by" + ranks);
    if (m.num_kv_heads % size != 0 && size % m.num_kv_heads != 0)
      throw loom::ConfigError("the model's " + std::to_string(m.num_kv_heads) +
                              " KV heads (num_key_value_heads) neither divide into nor divide" + ranks);
    RankLayout l;
    l.rank = rank;
    l.end_layer = m.num_layers;
    const std::uint32_t heads = m.num_heads / size, group = m.num_heads / m.num_kv_heads;
    l.first_head = rank * heads;
    l.end_head = l.first_head + heads;
    l.first_kv_head = l.first_head / group;  // replicated: the one KV head this rank's queries read
    l.end_kv_head = (l.end_head - 1) / group + 1;
    l.ffn_part = rank;
    l.ffn_parts = size;
    l.end_expert = m.num_experts;
    const std::uint32_t rows = (m.vocab_size + size - 1) / size;  // the last rank's share may be short
    l.vocab_begin = std::min(m.vocab_size, rank * rows);
    l.vocab_end = std::min(m.vocab_size, l.vocab_begin + rows);
    return l;
  }
};

}  // namespace

LOOM_PLUGIN(parallel, "tp", "1.0.0", "Tensor parallelism: heads, FFN columns and vocabulary split over ranks",
            TensorParallel, kRanksKeys)
