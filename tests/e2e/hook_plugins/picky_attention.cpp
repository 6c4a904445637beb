// attention/picky: an attention backend that runs only where its `runs_on` key says ("cpu" or
// "nowhere"), records when it is made and what it is asked, and delegates nothing: the engine
// must ask supports() before it builds the model runner or sizes the pool (num_blocks is still
// 0 then), and refuse a config whose backend says no.
#include <string>

#include "call_log.h"
#include "loom/attention.h"
#include "loom/error.h"

namespace {

using namespace loom::sdk;

const ConfigKeySpec kKeys[] = {
    {"runs_on", KeyType::string, "cpu", "\"cpu\" or \"nowhere\""},
    {"log", KeyType::string, "", "file the calls are appended to"},
};

class PickyAttention final : public AttentionBackend {
 public:
  PickyAttention(const EngineInfo& info, const PluginConfig& config)
      : runs_on_(config.string("runs_on")), log_(config.string("log")) {
    log_.write("constructed", "num_blocks", info.num_blocks);
  }

  bool supports(const Device& device, DType kv_dtype) const override {
    log_.write("supports", device.kind == DeviceKind::cpu ? "cpu" : "cuda", dtype_name(kv_dtype));
    return runs_on_ == "cpu" && device.kind == DeviceKind::cpu && kv_dtype == DType::f32;
  }
  void prepare(const AttentionBatch&, const KvCacheView&, Stream) override {
    throw loom::Error("attention/picky computes nothing; it only answers supports()");
  }
  void forward(std::uint32_t, const TensorView&, const TensorView&, const TensorView&, const KvCacheView&,
               const TensorView&, Stream) override {}

 private:
  std::string runs_on_;
  mutable loom::hooks::CallLog log_;
};

}  // namespace

LOOM_PLUGIN(attention, "picky", "1.0.0", "Test fixture: answers supports() as configured", PickyAttention, kKeys)
