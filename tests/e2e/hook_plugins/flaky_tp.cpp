// parallel/flaky_tp: two CPU ranks splitting heads, FFN columns and vocabulary in halves (as tp
// size 2 does), whose rank 1 throws loom::DeviceError from its all-reduce number `fail_at` (counted
// from 1 over the run) and the `fail_times - 1` after it: a rank failing mid-step, while rank 0
// waits for it in the same collective.
#include <atomic>

#include "loom/error.h"
#include "loom/ranks_parallel.h"

namespace {

using namespace loom::sdk;

const ConfigKeySpec kKeys[] = {
    {"size", KeyType::integer, "2", "ranks (2 only)"},
    {"devices", KeyType::string, "", "as tp's"},
    {"fail_at", KeyType::integer, "1", "rank 1's all-reduce that throws first"},
    {"fail_times", KeyType::integer, "1", "how many in a row throw"},
};

class FlakyTensorParallel final : public RanksParallel {
 public:
  FlakyTensorParallel(const EngineInfo& info, const PluginConfig& config)
      : RanksParallel(info, config, "flaky_tp"),
        fail_at_(config.integer("fail_at")),
        fail_end_(fail_at_ + config.integer("fail_times")) {}

  RankLayout layout(const ModelShape& m, std::uint32_t rank) const override {
    RankLayout l;
    l.rank = rank;
    l.end_layer = m.num_layers;
    l.first_head = m.num_heads / 2 * rank;
    l.end_head = l.first_head + m.num_heads / 2;
    l.first_kv_head = m.num_kv_heads / 2 * rank;
    l.end_kv_head = l.first_kv_head + m.num_kv_heads / 2;
    l.ffn_part = rank;
    l.ffn_parts = 2;
    l.vocab_begin = m.vocab_size / 2 * rank;
    l.vocab_end = rank == 0 ? m.vocab_size / 2 : m.vocab_size;
    l.end_expert = m.num_experts;
    return l;
  }

  void all_reduce_sum(std::uint32_t rank, const TensorView& buffer, Stream stream) override {
    if (rank == 1) {
      const std::int64_t call = ++calls_;
      if (call >= fail_at_ && call < fail_end_)
        throw loom::DeviceError("flaky_tp: rank 1 lost its link at all-reduce " + std::to_string(call));
    }
    RanksParallel::all_reduce_sum(rank, buffer, stream);
  }

 private:
  const std::int64_t fail_at_, fail_end_;
  std::atomic<std::int64_t> calls_{0};
};

}  // namespace

LOOM_PLUGIN(parallel, "flaky_tp", "1.0.0", "Test: tp size 2 whose rank 1 fails", FlakyTensorParallel, kKeys)
