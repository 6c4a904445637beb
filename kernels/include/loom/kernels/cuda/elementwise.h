// Row-wise CUDA kernels of the Llama forward pass: embedding, RMSNorm (fused with the residual
// add), bias, SiLU-and-mul, row gathering, fp32 -> 16-bit conversion and greedy argmax.
//
// Every function enqueues its work on `stream` and returns the launch status (callers wrap it in
// LOOM_CUDA_CHECK so a failure names the call site). Tensors are dense row-major device arrays of
// `dtype` unless a parameter says float; each output row depends only on its own input row, so
// results are batch-invariant. All arithmetic is in fp32; results are rounded once on store.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "loom/kernels/cuda/dtype.h"

namespace loom::kernels::cuda {

// dst[i] = round(src[i]) for n elements (weights uploaded as fp32, stored as 16-bit).
cudaError_t convert_from_f32(const float* src, void* dst, std::size_t n, DType dtype, cudaStream_t stream);

// out[t, :] = table[ids[t], :], widened to fp32 (the residual stream). An id outside [0, vocab)
// writes a zero row and sets *bad_id to that id (atomic; left as is when every id is valid).
cudaError_t embedding(const void* table, int vocab, int hidden, const std::int32_t* ids, int num_tokens, float* out,
                      std::int32_t* bad_id, DType dtype, cudaStream_t stream);

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight; out may alias x.
cudaError_t rmsnorm(const void* x, const void* weight, int rows, int cols, float eps, void* out, DType dtype,
                    cudaStream_t stream);

// The residual step between sub-layers: hidden[r, :] += delta[r, :], then out[r, :] =
// rmsnorm(hidden[r, :]) * weight. The residual stream `hidden` is fp32 (as on the CPU), so 16-bit
// rounding enters only through each sub-layer's output; delta == nullptr skips the add.
cudaError_t add_rmsnorm(float* hidden, const void* delta, const void* weight, int rows, int cols, float eps, void* out,
                        DType dtype, cudaStream_t stream);

// x[r, :] += bias (Qwen2's q/k/v biases after the fused projection).
cudaError_t add_bias(void* x, const void* bias, int rows, int cols, DType dtype, cudaStream_t stream);

// out[t, i] = silu(gate_up[t, i]) * gate_up[t, inter + i]: the fused gate/up projection's output
// [T, 2 * inter] in, [T, inter] out.
cudaError_t silu_and_mul(const void* gate_up, int rows, int inter, void* out, DType dtype, cudaStream_t stream);

// dst[r, :] = src[rows[r], :] for r < num_rows.
cudaError_t gather_rows(const void* src, const std::int32_t* rows, int num_rows, int cols, void* dst, DType dtype,
                        cudaStream_t stream);

// out[r] = the lowest index among the largest values of logits[r, :] (fp32), skipping NaN; 0 when
// the row has no value above -inf. Matches the CPU sampler's greedy_token.
cudaError_t argmax_rows(const float* logits, int rows, int vocab, std::int32_t* out, cudaStream_t stream);

}  // namespace loom::kernels::cuda
