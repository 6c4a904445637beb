// The device and pinned buffers a CUDA step works in, sized once for the largest step
// (max_tokens tokens, max_rows sampling rows) so that nothing is allocated while serving and a
// captured graph's addresses stay valid.
#pragma once

#include <cstdint>

#include "core/io/model_config.h"
#include "core/runtime/device_memory.h"
#include "loom/kernels/cuda/sampling.h"

namespace loom {

// A step's inputs and greedy outputs, packed for its T tokens and R rows (padded sizes for a
// graph) so that one small copy uploads them and one brings the results back: tokens [T],
// positions [T], logit rows [R], the bad-id flag (uploaded as -1, set by the embedding), then
// the greedy tokens [R].
struct StepIo {
  std::int32_t *tokens, *positions, *rows, *bad_id, *greedy;
};

// Activations of one step; the residual stream (hidden) is fp32, the rest 16-bit.
struct Activations {
  void *hidden = nullptr, *normed = nullptr, *qkv = nullptr, *q = nullptr, *k = nullptr, *v = nullptr,
       *attn = nullptr, *proj = nullptr, *gate_up = nullptr, *act = nullptr, *selected = nullptr;
};

class CudaWorkBuffers {
 public:
  CudaWorkBuffers(const io::ModelConfig& config, std::uint32_t max_tokens, std::uint32_t max_rows);

  std::uint32_t max_tokens() const { return max_tokens_; }
  std::uint32_t max_rows() const { return max_rows_; }
  const Activations& activations() const { return act_; }
  StepIo device_io(int T, int R) const { return step_io(step_io_.data(), T, R); }
  StepIo host_io(int T, int R) const { return step_io(host_step_io_.data(), T, R); }
  float* logits() const { return logits_.as<float>(); }  // [max_rows, vocab] fp32
  // Sampled rows' parameters, then the tokens drawn ([max_rows] each), on each side.
  kernels::cuda::SampleRow* device_sample_rows() const { return sampling_.as<kernels::cuda::SampleRow>(); }
  kernels::cuda::SampleRow* host_sample_rows() const { return host_sampling_.as<kernels::cuda::SampleRow>(); }
  std::int32_t* device_drawn() const { return reinterpret_cast<std::int32_t*>(device_sample_rows() + max_rows_); }
  std::int32_t* host_drawn() const { return reinterpret_cast<std::int32_t*>(host_sample_rows() + max_rows_); }
  // Rows verifying a draft against the drafter's probabilities, then the tokens they return
  // ([max_rows] each), on each side; and room on the device for kDraftQRows rows of those
  // probabilities (a launch verifies at most that many rows).
  static constexpr std::uint32_t kDraftQRows = 64;
  kernels::cuda::VerifyRow* device_verify_rows() const { return verifying_.as<kernels::cuda::VerifyRow>(); }
  kernels::cuda::VerifyRow* host_verify_rows() const { return host_verifying_.as<kernels::cuda::VerifyRow>(); }
  std::int32_t* device_verified() const { return reinterpret_cast<std::int32_t*>(device_verify_rows() + max_rows_); }
  std::int32_t* host_verified() const { return reinterpret_cast<std::int32_t*>(host_verify_rows() + max_rows_); }
  float* draft_q() const { return draft_q_.as<float>(); }  // [kDraftQRows, vocab]
  // Activations and logits: what `describe()` reports as work buffers.
  std::size_t bytes() const { return activations_.bytes() + logits_.bytes(); }

 private:
  static StepIo step_io(void* base, int T, int R);

  std::uint32_t max_tokens_, max_rows_;
  runtime::DeviceBuffer activations_;
  Activations act_;
  runtime::DeviceBuffer step_io_;
  runtime::PinnedBuffer host_step_io_;
  runtime::DeviceBuffer logits_;
  runtime::DeviceBuffer sampling_;
  runtime::PinnedBuffer host_sampling_;
  runtime::DeviceBuffer verifying_;
  runtime::PinnedBuffer host_verifying_;
  runtime::DeviceBuffer draft_q_;
};

}  // namespace loom
