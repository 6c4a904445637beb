// Sampling on the GPU: temperature, top-k, min-p, top-p and the draw, so logits stay on the device.
//
// The contract is the CPU sampler's sample_with_uniform (core/sampling/sampler.h): tokens ranked
// by descending logit, ties by lower id; NaN and -inf never drawn, +inf clamped to the largest
// float; weights exp((logit - max) / temperature) in double; top-k, then min-p and zero weights
// dropped, then the smallest top set with at least top_p of the mass, then the first token whose
// running mass exceeds uniform * total. Nothing is sorted: each cut is a radix select over the
// 64-bit rank key (inverted logit bits, then the id) with 8-bit digits, counting tokens (top-k)
// or summing weights (top-p, the draw). Weights are summed as fixed-point integers (2^(62 -
// id bits) for weight 1), so the sums are exact and the result does not depend on thread
// timing; a token can differ from the CPU's only when the draw falls within about 1e-13 of the
// mass boundary between two tokens.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace loom::kernels::cuda {

struct SampleRow {
  std::int32_t row = 0;      // which row of the logits
  std::int32_t top_k = 0;    // 0 = all
  double temperature = 1.0;  // > 0 (greedy rows use argmax_rows)
  double top_p = 1.0;        // (0, 1]
  double min_p = 0.0;        // [0, 1]
  double uniform = 0.0;      // the sequence's draw, [0, 1)
};

// For each i < count: out[i] = the token drawn from logits[rows[i].row * vocab, + vocab) with
// rows[i]'s parameters. `rows` and `out` are device arrays. One CTA per row.
cudaError_t sample_rows(const float* logits, int vocab, const SampleRow* rows, int count, std::int32_t* out,
                        cudaStream_t stream);

// A sampled sequence's draft at one row: kept or replaced by the rejection rule of speculative
// decoding, as the CPU's verify_draft_row (core/sampling/speculative_verify.h) does with the
// row's distribution p (the same cuts as sample_rows) and the drafter's probabilities q: kept
// when u_accept * q(draft) < p(draft), else replaced by the token where the running mass of
// max(0, p - q) over the ranking first exceeds u_residual times its total. A q(draft) outside
// (0, 1] verifies the draft as a point mass (kept when u_accept < p(draft), else drawn from p
// without it).
struct VerifyRow {
  std::int32_t row = 0;
  std::int32_t top_k = 0;
  double temperature = 1.0;
  double top_p = 1.0;
  double min_p = 0.0;
  std::int32_t draft = 0;   // in [0, vocab)
  double u_accept = 0.0;    // [0, 1)
  double u_residual = 0.0;  // [0, 1)
};

// For each i < count: out[i] = the draft of rows[i] when it stands, else its replacement.
// draft_q holds count rows of vocab probabilities, row i for rows[i]. Device arrays; one CTA
// per row.
cudaError_t verify_rows(const float* logits, int vocab, const VerifyRow* rows, const float* draft_q, int count,
                        std::int32_t* out, cudaStream_t stream);

}  // namespace loom::kernels::cuda
