// attention/faulty: the real attention backend (`inner`, e.g. paged) whose prepare() and
// forward() throw at random (fault_source.h). A throw from forward() at layer l > 0 leaves the
// KV of layers < l written for the step's tokens: the engine must never trust those slots.
#include "fault_plugins/fault_source.h"
#include "fault_plugins/inner_plugin.h"
#include "loom/attention.h"

namespace {

using loom::sdk::KvCacheView;
using loom::sdk::Stream;
using loom::sdk::TensorView;

class FaultyAttention final : public loom::sdk::AttentionBackend {
 public:
  FaultyAttention(const loom::sdk::EngineInfo& info, const loom::sdk::PluginConfig& config)
      : faults_("attention", config), inner_(config.string("inner"), info) {}

  bool supports(const loom::sdk::Device& device, loom::sdk::DType kv_dtype) const override {
    return inner_->supports(device, kv_dtype);
  }
  void prepare(const loom::sdk::AttentionBatch& batch, const KvCacheView& cache, Stream stream) override {
    faults_.call("prepare", [&] { inner_->prepare(batch, cache, stream); });
  }
  void forward(std::uint32_t layer, const TensorView& q, const TensorView& k, const TensorView& v,
               const KvCacheView& cache, const TensorView& out, Stream stream) override {
    faults_.call("forward", [&] { inner_->forward(layer, q, k, v, cache, out, stream); });
  }

 private:
  loom::faults::FaultSource faults_;
  loom::faults::InnerPlugin<loom::sdk::AttentionBackend> inner_;
};

}  // namespace

LOOM_PLUGIN(attention, "faulty", "1.0.0", "Test fixture: a real attention backend that throws at random",
            FaultyAttention, loom::faults::kCommonKeys)
