#include "core/model/cuda_weights.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <initializer_list>

#include "loom/cuda_check.h"
#include "loom/kernels/cuda/elementwise.h"

namespace loom {

namespace kc = kernels::cuda;

namespace {

constexpr std::size_t kAlign = 256;
constexpr std::size_t kUploadChunk = 16u << 20;  // floats per staging round (64 MiB)

std::size_t aligned(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }
std::size_t bytes_of(const io::Tensor& t) { return t.empty() ? 0 : aligned(t.numel() * kc::kElementSize); }

// Copies fp32 host tensors into 16-bit device memory through pinned and device fp32 staging.
class Uploader {
 public:
  Uploader(kc::DType dtype, cudaStream_t stream)
      : dtype_(dtype),
        stream_(stream),
        host_(kUploadChunk * sizeof(float), "weight upload staging"),
        device_(kUploadChunk * sizeof(float), "weight upload staging") {}

  // Writes the tensor's elements to dst (16-bit), in order.
  void put(const io::Tensor& t, void* dst) {
    auto* out = static_cast<unsigned char*>(dst);
    const float* src = t.data();
    for (std::size_t done = 0; done < t.numel();) {
      const std::size_t n = std::min(kUploadChunk, t.numel() - done);
      LOOM_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the staging buffers are free again
      std::memcpy(host_.as<float>(), src + done, n * sizeof(float));
      LOOM_CUDA_CHECK(cudaMemcpyAsync(device_.as<float>(), host_.as<float>(), n * sizeof(float),
                                      cudaMemcpyHostToDevice, stream_));
      LOOM_CUDA_CHECK(kc::convert_from_f32(device_.as<float>(), out + done * kc::kElementSize, n, dtype_, stream_));
      done += n;
    }
  }

 private:
  kc::DType dtype_;
  cudaStream_t stream_;
  runtime::PinnedBuffer host_;
  runtime::DeviceBuffer device_;
};

std::array<const io::Tensor*, 15> tensors_of(const io::LayerWeights& l) {
  return {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv, &l.bo, &l.q_norm,
          &l.k_norm, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down};
}

}  // namespace

CudaWeights::CudaWeights(const io::ModelWeights& w, LayerRange range, kc::DType dtype, cudaStream_t stream) {
  const bool tied = w.lm_head.data() == w.token_embedding.data();
  std::size_t total = bytes_of(w.token_embedding) + bytes_of(w.final_norm) + (tied ? 0 : bytes_of(w.lm_head));
  std::uint64_t elements = w.final_norm.numel() + w.lm_head.numel();
  for (std::size_t l = range.first; l < range.end; ++l)
    for (const io::Tensor* t : tensors_of(w.layers[l])) {
      total += bytes_of(*t);
      elements += t->numel();
    }
  bytes_per_forward_ = elements * kc::kElementSize;
  storage_ = runtime::DeviceBuffer(total, "the model's weights");
  Uploader up(dtype, stream);
  auto* next = storage_.as<unsigned char>();
  // Places tensors back to back (one region per fused weight) and returns the region's start.
  auto place = [&](std::initializer_list<const io::Tensor*> parts) -> const void* {
    if ((*parts.begin())->empty()) return nullptr;
    unsigned char* start = next;
    std::size_t count = 0;
    for (const io::Tensor* t : parts) {
      up.put(*t, start + count * kc::kElementSize);
      count += t->numel();
    }
    next += aligned(count * kc::kElementSize);
    return start;
  };
  embedding_ = place({&w.token_embedding});
  final_norm_ = place({&w.final_norm});
  lm_head_ = tied ? embedding_ : place({&w.lm_head});
  for (std::size_t i = range.first; i < range.end; ++i) {
    const io::LayerWeights& l = w.layers[i];
    CudaLayerWeights d;
    d.attn_norm = place({&l.attn_norm});
    d.w_qkv = place({&l.wq, &l.wk, &l.wv});
    d.b_qkv = place({&l.bq, &l.bk, &l.bv});
    d.wo = place({&l.wo});
    d.bo = place({&l.bo});
    d.q_norm = place({&l.q_norm});
    d.k_norm = place({&l.k_norm});
    d.ffn_norm = place({&l.ffn_norm});
    d.w_gate_up = place({&l.w_gate, &l.w_up});
    d.w_down = place({&l.w_down});
    layers_.push_back(d);
  }
  LOOM_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace loom
