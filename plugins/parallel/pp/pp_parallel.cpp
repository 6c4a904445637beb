// parallel/pp: pipeline parallelism. Rank r holds a contiguous range of whole decoder layers
// (as even as the layer count allows, earlier ranks taking the remainder); the first also embeds,
// the last computes the logits, and activations pass from stage to stage (send_next/recv_prev).
#include <algorithm>
#include <string>

#include "loom/ranks_parallel.h"

namespace {

using namespace loom::sdk;

class PipelineParallel final : public RanksParallel {
 public:
  PipelineParallel(const EngineInfo& info, const PluginConfig& config) : RanksParallel(info, config, "pp") {}

  RankLayout layout(const ModelShape& m, std::uint32_t rank) const override {
    const std::uint32_t size = world_size();
    if (m.num_layers < size)
      throw loom::ConfigError("the model's " + std::to_string(m.num_layers) +
                              " layers (num_hidden_layers) cannot fill pp size " + std::to_string(size) +
                              " pipeline stages of at least one layer");
    RankLayout l;
    l.rank = rank;
    const std::uint32_t base = m.num_layers / size, extra = m.num_layers % size;
    l.first_layer = rank * base + std::min(rank, extra);
    l.end_layer = l.first_layer + base + (rank < extra ? 1 : 0);
    l.end_head = m.num_heads;
    l.end_kv_head = m.num_kv_heads;
    l.end_expert = m.num_experts;
    l.vocab_end = m.vocab_size;
    return l;
  }
};

}  // namespace

LOOM_PLUGIN(parallel, "pp", "1.0.0", "Pipeline parallelism: contiguous layer ranges over ranks", PipelineParallel,
            kRanksKeys)
