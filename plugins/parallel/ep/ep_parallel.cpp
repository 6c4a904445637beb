// parallel/ep: expert parallelism. Rank r holds experts [E * r / size, E * (r + 1) / size) of
// every mixture-of-experts layer and a replica of everything else (attention, dense FFNs, shared
// experts, embedding, lm head). Each rank computes its experts' share of every token routed to
// them; the runner sums the shares over ranks (all-reduce), so the tokens need no all-to-all
// while attention is replicated.
#include <string>

#include "loom/ranks_parallel.h"

namespace {

using namespace loom::sdk;

class ExpertParallel final : public RanksParallel {
 public:
  ExpertParallel(const EngineInfo& info, const PluginConfig& config) : RanksParallel(info, config, "ep") {}

  RankLayout layout(const ModelShape& m, std::uint32_t rank) const override {
    const std::uint32_t size = world_size();
    if (m.num_experts == 0)
      throw loom::ConfigError("the model is dense (no experts): ep has nothing to split; use tp or pp");
    if (m.num_experts < size)
      throw loom::ConfigError("the model's " + std::to_string(m.num_experts) +
                              " experts (num_local_experts or num_experts) cannot give each of ep size " +
                              std::to_string(size) + " ranks one");
    RankLayout l;
    l.rank = rank;
    l.end_layer = m.num_layers;
    l.end_head = m.num_heads;
    l.end_kv_head = m.num_kv_heads;
    l.first_expert = m.num_experts * rank / size;
    l.end_expert = m.num_experts * (rank + 1) / size;
    l.vocab_end = m.vocab_size;
    return l;
  }
};

}  // namespace

LOOM_PLUGIN(parallel, "ep", "1.0.0", "Expert parallelism: MoE experts split over ranks, the rest replicated",
            ExpertParallel, kRanksKeys)
