// attention/relay: relay attention (Zhu et al., ACL 2024) on the CPU. The leading blocks that
// several of the step's sequences share in the prefix cache (choose_shared_prefix, re-chosen
// every step) are read once per KV head for all their queries; each sequence then attends to the
// rest of its context alone, and the two parts merge exactly (an online softmax over blocks,
// loom/kernels/cpu/relay_attention.h). Sequences that share nothing take the second part only,
// in the same call. Results are bit for bit the same shared or not, so the CPU engine's batch
// invariance holds. The CUDA kernel is still to come: on a GPU this backend says no and the
// engine refuses the config before loading the model.
#include <string>
#include <vector>

#include "loom/attention.h"
#include "loom/kernels/cpu/relay_attention.h"
#include "shared_prefix.h"

namespace {

using namespace loom::sdk;
namespace cpu = loom::kernels::cpu;

class RelayAttentionBackend final : public AttentionBackend {
 public:
  RelayAttentionBackend(const EngineInfo&, const PluginConfig&) {}

  bool supports(const Device& device, DType kv_dtype) const override {
    return device.kind == DeviceKind::cpu && kv_dtype == DType::f32;
  }

  void prepare(const AttentionBatch& batch, const KvCacheView& cache, Stream) override {
    if (!supports(cache.device, cache.dtype))
      throw loom::Error(
          "attention/relay: runs on the CPU (fp32 KV) only so far; use attention plugin \"paged\" on a "
          "GPU");
    num_heads_ = static_cast<int>(batch.num_heads);
    scale_ = batch.scale;
    tables_.clear();
    seqs_.clear();
    for (const AttentionSeq& seq : batch.seqs) {
      tables_.emplace_back(seq.block_table.begin(), seq.block_table.end());
      seqs_.push_back(
          {static_cast<int>(seq.q_start), static_cast<int>(seq.q_len), static_cast<int>(seq.ctx_len), nullptr});
    }
    for (std::size_t i = 0; i < seqs_.size(); ++i) seqs_[i].block_table = tables_[i].data();
    prefix_ = loom_attention_relay::choose_shared_prefix(batch.seqs, cache.block_size);
  }

  void forward(std::uint32_t layer, const TensorView& q, const TensorView& k, const TensorView& v,
               const KvCacheView& cache, const TensorView& out, Stream) override {
    const KvCacheView::Layer& kv = cache.layers[layer];
    cpu::PagedKvLayer paged{static_cast<float*>(kv.k), static_cast<float*>(kv.v), static_cast<int>(cache.block_size),
                            static_cast<int>(cache.num_kv_heads), static_cast<int>(cache.head_dim)};
    cpu::write_kv(paged, seqs_, k.as<const float>(), v.as<const float>());
    const cpu::SharedPrefix shared{prefix_.blocks.data(), static_cast<int>(prefix_.blocks.size()), prefix_.members};
    cpu::relay_attention(paged, seqs_, shared, q.as<const float>(), num_heads_, scale_, out.as<float>());
  }

 private:
  int num_heads_ = 0;
  float scale_ = 1.0f;
  std::vector<std::vector<std::int32_t>> tables_;
  std::vector<cpu::AttentionSeq> seqs_;
  loom_attention_relay::PrefixChoice prefix_;
};

}  // namespace

LOOM_PLUGIN(attention, "relay", "0.1.0",
            "Relay attention: the prefix the batch shares read once per step for all its queries (CPU fp32 so far)",
            RelayAttentionBackend, kNoKeys)
