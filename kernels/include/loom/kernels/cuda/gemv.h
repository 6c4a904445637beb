// y[1, out] = x[1, in] W^T for one row (batch-1 decode): W [out, in] row-major is streamed once
// with 16-byte loads that bypass L1, eight in flight per lane, one warp per output row, fp32
// accumulation; each block keeps x in shared memory.
// Memory-bound by design: for a single row a GEMM library's tiles leave bandwidth unused. The
// kernel is written for R rows, but on an H100 four rows took twice as long as one (it becomes
// bound by the activation loads), so cuBLAS serves every shape with more than one row.
#pragma once

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

}  // namespace loom::kernels::cuda
