// parallel/ranks: a parallel plugin laying the model out over `ranks` CPU ranks (layers split
// evenly), for the engine's start-up check: anything but one rank holding the whole model is
// refused with a clear error until the model runner is split by rank. Records init_rank calls.
#include <string>

#include "call_log.h"
#include "loom/parallel.h"

namespace {

using loom::sdk::Device;
using loom::sdk::Stream;
using loom::sdk::TensorView;

const loom::sdk::ConfigKeySpec kKeys[] = {
    {"ranks", loom::sdk::KeyType::integer, "2", "number of ranks"},
    {"log", loom::sdk::KeyType::string, "", "file the calls are appended to"},
};

class RanksParallel final : public loom::sdk::Parallel {
 public:
  RanksParallel(const loom::sdk::EngineInfo&, const loom::sdk::PluginConfig& config)
      : ranks_(static_cast<std::uint32_t>(config.integer("ranks"))), log_(config.string("log")) {}

  std::uint32_t world_size() const override { return ranks_; }
  loom::sdk::RankLayout layout(const loom::sdk::ModelShape& m, std::uint32_t rank) const override {
    loom::sdk::RankLayout l;
    l.rank = rank;
    l.first_layer = m.num_layers * rank / ranks_;
    l.end_layer = m.num_layers * (rank + 1) / ranks_;
    l.end_head = m.num_heads;
    l.end_kv_head = m.num_kv_heads;
    l.ffn_end = ~0u;
    l.end_expert = m.num_experts;
    l.vocab_end = m.vocab_size;
    return l;
  }
  Device device_of(std::uint32_t) const override { return {}; }
  void init_rank(std::uint32_t rank) override { log_.write("init_rank", rank); }
  void all_reduce_sum(std::uint32_t, const TensorView&, Stream) override {}
  void send_next(std::uint32_t, const TensorView&, Stream) override {}
  void recv_prev(std::uint32_t, const TensorView&, Stream) override {}
  void all_to_all(std::uint32_t, const TensorView&, const TensorView&, Stream) override {}
  void all_to_all_v(std::uint32_t, const TensorView&, std::span<const std::uint64_t>, const TensorView&,
                    std::span<const std::uint64_t>, Stream) override {}
  void all_gather(std::uint32_t, const TensorView&, const TensorView&, Stream) override {}

 private:
  std::uint32_t ranks_;
  loom::hooks::CallLog log_;
};

}  // namespace

LOOM_PLUGIN(parallel, "ranks", "1.0.0", "Test fixture: layers split over N ranks", RanksParallel, kKeys)
