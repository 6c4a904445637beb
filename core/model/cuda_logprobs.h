// Log-probabilities of a step's chosen tokens from its logits on the GPU
// (loom/kernels/cuda/logprobs.h): the rows asked for go up, the results come back, in one
// synchronised round trip after the step's tokens are known. Buffers are sized for a step's rows
// up front (with the model's work buffers, before the KV pool takes the rest) and grow if asked for more.
#pragma once

#include <cstdint>
#include <span>

#include <cuda_runtime_api.h>

#include "core/model/model.h"
#include "loom/cuda_buffer.h"

namespace loom {

class CudaLogprobs {
 public:
  explicit CudaLogprobs(std::size_t max_rows = 0) { reserve(max_rows); }

  // Room for the rows of a step of up to `rows` logit rows.
  void reserve(std::size_t rows);

  // For each r < num_rows with rows[r].logprobs >= 0: out[r] = tokens[r]'s log-probability and
  // the top rows[r].logprobs of logits row r (device memory, [num_rows, vocab] floats).
  void read(const float* logits, int vocab, std::span<const OutputRow> rows, std::size_t num_rows,
            std::span<const std::int32_t> tokens, std::span<TokenLogprobs> out, cudaStream_t stream);

 private:
  static std::size_t results_offset(std::size_t rows);
  static std::size_t bytes_for(std::size_t rows);

  sdk::DeviceBuffer device_;
  sdk::PinnedBuffer host_;
};

}  // namespace loom
