// Log-probabilities on the GPU, so a request that asks for them keeps its logits on the device.
//
// The contract is the CPU's token_logprobs (core/sampling/logprobs.h): log softmax of the raw
// logits in double (the maximum subtracted, exp summed in double), NaN counted as -inf and +inf
// as the largest float; the chosen token's value and the top_n most likely tokens, best first,
// ties to the lower id; a row with nothing finite gives -inf everywhere. The sum's order differs
// from the CPU's (a tree, not a loop), so values agree to about 1e-12, not bit for bit.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace loom::kernels::cuda {

constexpr int kMaxTopLogprobs = 20;

struct LogprobRow {
  std::int32_t row = 0;    // which row of the logits
  std::int32_t token = 0;  // the token whose log-probability is wanted, in [0, vocab)
  std::int32_t top_n = 0;  // 0 .. kMaxTopLogprobs
};

struct LogprobResult {
  double logprob = 0.0;
  std::int32_t top_ids[kMaxTopLogprobs] = {};
  double top_logprobs[kMaxTopLogprobs] = {};
};

// For each i < count: out[i] for rows[i] of logits [.., vocab]. Device arrays; one CTA per row.
cudaError_t row_logprobs(const float* logits, int vocab, const LogprobRow* rows, int count, LogprobResult* out,
                         cudaStream_t stream);

}  // namespace loom::kernels::cuda
