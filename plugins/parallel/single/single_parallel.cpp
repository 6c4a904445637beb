// parallel/single: one rank holds the whole model; every collective is the identity.
#include <string>

#include "loom/parallel.h"

namespace {

using namespace loom::sdk;

class SingleParallel final : public Parallel {
 public:
  SingleParallel(const EngineInfo& info, const PluginConfig&) : device_(parse_device(info.device)) {}

  std::uint32_t world_size() const override { return 1; }

  RankLayout layout(const ModelShape& model, std::uint32_t rank) const override {
    if (rank != 0) throw loom::Error("parallel/single has one rank; asked for rank " + std::to_string(rank));
    RankLayout all;
    all.end_layer = model.num_layers;
    all.end_head = model.num_heads;
    all.end_kv_head = model.num_kv_heads;
    all.ffn_parts = 1;  // every intermediate column, whatever the layer's width
    all.end_expert = model.num_experts;
    all.vocab_end = model.vocab_size;
    return all;
  }

  Device device_of(std::uint32_t) const override { return device_; }
  void init_rank(std::uint32_t) override {}
  void all_reduce_sum(std::uint32_t, const TensorView&, Stream) override {}
  void send_next(std::uint32_t, const TensorView&, Stream) override {}
  void recv_prev(std::uint32_t, const TensorView&, Stream) override {}
  void all_to_all(std::uint32_t, const TensorView&, const TensorView&, Stream) override {
    throw loom::Error("parallel/single has no other ranks to exchange experts with");
  }
  void all_to_all_v(std::uint32_t, const TensorView&, std::span<const std::uint64_t>, const TensorView&,
                    std::span<const std::uint64_t>, Stream) override {
    throw loom::Error("parallel/single has no other ranks to exchange experts with");
  }
  // One rank's gather is its own slot: in place it is done; anywhere else a runner asked for a
  // copy that one whole-model rank never needs.
  void all_gather(std::uint32_t, const TensorView& send, const TensorView& recv, Stream) override {
    if (send.data != recv.data) throw loom::Error("parallel/single gathers in place only (send must be recv)");
  }

 private:
  static Device parse_device(const std::string& name) {
    if (name.rfind("cuda", 0) != 0) return Device{DeviceKind::cpu, 0};
    auto colon = name.find(':');
    return Device{DeviceKind::cuda, colon == std::string::npos ? 0 : std::stoi(name.substr(colon + 1))};
  }

  Device device_;
};

}  // namespace

LOOM_PLUGIN(parallel, "single", "1.0.0", "One device holds the whole model; no collectives",
            SingleParallel, kNoKeys)
