// attention/paged: attention over the paged KV cache, prefill chunks and decodes in one batch.
//
// On the CPU (fp32 KV) it runs libloom_kernels' CPU kernel; on a CUDA device (fp16/bf16 KV) the
// CUDA kernel, through PagedAttentionRunner (in libloom_kernels when Loom is built with CUDA). prepare() copies
// the step's layout (the spans it receives live only for the call); forward() stores the step's
// K/V and attends, per layer.
#include <memory>
#include <string>
#include <vector>

#include "loom/attention.h"
#include "loom/kernels/cpu/paged_attention.h"
#include "loom/kernels/cuda_devices.h"
#if LOOM_HAVE_CUDA
#include "loom/kernels/cuda/paged_attention_runner.h"
#endif

namespace {

using namespace loom::sdk;
namespace cpu = loom::kernels::cpu;

class PagedAttentionBackend final : public AttentionBackend {
 public:
  PagedAttentionBackend(const EngineInfo& info, const PluginConfig&) : info_(info) {}

  bool supports(const Device& device, DType kv_dtype) const override {
    if (device.kind == DeviceKind::cpu) return kv_dtype == DType::f32;
    return loom::kernels::cuda_compiled() && (kv_dtype == DType::f16 || kv_dtype == DType::bf16);
  }

  void prepare(const AttentionBatch& batch, const KvCacheView& cache, Stream stream) override {
    if (!supports(cache.device, cache.dtype))
      throw loom::Error("attention/paged: no kernel for this device and KV type (CPU: fp32; CUDA: fp16 or bf16, in "
                        "a build with CUDA)");
#if LOOM_HAVE_CUDA
    if (cache.device.kind == DeviceKind::cuda) {
      if (!cuda_) cuda_ = std::make_unique<loom::kernels::cuda::PagedAttentionRunner>(info_, "attention/paged");
      cuda_->prepare(batch, cache, stream);
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
      seqs_.push_back({static_cast<int>(seq.q_start), static_cast<int>(seq.q_len), static_cast<int>(seq.ctx_len), nullptr});
    }
    for (std::size_t i = 0; i < seqs_.size(); ++i) seqs_[i].block_table = tables_[i].data();
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
    cpu::paged_attention(paged, seqs_, q.as<const float>(), num_heads_, scale_, out.as<float>());
  }

 private:
  EngineInfo info_;
#if LOOM_HAVE_CUDA
  std::unique_ptr<loom::kernels::cuda::PagedAttentionRunner> cuda_;
#endif
  int num_heads_ = 0;
  float scale_ = 1.0f;
  std::vector<std::vector<std::int32_t>> tables_;
  std::vector<cpu::AttentionSeq> seqs_;
};

}  // namespace

LOOM_PLUGIN(attention, "paged", "0.1.0", "Paged attention over the block table: CPU fp32, CUDA fp16/bf16 (split-K, graph-safe)",
            PagedAttentionBackend, kNoKeys)
