// attention/relay: relay attention (Zhu et al., ACL 2024). The leading blocks that several of the
// step's sequences share in the prefix cache (choose_shared_prefix, re-chosen every step) are
// read once per KV head for all their queries; each sequence then attends to the rest of its
// context alone, and the two parts merge exactly. Sequences that share nothing take the second
// part only, in the same call.
//
// On the CPU (fp32 KV) the merge is an online softmax over blocks
// (loom/kernels/cpu/relay_attention.h): results are bit for bit the same shared or not, so the
// CPU engine's batch invariance holds. On a CUDA device (fp16/bf16 KV), CudaRelayAttention: paged
// attention for the rest of each context, then the prefix pass and a log-sum-exp merge.
#include <memory>
#include <string>
#include <vector>

#include "loom/attention.h"
#include "loom/kernels/cpu/relay_attention.h"
#include "loom/kernels/cuda_devices.h"
#include "shared_prefix.h"
#if LOOM_HAVE_CUDA
#include "cuda_relay_attention.h"
#endif

namespace {

using namespace loom::sdk;
namespace cpu = loom::kernels::cpu;

const ConfigKeySpec kKeys[] = {
    {"system_prompt", KeyType::string, "",
     "a system prompt the engine computes once at start and keeps (never evicted); the requests that begin "
     "with it read it once per step. Text, tokenized as a prompt (with BOS). Empty: the shared prefix is "
     "found each step"},
    {"system_prompt_ids", KeyType::string, "",
     "the system prompt as token ids separated by commas or spaces, instead of system_prompt"},
};

// "1, 2 3" -> {1, 2, 3}; anything else is refused naming the key.
std::vector<TokenId> parse_ids(const PluginConfig& config) {
  const std::string& text = config.string("system_prompt_ids");
  std::vector<TokenId> ids;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ',' || text[i] == ' ') {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    if (end == i || end - i > 9)
      throw config.invalid("system_prompt_ids",
                           "\"" + text.substr(i, 12) + "\" is not a token id: give ids separated by commas or spaces");
    ids.push_back(static_cast<TokenId>(std::stol(text.substr(i, end - i))));
    i = end;
  }
  return ids;
}

class RelayAttentionBackend final : public AttentionBackend {
 public:
  RelayAttentionBackend(const EngineInfo& info, const PluginConfig& config) : info_(info) {
    prefix_.token_ids = parse_ids(config);
    prefix_.text = config.string("system_prompt");
    const char* key = prefix_.token_ids.empty() ? "system_prompt" : "system_prompt_ids";
    if (!prefix_.token_ids.empty() && !prefix_.text.empty())
      throw config.invalid("system_prompt_ids",
                           "give the system prompt as text (system_prompt) or as token ids, "
                           "not both");
    if (prefix_.token_ids.empty() && !config.string("system_prompt_ids").empty())
      throw config.invalid("system_prompt_ids", "holds no token id: give ids separated by commas or spaces");
    prefix_.named_by = config.origin(key) + ": [" + config.section() + "] " + key;
  }

  PinnedPrefix pinned_prefix() const override { return prefix_; }
  void on_prefix_pinned(std::span<const BlockId> blocks) override { pinned_.assign(blocks.begin(), blocks.end()); }

  bool supports(const Device& device, DType kv_dtype) const override {
    if (device.kind == DeviceKind::cpu) return kv_dtype == DType::f32;
    return loom::kernels::cuda_compiled() && (kv_dtype == DType::f16 || kv_dtype == DType::bf16);
  }

  void prepare(const AttentionBatch& batch, const KvCacheView& cache, Stream stream) override {
    if (!supports(cache.device, cache.dtype))
      throw loom::Error(
          "attention/relay: no kernel for this device and KV type (CPU: fp32; CUDA: fp16 or bf16, in "
          "a build with CUDA)");
#if LOOM_HAVE_CUDA
    if (cache.device.kind == DeviceKind::cuda) {
      if (!cuda_) cuda_ = std::make_unique<loom_attention_relay::CudaRelayAttention>(info_);
      cuda_->prepare(batch, cache, stream, pinned_);
      return;
    }
#endif
    (void)stream;
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
    shared_ = loom_attention_relay::choose_shared_prefix(batch.seqs, cache.block_size, {}, pinned_);
  }

  // CUDA: a step whose sequences share a prefix adds the relay launches to paged attention's.
  std::uint64_t graph_key() const override {
#if LOOM_HAVE_CUDA
    if (cuda_) return cuda_->relay_rows() > 0 ? 1 : 0;
#endif
    return 0;
  }

  void forward(std::uint32_t layer, const TensorView& q, const TensorView& k, const TensorView& v,
               const KvCacheView& cache, const TensorView& out, Stream stream) override {
#if LOOM_HAVE_CUDA
    if (cache.device.kind == DeviceKind::cuda) {
      cuda_->forward(layer, q, k, v, cache, out, stream);
      return;
    }
#endif
    (void)stream;
    const KvCacheView::Layer& kv = cache.layers[layer];
    cpu::PagedKvLayer paged{static_cast<float*>(kv.k), static_cast<float*>(kv.v), static_cast<int>(cache.block_size),
                            static_cast<int>(cache.num_kv_heads), static_cast<int>(cache.head_dim)};
    cpu::write_kv(paged, seqs_, k.as<const float>(), v.as<const float>());
    const cpu::SharedPrefix shared{shared_.blocks.data(), static_cast<int>(shared_.blocks.size()), shared_.members};
    cpu::relay_attention(paged, seqs_, shared, q.as<const float>(), num_heads_, scale_, out.as<float>());
  }

 private:
  EngineInfo info_;
#if LOOM_HAVE_CUDA
  std::unique_ptr<loom_attention_relay::CudaRelayAttention> cuda_;
#endif
  int num_heads_ = 0;
  float scale_ = 1.0f;
  std::vector<std::vector<std::int32_t>> tables_;
  std::vector<cpu::AttentionSeq> seqs_;
  PinnedPrefix prefix_;                        // the configured system prompt, if any
  std::vector<BlockId> pinned_;                // its blocks, once the engine holds them
  loom_attention_relay::PrefixChoice shared_;  // of the prepared step
};

}  // namespace

LOOM_PLUGIN(
    attention, "relay", "0.1.0",
    "Relay attention: the prefix the batch shares read once per step for all its queries (CPU fp32, CUDA fp16/bf16)",
    RelayAttentionBackend, kKeys)
