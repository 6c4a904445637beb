#include "core/model/cuda_work_buffers.h"

#include <iterator>
#include <string>

#include "loom/kernels/cuda/dtype.h"

namespace loom {

namespace {

constexpr std::size_t kAlign = 256;
std::size_t aligned(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

}  // namespace

CudaWorkBuffers::CudaWorkBuffers(const io::ModelConfig& c, std::uint32_t max_tokens, std::uint32_t max_rows)
    : max_tokens_(max_tokens), max_rows_(max_rows) {
  const std::size_t T = max_tokens_, H = c.hidden_size, heads = c.num_attention_heads, kv = c.num_key_value_heads;
  const std::size_t inter = c.intermediate_size, d = c.head_dim;
  const std::size_t e = kernels::cuda::kElementSize;
  void** slots[] = {&act_.hidden, &act_.normed, &act_.qkv,  &act_.q,       &act_.k,   &act_.v,
                    &act_.attn,   &act_.proj,   &act_.gate_up, &act_.act, &act_.selected};
  const std::size_t sizes[] = {T * H * sizeof(float), T * H * e,         T * (heads + 2 * kv) * d * e,
                               T * heads * d * e,     T * kv * d * e,    T * kv * d * e,
                               T * heads * d * e,     T * H * e,         T * 2 * inter * e,
                               T * inter * e,         max_rows_ * H * e};
  static_assert(std::size(slots) == std::size(sizes));
  std::size_t total = 0;
  for (std::size_t n : sizes) total += aligned(n);
  activations_ = runtime::DeviceBuffer(total, "activations of " + std::to_string(T) + " tokens");
  auto* at = activations_.as<unsigned char>();
  for (std::size_t i = 0; i < std::size(sizes); ++i) {
    *slots[i] = at;
    at += aligned(sizes[i]);
  }
  const std::size_t io_bytes = (2 * T + 2 * max_rows_ + 1) * sizeof(std::int32_t);
  step_io_ = runtime::DeviceBuffer(io_bytes, "step inputs and greedy tokens");
  host_step_io_ = runtime::PinnedBuffer(io_bytes, "step inputs and greedy tokens");
  logits_ = runtime::DeviceBuffer(static_cast<std::size_t>(max_rows_) * c.vocab_size * sizeof(float), "logits");
  const std::size_t sampling_bytes = max_rows_ * (sizeof(kernels::cuda::SampleRow) + sizeof(std::int32_t));
  sampling_ = runtime::DeviceBuffer(sampling_bytes, "sampling rows");
  host_sampling_ = runtime::PinnedBuffer(sampling_bytes, "sampling rows");
  const std::size_t verifying_bytes = max_rows_ * (sizeof(kernels::cuda::VerifyRow) + sizeof(std::int32_t));
  verifying_ = runtime::DeviceBuffer(verifying_bytes, "verifying rows");
  host_verifying_ = runtime::PinnedBuffer(verifying_bytes, "verifying rows");
  draft_q_ = runtime::DeviceBuffer(std::size_t{kDraftQRows} * c.vocab_size * sizeof(float), "draft probabilities");
}

StepIo CudaWorkBuffers::step_io(void* base, int T, int R) {
  auto* at = static_cast<std::int32_t*>(base);
  return {at, at + T, at + 2 * T, at + 2 * T + R, at + 2 * T + R + 1};
}

}  // namespace loom
