// y[1, out] = x[1, in] W^T for one row (batch-1 decode): W [out, in] row-major is streamed once
// with 16-byte loads that bypass L1, each warp streaming whole output rows (as many as fill the
// GPU once), two batches of eight loads per lane in flight, fp32 accumulation; each block keeps x
// in shared memory. Fused forms below take RMSNorm into the prologue and the residual add,
// SiLU-and-mul or bias + RoPE into the epilogue.
// Memory-bound by design: for a single row a GEMM library's tiles leave bandwidth unused (on an
// H100 this kernel streams 2.86 TB/s where cuBLAS streams 2.5). With more rows it becomes bound
// by the activation loads (four rows took twice as long as one), so cuBLAS serves those.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "loom/kernels/cuda/dtype.h"

namespace loom::kernels::cuda {

inline constexpr int kGemvMaxRows = 1;
inline constexpr int kGemvMaxIn = 24 * 1024;  // x must fit the default 48 KiB of shared memory

// Whether gemv() takes this shape: 1 <= rows <= kGemvMaxRows, in a multiple of 8, at most kGemvMaxIn.
inline bool gemv_supports(int rows, int in) {
  return rows >= 1 && rows <= kGemvMaxRows && in % 8 == 0 && in <= kGemvMaxIn;
}

// y is `dtype`, or fp32 when y_f32. Pointers 16-byte aligned.
cudaError_t gemv(const void* x, int rows, int in, const void* w, int out, void* y, bool y_f32, DType dtype,
                 cudaStream_t stream);

// Fused forms for a decode step of one token, each saving a kernel around the GEMV. They round
// where the unfused kernels store 16-bit values, so they compute what the unfused sequence does
// up to the order of one sum. `in` satisfies gemv_supports(1, in).
//
// y = (rmsnorm(hidden) * norm_weight) W^T: add_rmsnorm's normalisation (without the add) staged
// by every block, then the GEMV; y is `dtype`, or fp32 when y_f32 (the lm head's logits).
cudaError_t gemv_rmsnorm(const float* hidden, const void* norm_weight, float eps, int in, const void* w, int out,
                         void* y, bool y_f32, DType dtype, cudaStream_t stream);
// act = silu(gate) * up with [gate; up] = (rmsnorm(hidden) * norm_weight) W_gate_up^T, W_gate_up
// [2 inter, in]: one warp computes a gate row and its up row.
cudaError_t gemv_rmsnorm_silu(const float* hidden, const void* norm_weight, float eps, int in, const void* w_gate_up,
                              int inter, void* act, DType dtype, cudaStream_t stream);
// The rotary embedding of one token's q and k heads (as rope.h applies it), for gemv_rmsnorm_rope.
struct GemvRope {
  const std::int32_t* position = nullptr;  // device: the token's position, clamped to the table
  const float* cos_sin = nullptr;          // [table_positions, head_dim]: cos of pair i at i, sin at head_dim / 2 + i
  int table_positions = 0;
  int head_dim = 0;                        // even
  bool interleaved = false;                // pairs (2i, 2i + 1) instead of (i, i + head_dim / 2)
  int rotary_rows = 0;                     // output rows below this (q and k heads) rotate; the rest (v) do not
};
// qkv = rope((rmsnorm(hidden) * norm_weight) W^T + bias): gemv_rmsnorm, add_bias (bias may be
// null) and rope_split_qkv without QK-norm in one kernel, q, k and v heads one after the other in
// qkv [out]; out is a multiple of head_dim. One warp computes both rows of a rotation pair.
cudaError_t gemv_rmsnorm_rope(const float* hidden, const void* norm_weight, float eps, int in, const void* w, int out,
                              const void* bias, const GemvRope& rope, void* qkv, DType dtype, cudaStream_t stream);
// hidden += x W^T (the sub-layer output joins the fp32 residual stream in the epilogue).
cudaError_t gemv_add_residual(const void* x, int in, const void* w, int out, float* hidden, DType dtype,
                              cudaStream_t stream);

}  // namespace loom::kernels::cuda
